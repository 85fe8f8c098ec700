"""Dispatch queueing agrees with Erlang C (M/M/c) when travel is fixed and busy times are exponential."""
from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from agents.emergency.config import EmergencyConfig
from agents.emergency.domain import EmergencyDomain
from twin.queueing import erlang_c, mean_wait_s, p_wait_longer, servers_needed
from agents.traffic.standins import FixedTimeTraffic
from twin.context import DomainContext
from twin.engine import Engine
from networks.synthetic import grid


def test_erlang_c_closed_forms():
    """M/M/1 waits with probability rho; M/M/2 at a = 1 erlang waits with probability 1/3; C grows with load."""
    for rho in (0.1, 0.5, 0.9):
        assert erlang_c(1, rho) == pytest.approx(rho)
    assert erlang_c(2, 1.0) == pytest.approx(1 / 3)
    loads = [erlang_c(4, a) for a in (0.5, 1.5, 2.5, 3.5)]
    assert all(x < y for x, y in zip(loads, loads[1:]))
    assert erlang_c(3, 3.0) == 1.0 and mean_wait_s(1.0, 0.5, 2) == math.inf
    # M/M/1: Wq = rho / (mu - lam)
    assert mean_wait_s(0.5, 1.0, 1) == pytest.approx(0.5 / 0.5)
    assert p_wait_longer(0.0, 0.002, 1 / 1200, 3) == pytest.approx(erlang_c(3, 2.4))


def test_servers_needed_is_the_smallest_fleet_meeting_the_wait_bound():
    """The answer meets the bound, one unit fewer does not (or would be unstable)."""
    for lam, mu, p in ((6.7e-4, 1 / 1846, 0.1), (0.01, 1 / 1200, 0.05), (1e-5, 1 / 600, 0.5)):
        c = servers_needed(lam, mu, p)
        assert erlang_c(c, lam / mu) <= p
        assert c == 1 or erlang_c(c - 1, lam / mu) > p


def _replication(seed: int, c: int, mu: float, lam: float, days: int) -> tuple[float, float]:
    cfg = EmergencyConfig(
        stations_from_osm=False, hospitals_from_osm=False,
        stations=[{"name": "S", "node": "n0_0", "units": [{"type": "ambulance", "count": c}]}],
        incident_types={"medical": {"rate_per_day": lam * 86400, "on_scene_s": 1 / mu,
                                    "on_scene_dist": "exponential", "transport_prob": 0.0}},
        hourly_profile=[1.0] * 24, call_handling_s=0.0, turnout_s={"ambulance": 0.0})
    ctx = DomainContext.for_city(grid(2, 2), days * 86400.0, 86400.0, seed=seed)
    ds = Engine(ctx, {"traffic": FixedTimeTraffic(0.0), "emergency": EmergencyDomain(cfg)}).run()
    call, wait = ds["em_call_time"].values, ds["em_wait_time"].values
    steady = (call > 86400.0) & (call < (days - 1) * 86400.0)  # drop warm-up and the censored tail
    assert np.isfinite(wait[steady]).all()
    return float(wait[steady].mean()), float(np.mean(wait[steady] > 1e-9))


def test_simulated_wait_matches_erlang_c():
    """Mean wait and P(wait) of 12 replications bracket the M/M/3 values at 99% confidence."""
    c, mu, a = 3, 1 / 1200.0, 2.0
    lam = a * mu
    reps = np.array([_replication(s, c, mu, lam, days=60) for s in range(12)])
    t99 = stats.t.ppf(0.995, len(reps) - 1)
    for col, theory in ((0, mean_wait_s(lam, mu, c)), (1, erlang_c(c, a))):
        m, half = reps[:, col].mean(), t99 * reps[:, col].std(ddof=1) / np.sqrt(len(reps))
        assert half < 0.15 * theory, "too few calls to test anything"
        assert abs(m - theory) <= half, (col, m, theory, half)


def test_allen_cunneen_reduces_to_erlang_c_and_scales_with_variability():
    """With exponential service (cv² = 1) Allen–Cunneen is the M/M/c wait; deterministic service halves it."""
    from twin.queueing import allen_cunneen_wait_s

    lam, mu, c = 0.002, 1 / 1200, 3
    assert allen_cunneen_wait_s(lam, mu, c, 1.0) == pytest.approx(mean_wait_s(lam, mu, c))
    assert allen_cunneen_wait_s(lam, mu, c, 0.0) == pytest.approx(mean_wait_s(lam, mu, c) / 2)
