"""The three-phase site model: the Caltech ACN copy equals ACN-Sim's, sorted allocation never breaks a phase
limit and fills the binding one, and phase limits deliver less than one aggregate limit of the same kW."""
import numpy as np
import pytest

from agents.ev.allocation import allocate_kw
from agents.ev.site import caltech_acn_site, sorted_greedy_phases


def test_caltech_copy_matches_acnsim():
    """Same EVSE order, constraint matrix, limits and phase angles as acnportal's caltech_acn."""
    acnsim = pytest.importorskip("acnportal.acnsim")  # optional bench dependency
    for kw in (30.0, 150.0):
        ref = acnsim.sites.caltech_acn(basic_evse=True, voltage=208, transformer_cap=kw)
        ours = caltech_acn_site(kw, 208.0)
        assert ref.station_ids == ours.plug_ids
        np.testing.assert_allclose(ref.constraint_matrix, ours.a)
        np.testing.assert_allclose(ref.magnitudes, ours.limit_a)
        np.testing.assert_allclose([ref.phase_angles[s] for s in ref.station_ids], ours.phase_deg)


def test_sorted_allocation_is_feasible_and_tight():
    """Random plugged sets at 30 kW: every constraint holds; a plug left below its bound was blocked when its turn
    came (with the plugs before it, 1% more breaks a limit; later plugs on other phases may cancel part of the
    phasor sum, as in ACN-Sim's greedy); the total never exceeds what one aggregate limit allows."""
    net = caltech_acn_site(30.0)
    rng = np.random.default_rng(7)
    for _ in range(100):
        ub = np.where(rng.random(net.n_plugs) < 0.4, 6.656, 0.0)
        key = rng.random(net.n_plugs)
        p = sorted_greedy_phases(net, ub, key)
        assert net.feasible(p) and np.all(p <= ub + 1e-9) and np.all(p >= 0)
        rank = np.argsort(np.argsort(key, kind="mergesort"))
        for j in np.flatnonzero(p < ub - 1e-6):
            q = np.where(rank < rank[j], p, 0.0)
            q[j] = p[j] + 0.01 * ub[j]
            assert not net.feasible(q)
        agg = allocate_kw("llf", ub, key, np.zeros(net.n_plugs, np.int64), np.array([np.inf]), 30.0)
        assert p.sum() <= agg.sum() + 1e-6
