"""Routing kernels agree with networkx on random grids with random costs, impassable links and dead ends."""
from __future__ import annotations

import networkx as nx
import numpy as np
import pytest

from networks.routing import (dijkstra_from, dijkstra_to, link_costs, next_hop_tables, path_from_next_hop,
                              path_links, reachable_share, shortest_path, shortest_time)
from networks.synthetic import grid, line


def _reference(city, cost) -> nx.DiGraph:
    """networkx DiGraph on node indices with the finite-cost links (grids have no parallel links)."""
    a = city.arrays
    D = nx.DiGraph()
    D.add_nodes_from(range(a.n_nodes))
    for l in range(a.n_links):
        if np.isfinite(cost[l]):
            D.add_edge(int(a.link_from[l]), int(a.link_to[l]), w=float(cost[l]))
    return D


def _random_case(seed: int):
    rng = np.random.default_rng(seed)
    city = grid(int(rng.integers(3, 9)), int(rng.integers(3, 9)))
    a = city.arrays
    cost = rng.uniform(1.0, 100.0, a.n_links)
    cost[rng.random(a.n_links) < 0.3] = np.inf  # impassable links: some nodes become unreachable
    return rng, city, cost


@pytest.mark.parametrize("seed", range(8))
def test_dijkstra_to_matches_networkx(seed):
    """Reverse Dijkstra distances equal networkx's; following next_link costs exactly dist."""
    rng, city, cost = _random_case(seed)
    a = city.arrays
    R = _reference(city, cost).reverse()
    for dest in rng.choice(a.n_nodes, 4, replace=False):
        dist, nxt = dijkstra_to(int(dest), cost, a.in_indptr, a.in_links, a.link_from, a.n_nodes)
        ref = nx.single_source_dijkstra_path_length(R, int(dest), weight="w")
        for v in range(a.n_nodes):
            if v in ref:
                assert dist[v] == pytest.approx(ref[v], rel=1e-12)
                walked = path_from_next_hop(v, nxt, a.link_to, a.n_links)
                assert (a.link_to[walked[-1]] == dest) if len(walked) else v == dest
                assert cost[walked].sum() == pytest.approx(dist[v], rel=1e-12)
            else:
                assert np.isinf(dist[v]) and nxt[v] == -1
        assert nxt[dest] == -1 and dist[dest] == 0.0


@pytest.mark.parametrize("seed", range(8))
def test_dijkstra_from_and_path_links_match_networkx(seed):
    """Forward Dijkstra + path_links give a connected path of the networkx cost, or [] if unreachable."""
    rng, city, cost = _random_case(100 + seed)
    a = city.arrays
    D = _reference(city, cost)
    orig = int(rng.integers(a.n_nodes))
    dist, pred = dijkstra_from(orig, cost, a.out_indptr, a.out_links, a.link_to, a.n_nodes)
    ref = nx.single_source_dijkstra_path_length(D, orig, weight="w")
    for dest in range(a.n_nodes):
        p = path_links(orig, dest, pred, a.link_from)
        if dest in ref and dest != orig:
            assert dist[dest] == pytest.approx(ref[dest], rel=1e-12)
            assert a.link_from[p[0]] == orig and a.link_to[p[-1]] == dest
            assert np.all(a.link_to[p[:-1]] == a.link_from[p[1:]])
            assert cost[p].sum() == pytest.approx(ref[dest], rel=1e-12)
        else:
            assert len(p) == 0
            assert dest == orig or np.isinf(dist[dest])


def test_next_hop_tables_equal_single_runs():
    """Each row of the parallel tables equals a single dijkstra_to run (as float32)."""
    rng, city, cost = _random_case(7)
    a = city.arrays
    dests = rng.choice(a.n_nodes, 6, replace=False).astype(np.int32)
    dist, nxt = next_hop_tables(dests, cost, a.in_indptr, a.in_links, a.link_from, a.n_nodes)
    assert dist.dtype == np.float32 and nxt.dtype == np.int32 and dist.shape == (6, a.n_nodes)
    for i, d in enumerate(dests):
        d1, n1 = dijkstra_to(int(d), cost, a.in_indptr, a.in_links, a.link_from, a.n_nodes)
        np.testing.assert_array_equal(dist[i], d1.astype(np.float32))
        np.testing.assert_array_equal(nxt[i], n1)


def test_python_helpers_on_node_ids():
    """shortest_path/shortest_time take node ids; a corner-to-corner grid trip is Manhattan distance."""
    city = grid(5, 4, spacing_m=100.0, speed_mps=10.0)
    assert shortest_time(city, "n0_0", "n4_3") == pytest.approx(7 * 100.0 / 10.0)
    assert shortest_time(city, "n0_0", "n4_3", weight="length_m") == pytest.approx(700.0)
    path = shortest_path(city, "n0_0", "n4_3")
    assert len(path) == 7 and city.link_ids[path[0]].startswith("n0_0>")
    assert shortest_path(city, "n2_2", "n2_2") == []
    with pytest.raises(ValueError):
        link_costs(city, -np.ones(city.arrays.n_links))


def test_closed_link_cuts_corridor():
    """An inf-cost link on a one-way corridor makes downstream nodes unreachable; reachability is one-way."""
    city = line(4)
    cost = city.arrays.fft_s.copy()
    assert np.isfinite(shortest_time(city, "c0", "c4", weight=cost))
    cost[city.link_index("c2>c3")] = np.inf
    assert np.isinf(shortest_time(city, "c0", "c4", weight=cost))
    assert shortest_path(city, "c0", "c4", weight=cost) == []
    assert shortest_path(city, "c4", "c0") == []
    assert reachable_share(city) == pytest.approx(10 / 20)  # 4+3+2+1 of 5*4 ordered pairs
    assert reachable_share(grid(4, 4)) == 1.0


def test_incremental_table_update_equals_full_recompute():
    """After random finite cost changes, updated tables have the same distances as rebuilt ones, and every
    next hop lies on a shortest path."""
    from networks.routing import route_tables, update_route_tables

    rng = np.random.default_rng(7)
    city = grid(12, 12, spacing_m=100.0)
    a = city.arrays
    cost = a.fft_s * rng.uniform(0.8, 1.5, a.n_links)
    dests = rng.choice(a.n_nodes, 30, replace=False).astype(np.int32)
    dist, nxt = route_tables(dests, cost, a)
    for round_ in range(6):
        new = cost.copy()
        k = rng.choice(a.n_links, 25, replace=False)
        new[k] *= rng.uniform(0.3, 4.0, k.size)  # some dearer, some cheaper
        n_changed = update_route_tables(dist, nxt, cost, new, a)
        ref_dist, _ = route_tables(dests, new, a)
        assert n_changed == 25
        np.testing.assert_allclose(dist, ref_dist, rtol=1e-12)
        for i in range(len(dests)):
            for v in range(a.n_nodes):
                l = nxt[i, v]
                if v == dests[i]:
                    continue
                assert l >= 0 and a.link_from[l] == v
                assert dist[i, a.link_to[l]] + new[l] == pytest.approx(dist[i, v], rel=1e-12)
        cost = new
