"""Speed work must not change results: the fast code paths against plain ones, compared at run time.

- the routing-table repair (gathered adjacency, children read from in-links, hole-moving heap) against a plain
  Python transcription of the same dynamic shortest-path algorithm (children from a reverse-tree CSR, swapping
  heap), on a grid where equal costs make ties everywhere: the tables must be equal bit for bit;
- whole runs with the kernel's cached argument tuples against runs that rebuild them before every kernel call,
  and with the fast repair against the plain one: every result variable identical.
"""
from __future__ import annotations

import numpy as np
from networks.routing import heap_pop, heap_push, route_tables, update_route_tables
from networks.synthetic import grid


def plain_update_route_tables(dist, nxt, old_cost, new_cost, a) -> int:
    """The repair as first written (one row at a time, Python): the reference the fast kernel must match."""
    changed = np.flatnonzero(new_cost != old_cost)
    N = a.n_nodes
    for i in range(dist.shape[0]):
        d_row, h_row = dist[i], nxt[i]
        keys = np.empty(N + 2 * len(new_cost) + len(changed) + 16)
        vals = np.empty(len(keys), np.int32)
        size = 0
        roots = [l for l in changed if new_cost[l] > old_cost[l] and h_row[a.link_from[l]] == l]
        if roots:
            kids: list[list[int]] = [[] for _ in range(N)]
            for w in range(N):  # children lists in ascending node order, as the CSR built by a loop over w
                if h_row[w] >= 0:
                    kids[a.link_to[h_row[w]]].append(w)
            bad = np.zeros(N, bool)
            stack = []
            for l in changed:
                u = a.link_from[l]
                if new_cost[l] > old_cost[l] and h_row[u] == l and not bad[u]:
                    bad[u] = True
                    stack.append(u)
            invalid = []
            while stack:
                u = stack.pop()
                invalid.append(u)
                for w in kids[u]:
                    if not bad[w]:
                        bad[w] = True
                        stack.append(w)
            for u in invalid:
                d_row[u], h_row[u] = np.inf, -1
            for u in invalid:
                for j in range(a.out_indptr[u], a.out_indptr[u + 1]):
                    l = a.out_links[j]
                    x = a.link_to[l]
                    if not bad[x] and d_row[x] + new_cost[l] < d_row[u]:
                        d_row[u], h_row[u] = d_row[x] + new_cost[l], l
                if d_row[u] < np.inf:
                    size = heap_push(keys, vals, size, d_row[u], np.int32(u))
        for l in changed:
            if new_cost[l] < old_cost[l]:
                u, v = a.link_from[l], a.link_to[l]
                nd = d_row[v] + new_cost[l]
                if nd < d_row[u]:
                    d_row[u], h_row[u] = nd, l
                    size = heap_push(keys, vals, size, nd, np.int32(u))
        while size > 0:
            d, u, size = heap_pop(keys, vals, size)
            if d > d_row[u]:
                continue
            for j in range(a.in_indptr[u], a.in_indptr[u + 1]):
                l = a.in_links[j]
                w = a.link_from[l]
                nd = d + new_cost[l]
                if nd < d_row[w]:
                    d_row[w], h_row[w] = nd, l
                    size = heap_push(keys, vals, size, nd, np.int32(w))
    return len(changed)


def test_fast_repair_equals_plain_repair_bit_for_bit():
    city = grid(7, 7)
    a = city.arrays
    rng = np.random.default_rng(3)
    cost = np.full(a.n_links, 14.4)  # equal costs: ties everywhere, so any change of processing order shows
    dests = np.arange(a.n_nodes, dtype=np.int32)
    dist, nxt = route_tables(dests, cost, a)
    d_ref, h_ref = dist.copy(), nxt.copy()
    n_diff_trees = 0
    for _ in range(12):
        new = cost.copy()
        k = rng.choice(a.n_links, 10, replace=False)
        new[k] += rng.choice([-7.2, 3.6, 14.4, 28.8], size=10)  # dearer and cheaper, on the same quantised steps
        new = np.maximum(new, 0.0)
        update_route_tables(dist, nxt, cost, new, a)
        plain_update_route_tables(d_ref, h_ref, cost, new, a)
        assert np.array_equal(dist, d_ref)
        assert np.array_equal(nxt, h_ref)
        n_diff_trees += int((nxt != route_tables(dests, new, a)[1]).any())
        cost = new
    # the comparison has teeth: a full rebuild breaks these ties differently, the repair must not
    assert n_diff_trees > 0


def _run_grid(monkeypatch_fn=None):
    from twin.engine import CityTwin
    from twin.scenario import resolve_variants

    doc = {"name": "speed", "seed": 5,
           "city": {"source": "grid", "grid": {"nx": 6, "ny": 6, "spacing_m": 200.0, "lanes": 1, "speed_mps": 13.89},
                    "capacity_per_lane_vph": 600.0},
           "time": {"start": "07:00", "duration_s": 2400, "step_s": 1, "record_interval_s": 300},
           "demand": {"trips": 2500, "model": "gravity", "profile": "flat"},
           "traffic": {"backend": "meso", "reroute_interval_s": 120, "reroute_share": 0.3,
                       "closures": [{"link": "n2_2>n3_2", "start_s": 600, "end_s": 1500}]}}
    sc = resolve_variants(doc, "speed.yaml")["baseline"]
    tw = CityTwin(sc, ".")
    return tw.run(), tw


def _same(ds1, ds2):
    for k in ds1.data_vars:
        a, b = ds1[k].values, ds2[k].values
        if a.dtype.kind in "fc":
            assert np.array_equal(a, b, equal_nan=True), k
        else:
            assert np.array_equal(a, b), k


def test_cached_kernel_args_and_fast_repair_change_nothing(monkeypatch):
    """A congested grid with a closure (tables rebuilt), re-routing, growing vehicle arrays and route buffer."""
    import agents.traffic.meso as meso

    fast, tw = _run_grid()
    assert tw.traffic.table_updates > 5 and tw.traffic.reroutes > 0
    assert tw.traffic.v_cap > 1024  # the vehicle arrays were reallocated during setup or the run
    assert int(fast["net_completed"].values[-1]) > 1000  # congested, but traffic flows

    orig = meso.MesoTraffic._kernel_args

    def uncached(self):
        self.__dict__["_kargs"] = None
        return orig(self)

    monkeypatch.setattr(meso.MesoTraffic, "_kernel_args", uncached)
    monkeypatch.setattr(meso, "update_route_tables", plain_update_route_tables)
    plain, _ = _run_grid()
    _same(fast, plain)
