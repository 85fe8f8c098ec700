"""What-if station planning: the maximal covering location problem (MCLP) on the city graph.

``suggest_stations`` proposes K new station sites that add the most population coverage within the
travel budget (target minus call handling and turnout), given the stations that exist. It solves the
MCLP exactly with ``scipy.optimize.milp`` (HiGHS) when the model is small enough, and greedily
otherwise (greedy is a (1 - 1/e)-approximation; the exact answer is never worse, which a test checks).
The result carries a ready variant override: ``{"emergency": {"extra_stations": [...]}}``.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from agents.emergency.config import EmergencyConfig
from agents.emergency.domain import coverage_budget_s
from agents.emergency.incidents import demand_points
from agents.emergency.paths import emergency_link_times_s, min_times_from, times_from, times_from_many
from agents.emergency.resources import DEFAULT_UNITS, resolve_stations

__all__ = ["StationSuggestion", "suggest_stations", "greedy_mclp", "milp_mclp", "greedy_median", "greedy_mexclp", "candidate_nodes"]


@dataclass
class StationSuggestion:
    """Proposed sites (best first), coverage before/after (population share), and the variant override."""

    sites: list[dict[str, Any]]
    coverage_before: float
    coverage_after: float
    budget_s: float
    method: str
    override: dict[str, Any] = field(default_factory=dict)
    expected_coverage: tuple[float, float] | None = None  # MEXCLP only: expected coverage before, after

    def table(self) -> str:
        """A readable summary, one line per site."""
        lines = [f"coverage within {self.budget_s:.0f} s travel: {self.coverage_before:.1%} -> "
                 f"{self.coverage_after:.1%} ({self.method})"]
        if self.expected_coverage is not None:
            lines.append(f"expected coverage (a unit free): {self.expected_coverage[0]:.1%} -> "
                         f"{self.expected_coverage[1]:.1%}")
        for s in self.sites:
            lines.append(f"  {s['name']}: node {s['node']!r} at ({s['x']:.0f}, {s['y']:.0f}) m, "
                         f"adds {s['gain']:.1%} coverage, cuts mean travel by {s['mean_time_saved_s']:.0f} s")
        return "\n".join(lines)


def greedy_mclp(cover: np.ndarray, w: np.ndarray, k: int) -> list[int]:
    """Greedy MCLP: ``cover`` bool[J, P] (candidate j covers point p), weights ``w`` [P]; k picks."""
    covered = np.zeros(cover.shape[1], np.bool_)
    picks: list[int] = []
    coverf = cover.astype(np.float64)
    for _ in range(min(k, cover.shape[0])):
        gain = coverf @ np.where(covered, 0.0, w)
        gain[picks] = -1.0
        j = int(np.argmax(gain))
        if gain[j] <= 0 and picks:
            break
        picks.append(j)
        covered |= cover[j]
    return picks


def milp_mclp(cover: np.ndarray, w: np.ndarray, k: int, time_limit_s: float = 30.0) -> tuple[list[int], bool]:
    """Exact MCLP with scipy.optimize.milp: max w.y, y_p <= sum_j cover[j, p] x_j, sum x = k; (picks, optimal)."""
    from scipy.optimize import Bounds, LinearConstraint, milp
    from scipy.sparse import csr_matrix, hstack, identity, vstack

    J, P = cover.shape
    k = min(k, J)
    c = np.concatenate([np.zeros(J), -w])
    link = hstack([-csr_matrix(cover.T.astype(np.float64)), identity(P, format="csr")], format="csr")
    card = csr_matrix(np.concatenate([np.ones(J), np.zeros(P)])[None, :])
    A = vstack([link, card], format="csr")
    lb = np.concatenate([np.full(P, -np.inf), [k]])
    ub = np.concatenate([np.zeros(P), [k]])
    integrality = np.concatenate([np.ones(J), np.zeros(P)])
    res = milp(c, constraints=LinearConstraint(A, lb, ub), integrality=integrality,
               bounds=Bounds(0.0, 1.0), options={"time_limit": time_limit_s})
    if res.x is None:
        return [], False
    x = res.x[:J]
    picks = [int(j) for j in np.argsort(-x)[:k] if x[j] > 0.5]
    return picks, bool(res.status == 0)


def candidate_nodes(city: Any, max_candidates: int) -> np.ndarray:
    """Candidate sites: routable nodes, thinned to about ``max_candidates`` by a square grid (node nearest
    each cell's centre), so candidates spread evenly over the city."""
    a = city.arrays
    mask = city.largest_component_mask() if hasattr(city, "largest_component_mask") else np.ones(a.n_nodes, bool)
    nodes = np.flatnonzero(mask)
    if len(nodes) <= max_candidates:
        return nodes.astype(np.int32)
    x, y = a.node_x[nodes], a.node_y[nodes]
    area = max((x.max() - x.min()) * (y.max() - y.min()), 1.0)
    cell = np.sqrt(area / max_candidates)
    for _ in range(20):  # widen cells until few enough are occupied
        ix = np.floor((x - x.min()) / cell).astype(np.int64)
        iy = np.floor((y - y.min()) / cell).astype(np.int64)
        key = ix * (iy.max() + 1) + iy
        if len(np.unique(key)) <= max_candidates:
            break
        cell *= 1.1
    cx, cy = (ix + 0.5) * cell + x.min(), (iy + 0.5) * cell + y.min()
    d2 = (x - cx) ** 2 + (y - cy) ** 2
    order = np.lexsort((d2, key))
    first = np.ones(len(order), bool)
    first[1:] = key[order][1:] != key[order][:-1]
    return np.sort(nodes[order[first]]).astype(np.int32)


def _source_parts(source: Any, config: EmergencyConfig | None) -> tuple[Any, EmergencyConfig, np.ndarray | None]:
    """(city, config, live link times or None) from a built CityTwin or a CityGraph."""
    city = getattr(source, "city", source)
    link_tt = None
    traffic = getattr(source, "traffic", None)
    # a back-end that is set up (it has its city) answers; one not set up yet: plan on free-flow times
    if traffic is not None and getattr(traffic, "city", None) is not None:
        link_tt = np.asarray(traffic.link_travel_times_s(), np.float64)
    if config is None:
        doms = getattr(source, "domains", None)
        items = doms.values() if isinstance(doms, dict) else (doms or [])
        for d in items:
            if getattr(d, "name", "") == "emergency":
                config = d.config
        cfg_all = getattr(source, "config", None) or getattr(source, "scenario", None)
        if config is None and cfg_all is not None and getattr(cfg_all, "emergency", None) is not None:
            em = cfg_all.emergency
            config = em if isinstance(em, EmergencyConfig) else EmergencyConfig.model_validate(em)
    return city, config or EmergencyConfig(), link_tt


def suggest_stations(source: Any, config: EmergencyConfig | dict | None = None, k: int = 1, *,
                     method: str = "auto", link_times_s: np.ndarray | None = None,
                     max_candidates: int = 1500, time_limit_s: float = 30.0,
                     queue_share: float = 0.2, busy_fraction: float | None = None) -> StationSuggestion:
    """Propose ``k`` new stations (of ``config.coverage_unit_type``) maximising covered population.

    ``source``: a built CityTwin (its city, live traffic and emergency config) or a CityGraph.
    ``method``: "greedy", "milp" or "auto" (exact when the model is small, else greedy; the better wins).
    When coverage cannot grow (everyone is already within the target), the remaining sites are the ones
    that most cut the population-weighted mean travel time (greedy p-median).
    ``busy_fraction`` q (e.g. the run's mean unit utilisation) switches to the maximum *expected*
    covering model (MEXCLP, Daskin 1983; greedy): a point covered by n units counts 1 - q^n, so sites
    that back up busy areas score too.
    Travel times: ``link_times_s`` (s per link) if given, else the twin's live times, else free flow;
    a unit's time per link is estimated as in dispatch (speed factor, share of queue delay).
    """
    if isinstance(config, dict):
        config = EmergencyConfig.model_validate(config)
    city, cfg, live = _source_parts(source, config)
    a = city.arrays
    tt = link_times_s if link_times_s is not None else live if live is not None else a.fft_s
    cost = emergency_link_times_s(tt, a.fft_s, cfg.speed_factor, cfg.priority, queue_share)
    budget = coverage_budget_s(cfg)
    ut = cfg.coverage_unit_type
    dp = demand_points(city)
    w_all = np.bincount(dp.node, weights=dp.weight * dp.zone_weight[dp.zone], minlength=a.n_nodes)
    n_units = cfg.units.get(ut, DEFAULT_UNITS[ut])  # type: ignore[call-overload]
    st_units = [(s.node, sum(g.count for g in s.units if g.type == ut)) for s in resolve_stations(cfg, city)]
    st_units = [(node, n) for node, n in st_units if n > 0]
    existing = [node for node, _ in st_units]
    covered = (min_times_from(city, np.asarray(existing), cost) <= budget) if existing else np.zeros(a.n_nodes, bool)
    before = float(w_all[covered].sum() / w_all.sum())
    demand = np.flatnonzero(w_all > 0)
    cands = candidate_nodes(city, max_candidates)
    times = np.empty((len(cands), len(demand)), np.float32)
    for lo in range(0, len(cands), 256):  # blocks keep the full float32 tree table small
        block = cands[lo:lo + 256]
        times[lo:lo + len(block)] = times_from_many(city, block, cost)[:, demand]
    unc = ~covered[demand]
    pts = demand[unc]
    cover = times[:, unc] <= budget
    w = w_all[pts]
    expected = None
    if busy_fraction is not None:
        if not 0.0 < busy_fraction < 1.0:
            raise ValueError(f"busy_fraction {busy_fraction} — must lie in (0, 1)")
        n0 = np.zeros(len(demand))
        for node, n in st_units:
            n0 += n * (times_from(city, node, cost)[demand] <= budget)
        picks, expected = greedy_mexclp(times <= budget, w_all[demand] / w_all.sum(), n0, n_units,
                                        busy_fraction, k)
        used = f"mexclp greedy (busy fraction {busy_fraction:.2f})"
    else:
        picks, used = _solve_mclp(cover, w, k, method, time_limit_s)
    if len(picks) < k:  # coverage cannot grow further: add the sites that cut mean travel time most
        have = np.asarray(existing + [int(cands[j]) for j in picks], np.int64)
        best = min_times_from(city, have, cost)[demand] if len(have) else np.full(len(demand), np.inf)
        extra = greedy_median(times, w_all[demand], best, k - len(picks), exclude=picks)
        picks_extra = extra
        used = f"{used} + mean-time greedy for {len(extra)} site(s)" if picks else "mean-time greedy (all covered)"
    else:
        picks_extra = []
    if busy_fraction is None:
        picks = _order_by_gain(cover, w, picks)
    sites, got = [], np.zeros(len(pts), bool)
    lonlat_of = getattr(getattr(city, "lonlat_to_xy", None), "inverse", None)
    best = min_times_from(city, np.asarray(existing, np.int64), cost)[demand] if existing else \
        np.full(len(demand), np.inf)
    wd = w_all[demand] / w_all.sum()
    for r, j in enumerate(picks + picks_extra, 1):
        node = int(cands[j])
        gain = float(w[cover[j] & ~got].sum() / w_all.sum())
        got |= cover[j]
        new_best = np.minimum(best, times[j])
        fin = np.isfinite(new_best)
        saved = float(np.sum(wd[fin] * (np.where(np.isfinite(best[fin]), best[fin], new_best[fin]) - new_best[fin])))
        best = new_best
        x, y = float(a.node_x[node]), float(a.node_y[node])
        lon, lat = lonlat_of(x, y) if lonlat_of else (float("nan"), float("nan"))
        nid = city.node_ids[node]
        sites.append({"name": f"suggested-{r}", "node": nid.item() if hasattr(nid, "item") else nid,
                      "node_index": node, "x": x, "y": y, "lon": float(lon), "lat": float(lat), "gain": gain,
                      "mean_time_saved_s": saved})
    after = before + float(w[got].sum() / w_all.sum())
    extra = [s.model_dump(mode="json", exclude_none=True) for s in cfg.extra_stations]
    extra += [{"name": s["name"], "node": s["node"], "kind": ut, "units": [{"type": ut, "count": n_units}]}
              for s in sites]
    return StationSuggestion(sites, before, after, budget, used, {"emergency": {"extra_stations": extra}},
                             expected)


def _solve_mclp(cover: np.ndarray, w: np.ndarray, k: int, method: str, time_limit_s: float) -> tuple[list[int], str]:
    """Greedy, then the MILP when asked or small enough; keep the better; drop picks that cover nothing."""
    if cover.shape[1] == 0:
        return [], "greedy"
    picks, used = greedy_mclp(cover, w, k), "greedy"
    if method in ("milp", "auto") and (method == "milp" or cover.sum() <= 2_000_000):
        exact, optimal = milp_mclp(cover, w, k, time_limit_s)
        if exact and _gain(cover, w, exact) >= _gain(cover, w, picks) - 1e-12:
            picks, used = exact, "milp (optimal)" if optimal else "milp (time limit)"
    return [j for j in picks if cover[j].any()], used


def greedy_mexclp(cover: np.ndarray, w: np.ndarray, n0: np.ndarray, m: int, q: float,
                  k: int) -> tuple[list[int], tuple[float, float]]:
    """Greedy maximum expected covering: each pick adds ``m`` units to the points its row of ``cover``
    [J, P] reaches; a point with n covering units counts w (1 - q^n). Returns (picks, (before, after))."""
    n = np.asarray(n0, np.float64).copy()
    before = float(np.sum(w * (1.0 - q ** n)))
    coverf = cover.astype(np.float64)
    picks: list[int] = []
    for _ in range(min(k, cover.shape[0])):
        gain = coverf @ (w * q ** n * (1.0 - q ** m))
        gain[picks] = -1.0
        j = int(np.argmax(gain))
        if gain[j] <= 0:
            break
        picks.append(j)
        n += m * cover[j]
    return picks, (before, float(np.sum(w * (1.0 - q ** n))))


def greedy_median(times: np.ndarray, w: np.ndarray, best: np.ndarray, k: int,
                  exclude: list[int] = ()) -> list[int]:
    """Greedy p-median: add ``k`` rows of ``times`` [J, P] (s) that most cut the weighted mean of the
    least time to each point, starting from ``best`` [P] (inf where no station reaches)."""
    best = np.asarray(best, np.float64).copy()
    cap = np.where(np.isfinite(best), best, np.nanmax(np.where(np.isfinite(times), times, 0)) * 2 + 1)
    picks: list[int] = []
    for _ in range(min(k, times.shape[0] - len(exclude))):
        gain = (np.maximum(cap[None, :] - times, 0.0) * w[None, :]).sum(axis=1)
        gain[list(exclude) + picks] = -1.0
        j = int(np.argmax(gain))
        if gain[j] <= 0:
            break
        picks.append(j)
        cap = np.minimum(cap, times[j])
    return picks


def _gain(cover: np.ndarray, w: np.ndarray, picks: list[int]) -> float:
    return float(w[cover[picks].any(axis=0)].sum()) if picks else 0.0


def _order_by_gain(cover: np.ndarray, w: np.ndarray, picks: list[int]) -> list[int]:
    """Order picks so each adds the most of what is still uncovered (greedy order within the set)."""
    left, out, got = list(picks), [], np.zeros(cover.shape[1], bool)
    while left:
        j = max(left, key=lambda j: float(w[cover[j] & ~got].sum()))
        out.append(j)
        left.remove(j)
        got |= cover[j]
    return out
