"""Venue geometry: a walkable polygon with obstacles, thin walls and exit openings, rasterised for the kernel.

Coordinates are venue-local metres. Exits are openings in the outer boundary (a point on an edge and a
width); outside each opening an "apron" (a short walkable box) is added: an agent whose centre enters
an apron has left through that exit. Walls are line segments (the boundary minus openings, apron sides,
obstacle outlines, thin walls) that the kernel keeps agents away from. Pure numpy, no shapely needed.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from numba import njit

from agents.crowd.distance_field import wall_distance
from agents.crowd.kernel import seg_point

__all__ = ["ExitGeom", "VenueGeometry", "Raster", "polygon_area", "parse_wkt_polygons", "load_geojson",
           "rasterise", "periodic_strip", "lattice_points"]

APRON_DEPTH_M = 0.6


@dataclass(frozen=True)
class ExitGeom:
    """An opening in the outer boundary: end points (m), width (m), unit outward normal."""

    name: str
    p1: tuple[float, float]
    p2: tuple[float, float]
    normal: tuple[float, float]
    edge: int  # index of the outer-polygon edge it lies on

    @property
    def width_m(self) -> float:
        return float(np.hypot(self.p2[0] - self.p1[0], self.p2[1] - self.p1[1]))

    @property
    def centre(self) -> tuple[float, float]:
        return (0.5 * (self.p1[0] + self.p2[0]), 0.5 * (self.p1[1] + self.p2[1]))

    def apron(self, depth: float = APRON_DEPTH_M) -> np.ndarray:
        """The box just outside the opening (4x2 array, counter-clockwise)."""
        nx_, ny_ = self.normal
        a, b = np.array(self.p1), np.array(self.p2)
        o = np.array([nx_, ny_]) * depth
        return np.array([a, a + o, b + o, b])


def polygon_area(p: np.ndarray) -> float:
    """Signed area (m²) of a closed ring given without repeating the first point (> 0: counter-clockwise)."""
    x, y = p[:, 0], p[:, 1]
    return 0.5 * float(np.dot(x, np.roll(y, -1)) - np.dot(np.roll(x, -1), y))


def _ccw(p: np.ndarray) -> np.ndarray:
    p = np.asarray(p, np.float64).reshape(-1, 2)
    if len(p) > 1 and np.allclose(p[0], p[-1]):
        p = p[:-1]
    return p if polygon_area(p) > 0 else p[::-1].copy()


@dataclass
class VenueGeometry:
    """Outer walkable polygon, obstacle polygons, thin wall polylines and exit openings (venue-local m)."""

    outer: np.ndarray
    obstacles: list[np.ndarray] = field(default_factory=list)
    walls: list[np.ndarray] = field(default_factory=list)
    exits: list[ExitGeom] = field(default_factory=list)

    @classmethod
    def build(cls, outer, obstacles=(), walls=(), exits=()) -> "VenueGeometry":
        """Build from rings/polylines and exits given as (name, (x, y) on the boundary, width_m)."""
        g = cls(_ccw(outer), [_ccw(o) for o in obstacles], [np.asarray(w, np.float64).reshape(-1, 2) for w in walls])
        for name, at, width in exits:
            g.exits.append(g.opening(name, at, width))
        return g

    @property
    def area_m2(self) -> float:
        return polygon_area(self.outer) - sum(abs(polygon_area(o)) for o in self.obstacles)

    def edge_distance(self, at) -> tuple[int, float, float]:
        """(edge index, distance m, position along edge m) of the boundary point nearest to ``at``."""
        p = np.asarray(at, np.float64)
        best = (-1, np.inf, 0.0)
        n = len(self.outer)
        for k in range(n):
            a, b = self.outer[k], self.outer[(k + 1) % n]
            d = b - a
            L = float(np.hypot(*d))
            s = float(np.clip(np.dot(p - a, d) / max(L * L, 1e-12), 0, 1)) * L
            q = a + d * (s / max(L, 1e-12))
            dist = float(np.hypot(*(p - q)))
            if dist < best[1]:
                best = (k, dist, s)
        return best

    def opening(self, name: str, at, width: float) -> ExitGeom:
        """The exit of ``width`` m centred at the boundary point nearest ``at`` (clipped to its edge)."""
        k, _, s = self.edge_distance(at)
        n = len(self.outer)
        a, b = self.outer[k], self.outer[(k + 1) % n]
        d = b - a
        L = float(np.hypot(*d))
        if width > L * (1.0 + 1e-9) + 1e-9:  # an exit as wide as its wall is allowed despite float rounding
            raise ValueError(f"exit {name!r}: width {width} m exceeds its wall's length {L:.6g} m")
        width = min(width, L)
        s = min(max(s, 0.5 * width), L - 0.5 * width)
        u = d / L
        p1, p2 = a + u * (s - 0.5 * width), a + u * (s + 0.5 * width)
        normal = (float(u[1]), float(-u[0]))  # outward for a counter-clockwise ring
        return ExitGeom(name, (float(p1[0]), float(p1[1])), (float(p2[0]), float(p2[1])), normal, k)

    def wall_segments(self, open_exits: list[int] | None = None) -> np.ndarray:
        """Wall segments (M x 4: x1, y1, x2, y2): boundary minus open exits, apron sides, obstacles, walls."""
        idx = range(len(self.exits)) if open_exits is None else open_exits
        segs: list[tuple[float, float, float, float]] = []
        n = len(self.outer)
        for k in range(n):
            a, b = self.outer[k], self.outer[(k + 1) % n]
            d = b - a
            L = float(np.hypot(*d))
            cuts = []
            for i in idx:
                e = self.exits[i]
                if e.edge == k:
                    s1 = float(np.dot(np.array(e.p1) - a, d) / L)
                    s2 = float(np.dot(np.array(e.p2) - a, d) / L)
                    cuts.append((min(s1, s2), max(s1, s2)))
            s0 = 0.0
            for c1, c2 in sorted(cuts):
                if c1 > s0 + 1e-9:
                    segs.append((*(a + d * s0 / L), *(a + d * c1 / L)))
                s0 = max(s0, c2)
            if s0 < L - 1e-9:
                segs.append((*(a + d * s0 / L), *b))
        for i in idx:
            ap = self.exits[i].apron()
            segs += [(*ap[0], *ap[1]), (*ap[1], *ap[2]), (*ap[2], *ap[3])]
        for o in self.obstacles:
            segs += [(*o[k], *o[(k + 1) % len(o)]) for k in range(len(o))]
        for w in self.walls:
            segs += [(*w[k], *w[k + 1]) for k in range(len(w) - 1)]
        return np.array(segs, np.float64).reshape(-1, 4)


@dataclass
class Raster:
    """The walkable grid of a venue: cell size ``h`` m, origin (x0, y0) = lower-left corner of cell (0, 0)."""

    x0: float
    y0: float
    h: float
    walkable: np.ndarray  # bool[ny, nx]
    exit_id: np.ndarray  # int16[ny, nx]: index of the exit whose apron holds the cell centre, else -1
    inside: np.ndarray  # bool[ny, nx]: walkable and inside the venue proper (not an apron)
    walls: np.ndarray  # float64[M, 4]

    @property
    def shape(self) -> tuple[int, int]:
        return self.walkable.shape

    def centres(self) -> tuple[np.ndarray, np.ndarray]:
        ny, nx = self.walkable.shape
        return self.x0 + (np.arange(nx) + 0.5) * self.h, self.y0 + (np.arange(ny) + 0.5) * self.h

    def cell_of(self, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        ny, nx = self.walkable.shape
        ix = np.clip(((np.asarray(x) - self.x0) / self.h).astype(np.int64), 0, nx - 1)
        iy = np.clip(((np.asarray(y) - self.y0) / self.h).astype(np.int64), 0, ny - 1)
        return iy, ix


@njit(cache=True)
def _points_in_ring(px, py, ring):
    """Even-odd point-in-polygon test for many points against one ring."""
    out = np.zeros(px.shape[0], np.bool_)
    n = ring.shape[0]
    for p in range(px.shape[0]):
        x, y = px[p], py[p]
        c = False
        j = n - 1
        for i in range(n):
            xi, yi, xj, yj = ring[i, 0], ring[i, 1], ring[j, 0], ring[j, 1]
            if (yi > y) != (yj > y):
                if x < (xj - xi) * (y - yi) / (yj - yi) + xi:
                    c = not c
            j = i
        out[p] = c
    return out


@njit(cache=True)
def _near_segments(px, py, segs, r):
    out = np.zeros(px.shape[0], np.bool_)
    for p in range(px.shape[0]):
        for s in range(segs.shape[0]):
            if seg_point(px[p], py[p], segs[s, 0], segs[s, 1], segs[s, 2], segs[s, 3])[0] < r:
                out[p] = True
                break
    return out


def rasterise(g: VenueGeometry, h: float, open_exits: list[int] | None = None) -> Raster:
    """Rasterise at cell size ``h`` m: a cell is walkable if its centre lies in the venue or an open apron."""
    idx = list(range(len(g.exits))) if open_exits is None else list(open_exits)
    aprons = [g.exits[i].apron() for i in idx]
    pts = np.vstack([g.outer] + aprons)
    x0, y0 = pts.min(0) - h
    x1, y1 = pts.max(0) + h
    nx, ny = int(np.ceil((x1 - x0) / h)), int(np.ceil((y1 - y0) / h))
    cx = x0 + (np.arange(nx) + 0.5) * h
    cy = y0 + (np.arange(ny) + 0.5) * h
    X, Y = np.meshgrid(cx, cy)
    px, py = X.ravel(), Y.ravel()
    inside = _points_in_ring(px, py, g.outer)
    for o in g.obstacles:
        inside &= ~_points_in_ring(px, py, o)
    exit_id = np.full(px.shape, -1, np.int16)
    walk = inside.copy()
    for k, i in enumerate(idx):
        m = _points_in_ring(px, py, aprons[k]) & ~inside
        exit_id[m] = i
        walk |= m
    if g.walls:
        thin = np.vstack([np.column_stack([w[:-1], w[1:]]) for w in g.walls])
        blocked = _near_segments(px, py, thin, 0.75 * h)
        walk &= ~blocked
        inside &= ~blocked
    return Raster(float(x0), float(y0), float(h), walk.reshape(ny, nx), exit_id.reshape(ny, nx),
                  inside.reshape(ny, nx), g.wall_segments(idx))


def periodic_strip(length_m: float, width_m: float, h: float = 0.2) -> Raster:
    """The raster of a corridor that is periodic in x (0 <= x < ``length_m``) between two long walls at y = 0 and
    y = ``width_m``: no end walls, so agents leaving at one end come back at the other. Give ``length_m`` as
    ``periodic_lx_m`` to :class:`~agents.crowd.sim.VenueSim`."""
    if length_m <= 0 or width_m <= 0:
        raise ValueError(f"periodic strip needs a positive length and width, got {length_m} m x {width_m} m")
    g = VenueGeometry.build([(0, 0), (length_m, 0), (length_m, width_m), (0, width_m)])
    r = rasterise(g, h)
    r.walls = np.array([[-1.0, 0.0, length_m + 1.0, 0.0], [-1.0, width_m, length_m + 1.0, width_m]])
    return r


def lattice_points(raster: Raster, spacing: float, margin: float, mask: np.ndarray | None = None):
    """Square-lattice points (m) inside the venue at least ``margin`` m from walls (and in ``mask``)."""
    dw = wall_distance(raster.inside, raster.h)
    ok = raster.inside & (dw >= margin)
    if mask is not None:
        ok &= mask
    ny, nx = raster.shape
    xs = np.arange(raster.x0 + spacing / 2, raster.x0 + nx * raster.h, spacing)
    ys = np.arange(raster.y0 + spacing / 2, raster.y0 + ny * raster.h, spacing)
    X, Y = np.meshgrid(xs, ys)
    X, Y = X.ravel(), Y.ravel()
    iy, ix = raster.cell_of(X, Y)
    keep = ok[iy, ix]
    return X[keep], Y[keep]


# ---- loaders --------------------------------------------------------------------------------------
_NUM = r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?"


def parse_wkt_polygons(wkt: str) -> list[list[np.ndarray]]:
    """Parse WKT POLYGON/MULTIPOLYGON into a list of polygons, each a list of rings (first = shell)."""
    text = wkt.strip()
    head = text.split("(", 1)[0].strip().upper()
    if head not in ("POLYGON", "MULTIPOLYGON"):
        raise ValueError(f"WKT: expected POLYGON or MULTIPOLYGON, got {head!r}")
    body = text[len(text.split("(", 1)[0]):]
    polys: list[list[np.ndarray]] = []
    depth, cur_poly, buf = 0, None, ""
    poly_depth = 1 if head == "POLYGON" else 2
    for ch in body:
        if ch == "(":
            depth += 1
            if depth == poly_depth:
                cur_poly = []
            buf = ""
        elif ch == ")":
            if depth == poly_depth + 1:
                nums = [float(v) for v in re.findall(_NUM, buf)]
                cur_poly.append(np.array(nums, np.float64).reshape(-1, 2))
            if depth == poly_depth:
                polys.append(cur_poly)
            depth -= 1
            buf = ""
        else:
            buf += ch
    return polys


def load_geojson(path: str | Path) -> dict:
    """Read a venue GeoJSON (local metres): Polygons with property role walkable|obstacle, LineStrings with
    role wall, Points with role exit (properties name, width_m, optional node, exit_role, open). Returns VenueConfig-like keys."""
    data = json.loads(Path(path).read_text())
    feats = data["features"] if data.get("type") == "FeatureCollection" else [data]
    out: dict = {"polygon": None, "obstacles": [], "walls": [], "exits": []}
    for f in feats:
        props = f.get("properties") or {}
        geom = f["geometry"]
        role = props.get("role", "walkable" if geom["type"] == "Polygon" else "exit")
        if geom["type"] == "Polygon":
            rings = [np.asarray(r, np.float64)[:, :2].tolist() for r in geom["coordinates"]]
            if role == "walkable":
                out["polygon"] = rings[0]
                out["obstacles"] += rings[1:]
            else:
                out["obstacles"].append(rings[0])
        elif geom["type"] == "LineString":
            out["walls"].append(np.asarray(geom["coordinates"], np.float64)[:, :2].tolist())
        elif geom["type"] == "Point":
            e = {"name": props.get("name", f"exit{len(out['exits'])}"), "at": list(geom["coordinates"][:2]),
                 "width_m": float(props.get("width_m", 1.2))}
            for key, dst in (("node", "node"), ("exit_role", "role"), ("open", "open")):
                if key in props:
                    e[dst] = props[key]
            out["exits"].append(e)
    return out
