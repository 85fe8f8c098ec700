"""Load-management policies respect the grid limits, order EVs as specified, and share fairly."""
import numpy as np
import pytest

from agents.ev.allocation import POLICIES, allocate_kw, sort_key


def _instance(rng, n=40, S=5):
    ub = rng.uniform(0, 50, n)
    ub[rng.random(n) < 0.2] = 0.0
    station = rng.integers(0, S, n)
    st_lim = rng.uniform(20, 120, S)
    st_lim[0] = np.inf
    return ub, station, st_lim, rng.uniform(50, 400)


@pytest.mark.parametrize("policy", [p for p in POLICIES if p != "uncontrolled"])
def test_controlled_policies_never_exceed_limits(policy):
    """Every controlled policy stays within each station limit, the city limit and each EV's bound."""
    rng = np.random.default_rng(1)
    for _ in range(200):
        ub, st, sl, cl = _instance(rng)
        key = rng.random(ub.size)
        a = allocate_kw(policy, ub, key, st, sl, cl)
        assert np.all(a >= -1e-9) and np.all(a <= ub + 1e-9)
        assert a.sum() <= cl + 1e-6
        per = np.bincount(st, weights=a, minlength=sl.size)
        assert np.all(per <= sl + 1e-6)
        # work-conserving: if nothing binds, everyone gets the upper bound
        if ub.sum() <= cl and np.all(np.bincount(st, weights=ub, minlength=sl.size) <= sl):
            assert np.allclose(a, ub)


def test_uncontrolled_ignores_limit():
    """Uncontrolled charging draws every EV's maximum even above the limit."""
    ub = np.array([50.0, 50.0, 50.0])
    a = allocate_kw("uncontrolled", ub, np.zeros(3), np.zeros(3, int), np.array([10.0]), 20.0)
    assert np.allclose(a, ub)


def test_sorted_greedy_serves_priority_first():
    """LLF gives the least-laxity EV its full bound first; the rest goes down the order."""
    t = 0.0
    deadline = np.array([3600.0, 7200.0, 1800.0])
    need = np.array([10.0, 10.0, 10.0])
    maxkw = np.array([22.0, 22.0, 22.0])
    key = sort_key("llf", t, np.zeros(3), deadline, need, maxkw)
    a = allocate_kw("llf", maxkw, key, np.zeros(3, int), np.array([np.inf]), 30.0)
    assert np.allclose(a, [8.0, 0.0, 22.0])


def test_equal_share_is_max_min_fair():
    """Equal share: small demands are met, the rest split the remainder equally (water-filling)."""
    ub = np.array([5.0, 40.0, 40.0, 40.0])
    a = allocate_kw("equal", ub, np.zeros(4), np.zeros(4, int), np.array([np.inf]), 65.0)
    assert np.allclose(a, [5.0, 20.0, 20.0, 20.0])
    # a station limit binds first: its EVs share it, the others take the rest of the city limit
    st = np.array([0, 0, 1, 1])
    a = allocate_kw("equal", np.full(4, 40.0), np.zeros(4), st, np.array([20.0, np.inf]), 100.0)
    assert np.allclose(a, [10.0, 10.0, 40.0, 40.0])
