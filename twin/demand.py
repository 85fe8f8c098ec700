"""Background car demand: trips (origin node, destination node, departure time) from a scenario's ``demand:``.

Trips are generated zone to zone (gravity or uniform choice of destination, nodes inside a zone chosen by
their weights, e.g. building floor area), from an OD matrix CSV, or read from a trip list (CSV or SUMO
routes). Departure times follow a time-of-day profile. All randomness comes from the generator passed in.
"""
from __future__ import annotations

import csv
import sys
from pathlib import Path

import numpy as np

from networks import CityGraph
from twin.scenario import DemandConfig, ScenarioError

__all__ = ["generate_trips", "profile_weights", "PROFILES", "clock_shift", "demand_errors"]

# Relative trip rates by clock hour (0..23). "weekday" follows the typical urban weekday curve
# (morning and evening peaks); the peak profiles are its halves with the off-peak damped.
_WEEKDAY = [0.8, 0.5, 0.4, 0.4, 0.7, 2.0, 4.5, 7.5, 7.0, 5.0, 4.8, 5.0, 5.5, 5.5, 5.8, 6.8, 8.2, 8.8,
            7.5, 5.5, 4.0, 3.0, 2.2, 1.4]
PROFILES: dict[str, list[float]] = {
    "flat": [1.0] * 24,
    "weekday": _WEEKDAY,
    "evening_peak": [w if 15 <= h <= 19 else 0.3 * w for h, w in enumerate(_WEEKDAY)],
    "morning_peak": [w if 6 <= h <= 9 else 0.3 * w for h, w in enumerate(_WEEKDAY)],
}


def profile_weights(profile, start_hour: float, t_s: np.ndarray) -> np.ndarray:
    """Relative departure rate at times ``t_s`` (s from t=0, whose clock time is ``start_hour``)."""
    if isinstance(profile, str):
        table = np.asarray(PROFILES[profile], float)
    else:  # [[hour, weight], ...]: piecewise constant from each hour until the next listed one
        pairs = sorted((float(h), float(w)) for h, w in profile)
        table = np.zeros(24)
        for h in range(24):
            prev = [w for hh, w in pairs if hh <= h]
            table[h] = prev[-1] if prev else pairs[-1][1]
    hours = np.floor((start_hour + t_s / 3600.0) % 24).astype(int)
    return table[hours]


def _departures(n: int, cfg: DemandConfig, start_hour: float, t0: float, t1: float, rng) -> np.ndarray:
    """``n`` sorted departure times in [t0, t1) following the profile (inverse CDF over 60 s bins)."""
    edges = np.arange(t0, t1 + 60.0, 60.0)
    edges[-1] = t1
    mids = 0.5 * (edges[:-1] + edges[1:])
    w = profile_weights(cfg.profile, start_hour, mids) * np.diff(edges)
    if w.sum() <= 0:
        w = np.diff(edges)
    cdf = np.concatenate([[0.0], np.cumsum(w) / w.sum()])
    u = np.sort(rng.random(n))
    return np.interp(u, cdf, edges)


def _zone_arrays(city: CityGraph):
    zones = list(city.zones.values())
    if not zones:
        raise ValueError(f"city {city.name!r} has no zones to generate demand in")
    a = city.arrays
    W = np.array([z.weights.sum() for z in zones])
    cx = np.array([np.average(a.node_x[z.nodes], weights=z.weights + 1e-12) for z in zones])
    cy = np.array([np.average(a.node_y[z.nodes], weights=z.weights + 1e-12) for z in zones])
    return zones, W, cx, cy


def _pick_nodes(zones, zidx: np.ndarray, rng) -> np.ndarray:
    out = np.empty(len(zidx), np.int32)
    for z in np.unique(zidx):
        sel = np.flatnonzero(zidx == z)
        zz = zones[z]
        p = zz.weights / zz.weights.sum() if zz.weights.sum() > 0 else None
        out[sel] = rng.choice(zz.nodes, size=len(sel), p=p)
    return out


def _gravity(n: int, cfg: DemandConfig, city: CityGraph, rng) -> tuple[np.ndarray, np.ndarray]:
    zones, W, cx, cy = _zone_arrays(city)
    po = W / W.sum()
    oz = rng.choice(len(zones), size=n, p=po)
    dz = np.empty(n, np.int64)
    dist_km = np.hypot(cx[:, None] - cx[None, :], cy[:, None] - cy[None, :]) / 1000.0
    for z in np.unique(oz):
        sel = np.flatnonzero(oz == z)
        if cfg.model == "gravity":
            w = W * np.exp(-cfg.distance_decay_per_km * dist_km[z])
        else:
            w = W.copy()
        dz[sel] = rng.choice(len(zones), size=len(sel), p=w / w.sum())
    o = _pick_nodes(zones, oz, rng)
    d = _pick_nodes(zones, dz, rng)
    same = np.flatnonzero(o == d)
    for _ in range(20):  # a trip needs two different nodes: redraw the destination
        if len(same) == 0:
            break
        d[same] = _pick_nodes(zones, dz[same], rng)
        same = same[o[same] == d[same]]
    keep = o != d
    return o[keep], d[keep]


def _read_csv(path: Path, cols: tuple[str, ...], source: str) -> list[dict]:
    with open(path, newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    if rows and not set(cols) <= set(rows[0]):
        raise ScenarioError(source, [f"{path.name}: columns {sorted(rows[0])} — need {', '.join(cols)}"])
    return rows


def _hms(t_s: float) -> str:
    t = int(round(t_s))
    return f"{t // 3600:02d}:{t // 60 % 60:02d}:{t % 60:02d}"


def clock_shift(dep: np.ndarray, t0: float, t1: float, start_hour: float, what: str,
                source: str = "scenario") -> tuple[np.ndarray, str | None]:
    """Departures of a trip file in run time (s from the scenario start): shift clock times, refuse empty files.

    A file whose departures are clock times (e.g. 54,000-57,600 s for 15:00-16:00) is shifted by the
    scenario's clock start (``time.start``) when more of its trips then fall in the demand window [t0, t1);
    the message returned says so. A file with no trip at all, or none in the window either way, raises
    :class:`ScenarioError` naming ``what``, its departure range and both windows (nothing runs zero trips).
    """
    dep = np.asarray(dep, float)
    off = 3600.0 * float(start_hour)
    if len(dep) == 0:
        raise ScenarioError(source, [f"{what}: no trip with a fixed departure time on links of the city "
                                     f"(the file's edges must be passenger edges of the city's network)"])
    n_run = int(((dep >= t0) & (dep < t1)).sum())
    n_clk = int(((dep - off >= t0) & (dep - off < t1)).sum()) if off > 0 else 0
    lo, hi = float(dep.min()), float(dep.max())
    if max(n_run, n_clk) == 0:
        raise ScenarioError(source, [
            f"{what}: departures {lo:,.0f}-{hi:,.0f} s lie outside the demand window {t0:,.0f}-{t1:,.0f} s "
            f"from the scenario start, and outside it in clock time too ({_hms(off + t0)}-{_hms(off + t1)} = "
            f"{off + t0:,.0f}-{off + t1:,.0f} s); set time.start / time.duration_s to cover them"])
    if n_clk > n_run:
        return dep - off, (f"{what}: departures {lo:,.0f}-{hi:,.0f} s are clock times ({_hms(lo)}-{_hms(hi)}); "
                           f"shifted by -{off:,.0f} s to the scenario start {_hms(off)}: {n_clk} of {len(dep)} trips "
                           f"fall in the demand window")
    return dep, None


def generate_trips(cfg: DemandConfig, city: CityGraph, rng: np.random.Generator, duration_s: float,
                   start_hour: float, resolve=lambda p: Path(p), source: str = "scenario") -> dict[str, np.ndarray]:
    """Trips as arrays ``origin``, ``destination`` (node indices, int32) and ``depart_s`` (sorted, float64)."""
    t0 = cfg.start_s
    t1 = min(cfg.end_s if cfg.end_s is not None else duration_s, duration_s)
    if cfg.trips_file:
        path = resolve(cfg.trips_file)
        if path.name.endswith((".xml", ".xml.gz")):
            from networks.sumo_routes import load_sumo_trips

            tr = load_sumo_trips(path, city, rng)
            o, d, dep = tr["origin"].astype(np.int32), tr["destination"].astype(np.int32), tr["depart_s"].astype(float)
        else:
            rows = _read_csv(path, ("depart_s", "origin", "destination"), source)
            try:
                o = np.array([city.node_index(r["origin"]) for r in rows], np.int32)
                d = np.array([city.node_index(r["destination"]) for r in rows], np.int32)
            except KeyError as exc:
                raise ScenarioError(source, [f"demand.trips_file: {exc.args[0]}"]) from None
            dep = np.array([float(r["depart_s"]) for r in rows])
        dep, msg = clock_shift(dep, t0, t1, start_hour, f"demand.trips_file {cfg.trips_file}", source)
        if msg:
            print(msg, file=sys.stderr)
        if cfg.scale != 1.0 and len(o):
            m = int(round(len(o) * cfg.scale))
            pick = np.sort(rng.choice(len(o), size=m, replace=cfg.scale > 1.0))
            o, d, dep = o[pick], d[pick], dep[pick]
        keep = (dep >= t0) & (dep < t1) & (o != d)
        order = np.argsort(dep[keep], kind="stable")
        return {"origin": o[keep][order], "destination": d[keep][order], "depart_s": dep[keep][order]}
    if cfg.od_file:
        rows = _read_csv(resolve(cfg.od_file), ("origin_zone", "destination_zone", "trips"), source)
        os_, ds_ = [], []
        for r in rows:
            zo, zd = city.zones.get(r["origin_zone"]), city.zones.get(r["destination_zone"])
            if zo is None or zd is None:
                bad = r["origin_zone"] if zo is None else r["destination_zone"]
                raise ScenarioError(source, [f"demand.od_file: zone {bad!r} — not a zone of the city "
                                             f"(zones: {', '.join(list(city.zones)[:5])}, ...)"])
            k = int(round(float(r["trips"]) * cfg.scale))
            os_.append(_pick_nodes([zo], np.zeros(k, int), rng))
            ds_.append(_pick_nodes([zd], np.zeros(k, int), rng))
        o = np.concatenate(os_) if os_ else np.zeros(0, np.int32)
        d = np.concatenate(ds_) if ds_ else np.zeros(0, np.int32)
        keep = o != d
        o, d = o[keep], d[keep]
        perm = rng.permutation(len(o))
        o, d = o[perm], d[perm]
    else:
        n = int(round(cfg.trips * cfg.scale))
        o, d = _gravity(n, cfg, city, rng) if n else (np.zeros(0, np.int32), np.zeros(0, np.int32))
    dep = _departures(len(o), cfg, start_hour, t0, t1, rng)
    return {"origin": o.astype(np.int32), "destination": d.astype(np.int32), "depart_s": dep}


def demand_errors(cfg: DemandConfig, city: CityGraph, resolve, time=None) -> list[str]:
    """Problems in the demand files against the city (columns, unknown zones or nodes), as message lines.

    With ``time`` (the scenario's ``time:`` section) a SUMO route file is also read: no trips on the city,
    or departures that fall in neither the run's window nor its clock window, are errors.
    """
    errs: list[str] = []
    if cfg.trips_file and str(cfg.trips_file).endswith((".xml", ".xml.gz")) and time is not None:
        from networks.sumo_routes import load_sumo_trips

        path = resolve(cfg.trips_file)
        dep = load_sumo_trips(path, city)["depart_s"]
        t1 = min(cfg.end_s if cfg.end_s is not None else time.duration_s, time.duration_s)
        try:
            clock_shift(dep, cfg.start_s, t1, time.start_hour, f"demand.trips_file: {cfg.trips_file}")
        except ScenarioError as exc:
            errs += list(exc.messages)
    if cfg.od_file:
        path = resolve(cfg.od_file)
        try:
            rows = _read_csv(path, ("origin_zone", "destination_zone", "trips"), str(path))
        except ScenarioError as exc:
            return [f"demand.od_file: {m}" for m in exc.messages]
        for i, r in enumerate(rows):
            for col in ("origin_zone", "destination_zone"):
                if r[col] not in city.zones:
                    errs.append(f"demand.od_file: {cfg.od_file} row {i + 2}: {col} {r[col]!r} — not a zone of the "
                                f"city (zones: {', '.join(list(city.zones)[:5])}, ...)")
            try:
                if float(r["trips"]) < 0:
                    raise ValueError
            except ValueError:
                errs.append(f"demand.od_file: {cfg.od_file} row {i + 2}: trips {r['trips']!r} — a number >= 0")
            if len(errs) >= 5:
                break
    if cfg.trips_file and not str(cfg.trips_file).endswith((".xml", ".xml.gz")):
        path = resolve(cfg.trips_file)
        try:
            rows = _read_csv(path, ("depart_s", "origin", "destination"), str(path))
        except ScenarioError as exc:
            return [f"demand.trips_file: {m}" for m in exc.messages]
        for i, r in enumerate(rows):
            for col in ("origin", "destination"):
                if not city.has_node(r[col]):
                    errs.append(f"demand.trips_file: {cfg.trips_file} row {i + 2}: {col} {r[col]!r} — not a node "
                                f"of the city")
            if len(errs) >= 5:
                break
    return errs
