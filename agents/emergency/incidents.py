"""Incidents: the record of one call, where calls come from (Poisson per zone and type, a calls file).

Generated calls are a non-homogeneous Poisson process per zone and type: the city-wide rate per type
times the hour-of-day profile, split over zones by population (or building weight) and over a zone's
nodes by node weight. Splitting a Poisson process gives independent Poisson processes per zone.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["Incident", "DemandPoints", "demand_points", "CallSchedule", "poisson_schedule", "read_calls"]


@dataclass
class Incident:
    """One call and what happened to it (times in s from scenario start; NaN until it happens)."""

    id: int
    type: str
    node: int
    call_s: float
    zone: int = -1
    source: str = "generated"  # "generated" | "file" | "bus:<kind>"
    priority: int = 1
    target_s: float = 600.0  # NaN: no target (e.g. patient transport)
    on_scene_s: float = 0.0  # drawn at creation (common random numbers across variants)
    transport_u: float = 1.0  # uniform draw: transport if < transport_prob
    dispatch_s: float = math.nan  # first unit dispatched
    arrival_s: float = math.nan  # first unit on scene
    clear_s: float = math.nan  # last unit clear of the scene
    hospital: int = -1  # hospital index the patient went to
    units: list[int] = field(default_factory=list)  # unit indices dispatched
    needed: int = 0  # unit requests made
    unreachable: int = 0  # requests no unit could reach
    queued: int = 0  # requests waiting for a unit now

    @property
    def status(self) -> str:
        """served / unreachable / waiting (a request queued) / open (dispatched, not yet on scene)."""
        if not math.isnan(self.arrival_s):
            return "served"
        if self.needed and self.unreachable == self.needed:
            return "unreachable"
        return "waiting" if self.queued or math.isnan(self.dispatch_s) else "open"


@dataclass(frozen=True)
class DemandPoints:
    """Where incidents happen and whom coverage counts: node, weight within its zone, zone index."""

    node: np.ndarray  # int32[P]
    weight: np.ndarray  # float64[P]: share of its zone (sums to 1 per zone)
    zone: np.ndarray  # int32[P]
    zone_ids: list[str]
    zone_weight: np.ndarray  # float64[Z]: population share (sums to 1)


def demand_points(city: Any) -> DemandPoints:
    """Demand points from ``city.zones`` (population, else node weights), or one zone of all nodes."""
    zones = list(getattr(city, "zones", {}).values())
    if not zones:
        n = city.arrays.n_nodes
        return DemandPoints(np.arange(n, dtype=np.int32), np.full(n, 1.0 / n), np.zeros(n, np.int32),
                            ["city"], np.ones(1))
    use_pop = any(zone.population > 0 for zone in zones)
    nodes, w, z, zw = [], [], [], []
    for k, zone in enumerate(zones):
        zn = np.asarray(zone.nodes, np.int32)
        ww = np.asarray(zone.weights, np.float64) if len(zone.weights) == len(zn) else np.ones(len(zn))
        ww = ww if ww.sum() > 0 else np.ones(len(zn))
        nodes.append(zn)
        w.append(ww / ww.sum() if len(zn) else ww)
        z.append(np.full(len(zn), k, np.int32))
        size = float(zone.population) if use_pop else float(ww.sum())
        zw.append(size if len(zn) else 0.0)
    zw_a = np.asarray(zw)
    return DemandPoints(np.concatenate(nodes), np.concatenate(w), np.concatenate(z),
                        [str(zone.id) for zone in zones], zw_a / zw_a.sum())


@dataclass(frozen=True)
class CallSchedule:
    """Calls known in advance, sorted by time: time (s), type name, node index, zone index, source."""

    time_s: np.ndarray
    type: list[str]
    node: np.ndarray
    zone: np.ndarray
    source: str

    def __len__(self) -> int:
        return len(self.time_s)


def poisson_schedule(rates_per_day: dict[str, float], profile: list[float], dp: DemandPoints,
                     duration_s: float, rng: np.random.Generator, start_hour: float = 0.0) -> CallSchedule:
    """Poisson calls over ``[0, duration_s)``: rate (per day) x hour-of-day profile (mean-normalised).

    Each hour-of-day piece gets Poisson(rate x length) calls at uniform times; each call picks a zone
    by population share, then a node by weight within the zone.
    """
    prof = np.asarray(profile, np.float64)
    prof = prof / prof.mean()
    start_s = start_hour * 3600.0
    # piece boundaries: scenario time where the hour of day changes
    first = math.ceil(start_s / 3600.0 + 1e-12) * 3600.0 - start_s
    edges = np.concatenate([[0.0], np.arange(first, duration_s, 3600.0), [duration_s]])
    edges = np.unique(edges[(edges >= 0) & (edges <= duration_s)])
    times, types = [], []
    for name, rate in rates_per_day.items():
        if rate <= 0:
            continue
        for a, b in zip(edges[:-1], edges[1:]):
            hour = int(((start_s + a) // 3600.0) % 24)
            n = rng.poisson(rate / 86400.0 * prof[hour] * (b - a))
            if n:
                times.append(rng.uniform(a, b, n))
                types.extend([name] * n)
    if not times:
        return CallSchedule(np.empty(0), [], np.empty(0, np.int32), np.empty(0, np.int32), "generated")
    t = np.concatenate(times)
    order = np.argsort(t, kind="stable")
    t = t[order]
    types = [types[i] for i in order]
    zone = rng.choice(len(dp.zone_weight), size=len(t), p=dp.zone_weight).astype(np.int32)
    node = np.empty(len(t), np.int32)
    for z in np.unique(zone):
        sel = np.flatnonzero(zone == z)
        pts = np.flatnonzero(dp.zone == z)
        node[sel] = dp.node[rng.choice(pts, size=len(sel), p=dp.weight[pts])]
    return CallSchedule(t, types, node, zone, "generated")


def _parse_time(v: Any) -> float:
    """Seconds from a number or 'HH:MM[:SS]'."""
    if isinstance(v, str) and ":" in v:
        parts = [float(p) for p in v.split(":")]
        return parts[0] * 3600 + parts[1] * 60 + (parts[2] if len(parts) > 2 else 0.0)
    return float(v)


def read_calls(path: str | Path, city: Any, types: set[str], dp: DemandPoints | None = None) -> CallSchedule:
    """Calls from a CSV: ``time_s`` (or ``time`` as s or HH:MM:SS), ``type``, and ``node`` or ``x,y`` (m).

    Raises ValueError naming the row and column for an unknown type or node.
    """
    import pandas as pd

    from agents.emergency.resources import resolve_node

    df = pd.read_csv(path, dtype={"node": str} if "node" in pd.read_csv(path, nrows=0).columns else None)
    tcol = "time_s" if "time_s" in df.columns else "time" if "time" in df.columns else None
    if tcol is None or "type" not in df.columns:
        raise ValueError(f"{path}: needs columns time_s (or time), type, and node or x,y")
    node_of_zone = {}
    if dp is not None:
        node_of_zone = dict(zip(dp.node.tolist(), dp.zone.tolist()))
    times, tys, nodes = [], [], []
    for i, row in enumerate(df.itertuples(index=False)):
        r = row._asdict()
        if r["type"] not in types:
            raise ValueError(f"{path}: row {i + 2}: type {r['type']!r} — use one of {sorted(types)}")
        node = r.get("node")
        try:
            if node is not None and isinstance(node, str) and node != "":
                idx = resolve_node(city, node)
            else:
                idx = resolve_node(city, None, r["x"], r["y"])
        except (KeyError, TypeError, ValueError):
            raise ValueError(f"{path}: row {i + 2}: node {node!r} — not a node of the city; "
                             "use a node id or x/y") from None
        times.append(_parse_time(r[tcol]))
        tys.append(str(r["type"]))
        nodes.append(idx)
    t = np.asarray(times, np.float64)
    order = np.argsort(t, kind="stable")
    node_a = np.asarray(nodes, np.int32)[order]
    zone = np.asarray([node_of_zone.get(int(n), -1) for n in node_a], np.int32)
    return CallSchedule(t[order], [tys[i] for i in order], node_a, zone, "file")
