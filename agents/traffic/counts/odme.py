"""Origin-destination matrix estimation (ODME) from traffic counts, with the built-in model as the assignment.

The estimate is a time-sliced zone-to-zone matrix x[c] (c = origin zone, destination zone, departure slice)
that keeps the prior's structure: x = x0 * exp(a_slice + k_slice * km + u_o + u_d + b_o + c_d + d_cell), with
km the zone-to-zone distance, u a zone's activity (both ends), b/c its origin/destination roles. The slice,
trip-length and activity factors are lightly penalised, the roles more, the single cells strongly, so the fit
moves levels, trip lengths, whole rows and columns before single cells (a log-linear, Spiess-like multiplicative adjustment; zero prior cells stay
zero). It minimises, with scipy's trust-region least squares,

    sum_counts ((P x + bias - y) / sigma)^2 + lambda_group |abc|^2 + lambda_cell |d|^2,

where P[a, c] is the expected passes of one trip of cell c over count a (shortest routes on the congested
link times of the last run, walked in numba), each row scaled to the last simulation (ratio within 0.2-5),
sigma^2 = max(y, 10) (Poisson-like, as GEH), and bias the gap the ratio leaves. Bilevel: simulate the demand,
re-route, refit, repeat; the iteration with the best fit-count GEH is kept (hold-out counts never enter).
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np
from scipy import sparse
from scipy.optimize import least_squares

from agents.traffic.counts.assign import (
    count_incidence,
    link_times_by_slice,
    simulate,
    simulated_counts,
)
from agents.traffic.counts.metrics import geh
from agents.traffic.counts.readers import CountSet

__all__ = [
    "OdmeOptions",
    "OdmeResult",
    "calibrate_demand",
    "fold_groups",
    "node_zones",
    "prior_trips",
    "slice_bounds",
    "split_holdout",
]


@dataclass
class OdmeOptions:
    """Tuning of the estimator (defaults chosen by measurement, see docs/calibration.md)."""

    iterations: int = 3
    lambda_group: float = 0.5  # penalty on slice, trip-length and zone-activity log-factors
    lambda_role: float = 50.0  # penalty on zone origin-only / destination-only log-factors
    lambda_cell: float = 300.0  # penalty on single-cell log-factors
    min_slice_s: float = 900.0
    trip_length: bool = True  # fit a trip-length (distance) slope per slice (Bad Hersfeld totals: +35% -> +4%)
    seed: int = 0


@dataclass
class OdmeResult:
    """What calibration produced: the demand, its simulation, and the matrices before and after."""

    trips: dict[str, np.ndarray]
    sim_counts: np.ndarray  # vehicles per count interval, every count (fit and hold-out)
    fit_mask: np.ndarray
    cells_oz: np.ndarray
    cells_dz: np.ndarray
    cells_slice: np.ndarray
    x_prior: np.ndarray
    x_fit: np.ndarray
    bounds: np.ndarray  # slice bounds, scenario seconds
    zone_ids: list[str]
    history: list[dict] = field(default_factory=list)
    prior_sim_counts: np.ndarray | None = None  # the prior's simulated counts, every count
    wall_s: float = 0.0
    dataset: object = None


_MINOR = ("highway.residential", "highway.living_street", "highway.service", "highway.track")


def node_zones(city) -> tuple[np.ndarray, list[str]]:
    """Zone of every node for calibration: the city's zones, with each gateway (a dead-end node on a road
    above residential class: where a road leaves the network) split into a zone of its own, so traffic
    entering and leaving the town can be scaled apart from the town's own trips. Nodes in no zone go to
    an extra zone ``"other"``."""
    ids = list(city.zones)
    nz = np.full(city.arrays.n_nodes, -1, np.int64)
    for i, z in enumerate(city.zones.values()):
        nz[z.nodes] = i
    a = city.arrays
    nbrs: dict[int, set] = {}
    major = np.zeros(a.n_nodes, bool)
    for ln in range(a.n_links):
        u, v = int(a.link_from[ln]), int(a.link_to[ln])
        nbrs.setdefault(u, set()).add(v)
        nbrs.setdefault(v, set()).add(u)
        if city.link_attr(ln).get("road_class", "") not in _MINOR:
            major[u] = major[v] = True
    for v in sorted(nbrs):
        if len(nbrs[v]) == 1 and major[v]:
            nz[v] = len(ids)
            ids.append(f"gateway:{city.node_ids[v]}")
    if (nz < 0).any():
        nz[nz < 0] = len(ids)
        ids.append("other")
    return nz, ids


def slice_bounds(t0: float, t1: float, starts: np.ndarray, ends: np.ndarray, min_len: float) -> np.ndarray:
    """Departure slices [t0, ..., t1] cut at count interval bounds, merging slices shorter than ``min_len``."""
    cuts = sorted({float(x) for x in np.concatenate([starts, ends]) if t0 < x < t1})
    out = [t0]
    for c in cuts:
        if c - out[-1] >= min_len:
            out.append(c)
    if t1 - out[-1] < min_len and len(out) > 1:
        out.pop()
    out.append(t1)
    return np.array(out, float)


def split_holdout(counts: CountSet, share: float, seed: int) -> np.ndarray:
    """Boolean mask of fit counts: a seeded ``share`` of count locations (all their intervals) is held out."""
    locs = counts.locations()
    n_out = int(round(share * len(locs))) if share > 0 else 0
    if share > 0:
        n_out = min(max(n_out, 1), len(locs) - 1)
    rng = np.random.default_rng(np.random.SeedSequence([seed, 18]))
    held = set(rng.choice(len(locs), size=n_out, replace=False).tolist()) if n_out else set()
    held_ids = {locs[i] for i in held}
    return np.array([lab not in held_ids for lab in counts.label], bool)


def fold_groups(counts: CountSet, k: int, seed: int) -> list[np.ndarray]:
    """``k`` fit masks whose hold-outs partition the count locations (seeded); each location held out once."""
    locs = counts.locations()
    k = max(2, min(k, len(locs)))
    perm = np.random.default_rng(np.random.SeedSequence([seed, 18, k])).permutation(len(locs))
    group = {locs[j]: i % k for i, j in enumerate(perm)}
    return [np.array([group[lab] != f for lab in counts.label], bool) for f in range(k)]


class _Matrix:
    """The prior trips as a pool grouped into cells (origin zone, destination zone, slice)."""

    def __init__(self, trips, city, bounds: np.ndarray, trip_length: bool = False) -> None:
        nz, self.zone_ids = node_zones(city)
        self.nz = nz
        Z = len(self.zone_ids)
        k = np.clip(np.searchsorted(bounds, trips["depart_s"], side="right") - 1, 0, len(bounds) - 2)
        key = (nz[trips["origin"]] * Z + nz[trips["destination"]]) * (len(bounds) - 1) + k
        uniq, self.trip_cell = np.unique(key, return_inverse=True)
        self.trip_cell = self.trip_cell.astype(np.int64)
        self.slice = (uniq % (len(bounds) - 1)).astype(np.int64)
        self.oz = (uniq // (len(bounds) - 1) // Z).astype(np.int64)
        self.dz = (uniq // (len(bounds) - 1) % Z).astype(np.int64)
        self.x0 = np.bincount(self.trip_cell, minlength=len(uniq)).astype(float)
        self.pool = trips
        self.bounds = bounds
        self.n_cells = len(uniq)
        self.Z = Z
        self.members = np.argsort(self.trip_cell, kind="stable")
        self.ptr = np.concatenate([[0], np.cumsum(self.x0.astype(np.int64))])
        K, C = len(bounds) - 1, self.n_cells
        rows = np.arange(C)
        # parameter map: [slice (K) | trip-length slope per slice (K) | zone activity, both ends (Z) |
        # origin role (Z) | destination role (Z) | cell (C)]. The slope multiplies the zone-to-zone distance
        # (km): it corrects a gravity prior's distance decay; a zone's activity scales its trips in and out
        # together (what enters the town leaves it).
        a = city.arrays
        cnt = np.bincount(nz, minlength=Z).astype(float)
        cx = np.bincount(nz, weights=a.node_x, minlength=Z) / np.maximum(cnt, 1)
        cy = np.bincount(nz, weights=a.node_y, minlength=Z) / np.maximum(cnt, 1)
        self.dist_km = np.hypot(cx[self.oz] - cx[self.dz], cy[self.oz] - cy[self.dz]) / 1000.0
        # centred on the prior's mean trip distance, so the slope reshapes trip lengths, not the total
        self.dist_km -= np.average(self.dist_km, weights=np.bincount(self.trip_cell, minlength=C))
        cols = np.concatenate([self.slice, K + self.slice, 2 * K + self.oz, 2 * K + self.dz, 2 * K + Z + self.oz,
                               2 * K + 2 * Z + self.dz, 2 * K + 3 * Z + rows])
        vals = np.concatenate([np.ones(C), self.dist_km if trip_length else np.zeros(C), np.ones(4 * C),
                               np.ones(C)])
        self.M = sparse.csr_matrix((vals, (np.tile(rows, 7), cols)), shape=(C, 2 * K + 3 * Z + C))
        self.n_params = (2 * K + Z, 2 * Z, C)

    def realise(self, x: np.ndarray, rng: np.random.Generator) -> dict[str, np.ndarray]:
        """Trips for matrix ``x``: each cell draws round-ish x trips from its prior trips (copies get a new
        departure time inside the same slice)."""
        n = np.floor(x).astype(np.int64)
        n += rng.random(len(x)) < (x - n)
        picks, deps = [], []
        for c in np.flatnonzero(n):
            mem = self.members[self.ptr[c]:self.ptr[c + 1]]
            m, want = len(mem), int(n[c])
            full, rest = divmod(want, m)
            idx = np.concatenate([np.tile(mem, full), rng.choice(mem, size=rest, replace=False)])
            dep = self.pool["depart_s"][idx].copy()
            if want > m:  # copies beyond the first: a fresh time in the slice
                lo, hi = self.bounds[self.slice[c]], self.bounds[self.slice[c] + 1]
                extra = np.arange(len(idx)) >= m
                dep[extra] = rng.uniform(lo, hi, size=int(extra.sum()))
            picks.append(idx)
            deps.append(dep)
        idx = np.concatenate(picks) if picks else np.zeros(0, np.int64)
        dep = np.concatenate(deps) if deps else np.zeros(0)
        order = np.argsort(dep, kind="stable")
        return {"origin": self.pool["origin"][idx][order].astype(np.int32),
                "destination": self.pool["destination"][idx][order].astype(np.int32),
                "depart_s": dep[order]}


def _fit(P: sparse.csr_matrix, y: np.ndarray, bias: np.ndarray, mat: _Matrix, theta0: np.ndarray,
         opts: OdmeOptions) -> np.ndarray:
    """Penalised log-linear least squares for the parameters; returns theta."""
    sigma = np.sqrt(np.maximum(y, 10.0))
    M = mat.M
    g, r, c = mat.n_params
    lam = np.concatenate([np.full(g, opts.lambda_group), np.full(r, opts.lambda_role), np.full(c, opts.lambda_cell)])
    sq = np.sqrt(lam)
    x0 = mat.x0

    def resid(th):
        x = x0 * np.exp(M @ th)
        return np.concatenate([(P @ x + bias - y) / sigma, sq * th])

    def jac(th):
        x = x0 * np.exp(M @ th)
        top = sparse.diags(1.0 / sigma) @ P @ sparse.diags(x) @ M
        return sparse.vstack([top, sparse.diags(sq)]).tocsr()

    res = least_squares(resid, theta0, jac=jac, method="trf", tr_solver="lsmr", x_scale=1.0, max_nfev=60,
                        bounds=(-6.0, 4.0))
    return res.x


def prior_trips(scenario, city, scenario_dir) -> dict[str, np.ndarray]:
    """The scenario's own demand, drawn exactly as a run draws it (same seed stream)."""
    import zlib
    from pathlib import Path

    from twin.demand import generate_trips
    from twin.scenario import resolve_data_path

    rng = np.random.default_rng(np.random.SeedSequence([scenario.seed, zlib.crc32(b"demand")]))
    return generate_trips(scenario.demand, city, rng, scenario.time.duration_s, scenario.time.start_hour,
                          resolve=lambda p: resolve_data_path(p, Path(scenario_dir)), source=str(scenario_dir))


def calibrate_demand(scenario, city, counts: CountSet, fit_mask: np.ndarray, opts: OdmeOptions | None = None,
                     prior: dict[str, np.ndarray] | None = None, scenario_dir=".", log=None) -> OdmeResult:
    """Fit the scenario's demand to the counts where ``fit_mask`` is true; simulate the result.

    Count times in ``counts`` are clock seconds; the scenario's ``time.start`` maps them to run time.
    """
    opts = opts or OdmeOptions()
    t_wall = time.perf_counter()
    clock0 = scenario.time.start_hour * 3600.0
    s_run, e_run = counts.start_s - clock0, counts.end_s - clock0
    pool = prior if prior is not None else prior_trips(scenario, city, scenario_dir)
    dem = scenario.demand
    t0 = float(dem.start_s)
    t1 = float(min(dem.end_s if dem.end_s is not None else scenario.time.duration_s, scenario.time.duration_s))
    bounds = slice_bounds(t0, t1, s_run, e_run, opts.min_slice_s)
    mat = _Matrix(pool, city, bounds, opts.trip_length)
    fit = np.flatnonzero(fit_mask)
    y_fit = counts.count[fit]
    rng = np.random.default_rng(np.random.SeedSequence([opts.seed, scenario.seed, 18]))
    theta = np.zeros(mat.M.shape[1])
    x = mat.x0.copy()
    trips = pool
    best = None
    history = []
    prior_sim = None
    tc = scenario.domain_configs["traffic"]  # the assignment walks the routes the simulator's trips drive
    rr = tc.routing_for(city)
    pin = {"pin_end_links": rr.pin_end_links, "speed_scale": rr.speed_scale}
    for it in range(opts.iterations + 1):
        ds = simulate(scenario, city, trips)
        sim = simulated_counts(ds, counts.link, s_run, e_run)
        turns = np.flatnonzero(counts.prev_link >= 0)
        if len(turns):  # the run records link flows, not turns: turns come from routing the run's trips
            ob, _ = count_incidence(city, trips, np.zeros(len(trips["origin"]), np.int64),
                                    link_times_by_slice(ds, bounds), bounds, counts.link[turns],
                                    counts.prev_link[turns], s_run[turns], e_run[turns], **pin)
            sim[turns] = np.bincount(ob, minlength=len(turns))
        prior_sim = sim if prior_sim is None else prior_sim
        hourly = 3600.0 / (e_run - s_run)
        g = geh(sim * hourly, counts.count * hourly)
        score = float(np.mean(g[fit] ** 2))
        rec = {"iteration": it, "trips": len(trips["origin"]), "geh5_fit": float(np.mean(g[fit] < 5)),
               "geh5_holdout": float(np.mean(g[~fit_mask] < 5)) if (~fit_mask).any() else None,
               "mean_geh2_fit": score, "wall_s": round(time.perf_counter() - t_wall, 2)}
        history.append(rec)
        if log:
            log(rec)
        if best is None or score < best[0]:
            best = (score, trips, sim, x.copy(), ds)
        if it == opts.iterations:
            break
        times = link_times_by_slice(ds, bounds)
        ob, ce = count_incidence(city, mat.pool, mat.trip_cell, times, bounds, counts.link[fit],
                                 counts.prev_link[fit], s_run[fit], e_run[fit], **pin)
        hits = sparse.csr_matrix((np.ones(len(ob)), (ob, ce)), shape=(len(fit), mat.n_cells))
        P = hits @ sparse.diags(1.0 / mat.x0)
        # where routing and the simulation disagree on a count (queues, rerouting, ties between equal routes),
        # scale the assignment row to the simulation (ratio within 0.2-5) and carry the rest as an offset
        px = P @ x
        ratio = np.where(px > 0.5, np.clip(sim[fit] / np.maximum(px, 1e-9), 0.2, 5.0), 1.0)
        turn = counts.prev_link[fit] >= 0  # turn counts are not in the run's link flows: no correction
        ratio[turn] = 1.0
        P = sparse.diags(ratio) @ P
        bias = np.where(turn, 0.0, sim[fit] - ratio * px)
        theta = _fit(P.tocsr(), y_fit, bias, mat, theta, opts)
        x = mat.x0 * np.exp(mat.M @ theta)
        trips = mat.realise(x, rng)
    assert best is not None  # the loop runs at least once
    _, trips, sim, x_best, ds = best
    return OdmeResult(trips=trips, sim_counts=sim, fit_mask=fit_mask, cells_oz=mat.oz, cells_dz=mat.dz,
                      cells_slice=mat.slice, x_prior=mat.x0, x_fit=_cell_totals(mat, trips), bounds=bounds,
                      zone_ids=mat.zone_ids, history=history, prior_sim_counts=prior_sim, wall_s=time.perf_counter() - t_wall, dataset=ds)


def _cell_totals(mat: _Matrix, trips) -> np.ndarray:
    """Trips of a realised demand per cell of ``mat`` (what was actually simulated)."""
    nz = mat.nz
    Z, K = mat.Z, len(mat.bounds) - 1
    k = np.clip(np.searchsorted(mat.bounds, trips["depart_s"], side="right") - 1, 0, K - 1)
    key = (nz[trips["origin"]] * Z + nz[trips["destination"]]) * K + k
    cell_key = (mat.oz * Z + mat.dz) * K + mat.slice
    pos = np.searchsorted(cell_key, key)
    return np.bincount(pos, minlength=mat.n_cells).astype(float)[: mat.n_cells]
