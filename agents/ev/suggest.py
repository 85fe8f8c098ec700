"""Propose new charger sites from simulated unmet demand (where EVs needed a charge and got none, gave up,
ran flat, or wanted one at a destination with no station near): greedy maximum coverage on city nodes."""
from __future__ import annotations

import numpy as np
import xarray as xr

__all__ = ["suggest_chargers", "as_variant"]


def _demand_points(ds: xr.Dataset) -> tuple[np.ndarray, np.ndarray]:
    """Node indices and weights (kWh) of unmet demand in an EV results Dataset."""
    need = ds["ev_need_node"].values
    unmet_kwh = np.maximum(ds["ev_requested"].values - ds["ev_energy"].values, 0.0)
    bad = (need >= 0) & ((ds["ev_unserved"].values > 0) | (ds["ev_abandoned"].values > 0) | (ds["ev_ran_flat"].values > 0))
    wish = ds["ev_wish_node"].values
    nodes = np.concatenate([need[bad], wish[wish >= 0]]).astype(np.int64)
    w = np.concatenate([np.maximum(unmet_kwh[bad], 1.0), ds["ev_wish_energy"].values[wish >= 0]])
    return nodes, w


def suggest_chargers(results: xr.Dataset, city, k: int = 3, radius_m: float = 1000.0, plugs: int = 4,
                     power_kw: float = 22.0, min_spacing_m: float | None = None) -> list[dict]:
    """``k`` sites (dicts: node id, node_index, x, y (m), score (kWh of unmet demand covered), plugs, power_kw).

    ``results`` is one run's Dataset (variables ev_need_node, ev_wish_node, ...). A point counts as covered by
    a site within ``radius_m`` (straight line); existing stations already cover their surroundings; sites are
    at least ``min_spacing_m`` (default ``radius_m``) apart. Candidates are routable nodes.
    """
    a = city.arrays
    pts, w = _demand_points(results)
    if pts.size == 0 or k <= 0:
        return []
    px, py = a.node_x[pts], a.node_y[pts]
    if "station_x" in results:
        for sx, sy in zip(results["station_x"].values, results["station_y"].values):
            w = np.where(np.hypot(px - sx, py - sy) <= radius_m, 0.0, w)
    cand = np.flatnonzero(city.largest_component_mask())
    spacing = radius_m if min_spacing_m is None else min_spacing_m
    out: list[dict] = []
    for _ in range(k):
        if w.sum() <= 0 or cand.size == 0:
            break
        cx, cy = a.node_x[cand], a.node_y[cand]
        cover = np.hypot(cx[:, None] - px[None, :], cy[:, None] - py[None, :]) <= radius_m
        score = cover.astype(float) @ w
        j = int(np.argmax(score))
        if score[j] <= 0:
            break
        v = int(cand[j])
        out.append({"node": str(city.node_ids[v]), "node_index": v, "x": float(a.node_x[v]), "y": float(a.node_y[v]),
                    "score": float(score[j]), "plugs": plugs, "power_kw": power_kw})
        w = np.where(cover[j], 0.0, w)
        cand = cand[np.hypot(cx - a.node_x[v], cy - a.node_y[v]) >= spacing]
    return out


def as_variant(suggestions: list[dict], existing_extra: list[dict] | None = None) -> dict:
    """Variant override adding the suggested sites: ``{"ev": {"extra_stations": [...]}}`` (lists replace, so
    the baseline's own ``extra_stations`` are kept in front)."""
    extra = list(existing_extra or [])
    extra += [{"id": f"suggested{k}", "node": s["node"], "plugs": s["plugs"], "power_kw": s["power_kw"]}
              for k, s in enumerate(suggestions)]
    return {"ev": {"extra_stations": extra}}
