"""Numba kernels of the built-in mesoscopic traffic model (a link-queue model with spillback).

Each link is a FIFO queue with a free-flow travel time, an outflow capacity (veh/s, accumulated per
step as in MATSim's queue model) and a storage capacity (vehicles that fit: length x lanes / jam
spacing). A vehicle may leave a link once its free-flow exit time has passed, if the link has outflow
capacity left this step and the next link on its route has room; otherwise it waits, and a full link
blocks the links upstream (spillback). Vehicles follow routes stored in one flat buffer; routes come
from next-hop tables (one row per destination). Priority vehicles (emergency units) ride outside
the queues. All state lives in flat arrays held by :class:`agents.traffic.meso_state.MesoState`.

Times are seconds from scenario start; a step of length ``dt`` processes the interval (t - dt, t].
A vehicle that becomes free to leave inside that interval and is not held back leaves at its exact
free-flow time, so free-flow travel times are exact, not rounded to steps.
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np
from numba import njit

from agents.traffic.schema import ARRIVED, PENDING, RUNNING, STRANDED, UNROUTABLE  # noqa: E402  status codes

# kernel return flags
NEED_ROUTE_SPACE = 1


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
def _enter(v, b, te, tlo, q_buf, q_off, q_head, q_count, qcap, v_link, v_enter, v_exit, fft, v_sf):
    """Append ``v`` to link ``b`` at time ``te``; among vehicles that entered in this same step, keep the
    queue ordered by exit time (their order within a step is an artefact of processing order)."""
    k = q_count[b]
    q_count[b] += 1
    v_link[v] = b
    v_enter[v] = te
    v_exit[v] = te + fft[b] / v_sf[v]
    while k > 0:
        prev = q_buf[q_off[b] + (q_head[b] + k - 1) % qcap[b]]
        if v_enter[prev] <= tlo or v_exit[prev] <= v_exit[v]:
            break
        q_buf[q_off[b] + (q_head[b] + k) % qcap[b]] = prev
        k -= 1
    q_buf[q_off[b] + (q_head[b] + k) % qcap[b]] = v


@njit(cache=True)
def _pop(l, q_head, q_count, qcap):
    q_head[l] = (q_head[l] + 1) % qcap[l]
    q_count[l] -= 1


@njit(cache=True)
def _leave(l, v, te, q_head, q_count, qcap, acc, cnt_exit, sum_tt, v_enter, v_dist, v_fft, length, fft):
    """Take the head vehicle ``v`` off link ``l`` at ``te``: capacity used, exit counted, distance and time booked."""
    _pop(l, q_head, q_count, qcap)
    acc[l] -= 1.0
    cnt_exit[l] += 1
    sum_tt[l] += te - v_enter[v]
    v_dist[v] += length[l]
    v_fft[v] += fft[l]


@njit(cache=True)
def _finish(v, te, status, v_status, v_arrive, v_link, v_watch, watch_out, watch_n):
    """End ``v``'s trip at ``te`` with ``status``; report it if someone waits on its arrival event."""
    v_status[v] = status
    v_arrive[v] = te
    v_link[v] = -1
    if v_watch[v]:
        watch_out[watch_n[0]] = v
        watch_n[0] += 1


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


class LinkState(NamedTuple):
    """Per-link arrays of the queue model (static parameters, queues, waiting lists, recording counters)."""

    link_to: np.ndarray
    length: np.ndarray      # m
    fft: np.ndarray         # free-flow time incl. junction delay, s
    cap_rate: np.ndarray    # outflow capacity, veh/s
    storage: np.ndarray     # vehicles that fit
    qcap: np.ndarray
    q_off: np.ndarray
    cap_factor: np.ndarray  # 0 = closed
    acc: np.ndarray         # outflow capacity account, vehicles
    q_buf: np.ndarray
    q_head: np.ndarray
    q_count: np.ndarray
    link_ring: np.ndarray
    ring_ptr: np.ndarray
    ring_links: np.ndarray
    ring_cap: np.ndarray
    wait_head: np.ndarray
    wait_tail: np.ndarray
    wl_links: np.ndarray
    wl_n: np.ndarray
    in_wl: np.ndarray
    cnt_exit: np.ndarray
    sum_tt: np.ndarray      # s
    occ: np.ndarray


class VehicleState(NamedTuple):
    """Per-vehicle arrays (structure of arrays): destination, status, position, times (s), distance (m), route."""

    v_dest: np.ndarray
    v_status: np.ndarray
    v_link: np.ndarray
    v_enter: np.ndarray
    v_exit: np.ndarray
    v_depart: np.ndarray
    v_arrive: np.ndarray
    v_dist: np.ndarray
    v_fft: np.ndarray
    v_rstart: np.ndarray
    v_rlen: np.ndarray
    v_rpos: np.ndarray
    v_next: np.ndarray
    v_sf: np.ndarray
    v_prio: np.ndarray
    v_watch: np.ndarray
    v_orig: np.ndarray


class RouteState(NamedTuple):
    """Routes in one flat buffer and the next-hop tables (one row per destination node)."""

    route_buf: np.ndarray
    route_used: np.ndarray
    dest_slot: np.ndarray
    nh: np.ndarray


class DispatchState(NamedTuple):
    """Departures sorted by time, priority vehicles, and the outputs (watched arrivals, gridlock moves)."""

    dep_order: np.ndarray
    dep_ptr: np.ndarray
    prio_ids: np.ndarray
    prio_n: np.ndarray
    watch_out: np.ndarray
    watch_n: np.ndarray
    teleports: np.ndarray


@njit(cache=True)
def advance(t0, n_steps, dt, step_counter, links, vehicles, routes, dispatch, stuck_s, prio_queue_factor):
    """Advance the network by ``n_steps`` steps of ``dt`` seconds from time ``t0``.

    Returns (steps_done, flags). Stops early (flags = NEED_ROUTE_SPACE) at the end of a step in which a
    departure or a forced reroute was deferred for lack of route-buffer space; the caller grows the
    buffer and calls again. Deferred actions simply happen a step later, deterministically.
    """
    link_to, length, fft, cap_rate, storage, qcap, q_off, cap_factor, acc, q_buf, q_head, q_count = (
        links.link_to, links.length, links.fft, links.cap_rate, links.storage, links.qcap, links.q_off,
        links.cap_factor, links.acc, links.q_buf, links.q_head, links.q_count)
    link_ring, ring_ptr, ring_links, ring_cap = links.link_ring, links.ring_ptr, links.ring_links, links.ring_cap
    wait_head, wait_tail, wl_links, wl_n, in_wl = (links.wait_head, links.wait_tail, links.wl_links, links.wl_n,
                                                   links.in_wl)
    cnt_exit, sum_tt, occ = links.cnt_exit, links.sum_tt, links.occ
    v_dest, v_status, v_link, v_enter, v_exit, v_depart, v_arrive, v_dist, v_fft = (
        vehicles.v_dest, vehicles.v_status, vehicles.v_link, vehicles.v_enter, vehicles.v_exit, vehicles.v_depart,
        vehicles.v_arrive, vehicles.v_dist, vehicles.v_fft)
    v_rstart, v_rlen, v_rpos, v_next, v_sf, v_prio, v_watch, v_orig = (
        vehicles.v_rstart, vehicles.v_rlen, vehicles.v_rpos, vehicles.v_next, vehicles.v_sf, vehicles.v_prio,
        vehicles.v_watch, vehicles.v_orig)
    route_buf, route_used, dest_slot, nh = routes.route_buf, routes.route_used, routes.dest_slot, routes.nh
    dep_order, dep_ptr, prio_ids, prio_n = dispatch.dep_order, dispatch.dep_ptr, dispatch.prio_ids, dispatch.prio_n
    watch_out, watch_n, teleports = dispatch.watch_out, dispatch.watch_n, dispatch.teleports
    L = link_to.shape[0]
    n_nodes = nh.shape[1]
    n_dep = dep_order.shape[0]
    flags = 0
    for s in range(n_steps):
        t = t0 + (s + 1) * dt
        tlo = t - dt
        off = ((step_counter + s) * 7919) % L if L > 0 else 0
        # --- 1. link exits, in a rotating order for fairness at merges --------------------------
        for k in range(L):
            l = k + off
            if l >= L:
                l -= L
            f = cap_factor[l]
            c = cap_rate[l] * f * dt
            cmax = c if c > 1.0 else 1.0
            a = acc[l] + c
            acc[l] = a if a < cmax else cmax
            while q_count[l] > 0:
                v = q_buf[q_off[l] + q_head[l]]
                if v_exit[v] > t or acc[l] < 1.0 - 1e-9:  # tolerance: 6 x (1/6) may sum to 0.99999
                    break
                te = v_exit[v] if v_exit[v] > tlo else t
                pos = v_rpos[v] + 1
                if pos >= v_rlen[v]:  # leaves the network: arrived
                    _leave(l, v, te, q_head, q_count, qcap, acc, cnt_exit, sum_tt, v_enter, v_dist, v_fft, length, fft)
                    _finish(v, te, ARRIVED, v_status, v_arrive, v_link, v_watch, watch_out, watch_n)
                    continue
                b = route_buf[v_rstart[v] + pos]
                if cap_factor[b] <= 0.0:  # next link closed: re-route from here
                    r = _reroute(v, l, link_to[l], v_dest, dest_slot, nh, link_to, route_buf, route_used,
                                 v_rstart, v_rlen, v_rpos, n_nodes)
                    if r < 0:
                        flags |= NEED_ROUTE_SPACE
                        break
                    if r == 0 or v_rlen[v] < 2:  # no way on: the vehicle is stranded here
                        _leave(l, v, te, q_head, q_count, qcap, acc, cnt_exit, sum_tt, v_enter, v_dist, v_fft, length, fft)
                        _finish(v, te, STRANDED, v_status, v_arrive, v_link, v_watch, watch_out, watch_n)
                        continue
                    pos = 1
                    b = route_buf[v_rstart[v] + 1]
                    if cap_factor[b] <= 0.0:
                        break
                if q_count[b] >= storage[b] or not ring_allows(l, b, link_ring, ring_ptr, ring_links, ring_cap,
                                                                q_count):  # no room downstream: spillback ...
                    if t - v_exit[v] < stuck_s:
                        break
                    # ... unless stuck so long that it teleports (as SUMO's time-to-teleport): along its route
                    # to the next link with room, taking the free-flow time of the links it skips.
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
                    if found < 0 and p2 < v_rlen[v]:
                        break  # everything ahead is full: keep waiting
                    _leave(l, v, te, q_head, q_count, qcap, acc, cnt_exit, sum_tt, v_enter, v_dist, v_fft, length, fft)
                    v_dist[v] += skip_len
                    v_fft[v] += skip_fft
                    teleports[0] += 1
                    if found < 0:  # teleported to the end of its route
                        _finish(v, te + skip_fft, ARRIVED, v_status, v_arrive, v_link, v_watch, watch_out, watch_n)
                        continue
                    v_rpos[v] = found
                    _enter(v, route_buf[v_rstart[v] + found], te + skip_fft, tlo, q_buf, q_off, q_head, q_count, qcap,
                           v_link, v_enter, v_exit, fft, v_sf)
                    continue
                _leave(l, v, te, q_head, q_count, qcap, acc, cnt_exit, sum_tt, v_enter, v_dist, v_fft, length, fft)
                v_rpos[v] = pos
                _enter(v, b, te, tlo, q_buf, q_off, q_head, q_count, qcap, v_link, v_enter, v_exit, fft, v_sf)
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
                    r = _reroute(v, l, link_to[l], v_dest, dest_slot, nh, link_to, route_buf, route_used,
                                 v_rstart, v_rlen, v_rpos, n_nodes)
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
                _finish(v, te, STRANDED if v_status[v] == STRANDED else ARRIVED, v_status, v_arrive, v_link,
                        v_watch, watch_out, watch_n)
                prio_n[0] -= 1
                prio_ids[i] = prio_ids[prio_n[0]]
                continue
            v_rpos[v] = pos
            v_link[v] = b
            v_enter[v] = te
            rate = cap_rate[b] * cap_factor[b]
            wq = waiting_count(b, te, q_buf, q_off, q_head, q_count, qcap, v_exit)
            v_exit[v] = te + fft[b] / v_sf[v] + prio_queue_factor * wq / rate
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
            if route_used[0] + n_nodes > route_buf.shape[0]:
                flags |= NEED_ROUTE_SPACE
                break
            dep_ptr[0] += 1
            row = dest_slot[d]
            n = -1
            if row >= 0:
                n = follow_path(row, o, d, nh, link_to, route_buf, route_used[0], n_nodes)
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
                v_exit[v] = te + fft[b] / v_sf[v] + prio_queue_factor * wq / rate
                prio_ids[prio_n[0]] = v
                prio_n[0] += 1
                continue
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
                _enter(v, b, te, tlo, q_buf, q_off, q_head, q_count, qcap, v_link, v_enter, v_exit, fft, v_sf)
            if wait_head[b] < 0:
                in_wl[b] = False
                wl_n[0] -= 1
                wl_links[i] = wl_links[wl_n[0]]
                continue
            i += 1
        # --- 5. occupancy integral (vehicle-seconds per link) ------------------------------------
        for l in range(L):
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
                  v_rstart, v_rlen, v_rpos, n_nodes):
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
