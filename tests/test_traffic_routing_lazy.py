"""Lazy turn-table rows (session 6 speed): the built-in model rebuilds only the table rows vehicles will read.

The invariant: building fewer rows must not change any vehicle's route. A run that rebuilds every row of every
departing and running vehicle (the code before the change) and the lazy run give the same trips bit for bit, on a
congested grid with re-routing and a closure mid-run, and the lazy run builds fewer rows.
"""
from __future__ import annotations

import numpy as np

import agents.traffic.meso as M
from conftest import make_twin


def _run(monkeypatch, eager: bool) -> tuple[dict, int]:
    rows = [0]
    orig = M.turn_route_tables

    def counted(targets, *args):
        rows[0] += len(targets)
        return orig(targets, *args)

    monkeypatch.setattr(M, "turn_route_tables", counted)
    if eager:  # every row of every departing and running vehicle, as before (a superset of the rows read)
        monkeypatch.setattr(M, "_picked", lambda ids, share, salt: np.ones(len(ids), np.bool_))

        def every_row(self, departing, rerouting):
            need = np.concatenate([self._vehicle_targets(departing), self._vehicle_targets(rerouting)])
            if len(need):
                self._fresh_rows(need)
        monkeypatch.setattr(M.MesoTraffic, "_fresh_read_rows", every_row)
    tw = make_twin({"city": {"source": "grid", "grid": {"nx": 6, "ny": 6, "spacing_m": 150}},
                    "time": {"duration_s": 2400, "step_s": 1, "record_interval_s": 600},
                    "traffic": {"turn_costs": True, "pin_end_links": True, "reroute_share": 0.5,
                                "reroute_interval_s": 60, "route_refresh_s": 30, "route_cost_tau_s": 20.0}})
    tw.setup()
    T = tw.traffic
    assert T.turn
    rng = np.random.default_rng(7)
    n = 2500
    o, d = rng.integers(0, T.N, n), rng.integers(0, T.N, n)
    T.add_trips(o.astype(np.int32), d.astype(np.int32), np.sort(rng.uniform(0, 300, n)))
    tw.env.run(until=700)
    mid = T.link_to.shape[0] // 2
    T.set_capacity_factor(mid, 0.0)  # closed: every row rebuilt, kernel re-routes read any row
    tw.env.run(until=1300)
    T.set_capacity_factor(mid, 1.0)
    tw.env.run(until=2400)
    T._catch_up()
    m = T.n_veh
    out = {"status": T.v_status[:m].copy(), "arrive": T.v_arrive[:m].copy(), "dist": T.v_dist[:m].copy(),
           "rlen": T.v_rlen[:m].copy(), "reroutes": T.reroutes}
    return out, rows[0]


def test_lazy_rows_give_the_same_trips_as_rebuilding_every_row(monkeypatch):
    with monkeypatch.context() as mp:
        eager, rows_eager = _run(mp, eager=True)
    lazy, rows_lazy = _run(monkeypatch, eager=False)
    assert eager["reroutes"] > 0 and (eager["status"] == M.K.ARRIVED).sum() > 500  # re-routing and trips happened
    for k in eager:
        assert np.array_equal(eager[k], lazy[k]), k
    assert rows_lazy < rows_eager
