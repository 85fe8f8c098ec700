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
           "movement_graph", "turn_route_tables", "turn_route_rows", "movement_successors", "turn_route_repair",
           "shortest_path", "shortest_time", "link_costs", "reachable_share",
           "load_threaded_turn_kernels"]


_SERIAL_BELOW = 1_000_000  # destinations x links: below this, threads cost more than they save
# turn tables, rows x line-graph edges: a row costs ~0.5 ms on a town (Bad Hersfeld: 6,120 edges), a threaded call
# ~0.05 ms more; the 1-minute refreshes build a few to a hundred rows, so threads pay from ~4 rows on (wall, not CPU)
_TURN_SERIAL_BELOW = 20_000


# ---- binary heap on parallel arrays (keys float64, values int32) -------------------------------
@njit(cache=True, inline="always")
def heap_push(keys, vals, size, key, val):
    """Insert (key, val) into the binary min-heap ``keys[:size]``/``vals[:size]``; return the new size.

    Moves a hole up instead of swapping (the same comparisons as a swapping sift, so the same layout: ties
    between equal keys pop in the same order)."""
    i = size
    while i > 0:
        parent = (i - 1) >> 1
        if keys[parent] <= key:
            break
        keys[i] = keys[parent]
        vals[i] = vals[parent]
        i = parent
    keys[i] = key
    vals[i] = val
    return size + 1


@njit(cache=True, inline="always")
def heap_pop(keys, vals, size):
    """Remove the minimum; return (key, val, new_size). Sifts a hole down (see :func:`heap_push`)."""
    key, val = keys[0], vals[0]
    size -= 1
    lk, lv = keys[size], vals[size]
    i = 0
    while True:
        left = 2 * i + 1
        if left >= size:
            break
        child = left
        if left + 1 < size and keys[left + 1] < keys[left]:
            child = left + 1
        if lk <= keys[child]:
            break
        keys[i] = keys[child]
        vals[i] = vals[child]
        i = child
    keys[i] = lk
    vals[i] = lv
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


@njit(cache=True)
def _next_hop_rows(lo, hi, dests, link_cost, in_indptr, in_links, link_from, n_nodes, dist, nxt):
    for i in range(lo, hi):
        d, h = _dijkstra(dests[i], link_cost, in_indptr, in_links, link_from, n_nodes)
        for v in range(n_nodes):
            dist[i, v] = d[v]
            nxt[i, v] = h[v]


@njit(cache=True, parallel=True)
def _next_hop_parallel(dests, link_cost, in_indptr, in_links, link_from, n_nodes, dist, nxt):
    for i in prange(dests.shape[0]):
        _next_hop_rows(i, i + 1, dests, link_cost, in_indptr, in_links, link_from, n_nodes, dist, nxt)


def next_hop_tables(dests: np.ndarray, link_cost: np.ndarray, in_indptr: np.ndarray, in_links: np.ndarray,
                    link_from: np.ndarray, n_nodes: int) -> tuple[np.ndarray, np.ndarray]:
    """Next-hop tables for many destinations: (dist float32[D, N], next_link int32[D, N]); row d is dests[d].

    Rows are independent, so the serial kernel (one numba thread, or a small problem) gives the same tables as the
    threaded one; with one thread the parallel kernel is never compiled (numba's parallel compile costs seconds).
    """
    D = dests.shape[0]
    dist = np.empty((D, n_nodes), np.float32)
    nxt = np.empty((D, n_nodes), np.int32)
    if D * link_cost.shape[0] < _SERIAL_BELOW or numba.get_num_threads() == 1:
        _next_hop_rows(0, D, dests, link_cost, in_indptr, in_links, link_from, n_nodes, dist, nxt)
    else:
        _next_hop_parallel(dests, link_cost, in_indptr, in_links, link_from, n_nodes, dist, nxt)
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


@njit(cache=True)
def first_last_links(sel, origins, destinations, slot, nh, link_to, first, last, n_nodes):  # pragma: no cover
    """First and last link of each selected trip's path, following next-hop rows (``nh[slot[dest]]``, node
    columns) from its origin; both stay -1 where the row does not reach the destination within ``n_nodes`` links.
    The walk of ``agents.traffic.sumo_setup.freeflow_od_links`` without its time and count outputs (that file keeps
    its own copy: it is part of the SUMO reference cache key, and editing it re-runs every cached SUMO run)."""
    for k in range(sel.shape[0]):
        i = sel[k]
        d = destinations[i]
        row = slot[d]
        v = origins[i]
        cnt = 0
        prev = -1
        f = -1
        while v != d and cnt <= n_nodes:
            ln = nh[row, v]
            if ln < 0:
                break
            if cnt == 0:
                f = ln
            prev = ln
            cnt += 1
            v = link_to[ln]
        if v == d and cnt > 0:
            first[i] = f
            last[i] = prev


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
    if dests.shape[0] * a.n_links < _SERIAL_BELOW or numba.get_num_threads() == 1:  # 1 thread: never compiled
        _table_rows(0, dests.shape[0], *args)
    else:
        _tables_parallel(*args, 4 * numba.get_num_threads())
    return dist, nxt


@njit(cache=True)
def _update_row(dist, nxt, inc, dec, new_cost, in_indptr, in_links, in_from, in_cost, out_indptr, out_links, out_to,
                out_cost, link_from, link_to, keys, vals, bad, kidbuf, stack, invalid):
    """Repair one destination's tree after finite cost changes (dynamic shortest paths, Ramalingam-Reps style).

    1. nodes whose tree path uses a link that got dearer (``inc``) are invalidated (their subtree in the reverse
       tree, depth-first; a node's children are read from its in-links and pushed in ascending node order);
    2. they are re-seeded from valid neighbours, links that got cheaper (``dec``) seed shortcuts;
    3. a multi-source Dijkstra from the seeds fixes every label. Distances equal a full recomputation.
    ``in_from``/``in_cost`` and ``out_to``/``out_cost`` hold the adjacency's far nodes and new costs in CSR order
    (no indirection through link ids in the inner loops). Every comparison, addition and heap operation happens in
    the order of the plain algorithm (children lists from a full reverse-tree CSR), so ties resolve the same way.
    """
    size = 0
    top = 0
    for k in range(inc.shape[0]):
        l = inc[k]
        u = link_from[l]
        if nxt[u] == l and not bad[u]:
            bad[u] = True
            stack[top] = u
            top += 1
    if top > 0:
        nb = 0
        while top > 0:
            top -= 1
            u = stack[top]
            invalid[nb] = u
            nb += 1
            nk = 0
            for j in range(in_indptr[u], in_indptr[u + 1]):
                w = in_from[j]
                if nxt[w] == in_links[j] and not bad[w]:
                    i = nk
                    while i > 0 and kidbuf[i - 1] > w:
                        kidbuf[i] = kidbuf[i - 1]
                        i -= 1
                    kidbuf[i] = w
                    nk += 1
            for i in range(nk):
                w = kidbuf[i]
                bad[w] = True
                stack[top] = w
                top += 1
        for i in range(nb):
            u = invalid[i]
            dist[u] = np.inf
            nxt[u] = -1
        for i in range(nb):
            u = invalid[i]
            du = np.inf
            for j in range(out_indptr[u], out_indptr[u + 1]):
                x = out_to[j]
                if not bad[x]:
                    nd = dist[x] + out_cost[j]
                    if nd < du:
                        du = nd
                        nxt[u] = out_links[j]
            dist[u] = du
            if du < np.inf:
                size = heap_push(keys, vals, size, du, np.int32(u))
        for i in range(nb):
            bad[invalid[i]] = False
    for k in range(dec.shape[0]):
        l = dec[k]
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
            w = in_from[j]
            nd = d + in_cost[j]
            if nd < dist[w]:
                dist[w] = nd
                nxt[w] = in_links[j]
                size = heap_push(keys, vals, size, nd, np.int32(w))


@njit(cache=True)
def _update_rows(lo, hi, dist, nxt, inc, dec, new_cost, in_indptr, in_links, in_from, in_cost, out_indptr,
                 out_links, out_to, out_cost, link_from, link_to):
    n_nodes = dist.shape[1]
    # heap bound: every node is finalised once, so pushes <= seeds (N) + relaxations (L) + shortcuts (changed)
    cap = n_nodes + 2 * new_cost.shape[0] + inc.shape[0] + dec.shape[0] + 16
    keys = np.empty(cap)
    vals = np.empty(cap, np.int32)
    bad = np.zeros(n_nodes, np.bool_)
    maxdeg = 1
    for u in range(n_nodes):
        if in_indptr[u + 1] - in_indptr[u] > maxdeg:
            maxdeg = in_indptr[u + 1] - in_indptr[u]
    kidbuf = np.empty(maxdeg, np.int32)
    stack = np.empty(n_nodes, np.int32)
    invalid = np.empty(n_nodes, np.int32)
    for i in range(lo, hi):
        _update_row(dist[i], nxt[i], inc, dec, new_cost, in_indptr, in_links, in_from, in_cost, out_indptr,
                    out_links, out_to, out_cost, link_from, link_to, keys, vals, bad, kidbuf, stack, invalid)


@njit(cache=True, parallel=True)
def _update_parallel(dist, nxt, inc, dec, new_cost, in_indptr, in_links, in_from, in_cost, out_indptr, out_links,
                     out_to, out_cost, link_from, link_to, n_chunks):
    D = dist.shape[0]
    chunk = (D + n_chunks - 1) // n_chunks
    for t in prange(n_chunks):
        _update_rows(t * chunk, min(D, (t + 1) * chunk), dist, nxt, inc, dec, new_cost, in_indptr, in_links,
                     in_from, in_cost, out_indptr, out_links, out_to, out_cost, link_from, link_to)


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
    inc = changed[new_cost[changed] > old_cost[changed]]
    dec = changed[new_cost[changed] < old_cost[changed]]
    args = (dist, nxt, inc, dec, new_cost, a.in_indptr, a.in_links, a.link_from[a.in_links], new_cost[a.in_links],
            a.out_indptr, a.out_links, a.link_to[a.out_links], new_cost[a.out_links], a.link_from, a.link_to)
    if dist.shape[0] * a.n_links < _SERIAL_BELOW or numba.get_num_threads() == 1:
        _update_rows(0, dist.shape[0], *args)
    else:
        _update_parallel(*args, 4 * numba.get_num_threads())
    return int(changed.size)


# ---- turn-based routing tables: shortest paths over movements (in-link -> out-link), each with its own cost ----
# SUMO's router sees a junction's internal lanes: a turn costs what that connection costs, not what the link's
# other movements cost. These tables route on the line graph (one label per link), so a movement with a larger
# delay is avoided where an equal path exists, and only turns the junction model allows are taken.


def movement_graph(city_arrays, mv_ptr: np.ndarray, mv_out: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Predecessors of each link in the line graph, as CSR: (pred_ptr int64[L+1], pred_link int32[E], pred_mv
    int64[E]); entry j says link ``pred_link[j]`` may continue onto the link through movement ``pred_mv[j]``.

    A link with movements in the junction model continues only through them; a link without any (no junction
    model, or a dead end the network left unconnected) continues onto every out-link of its end node
    (``pred_mv`` -1: no movement cost), as node-to-node routing does."""
    a = city_arrays
    L = a.n_links
    mv_ptr = np.asarray(mv_ptr, np.int64)
    n_mv = np.diff(mv_ptr)
    frm, to, mv = [], [], []
    if len(mv_out):
        frm.append(np.repeat(np.arange(L, dtype=np.int64), n_mv))
        to.append(np.asarray(mv_out, np.int64))
        mv.append(np.arange(len(mv_out), dtype=np.int64))
    bare = np.flatnonzero(n_mv == 0)
    if len(bare):
        node = a.link_to[bare]
        deg = a.out_indptr[node + 1] - a.out_indptr[node]
        frm.append(np.repeat(bare.astype(np.int64), deg))
        starts = np.repeat(a.out_indptr[node], deg)
        offs = np.arange(int(deg.sum())) - np.repeat(np.cumsum(deg) - deg, deg)
        to.append(a.out_links[starts + offs].astype(np.int64))
        mv.append(np.full(int(deg.sum()), -1, np.int64))
    frm_a = np.concatenate(frm) if frm else np.zeros(0, np.int64)
    to_a = np.concatenate(to) if to else np.zeros(0, np.int64)
    mv_a = np.concatenate(mv) if mv else np.zeros(0, np.int64)
    order = np.lexsort((frm_a, to_a))  # grouped by successor, then by predecessor: a fixed order
    ptr = np.zeros(L + 1, np.int64)
    np.cumsum(np.bincount(to_a, minlength=L), out=ptr[1:])
    return ptr, frm_a[order].astype(np.int32), mv_a[order]


@njit(cache=True)
def _turn_row(target, n_nodes, link_cost, mv_cost, pred_ptr, pred_link, pred_mv, link_to, out_indptr, out_links,
              dist, nxt, keys, vals):
    """One target's labels: ``dist[l]`` least cost from the end of link l (its movement included) to the target,
    ``nxt[l]`` the link to take after l; columns ``L + u`` hold the best first link from node u.

    A target < ``n_nodes`` is a node (every link into it arrives); ``n_nodes + e`` is link e (a trip's pinned last
    link: it arrives at the end of e)."""
    L = link_cost.shape[0]
    for i in range(L + n_nodes):
        dist[i] = np.inf
        nxt[i] = -1
    size = 0
    if target < n_nodes:
        for l in range(L):
            if link_to[l] == target:  # a vehicle on it has arrived (closed or not: it is already on it)
                dist[l] = 0.0
                size = heap_push(keys, vals, size, 0.0, np.int32(l))
    else:
        e = target - n_nodes
        dist[e] = 0.0
        size = heap_push(keys, vals, size, 0.0, np.int32(e))
    while size > 0:
        d, b, size = heap_pop(keys, vals, size)
        if d > dist[b]:
            continue
        base = d + link_cost[b]
        if base == np.inf:  # closed: nobody enters it (labels of closed links stay valid for vehicles on them)
            continue
        for j in range(pred_ptr[b], pred_ptr[b + 1]):
            a = pred_link[j]
            m = pred_mv[j]
            nd = base + (mv_cost[m] if m >= 0 else 0.0)
            if nd < dist[a]:
                dist[a] = nd
                nxt[a] = b
                size = heap_push(keys, vals, size, nd, np.int32(a))
    for u in range(n_nodes):
        if u == target:
            dist[L + u] = 0.0
            continue
        best = np.inf
        for k in range(out_indptr[u], out_indptr[u + 1]):
            b = out_links[k]
            c = link_cost[b] + dist[b]
            if c < best:
                best = c
                nxt[L + u] = b
        dist[L + u] = best


@njit(cache=True)
def _turn_rows(lo, hi, targets, n_nodes, link_cost, mv_cost, pred_ptr, pred_link, pred_mv, link_to, out_indptr,
               out_links, dist, nxt, rows):
    """Rows ``lo:hi`` of ``targets`` into ``nxt[rows[i]]``; labels into ``dist[i]``, or (``dist`` with no rows)
    into one scratch row reused for every target (no D x (L + N) float array to fill when only next links are kept)."""
    cap = pred_link.shape[0] + link_cost.shape[0] + 16  # pushes <= seeds + relaxations
    keys = np.empty(cap)
    vals = np.empty(cap, np.int32)
    scratch = np.empty(link_cost.shape[0] + n_nodes)
    keep = dist.shape[0] > 0
    for i in range(lo, hi):
        _turn_row(targets[i], n_nodes, link_cost, mv_cost, pred_ptr, pred_link, pred_mv, link_to, out_indptr,
                  out_links, dist[i] if keep else scratch, nxt[rows[i]], keys, vals)


@njit(cache=True, parallel=True)
def _turn_parallel(targets, n_nodes, link_cost, mv_cost, pred_ptr, pred_link, pred_mv, link_to, out_indptr,
                   out_links, dist, nxt, rows, n_chunks):
    D = targets.shape[0]
    chunk = (D + n_chunks - 1) // n_chunks
    for t in prange(n_chunks):
        _turn_rows(t * chunk, min(D, (t + 1) * chunk), targets, n_nodes, link_cost, mv_cost, pred_ptr, pred_link,
                   pred_mv, link_to, out_indptr, out_links, dist, nxt, rows)


def _turn_run(targets, link_cost, mv_cost, graph, a, dist, nxt, rows) -> None:
    """Run the turn-table kernel over ``targets`` (threads when large, as :func:`route_tables`)."""
    pred_ptr, pred_link, pred_mv = graph
    mvc = np.ascontiguousarray(mv_cost, np.float64) if len(mv_cost) else np.zeros(1)
    args = (targets, a.n_nodes, np.ascontiguousarray(link_cost, np.float64), mvc, pred_ptr, pred_link, pred_mv,
            a.link_to, a.out_indptr, a.out_links, dist, nxt, rows)
    if targets.shape[0] * max(len(pred_link), 1) < _TURN_SERIAL_BELOW or numba.get_num_threads() == 1:
        _turn_rows(0, targets.shape[0], *args)
    else:
        _turn_parallel(*args, min(targets.shape[0], 4 * numba.get_num_threads()))


def turn_route_tables(targets: np.ndarray, link_cost: np.ndarray, mv_cost: np.ndarray, graph, city_arrays,
                      ) -> tuple[np.ndarray, np.ndarray]:
    """Turn-based tables towards each target (node u, or ``n_nodes + e`` for link e): (dist float64[D, L+N],
    next_link int32[D, L+N]). ``link_cost`` (s, inf = closed) per link, ``mv_cost`` (s) per movement, ``graph``
    from :func:`movement_graph`. Column l < L: the link after l; column L + u: the first link from node u."""
    a = city_arrays
    targets = np.asarray(targets, np.int64)
    W = a.n_links + a.n_nodes
    dist = np.empty((targets.shape[0], W), np.float64)
    nxt = np.empty((targets.shape[0], W), np.int32)
    _turn_run(targets, link_cost, mv_cost, graph, a, dist, nxt, np.arange(targets.shape[0], dtype=np.int64))
    return dist, nxt


def turn_route_rows(targets: np.ndarray, link_cost: np.ndarray, mv_cost: np.ndarray, graph, city_arrays,
                    nxt: np.ndarray, rows: np.ndarray, repair: np.ndarray | None = None, succ=None) -> None:
    """:func:`turn_route_tables`' next links written in place: target ``targets[i]``'s row into ``nxt[rows[i]]``
    (``nxt`` int32[., L+N] C-contiguous, ``rows`` distinct); the same values, without the distance table
    and the copy of the result into the caller's table. ``repair`` (bool per row, with ``succ`` from
    :func:`movement_successors`): rows that already hold a table of their target (built on any costs) are
    repaired in place by :func:`turn_route_repair`, to the same values."""
    if repair is not None and np.any(repair):
        turn_route_repair(targets, link_cost, mv_cost, graph, succ if succ is not None
                          else movement_successors(graph, city_arrays.n_links), city_arrays, nxt, rows, repair)
        return
    a = city_arrays
    targets = np.asarray(targets, np.int64)
    rows = np.asarray(rows, np.int64)
    if targets.shape != rows.shape:
        raise ValueError(f"targets {targets.shape} and rows {rows.shape} differ in shape")
    if not (nxt.dtype == np.int32 and nxt.ndim == 2 and nxt.flags.c_contiguous
            and nxt.shape[1] == a.n_links + a.n_nodes):
        raise ValueError(f"nxt must be a C-contiguous int32 array of {a.n_links + a.n_nodes} columns")
    if len(rows) and (rows.min() < 0 or rows.max() >= nxt.shape[0]):
        raise ValueError(f"rows must lie in 0..{nxt.shape[0] - 1}")
    _turn_run(targets, link_cost, mv_cost, graph, a, np.empty((0, nxt.shape[1]), np.float64), nxt, rows)


# ---- turn-based rows repaired in place: exact, from the tree the row already holds ----------------------------
# A row's next links form a shortest-path tree (towards its target) on the costs it was built on. On new costs:
# 1. the tree's own paths are re-costed (a walk from the target down the tree): each label is the cost of a real
#    path, an upper bound;
# 2. every line-graph edge is checked (Bellman): an edge that improves a label seeds a Dijkstra that only lowers
#    labels. Labels then equal what a full rebuild computes (the same sums, in the same order, along each path);
# 3. next links are read off the labels: a full rebuild's Dijkstra takes, among the successors that give a link
#    its label, the one it finalised first, i.e. the one with the least label; two with the same label are
#    finalised in heap order, which a repair cannot know, so such a row (rare) is rebuilt by ``_turn_row``.
# Costs change on ~10% of links between two builds of a row, and few of those change a shortest path: the repair
# is three passes over the edges, with a heap only where a path changes.


def movement_successors(graph, n_links: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Successors of each link in the line graph from :func:`movement_graph`'s predecessor CSR, as CSR:
    (succ_ptr int64[L+1], succ_link int32[E], succ_mv int64[E]); link a continues onto ``succ_link[j]`` through
    movement ``succ_mv[j]`` (-1: none), for j in ``succ_ptr[a]:succ_ptr[a+1]``."""
    pred_ptr, pred_link, pred_mv = graph
    head = np.repeat(np.arange(n_links, dtype=np.int32), np.diff(pred_ptr))
    order = np.argsort(pred_link, kind="stable")
    ptr = np.zeros(n_links + 1, np.int64)
    np.cumsum(np.bincount(pred_link, minlength=n_links), out=ptr[1:])
    return ptr, head[order], np.asarray(pred_mv, np.int64)[order]


@njit(cache=True)
def _turn_repair_row(target, n_nodes, link_cost, mv_cost, pred_ptr, pred_link, pred_mv, succ_ptr, succ_link, succ_mv,
                     link_to, out_indptr, out_links, in_indptr, in_links, dist, nxt, keys, vals, stack, mark):
    """Repair one row (``nxt``: a table :func:`_turn_row` built for ``target`` on any costs) to what
    :func:`_turn_row` gives on these costs; labels into ``dist[:L]``. False (``nxt`` partly rewritten) where two
    successors tie with equal labels: the rebuild's choice depends on its heap order, so rebuild that row."""
    L = link_cost.shape[0]
    for i in range(L):
        dist[i] = np.inf
    top = 0
    if target < n_nodes:
        for k in range(in_indptr[target], in_indptr[target + 1]):
            l = in_links[k]
            dist[l] = 0.0
            stack[top] = l
            top += 1
        e = -1
    else:
        e = target - n_nodes
        dist[e] = 0.0
        stack[0] = e
        top = 1
    # 1. the old tree's paths on the new costs (seeds have no next link, so they are never reached as children)
    while top > 0:
        top -= 1
        b = stack[top]
        base = dist[b] + link_cost[b]
        if base == np.inf:
            continue
        for j in range(pred_ptr[b], pred_ptr[b + 1]):
            a = pred_link[j]
            if nxt[a] != b:
                continue
            m = pred_mv[j]
            nd = base + (mv_cost[m] if m >= 0 else 0.0)
            if dist[a] == np.inf:
                dist[a] = nd
                if nd < np.inf:
                    stack[top] = a
                    top += 1
            elif nd < dist[a]:  # a second movement between the same two links
                dist[a] = nd
    # 2. Bellman check of every edge; next links read off at the same time (valid if no label moves)
    size = 0
    amb = False
    for a in range(L):
        if (link_to[a] == target) if e < 0 else (a == e):
            nxt[a] = -1
            continue
        da = dist[a]
        best = da
        bb = -1
        bd = np.inf
        for k in range(succ_ptr[a], succ_ptr[a + 1]):
            b = succ_link[k]
            base = dist[b] + link_cost[b]
            if base == np.inf:
                continue
            m = succ_mv[k]
            nd = base + (mv_cost[m] if m >= 0 else 0.0)
            if nd < best:
                best = nd
            elif nd == da and da < np.inf:
                if dist[b] < bd:
                    bd = dist[b]
                    bb = b
                elif dist[b] == bd:
                    amb = True
        nxt[a] = bb
        if best < da:
            dist[a] = best
            size = heap_push(keys, vals, size, best, np.int32(a))
    if size > 0:
        # labels that fall: a Dijkstra from the improved links (labels only decrease; as in _turn_row). A link
        # whose label fell, and every link before it, may take another next link: those are read again
        nm = 0
        while size > 0:
            d, b, size = heap_pop(keys, vals, size)
            if d > dist[b]:
                continue
            if not mark[b]:
                mark[b] = True
                stack[nm] = b
                nm += 1
            base = d + link_cost[b]
            if base == np.inf:
                continue
            for j in range(pred_ptr[b], pred_ptr[b + 1]):
                a = pred_link[j]
                if not mark[a]:
                    mark[a] = True
                    stack[nm] = a
                    nm += 1
                m = pred_mv[j]
                nd = base + (mv_cost[m] if m >= 0 else 0.0)
                if nd < dist[a]:
                    dist[a] = nd
                    size = heap_push(keys, vals, size, nd, np.int32(a))
        # 3. next links again where a label fell, or a successor's did (the others kept theirs from step 2; a tie
        # step 2 saw stays counted, which may rebuild a row that needed no rebuild: never a wrong row)
        for i in range(nm):
            a = stack[i]
            mark[a] = False
            if (link_to[a] == target) if e < 0 else (a == e):
                continue
            da = dist[a]
            bb = -1
            bd = np.inf
            if da < np.inf:
                for k in range(succ_ptr[a], succ_ptr[a + 1]):
                    b = succ_link[k]
                    base = dist[b] + link_cost[b]
                    if base == np.inf:
                        continue
                    m = succ_mv[k]
                    nd = base + (mv_cost[m] if m >= 0 else 0.0)
                    if nd == da:
                        if dist[b] < bd:
                            bd = dist[b]
                            bb = b
                        elif dist[b] == bd:
                            amb = True
            nxt[a] = bb
    if amb:
        return False
    for u in range(n_nodes):  # as _turn_row
        if u == target:
            nxt[L + u] = -1
            continue
        best = np.inf
        nxt[L + u] = -1
        for k in range(out_indptr[u], out_indptr[u + 1]):
            b = out_links[k]
            c = link_cost[b] + dist[b]
            if c < best:
                best = c
                nxt[L + u] = b
    return True


@njit(cache=True)
def _turn_repair_rows(lo, hi, targets, n_nodes, link_cost, mv_cost, pred_ptr, pred_link, pred_mv, succ_ptr, succ_link,
                      succ_mv, link_to, out_indptr, out_links, in_indptr, in_links, nxt, rows, repair, n_rebuilt):
    """Rows ``lo:hi``: repair ``nxt[rows[i]]`` where ``repair[i]``, else (or on a tie) build it with _turn_row."""
    L = link_cost.shape[0]
    cap = pred_link.shape[0] + L + 16
    keys = np.empty(cap)
    vals = np.empty(cap, np.int32)
    scratch = np.empty(L + n_nodes)
    stack = np.empty(L + 1, np.int32)
    mark = np.zeros(L, np.bool_)
    for i in range(lo, hi):
        ok = False
        if repair[i]:
            ok = _turn_repair_row(targets[i], n_nodes, link_cost, mv_cost, pred_ptr, pred_link, pred_mv, succ_ptr,
                                  succ_link, succ_mv, link_to, out_indptr, out_links, in_indptr, in_links, scratch,
                                  nxt[rows[i]], keys, vals, stack, mark)
        if not ok:
            _turn_row(targets[i], n_nodes, link_cost, mv_cost, pred_ptr, pred_link, pred_mv, link_to, out_indptr,
                      out_links, scratch, nxt[rows[i]], keys, vals)
            n_rebuilt[i] = 1


@njit(cache=True, parallel=True)
def _turn_repair_parallel(targets, n_nodes, link_cost, mv_cost, pred_ptr, pred_link, pred_mv, succ_ptr, succ_link,
                          succ_mv, link_to, out_indptr, out_links, in_indptr, in_links, nxt, rows, repair, n_rebuilt,
                          n_chunks):
    D = targets.shape[0]
    chunk = (D + n_chunks - 1) // n_chunks
    for t in prange(n_chunks):
        _turn_repair_rows(t * chunk, min(D, (t + 1) * chunk), targets, n_nodes, link_cost, mv_cost, pred_ptr,
                          pred_link, pred_mv, succ_ptr, succ_link, succ_mv, link_to, out_indptr, out_links, in_indptr,
                          in_links, nxt, rows, repair, n_rebuilt)


def turn_route_repair(targets: np.ndarray, link_cost: np.ndarray, mv_cost: np.ndarray, graph, succ, city_arrays,
                      nxt: np.ndarray, rows: np.ndarray, repair: np.ndarray) -> int:
    """:func:`turn_route_rows` for rows that may already hold a table: row ``rows[i]`` of ``nxt``, when
    ``repair[i]``, holds a table :func:`turn_route_rows` built for target ``targets[i]`` on any costs (any link
    closed or open), and is repaired to exactly what it would build on these costs; the other rows are built.
    ``succ`` from :func:`movement_successors`. Returns how many rows were built from scratch (new rows, ties)."""
    a = city_arrays
    targets = np.asarray(targets, np.int64)
    rows = np.asarray(rows, np.int64)
    repair = np.ascontiguousarray(repair, np.bool_)
    if not (targets.shape == rows.shape == repair.shape):
        raise ValueError(f"targets {targets.shape}, rows {rows.shape} and repair {repair.shape} differ in shape")
    if not (nxt.dtype == np.int32 and nxt.ndim == 2 and nxt.flags.c_contiguous
            and nxt.shape[1] == a.n_links + a.n_nodes):
        raise ValueError(f"nxt must be a C-contiguous int32 array of {a.n_links + a.n_nodes} columns")
    if len(rows) and (rows.min() < 0 or rows.max() >= nxt.shape[0]):
        raise ValueError(f"rows must lie in 0..{nxt.shape[0] - 1}")
    pred_ptr, pred_link, pred_mv = graph
    succ_ptr, succ_link, succ_mv = succ
    mvc = np.ascontiguousarray(mv_cost, np.float64) if len(mv_cost) else np.zeros(1)
    rebuilt = np.zeros(len(rows), np.int64)
    args = (targets, a.n_nodes, np.ascontiguousarray(link_cost, np.float64), mvc, pred_ptr, pred_link, pred_mv,
            succ_ptr, succ_link, succ_mv, a.link_to, a.out_indptr, a.out_links, a.in_indptr, a.in_links, nxt, rows,
            repair, rebuilt)
    if targets.shape[0] * max(len(pred_link), 1) < _TURN_SERIAL_BELOW or numba.get_num_threads() == 1:
        _turn_repair_rows(0, targets.shape[0], *args)
    else:
        _turn_repair_parallel(*args, min(targets.shape[0], 4 * numba.get_num_threads()))
    return int(rebuilt.sum())


def load_threaded_turn_kernels(city_arrays, mv_ptr: np.ndarray, mv_out: np.ndarray) -> bool:
    """Compile (or load from numba's cache) the threaded route kernels (turn tables: build and repair; next-hop
    tables for int64 and int32 destinations) on a few rows of ``city_arrays``' graph, so that a timed run of a large
    city does not pay for it (a small city never calls them). Returns False when numba runs one thread (the
    threaded kernels are then never used)."""
    if numba.get_num_threads() == 1:
        return False
    a = city_arrays
    graph = movement_graph(a, np.asarray(mv_ptr, np.int64), np.asarray(mv_out, np.int32))
    targets = np.array([0, a.n_nodes - 1], np.int64)
    rows = np.arange(2, dtype=np.int64)
    nxt = np.full((2, a.n_links + a.n_nodes), -1, np.int32)
    cost = np.ascontiguousarray(a.fft_s, np.float64)
    mvc = np.zeros(max(len(mv_out), 1))
    pred_ptr, pred_link, pred_mv = graph
    _turn_parallel(targets, a.n_nodes, cost, mvc, pred_ptr, pred_link, pred_mv, a.link_to, a.out_indptr,
                   a.out_links, np.empty((0, nxt.shape[1]), np.float64), nxt, rows, 2)
    succ_ptr, succ_link, succ_mv = movement_successors(graph, a.n_links)
    _turn_repair_parallel(targets, a.n_nodes, cost, mvc, pred_ptr, pred_link, pred_mv, succ_ptr, succ_link, succ_mv,
                          a.link_to, a.out_indptr, a.out_links, a.in_indptr, a.in_links, nxt, rows,
                          np.ones(2, np.bool_), np.zeros(2, np.int64), 2)
    for dt in (np.int64, np.int32):
        _next_hop_parallel(np.zeros(1, dt), cost, a.in_indptr, a.in_links, a.link_from, a.n_nodes,
                           np.empty((1, a.n_nodes), np.float32), np.empty((1, a.n_nodes), np.int32))
    return True
