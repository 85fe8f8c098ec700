"""The kernel's speed paths (session 10, issue 13: bench/traffic.py peak case) change no result.

``advance`` runs its steps in ``_advance``, compiled without numba's reference counting, and keeps each link's
head exit time (``q_hexit``) across the steps of one call: built at the start of every call, then updated by
``_enter`` and ``_leave``. A run stepped one step per kernel call rebuilds it every step; a run stepped up to
300 steps per call relies on the updates. Both must give the same results, bit for bit, on a congested grid
with a closure (queues, overtaking on other lanes, re-routing at the closed link).
"""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

import agents.traffic.meso as meso
from agents.traffic import meso_kernel as K
from bench.traffic import scenario_doc
from bench.traffic_digest import digest
from twin.engine import CityTwin
from twin.scenario import resolve_variants

ROOT = Path(__file__).resolve().parents[1]


def _run(sync_s: float):
    doc = scenario_doc(6, 15000, duration_s=1800.0, start="07:00")
    doc["traffic"]["sync_interval_s"] = sync_s
    doc["traffic"]["closures"] = [{"link": "n2_2>n3_2", "start_s": 600.0}]
    sc = resolve_variants(doc, ROOT / "scenarios" / "bench_traffic.yaml")["baseline"]
    tw = CityTwin(sc, ROOT / "scenarios")
    calls: list[int] = []

    class _K:  # the kernel module as meso sees it, counting the steps asked of each advance call
        def __getattr__(self, item):
            return getattr(K, item)

        @staticmethod
        def advance(*a):
            calls.append(a[1])
            return K.advance(*a)

    old = meso.K
    meso.K = _K()
    try:
        ds = tw.run()
    finally:
        meso.K = old
    return tw.traffic, ds, calls


def test_steps_per_kernel_call_change_no_result():
    one, ds1, calls1 = _run(1.0)
    many, ds300, calls300 = _run(300.0)
    assert max(calls1) == 1 and max(calls300) >= 100  # the two runs really step differently
    assert len(calls1) >= 10 * len(calls300)
    n = one.n_veh
    assert n == many.n_veh > 10000
    # congested: vehicles queued (mean time well above free flow) and some were re-routed at the closure
    done = one.v_status[:n] == K.ARRIVED
    tt = (one.v_arrive[:n] - one.v_depart[:n])[done]
    assert np.mean(tt) > 1.3 * np.mean(one.v_fft[:n][done])
    assert one.gridlocks[0] > 0 and one.reroutes > 0  # heads jumped on (gridlock rule), drivers re-routed
    for name in ("v_status", "v_arrive", "v_dist", "v_fft", "v_link", "v_exit", "v_rpos", "q_count", "acc",
                 "occ", "sum_tt", "cnt_exit"):
        a, b = getattr(one, name), getattr(many, name)
        assert np.array_equal(a, b, equal_nan=a.dtype.kind == "f"), name
    d1, d300 = digest(ds1), digest(ds300)  # every result variable (attrs hold the scenario, sync_interval_s too)
    keys = [k for k in d1 if not k.startswith("attr:")]
    assert len(keys) > 20 and {k: d1[k] for k in keys} == {k: d300[k] for k in keys}


def test_no_reference_leaked_or_dropped():
    """``_advance`` counts no references; the arrays it steps must come back with the count they had."""
    tr, _, _ = _run(300.0)
    names = ("v_exit", "q_buf", "acc", "route_buf", "mv_acc")
    before = {k: sys.getrefcount(getattr(tr, k)) for k in names}
    Lt, Mt, Vt, Tt = tr._kernel_args()
    after_args = {k: sys.getrefcount(getattr(tr, k)) for k in names}
    c = tr.config
    for _ in range(20):
        K.advance(tr.t, 5, tr.dt, tr.step_counter, Lt, Mt, Vt, Tt, float(c.gridlock_time_s),
                  float(c.flow_window_s), float(c.priority_queue_factor), bool(c.stand_unroutable),
                  bool(c.lane_queues))
    assert {k: sys.getrefcount(getattr(tr, k)) for k in names} == after_args
    assert all(after_args[k] >= before[k] for k in names)
