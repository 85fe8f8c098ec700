"""Station planning: the MCLP solvers are optimal / near-optimal, and a suggestion's coverage is what a run records."""
from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from agents.emergency.config import EmergencyConfig
from agents.emergency.domain import EmergencyDomain
from agents.emergency.planning import candidate_nodes, greedy_mclp, greedy_mexclp, milp_mclp, suggest_stations
from agents.traffic.standins import FixedTimeTraffic
from twin.context import DomainContext
from twin.engine import Engine
from networks.synthetic import grid


def _value(cover, w, picks):
    return float(w[cover[list(picks)].any(axis=0)].sum()) if len(picks) else 0.0


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_milp_is_optimal_and_greedy_within_its_bound(seed):
    """On random instances the MILP equals brute force; greedy reaches at least (1 - 1/e) of it."""
    rng = np.random.default_rng(seed)
    cover = rng.random((9, 40)) < 0.2
    w = rng.random(40)
    k = 3
    best = max(_value(cover, w, c) for c in itertools.combinations(range(9), k))
    picks, optimal = milp_mclp(cover, w, k)
    assert optimal and len(picks) == k and _value(cover, w, picks) == pytest.approx(best)
    g = greedy_mclp(cover, w, k)
    assert (1 - 1 / math.e) * best - 1e-12 <= _value(cover, w, g) <= best + 1e-12


def test_candidates_spread_and_are_capped():
    city = grid(30, 30, 100.0)
    c = candidate_nodes(city, 100)
    assert 50 <= len(c) <= 100 and len(np.unique(c)) == len(c)
    x = city.arrays.node_x[c]
    assert x.min() < 500 and x.max() > 2400  # spread over the whole city


def test_suggestion_raises_coverage_and_runs_as_a_variant():
    """Adding the suggested sites (the override) gives exactly the promised coverage in a run."""
    city = grid(12, 12, 300.0)
    base = dict(stations_from_osm=False, hospitals_from_osm=False, generate=False, coverage_target_s=300.0,
                stations=[{"name": "A", "node": "n0_0"}], incident_types={"medical": {}})
    cfg = EmergencyConfig.model_validate(base)
    sug = suggest_stations(city, cfg, k=2, method="auto")
    assert len(sug.sites) == 2 and sug.coverage_after > sug.coverage_before > 0
    assert sug.sites[0]["gain"] >= sug.sites[1]["gain"] > 0
    assert sug.coverage_after == pytest.approx(sug.coverage_before + sum(s["gain"] for s in sug.sites))
    greedy = suggest_stations(city, cfg, k=2, method="greedy")
    assert sug.coverage_after >= greedy.coverage_after - 1e-12

    def coverage_of(c: EmergencyConfig) -> float:
        ds = Engine(DomainContext.for_city(city, 600.0, 600.0),
                    {"traffic": FixedTimeTraffic(0.0), "emergency": EmergencyDomain(c)}).run()
        return float(ds["em_coverage"].values[0])

    assert coverage_of(cfg) == pytest.approx(sug.coverage_before)
    variant = EmergencyConfig.model_validate({**base, **sug.override["emergency"]})
    assert coverage_of(variant) == pytest.approx(sug.coverage_after)


def test_expected_covering_backs_up_busy_areas():
    """With busy units (MEXCLP), a fully covered city still gains expected coverage, and the gain is the
    brute-force best single site; with q -> small it reduces to plain coverage."""
    rng = np.random.default_rng(5)
    cover = rng.random((12, 50)) < 0.3
    w = rng.random(50)
    w /= w.sum()
    n0 = rng.integers(0, 3, 50).astype(float)
    q, m = 0.4, 2
    (j,), (before, after) = greedy_mexclp(cover, w, n0, m, q, 1)
    exp = [float(np.sum(w * (1 - q ** (n0 + m * cover[i])))) for i in range(12)]
    assert after == pytest.approx(max(exp)) and exp[j] == pytest.approx(max(exp)) and after > before
    city = grid(12, 12, 300.0)
    cfg = EmergencyConfig.model_validate(dict(stations_from_osm=False, hospitals_from_osm=False, generate=False,
                                              coverage_target_s=900.0, stations=[{"name": "A", "node": "n0_0"}],
                                              incident_types={"medical": {}}))
    plain = suggest_stations(city, cfg, k=1)
    assert plain.coverage_before == pytest.approx(1.0) and plain.expected_coverage is None
    sug = suggest_stations(city, cfg, k=1, busy_fraction=0.5)
    b, a = sug.expected_coverage
    assert b == pytest.approx(1 - 0.5 ** 2) and a > b  # two units at A cover everyone: 1 - q^2
