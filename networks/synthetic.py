"""Synthetic city graphs for tests and toy scenarios: a grid, a radial city, a corridor.

All coordinates are metres in a local plane (lon/lat NaN), links carry the standard attributes
(``id``, ``length_m``, ``lanes``, ``speed_mps``, ``capacity_vph``, ``road_class``, ``shape``).
"""
from __future__ import annotations

import math

import networkx

from networks.graph import CityGraph

__all__ = ["grid", "radial", "line"]

_NAN = float("nan")


def _node(G: networkx.MultiDiGraph, nid: str, x: float, y: float) -> None:
    G.add_node(nid, x=float(x), y=float(y), lon=_NAN, lat=_NAN, signal=False)


def _link(G: networkx.MultiDiGraph, u: str, v: str, lanes: int, speed_mps: float,
          capacity_vph: float, road_class: str) -> None:
    """Add the straight link u -> v with id 'u>v' and length = Euclidean distance (m)."""
    (xu, yu), (xv, yv) = (G.nodes[u]["x"], G.nodes[u]["y"]), (G.nodes[v]["x"], G.nodes[v]["y"])
    G.add_edge(u, v, id=f"{u}>{v}", length_m=math.hypot(xv - xu, yv - yu), lanes=int(lanes),
               speed_mps=float(speed_mps), capacity_vph=float(capacity_vph), road_class=road_class,
               shape=[(xu, yu), (xv, yv)])


def _city(G: networkx.MultiDiGraph, name: str, source: str) -> CityGraph:
    city = CityGraph(G, name=name)
    city.source = source
    city.lonlat_to_xy = None
    return city


def grid(nx: int, ny: int, spacing_m: float = 200.0, lanes: int = 1, speed_mps: float = 13.89,
         capacity_per_lane_vph: float = 1800.0, name: str = "grid") -> CityGraph:
    """An ``nx`` x ``ny`` grid: nodes 'n{i}_{j}' at (i, j) * spacing_m, two directed links per neighbour pair."""
    if nx < 1 or ny < 1:
        raise ValueError("grid needs at least one node in each direction")
    G = networkx.MultiDiGraph()
    for i in range(nx):
        for j in range(ny):
            _node(G, f"n{i}_{j}", i * spacing_m, j * spacing_m)
    cap = lanes * capacity_per_lane_vph
    for i in range(nx):
        for j in range(ny):
            u = f"n{i}_{j}"
            for di, dj in ((1, 0), (-1, 0), (0, 1), (0, -1)):
                a, b = i + di, j + dj
                if 0 <= a < nx and 0 <= b < ny:
                    _link(G, u, f"n{a}_{b}", lanes, speed_mps, cap, "residential")
    return _city(G, name, f"synthetic.grid({nx}, {ny}, spacing_m={spacing_m})")


def radial(rings: int, spokes: int, ring_spacing_m: float = 500.0, ring_lanes: int = 1,
           spoke_lanes: int = 2, ring_speed_mps: float = 13.89, spoke_speed_mps: float = 16.67,
           capacity_per_lane_vph: float = 1800.0, name: str = "radial") -> CityGraph:
    """A radial city: centre 'c', ring nodes 'r{k}_{s}' (ring k = 1..rings, spoke s) at k * ring_spacing_m.

    Spokes are 'arterial' roads (``spoke_lanes`` lanes, faster); rings are 'residential' single-lane
    roads joining neighbouring spokes with straight chords. Every road is two-way.
    """
    if rings < 1 or spokes < 3:
        raise ValueError("radial needs rings >= 1 and spokes >= 3")
    G = networkx.MultiDiGraph()
    _node(G, "c", 0.0, 0.0)
    for k in range(1, rings + 1):
        for s in range(spokes):
            ang = 2.0 * math.pi * s / spokes
            _node(G, f"r{k}_{s}", k * ring_spacing_m * math.cos(ang), k * ring_spacing_m * math.sin(ang))
    spoke_cap, ring_cap = spoke_lanes * capacity_per_lane_vph, ring_lanes * capacity_per_lane_vph
    for s in range(spokes):
        for k in range(1, rings + 1):
            inner = "c" if k == 1 else f"r{k - 1}_{s}"
            for u, v in ((inner, f"r{k}_{s}"), (f"r{k}_{s}", inner)):
                _link(G, u, v, spoke_lanes, spoke_speed_mps, spoke_cap, "arterial")
    for k in range(1, rings + 1):
        for s in range(spokes):
            a, b = f"r{k}_{s}", f"r{k}_{(s + 1) % spokes}"
            for u, v in ((a, b), (b, a)):
                _link(G, u, v, ring_lanes, ring_speed_mps, ring_cap, "residential")
    return _city(G, name, f"synthetic.radial({rings}, {spokes}, ring_spacing_m={ring_spacing_m})")


def line(n_links: int, length_m: float = 500.0, lanes: int = 1, speed_mps: float = 13.89,
         capacity_per_lane_vph: float = 1800.0, bottleneck: dict | None = None,
         name: str = "line") -> CityGraph:
    """A one-way corridor c0 -> c1 -> ... -> c{n_links}; link ids 'c{i}>c{i+1}'.

    ``bottleneck={"index": k, "capacity_vph": c}`` gives link k capacity c veh/h (queue-theory tests).
    """
    if n_links < 1:
        raise ValueError("line needs at least one link")
    G = networkx.MultiDiGraph()
    for i in range(n_links + 1):
        _node(G, f"c{i}", i * length_m, 0.0)
    for i in range(n_links):
        _link(G, f"c{i}", f"c{i + 1}", lanes, speed_mps, lanes * capacity_per_lane_vph, "residential")
    if bottleneck is not None:
        k = int(bottleneck["index"])
        if not 0 <= k < n_links:
            raise ValueError(f"bottleneck index {k} outside 0..{n_links - 1}")
        G.edges[f"c{k}", f"c{k + 1}", 0]["capacity_vph"] = float(bottleneck["capacity_vph"])
    return _city(G, name, f"synthetic.line({n_links}, length_m={length_m})")
