"""Shortest paths on the city graph's CSR arrays: numba Dijkstra kernels plus small Python helpers.

Link costs are a float64 array indexed by link (seconds, metres, ...; must be >= 0). A cost of
``inf`` makes a link impassable. Kernels use a binary heap with lazy deletion (stale entries are
skipped on pop), so each run is O((N + L) log L).
"""
from __future__ import annotations

from typing import Hashable

import numpy as np
import numba
from numba import njit, prange

from networks.graph import CityGraph

__all__ = ["dijkstra_to", "dijkstra_from", "next_hop_tables", "route_tables", "update_route_tables", "path_links", "path_from_next_hop",
           "shortest_path", "shortest_time", "link_costs", "reachable_share"]


# ---- binary heap on parallel arrays (keys float64, values int32) -------------------------------
@njit(cache=True, inline="always")
def heap_push(keys, vals, size, key, val):
    i = size
    keys[i] = key
    vals[i] = val
    while i > 0:
        parent = (i - 1) >> 1
        if keys[parent] <= keys[i]:
            break
        keys[parent], keys[i] = keys[i], keys[parent]
        vals[parent], vals[i] = vals[i], vals[parent]
        i = parent
    return size + 1


@njit(cache=True, inline="always")
def heap_pop(keys, vals, size):
    """Remove the minimum; return (key, val, new_size)."""
    key, val = keys[0], vals[0]
    size -= 1
    keys[0], vals[0] = keys[size], vals[size]
    i = 0
    while True:
        left = 2 * i + 1
        if left >= size:
            break
        child = left
        if left + 1 < size and keys[left + 1] < keys[left]:
            child = left + 1
        if keys[i] <= keys[child]:
            break
        keys[child], keys[i] = keys[i], keys[child]
        vals[child], vals[i] = vals[i], vals[child]
        i = child
    return key, val, size


@njit(cache=True)
def _dijkstra(source, link_cost, indptr, links, link_other, n_nodes):
    """One-to-all Dijkstra over CSR adjacency; ``link_other[l]`` is the node reached through link l."""
    dist = np.full(n_nodes, np.inf)
    via = np.full(n_nodes, -1, np.int32)
    done = np.zeros(n_nodes, np.bool_)
    cap = link_cost.shape[0] + 1
    keys = np.empty(cap, np.float64)
    vals = np.empty(cap, np.int32)
    dist[source] = 0.0
    size = heap_push(keys, vals, 0, 0.0, np.int32(source))
    while size > 0:
        d, u, size = heap_pop(keys, vals, size)
        if done[u]:
            continue
        done[u] = True
        for k in range(indptr[u], indptr[u + 1]):
            l = links[k]
            c = link_cost[l]
            if c == np.inf:
                continue
            w = link_other[l]
            nd = d + c
            if nd < dist[w]:
                dist[w] = nd
                via[w] = l
                size = heap_push(keys, vals, size, nd, w)
    return dist, via


@njit(cache=True)
def dijkstra_to(dest, link_cost, in_indptr, in_links, link_from, n_nodes):
    """Reverse Dijkstra towards ``dest``: (dist float64[N] cost v -> dest, next_link int32[N] link to take at v).

    ``next_link[v]`` is -1 when v == dest or dest is unreachable from v (then dist[v] = inf).
    """
    return _dijkstra(dest, link_cost, in_indptr, in_links, link_from, n_nodes)


@njit(cache=True)
def dijkstra_from(orig, link_cost, out_indptr, out_links, link_to, n_nodes):
    """Forward Dijkstra from ``orig``: (dist float64[N], pred_link int32[N] last link into v, -1 if none)."""
    return _dijkstra(orig, link_cost, out_indptr, out_links, link_to, n_nodes)


@njit(cache=True, parallel=True)
def next_hop_tables(dests, link_cost, in_indptr, in_links, link_from, n_nodes):
    """Next-hop tables for many destinations: (dist float32[D, N], next_link int32[D, N]); row d is dests[d]."""
    D = dests.shape[0]
    dist = np.empty((D, n_nodes), np.float32)
    nxt = np.empty((D, n_nodes), np.int32)
    for i in prange(D):
        d, h = _dijkstra(dests[i], link_cost, in_indptr, in_links, link_from, n_nodes)
        for v in range(n_nodes):
            dist[i, v] = d[v]
            nxt[i, v] = h[v]
    return dist, nxt


@njit(cache=True)
def path_links(orig, dest, pred_link, link_from):
    """Links from ``orig`` to ``dest`` in travel order, read back from a ``dijkstra_from`` pred array.

    Empty when orig == dest or dest is unreachable.
    """
    n = 0
    v = dest
    while v != orig:
        l = pred_link[v]
        if l < 0:
            return np.empty(0, np.int32)
        n += 1
        v = link_from[l]
    out = np.empty(n, np.int32)
    v = dest
    for k in range(n - 1, -1, -1):
        l = pred_link[v]
        out[k] = l
        v = link_from[l]
    return out


@njit(cache=True)
def path_from_next_hop(orig, next_link, link_to, max_links):
    """Links from ``orig`` following a next-hop row (``dijkstra_to`` result) until it ends; empty if none.

    ``max_links`` guards against cycles in a stale table (returns what was walked so far).
    """
    out = np.empty(max_links, np.int32)
    n = 0
    v = orig
    while n < max_links:
        l = next_link[v]
        if l < 0:
            break
        out[n] = l
        n += 1
        v = link_to[l]
    return out[:n].copy()


@njit(cache=True, parallel=True)
def _reach_counts(out_indptr, out_links, link_to, n_nodes):
    """For each node, how many other nodes it reaches (BFS ignoring costs)."""
    counts = np.zeros(n_nodes, np.int64)
    for s in prange(n_nodes):
        seen = np.zeros(n_nodes, np.bool_)
        stack = np.empty(n_nodes, np.int32)
        seen[s] = True
        stack[0] = s
        top, c = 1, 0
        while top > 0:
            top -= 1
            u = stack[top]
            for k in range(out_indptr[u], out_indptr[u + 1]):
                w = link_to[out_links[k]]
                if not seen[w]:
                    seen[w] = True
                    stack[top] = w
                    top += 1
                    c += 1
        counts[s] = c
    return counts


# ---- Python helpers ----------------------------------------------------------------------------
def link_costs(city: CityGraph, weight: str | np.ndarray = "fft_s") -> np.ndarray:
    """Per-link cost array: a LinkArrays field ('fft_s', 'length_m'), an edge attribute name, or an array."""
    a = city.arrays
    if isinstance(weight, np.ndarray):
        cost = np.ascontiguousarray(weight, dtype=np.float64)
        if cost.shape != (a.n_links,):
            raise ValueError(f"weight array has shape {cost.shape}, expected ({a.n_links},)")
    elif hasattr(a, weight) and getattr(a, weight).shape == (a.n_links,):
        cost = np.ascontiguousarray(getattr(a, weight), dtype=np.float64)
    else:
        cost = np.array([float(city.link_attr(i)[weight]) for i in range(a.n_links)], np.float64)
    if np.any(cost < 0) or np.any(np.isnan(cost)):
        raise ValueError("link costs must be >= 0 (inf = impassable), not NaN")
    return cost


def _search(city: CityGraph, orig: Hashable, dest: Hashable, weight) -> tuple[np.ndarray, np.ndarray, int, int]:
    a = city.arrays
    o, d = city.node_index(orig), city.node_index(dest)
    dist, pred = dijkstra_from(o, link_costs(city, weight), a.out_indptr, a.out_links, a.link_to, a.n_nodes)
    return dist, pred, o, d


def shortest_path(city: CityGraph, orig: Hashable, dest: Hashable,
                  weight: str | np.ndarray = "fft_s") -> list[int]:
    """Link indices of a least-cost path orig -> dest (node ids or indices); [] if none or orig == dest."""
    dist, pred, o, d = _search(city, orig, dest, weight)
    return [int(l) for l in path_links(o, d, pred, city.arrays.link_from)]


def shortest_time(city: CityGraph, orig: Hashable, dest: Hashable,
                  weight: str | np.ndarray = "fft_s") -> float:
    """Least cost orig -> dest (seconds with the default free-flow weight); inf if unreachable."""
    dist, _, _, d = _search(city, orig, dest, weight)
    return float(dist[d])


def reachable_share(city: CityGraph) -> float:
    """Share of ordered node pairs (o != d) with a directed path o -> d (1.0 when strongly connected)."""
    a = city.arrays
    if a.n_nodes < 2:
        return 1.0
    counts = _reach_counts(a.out_indptr, a.out_links, a.link_to, a.n_nodes)
    return float(counts.sum()) / (a.n_nodes * (a.n_nodes - 1))


# ---- routing tables that follow changing link costs (the traffic model's time-dependent routing) -------
_SERIAL_BELOW = 1_000_000  # destinations x links: below this, threads cost more than they save


@njit(cache=True)
def _table_rows(lo, hi, dests, link_cost, in_indptr, in_links, link_from, n_nodes, dist, nxt):
    for i in range(lo, hi):
        d, h = _dijkstra(dests[i], link_cost, in_indptr, in_links, link_from, n_nodes)
        dist[i] = d
        nxt[i] = h


@njit(cache=True, parallel=True)
def _tables_parallel(dests, link_cost, in_indptr, in_links, link_from, n_nodes, dist, nxt, n_chunks):
    D = dests.shape[0]
    chunk = (D + n_chunks - 1) // n_chunks
    for t in prange(n_chunks):
        _table_rows(t * chunk, min(D, (t + 1) * chunk), dests, link_cost, in_indptr, in_links, link_from, n_nodes,
                    dist, nxt)


def route_tables(dests: np.ndarray, link_cost: np.ndarray, city_arrays) -> tuple[np.ndarray, np.ndarray]:
    """Full tables towards each destination: (dist float64[D, N], next_link int32[D, N]); threads if large."""
    a = city_arrays
    dests = np.asarray(dests, np.int32)
    dist = np.empty((dests.shape[0], a.n_nodes), np.float64)
    nxt = np.empty((dests.shape[0], a.n_nodes), np.int32)
    args = (dests, link_cost, a.in_indptr, a.in_links, a.link_from, a.n_nodes, dist, nxt)
    if dests.shape[0] * a.n_links < _SERIAL_BELOW:
        _table_rows(0, dests.shape[0], *args)
    else:
        _tables_parallel(*args, 4 * numba.get_num_threads())
    return dist, nxt


@njit(cache=True)
def _update_row(dist, nxt, new_cost, changed, old_cost, in_indptr, in_links, out_indptr, out_links,
                link_from, link_to, n_nodes, keys, vals, bad, kids_ptr, kids, stack):
    """Repair one destination's tree after finite cost changes (dynamic shortest paths, Ramalingam-Reps style).

    1. nodes whose tree path uses a link that got dearer are invalidated (their subtree in the reverse tree);
    2. they are re-seeded from valid neighbours, cheaper links seed shortcuts;
    3. a multi-source Dijkstra from the seeds fixes every label. Distances equal a full recomputation.
    """
    n_bad_roots = 0
    for k in range(changed.shape[0]):
        l = changed[k]
        if new_cost[l] > old_cost[l] and nxt[link_from[l]] == l:
            n_bad_roots += 1
    size = 0
    if n_bad_roots > 0:
        for v in range(n_nodes + 1):  # children lists of the reverse tree (CSR)
            kids_ptr[v] = 0
        for w in range(n_nodes):
            l = nxt[w]
            if l >= 0:
                kids_ptr[link_to[l] + 1] += 1
        for v in range(n_nodes):
            kids_ptr[v + 1] += kids_ptr[v]
        for w in range(n_nodes):
            l = nxt[w]
            if l >= 0:
                p = link_to[l]
                kids[kids_ptr[p]] = w
                kids_ptr[p] += 1
        for v in range(n_nodes, 0, -1):
            kids_ptr[v] = kids_ptr[v - 1]
        kids_ptr[0] = 0
        top = 0
        for k in range(changed.shape[0]):
            l = changed[k]
            u = link_from[l]
            if new_cost[l] > old_cost[l] and nxt[u] == l and not bad[u]:
                bad[u] = True
                stack[top] = u
                top += 1
        nb = 0
        while top > 0:
            top -= 1
            u = stack[top]
            kids[n_nodes + nb] = u  # the tail of ``kids`` lists the invalidated nodes
            nb += 1
            for j in range(kids_ptr[u], kids_ptr[u + 1]):
                w = kids[j]
                if not bad[w]:
                    bad[w] = True
                    stack[top] = w
                    top += 1
        for i in range(nb):
            u = kids[n_nodes + i]
            dist[u] = np.inf
            nxt[u] = -1
        for i in range(nb):
            u = kids[n_nodes + i]
            for j in range(out_indptr[u], out_indptr[u + 1]):
                l = out_links[j]
                x = link_to[l]
                if not bad[x]:
                    nd = dist[x] + new_cost[l]
                    if nd < dist[u]:
                        dist[u] = nd
                        nxt[u] = l
            if dist[u] < np.inf:
                size = heap_push(keys, vals, size, dist[u], np.int32(u))
        for i in range(nb):
            bad[kids[n_nodes + i]] = False
    for k in range(changed.shape[0]):
        l = changed[k]
        if new_cost[l] < old_cost[l]:
            u, v = link_from[l], link_to[l]
            nd = dist[v] + new_cost[l]
            if nd < dist[u]:
                dist[u] = nd
                nxt[u] = l
                size = heap_push(keys, vals, size, nd, np.int32(u))
    while size > 0:
        d, u, size = heap_pop(keys, vals, size)
        if d > dist[u]:
            continue
        for j in range(in_indptr[u], in_indptr[u + 1]):
            l = in_links[j]
            w = link_from[l]
            nd = d + new_cost[l]
            if nd < dist[w]:
                dist[w] = nd
                nxt[w] = l
                size = heap_push(keys, vals, size, nd, np.int32(w))


@njit(cache=True)
def _update_rows(lo, hi, dist, nxt, new_cost, changed, old_cost, in_indptr, in_links, out_indptr, out_links,
                 link_from, link_to, n_nodes):
    # heap bound: every node is finalised once, so pushes <= seeds (N) + relaxations (L) + shortcuts (changed)
    cap = n_nodes + 2 * new_cost.shape[0] + changed.shape[0] + 16
    keys = np.empty(cap)
    vals = np.empty(cap, np.int32)
    bad = np.zeros(n_nodes, np.bool_)
    kids_ptr = np.zeros(n_nodes + 1, np.int64)
    kids = np.empty(2 * n_nodes, np.int32)
    stack = np.empty(n_nodes, np.int32)
    for i in range(lo, hi):
        _update_row(dist[i], nxt[i], new_cost, changed, old_cost, in_indptr, in_links, out_indptr, out_links,
                    link_from, link_to, n_nodes, keys, vals, bad, kids_ptr, kids, stack)


@njit(cache=True, parallel=True)
def _update_parallel(dist, nxt, new_cost, changed, old_cost, in_indptr, in_links, out_indptr, out_links,
                     link_from, link_to, n_nodes, n_chunks):
    D = dist.shape[0]
    chunk = (D + n_chunks - 1) // n_chunks
    for t in prange(n_chunks):
        _update_rows(t * chunk, min(D, (t + 1) * chunk), dist, nxt, new_cost, changed, old_cost, in_indptr,
                     in_links, out_indptr, out_links, link_from, link_to, n_nodes)


def update_route_tables(dist: np.ndarray, nxt: np.ndarray, old_cost: np.ndarray, new_cost: np.ndarray,
                        city_arrays) -> int:
    """Update tables from :func:`route_tables` in place for finite cost changes; return links changed.

    Costs that become or stop being infinite (closures) need a full :func:`route_tables` instead.
    """
    a = city_arrays
    changed = np.flatnonzero(new_cost != old_cost).astype(np.int64)
    if changed.size == 0 or dist.shape[0] == 0:
        return int(changed.size)
    if not (np.isfinite(new_cost[changed]).all() and np.isfinite(old_cost[changed]).all()):
        raise ValueError("update_route_tables handles finite cost changes only; rebuild with route_tables")
    args = (dist, nxt, new_cost, changed, old_cost, a.in_indptr, a.in_links, a.out_indptr, a.out_links,
            a.link_from, a.link_to, a.n_nodes)
    if dist.shape[0] * a.n_links < _SERIAL_BELOW:
        _update_rows(0, dist.shape[0], *args)
    else:
        _update_parallel(*args, 4 * numba.get_num_threads())
    return int(changed.size)
