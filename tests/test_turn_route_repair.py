"""Turn-based route rows repaired in place (session 10, issue 13 speed): the same rows as building them anew.

``networks.routing.turn_route_repair`` takes a row that holds a table built for its target on any earlier costs and
brings it to the new costs: the old tree's paths re-costed, every edge checked, a decrease-only Dijkstra where a
path changed, next links read off the labels. Where two successors give a link its label with equal labels of
their own, a full build's choice depends on its heap order; the repair then builds the row anew.

- On a grid without a junction model (every link continues onto every out-link, no movement costs) and on a grid
  with movements (movement costs, turns the junction model forbids), after random cost changes, closures and
  re-openings, every repaired row equals the row built from scratch, column by column, and rows were repaired,
  not rebuilt (no ties with random costs).
- On a uniform grid (equal costs: ties everywhere) repaired rows still equal rebuilt ones: the tie rule rebuilds.
- The model with repairs gives bit-identical trips to the model building every row from scratch, on a congested
  grid with re-routing and a closure (and rows were repaired).
- The pinned ends' free-flow rows kept per destination (``_freeflow_ends``) give ``freeflow_od_links``' first and
  last links, before and after a closure changes the free-flow costs.
"""
from __future__ import annotations

import numpy as np

import agents.traffic.meso as M
import networks.routing as R
from agents.traffic.sumo_setup import freeflow_od_links
from conftest import drive_grid_with_closure, make_twin


def _grid_twin(nx: int, ny: int, junctions: bool, **traffic):
    tw = make_twin({"city": {"source": "grid", "grid": {"nx": nx, "ny": ny, "spacing_m": 150}},
                    "time": {"duration_s": 2400, "step_s": 1, "record_interval_s": 600},
                    "traffic": {"junctions": junctions, **traffic}})
    return tw


def _graph(tw, junctions: bool):
    a = tw.city.arrays
    if junctions:
        j = tw.city.junctions()
        mv_ptr, mv_out = j.mv_ptr.astype(np.int64), j.mv_out.astype(np.int32)
    else:
        mv_ptr, mv_out = np.zeros(a.n_links + 1, np.int64), np.zeros(0, np.int32)
    g = R.movement_graph(a, mv_ptr, mv_out)
    return a, g, R.movement_successors(g, a.n_links), len(mv_out)


def _random_changes(junctions: bool, seed: int) -> tuple[int, int, int]:
    """Repair rows through 40 cost changes (10% of links and 5% of movements dearer or cheaper, some links closed,
    closed links reopened); return (rows compared, rows that differed, rows rebuilt by the tie rule)."""
    tw = _grid_twin(7, 6, junctions)
    a, g, succ, n_mv = _graph(tw, junctions)
    if junctions:
        assert n_mv > 0 and (g[2] >= 0).any()  # movements with costs of their own
    L, N = a.n_links, a.n_nodes
    rng = np.random.default_rng(seed)
    lc = a.fft_s * rng.uniform(1.0, 2.0, L)
    mv = rng.uniform(0.0, 15.0, n_mv)
    targets = np.concatenate([rng.choice(N, 12, replace=False), N + rng.choice(L, 12, replace=False)]).astype(np.int64)
    rows = np.arange(len(targets), dtype=np.int64)
    cur = np.full((len(targets), L + N), -1, np.int32)
    R.turn_route_rows(targets, lc, mv, g, a, cur, rows)
    compared = differed = rebuilt = 0
    closed: list[int] = []
    for it in range(40):
        lc = lc.copy()
        mv = mv.copy()
        ch = rng.random(L) < 0.1
        lc[ch] = np.where(np.isinf(lc[ch]), lc[ch], lc[ch] * rng.uniform(0.7, 1.4, ch.sum()))
        chm = rng.random(n_mv) < 0.05
        mv[chm] *= rng.uniform(0.5, 2.0, chm.sum())
        if it % 4 == 1:  # close two links
            shut = rng.choice(L, 2, replace=False)
            lc[shut] = np.inf
            closed.extend(int(x) for x in shut)
        elif it % 4 == 3 and closed:  # reopen them
            lc[closed] = a.fft_s[closed] * 1.5
            closed = []
        ref = np.full_like(cur, -1)
        R.turn_route_rows(targets, lc, mv, g, a, ref, rows)
        rebuilt += R.turn_route_repair(targets, lc, mv, g, succ, a, cur, rows, np.ones(len(rows), np.bool_))
        compared += len(rows)
        differed += int((ref != cur).any(axis=1).sum())
    return compared, differed, rebuilt


def test_repaired_rows_equal_rebuilt_rows_on_a_grid_without_movements():
    compared, differed, rebuilt = _random_changes(junctions=False, seed=1)
    assert compared == 40 * 24
    assert differed == 0
    assert rebuilt == 0  # random costs: no ties, every row was repaired


def test_repaired_rows_equal_rebuilt_rows_with_movements_closures_and_reopenings():
    for seed in (2, 3):
        compared, differed, rebuilt = _random_changes(junctions=True, seed=seed)
        assert compared == 40 * 24
        assert differed == 0
        assert rebuilt == 0


def test_ties_rebuild_the_row_and_it_still_equals_the_full_build():
    """Equal link costs on a grid: many shortest paths of exactly equal cost; which one a build takes depends on
    its heap order, so the repair hands those rows to the full build. Every row equals the full build's; a
    repair that kept its own tie choice (the mutant: the tie rule switched off) would differ on some."""
    tw = _grid_twin(6, 6, False)
    a, g, succ, _ = _graph(tw, False)
    L, N = a.n_links, a.n_nodes
    targets = np.arange(N, dtype=np.int64)
    rows = np.arange(N, dtype=np.int64)
    lc = np.full(L, 10.0)
    cur = np.full((N, L + N), -1, np.int32)
    R.turn_route_rows(targets, np.full(L, 12.0), np.zeros(0), g, a, cur, rows)  # built on other (equal) costs
    lc[::7] = 11.0
    ref = np.full_like(cur, -1)
    R.turn_route_rows(targets, lc, np.zeros(0), g, a, ref, rows)
    rep = cur.copy()
    rebuilt = R.turn_route_repair(targets, lc, np.zeros(0), g, succ, a, rep, rows, np.ones(N, np.bool_))
    assert rebuilt > 0
    assert np.array_equal(ref, rep)
    # the mutant: a tie never reported (every repaired row kept)
    mutant = cur.copy()
    scratch = np.empty(L + N)
    keys = np.empty(len(g[1]) + L + 16)
    vals = np.empty(len(keys), np.int32)
    stack = np.empty(L + 1, np.int32)
    mark = np.zeros(L, np.bool_)
    for i in range(N):
        R._turn_repair_row(targets[i], N, lc, np.zeros(1), *g, *succ, a.link_to, a.out_indptr, a.out_links,
                           a.in_indptr, a.in_links, scratch, mutant[i], keys, vals, stack, mark)
    assert not np.array_equal(ref, mutant)


def _model_run(monkeypatch, repair: bool) -> tuple[dict, int]:
    """A congested 6x6 grid with turn tables, re-routing and a closed link; (trips, rows repaired)."""
    repaired = [0]
    orig = M.turn_route_rows

    def rows_fn(targets, link, mv, graph, a, nxt, rows, rep=None, succ=None):
        if rep is not None:
            repaired[0] += int(np.sum(rep)) if repair else 0
        return orig(targets, link, mv, graph, a, nxt, rows, rep if repair else None, succ)

    monkeypatch.setattr(M, "turn_route_rows", rows_fn)
    tw = _grid_twin(6, 6, True, turn_costs=True, pin_end_links=True, reroute_share=0.3, reroute_interval_s=120,
                    route_refresh_s=30, route_cost_tau_s=20.0)
    tw.setup()
    T = tw.traffic
    assert T.turn
    drive_grid_with_closure(tw)
    T._catch_up()
    m = T.n_veh
    return {"status": T.v_status[:m].copy(), "arrive": T.v_arrive[:m].copy(), "dist": T.v_dist[:m].copy(),
            "rlen": T.v_rlen[:m].copy(), "reroutes": T.reroutes}, repaired[0]


def test_the_model_with_repaired_rows_drives_the_same_trips(monkeypatch):
    with monkeypatch.context() as mp:
        built, _ = _model_run(mp, repair=False)
    repaired, n_repaired = _model_run(monkeypatch, repair=True)
    assert n_repaired > 100 and built["reroutes"] > 0 and (built["status"] == M.K.ARRIVED).sum() > 1000
    for k in built:
        assert np.array_equal(built[k], repaired[k]), k


def test_kept_freeflow_rows_give_the_pinned_ends_of_freeflow_od_links(monkeypatch):
    tw = _grid_twin(6, 5, True, pin_end_links=True)
    tw.setup()
    T = tw.traffic
    rng = np.random.default_rng(8)
    for step in range(3):
        if step == 1:
            T.set_capacity_factor(7, 0.0)  # the kept rows must follow the closure
        if step == 2:
            T.set_capacity_factor(7, 1.0)
        for _ in range(4):  # several calls: rows added to the kept table, then read from it
            o = rng.integers(0, T.N, 60).astype(np.int32)
            d = rng.integers(0, T.N, 60).astype(np.int32)
            cost = np.where(T.cap_factor > 0, T.fft, np.inf)
            f0, l0, _, _ = freeflow_od_links(T.city, cost, o, d)
            f1, l1 = T._freeflow_ends(o, d)
            assert np.array_equal(f0, f1) and np.array_equal(l0, l1)
        if step == 1:
            assert (l0 == 7).sum() == 0 and (f0 == 7).sum() == 0
    # a second run on the same city graph starts from the rows the first one kept, and gives the same ends
    kept = tw.city._freeflow_rows
    assert 1 <= len(kept) <= 4
    tw2 = make_twin({"city": {"source": "grid", "grid": {"nx": 6, "ny": 5, "spacing_m": 150}},
                     "time": {"duration_s": 2400, "step_s": 1, "record_interval_s": 600},
                     "traffic": {"junctions": True, "pin_end_links": True}}, city=tw.city)
    tw2.setup()
    T2 = tw2.traffic
    cost = np.where(T2.cap_factor > 0, T2.fft, np.inf)
    slot, _ = kept[cost.tobytes()]
    o = rng.integers(0, T2.N, 200).astype(np.int32)
    d = rng.choice(np.flatnonzero(slot >= 0), 200).astype(np.int32)  # destinations the first run kept
    built = []
    monkeypatch.setattr(M, "next_hop_tables", lambda *args: built.append(1) or R.next_hop_tables(*args))
    f0, l0, _, _ = freeflow_od_links(T2.city, cost, o, d)
    f1, l1 = T2._freeflow_ends(o, d)
    assert not built  # read from the kept rows, no Dijkstra
    assert np.array_equal(f0, f1) and np.array_equal(l0, l1)


def test_threaded_turn_kernels_are_loaded_by_the_warm_up_helper():
    """``load_threaded_turn_kernels`` (the validation's warm-up) leaves the threaded route kernels compiled for the
    argument types a run uses, so a timed run does not compile them; with one numba thread it does nothing."""
    import numba

    tw = _grid_twin(4, 4, True)
    j = tw.city.junctions()
    if numba.get_num_threads() == 1:
        assert R.load_threaded_turn_kernels(tw.city.arrays, j.mv_ptr, j.mv_out) is False
        return
    assert R.load_threaded_turn_kernels(tw.city.arrays, j.mv_ptr, j.mv_out) is True
    assert R._turn_parallel.signatures and R._turn_repair_parallel.signatures and R._next_hop_parallel.signatures
