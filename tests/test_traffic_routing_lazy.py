"""Lazy turn-table rows (session 6 speed): the built-in model rebuilds only the table rows vehicles will read.

The invariant: building fewer rows must not change any vehicle's route. A run that rebuilds every row of every
departing and running vehicle (the code before the change) and the lazy run give the same trips bit for bit, on a
congested grid with re-routing, and the lazy run builds fewer rows. Session 7: while a link is closed, rows put
on a new cost version are built only when a reader comes (deferred, from that version's stored costs): the same
trips as building them at once, with drivers meeting the closed link mid-run, and fewer rows.
"""
from __future__ import annotations

import numpy as np

import agents.traffic.meso as M
from conftest import make_twin


def _run(monkeypatch, eager: bool = False, defer: bool = True, drop_ahead: bool = False, closure_s=(700, 1300),
         share: float = 0.5, reroute_s: float = 60, trips: tuple[int, float, int] = (2500, 300.0, 7),
         busiest: bool = False) -> tuple[dict, int, int]:
    """One 6x6 grid run with a link closed over ``closure_s``: the middle link, or (``busiest``) the link most
    running drivers have ahead at its closing. Returns (trips, rows built, drivers with the closed link ahead
    summed over refreshes). ``eager``: every row of every departing and running vehicle (the code before
    session 6); ``defer`` False: rows built when put on a version; ``drop_ahead``: a mutant that builds no row
    for drivers meeting the closure."""
    rows, ahead = [0], [0]
    orig_rows, orig_ahead = M.turn_route_rows, M._closed_ahead

    def counted(targets, *args):
        rows[0] += len(targets)
        return orig_rows(targets, *args)

    def counted_ahead(*args):
        out = orig_ahead(*args)
        ahead[0] += int(out.sum())
        return out & False if drop_ahead else out

    monkeypatch.setattr(M, "turn_route_rows", counted)
    monkeypatch.setattr(M, "_closed_ahead", counted_ahead)
    if not defer or eager:  # every row put on a new cost version is built at once (no deferred rows)
        fresh = M.MesoTraffic._fresh_rows
        monkeypatch.setattr(M.MesoTraffic, "_fresh_rows",
                            lambda self, targets, build=True, defer=False: fresh(self, targets, build))
    if eager:
        monkeypatch.setattr(M, "_picked", lambda ids, share, salt: np.ones(len(ids), np.bool_))

        def every_row(self, departing, rerouting, keep_versions=False):
            if keep_versions:  # a closure's refresh: with no deferred rows, every row on its version is built
                return
            need = np.concatenate([self._vehicle_targets(departing), self._vehicle_targets(rerouting)])
            if len(need):
                self._fresh_rows(need)
        monkeypatch.setattr(M.MesoTraffic, "_fresh_read_rows", every_row)
    tw = make_twin({"city": {"source": "grid", "grid": {"nx": 6, "ny": 6, "spacing_m": 150}},
                    "time": {"duration_s": 2400, "step_s": 1, "record_interval_s": 600},
                    "traffic": {"turn_costs": True, "pin_end_links": True, "reroute_share": share,
                                "reroute_interval_s": reroute_s, "route_refresh_s": 30, "route_cost_tau_s": 20.0}})
    tw.setup()
    T = tw.traffic
    assert T.turn
    n, until_s, seed = trips
    rng = np.random.default_rng(seed)
    o, d = rng.integers(0, T.N, n), rng.integers(0, T.N, n)
    T.add_trips(o.astype(np.int32), d.astype(np.int32), np.sort(rng.uniform(0, until_s, n)))
    tw.env.run(until=closure_s[0])
    link = T.link_to.shape[0] // 2
    if busiest:
        use = np.zeros(T.L, np.int64)
        for v in np.flatnonzero(T.v_status[: T.n_veh] == M.K.RUNNING):
            s, p, m = T.v_rstart[v], T.v_rpos[v], T.v_rlen[v]
            np.add.at(use, T.route_buf[s + p + 1: s + m], 1)
        link = int(np.argmax(use))
    T.set_capacity_factor(link, 0.0)  # closed: every row on the new costs, kernel re-routes read any row
    tw.env.run(until=closure_s[1])
    T.set_capacity_factor(link, 1.0)
    tw.env.run(until=2400)
    T._catch_up()
    m = T.n_veh
    out = {"status": T.v_status[:m].copy(), "arrive": T.v_arrive[:m].copy(), "dist": T.v_dist[:m].copy(),
           "rlen": T.v_rlen[:m].copy(), "reroutes": T.reroutes}
    return out, rows[0], ahead[0]


def test_lazy_rows_give_the_same_trips_as_rebuilding_every_row(monkeypatch):
    with monkeypatch.context() as mp:
        eager, rows_eager, _ = _run(mp, eager=True)
    lazy, rows_lazy, _ = _run(monkeypatch)
    assert eager["reroutes"] > 0 and (eager["status"] == M.K.ARRIVED).sum() > 500  # re-routing and trips happened
    for k in eager:
        assert np.array_equal(eager[k], lazy[k]), k
    assert rows_lazy < rows_eager


def test_deferred_rows_with_drivers_meeting_the_closure(monkeypatch):
    """Drivers re-routing at a closed link read rows no refresh built for them: building their rows on their
    versions keeps every trip as building every row at once; without it (the mutant) trips differ."""
    kw = {"closure_s": (400, 900), "share": 0.2, "reroute_s": 120, "trips": (4000, 1200.0, 11), "busiest": True}
    with monkeypatch.context() as mp:
        now, rows_now, ahead = _run(mp, defer=False, **kw)
    with monkeypatch.context() as mp:
        mutant, _, _ = _run(mp, drop_ahead=True, **kw)
    deferred, rows_deferred, _ = _run(monkeypatch, **kw)
    assert ahead > 0 and now["reroutes"] > 0
    for k in now:
        assert np.array_equal(now[k], deferred[k]), k
    assert rows_deferred < rows_now
    assert any(not np.array_equal(now[k], mutant[k]) for k in now)
