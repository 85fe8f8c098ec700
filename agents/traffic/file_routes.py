"""The route file's own paths for a run's trips (``traffic.routes_file``): edge lists as city link paths.

``load_sumo_trips`` (networks/sumo_routes.py) keeps only each entry's first and last edge (the SUMO back-end
routes every trip itself). This module reads the same file in the same order, with the same flow expansion and
the same random draws, and also keeps each entry's edges: a ``<route edges>`` as written; a ``from`` / ``via`` /
``to`` entry (Wildau's flows) as those waypoints joined by SUMO's fastest path on the network's own
connections (``sumolib``'s Dijkstra on free-flow times, passenger class), the way SUMO routes a trip with
``via`` without a rerouting device. Each trip of the run takes the entry with its departure, origin node and
destination node (:func:`match_file_paths`).

A full route over inner edges cars may not use (Bologna's bus lanes) keeps its other edges as waypoints. A route
with no passenger path at all (its first edge leads nowhere near its last one for cars), or a trip with no entry,
is routed as usual and counted (``routed_fallback``); :func:`links_of_edges` raises :class:`FileRouteError`
naming the route id.
"""
from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np

__all__ = ["FileRouteError", "read_route_edges", "match_file_paths", "links_of_edges"]


class FileRouteError(ValueError):
    """A route of the file cannot be driven on the city graph (unknown edge, gap, demand mismatch)."""


def read_route_edges(path: str | Path, city, rng: np.random.Generator | None = None) -> dict:
    """Every trip of a SUMO route file as ``load_sumo_trips`` gives it, with its entry's waypoint edges.

    Returns ``load_sumo_trips``'s arrays (``id``, ``depart_s``, ``origin``, ``destination``, ...) plus ``edges``
    (one edge-id list per trip, shared by a flow's trips; None for an entry that draws from a
    ``routeDistribution``, whose draw is not repeated here) and ``complete`` (bool per trip: a full route, not
    ``from``/``via``/``to`` waypoints). The entries are aligned with the trips by id (a flow's trips are
    ``<flow id>.<k>``), so the departures, flow expansion and skips are exactly ``load_sumo_trips``'s.
    """
    from networks.sumo_routes import load_sumo_trips

    tr = load_sumo_trips(path, city, rng)
    ids = tr["id"]
    edges_out: list[list[str] | None] = []
    complete: list[bool] = []
    k = 0
    for eid, is_flow, edges, full in _entries(path):
        if is_flow:
            j = 0
            while k < len(ids) and ids[k] == f"{eid}.{j}":
                edges_out.append(edges)
                complete.append(full)
                k += 1
                j += 1
        elif k < len(ids) and ids[k] == eid:
            edges_out.append(edges)
            complete.append(full)
            k += 1
    if k != len(ids):
        raise FileRouteError(f"{Path(path).name}: trip {ids[k]!r} matches no entry of the file in order")
    return {**tr, "edges": edges_out, "complete": np.array(complete, bool)}


def _entries(path: str | Path) -> list[tuple[str, bool, list[str] | None, bool]]:
    """(id, is a flow, edges or None, full route) of every ``<vehicle>``, ``<trip>`` and ``<flow>`` in file order:
    the edges of its own ``<route>``, a referenced route, or ``from`` / ``via`` / ``to`` (waypoints)."""
    from networks.sumo_net import open_network_file

    routes: dict[str, list[str]] = {}
    dists: set[str] = set()
    out: list[tuple[str, bool, list[str] | None, bool]] = []

    def edges_of(el: ET.Element) -> tuple[list[str] | None, bool]:
        child = el.find("route")
        if child is None:
            child = el.find("routeDistribution/route")
        edges = (child.get("edges", "") if child is not None else "").split()
        ref = el.get("route")
        if not edges and ref is not None:
            if ref in routes:
                edges = routes[ref]
            elif ref in dists:
                return None, True
        if edges:
            return edges, True
        if el.get("from") is not None:
            f = el.get("from", "").strip()
            t = (el.get("to") or el.get("from", "")).strip()
            return [f, *el.get("via", "").split(), t], False
        return [], True

    stack: list[ET.Element] = []
    with open_network_file(path) as f:
        for event, el in ET.iterparse(f, events=("start", "end")):
            if event == "start":
                stack.append(el)
                continue
            stack.pop()
            top = bool(stack) and stack[-1].tag in ("routes", "additional")
            if el.tag == "route" and top:
                routes[el.get("id", "")] = el.get("edges", "").split()
            elif el.tag == "routeDistribution" and top:
                dists.add(el.get("id", ""))
            elif el.tag in ("vehicle", "trip", "flow"):
                edges, full = edges_of(el)
                out.append((el.get("id", ""), el.tag == "flow", edges, full))
            if len(stack) == 1:
                stack[0].clear()
    return out


def _fastest_joiner(city):
    """A function (from edge id, to edge id) -> edge ids of SUMO's fastest passenger path (cached per pair)."""
    import sumolib

    net = sumolib.net.readNet(str(city.source), withInternal=False)
    cache: dict[tuple[str, str], list[str] | None] = {}

    def join(a: str, b: str) -> list[str] | None:
        if (a, b) not in cache:
            path, _ = net.getFastestPath(net.getEdge(a), net.getEdge(b), vClass="passenger")
            cache[(a, b)] = [e.getID() for e in path] if path else None
        return cache[(a, b)]
    return join


def _join_waypoints(edges: list[str], join) -> list[str] | None:
    """Waypoint edges joined leg by leg with ``join`` (None if a leg has no path or there is no ``join``)."""
    seq = [edges[0]]
    for b in edges[1:]:
        if b == seq[-1]:
            continue
        leg = join(seq[-1], b) if join is not None else None
        if not leg:
            return None
        seq.extend(leg[1:])
    return seq


def links_of_edges(city, route_id: str, edges: list[str], full: bool, join=None) -> np.ndarray:
    """A route's edge ids as city link indices, checked link to link; waypoints (``full`` False) joined by ``join``.

    With ``join``, a full route whose inner edges are not city links (edges closed to cars, e.g. Bologna's bus
    lanes) keeps its other edges as waypoints joined by ``join`` (the caller counts these repairs); without it,
    or when its first or last edge is not a city link, that is a :class:`FileRouteError`."""
    link_index = city.__dict__.setdefault("_link_index_cache", {lid: i for i, lid in enumerate(city.link_ids)})
    unknown = [e for e in edges if e not in link_index]
    if unknown and (join is None or edges[0] in unknown or edges[-1] in unknown):
        raise FileRouteError(f"route {route_id!r}: edge(s) {', '.join(unknown[:3])} are not links of the city "
                             f"(the city keeps the network's passenger edges)")
    if unknown:  # a full route over edges cars may not use (Bologna's bus lanes): the rest joined as waypoints
        edges, full = [e for e in edges if e in link_index], False
    if not full:
        seq = _join_waypoints(edges, join)
        if seq is None:  # a waypoint cars cannot reach from the one before: the fastest path first -> last edge
            seq = join(edges[0], edges[-1]) if join is not None and edges[0] != edges[-1] else None
            if not seq:
                raise FileRouteError(f"route {route_id!r}: no passenger path from edge {edges[0]!r} to "
                                     f"{edges[-1]!r}")
        edges = seq
        unknown = [e for e in edges if e not in link_index]
        if unknown:
            raise FileRouteError(f"route {route_id!r}: its path uses edge(s) {', '.join(unknown[:3])}, not links "
                                 f"of the city")
    p = np.array([link_index[e] for e in edges], np.int32)
    a = city.arrays
    gap = np.flatnonzero(a.link_to[p[:-1]] != a.link_from[p[1:]])
    if len(gap):
        i = int(gap[0])
        raise FileRouteError(f"route {route_id!r}: edge {edges[i]!r} does not lead to edge {edges[i + 1]!r} "
                             f"on the city graph")
    return p


def match_file_paths(path: str | Path, city, demand: dict, clock_offset_s: float = 0.0,
                     fallback: bool = True) -> tuple[list[np.ndarray | None], dict]:
    """The route file's path (city link indices) of each demand trip, matched by (departure, origin node,
    destination node); None for a trip with no match or whose route has no passenger path (routed, counted).

    The file's departures are taken as written or shifted by ``clock_offset_s`` (clock times, as
    ``twin.demand.clock_shift`` shifts them), whichever matches more trips. Trips sharing a key take that key's
    entries in file order (again from the first when there are more trips than entries, as a scaled-up demand
    has). Returns (paths, summary): trips, matched, full routes mapped as written, repaired (inner edges closed to
    cars), waypoint routes joined, routed fallbacks (with the first reasons), distinct routes."""
    tr = read_route_edges(path, city, np.random.default_rng(0))
    o, d = np.asarray(demand["origin"]), np.asarray(demand["destination"])
    dep = np.asarray(demand["depart_s"], np.float64)
    best: dict = {}
    for off in sorted({0.0, float(clock_offset_s)}):
        keys: dict[tuple[float, int, int], list[int]] = {}
        for j, k in enumerate(zip((tr["depart_s"] - off).tolist(), tr["origin"].tolist(),
                                  tr["destination"].tolist())):
            keys.setdefault(k, []).append(j)
        hits = sum((a, b, c) in keys for a, b, c in zip(dep.tolist(), o.tolist(), d.tolist()))
        if not best or hits > best["hits"]:
            best = {"hits": hits, "keys": keys}
    keys = best["keys"]
    used: dict[tuple[float, int, int], int] = {}
    src = np.full(len(o), -1, np.int64)
    for i, k in enumerate(zip(dep.tolist(), o.tolist(), d.tolist())):
        js = keys.get(k)
        if js:
            n = used.get(k, 0)
            src[i] = js[n % len(js)]
            used[k] = n + 1
    link_set = set(city.link_ids)
    mapped = np.array([s >= 0 and tr["edges"][s] is not None and bool(tr["complete"][s])
                       and all(e in link_set for e in tr["edges"][s]) for s in src], bool)
    join = None if mapped[src >= 0].all() else _fastest_joiner(city)
    memo: dict[int, np.ndarray | None] = {}
    failed: list[str] = []
    paths: list[np.ndarray | None] = []
    for s in src:
        if s < 0:
            paths.append(None)
            continue
        key = id(tr["edges"][s])  # flows share one list: one check per distinct route
        if key not in memo and tr["edges"][s] is None:  # drawn from a routeDistribution: not repeated, routed
            memo[key] = None
            failed.append(f"route {str(tr['id'][s])!r}: drawn from a routeDistribution (routed)")
        if key not in memo:
            try:
                memo[key] = links_of_edges(city, str(tr["id"][s]), tr["edges"][s], bool(tr["complete"][s]), join)
            except FileRouteError as exc:
                if not fallback:
                    raise
                memo[key] = None
                failed.append(str(exc))
        paths.append(memo[key])
    routed = np.array([p is None for p in paths], bool)
    full = np.array([s >= 0 and bool(tr["complete"][s]) for s in src], bool)
    summary = {"trips": len(o), "matched": int((src >= 0).sum()), "full_routes_mapped": int((mapped & ~routed).sum()),
               "full_routes_repaired": int((full & ~mapped & ~routed).sum()),
               "waypoint_routes_joined": int((~full & (src >= 0) & ~routed).sum()),
               "routed_fallback": int(routed.sum()), "routed_fallback_examples": failed[:3],
               "distinct_routes": len(memo)}
    return paths, summary
