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
# ``v_last`` of a vehicle driving a given path (``MesoTraffic.add_trips(paths=...)``): never re-routed
FIXED_PATH = -2
MAX_SCAN = 8  # vehicles looked at behind a blocked head (turn queues)

# movement classes (as networks.junctions)
_PRIORITY, _YIELD, _STOP, _ALLWAY, _ZIPPER, _SIGNAL = 0, 1, 2, 3, 4, 5

# Named groups of the kernel's arrays (numba takes named tuples of arrays as one argument).
Links = namedtuple("Links", [
    "link_to", "length", "fft", "cap_rate", "storage", "qcap", "q_off", "cap_factor", "acc", "q_buf", "q_head",
    "q_count", "q_headt", "lanemask", "link_ring", "ring_ptr", "ring_links", "ring_cap", "in_ptr", "in_links",
    "wait_head", "wait_tail", "wl_links", "wl_n", "in_wl", "cnt_exit", "sum_tt", "occ", "sum_jd", "flow", "t_flow",
    "keep_clear", "link_from"])
Moves = namedtuple("Moves", [
    "ptr", "out", "lanemask", "cls", "rate", "delay", "t_f", "t_g", "cf_ptr", "cf_mv", "acc", "t_acc", "flow",
    "t_flow", "len", "prate", "cf_w", "gap_wait", "nx_ptr", "nx_mask", "nx_frac", "nx_acc", "nx_tacc"])
Vehicles = namedtuple("Vehicles", [
    "dest", "status", "link", "enter", "exit", "depart", "arrive", "dist", "fft", "rstart", "rlen", "rpos", "next",
    "sf", "prio", "watch", "orig", "mv", "first", "last"])
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


@njit(cache=True, inline="always")
def _next_movement(v, b, pos, v_rlen, v_rstart, route_buf, mv_ptr, mv_out):
    """Movement ``v`` will take at the end of link ``b`` (its route position ``pos``): -1 if it ends there."""
    if pos + 1 >= v_rlen[v]:
        return -1
    return find_movement(mv_ptr, mv_out, b, route_buf[v_rstart[v] + pos + 1])


@njit(cache=True, inline="always")
def _wrap(i, qc):
    """``i % qc`` for 0 <= i < 2 qc (a ring-buffer index: head + offset, both below the ring's size), without the
    integer division."""
    return i - qc if i >= qc else i


@njit(cache=True, inline="always")
def _enter(v, b, m, te, tlo, q_buf, q_off, qcap, q_head, q_count, q_headt, fft, v_link, v_enter, v_mv, v_exit, v_sf,
           mv_delay, q_hexit):
    """Append ``v`` to link ``b`` at ``te``, heading for movement ``m``; among vehicles that entered in this
    same step keep the queue ordered by exit time (their order within a step is an artefact of processing).
    A vehicle that becomes the link's head sets ``q_headt[b]`` (when the head's standing time starts) and
    ``q_hexit[b]`` (the head's exit time)."""
    k = q_count[b]
    q_count[b] += 1
    v_link[v] = b
    v_enter[v] = te
    v_mv[v] = m
    v_exit[v] = te + fft[b] / v_sf[v] + (mv_delay[m] if m >= 0 else 0.0)
    off = q_off[b]
    qc = qcap[b]
    h = q_head[b]
    while k > 0:
        prev = q_buf[off + _wrap(h + k - 1, qc)]
        if v_enter[prev] <= tlo or v_exit[prev] <= v_exit[v]:
            break
        q_buf[off + _wrap(h + k, qc)] = prev
        k -= 1
    q_buf[off + _wrap(h + k, qc)] = v
    if k == 0:
        q_headt[b] = te
        q_hexit[b] = v_exit[v]


@njit(cache=True, inline="always")
def _remove_at(l, k, q_buf, q_off, qcap, q_head, q_count):
    """Take the ``k``-th vehicle (0 = head) out of link ``l``'s queue, keeping the others in order."""
    off = q_off[l]
    qc = qcap[l]
    h = q_head[l]
    for i in range(k, 0, -1):
        q_buf[off + _wrap(h + i, qc)] = q_buf[off + _wrap(h + i - 1, qc)]
    q_head[l] = _wrap(h + 1, qc)
    q_count[l] -= 1


@njit(cache=True, inline="always")
def _leave(l, k, v, te, q_buf, q_off, qcap, q_head, q_count, acc, cnt_exit, sum_tt, sum_jd, q_headt, lflow,
           lt_flow, length, fft, v_enter, v_exit, v_mv, v_dist, v_fft, mv_delay, mv_len, q_hexit):
    """Take vehicle ``v`` (queue position ``k``) off link ``l`` at ``te``: capacity used, exit, distance, time booked.
    When the head leaves, the next vehicle becomes head at ``te`` (``q_headt``); a vehicle overtaking a blocked
    head on another lane (turn queues) does not restart the head's standing time, as SUMO counts each vehicle's
    own waiting time. ``q_hexit[l]`` follows the head's exit time (inf on an empty link)."""
    _remove_at(l, k, q_buf, q_off, qcap, q_head, q_count)
    acc[l] -= 1.0
    cnt_exit[l] += 1
    sum_tt[l] += te - v_enter[v]
    m = v_mv[v]
    jd = te - v_exit[v] if te > v_exit[v] else 0.0
    if m >= 0:
        jd += mv_delay[m]
        v_dist[v] += mv_len[m]  # the junction's internal lane (SUMO networks)
    sum_jd[l] += jd
    if k == 0:
        q_headt[l] = te
        q_hexit[l] = v_exit[q_buf[q_off[l] + q_head[l]]] if q_count[l] > 0 else np.inf
    dtf = te - lt_flow[l]
    lflow[l] = (lflow[l] * np.exp(-dtf / 120.0) if dtf > 0 else lflow[l]) + 1.0 / 120.0
    if dtf > 0:
        lt_flow[l] = te
    v_dist[v] += length[l]
    v_fft[v] += fft[l]


@njit(cache=True, inline="always")
def _finish(v, te, status, v_status, v_arrive, v_link, v_watch, watch_out, watch_n):
    """End ``v``'s trip at ``te`` with ``status``; report it if someone waits on its arrival event."""
    v_status[v] = status
    v_arrive[v] = te
    v_link[v] = -1
    if v_watch[v]:
        watch_out[watch_n[0]] = v
        watch_n[0] += 1


@njit(cache=True, inline="always")
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


@njit(cache=True, inline="always")
def turn_mode(nh, dest_slot):
    """True for turn-based tables (``networks.routing.turn_route_tables``): L + N columns and a target slot per
    node, per link and one spare (N + L + 1); node tables have N columns and N slots."""
    return dest_slot.shape[0] > nh.shape[1]


@njit(cache=True)
def follow_turns(row, prev, u, tgt_link, dest, nh, link_to, route_buf, start, max_links):
    """Write the links after link ``prev`` (or from node ``u`` when ``prev`` < 0) along turn-table row ``row`` at
    ``route_buf[start:]``, up to and including link ``tgt_link`` (>= 0), else until node ``dest`` is reached.

    Returns the number of links written, 0 if already at ``dest``, -1 if the target is unreachable."""
    L = link_to.shape[0]
    if tgt_link < 0 and ((prev >= 0 and link_to[prev] == dest) or (prev < 0 and u == dest)):
        return 0
    lk = nh[row, prev] if prev >= 0 else nh[row, L + u]
    n = 0
    while True:
        if lk < 0 or n >= max_links:
            return -1
        route_buf[start + n] = lk
        n += 1
        if (tgt_link >= 0 and lk == tgt_link) or (tgt_link < 0 and link_to[lk] == dest):
            return n
        lk = nh[row, lk]


@njit(cache=True)
def pinned_path(u, prev, e_last, dest, dest_slot, nh, link_to, link_from, cap_factor, route_buf, start, n_nodes):
    """Write the path from node ``u`` (reached over link ``prev``, -1 at a departure from a node) that ends on link
    ``e_last`` (a trip's pinned last link, as SUMO's trips end on an edge) at ``route_buf[start:]``; where that link
    is closed or cannot be reached, the plain path to node ``dest``. Returns the number of links written (0 if
    ``u == dest`` unpinned) or -1 if unreachable. With turn-based tables the path continues from ``prev`` through
    the junction model's movements; with node tables ``prev`` is not used."""
    if turn_mode(nh, dest_slot):
        N = dest_slot.shape[0] - link_to.shape[0] - 1
        if e_last >= 0 and cap_factor[e_last] > 0.0:
            row = dest_slot[N + e_last]
            if row >= 0:
                n = follow_turns(row, prev, u, e_last, -1, nh, link_to, route_buf, start, n_nodes)
                if n >= 0:
                    return n
        row = dest_slot[dest]
        if row < 0:
            return -1
        return follow_turns(row, prev, u, -1, dest, nh, link_to, route_buf, start, n_nodes)
    if e_last >= 0 and cap_factor[e_last] > 0.0:
        tgt = link_from[e_last]
        row = dest_slot[tgt]
        if row >= 0:
            n = follow_path(row, u, tgt, nh, link_to, route_buf, start, n_nodes)
            if n >= 0:
                route_buf[start + n] = e_last
                return n + 1
    row = dest_slot[dest]
    if row < 0:
        return -1
    return follow_path(row, u, dest, nh, link_to, route_buf, start, n_nodes)


@njit(cache=True)
def _reroute(v, cur_link, from_node, v_dest, dest_slot, nh, link_to, route_buf, route_used,
             v_rstart, v_rlen, v_rpos, n_nodes, v_last, link_from, cap_factor):
    """Replace the rest of ``v``'s route by the current shortest path from ``from_node`` (to its pinned last
    link ``v_last[v]`` where it has one).

    The new route is written as [cur_link, path...] so position 0 is the link the vehicle is on.
    Returns 1 on success, 0 if the destination is unreachable, -1 if the route buffer is too full.
    A vehicle on a given path (``v_last`` = FIXED_PATH) keeps it: only re-indexed from its current link (1).
    """
    if v_last[v] == FIXED_PATH:  # a given path is never replaced: position 0 becomes the current link, so a
        v_rstart[v] += v_rpos[v]  # closed link ahead holds the vehicle at its end (the caller sees it closed)
        v_rlen[v] -= v_rpos[v]
        v_rpos[v] = 0
        return 1
    if route_used[0] + n_nodes + 2 > route_buf.shape[0]:
        return -1
    start = route_used[0]
    route_buf[start] = cur_link
    if cur_link == v_last[v]:  # already on its last link
        n = 0
    else:
        n = pinned_path(from_node, cur_link, v_last[v], v_dest[v], dest_slot, nh, link_to, link_from, cap_factor,
                        route_buf, start + 1, n_nodes)
    if n < 0:
        return 0
    route_used[0] = start + 1 + n
    v_rstart[v] = start
    v_rlen[v] = n + 1
    v_rpos[v] = 0
    return 1


@njit(cache=True, inline="always")
def _decayed_flow(m, t, tau, mv_flow, mv_tflow):
    """Movement ``m``'s recent flow (veh/s) at ``t``: an exponential moving average with time constant ``tau``."""
    dtf = t - mv_tflow[m]
    return mv_flow[m] * np.exp(-dtf / tau) if dtf > 0 else mv_flow[m]


@njit(cache=True, inline="always")
def _movement_rate(m, t, f, tau, mv_rate, cf_ptr, cf_mv, mv_flow, mv_tflow, mv_tf, mv_tg, mv_prate, cf_w):
    """Capacity (veh/s) of movement ``m`` at ``t`` with the link's capacity factor ``f``.

    Priority/zipper: saturation flow x lanes; signal: that x its protected ('G') green share, plus, over its
    permissive ('g') share (``mv_prate``: saturation flow x lanes x that share), the share of the saturation
    flow gap acceptance leaves: exp(-q_p (t_g - t_f/2)) with t_f = 1 / saturation flow (HBS's formula, so an
    unopposed permissive green passes like a protected one), q_p the flow of its foes while they are green
    with it (their live flow x ``cf_w``).
    A stream that gives way (yield, stop, all-way): HBS gap acceptance,
    1 / t_f x exp(-q_p (t_g - t_f/2)), q_p the live flow of the movements it gives way to, capped by the former.
    """
    rate = mv_rate[m] * f
    if cf_ptr[m + 1] > cf_ptr[m]:
        qp = 0.0
        for k in range(cf_ptr[m], cf_ptr[m + 1]):
            qp += cf_w[k] * _decayed_flow(cf_mv[k], t, tau, mv_flow, mv_tflow)
        tf = mv_tf[m]
        if mv_prate[m] > 0.0:
            return rate + f * mv_prate[m] * np.exp(-qp * (mv_tg[m] - 0.5 * tf))
        gap = f / tf * np.exp(-qp * (mv_tg[m] - 0.5 * tf))
        if gap < rate:
            rate = gap
    return rate + f * mv_prate[m]


@njit(cache=True, _nrt=False)
def movement_rate(m, t, f, tau, mv_rate, cf_ptr, cf_mv, mv_flow, mv_tflow, mv_tf, mv_tg, mv_prate, cf_w):
    """:func:`_movement_rate` as a called function (no reference counting: it allocates nothing)."""
    return _movement_rate(m, t, f, tau, mv_rate, cf_ptr, cf_mv, mv_flow, mv_tflow, mv_tf, mv_tg, mv_prate, cf_w)


@njit(cache=True, inline="always")
def _bits(x):
    n = 0
    while x:
        n += 1
        x &= x - 1
    return n


@njit(cache=True, inline="always")
def free_lane_share(mask, blocked):
    """Share of a movement's lanes (bit ``mask``) not held by a blocked vehicle ahead (bits ``blocked``)."""
    n = _bits(mask)
    return _bits(mask & ~blocked) / n if n > 0 else 1.0


@njit(cache=True)
def adams_delay(q, tc):
    """Mean wait (s) for a gap of at least ``tc`` (s) in a Poisson stream of ``q`` veh/s, for a vehicle arriving at
    a random moment with nobody ahead (Adams 1936): (exp(q tc) - q tc - 1) / q; q tc² / 2 as q -> 0."""
    x = q * tc
    if x < 1e-6:
        return 0.5 * q * tc * tc
    return (np.exp(x) - x - 1.0) / q


@njit(cache=True, inline="always")
def _movement_ready(m, t, dt, f, tau, mv_rate, cf_ptr, cf_mv, mv_flow, mv_tflow, mv_tf, mv_tg, mv_acc, mv_tacc,
                    mv_prate, cf_w, gap_wait):
    """Top up movement ``m``'s capacity account to ``t``; True if a whole vehicle may pass now.

    A movement with ``gap_wait`` < 1 (a permissive green) banks no more than that credit while none of its vehicles
    waits: a vehicle that arrives at the line after a step without one finds ``gap_wait`` of a vehicle's
    capacity ready (its protected share of the green: arriving in 'G' it goes) and waits for the rest at the
    movement's capacity (in 'g': the mean service time of the head of a gap-acceptance queue, 1 / capacity),
    holding its lane meanwhile. ``gap_wait`` < 0 (a stream that gives way, option ``minor_gap_delay``): the credit
    is 1 - capacity x Adams' delay, so a vehicle arriving alone waits that delay for a gap in its foes' flow."""
    rate = _movement_rate(m, t, f, tau, mv_rate, cf_ptr, cf_mv, mv_flow, mv_tflow, mv_tf, mv_tg, mv_prate, cf_w)
    if gap_wait[m] < 1.0 and t - mv_tacc[m] > 1.5 * dt:
        credit = gap_wait[m]
        if credit < 0.0:
            # a stream that gives way (``minor_gap_delay``): a vehicle arriving at an idle line waits Adams'
            # delay for a gap in its foes' live flow before it goes (then the queue runs at the capacity)
            qp = 0.0
            for k in range(cf_ptr[m], cf_ptr[m + 1]):
                qp += cf_w[k] * _decayed_flow(cf_mv[k], t, tau, mv_flow, mv_tflow)
            credit = 1.0 - rate * adams_delay(qp, mv_tg[m])
        if mv_acc[m] > credit:
            mv_acc[m] = credit
        mv_tacc[m] = t - dt
    a = mv_acc[m] + rate * (t - mv_tacc[m])
    cmax = rate * dt + 1.0
    mv_acc[m] = a if a < cmax else cmax
    mv_tacc[m] = t
    return mv_acc[m] >= 1.0 - 1e-9


@njit(cache=True, inline="always")
def _pair_ready(k, t, dt, rate, acc, tacc):
    """Top up the account ``k`` of a (movement, onward movement) pair at ``rate`` (veh/s); True if a vehicle may pass."""
    a = acc[k] + rate * (t - tacc[k])
    cmax = rate * dt + 1.0
    acc[k] = a if a < cmax else cmax
    tacc[k] = t
    return acc[k] >= 1.0 - 1e-9


@njit(cache=True, inline="always")
def _movement_take(m, t, tau, mv_acc, mv_flow, mv_tflow):
    mv_acc[m] -= 1.0
    mv_flow[m] = _decayed_flow(m, t, tau, mv_flow, mv_tflow) + 1.0 / tau
    mv_tflow[m] = t


@njit(cache=True, inline="always")
def join_wait_line(v, b, v_next, wait_head, wait_tail, in_wl, wl_links, wl_n):
    """Append vehicle ``v`` to the line of departures waiting to enter link ``b`` (FIFO, a linked list), and put
    ``b`` on the list of links with a waiting line."""
    v_next[v] = -1
    if wait_head[b] < 0:
        wait_head[b] = v
    else:
        v_next[wait_tail[b]] = v
    wait_tail[b] = v
    if not in_wl[b]:
        in_wl[b] = True
        wl_links[wl_n[0]] = b
        wl_n[0] += 1


@njit(cache=True)
def advance(t0, n_steps, dt, step_counter, L, M, V, T, gridlock_s, tau, prio_queue_factor, stand_unroutable=False,
            lane_queues=False):
    """Advance the network by ``n_steps`` steps of ``dt`` seconds from time ``t0``.

    ``L``, ``M``, ``V``, ``T``: the :data:`Links`, :data:`Moves`, :data:`Vehicles` and :data:`Tables` tuples;
    ``gridlock_s`` SUMO's time-to-teleport; ``tau`` the averaging time of movement flows (s).
    ``stand_unroutable``: a trip with pinned end links but no path between them departs anyway on the route
    [first link, last link], as SUMO inserts it with ``--ignore-route-errors``: it stands at the end of its
    first link on the rightmost lane (no connection onward) until the gridlock rule moves it on.
    ``lane_queues``: a vehicle all of whose lanes are held by a blocked vehicle ahead waits in its lane's queue
    and does not count toward the ``MAX_SCAN`` vehicles looked at behind a blocked head, so a long queue on one
    lane does not stop the vehicles behind it that use another.
    Returns (steps_done, flags). Stops early (flags = NEED_ROUTE_SPACE) at the end of a step in which a
    departure or a forced reroute was deferred for lack of route-buffer space; the caller grows the
    buffer and calls again. Deferred actions simply happen a step later, deterministically.
    """
    # the steps run in _advance, compiled without reference counting (numba's NRT): every inlined helper call binds
    # each array it takes to a new name, and numba increfs and decrefs each such binding atomically, ~100 atomic
    # operations per vehicle move that LLVM's refcount pruning does not remove (over half of the kernel's time on
    # the bench's peak case). _advance allocates nothing and keeps no array beyond the call; every array it
    # touches is held by this caller, so nothing needs counting. Its scratch arrays are allocated here.
    in_ptr = L.in_ptr
    maxdeg = 1
    for n in range(in_ptr.shape[0] - 1):
        d = in_ptr[n + 1] - in_ptr[n]
        if d > maxdeg:
            maxdeg = d
    order = np.empty(maxdeg, np.int64)
    keys = np.empty(maxdeg)
    # each link's head exit time, so the scan of links for one due reads one array in link order
    q_count, q_buf, q_off, q_head, v_exit = L.q_count, L.q_buf, L.q_off, L.q_head, V.exit
    q_hexit = np.full(q_count.shape[0], np.inf)
    for l in range(q_count.shape[0]):
        if q_count[l] > 0:
            q_hexit[l] = v_exit[q_buf[q_off[l] + q_head[l]]]
    return _advance(t0, n_steps, dt, step_counter, L, M, V, T, gridlock_s, tau, prio_queue_factor, stand_unroutable,
                    lane_queues, order, keys, q_hexit)


@njit(cache=True, _nrt=False)
def _advance(t0, n_steps, dt, step_counter, L, M, V, T, gridlock_s, tau, prio_queue_factor, stand_unroutable,
             lane_queues, order, keys, q_hexit):
    """The steps of :func:`advance` (same arguments, plus scratch ``order`` and ``keys`` of the largest in-degree
    and ``q_hexit``, each link's head exit time, inf if empty, kept up to date by ``_enter`` and ``_leave``).
    Compiled with ``_nrt=False``: no reference counting, so it must not allocate (numba refuses to compile an
    allocation without NRT) nor return or store an array."""
    # every array as a local, unpacked once (a named tuple bound to a new name would copy its 76 members)
    (link_to, length, fft, cap_rate, storage, qcap, q_off, cap_factor, acc, q_buf, q_head, q_count, q_headt,
     l_lanemask, link_ring, ring_ptr, ring_links, ring_cap, in_ptr, in_links, wait_head, wait_tail, wl_links, wl_n,
     in_wl, cnt_exit, sum_tt, occ, sum_jd, lflow, lt_flow, keep_clear, link_from) = L
    (mv_ptr, mv_out, mv_lanemask, mv_cls, mv_rate, mv_delay, mv_tf, mv_tg, cf_ptr, cf_mv, mv_acc, mv_tacc, mv_flow,
     mv_tflow, mv_len, mv_prate, cf_w, gap_wait, nx_ptr, nx_mask, nx_frac, nx_acc, nx_tacc) = M
    (v_dest, v_status, v_link, v_enter, v_exit, v_depart, v_arrive, v_dist, v_fft, v_rstart, v_rlen, v_rpos, v_next,
     v_sf, v_prio, v_watch, v_orig, v_mv, v_first, v_last) = V
    (route_buf, route_used, dest_slot, nh, dep_order, dep_ptr, prio_ids, prio_n, watch_out, watch_n, gridlocks) = T
    nL = link_to.shape[0]
    n_nodes = nh.shape[1]
    n_dep = dep_order.shape[0]
    N = in_ptr.shape[0] - 1
    flags = 0
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
                # top up the capacity account (a closed link still drains the vehicles already on it); carry
                # at most one vehicle's worth, so a fractional rate keeps its remainder
                fo = cap_factor[l] if cap_factor[l] > 0.0 else 1.0
                c = cap_rate[l] * fo * dt
                a = acc[l] + c
                acc[l] = a if a < c + 1.0 else c + 1.0
                if q_hexit[l] > t or acc[l] < 1.0 - 1e-9:
                    # nobody due at the end of this link, or no capacity left this step: nobody can leave, and
                    # skipping it here keeps the hot loop on local arrays (most links have no one due)
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
                l = order[i]
                # --- serve link l: let the vehicles at its end leave as capacity, movements and room allow
                f = cap_factor[l]
                fo = f if f > 0.0 else 1.0  # a closed link still drains the vehicles already on it
                # (its capacity account was topped up for this step by the caller)
                full = l_lanemask[l]
                blocked = np.int64(0)
                k = 0
                scanned = 0
                while k < q_count[l] and scanned < MAX_SCAN:
                    if acc[l] < 1.0 - 1e-9:  # tolerance: 6 x (1/6) may sum to 0.99999
                        break
                    v = q_buf[q_off[l] + _wrap(q_head[l] + k, qcap[l])]
                    if v_exit[v] > t:
                        break
                    scanned += 1
                    m = v_mv[v]
                    mask = mv_lanemask[m] if m >= 0 else full
                    nolink = False
                    if stand_unroutable and m < 0 and v_rpos[v] + 1 < v_rlen[v]:
                        # a broken route (stand_unroutable): its next link does not start here; it holds the
                        # rightmost lane, as SUMO's vehicle stands at the end of the lane it was inserted on
                        if link_from[route_buf[v_rstart[v] + v_rpos[v] + 1]] != link_to[l]:
                            nolink = True
                            mask = full & -full
                    # lanes chosen ahead (lane_lookahead_m): into a short link, only the lanes that reach the
                    # onward movement's lanes serve this vehicle, with their own capacity account
                    k2 = -1
                    if m >= 0 and nx_ptr[m + 1] > nx_ptr[m] and v_rpos[v] + 2 < v_rlen[v]:
                        b0 = route_buf[v_rstart[v] + v_rpos[v] + 1]
                        m2 = find_movement(mv_ptr, mv_out, b0, route_buf[v_rstart[v] + v_rpos[v] + 2])
                        if m2 >= 0 and nx_mask[nx_ptr[m] + m2 - mv_ptr[b0]] != 0:
                            k2 = nx_ptr[m] + m2 - mv_ptr[b0]
                            mask = nx_mask[k2]
                    if (mask & ~blocked) == 0:  # every lane it may use is held by a blocked vehicle ahead
                        if lane_queues:  # it queues in its own lane: the scan of the other lanes goes on
                            scanned -= 1
                        k += 1
                        continue
                    te = v_exit[v] if v_exit[v] > tlo else t
                    pos = v_rpos[v] + 1
                    if pos >= v_rlen[v]:  # leaves the network: arrived
                        _leave(l, k, v, te, q_buf, q_off, qcap, q_head, q_count, acc, cnt_exit, sum_tt, sum_jd, q_headt, lflow, lt_flow, length, fft, v_enter, v_exit, v_mv, v_dist, v_fft, mv_delay, mv_len, q_hexit)
                        _finish(v, te, ARRIVED, v_status, v_arrive, v_link, v_watch, watch_out, watch_n)
                        continue
                    b = route_buf[v_rstart[v] + pos]
                    if cap_factor[b] <= 0.0:  # next link closed: re-route from here
                        r = _reroute(v, l, link_to[l], v_dest, dest_slot, nh, link_to, route_buf, route_used,
                                     v_rstart, v_rlen, v_rpos, n_nodes, v_last, link_from, cap_factor)
                        if r < 0:
                            flags |= NEED_ROUTE_SPACE
                            break
                        if r == 0 or v_rlen[v] < 2:  # no way on: the vehicle is stranded here
                            _leave(l, k, v, te, q_buf, q_off, qcap, q_head, q_count, acc, cnt_exit, sum_tt, sum_jd, q_headt, lflow, lt_flow, length, fft, v_enter, v_exit, v_mv, v_dist, v_fft, mv_delay, mv_len, q_hexit)
                            _finish(v, te, STRANDED, v_status, v_arrive, v_link, v_watch, watch_out, watch_n)
                            continue
                        pos = 1
                        b = route_buf[v_rstart[v] + 1]
                        m = find_movement(mv_ptr, mv_out, l, b)
                        v_mv[v] = m
                        mask = mv_lanemask[m] if m >= 0 else full
                        k2 = -1
                        nolink = False
                        if cap_factor[b] <= 0.0:
                            blocked |= mask
                            k += 1
                            continue
                    room = q_count[b] < storage[b] and ring_allows(l, b, link_ring, ring_ptr, ring_links,
                                                                       ring_cap, q_count)
                    if room and keep_clear[b] and pos + 1 < v_rlen[v]:  # SUMO's keep-clear: do not stop inside a junction
                        c2 = route_buf[v_rstart[v] + pos + 1]
                        room = q_count[c2] < storage[c2]
                    ok = room and not nolink
                    if ok and m >= 0:
                        # a lane held by a blocked vehicle ahead (a left turner waiting on a shared lane) does not
                        # discharge this movement: its saturation flow counts only its lanes still free
                        fl = fo * free_lane_share(mask, blocked)
                        ok = _movement_ready(m, t, dt, fl, tau, mv_rate, cf_ptr, cf_mv,
                                             mv_flow, mv_tflow, mv_tf, mv_tg, mv_acc, mv_tacc, mv_prate, cf_w,
                                             gap_wait)
                        if k2 >= 0:
                            r2 = _movement_rate(m, t, fl * nx_frac[k2], tau, mv_rate, cf_ptr, cf_mv, mv_flow, mv_tflow,
                                               mv_tf, mv_tg, mv_prate, cf_w)
                            ok = _pair_ready(k2, t, dt, r2, nx_acc, nx_tacc) and ok
                    if not ok:
                        # SUMO's gridlock rule: the first vehicle of the queue, standing still for gridlock_s, jumps along
                        # its route to the next link with room, taking the free-flow time of the links it skips.
                        stand0 = v_exit[v] if v_exit[v] > q_headt[l] else q_headt[l]  # since it stood first at the line
                        if k == 0 and t - stand0 >= gridlock_s:
                            p2 = pos
                            skip_len = 0.0
                            skip_fft = 0.0
                            found = -1
                            while p2 < v_rlen[v] and p2 - pos < 30:
                                c2 = route_buf[v_rstart[v] + p2]
                                if p2 > pos and cap_factor[c2] > 0.0 and q_count[c2] < storage[c2]:
                                    found = p2
                                    break
                                skip_len += length[c2]
                                skip_fft += fft[c2] / v_sf[v]
                                p2 += 1
                            if found >= 0 or p2 >= v_rlen[v]:
                                _leave(l, k, v, te, q_buf, q_off, qcap, q_head, q_count, acc, cnt_exit, sum_tt, sum_jd, q_headt, lflow, lt_flow, length, fft, v_enter, v_exit, v_mv, v_dist, v_fft, mv_delay, mv_len, q_hexit)
                                v_dist[v] += skip_len
                                v_fft[v] += skip_fft
                                gridlocks[0] += 1
                                if found < 0:  # jumped to the end of its route
                                    _finish(v, te + skip_fft, ARRIVED, v_status, v_arrive, v_link, v_watch, watch_out, watch_n)
                                    continue
                                v_rpos[v] = found
                                b2 = route_buf[v_rstart[v] + found]
                                _enter(v, b2, _next_movement(v, b2, found, v_rlen, v_rstart, route_buf, mv_ptr, mv_out), te + skip_fft, tlo, q_buf, q_off, qcap, q_head, q_count, q_headt, fft, v_link, v_enter, v_mv, v_exit, v_sf, mv_delay, q_hexit)
                                continue
                        blocked |= mask
                        if (blocked & full) == full:
                            break
                        k += 1
                        continue
                    if m >= 0:
                        _movement_take(m, t, tau, mv_acc, mv_flow, mv_tflow)
                        if k2 >= 0:
                            nx_acc[k2] -= 1.0
                    _leave(l, k, v, te, q_buf, q_off, qcap, q_head, q_count, acc, cnt_exit, sum_tt, sum_jd, q_headt, lflow, lt_flow, length, fft, v_enter, v_exit, v_mv, v_dist, v_fft, mv_delay, mv_len, q_hexit)
                    v_rpos[v] = pos
                    _enter(v, b, _next_movement(v, b, pos, v_rlen, v_rstart, route_buf, mv_ptr, mv_out), te, tlo, q_buf, q_off, qcap, q_head, q_count, q_headt, fft, v_link, v_enter, v_mv, v_exit, v_sf, mv_delay, q_hexit)
        # --- 2. priority vehicles (outside the queues, no capacity taken) -----------------------
        i = 0
        while i < prio_n[0]:
            v = prio_ids[i]
            if v_exit[v] > t:
                i += 1
                continue
            te = v_exit[v] if v_exit[v] > tlo else t
            l = v_link[v]
            pos = v_rpos[v] + 1
            done = pos >= v_rlen[v]
            b = -1
            if not done:
                b = route_buf[v_rstart[v] + pos]
                if cap_factor[b] <= 0.0:
                    r = _reroute(v, l, link_to[l], v_dest, dest_slot, nh, link_to, route_buf,
                                 route_used, v_rstart, v_rlen, v_rpos, n_nodes, v_last, link_from, cap_factor)
                    if r < 0:
                        flags |= NEED_ROUTE_SPACE
                        i += 1
                        continue
                    if r == 0 or v_rlen[v] < 2:
                        done = True
                        v_status[v] = STRANDED
                    else:
                        pos = 1
                        b = route_buf[v_rstart[v] + 1]
            v_dist[v] += length[l]
            v_fft[v] += fft[l]
            if done:
                _finish(v, te, STRANDED if v_status[v] == STRANDED else ARRIVED, v_status, v_arrive, v_link, v_watch, watch_out, watch_n)
                prio_n[0] -= 1
                prio_ids[i] = prio_ids[prio_n[0]]
                continue
            v_rpos[v] = pos
            v_link[v] = b
            v_enter[v] = te
            rate = cap_rate[b] * cap_factor[b]
            wq = waiting_count(b, te, q_buf, q_off, q_head, q_count, qcap, v_exit)
            m = _next_movement(v, b, pos, v_rlen, v_rstart, route_buf, mv_ptr, mv_out)
            jd = mv_delay[m] if m >= 0 else 0.0
            v_exit[v] = te + fft[b] / v_sf[v] + prio_queue_factor * (wq / rate + jd)
            i += 1
        # --- 3. departures due in this step: route, then queue at the first link ----------------
        while dep_ptr[0] < n_dep:
            v = dep_order[dep_ptr[0]]
            if v_depart[v] > t:
                break
            o = v_orig[v]
            d = v_dest[v]
            if o == d:
                dep_ptr[0] += 1
                _finish(v, v_depart[v], ARRIVED, v_status, v_arrive, v_link, v_watch, watch_out, watch_n)
                continue
            if route_used[0] + n_nodes + 2 > route_buf.shape[0]:
                flags |= NEED_ROUTE_SPACE
                break
            dep_ptr[0] += 1
            e0 = v_first[v]
            if e0 >= 0 and cap_factor[e0] > 0.0 and v_last[v] >= 0 and cap_factor[v_last[v]] > 0.0:
                # SUMO's trips start on an edge: the pinned first link, then on to the pinned last link
                route_buf[route_used[0]] = e0
                if e0 == v_last[v]:
                    n = 1
                else:
                    n = pinned_path(link_to[e0], e0, v_last[v], d, dest_slot, nh, link_to, link_from, cap_factor,
                                    route_buf, route_used[0] + 1, n_nodes)
                    n = n + 1 if n >= 0 else -1
            else:
                n = pinned_path(o, -1, -1, d, dest_slot, nh, link_to, link_from, cap_factor, route_buf, route_used[0],
                                n_nodes)
            if (n <= 0 and stand_unroutable and not v_prio[v] and e0 >= 0 and v_last[v] >= 0 and e0 != v_last[v]
                    and cap_factor[e0] > 0.0 and cap_factor[v_last[v]] > 0.0):
                route_buf[route_used[0]] = e0  # SUMO's --ignore-route-errors: inserted on [first, last] anyway
                route_buf[route_used[0] + 1] = v_last[v]
                n = 2
            if n <= 0:
                v_status[v] = UNROUTABLE
                if v_watch[v]:
                    watch_out[watch_n[0]] = v
                    watch_n[0] += 1
                continue
            v_rstart[v] = route_used[0]
            v_rlen[v] = n
            v_rpos[v] = 0
            route_used[0] += n
            b = route_buf[v_rstart[v]]
            if v_prio[v]:
                te = v_depart[v] if v_depart[v] > tlo else t
                v_status[v] = RUNNING
                v_link[v] = b
                v_enter[v] = te
                rate = cap_rate[b] * max(cap_factor[b], 1e-9)
                wq = waiting_count(b, te, q_buf, q_off, q_head, q_count, qcap, v_exit)
                m = _next_movement(v, b, 0, v_rlen, v_rstart, route_buf, mv_ptr, mv_out)
                jd = mv_delay[m] if m >= 0 else 0.0
                v_exit[v] = te + fft[b] / v_sf[v] + prio_queue_factor * (wq / rate + jd)
                prio_ids[prio_n[0]] = v
                prio_n[0] += 1
                continue
            join_wait_line(v, b, v_next, wait_head, wait_tail, in_wl, wl_links, wl_n)
        # --- 4. waiting vehicles enter their first link where there is room ---------------------
        i = 0
        while i < wl_n[0]:
            b = wl_links[i]
            while (wait_head[b] >= 0 and q_count[b] < storage[b] and cap_factor[b] > 0.0
                   and ring_allows(-1, b, link_ring, ring_ptr, ring_links, ring_cap, q_count)):
                v = wait_head[b]
                wait_head[b] = v_next[v]
                te = v_depart[v] if v_depart[v] > tlo else t
                v_status[v] = RUNNING
                _enter(v, b, _next_movement(v, b, 0, v_rlen, v_rstart, route_buf, mv_ptr, mv_out), te, tlo, q_buf, q_off, qcap, q_head, q_count, q_headt, fft, v_link, v_enter, v_mv, v_exit, v_sf, mv_delay, q_hexit)
            if wait_head[b] < 0:
                in_wl[b] = False
                wl_n[0] -= 1
                wl_links[i] = wl_links[wl_n[0]]
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
def movement_costs(t, fixed, mv_ptr, link_cap, cap_factor, q_buf, q_off, q_head, q_count, qcap, v_exit, v_mv, tau,
                   mv_rate, cf_ptr, cf_mv, mv_flow, mv_tflow, mv_tf, mv_tg, mv_prate, cf_w):
    """Routing cost of each movement (s): its fixed delay (turn time + signal uniform delay) plus the time its own
    queue needs at its live capacity beyond what the link's queue already costs (``link_costs``), so a turn
    that gives way to heavy traffic, or a short green, is avoided while its queue lasts."""
    M = fixed.shape[0]
    out = fixed.copy()
    L = link_cap.shape[0]
    cnt = np.zeros(M)
    for l in range(L):
        f = cap_factor[l]
        if f <= 0.0 or q_count[l] == 0 or mv_ptr[l + 1] == mv_ptr[l]:
            continue
        n = waiting_count(l, t, q_buf, q_off, q_head, q_count, qcap, v_exit)
        if n == 0:
            continue
        for k in range(n):  # the queue's vehicles by the movement they wait for
            m = v_mv[q_buf[q_off[l] + (q_head[l] + k) % qcap[l]]]
            if m >= 0:
                cnt[m] += 1.0
        link_wait = n / (link_cap[l] * f)
        for m in range(mv_ptr[l], mv_ptr[l + 1]):
            if cnt[m] > 0.0:
                r = movement_rate(m, t, f, tau, mv_rate, cf_ptr, cf_mv, mv_flow, mv_tflow, mv_tf, mv_tg, mv_prate, cf_w)
                extra = cnt[m] / max(r, 1e-6) - link_wait
                if extra > 0.0:
                    out[m] += extra
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
                  v_rstart, v_rlen, v_rpos, n_nodes, mv_ptr, mv_out, v_mv, v_last, link_from, cap_factor):
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
                     v_rstart, v_rlen, v_rpos, n_nodes, v_last, link_from, cap_factor)
        if r < 0:
            return done, True
        if r > 0:
            done += 1
            v_mv[v] = find_movement(mv_ptr, mv_out, l, route_buf[v_rstart[v] + 1]) if v_rlen[v] > 1 else -1
    return done, False


@njit(cache=True)
def reroute_closed(ids, v_status, v_link, v_dest, link_to, dest_slot, nh, route_buf, route_used, v_rstart, v_rlen,
                   v_rpos, n_nodes, mv_ptr, mv_out, v_mv, v_last, link_from, cap_factor):
    """Re-route every running vehicle whose remaining route uses a closed link, from its current link's end
    (SUMO's ``closingReroute`` on every edge: a vehicle re-routes on its next edge, not at the closure).

    Returns (rerouted, stopped_for_space). A vehicle with no way around keeps its route (it re-routes or is
    stranded at the closed link, as before)."""
    done = 0
    for i in range(ids.shape[0]):
        v = ids[i]
        if v_status[v] != RUNNING:
            continue
        hit = False
        for p in range(v_rpos[v] + 1, v_rlen[v]):
            if cap_factor[route_buf[v_rstart[v] + p]] <= 0.0:
                hit = True
                break
        if not hit:
            continue
        l = v_link[v]
        if route_used[0] + n_nodes + 2 > route_buf.shape[0]:
            return done, True
        r = _reroute(v, l, link_to[l], v_dest, dest_slot, nh, link_to, route_buf, route_used,
                     v_rstart, v_rlen, v_rpos, n_nodes, v_last, link_from, cap_factor)
        if r < 0:
            return done, True
        if r == 0:  # no way around: the route is left as it was
            continue
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
