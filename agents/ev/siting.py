"""Where stations are and how far every node is from them: build stations from the scenario or from the
OpenStreetMap charging POIs, and travel-time tables node <-> station (reverse/forward Dijkstra, scipy).
"""
from __future__ import annotations

import re

import numpy as np
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import dijkstra

from agents.ev.config import EVConfig, StationSpec

__all__ = ["station_rows", "osm_station_rows", "fill_rows", "node_weights", "times_tables"]


def _kw(value: str) -> float | None:
    m = re.search(r"([\d.]+)", str(value))
    return float(m.group(1)) if m else None


def osm_station_rows(city, cfg: EVConfig) -> list[dict]:
    """Stations from ``city.pois`` (kind charging_station): plugs from socket:*/capacity tags, power from *:output."""
    rows = []
    for k, p in enumerate(q for q in city.pois if q.get("kind") == "charging_station"):
        tags = p.get("tags", {}) or {}
        sockets = [int(v) for key, v in tags.items()
                   if re.fullmatch(r"socket:[^:]+", key) and str(v).isdigit()]
        plugs = sum(sockets) or (int(tags["capacity"]) if str(tags.get("capacity", "")).isdigit() else cfg.osm_default_plugs)
        powers = [_kw(v) for key, v in tags.items() if re.fullmatch(r"socket:[^:]+:output", key)]
        powers = [x for x in powers if x]
        rows.append({"id": f"osm{k}", "name": p.get("name") or tags.get("operator") or f"charger {k}",
                     "x": float(p["x"]), "y": float(p["y"]), "plugs": max(plugs, 1),
                     "power_kw": max(powers) if powers else cfg.osm_default_power_kw, "limit_kw": None})
    return rows


def _spec_row(city, s: StationSpec, k: int) -> dict:
    if s.node is not None:
        node = city.node_index(s.node) if (city.has_node(s.node) or isinstance(s.node, int)) else city.node_index(str(s.node))
        x, y = float(city.arrays.node_x[node]), float(city.arrays.node_y[node])
    elif s.x is not None and s.y is not None:
        x, y = s.x, s.y
    else:
        x, y = city.lonlat_to_xy(s.lon, s.lat)
    row = {"id": s.id or f"s{k}", "name": s.name or s.id or f"station {k}", "x": float(x), "y": float(y),
           "plugs": s.plugs, "power_kw": s.power_kw, "limit_kw": s.limit_kw}
    if s.node is not None:
        row["node"] = node
    return row


def station_rows(city, cfg: EVConfig) -> list[dict]:
    """All stations of a run as dicts (id, name, node, x, y, plugs, power_kw, limit_kw), nodes routable."""
    rows = [_spec_row(city, s, k) for k, s in enumerate(cfg.stations)]
    if not rows and cfg.osm_stations:
        rows = osm_station_rows(city, cfg)
    rows += [_spec_row(city, s, len(rows) + k) for k, s in enumerate(cfg.extra_stations)]
    rows += fill_rows(city, cfg, rows)
    mask = city.largest_component_mask()
    a = city.arrays
    for r in rows:
        if "node" not in r or not mask[r["node"]]:
            d2 = (a.node_x - r["x"]) ** 2 + (a.node_y - r["y"]) ** 2
            d2[~mask] = np.inf
            r["node"] = int(np.argmin(d2))
        r["plugs"] = max(int(r["plugs"]), cfg.min_plugs)
        if r["limit_kw"] is None and cfg.station_limit_kw is not None:
            r["limit_kw"] = cfg.station_limit_kw
    ids = [r["id"] for r in rows]
    if len(set(ids)) != len(ids):
        raise ValueError(f"ev: station ids are not unique: {ids}")
    return rows


def node_weights(city) -> np.ndarray:
    """Weight of every node: the building floor area (or 1 per node) the city's zones give it, summed."""
    w = np.zeros(len(city.node_ids))
    for z in city.zones.values():
        np.add.at(w, np.asarray(z.nodes, np.int64), np.asarray(z.weights, float))
    return w if w.sum() > 0 else np.ones(len(city.node_ids))


def fill_rows(city, cfg: EVConfig, rows: list[dict]) -> list[dict]:
    """New sites that bring the town's public plugs up to ``town_ac_plugs`` / ``town_dc_plugs``.

    Greedy maximal covering: each new site goes to the routable node with the most not-yet-covered node weight
    (building floor area) within ``walk_m``; that weight then counts as covered. Deterministic (no random draws).
    """
    mask = city.largest_component_mask()
    a = city.arrays
    xy = np.column_stack([a.node_x, a.node_y])
    w = node_weights(city)
    covered = np.zeros(len(w), bool)
    for r in rows:
        covered |= (xy[:, 0] - r["x"]) ** 2 + (xy[:, 1] - r["y"]) ** 2 <= cfg.walk_m ** 2
    from scipy.spatial import cKDTree

    tree = cKDTree(xy)
    cand = np.flatnonzero(mask)
    nbrs = tree.query_ball_point(xy[cand], cfg.walk_m)
    out: list[dict] = []
    for kind, total, (n_site, kw) in (("ac", cfg.town_ac_plugs, cfg.fill_ac_site), ("dc", cfg.town_dc_plugs, cfg.fill_dc_site)):
        have = sum(int(max(r["plugs"], cfg.min_plugs)) for r in rows + out if (r["power_kw"] > 22.0) == (kind == "dc"))
        missing = max(int(total or 0) - have, 0)
        k = 0
        while missing > 0:
            gain = np.array([w[nb][~covered[nb]].sum() for nb in nbrs])
            j = int(np.argmax(gain))
            node = int(cand[j])
            covered[nbrs[j]] = True
            plugs = min(n_site, missing)
            out.append({"id": f"fill_{kind}{k}", "name": f"added {kind.upper()} site {k} (town density)",
                        "x": float(xy[node, 0]), "y": float(xy[node, 1]), "node": node, "plugs": plugs,
                        "power_kw": float(kw), "limit_kw": None})
            missing -= plugs
            k += 1
    return out


def times_tables(city, link_cost_s: np.ndarray, nodes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(to, from): ``to[k, v]`` = travel time (s) from node v to ``nodes[k]``; ``from[k, v]`` = from nodes[k] to v.

    Parallel links keep their cheapest cost; closed links (inf) are left out.
    """
    a = city.arrays
    ok = np.isfinite(link_cost_s)
    u, v, w = a.link_from[ok], a.link_to[ok], np.maximum(link_cost_s[ok], 1e-3)
    order = np.lexsort((w, v, u))
    u, v, w = u[order], v[order], w[order]
    first = np.ones(u.size, bool)
    first[1:] = (u[1:] != u[:-1]) | (v[1:] != v[:-1])
    u, v, w = u[first], v[first], w[first]
    n = a.n_nodes
    g = csr_matrix((w, (u, v)), shape=(n, n))
    uniq, inv = np.unique(nodes, return_inverse=True)
    fwd = dijkstra(g, directed=True, indices=uniq)
    rev = dijkstra(g.T.tocsr(), directed=True, indices=uniq)
    return rev[inv], fwd[inv]
