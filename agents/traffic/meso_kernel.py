"""Numba kernels of the built-in mesoscopic traffic model (a link-queue model with spillback).

Each link is a queue with a free-flow travel time, an outflow capacity (veh/s, accumulated per step as in
MATSim's queue model) and a storage capacity (vehicles that fit: length x lanes / jam spacing, with
MATSim's floor). At the link's end every vehicle takes a movement (in-link -> out-link) of the junction
model (``networks.junctions``), which has its own capacity: saturation flow x lanes x green share at a
signal, the HBS gap-acceptance capacity for a stream that gives way (falling with the live flow of the
movements it yields to), and its own lanes, so a blocked turn holds only the vehicles behind it on its
lanes (turn queues, as SUMO meso's multi-queue). A vehicle may leave once its free-flow exit time
(plus its movement's turn time and mean signal delay) has passed, if the link and its movement have
capacity left and the next link has room; otherwise it waits, and a full link blocks the links
upstream (spillback). Nodes are served in a rotating order and, at each node, the in-links in the order
of their recent outflow relative to capacity, so merges share downstream room in proportion to capacity. A gridlock is resolved as SUMO does: the first vehicle of a queue, standing still for
``gridlock_s``, jumps along its route to the next link with room (counted, its wait kept in its time). Vehicles follow routes stored in one flat buffer; routes come
from next-hop tables (one row per destination). Priority vehicles (emergency units) ride outside
the queues. State lives in flat arrays grouped in named tuples (:data:`Links`, :data:`Moves`,
:data:`Vehicles`, :data:`Tables`) built by :class:`agents.traffic.meso.MesoTraffic`.

Times are seconds from scenario start; a step of length ``dt`` processes the interval (t - dt, t].
A vehicle that becomes free to leave inside that interval and is not held back leaves at its exact
free-flow time, so free-flow travel times are exact, not rounded to steps.
"""
from __future__ import annotations

from collections import namedtuple

import numpy as np
from numba import njit

from agents.traffic.schema import ARRIVED, PENDING, RUNNING, STRANDED, UNROUTABLE  # noqa: E402  status codes

# kernel return flags
NEED_ROUTE_SPACE = 1
MAX_SCAN = 8  # vehicles looked at behind a blocked head (turn queues)

# movement classes (as networks.junctions)
_PRIORITY, _YIELD, _STOP, _ALLWAY, _ZIPPER, _SIGNAL = 0, 1, 2, 3, 4, 5

# Named groups of the kernel's arrays (numba takes named tuples of arrays as one argument).
Links = namedtuple("Links", [
    "link_to", "length", "fft", "cap_rate", "storage", "qcap", "q_off", "cap_factor", "acc", "q_buf", "q_head",
    "q_count", "q_lastexit", "lanemask", "link_ring", "ring_ptr", "ring_links", "ring_cap", "in_ptr", "in_links",
    "wait_head", "wait_tail", "wl_links", "wl_n", "in_wl", "cnt_exit", "sum_tt", "occ", "sum_jd", "flow", "t_flow",
    "keep_clear"])
Moves = namedtuple("Moves", [
    "ptr", "out", "lanemask", "cls", "rate", "delay", "t_f", "t_g", "cf_ptr", "cf_mv", "acc", "t_acc", "flow",
    "t_flow", "len"])
Vehicles = namedtuple("Vehicles", [
    "dest", "status", "link", "enter", "exit", "depart", "arrive", "dist", "fft", "rstart", "rlen", "rpos", "next",
    "sf", "prio", "watch", "orig", "mv"])
Tables = namedtuple("Tables", [
    "route_buf", "route_used", "dest_slot", "nh", "dep_order", "dep_ptr", "prio_ids", "prio_n", "watch_out",
    "watch_n", "gridlocks"])


@njit(cache=True)
def follow_path(row, u, dest, nh, link_to, route_buf, start, n_nodes):
    """Write the path from node ``u`` to ``dest`` (next-hop table row ``row``) at ``route_buf[start:]``.

    Returns the number of links written, 0 if ``u == dest``, or -1 if ``dest`` is unreachable from ``u``.
    """
    n = 0
    node = u
    while node != dest:
        lk = nh[row, node]
        if lk < 0 or n >= n_nodes:
            return -1
        route_buf[start + n] = lk
        n += 1
        node = link_to[lk]
    return n


@njit(cache=True)
def find_movement(mv_ptr, mv_out, l, b):
    """Index of the movement from link ``l`` to link ``b`` (-1 if the junction model has none: unrestricted)."""
    for m in range(mv_ptr[l], mv_ptr[l + 1]):
        if mv_out[m] == b:
            return m
    return -1


@njit(cache=True, inline="always")  # inlined: no per-call cost of passing the array tuples
def _next_movement(v, b, pos, V, T, M):
    """Movement ``v`` will take at the end of link ``b`` (its route position ``pos``): -1 if it ends there."""
    if pos + 1 >= V.rlen[v]:
        return -1
    return find_movement(M.ptr, M.out, b, T.route_buf[V.rstart[v] + pos + 1])


@njit(cache=True, inline="always")  # inlined: no per-call cost of passing the array tuples
def _enter(v, b, m, te, tlo, L, V, M):
    """Append ``v`` to link ``b`` at ``te``, heading for movement ``m``; among vehicles that entered in this
    same step keep the queue ordered by exit time (their order within a step is an artefact of processing)."""
    k = L.q_count[b]
    L.q_count[b] += 1
    V.link[v] = b
    V.enter[v] = te
    V.mv[v] = m
    V.exit[v] = te + L.fft[b] / V.sf[v] + (M.delay[m] if m >= 0 else 0.0)
    off = L.q_off[b]
    qc = L.qcap[b]
    h = L.q_head[b]
    while k > 0:
        prev = L.q_buf[off + (h + k - 1) % qc]
        if V.enter[prev] <= tlo or V.exit[prev] <= V.exit[v]:
            break
        L.q_buf[off + (h + k) % qc] = prev
        k -= 1
    L.q_buf[off + (h + k) % qc] = v


@njit(cache=True, inline="always")  # inlined: no per-call cost of passing the array tuples
def _remove_at(l, k, L):
    """Take the ``k``-th vehicle (0 = head) out of link ``l``'s queue, keeping the others in order."""
    off = L.q_off[l]
    qc = L.qcap[l]
    h = L.q_head[l]
    for i in range(k, 0, -1):
        L.q_buf[off + (h + i) % qc] = L.q_buf[off + (h + i - 1) % qc]
    L.q_head[l] = (h + 1) % qc
    L.q_count[l] -= 1


@njit(cache=True, inline="always")  # inlined: no per-call cost of passing the array tuples
def _leave(l, k, v, te, L, V, M):
    """Take vehicle ``v`` (queue position ``k``) off link ``l`` at ``te``: capacity used, exit, distance, time booked."""
    _remove_at(l, k, L)
    L.acc[l] -= 1.0
    L.cnt_exit[l] += 1
    L.sum_tt[l] += te - V.enter[v]
    m = V.mv[v]
    jd = te - V.exit[v] if te > V.exit[v] else 0.0
    if m >= 0:
        jd += M.delay[m]
        V.dist[v] += M.len[m]  # the junction's internal lane (SUMO networks)
    L.sum_jd[l] += jd
    L.q_lastexit[l] = te
    dtf = te - L.t_flow[l]
    L.flow[l] = (L.flow[l] * np.exp(-dtf / 120.0) if dtf > 0 else L.flow[l]) + 1.0 / 120.0
    if dtf > 0:
        L.t_flow[l] = te
    V.dist[v] += L.length[l]
    V.fft[v] += L.fft[l]


@njit(cache=True, inline="always")  # inlined: no per-call cost of passing the array tuples
def _finish(v, te, status, V, T):
    """End ``v``'s trip at ``te`` with ``status``; report it if someone waits on its arrival event."""
    V.status[v] = status
    V.arrive[v] = te
    V.link[v] = -1
    if V.watch[v]:
        T.watch_out[T.watch_n[0]] = v
        T.watch_n[0] += 1


@njit(cache=True)
def ring_allows(l_from, b, link_ring, ring_ptr, ring_links, ring_cap, q_count):
    """May a vehicle from link ``l_from`` (-1: departing) enter link ``b``, as far as roundabouts go?

    Traffic in a roundabout has priority: a vehicle from outside may enter only if the roundabout keeps at
    least one free place afterwards. A ring with a free place always has a vehicle that can move, so it
    never locks itself (queue models otherwise fill rings until every segment waits on the next).
    """
    r = link_ring[b]
    if r < 0 or (l_from >= 0 and link_ring[l_from] == r):
        return True
    occ = 0
    for k in range(ring_ptr[r], ring_ptr[r + 1]):
        occ += q_count[ring_links[k]]
    return occ + 1 < ring_cap[r]


@njit(cache=True)
def waiting_count(l, t, q_buf, q_off, q_head, q_count, qcap, v_exit):
    """Vehicles at the head of link ``l`` whose free-flow exit time has passed by ``t`` (the queue)."""
    n = 0
    for k in range(q_count[l]):
        v = q_buf[q_off[l] + (q_head[l] + k) % qcap[l]]
        if v_exit[v] > t:
            break
        n += 1
    return n


@njit(cache=True)
def _reroute(v, cur_link, from_node, v_dest, dest_slot, nh, link_to, route_buf, route_used,
             v_rstart, v_rlen, v_rpos, n_nodes):
    """Replace the rest of ``v``'s route by the current shortest path from ``from_node``.

    The new route is written as [cur_link, path...] so position 0 is the link the vehicle is on.
    Returns 1 on success, 0 if the destination is unreachable, -1 if the route buffer is too full.
    """
    if route_used[0] + n_nodes + 1 > route_buf.shape[0]:
        return -1
    row = dest_slot[v_dest[v]]
    if row < 0:
        return 0
    start = route_used[0]
    route_buf[start] = cur_link
    n = follow_path(row, from_node, v_dest[v], nh, link_to, route_buf, start + 1, n_nodes)
    if n < 0:
        return 0
    route_used[0] = start + 1 + n
    v_rstart[v] = start
    v_rlen[v] = n + 1
    v_rpos[v] = 0
    return 1


@njit(cache=True, inline="always")  # inlined: no per-call cost of passing the array tuples
def _decayed_flow(M, m, t, tau):
    """Movement ``m``'s recent flow (veh/s) at ``t``: an exponential moving average with time constant ``tau``."""
    dtf = t - M.t_flow[m]
    return M.flow[m] * np.exp(-dtf / tau) if dtf > 0 else M.flow[m]


@njit(cache=True, inline="always")  # inlined: no per-call cost of passing the array tuples
def movement_rate(M, m, t, f, tau):
    """Capacity (veh/s) of movement ``m`` at ``t`` with the link's capacity factor ``f``.

    Priority/zipper: saturation flow x lanes; signal: that x effective green share; a stream that gives way
    (yield, stop, all-way, permissive green): HBS gap acceptance, lanes / t_f x exp(-q_p (t_g - t_f/2)),
    q_p the live flow of the movements it gives way to, capped by the former.
    """
    rate = M.rate[m] * f
    if M.cf_ptr[m + 1] > M.cf_ptr[m]:
        qp = 0.0
        for k in range(M.cf_ptr[m], M.cf_ptr[m + 1]):
            qp += _decayed_flow(M, M.cf_mv[k], t, tau)
        tf = M.t_f[m]
        gap = f / tf * np.exp(-qp * (M.t_g[m] - 0.5 * tf))
        if gap < rate:
            rate = gap
    return rate


@njit(cache=True, inline="always")  # inlined: no per-call cost of passing the array tuples
def _movement_ready(M, m, t, dt, f, tau):
    """Top up movement ``m``'s capacity account to ``t``; True if a whole vehicle may pass now."""
    rate = movement_rate(M, m, t, f, tau)
    a = M.acc[m] + rate * (t - M.t_acc[m])
    cmax = rate * dt + 1.0
    M.acc[m] = a if a < cmax else cmax
    M.t_acc[m] = t
    return M.acc[m] >= 1.0 - 1e-9


@njit(cache=True, inline="always")  # inlined: no per-call cost of passing the array tuples
def _movement_take(M, m, t, tau):
    M.acc[m] -= 1.0
    M.flow[m] = _decayed_flow(M, m, t, tau) + 1.0 / tau
    M.t_flow[m] = t


@njit(cache=True, inline="always")  # inlined: no per-call cost of passing the array tuples
def _serve_link(l, t, tlo, dt, L, M, V, T, n_nodes, gridlock_s, tau):
    """Let the vehicles at the end of link ``l`` leave as capacity, movements and room downstream allow.

    Returns the kernel flags (NEED_ROUTE_SPACE when a reroute found the route buffer full).
    """
    flags = 0
    f = L.cap_factor[l]
    fo = f if f > 0.0 else 1.0  # a closed link still drains the vehicles already on it
    c = L.cap_rate[l] * fo * dt
    cmax = c + 1.0  # carry at most one vehicle's worth: a fractional rate keeps its remainder
    a = L.acc[l] + c
    L.acc[l] = a if a < cmax else cmax
    full = L.lanemask[l]
    blocked = np.int64(0)
    k = 0
    scanned = 0
    while k < L.q_count[l] and scanned < MAX_SCAN:
        if L.acc[l] < 1.0 - 1e-9:  # tolerance: 6 x (1/6) may sum to 0.99999
            break
        v = L.q_buf[L.q_off[l] + (L.q_head[l] + k) % L.qcap[l]]
        if V.exit[v] > t:
            break
        scanned += 1
        m = V.mv[v]
        mask = M.lanemask[m] if m >= 0 else full
        if (mask & ~blocked) == 0:  # every lane it may use is held by a blocked vehicle ahead
            k += 1
            continue
        te = V.exit[v] if V.exit[v] > tlo else t
        pos = V.rpos[v] + 1
        if pos >= V.rlen[v]:  # leaves the network: arrived
            _leave(l, k, v, te, L, V, M)
            _finish(v, te, ARRIVED, V, T)
            continue
        b = T.route_buf[V.rstart[v] + pos]
        if L.cap_factor[b] <= 0.0:  # next link closed: re-route from here
            r = _reroute(v, l, L.link_to[l], V.dest, T.dest_slot, T.nh, L.link_to, T.route_buf, T.route_used,
                         V.rstart, V.rlen, V.rpos, n_nodes)
            if r < 0:
                flags |= NEED_ROUTE_SPACE
                break
            if r == 0 or V.rlen[v] < 2:  # no way on: the vehicle is stranded here
                _leave(l, k, v, te, L, V, M)
                _finish(v, te, STRANDED, V, T)
                continue
            pos = 1
            b = T.route_buf[V.rstart[v] + 1]
            m = find_movement(M.ptr, M.out, l, b)
            V.mv[v] = m
            mask = M.lanemask[m] if m >= 0 else full
            if L.cap_factor[b] <= 0.0:
                blocked |= mask
                k += 1
                continue
        room = L.q_count[b] < L.storage[b] and ring_allows(l, b, L.link_ring, L.ring_ptr, L.ring_links,
                                                           L.ring_cap, L.q_count)
        if room and L.keep_clear[b] and pos + 1 < V.rlen[v]:  # SUMO's keep-clear: do not stop inside a junction
            c2 = T.route_buf[V.rstart[v] + pos + 1]
            room = L.q_count[c2] < L.storage[c2]
        ok = room
        if ok and m >= 0:
            ok = _movement_ready(M, m, t, dt, fo, tau)
        if not ok:
            # SUMO's gridlock rule: the first vehicle of the queue, standing still for gridlock_s, jumps along
            # its route to the next link with room, taking the free-flow time of the links it skips.
            stand0 = V.exit[v] if V.exit[v] > L.q_lastexit[l] else L.q_lastexit[l]
            if k == 0 and t - stand0 >= gridlock_s:
                p2 = pos
                skip_len = 0.0
                skip_fft = 0.0
                found = -1
                while p2 < V.rlen[v] and p2 - pos < 30:
                    c2 = T.route_buf[V.rstart[v] + p2]
                    if p2 > pos and L.cap_factor[c2] > 0.0 and L.q_count[c2] < L.storage[c2]:
                        found = p2
                        break
                    skip_len += L.length[c2]
                    skip_fft += L.fft[c2] / V.sf[v]
                    p2 += 1
                if found >= 0 or p2 >= V.rlen[v]:
                    _leave(l, k, v, te, L, V, M)
                    V.dist[v] += skip_len
                    V.fft[v] += skip_fft
                    T.gridlocks[0] += 1
                    if found < 0:  # jumped to the end of its route
                        _finish(v, te + skip_fft, ARRIVED, V, T)
                        continue
                    V.rpos[v] = found
                    b2 = T.route_buf[V.rstart[v] + found]
                    _enter(v, b2, _next_movement(v, b2, found, V, T, M), te + skip_fft, tlo, L, V, M)
                    continue
            blocked |= mask
            if (blocked & full) == full:
                break
            k += 1
            continue
        if m >= 0:
            _movement_take(M, m, t, tau)
        _leave(l, k, v, te, L, V, M)
        V.rpos[v] = pos
        _enter(v, b, _next_movement(v, b, pos, V, T, M), te, tlo, L, V, M)
    return flags


@njit(cache=True)
def advance(t0, n_steps, dt, step_counter, L, M, V, T, gridlock_s, tau, prio_queue_factor):
    """Advance the network by ``n_steps`` steps of ``dt`` seconds from time ``t0``.

    ``L``, ``M``, ``V``, ``T``: the :data:`Links`, :data:`Moves`, :data:`Vehicles` and :data:`Tables` tuples;
    ``gridlock_s`` SUMO's time-to-teleport; ``tau`` the averaging time of movement flows (s).
    Returns (steps_done, flags). Stops early (flags = NEED_ROUTE_SPACE) at the end of a step in which a
    departure or a forced reroute was deferred for lack of route-buffer space; the caller grows the
    buffer and calls again. Deferred actions simply happen a step later, deterministically.
    """
    nL = L.link_to.shape[0]
    n_nodes = T.nh.shape[1]
    n_dep = T.dep_order.shape[0]
    N = L.in_ptr.shape[0] - 1
    maxdeg = 1
    for n in range(N):
        d = L.in_ptr[n + 1] - L.in_ptr[n]
        if d > maxdeg:
            maxdeg = d
    order = np.empty(maxdeg, np.int64)
    keys = np.empty(maxdeg)
    flags = 0
    # arrays of the hot node loop as locals (one reference each, not one per access)
    in_ptr, in_links, q_count, acc, cap_rate, cap_factor = L.in_ptr, L.in_links, L.q_count, L.acc, L.cap_rate, \
        L.cap_factor
    lflow, lt_flow, occ = L.flow, L.t_flow, L.occ
    q_buf, q_off, q_head, qcap, v_exit = L.q_buf, L.q_off, L.q_head, L.qcap, V.exit
    for s in range(n_steps):
        t = t0 + (s + 1) * dt
        tlo = t - dt
        step = step_counter + s
        off = (step * 7919) % N if N > 0 else 0
        # --- 1. junctions: nodes in a rotating order; at each, in-links in a capacity-weighted random order ----
        for kn in range(N):
            n = kn + off
            if n >= N:
                n -= N
            i0 = in_ptr[n]
            deg = in_ptr[n + 1] - i0
            cnt = 0
            for i in range(deg):
                l = in_links[i0 + i]
                if q_count[l] == 0:
                    a = acc[l] + cap_rate[l] * dt  # idle links still fill their capacity account
                    cm = cap_rate[l] * dt + 1.0
                    acc[l] = a if a < cm else cm
                    continue
                if v_exit[q_buf[q_off[l] + q_head[l]]] > t:
                    # nobody due at the end of this link: only its capacity account moves (as _serve_link
                    # would do before finding its head in transit); skipping it here keeps the hot loop on
                    # local arrays, a several-fold saving on busy networks (most links have no one due)
                    fo = cap_factor[l] if cap_factor[l] > 0.0 else 1.0
                    c = cap_rate[l] * fo * dt
                    a = acc[l] + c
                    acc[l] = a if a < c + 1.0 else c + 1.0
                    continue
                # the in-link whose recent outflow is lowest relative to its capacity goes first: over time
                # each saturated in-link gets downstream room in proportion to its capacity (Tampere et al.
                # 2011), the way MATSim's capacity-weighted random order does on average, without its noise
                w = cap_rate[l] * (cap_factor[l] if cap_factor[l] > 0.0 else 1.0)
                dtf = t - lt_flow[l]
                fl = lflow[l] * np.exp(-dtf / 120.0) if dtf > 0 else lflow[l]
                u = _hash01(l, np.uint64(step) * np.uint64(0x632BE59BD9B4E019))
                key = fl / (w if w > 1e-12 else 1e-12) + 1e-9 * u
                j = cnt
                while j > 0 and keys[j - 1] > key:
                    keys[j] = keys[j - 1]
                    order[j] = order[j - 1]
                    j -= 1
                keys[j] = key
                order[j] = l
                cnt += 1
            for i in range(cnt):
                flags |= _serve_link(order[i], t, tlo, dt, L, M, V, T, n_nodes, gridlock_s, tau)
        # --- 2. priority vehicles (outside the queues, no capacity taken) -----------------------
        i = 0
        while i < T.prio_n[0]:
            v = T.prio_ids[i]
            if V.exit[v] > t:
                i += 1
                continue
            te = V.exit[v] if V.exit[v] > tlo else t
            l = V.link[v]
            pos = V.rpos[v] + 1
            done = pos >= V.rlen[v]
            b = -1
            if not done:
                b = T.route_buf[V.rstart[v] + pos]
                if L.cap_factor[b] <= 0.0:
                    r = _reroute(v, l, L.link_to[l], V.dest, T.dest_slot, T.nh, L.link_to, T.route_buf,
                                 T.route_used, V.rstart, V.rlen, V.rpos, n_nodes)
                    if r < 0:
                        flags |= NEED_ROUTE_SPACE
                        i += 1
                        continue
                    if r == 0 or V.rlen[v] < 2:
                        done = True
                        V.status[v] = STRANDED
                    else:
                        pos = 1
                        b = T.route_buf[V.rstart[v] + 1]
            V.dist[v] += L.length[l]
            V.fft[v] += L.fft[l]
            if done:
                _finish(v, te, STRANDED if V.status[v] == STRANDED else ARRIVED, V, T)
                T.prio_n[0] -= 1
                T.prio_ids[i] = T.prio_ids[T.prio_n[0]]
                continue
            V.rpos[v] = pos
            V.link[v] = b
            V.enter[v] = te
            rate = L.cap_rate[b] * L.cap_factor[b]
            wq = waiting_count(b, te, L.q_buf, L.q_off, L.q_head, L.q_count, L.qcap, V.exit)
            m = _next_movement(v, b, pos, V, T, M)
            jd = M.delay[m] if m >= 0 else 0.0
            V.exit[v] = te + L.fft[b] / V.sf[v] + prio_queue_factor * (wq / rate + jd)
            i += 1
        # --- 3. departures due in this step: route, then queue at the first link ----------------
        while T.dep_ptr[0] < n_dep:
            v = T.dep_order[T.dep_ptr[0]]
            if V.depart[v] > t:
                break
            o = V.orig[v]
            d = V.dest[v]
            if o == d:
                T.dep_ptr[0] += 1
                _finish(v, V.depart[v], ARRIVED, V, T)
                continue
            if T.route_used[0] + n_nodes > T.route_buf.shape[0]:
                flags |= NEED_ROUTE_SPACE
                break
            T.dep_ptr[0] += 1
            row = T.dest_slot[d]
            n = -1
            if row >= 0:
                n = follow_path(row, o, d, T.nh, L.link_to, T.route_buf, T.route_used[0], n_nodes)
            if n <= 0:
                V.status[v] = UNROUTABLE
                if V.watch[v]:
                    T.watch_out[T.watch_n[0]] = v
                    T.watch_n[0] += 1
                continue
            V.rstart[v] = T.route_used[0]
            V.rlen[v] = n
            V.rpos[v] = 0
            T.route_used[0] += n
            b = T.route_buf[V.rstart[v]]
            if V.prio[v]:
                te = V.depart[v] if V.depart[v] > tlo else t
                V.status[v] = RUNNING
                V.link[v] = b
                V.enter[v] = te
                rate = L.cap_rate[b] * max(L.cap_factor[b], 1e-9)
                wq = waiting_count(b, te, L.q_buf, L.q_off, L.q_head, L.q_count, L.qcap, V.exit)
                m = _next_movement(v, b, 0, V, T, M)
                jd = M.delay[m] if m >= 0 else 0.0
                V.exit[v] = te + L.fft[b] / V.sf[v] + prio_queue_factor * (wq / rate + jd)
                T.prio_ids[T.prio_n[0]] = v
                T.prio_n[0] += 1
                continue
            V.next[v] = -1
            if L.wait_head[b] < 0:
                L.wait_head[b] = v
            else:
                V.next[L.wait_tail[b]] = v
            L.wait_tail[b] = v
            if not L.in_wl[b]:
                L.in_wl[b] = True
                L.wl_links[L.wl_n[0]] = b
                L.wl_n[0] += 1
        # --- 4. waiting vehicles enter their first link where there is room ---------------------
        i = 0
        while i < L.wl_n[0]:
            b = L.wl_links[i]
            while (L.wait_head[b] >= 0 and L.q_count[b] < L.storage[b] and L.cap_factor[b] > 0.0
                   and ring_allows(-1, b, L.link_ring, L.ring_ptr, L.ring_links, L.ring_cap, L.q_count)):
                v = L.wait_head[b]
                L.wait_head[b] = V.next[v]
                te = V.depart[v] if V.depart[v] > tlo else t
                V.status[v] = RUNNING
                _enter(v, b, _next_movement(v, b, 0, V, T, M), te, tlo, L, V, M)
            if L.wait_head[b] < 0:
                L.in_wl[b] = False
                L.wl_n[0] -= 1
                L.wl_links[i] = L.wl_links[L.wl_n[0]]
                continue
            i += 1
        # --- 5. occupancy integral (vehicle-seconds per link) ------------------------------------
        for l in range(nL):
            occ[l] += q_count[l] * dt
        if flags != 0:
            return s + 1, flags
    return n_steps, flags

@njit(cache=True)
def link_costs(t, fft, cap_rate, cap_factor, q_buf, q_off, q_head, q_count, qcap, v_exit, junction_delay):
    """Estimated current travel time per link (s): free-flow time plus the queue's discharge time; inf if closed."""
    L = fft.shape[0]
    out = np.empty(L)
    for l in range(L):
        f = cap_factor[l]
        if f <= 0.0:
            out[l] = np.inf
            continue
        wq = waiting_count(l, t, q_buf, q_off, q_head, q_count, qcap, v_exit)
        out[l] = fft[l] + junction_delay[l] + wq / (cap_rate[l] * f)
    return out


@njit(cache=True)
def queue_lengths(t, q_buf, q_off, q_head, q_count, qcap, v_exit):
    """Vehicles waiting at the end of each link at time ``t``."""
    L = q_count.shape[0]
    out = np.zeros(L, np.int32)
    for l in range(L):
        out[l] = waiting_count(l, t, q_buf, q_off, q_head, q_count, qcap, v_exit)
    return out


@njit(cache=True)
def reroute_share(share, salt, t, ids, v_status, v_link, v_dest, link_to, dest_slot, nh, route_buf, route_used,
                  v_rstart, v_rlen, v_rpos, n_nodes, mv_ptr, mv_out, v_mv):
    """Give a share of running vehicles (chosen by a hash of id and ``salt``) a new route from their link's end.

    Returns (rerouted, stopped_for_space). Stops when the route buffer is too full.
    """
    done = 0
    for i in range(ids.shape[0]):
        v = ids[i]
        if v_status[v] != RUNNING:
            continue
        h = _hash01(v, salt)
        if h >= share:
            continue
        l = v_link[v]
        r = _reroute(v, l, link_to[l], v_dest, dest_slot, nh, link_to, route_buf, route_used,
                     v_rstart, v_rlen, v_rpos, n_nodes)
        if r < 0:
            return done, True
        if r > 0:
            done += 1
            v_mv[v] = find_movement(mv_ptr, mv_out, l, route_buf[v_rstart[v] + 1]) if v_rlen[v] > 1 else -1
    return done, False


@njit(cache=True)
def _hash01(v, salt):
    """A uniform number in [0, 1) from (vehicle id, salt): splitmix64, so choices need no RNG state."""
    z = (np.uint64(v) * np.uint64(0x9E3779B97F4A7C15)) ^ np.uint64(salt)
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    z = z ^ (z >> np.uint64(31))
    return (z >> np.uint64(11)) * (1.0 / 9007199254740992.0)


@njit(cache=True)
def watch_horizon(ids, v_status, v_link, v_exit, v_rstart, v_rlen, v_rpos, route_buf, fft, v_sf, v_depart):
    """Earliest time any watched vehicle in ``ids`` could arrive (free-flow lower bound); inf if none."""
    best = np.inf
    for i in range(ids.shape[0]):
        v = ids[i]
        st = v_status[v]
        if st == RUNNING:
            tt = v_exit[v]
            for p in range(v_rpos[v] + 1, v_rlen[v]):
                tt += fft[route_buf[v_rstart[v] + p]] / v_sf[v]
            if tt < best:
                best = tt
        elif st == PENDING:
            if v_depart[v] < best:
                best = v_depart[v]
    return best
