"""Density maps (persons/m²) on a coarse grid over a venue, window averages, and Fruin levels of service.

Density in a cell = agents in it / walkable area of it, so cells cut by walls are not inflated;
cells with under a quarter of their area walkable are left out (NaN).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from agents.crowd.geometry import Raster

__all__ = ["FRUIN_LEVELS", "fruin_los", "DensityGrid"]

# Fruin walkway levels of service: upper density bounds (persons/m²) of A..E; F above the last.
FRUIN_BOUNDS = np.array([0.31, 0.43, 0.72, 1.08, 2.15])
FRUIN_LEVELS = ("A", "B", "C", "D", "E", "F")


def fruin_los(density) -> np.ndarray:
    """Fruin walkway level of service letter(s) for density (persons/m²)."""
    d = np.asarray(density, float)
    return np.asarray(FRUIN_LEVELS)[np.searchsorted(FRUIN_BOUNDS, d, side="right")]


@dataclass
class DensityGrid:
    """A ``cell_m`` grid over a venue raster: walkable area per cell and a box window for averages."""

    x0: float
    y0: float
    cell_m: float
    area_m2: np.ndarray  # float[ny, nx] walkable (inside) area per cell
    window: int  # side of the averaging window in cells

    @classmethod
    def for_raster(cls, r: Raster, cell_m: float, window_m: float) -> "DensityGrid":
        ny_r, nx_r = r.shape
        nx = int(np.ceil(nx_r * r.h / cell_m))
        ny = int(np.ceil(ny_r * r.h / cell_m))
        cx, cy = r.centres()
        ix = np.minimum(((cx - r.x0) / cell_m).astype(int), nx - 1)
        iy = np.minimum(((cy - r.y0) / cell_m).astype(int), ny - 1)
        IX, IY = np.meshgrid(ix, iy)
        area = np.bincount((IY * nx + IX)[r.inside], minlength=nx * ny).astype(float) * r.h * r.h
        return cls(r.x0, r.y0, cell_m, area.reshape(ny, nx), max(1, int(round(window_m / cell_m))))

    @property
    def shape(self) -> tuple[int, int]:
        return self.area_m2.shape

    @property
    def valid(self) -> np.ndarray:
        return self.area_m2 >= 0.25 * self.cell_m ** 2

    def counts(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        ny, nx = self.shape
        ix = np.clip(((x - self.x0) / self.cell_m).astype(np.int64), 0, nx - 1)
        iy = np.clip(((y - self.y0) / self.cell_m).astype(np.int64), 0, ny - 1)
        return np.bincount(iy * nx + ix, minlength=nx * ny).reshape(ny, nx).astype(float)

    def density(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        """Cell density (persons/m²), NaN where the cell is mostly not walkable."""
        c = self.counts(x, y)
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(self.valid, c / np.maximum(self.area_m2, 1e-12), np.nan)

    def window_density(self, counts: np.ndarray) -> np.ndarray:
        """Density averaged over a window x window box of cells (persons per walkable m² of the box)."""
        k = self.window
        if k == 1:
            with np.errstate(invalid="ignore", divide="ignore"):
                return np.where(self.valid, counts / np.maximum(self.area_m2, 1e-12), np.nan)
        c = _box_sum(counts, k)
        a = _box_sum(self.area_m2, k)
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(a >= 0.5 * (k * self.cell_m) ** 2, c / np.maximum(a, 1e-12), np.nan)

    def cell_centre(self, iy: int, ix: int) -> tuple[float, float]:
        """Local coordinates (m) of a cell's centre."""
        return self.x0 + (ix + 0.5) * self.cell_m, self.y0 + (iy + 0.5) * self.cell_m


def _box_sum(a: np.ndarray, k: int) -> np.ndarray:
    """Sum over the k x k box whose lower-left cell is each cell (same shape; zero-padded at the far edges)."""
    ny, nx = a.shape
    s = np.zeros((ny + 1, nx + 1))
    s[1:, 1:] = a.cumsum(0).cumsum(1)
    iy = np.arange(ny)
    ix = np.arange(nx)
    y1 = np.minimum(iy + k, ny)
    x1 = np.minimum(ix + k, nx)
    return s[y1][:, x1] - s[iy][:, x1] - s[y1][:, ix] + s[iy][:, ix]
