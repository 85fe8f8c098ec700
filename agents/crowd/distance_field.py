"""Navigation fields on the walkable raster: first-order fast marching (Sethian 1996) from target cells.

A field is computed once per (geometry, target set); agents read the unit direction -grad(T) by
bilinear interpolation. Cells near walls are made slower so paths keep a clearance from corners.
"""
from __future__ import annotations

import numpy as np
from numba import njit

from networks.routing import heap_pop as _pop, heap_push as _push  # the same binary heap (generic in numba)

__all__ = ["fast_marching", "wall_distance", "navigation_field", "direction_field"]


@njit(cache=True)
def fast_marching(slowness: np.ndarray, sources: np.ndarray, h: float) -> np.ndarray:
    """Travel distance (m, weighted by ``slowness``, inf = blocked) from ``sources`` on an h-metre grid."""
    ny, nx = slowness.shape
    T = np.full((ny, nx), np.inf)
    known = np.zeros((ny, nx), np.bool_)
    cap = 8 * ny * nx + 16
    hv = np.empty(cap, np.float64)
    hi = np.empty(cap, np.int64)
    n = 0
    for iy in range(ny):
        for ix in range(nx):
            if sources[iy, ix] and np.isfinite(slowness[iy, ix]):
                T[iy, ix] = 0.0
                n = _push(hv, hi, n, 0.0, iy * nx + ix)
    while n > 0:
        v, idx, n = _pop(hv, hi, n)
        iy = idx // nx
        ix = idx - iy * nx
        if known[iy, ix]:
            continue
        known[iy, ix] = True
        for k in range(4):
            jy = iy + (1 if k == 0 else (-1 if k == 1 else 0))
            jx = ix + (1 if k == 2 else (-1 if k == 3 else 0))
            if jy < 0 or jy >= ny or jx < 0 or jx >= nx or known[jy, jx]:
                continue
            f = slowness[jy, jx]
            if not np.isfinite(f):
                continue
            a = np.inf
            if jx > 0 and known[jy, jx - 1]:
                a = T[jy, jx - 1]
            if jx < nx - 1 and known[jy, jx + 1] and T[jy, jx + 1] < a:
                a = T[jy, jx + 1]
            b = np.inf
            if jy > 0 and known[jy - 1, jx]:
                b = T[jy - 1, jx]
            if jy < ny - 1 and known[jy + 1, jx] and T[jy + 1, jx] < b:
                b = T[jy + 1, jx]
            fh = f * h
            if np.isfinite(a) and np.isfinite(b) and abs(a - b) < fh:
                t = 0.5 * (a + b + np.sqrt(2.0 * fh * fh - (a - b) * (a - b)))
            else:
                t = min(a, b) + fh
            if t < T[jy, jx]:
                T[jy, jx] = t
                n = _push(hv, hi, n, t, jy * nx + jx)
    return T


def wall_distance(walkable: np.ndarray, h: float) -> np.ndarray:
    """Distance (m) from each cell centre to the nearest non-walkable cell (or the raster edge)."""
    ny, nx = walkable.shape
    pad = np.zeros((ny + 2, nx + 2), np.bool_)
    pad[1:-1, 1:-1] = walkable
    d = fast_marching(np.ones(pad.shape), ~pad, h)
    return d[1:-1, 1:-1] - 0.5 * h


@njit(cache=True)
def direction_field(T: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Unit vectors of -grad T by central (or one-sided) differences; zero where T is flat or inf."""
    ny, nx = T.shape
    gx = np.zeros((ny, nx), np.float32)
    gy = np.zeros((ny, nx), np.float32)
    for iy in range(ny):
        for ix in range(nx):
            t0 = T[iy, ix]
            if not np.isfinite(t0):
                continue
            l = T[iy, ix - 1] if ix > 0 else np.inf
            r = T[iy, ix + 1] if ix < nx - 1 else np.inf
            d = T[iy - 1, ix] if iy > 0 else np.inf
            u = T[iy + 1, ix] if iy < ny - 1 else np.inf
            if np.isfinite(l) and np.isfinite(r):
                dx = 0.5 * (r - l)
            elif np.isfinite(r):
                dx = r - t0
            elif np.isfinite(l):
                dx = t0 - l
            else:
                dx = 0.0
            if np.isfinite(d) and np.isfinite(u):
                dy = 0.5 * (u - d)
            elif np.isfinite(u):
                dy = u - t0
            elif np.isfinite(d):
                dy = t0 - d
            else:
                dy = 0.0
            nrm = np.sqrt(dx * dx + dy * dy)
            if nrm > 1e-12:
                gx[iy, ix] = -dx / nrm
                gy[iy, ix] = -dy / nrm
    return gx, gy


def navigation_field(walkable: np.ndarray, targets: np.ndarray, h: float, clearance_m: float = 0.5,
                     wall_penalty: float = 2.0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Distance-to-target field (m) and unit direction field for a set of target cells.

    Cells closer than ``clearance_m`` to a wall cost up to ``1 + wall_penalty`` times more, which
    keeps routes off corners (as JuPedSim's wall avoidance does).
    """
    dw = wall_distance(walkable, h)
    slow = 1.0 + wall_penalty * np.clip(1.0 - dw / max(clearance_m, 1e-9), 0.0, 1.0)
    slow = np.where(walkable, slow, np.inf)
    T = fast_marching(slow, targets & walkable, h)
    gx, gy = direction_field(T)
    return T, gx, gy
