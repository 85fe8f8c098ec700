"""Geodesy helpers: haversine distances, UTM zone choice, and a picklable lon/lat -> x/y projection."""
from __future__ import annotations

import math

import numpy as np

__all__ = ["EARTH_RADIUS_M", "haversine_m", "utm_crs", "Projection"]

EARTH_RADIUS_M = 6_371_008.8  # mean Earth radius (IUGG), metres


def haversine_m(lon1, lat1, lon2, lat2):
    """Great-circle distance in metres between points given in degrees (numpy-vectorised)."""
    lon1, lat1, lon2, lat2 = (np.radians(np.asarray(v, dtype=np.float64)) for v in (lon1, lat1, lon2, lat2))
    a = np.sin((lat2 - lat1) / 2) ** 2 + np.cos(lat1) * np.cos(lat2) * np.sin((lon2 - lon1) / 2) ** 2
    return 2.0 * EARTH_RADIUS_M * np.arcsin(np.sqrt(np.minimum(a, 1.0)))


def utm_crs(lon: float, lat: float) -> str:
    """EPSG code string of the WGS84 UTM zone containing (lon, lat), e.g. 'EPSG:32632'."""
    zone = min(60, max(1, int(math.floor((lon + 180.0) / 6.0)) + 1))
    return f"EPSG:{32600 + zone if lat >= 0 else 32700 + zone}"


class Projection:
    """(lon, lat) degrees -> (x, y) metres: a pyproj CRS plus an offset added after projecting.

    SUMO nets use their ``projParameter`` and ``netOffset``; OSM graphs use a UTM zone and no offset.
    Picklable (rebuilds the pyproj transformer), so a CityGraph can go to worker processes.
    Works on scalars and numpy arrays.
    """

    def __init__(self, crs: str, offset_xy: tuple[float, float] = (0.0, 0.0)) -> None:
        self.crs = crs
        self.offset_xy = (float(offset_xy[0]), float(offset_xy[1]))
        self._init()

    def _init(self) -> None:
        from pyproj import Transformer

        self._fwd = Transformer.from_crs("EPSG:4326", self.crs, always_xy=True)
        self._inv = Transformer.from_crs(self.crs, "EPSG:4326", always_xy=True)

    def __call__(self, lon, lat):
        x, y = self._fwd.transform(lon, lat)
        return x + self.offset_xy[0], y + self.offset_xy[1]

    def inverse(self, x, y):
        """(x, y) metres -> (lon, lat) degrees."""
        return self._inv.transform(np.subtract(x, self.offset_xy[0]), np.subtract(y, self.offset_xy[1]))

    def __getstate__(self) -> dict:
        return {"crs": self.crs, "offset_xy": self.offset_xy}

    def __setstate__(self, state: dict) -> None:
        self.crs, self.offset_xy = state["crs"], state["offset_xy"]
        self._init()

    def __repr__(self) -> str:
        return f"Projection({self.crs!r}, offset_xy={self.offset_xy})"
