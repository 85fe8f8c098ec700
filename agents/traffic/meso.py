"""The built-in mesoscopic traffic back-end: a domain that steps the numba link-queue kernel on the engine clock.

The kernel state lags the simpy clock and catches up lazily: whenever anyone drives, queries link
times, changes a capacity or records, the network is first advanced to ``env.now``. A simpy process
also advances it at least every ``sync_interval_s``, at every routing refresh and at the earliest
moment a watched vehicle (one started by ``drive``) could arrive, so arrival events fire on time.
"""
from __future__ import annotations

from typing import Any, Hashable

import numpy as np
import simpy
import xarray as xr
from numba import njit

from agents.traffic import meso_kernel as K
from agents.traffic.backend import VEHICLE_KINDS, TrafficBackend, TripResult
from agents.traffic.schema import traffic_dataset, traffic_kpis
from agents.traffic.config import TrafficConfig
from networks.junctions import same_green_feed
from networks.routing import (first_last_links, movement_graph, movement_successors, next_hop_tables, route_tables,
                              turn_route_rows, update_route_tables)
from twin.domain import KPI, Domain

__all__ = ["MesoTraffic"]

_F = np.float64
_KEEP_ROWS_BYTES = 256 << 20  # the largest turn-based table kept on the city for the next run (_keep_rows)


@njit(cache=True)
def _picked(ids: np.ndarray, share: float, salt: int) -> np.ndarray:
    """Which of running vehicles ``ids`` :func:`meso_kernel.reroute_share` re-routes with this ``share`` and
    ``salt`` (the same hash), so only their table rows need rebuilding."""
    out = np.empty(ids.shape[0], np.bool_)
    for i in range(ids.shape[0]):
        out[i] = K._hash01(ids[i], salt) < share
    return out


@njit(cache=True)
def _route_starts(ids, departing, v_orig, v_first, v_last, v_link, link_to, cap_factor):
    """Where the kernel's ``pinned_path`` starts for each vehicle: at departure (``departing``) or re-routing
    from its current link. Returns (u node, prev link or -1, pinned last link read or -1); u = -1: no row read."""
    n = ids.shape[0]
    u = np.full(n, -1, np.int64)
    prev = np.full(n, -1, np.int64)
    pin = np.full(n, -1, np.int64)
    for i in range(n):
        v = ids[i]
        el = v_last[v]
        if departing[i]:
            e0 = v_first[v]
            if e0 >= 0 and cap_factor[e0] > 0.0 and el >= 0 and cap_factor[el] > 0.0:
                if e0 == el:
                    continue
                u[i], prev[i] = link_to[e0], e0
            else:
                u[i] = v_orig[v]
                continue  # the kernel passes no pinned link here: the destination's row only
        else:
            l = v_link[v]
            if l == el:
                continue
            u[i], prev[i] = link_to[l], l
        if el >= 0 and cap_factor[el] > 0.0:
            pin[i] = el
    return u, prev, pin


@njit(cache=True)
def _needs_dest_row(u, prev, pin, dest_slot, nh, link_to, n_nodes):
    """True where ``pinned_path`` reads the destination's row: a start with no pinned row to read, or whose
    pinned row's path fails (the same ``follow_turns`` walk on the rows as they are now)."""
    out = np.zeros(u.shape[0], np.bool_)
    buf = np.empty(n_nodes + 1, np.int32)
    for i in range(u.shape[0]):
        if u[i] < 0:
            continue
        if pin[i] < 0:
            out[i] = True
            continue
        row = dest_slot[n_nodes + pin[i]]
        if row < 0 or K.follow_turns(row, prev[i], u[i], pin[i], -1, nh, link_to, buf, 0, n_nodes) < 0:
            out[i] = True
    return out


@njit(cache=True)
def _closed_ahead(ids, v_rstart, v_rpos, v_rlen, route_buf, cap_factor):
    """Which running vehicles ``ids`` have a closed link ahead on their route (the kernel re-routes them there)."""
    out = np.zeros(ids.shape[0], np.bool_)
    for i in range(ids.shape[0]):
        v = ids[i]
        for p in range(v_rpos[v] + 1, v_rlen[v]):
            if cap_factor[route_buf[v_rstart[v] + p]] <= 0.0:
                out[i] = True
                break
    return out


@njit(cache=True)
def _release_fixed(order, ptr, t_end, v_depart, v_rstart, route_buf, v_next, wait_head, wait_tail, in_wl, wl_links,
                   wl_n):
    """Queue the vehicles on given paths departing by ``t_end`` (``order[ptr:]``, by time) at their first link, as
    the kernel's departure step does for a routed vehicle (its route already written); returns the new ``ptr``."""
    while ptr < order.shape[0]:
        v = order[ptr]
        if v_depart[v] > t_end:
            break
        ptr += 1
        K.join_wait_line(v, route_buf[v_rstart[v]], v_next, wait_head, wait_tail, in_wl, wl_links, wl_n)
    return ptr


def _ema(old: np.ndarray | None, sample: np.ndarray, w: float) -> np.ndarray:
    """``old + w (sample - old)``; inf (closed) where the sample is inf, the sample where ``old`` was inf (or unset)."""
    if w >= 1.0 or old is None:  # no memory: exactly the sample (old + (sample - old) can differ from it in the last bit)
        return sample.copy()
    fin = np.isfinite(old) & np.isfinite(sample)
    with np.errstate(invalid="ignore"):  # inf - inf where not finite: not used
        return np.where(fin, old + w * (sample - old), sample)  # elementwise the same operations as on fin alone


def _signal_service(sig: np.ndarray, green: np.ndarray, cycle: np.ndarray, pshare: np.ndarray, lanes: np.ndarray,
                    sat_vps: float, permissive_capacity: bool, same_green: np.ndarray):
    """Per movement: (permissive green share, protected rate veh/s, permissive rate veh/s, uniform delay s).

    A signal's green splits into its protected ('G') part, at saturation flow, and its permissive ('g') part, where
    the movement filters through its foes' gaps (kernel: movement_rate); Webster's uniform delay c (1 - g/c)^2 / 2,
    none on a link between two heads of one controller (``same_green``: cleared in the green that fed it). Other
    movements: saturation flow x lanes, no delay."""
    perm = np.where(sig, np.minimum(pshare, green), 0.0) if permissive_capacity else np.zeros(len(green))
    rate = sat_vps * lanes * np.where(sig, green - perm, 1.0)
    prate = sat_vps * lanes * perm
    webster = np.where(sig & (green < 1.0), cycle * (1.0 - green) ** 2 / 2.0, 0.0)
    webster[same_green] = 0.0
    return perm, rate, prate, webster


def _link_junction(rate: np.ndarray, prate: np.ndarray, webster: np.ndarray, mv_ptr: np.ndarray,
                   cap: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per link: (junction capacity veh/s: no more than its movements pass together, and no more than its own;
    routing delay s: the least uniform delay of its movements, 0 without movements)."""
    L = len(mv_ptr) - 1
    has = np.diff(mv_ptr) > 0
    per_link = np.add.reduceat(np.append(rate + prate, 0.0), mv_ptr[:-1]) if len(rate) else np.zeros(L)
    dmin = np.minimum.reduceat(np.append(webster, 0.0), mv_ptr[:-1]) if len(rate) else np.zeros(L)
    return np.where(has, np.minimum(cap, np.where(has, per_link, cap)), cap), np.where(has, dmin, 0.0)


ACTUATED_HYSTERESIS_S = 2.0  # actuated_signals: a program's new durations are applied when a phase moved this much


class MesoTraffic(Domain, TrafficBackend):
    """Built-in queue model (``backend: meso``), or the same kernel without congestion (``freeflow``)."""

    name = "traffic"

    def __init__(self, config: TrafficConfig) -> None:
        super().__init__(config)
        self.freeflow = config.backend == "freeflow"
        self._events: dict[int, simpy.Event] = {}
        self._records: dict[str, list[np.ndarray]] = {k: [] for k in
                                                       ("flow", "speed", "veh", "queue", "capf", "jdelay")}
        self._net: dict[str, list[float]] = {"running": [], "completed": [], "waiting": []}
        self._rec_t: list[float] = []
        self.reroutes = 0
        self.table_updates = 0

    # ================================================================ setup
    def setup(self, twin) -> None:
        """Build link parameters from the city graph, load the scenario's trips, start the clock process."""
        super().setup(twin)
        c = self.config
        a = twin.city.arrays
        self.city = twin.city
        self.rr = c.routing_for(twin.city)  # routing options, automatic defaults resolved for this network
        self.dt = float(c.step_s or twin.step_s)
        self.L, self.N = a.n_links, a.n_nodes
        self.link_to, self.link_from = a.link_to, a.link_from
        self.length = a.length_m.astype(_F)
        speed = a.speed_mps * self.rr.speed_scale
        self.fft = self.length / np.maximum(speed, 0.1)
        cap = a.capacity_vph / 3600.0 * c.capacity_scale
        # storage with MATSim's floor: a link holds at least what it passes in its free-flow time, and what it
        # passes in a step twice over (MATSim's queue plus its buffer of one step's flow), so a chain of short
        # links (junction clusters) still carries its capacity when nodes are served in the "wrong" order
        storage = np.maximum.reduce([np.floor(self.length * a.lanes / c.jam_spacing_m + 1e-9),
                                     np.ceil(2.0 * cap * self.dt - 1e-9), np.floor(self.fft * cap + 1e-9)])
        # a link shorter than two vehicles is part of its junction area: it holds two (one waiting, one moving
        # in), as a SUMO junction lets a vehicle stand in its internal lane while the one ahead clears
        storage = np.maximum(np.where(self.length < 2 * c.jam_spacing_m, 2, 1), storage).astype(np.int32)
        if self.freeflow:  # no congestion: effectively unlimited outflow and room
            cap = np.full(self.L, 1e9)
            storage = np.maximum(storage, 10_000).astype(np.int32)
        self._act: dict = {}  # actuated_signals: tl id -> (program, its movements, movements green per phase)
        self.next_actuated = np.inf
        self._setup_junctions(twin, cap)
        if len(self.mv_delay) and not self.freeflow:
            # MATSim's floor counts the whole time a vehicle holds the link: its free-flow time plus the longest
            # turn time of its end junction. In SUMO a turning vehicle stands on the junction's internal lane,
            # outside the link; without this a short link ahead of an 8 s turn holds 2 vehicles and passes
            # 2 / 8 s, and chains of them lock junction clusters (Bad Hersfeld baseline: 2,177 gridlock
            # resolutions -> 0). The signal's uniform delay is not counted at the link's capacity here (that
            # gave Bologna mean -25.9% vs SUMO micro instead of -7.5%), only at its movements' below.
            has = np.diff(self.mv_ptr) > 0
            dmax = np.maximum.reduceat(np.append(self.mv_turn, 0.0), self.mv_ptr[:-1])
            dmax = np.where(has, dmax, 0.0)
            storage = np.maximum(storage, np.floor((self.fft + dmax) * cap + 1e-9)).astype(np.int32)
            # ... and, by Little's law, what its movements hold while passing their capacity: a vehicle holds its
            # in-link for the free-flow time plus its movement's whole fixed delay (turn time and a signal's
            # uniform delay), so a 7 m link into a signal (green 0.41, 2 lanes, 20 s held) needs room for
            # 1,480 veh/h x 20.9 s = 9 vehicles; with the 5 above it passed 840 veh/h where SUMO micro passes
            # 1,530 (docs/traffic_model.md, "Short links into signals")
            storage = np.maximum(storage, self._held_floor(cap)).astype(np.int32)
        self.cap_rate = cap.astype(_F)
        self.storage = storage
        self.qcap = storage  # ring-buffer size per link: never more vehicles than fit
        self.q_off = np.zeros(self.L, np.int32)
        np.cumsum(self.qcap[:-1], out=self.q_off[1:])
        self.q_buf = np.full(int(self.qcap.sum()), -1, np.int32)
        self.q_head = np.zeros(self.L, np.int32)
        self.q_count = np.zeros(self.L, np.int32)
        # roundabouts: links grouped by ring (CSR) and each ring's total storage
        self.link_ring = (a.link_ring if a.link_ring is not None else np.full(self.L, -1)).astype(np.int32)
        on_ring = np.flatnonzero(self.link_ring >= 0)
        n_rings = int(self.link_ring.max()) + 1 if len(on_ring) else 0
        self.ring_links = on_ring[np.argsort(self.link_ring[on_ring], kind="stable")].astype(np.int32)
        self.ring_ptr = np.zeros(max(n_rings, 1) + 1, np.int64)
        np.cumsum(np.bincount(self.link_ring[on_ring], minlength=max(n_rings, 1)), out=self.ring_ptr[1:])
        self.ring_cap = np.bincount(self.link_ring[on_ring], weights=storage[on_ring],
                                    minlength=max(n_rings, 1)).astype(np.int64)
        self.cap_factor = np.ones(self.L, _F)
        self.acc = np.ones(self.L, _F)
        self.q_headt = np.zeros(self.L, _F)  # when each link's head vehicle became head (s)
        self.link_flow_ema = np.zeros(self.L, _F)
        # links shorter than two vehicles are part of their junction: enter only if the link after has room
        self.keep_clear = (self.length < 2 * c.jam_spacing_m) & bool(c.keep_clear) & ~self.freeflow
        self.link_flow_t = np.zeros(self.L, _F)
        self.sum_jd = np.zeros(self.L, _F)
        self.wait_head = np.full(self.L, -1, np.int32)
        self.wait_tail = np.full(self.L, -1, np.int32)
        self.wl_links = np.zeros(self.L, np.int32)
        self.wl_n = np.zeros(1, np.int32)
        self.in_wl = np.zeros(self.L, np.bool_)
        self.cnt_exit = np.zeros(self.L, np.int64)
        self.sum_tt = np.zeros(self.L, _F)
        self.occ = np.zeros(self.L, _F)
        # vehicles
        self.n_veh = 0
        self._alloc_vehicles(1024)
        self.route_buf = np.zeros(max(1 << 16, 4 * self.N), np.int32)
        self.route_used = np.zeros(1, np.int64)
        self.dep_order = np.zeros(0, np.int32)
        self.dep_ptr = np.zeros(1, np.int64)
        self.fixed_order = np.zeros(0, np.int32)  # vehicles on given paths, by (departure, id); not yet queued from
        self.fixed_ptr = 0
        self.fixed_paths = {}  # traffic.routes_file: how the demand's trips matched the file (filled below)
        self.prio_ids = np.zeros(64, np.int32)
        self.prio_n = np.zeros(1, np.int32)
        self.watch_out = np.zeros(64, np.int32)
        self.watch_n = np.zeros(1, np.int64)
        self.gridlocks = np.zeros(1, np.int64)
        self.watched_active = np.zeros(0, np.int32)
        # routing tables: one row per destination node (turn-based: per destination node or pinned last link)
        self.turn = self.rr.turn_costs and not self.freeflow and len(self.mv_out) > 0
        W = self.L + self.N if self.turn else self.N
        self.dest_slot = np.full(self.N + self.L + 1 if self.turn else self.N, -1, np.int32)
        self.dests = np.zeros(0, np.int64)
        self.nh = np.full((0, W), -1, np.int32)
        self.dist = np.zeros((0, W))  # float64 distances (s) behind ``nh``, kept for incremental updates
        self._row_ver = np.zeros(0, np.int64)  # turn-based tables: the cost version each row is on (maybe deferred)
        self._row_built = np.zeros(0, np.int64)  # ... and the version its content was built on (see ``_build_rows``)
        self._ver_costs: dict[int, tuple[np.ndarray, np.ndarray]] = {}  # costs of versions rows still wait for
        self._cost_ver = 0
        if self.turn:
            self._mv_graph = movement_graph(a, self.mv_ptr, self.mv_out)
            self._mv_succ = movement_successors(self._mv_graph, self.L)
            kept = self.city.__dict__.get("_turn_rows_kept")
            if kept is not None and len(kept[1]) == len(self.dest_slot) and kept[2].shape[1] == W and all(
                    np.array_equal(x, y) for x, y in zip(kept[0], self._mv_graph)):
                self._kept_rows = kept[1:]
            # a movement costs its own turn time and signal uniform delay (SUMO's router sees internal lanes)
            self._route_mv_cost = self.mv_delay.copy()
            self._route_jdelay = np.zeros(self.L, _F)
        else:
            self._route_jdelay = self.link_jdelay
        # clock
        self.t = 0.0  # kernel time (s): steps up to here are done
        self.step_counter = 0
        self.duration = float(twin.duration_s)
        self.next_reroute = float(c.reroute_interval_s)
        self.next_table = self.rr.route_refresh_s
        self.next_sample = float(c.route_sample_s) if self.rr.route_cost_tau_s > 0 else np.inf
        self._waiting = False
        self._rec_last = 0.0
        self._link_costs = self.fft + self._route_jdelay
        self._ema_link = self._link_costs.copy()  # smoothed routing costs (s), SUMO's rerouting device's memory
        self._ema_mv = self._route_mv_cost.copy() if self.turn else None
        self._ema_t = 0.0
        demand = twin.shared.get("background_trips", twin.shared.get("demand_trips"))
        if demand is not None and len(demand["origin"]):
            paths = None
            if c.routes_file:
                from agents.traffic.file_routes import match_file_paths

                paths, self.fixed_paths = match_file_paths(twin.resolve_path(c.routes_file), twin.city, demand,
                                                           3600.0 * float(twin.start_hour))
            self.add_trips(demand["origin"], demand["destination"], demand["depart_s"], kind="car", paths=paths)
        for cl in c.closures:
            twin.env.process(self._closure(cl))
        self._proc = twin.env.process(self._loop())

    def _held_floor(self, cap: np.ndarray) -> np.ndarray:
        """Per link, the most vehicles its movements hold at once while passing their capacities (Little's law).

        A vehicle of movement m holds its in-link for ``fft + mv_delay[m]`` (plus up to a step: it enters and
        leaves at step ends); movement m passes at most its
        capacity C_m (saturation flow x lanes x green, its permissive part unopposed) and the link at most its own
        capacity, so the count held is at most max sum_m x_m (fft + d_m) over 0 <= x_m <= C_m, sum x_m <= cap:
        the longest-held movements filled first. Rounded up: a link one vehicle short cannot pass its capacity.
        """
        owner = np.repeat(np.arange(self.L), np.diff(self.mv_ptr))
        hold = self.fft[owner] + self.mv_delay + self.dt
        order = np.lexsort((-hold, owner))  # by link, longest held first (movements stay inside their link's span)
        rate, hold, owner = (self.mv_rate + self.mv_prate)[order], hold[order], owner[order]
        before = np.cumsum(rate) - rate  # capacity of the longer-held movements before each, within its link
        before -= before[self.mv_ptr[:-1][owner]]
        x = np.clip(cap[owner] - before, 0.0, rate)
        out = np.bincount(owner, weights=x * hold, minlength=self.L)
        return np.ceil(out - 1e-9)

    def _setup_junctions(self, twin, cap: np.ndarray) -> None:
        """Movement arrays of the junction model (``networks.junctions``): capacities, delays, conflicts.

        Saturation flow x lanes x effective green per movement; turn time plus Webster's uniform signal delay
        c (1 - g/c)^2 / 2 as its fixed delay; HBS follow-up time and critical gap for streams that give way.
        With ``junctions: false`` (or the free-flow back-end) every movement is unrestricted.
        """
        c = self.config
        L = self.L
        if c.junctions and not self.freeflow:
            j = twin.city.junctions()
            green, cycle, permissive = j.mv_green.copy(), j.mv_cycle.copy(), j.mv_permissive.copy()
            pshare, cf_w = j.mv_permissive_share.copy(), j.cf_w.copy()  # apply_tls_programs writes these
            if c.sumo.additional_files and twin.city.sumo_net:
                from dataclasses import replace

                from networks.junctions import apply_tls_programs, read_tls_programs

                j = replace(j, mv_green=green, mv_cycle=cycle, mv_permissive=permissive, mv_permissive_share=pshare,
                            cf_w=cf_w)
                apply_tls_programs(j, read_tls_programs([twin.resolve_path(p) for p in c.sumo.additional_files]))
            sig = j.mv_class == 5
            sat = c.saturation_flow_vph / 3600.0 * c.capacity_scale
            # a link between two heads of one signal controller (a junction cluster), optionally also through its
            # short unsignalised pieces, is cleared in the same green that fed it: no second uniform delay
            same_green = same_green_feed(j, self.length, float(c.signal_cluster_link_m))
            perm, rate, prate, webster = _signal_service(sig, green, cycle, pshare, j.mv_lanes, sat,
                                                         c.permissive_capacity, same_green)
            self.mv_delay = (j.mv_turn_s + webster).astype(_F)
            self.mv_turn = j.mv_turn_s.astype(_F)  # the part spent on the junction's internal lane (storage floor)
            # who gives way: unsignalised yield/stop/all-way streams, and signal movements while green as 'g'
            signal_yields = (perm > 0) if c.permissive_capacity else permissive
            gives_way = np.isin(j.mv_class, (1, 2, 3)) | (sig & signal_yields)
            keep = np.repeat(gives_way, np.diff(j.cf_ptr))
            self._actuated_setup(twin, j, same_green, keep)
            self.cf_mv = j.cf_mv[keep].astype(np.int32)
            self.cf_w = (j.cf_w[keep] if c.permissive_capacity else np.ones(int(keep.sum()))).astype(_F)
            self.cf_ptr = np.zeros(len(rate) + 1, np.int64)
            np.cumsum(np.where(gives_way, np.diff(j.cf_ptr), 0), out=self.cf_ptr[1:])
            right = j.mv_dir == -1
            tf = np.where(right, c.follow_up_right_s, c.follow_up_s)
            if c.permissive_capacity:
                # permissive greens: HBS's formula with t_f = 1 / saturation flow (unopposed it passes like 'G') and
                # HCM's critical headway of a permitted left turn
                self.mv_tf = np.where(perm > 0, 1.0 / sat, tf).astype(_F)
                self.mv_tg = np.where(perm > 0, c.permissive_gap_s, c.critical_gap_s).astype(_F)
            else:  # the earlier rule: a never-protected green accepts gaps only while green
                self.mv_tf = np.where(sig & permissive, tf / np.maximum(green, 0.05), tf).astype(_F)
                self.mv_tg = np.full(len(rate), c.critical_gap_s, _F)
            self.mv_ptr, self.mv_out, self.mv_cls = j.mv_ptr.astype(np.int64), j.mv_out.astype(np.int32), j.mv_class
            self.mv_lanemask, self.link_lanemask = j.mv_lanemask.astype(np.int64), j.link_lanemask.astype(np.int64)
            self.mv_rate = rate.astype(_F)
            self.mv_prate = prate.astype(_F)
            # credit a turner finds on arriving at the line: its protected share of the green (kernel: _movement_ready)
            self.mv_gap_wait = np.where(gives_way & (prate > 0) & c.permissive_gap_wait,
                                        (green - perm) / np.maximum(green, 1e-9), 2.0).astype(_F)
            # unsignalised streams that give way: -1 = a vehicle arriving alone waits Adams' delay for its gap
            self.mv_gap_wait[gives_way & ~sig & bool(c.minor_gap_delay)] = -1.0
            self.mv_len = j.mv_len_m.astype(_F)
            # lanes chosen ahead: into a link shorter than lane_lookahead_m, each onward movement is served by the
            # in-link's lanes that reach it (kernel: a capacity account per pair); only where that restricts
            nx_ptr, nx_mask = j.nx_ptr, j.nx_mask
            cnt = np.diff(nx_ptr)
            owner = np.repeat(np.arange(len(rate)), cnt)
            restricts = (nx_mask != j.mv_lanemask[owner]) & (nx_mask != 0)
            use = (cnt > 0) & (self.length[j.mv_out] < c.lane_lookahead_m)
            use &= np.add.reduceat(np.append(restricts, False).astype(np.int64), nx_ptr[:-1]) > 0 if len(cnt) else use
            keep = np.repeat(use, cnt)
            self.nx_ptr = np.zeros(len(rate) + 1, np.int64)
            np.cumsum(np.where(use, cnt, 0), out=self.nx_ptr[1:])
            self.nx_mask = nx_mask[keep].astype(np.int64)
            bits = np.array([bin(int(x)).count("1") for x in self.nx_mask], _F)
            self.nx_frac = (bits / np.maximum(j.mv_lanes[owner[keep]], 1.0)).astype(_F)
            # a link passes no more than its movements together (routing cost uses this); routing sees the cheapest
            # way through the end junction and no turn time, as SUMO routes on edge times (its internal lanes are not
            # in them): only a signal's uniform delay, the least of its movements. (A lane-weighted mean of turn
            # times biased routes off links that mostly turn: on a light 5x5 grid the link-flow r against SUMO fell
            # from 0.87 to 0.40.)
            self.link_jcap, jdelay = _link_junction(rate, prate, webster, self.mv_ptr, cap)
            self.link_jdelay = jdelay.astype(_F)
        else:
            self.mv_ptr = np.zeros(L + 1, np.int64)
            self.mv_out = np.zeros(0, np.int32)
            self.mv_cls = np.zeros(0, np.int8)
            self.mv_lanemask = np.zeros(0, np.int64)
            self.link_lanemask = np.full(L, 1, np.int64)
            self.mv_rate = self.mv_delay = self.mv_tf = self.mv_tg = self.mv_len = self.mv_turn = np.zeros(0, _F)
            self.mv_prate = np.zeros(0, _F)
            self.mv_gap_wait = np.zeros(0, _F)
            self.nx_ptr, self.nx_mask, self.nx_frac = np.zeros(1, np.int64), np.zeros(0, np.int64), np.zeros(0, _F)
            self.cf_ptr, self.cf_mv, self.cf_w = np.zeros(1, np.int64), np.zeros(0, np.int32), np.zeros(0, _F)
            self.link_jcap = cap
            self.link_jdelay = np.zeros(L, _F)
        M = len(self.mv_out)
        self.mv_acc = np.ones(M, _F)
        self.mv_tacc = np.zeros(M, _F)
        self.mv_flow = np.zeros(M, _F)
        self.mv_tflow = np.zeros(M, _F)
        self.nx_acc = np.ones(len(self.nx_mask), _F)
        self.nx_tacc = np.zeros(len(self.nx_mask), _F)

    def _actuated_setup(self, twin, j, same_green: np.ndarray, cf_keep: np.ndarray) -> None:
        """Option ``actuated_signals``: read the actuated programs (net and additional files) and keep what
        ``_set_durations`` needs to recompute signal capacities and delays in place."""
        from dataclasses import replace

        from networks.actuated import read_actuated

        c = self.config
        if not c.actuated_signals or not twin.city.sumo_net:
            return
        progs = read_actuated([twin.city.sumo_net] + [twin.resolve_path(p) for p in c.sumo.additional_files])
        if not progs:
            return
        j = replace(j, mv_green=j.mv_green.copy(), mv_cycle=j.mv_cycle.copy(), mv_permissive=j.mv_permissive.copy(),
                    mv_permissive_share=j.mv_permissive_share.copy(), cf_w=j.cf_w.copy())
        for tl, prog in progs.items():
            mvs = [m for m in range(len(j.mv_tl)) if j.mv_tl[m] == tl]
            green_of = [[i for i, m in enumerate(mvs) if any(k < len(st) and st[k] in "Gg" for k in j.mv_tl_index[m])]
                        for _, st in prog.phases]
            self._act[tl] = (prog, np.array(mvs, np.int64), green_of)
        self._act_state = (j, same_green, cf_keep)
        self._act_dur: dict[str, list[float]] = {}  # last durations per program (warm start) and as applied
        self._act_applied: dict[str, list[float]] = {}
        self.next_actuated = float(c.actuated_interval_s)

    def _set_durations(self) -> None:
        """Actuated signals: phase durations from the movements' recent arrivals (``networks.actuated``), then each
        signal movement's capacity, uniform delay and permissive weights recomputed in place."""
        from networks.actuated import phase_durations
        from networks.junctions import apply_tls_programs

        c = self.config
        j, same_green, cf_keep = self._act_state
        t = self.t
        tau = float(c.flow_window_s)
        served = self.mv_flow * np.exp(-np.maximum(t - self.mv_tflow, 0.0) / tau)
        on = np.flatnonzero((self.v_status[:self.n_veh] == K.RUNNING) & (self.v_mv[:self.n_veh] >= 0)
                            & (self.v_exit[:self.n_veh] <= t))
        waiting = np.bincount(self.v_mv[on], minlength=len(self.mv_out)).astype(float)
        lam = served + waiting / float(c.actuated_interval_s)  # arrivals: served flow + the queue to clear
        sat = c.saturation_flow_vph / 3600.0 * c.capacity_scale * j.mv_lanes
        progs, mvs_changed = {}, []
        for tl, (prog, mvs, green_of) in self._act.items():
            d = phase_durations(prog, green_of, lam[mvs], sat[mvs], self._act_dur.get(tl))
            self._act_dur[tl] = d
            r = [float(round(x)) for x in d]  # applied in whole seconds (as SUMO switches), only when a phase moved
            last = self._act_applied.get(tl)
            if last is None or max(abs(a - b) for a, b in zip(r, last)) >= ACTUATED_HYSTERESIS_S:
                self._act_applied[tl] = r
                progs[tl] = (prog.offset, [(dd, st) for dd, (_, st) in zip(r, prog.phases)])
                mvs_changed.extend(mvs.tolist())
        if not progs:
            return
        apply_tls_programs(j, progs, mvs_changed)
        sig = j.mv_class == 5
        green = j.mv_green
        perm, rate, prate, webster = _signal_service(sig, green, j.mv_cycle, j.mv_permissive_share, j.mv_lanes,
                                                     c.saturation_flow_vph / 3600.0 * c.capacity_scale,
                                                     c.permissive_capacity, same_green)
        self.mv_rate[sig] = rate[sig]
        self.mv_prate[sig] = prate[sig]
        self.mv_delay[sig] = (j.mv_turn_s + webster)[sig]
        if c.permissive_capacity:
            self.cf_w[:] = j.cf_w[cf_keep]
        if c.permissive_gap_wait:
            pw = sig & (perm > 0) & (self.mv_gap_wait < 1.0) & (self.mv_gap_wait >= 0.0)
            self.mv_gap_wait[pw] = ((green - perm) / np.maximum(green, 1e-9))[pw]
        self.link_jcap[:], self.link_jdelay[:] = _link_junction(self.mv_rate, self.mv_prate, webster, self.mv_ptr,
                                                                self.cap_rate)

    def __setattr__(self, name: str, value: Any) -> None:
        # an array the kernel takes (re)assigned (vehicle arrays grown, route buffer grown, tables grown): the
        # kernel's cached named tuples would still point at the old array, so drop them. Arrays the kernel does not
        # take (smoothed costs, watched ids: reassigned every few steps) keep them (a rebuild costs ~0.1 ms).
        if isinstance(value, np.ndarray):
            k = self.__dict__.get("_kargs")
            if k is not None:
                old = self.__dict__.get(name)
                if old is None or name == "link_from" or id(old) in self.__dict__["_kids"]:
                    self.__dict__["_kargs"] = None
        object.__setattr__(self, name, value)

    def _kernel_args(self):
        """The kernel's named tuples over the current arrays, built once and again only after an array attribute
        is reassigned (see ``__setattr__``): building them costs ~0.1 ms, and the kernel runs ~10k times a run."""
        k = self.__dict__.get("_kargs")
        if k is not None:
            return k
        a = self.city.arrays
        if self.__dict__.get("_in64") is None or self._in64[0] is not a:
            self.__dict__["_in64"] = (a, a.in_indptr.astype(np.int64), a.in_links.astype(np.int64))
        Lt = K.Links(self.link_to, self.length, self.fft, self.cap_rate, self.storage, self.qcap, self.q_off,
                     self.cap_factor, self.acc, self.q_buf, self.q_head, self.q_count, self.q_headt,
                     self.link_lanemask, self.link_ring, self.ring_ptr, self.ring_links, self.ring_cap,
                     self._in64[1], self._in64[2], self.wait_head, self.wait_tail,
                     self.wl_links, self.wl_n, self.in_wl, self.cnt_exit, self.sum_tt, self.occ, self.sum_jd,
                     self.link_flow_ema, self.link_flow_t, self.keep_clear, self.link_from.astype(np.int64))
        Mt = K.Moves(self.mv_ptr, self.mv_out, self.mv_lanemask, self.mv_cls, self.mv_rate, self.mv_delay,
                     self.mv_tf, self.mv_tg, self.cf_ptr, self.cf_mv, self.mv_acc, self.mv_tacc, self.mv_flow,
                     self.mv_tflow, self.mv_len, self.mv_prate, self.cf_w, self.mv_gap_wait,
                     self.nx_ptr, self.nx_mask, self.nx_frac, self.nx_acc, self.nx_tacc)
        Vt = K.Vehicles(self.v_dest, self.v_status, self.v_link, self.v_enter, self.v_exit, self.v_depart,
                        self.v_arrive, self.v_dist, self.v_fft, self.v_rstart, self.v_rlen, self.v_rpos, self.v_next,
                        self.v_sf, self.v_prio, self.v_watch, self.v_orig, self.v_mv, self.v_first, self.v_last)
        Tt = K.Tables(self.route_buf, self.route_used, self.dest_slot, self.nh, self.dep_order, self.dep_ptr,
                      self.prio_ids, self.prio_n, self.watch_out, self.watch_n, self.gridlocks)
        k = (Lt, Mt, Vt, Tt)
        self.__dict__["_kargs"] = k
        self.__dict__["_kids"] = {id(x) for tup in k for x in tup}  # the arrays k holds (alive: ids are unique)
        return k

    def _alloc_vehicles(self, cap: int) -> None:
        """(Re)allocate the vehicle arrays with room for ``cap`` vehicles, keeping existing ones."""
        specs = {"v_orig": (np.int32, -1), "v_dest": (np.int32, -1), "v_status": (np.int8, K.PENDING),
                 "v_link": (np.int32, -1), "v_enter": (_F, np.nan), "v_exit": (_F, np.inf),
                 "v_depart": (_F, np.nan), "v_arrive": (_F, np.nan), "v_dist": (_F, 0.0), "v_fft": (_F, 0.0),
                 "v_rstart": (np.int64, 0), "v_rlen": (np.int32, 0), "v_rpos": (np.int32, 0),
                 "v_next": (np.int32, -1), "v_sf": (_F, 1.0), "v_prio": (np.bool_, False),
                 "v_watch": (np.bool_, False), "v_kind": (np.int8, 0), "v_mv": (np.int32, -1),
                 "v_first": (np.int32, -1), "v_last": (np.int32, -1)}
        n = getattr(self, "n_veh", 0)
        for name, (dt, fill) in specs.items():
            new = np.full(cap, fill, dt)
            old = getattr(self, name, None)
            if old is not None:
                new[:n] = old[:n]
            setattr(self, name, new)
        self.v_cap = cap

    # ================================================================ clock
    def _loop(self):
        env = self.twin.env
        while self.t < self.duration - 1e-9:
            nxt = min(self.t + self.config.sync_interval_s, self.next_reroute, self.next_table, self.next_sample,
                      self.duration)
            if len(self.watched_active):
                h = K.watch_horizon(self.watched_active, self.v_status, self.v_link, self.v_exit, self.v_rstart,
                                    self.v_rlen, self.v_rpos, self.route_buf, self.fft, self.v_sf, self.v_depart)
                if h < np.inf:
                    nxt = min(nxt, self.t + max(1, np.ceil((h - self.t) / self.dt - 1e-9)) * self.dt)
            if nxt <= env.now + 1e-9:
                nxt = env.now + self.dt
            self._waiting = True
            try:
                yield env.timeout(nxt - env.now)
            except simpy.Interrupt:
                pass
            self._waiting = False
            self._catch_up()
            c = self.config
            if env.now >= self.next_actuated - 1e-9:  # actuated_signals: green splits follow the arrivals
                self._set_durations()
                self.next_actuated += c.actuated_interval_s
            if env.now >= self.next_sample - 1e-9:
                self._sample_costs()
                self.next_sample += c.route_sample_s
            due_share = env.now >= self.next_reroute - 1e-9
            if due_share or env.now >= self.next_table - 1e-9:
                # tables follow link times every route_refresh_s (SUMO routes each departure on current times);
                # a share of en-route drivers takes the new route every reroute_interval_s (SUMO's period)
                self._refresh_routes(share=c.reroute_share if due_share else 0.0)
                if due_share:
                    self.next_reroute += c.reroute_interval_s
                while self.next_table <= env.now + 1e-9:
                    self.next_table += self.rr.route_refresh_s

    def _poke(self) -> None:
        """Wake the clock process so it re-plans its next sync (e.g. a new watched vehicle)."""
        if self._waiting and self._proc.is_alive and self.twin.env.active_process is not self._proc:
            self._waiting = False
            self._proc.interrupt()

    def _catch_up(self) -> None:
        """Advance the kernel through every whole step that ends at or before ``env.now``."""
        now = min(self.twin.env.now, self.duration)
        n = int(np.floor((now - self.t) / self.dt + 1e-9))
        while n > 0:
            self._ensure_route_space()
            m = n
            if self.fixed_ptr < len(self.fixed_order):
                # vehicles on given paths join their first link's waiting line before the step in which they
                # depart (the kernel's own departure rule: due when departure <= the step's end), so the kernel
                # runs only up to the next such step
                self.fixed_ptr = _release_fixed(self.fixed_order, self.fixed_ptr, self.t + self.dt, self.v_depart,
                                                self.v_rstart, self.route_buf, self.v_next, self.wait_head,
                                                self.wait_tail, self.in_wl, self.wl_links, self.wl_n)
                if self.fixed_ptr < len(self.fixed_order):
                    nxt = float(self.v_depart[self.fixed_order[self.fixed_ptr]])
                    m = min(n, max(1, int(np.ceil((nxt - self.t) / self.dt - 1e-9)) - 1))
            Lt, Mt, Vt, Tt = self._kernel_args()
            done, flags = K.advance(self.t, m, self.dt, self.step_counter, Lt, Mt, Vt, Tt,
                                    float(self.config.gridlock_time_s), float(self.config.flow_window_s),
                                    float(self.config.priority_queue_factor), bool(self.config.stand_unroutable),
                                    bool(self.config.lane_queues))
            self.t += done * self.dt
            self.step_counter += done
            n -= done
            if flags & K.NEED_ROUTE_SPACE:
                self._grow_routes()
            self._fire_arrivals()

    def _ensure_route_space(self) -> None:
        if self.route_buf.shape[0] - self.route_used[0] < 64 * self.N:
            self._grow_routes()

    def _grow_routes(self) -> None:
        new = np.zeros(max(2 * self.route_buf.shape[0], int(self.route_used[0]) + 128 * self.N), np.int32)
        new[: self.route_buf.shape[0]] = self.route_buf
        self.route_buf = new

    def _fire_arrivals(self) -> None:
        n = int(self.watch_n[0])
        if n == 0:
            return
        ids = self.watch_out[:n].copy()
        self.watch_n[0] = 0
        for v in ids:
            ev = self._events.pop(int(v), None)
            if ev is not None:
                ev.succeed(self._trip_result(int(v)))
        self.watched_active = self.watched_active[np.isin(self.v_status[self.watched_active],
                                                          (K.RUNNING, K.PENDING))]

    def _trip_result(self, v: int) -> TripResult:
        st = {K.ARRIVED: "arrived", K.UNROUTABLE: "unroutable", K.STRANDED: "stranded"}.get(int(self.v_status[v]),
                                                                                              "running")
        arr = float(self.v_arrive[v]) if st != "unroutable" else float("nan")
        return TripResult(v, int(self.v_orig[v]), int(self.v_dest[v]), float(self.v_depart[v]), arr,
                          float(self.v_dist[v]), st)

    # ================================================================ routing
    def _current_costs(self, junction_delay: np.ndarray | None = None) -> np.ndarray:
        jd = self.link_jdelay if junction_delay is None else junction_delay
        return K.link_costs(self.t, self.fft, self.link_jcap, self.cap_factor, self.q_buf, self.q_off, self.q_head,
                            self.q_count, self.qcap, self.v_exit, jd)

    def _route_costs(self) -> np.ndarray:
        """Link costs the routing tables use (s): with turn-based tables the signal delay is in the movement's
        cost, not the link's."""
        return self._current_costs(self._route_jdelay)

    def _raw_costs(self) -> tuple[np.ndarray, np.ndarray | None]:
        """This moment's routing costs: per link (s, inf closed) and, with turn-based tables, per movement (s)."""
        link = self._route_costs()
        if not self.turn:
            return link, None
        if not self.config.turn_queue_costs:
            return link, self.mv_delay
        mv = K.movement_costs(self.t, self.mv_delay, self.mv_ptr, self.link_jcap, self.cap_factor, self.q_buf,
                              self.q_off, self.q_head, self.q_count, self.qcap, self.v_exit, self.v_mv,
                              float(self.config.flow_window_s), self.mv_rate, self.cf_ptr, self.cf_mv, self.mv_flow,
                              self.mv_tflow, self.mv_tf, self.mv_tg, self.mv_prate, self.cf_w)
        return link, mv

    def _sample_costs(self) -> None:
        """Fold this moment's costs into the smoothed routing costs: an exponential moving average with time
        constant ``route_cost_tau_s`` (SUMO's rerouting device averages each edge's speed over the last
        ``adaptation-steps`` 180 x 1 s: mean age 90 s). A link that closes is inf at once; one that opens starts
        from its current cost."""
        link, mv = self._raw_costs()
        tau = self.rr.route_cost_tau_s
        w = 1.0 - np.exp(-max(self.t - self._ema_t, 0.0) / tau) if tau > 0 else 1.0
        self._ema_t = self.t
        self._ema_link = _ema(self._ema_link, link, w)
        if mv is not None:
            self._ema_mv = _ema(self._ema_mv, mv, w)

    def _tables(self, targets: np.ndarray, costs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Node tables (turn-based rows are built in place by ``_build_rows``)."""
        return route_tables(targets.astype(np.int32), costs, self.city.arrays)

    def _ensure_dests(self, dests: np.ndarray) -> None:
        """Give every target in ``dests`` a row in the next-hop table: a node, or with turn-based tables also
        ``n_nodes + e`` for a pinned last link e. Turn-based rows built on older costs are rebuilt."""
        dests = np.asarray(dests, np.int64)
        if self.turn:
            self._fresh_rows(dests)
            return
        new = np.unique(dests[self.dest_slot[dests] < 0]).astype(np.int64)
        if len(new) == 0:
            return
        d0 = len(self.dests)
        self.dests = np.concatenate([self.dests, new])
        self.dest_slot[new] = np.arange(d0, d0 + len(new), dtype=np.int32)
        dist, nxt = self._tables(new, self._link_costs)
        self.dist = np.concatenate([self.dist, dist], axis=0) if d0 else dist
        self.nh = np.concatenate([self.nh, nxt], axis=0) if d0 else nxt

    def _fresh_rows(self, targets: np.ndarray, build: bool = True, defer: bool = False) -> None:
        """Turn-based tables: build the rows of ``targets`` on the current costs where missing or older.

        A full rebuild of every row at each refresh cost Bad Hersfeld 326 s CPU instead of 37 s; only rows some
        vehicle will read before the next refresh are rebuilt (departures, re-routing drivers, new trips).
        ``defer``: put the rows on the current cost version but build them only when about to be read
        (``_build_rows``): the same content, built later from the stored costs of that version, or never."""
        targets = np.unique(np.asarray(targets, np.int64))
        slot = self.dest_slot[targets]
        new = targets[slot < 0]
        if len(new):
            d0 = len(self.dests)
            self.dests = np.concatenate([self.dests, new])
            self.dest_slot[new] = np.arange(d0, d0 + len(new), dtype=np.int32)
            self._row_ver = np.concatenate([self._row_ver, np.full(len(new), -1, np.int64)])
            self._row_built = np.concatenate([self._row_built, np.full(len(new), -1, np.int64)])
            self._grow_table(d0 + len(new))
        if not build:  # slots only: the rows are built when a vehicle is about to read them
            return
        rows = self.dest_slot[targets]
        stale = rows[self._row_ver[rows] < self._cost_ver]
        self._row_ver[stale] = self._cost_ver
        if defer:
            if len(stale):
                self._ver_costs[self._cost_ver] = (self._link_costs, self._route_mv_cost)
            return
        self._build_rows(rows)

    def _grow_table(self, n_rows: int) -> None:
        """Turn-based tables: make ``self.nh`` ``n_rows`` rows (new rows -1), a view of a store grown by doubling,
        so adding a few rows does not copy the whole table (4,000 rows x 6,000 columns at Bad Hersfeld)."""
        store = self.__dict__.get("_nh_store")
        d0 = self.nh.shape[0]
        if store is None or store.shape[0] < n_rows:
            # room for twice the rows (at most one per possible target), allocated but not filled: rows are set
            # to -1 when the table grows into them, and memory never written is never touched (filling and copying
            # a doubled store cost Bad Hersfeld 0.3-0.4 s per run)
            store = np.empty((min(max(2 * n_rows, 64), len(self.dest_slot)), self.nh.shape[1]), np.int32)
            store[:d0] = self.nh
            self._nh_store = store
        store[d0:n_rows] = -1
        self.nh = store[:n_rows]

    def _build_rows(self, rows: np.ndarray) -> None:
        """Build table ``rows`` whose content is not yet on their cost version, each from that version's costs
        (the rows a deferred refresh left for later); forget the costs no row waits for any more."""
        rows = np.unique(np.asarray(rows, np.int64))
        rows = rows[self._row_built[rows] != self._row_ver[rows]]
        if not len(rows):
            return
        vers = self._row_ver[rows]
        for ver in np.unique(vers):
            sel = rows[vers == ver]
            link, mv = ((self._link_costs, self._route_mv_cost) if ver == self._cost_ver
                        else self._ver_costs[int(ver)])
            # a row built before holds a shortest-path tree: repaired to the same content (networks.routing); a
            # row built for the first time starts from its target's tree of an earlier run on this city if kept
            repair = self._row_built[sel] >= 0
            if not repair.all():
                repair[~repair] = self._seed_rows(sel[~repair])
            turn_route_rows(self.dests[sel], link, mv, self._mv_graph, self.city.arrays, self.nh, sel, repair,
                            self._mv_succ)
            self._row_built[sel] = ver
        if self._ver_costs:
            waiting = set(np.unique(self._row_ver[self._row_built != self._row_ver]).tolist())
            for ver in [v for v in self._ver_costs if v not in waiting]:
                del self._ver_costs[ver]

    def _seed_rows(self, rows: np.ndarray) -> np.ndarray:
        """Turn-based tables: copy into table ``rows`` (about to be built for the first time) their targets' rows
        of the last run on this city that kept its table (``_keep_rows``); True where copied. The repair then gives
        exactly what a build gives (``networks.routing.turn_route_repair`` is exact from any content of the row:
        the old tree only decides how much it has to redo), in about half the time of a build when the costs are
        alike. Rows never built keep -1 (the kernel reads them as no route)."""
        kept = self.__dict__.get("_kept_rows")
        if kept is None or not len(rows):
            return np.zeros(len(rows), np.bool_)
        k_slot, k_nh, k_built = kept
        ks = k_slot[self.dests[rows]]
        ok = ks >= 0
        ok[ok] = k_built[ks[ok]]
        self.nh[rows[ok]] = k_nh[ks[ok]]
        return ok

    def _keep_rows(self) -> None:
        """At the end of a run: keep this run's turn-based table on the city graph (by reference; at most
        ``_KEEP_ROWS_BYTES``), for ``_seed_rows`` of the next run on the same city in this process (variants and
        seeds of a scenario share one build, ``twin.city.build_city``)."""
        store = self.__dict__.get("_nh_store")
        if not self.turn or store is None or store.nbytes > _KEEP_ROWS_BYTES:
            return
        self.city.__dict__["_turn_rows_kept"] = (self._mv_graph, self.dest_slot, self.nh, self._row_built >= 0)

    def _vehicle_targets(self, ids: np.ndarray) -> np.ndarray:
        """Table targets vehicles ``ids`` route to: their destination node and, where pinned, n_nodes + last link."""
        last = self.v_last[ids]
        return np.concatenate([self.v_dest[ids].astype(np.int64), self.N + last[last >= 0].astype(np.int64)])

    def _fresh_read_rows(self, departing: np.ndarray, rerouting: np.ndarray, keep_versions: bool = False) -> None:
        """Turn-based tables, no link closed: rebuild on the current costs exactly the rows the kernel will read
        for vehicles ``departing`` before the next refresh and running vehicles ``rerouting`` now (see
        ``meso_kernel.pinned_path``): the pinned last link's row, and the destination's row only where there is
        no usable pinned row or its path fails. Halves the rows of a refresh on SUMO networks (trips are pinned).
        ``keep_versions``: only build those rows on the cost version they are on (``_build_rows``), for a refresh
        that already put them on it (a closure's)."""
        ids = np.concatenate([departing, rerouting]).astype(np.int32)
        if not len(ids):
            return
        if keep_versions:
            def fresh(targets):
                rows = self.dest_slot[targets]
                self._build_rows(rows[rows >= 0])
        else:
            fresh = self._fresh_rows
        is_dep = np.zeros(len(ids), np.bool_)
        is_dep[: len(departing)] = True
        u, prev, pin = _route_starts(ids, is_dep, self.v_orig, self.v_first, self.v_last, self.v_link,
                                     self.link_to, self.cap_factor)
        pinned = pin >= 0
        if pinned.any():
            fresh(self.N + pin[pinned].astype(np.int64))
        need = _needs_dest_row(u, prev, pin, self.dest_slot, self.nh, self.link_to, self.N)
        if need.any():
            fresh(self.v_dest[ids[need]].astype(np.int64))

    def _build_read_rows(self, share: float) -> None:
        """With a link closed or just opened: build the deferred rows read before the next refresh, a superset of
        the readers: departures up to then, the drivers ``reroute_share`` picks now, and running drivers whose
        route ahead crosses a closed link (the kernel re-routes them there). Every other driver's route avoids
        the closed links (rows give closed links no way in) and reads no row until a refresh or a closure change,
        which both come through here. The closure run built 4x the baseline's rows, mostly never read."""
        pend = self.dep_order[int(self.dep_ptr[0]):]
        pend = pend[self.v_depart[pend] <= self.t + self.rr.route_refresh_s + self.dt]
        n = self.n_veh
        running = np.flatnonzero(self.v_status[:n] == K.RUNNING).astype(np.int32)
        picked = running[_picked(running, share, self.table_updates + 1)] if share > 0 else running[:0]
        # departures and picked drivers read now or at their departure: exactly their rows (their rows' versions
        # are this refresh's, so no row they read changes before then)
        self._fresh_read_rows(pend, picked, keep_versions=True)
        # drivers meeting a closed link: every row they route to (a row on an older version may be rebuilt
        # before they get there, which could change which of the two they read)
        ahead = running[_closed_ahead(running, self.v_rstart, self.v_rpos, self.v_rlen, self.route_buf,
                                      self.cap_factor)]
        rows = self.dest_slot[self._vehicle_targets(ahead)]
        self._build_rows(rows[rows >= 0])

    def _refresh_routes(self, share: float) -> None:
        """Recompute next-hop tables on current link times; give ``share`` of running drivers a new route."""
        self._catch_up()
        self._sample_costs()
        old, new = self._link_costs, self._ema_link.copy()
        self._link_costs = new
        if self.turn:
            opened_or_closed = not np.array_equal(np.isinf(old), np.isinf(new))
            self._route_mv_cost = self._ema_mv.copy()
            self._cost_ver += 1
            n = self.n_veh
            if opened_or_closed:  # any driver may meet the closure: every row (built when read)
                if len(self.dests):
                    self._fresh_rows(self.dests, defer=True)
                self._build_read_rows(share)
            else:
                pend = self.dep_order[int(self.dep_ptr[0]):]
                horizon = self.t + self.rr.route_refresh_s + self.dt
                pend = pend[self.v_depart[pend] <= horizon]
                running = np.flatnonzero(self.v_status[:n] == K.RUNNING) if share > 0 and n else pend[:0]
                if self.cap_factor.min() > 0.0:
                    # no link closed, so no vehicle re-routes inside the kernel before the next refresh: only
                    # the departures and the drivers reroute_share picks read rows, and only the rows they read
                    # need the new costs (the others are rebuilt when read: every reader goes through here)
                    running = running[_picked(running.astype(np.int32), share, self.table_updates + 1)]
                    self._fresh_read_rows(pend, running)
                else:
                    need = np.concatenate([self._vehicle_targets(pend), self._vehicle_targets(running)])
                    if len(need):
                        self._fresh_rows(need, defer=True)
                    self._build_read_rows(share)
        elif len(self.dests) and not np.array_equal(old, new):
            # link times change a little between refreshes: repair the trees where they changed (exact), and
            # rebuild them only when a link opens or closes
            if np.array_equal(np.isinf(old), np.isinf(new)):
                update_route_tables(self.dist, self.nh, old, new, self.city.arrays)
            else:
                self.dist, self.nh = route_tables(self.dests, new, self.city.arrays)
        self.table_updates += 1
        if share > 0 and self.n_veh:
            running = np.flatnonzero(self.v_status[: self.n_veh] == K.RUNNING).astype(np.int32)
            running = running[self.v_last[running] != K.FIXED_PATH]  # given paths are never re-routed
            while True:
                self._ensure_route_space()
                done, stopped = K.reroute_share(share, self.table_updates, self.t, running, self.v_status,
                                                self.v_link, self.v_dest, self.link_to, self.dest_slot, self.nh,
                                                self.route_buf, self.route_used, self.v_rstart, self.v_rlen,
                                                self.v_rpos, self.N, self.mv_ptr, self.mv_out, self.v_mv,
                                                self.v_last, self.link_from.astype(np.int64), self.cap_factor)
                self.reroutes += done
                if not stopped:
                    break
                self._grow_routes()

    # ================================================================ public API
    def _new_vehicles(self, o: np.ndarray, d: np.ndarray, dep: np.ndarray, kind: str,
                      speed_factor: float = 1.0, priority: bool = False, watch: bool = False,
                      paths: list | None = None) -> np.ndarray:
        if paths is not None and any(p is not None for p in paths):
            return self._new_fixed_vehicles(o, d, dep, kind, paths)
        n = len(o)
        if self.n_veh + n > self.v_cap:
            self._alloc_vehicles(max(2 * self.v_cap, self.n_veh + n))
        ids = np.arange(self.n_veh, self.n_veh + n, dtype=np.int32)
        self.n_veh += n
        self.v_orig[ids], self.v_dest[ids], self.v_depart[ids] = o, d, dep
        self.v_status[ids] = K.PENDING
        self.v_sf[ids] = speed_factor
        self.v_prio[ids] = priority
        self.v_watch[ids] = watch
        self.v_kind[ids] = VEHICLE_KINDS.index(kind) if kind in VEHICLE_KINDS else 0
        self._pin_end_links(ids, o, d)
        # merge into the pending departures, ordered by (time, id)
        rest = self.dep_order[int(self.dep_ptr[0]):]
        allv = np.concatenate([rest, ids])
        order = np.lexsort((allv, self.v_depart[allv]))
        self.dep_order = allv[order].astype(np.int32)
        self.dep_ptr[0] = 0
        if priority and self.prio_ids.shape[0] < self.prio_n[0] + n + 1:
            self.prio_ids = np.concatenate([self.prio_ids, np.zeros(max(n, self.prio_ids.shape[0]), np.int32)])
        if watch:
            self.watched_active = np.concatenate([self.watched_active, ids])
            need = len(self._events) + n + 1
            if self.watch_out.shape[0] < need:
                self.watch_out = np.zeros(2 * need, np.int32)
        return ids

    def _new_fixed_vehicles(self, o: np.ndarray, d: np.ndarray, dep: np.ndarray, kind: str, paths: list) -> np.ndarray:
        """Vehicles of which some drive given paths (checked by ``check_paths``): those are written to the route
        buffer now, marked ``v_last = FIXED_PATH`` (never re-routed) and queued at their first link when they
        depart (``_catch_up``); the others (path None) are added as routed vehicles."""
        fixed = np.array([p is not None for p in paths], bool)
        ids = np.empty(len(o), np.int32)
        if (~fixed).any():
            ids[~fixed] = self._new_vehicles(o[~fixed], d[~fixed], dep[~fixed], kind)
        sel = np.flatnonzero(fixed)
        k = len(sel)
        if self.n_veh + k > self.v_cap:
            self._alloc_vehicles(max(2 * self.v_cap, self.n_veh + k))
        fid = np.arange(self.n_veh, self.n_veh + k, dtype=np.int32)
        self.n_veh += k
        ids[sel] = fid
        self.v_orig[fid], self.v_dest[fid], self.v_depart[fid] = o[sel], d[sel], dep[sel]
        self.v_status[fid] = K.PENDING
        self.v_sf[fid] = 1.0
        self.v_kind[fid] = VEHICLE_KINDS.index(kind) if kind in VEHICLE_KINDS else 0
        flat = np.concatenate([np.asarray(paths[i], np.int32) for i in sel]) if k else np.zeros(0, np.int32)
        lens = np.array([len(paths[i]) for i in sel], np.int64)
        while self.route_buf.shape[0] - self.route_used[0] < len(flat) + 64 * self.N:
            self._grow_routes()
        start = int(self.route_used[0])
        self.route_buf[start:start + len(flat)] = flat
        self.route_used[0] = start + len(flat)
        self.v_rstart[fid] = start + np.concatenate([[0], np.cumsum(lens)[:-1]]) if k else 0
        self.v_rlen[fid] = lens
        self.v_rpos[fid] = 0
        self.v_first[fid] = flat[self.v_rstart[fid] - start] if k else 0
        self.v_last[fid] = K.FIXED_PATH
        rest = self.fixed_order[self.fixed_ptr:]
        allv = np.concatenate([rest, fid])
        self.fixed_order = allv[np.lexsort((allv, self.v_depart[allv]))].astype(np.int32)
        self.fixed_ptr = 0
        return ids

    def check_paths(self, paths, o: np.ndarray, d: np.ndarray) -> list:
        """Given paths as link-index arrays (None kept: that trip is routed); ValueError naming the trip when a path
        is empty, names an unknown link, has two consecutive links that do not meet, or does not start at the trip's
        origin node and end at its destination node."""
        if len(paths) != len(o):
            raise ValueError(f"add_trips: {len(paths)} paths for {len(o)} trips (one per trip, None to route it)")
        out: list[np.ndarray | None] = []
        for i, p in enumerate(paths):
            if p is None:
                out.append(None)
                continue
            raw = list(p)
            if not raw:
                raise ValueError(f"add_trips: trip {i}: empty path (give at least one link, or None to route it)")
            try:
                q = np.array([int(x) if isinstance(x, (int, np.integer)) else self.city.link_index(x) for x in raw],
                             np.int64)
            except (KeyError, ValueError) as exc:
                raise ValueError(f"add_trips: trip {i}: unknown link in its path ({exc})") from None
            if q.min() < 0 or q.max() >= self.L:
                raise ValueError(f"add_trips: trip {i}: link index out of range 0..{self.L - 1} in its path")
            gap = np.flatnonzero(self.link_to[q[:-1]] != self.link_from[q[1:]])
            if len(gap):
                j = int(gap[0])
                raise ValueError(f"add_trips: trip {i}: link {self.city.link_ids[q[j]]!r} does not lead to link "
                                 f"{self.city.link_ids[q[j + 1]]!r} (positions {j}, {j + 1} of its path)")
            if self.link_from[q[0]] != o[i] or self.link_to[q[-1]] != d[i]:
                raise ValueError(f"add_trips: trip {i}: its path runs from node {int(self.link_from[q[0]])} to "
                                 f"{int(self.link_to[q[-1]])}, not from its origin {int(o[i])} to its destination "
                                 f"{int(d[i])}")
            out.append(q.astype(np.int32))
        return out

    def _pin_end_links(self, ids: np.ndarray, o: np.ndarray, d: np.ndarray) -> None:
        """Pin each trip's first and last link to those of its free-flow shortest path (current closures), as
        the SUMO back-end sends a node-to-node trip to SUMO as an edge-to-edge trip (``freeflow_od_links``):
        the vehicle departs on that link and arrives over that one, and routes only in between.

        Why: routing from the origin *node* let the built-in model leave by another link than SUMO's vehicles
        (Bologna: 300 veh/h on a chain of links SUMO never uses). On by default on SUMO networks only
        (``pin_end_links`` null, ``TrafficConfig.routing_for``); the count calibration walks the same pinned routes.
        """
        dests = d.astype(np.int32)
        if self.rr.pin_end_links and not self.freeflow and len(ids):
            f, l = self._freeflow_ends(o.astype(np.int32), d.astype(np.int32))
            self.v_first[ids], self.v_last[ids] = f, l
            pinned = l >= 0
            tgt = self.N + l[pinned].astype(np.int64) if self.turn else self.link_from[l[pinned]]
            dests = np.concatenate([dests.astype(np.int64), tgt.astype(np.int64)])
        if self.turn and hasattr(self, "next_reroute") and self.cap_factor.min() > 0.0:
            # no link closed: build only the rows read before the next refresh (which builds the later ones)
            self._fresh_rows(dests, build=False)
            horizon = min(self.next_table, self.next_reroute) + 2 * self.dt
            self._fresh_read_rows(ids[self.v_depart[ids] <= horizon], ids[:0])
        elif self.turn and hasattr(self, "next_reroute"):
            # a link closed: every row on the current costs (as a closure's refresh puts them, built when read), and
            # built now exactly the rows read before the next refresh (which goes through _build_read_rows). Each
            # EV or ambulance trip added alone built both its rows; the same content, built later or never
            self._fresh_rows(dests, defer=True)
            horizon = min(self.next_table, self.next_reroute) + 2 * self.dt
            self._fresh_read_rows(ids[self.v_depart[ids] <= horizon], ids[:0], keep_versions=True)
        else:
            self._ensure_dests(dests)

    def _freeflow_ends(self, o: np.ndarray, d: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """First and last link of each trip's free-flow shortest path under the current closures: what
        ``sumo_setup.freeflow_od_links`` gives, with its next-hop rows kept per destination until a closure changes
        the costs (an EV or ambulance trip added alone cost a Dijkstra each; they go to a few destinations).
        The rows are kept on the city graph too, per cost array (at most 4), for the next run on the same city
        in this process (variants share a build, ``twin.city.build_city``), as its junction model is: a run's
        first pinning (Bad Hersfeld: 1,951 destinations) is then a look-up."""
        from agents.traffic.sumo_setup import freeflow_od_links

        cost = np.where(self.cap_factor > 0, self.fft, np.inf)
        a = self.city.arrays
        c = self.__dict__.get("_ff_rows")
        shared = self.city.__dict__.setdefault("_freeflow_rows", {})  # cost bytes -> (slot, rows)
        if c is None or not np.array_equal(c[0], cost):
            kept = shared.get(cost.tobytes())
            c = self._ff_rows = (cost, *kept, None) if kept else (cost, np.full(self.N, -1, np.int64),
                                                                  np.zeros((0, self.N), np.int32), None)
        cost, slot, nh, store = c
        new = np.unique(d[slot[d] < 0])
        n0, n1 = len(nh), len(nh) + len(new)
        if n1 * self.N > 20_000_000:  # a table too large to keep: as before
            f, l, _, _ = freeflow_od_links(self.city, cost, o, d)
            return f, l
        if len(new):  # rows are independent of the batch they are built in (next_hop_tables)
            _, rows = next_hop_tables(new, cost, a.in_indptr, a.in_links, a.link_from, a.n_nodes)
            # rows are appended in a store of this run's own, grown by doubling (not copied per destination);
            # rows a kept (slot, table) pair points at are never changed: another run may hold that pair
            if store is None or store.shape[0] < n1:
                store = np.empty((min(max(2 * n1, 64), self.N), self.N), np.int32)
                store[:n0] = nh
            store[n0:n1] = rows
            nh = store[:n1]
            slot = slot.copy()
            slot[new] = np.arange(n0, n1)
            self._ff_rows = (cost, slot, nh, store)
            key = cost.tobytes()
            shared.pop(key, None)
            while len(shared) >= 4:
                shared.pop(next(iter(shared)))
            shared[key] = (slot, nh)
        n = len(o)
        first, last = np.full(n, -1, np.int64), np.full(n, -1, np.int64)
        sel = np.flatnonzero(o != d).astype(np.int64)
        first_last_links(sel, o.astype(np.int64), d.astype(np.int64), slot, nh, a.link_to.astype(np.int64), first,
                         last, a.n_nodes)
        return first, last

    def add_trips(self, origins, destinations, depart_s, kind: str = "car", paths=None) -> np.ndarray:
        """Add background trips (node indices or ids; departure times >= now, seconds).

        ``paths`` (optional, one per trip): the links (indices or ids) the trip drives, from its origin node to its
        destination node, or None to route it as usual. A vehicle on a given path never re-routes: the periodic
        ``reroute_share`` and closure re-routing skip it, and a closed link on its path holds it at the end of the
        link before (SUMO's gridlock rule may still move it past, ``gridlock_time_s``). A bad path is a ValueError
        naming the trip (``check_paths``)."""
        if self.twin is not None and self.t < self.twin.env.now:
            self._catch_up()
        o = np.asarray([self._node(x) for x in origins] if np.asarray(origins).dtype.kind not in "iu"
                       else origins, np.int32)
        d = np.asarray([self._node(x) for x in destinations] if np.asarray(destinations).dtype.kind not in "iu"
                       else destinations, np.int32)
        dep = np.maximum(np.asarray(depart_s, _F), self.t)
        if paths is not None:
            paths = self.check_paths(paths, o, d)
        ids = self._new_vehicles(o, d, dep, kind, paths=paths)
        self._poke()
        return ids

    def drive(self, origin: Hashable, destination: Hashable, kind: str = "car", speed_factor: float = 1.0,
              priority: bool = False, tag: Any = None) -> simpy.Event:
        """Start a vehicle now; the returned event fires on arrival with a :class:`TripResult`."""
        self._catch_up()
        env = self.twin.env
        o, d = self._node(origin), self._node(destination)
        ids = self._new_vehicles(np.array([o], np.int32), np.array([d], np.int32), np.array([env.now]), kind,
                                 speed_factor, priority, watch=True)
        ev = env.event()
        self._events[int(ids[0])] = ev
        self._poke()
        return ev

    def set_capacity_factor(self, link: Hashable, factor: float) -> None:
        """Scale a link's outflow capacity from now on; 0 closes it (routing avoids it at once)."""
        self._catch_up()
        i = self.city.link_index(link)
        old = self.cap_factor[i]
        self.cap_factor[i] = max(0.0, float(factor))
        if (old <= 0.0) != (self.cap_factor[i] <= 0.0):  # opened or closed: refresh tables now
            self._refresh_routes(share=0.0)
        if self.cap_factor[i] <= 0.0 < old and self.config.reroute_on_closure:
            self._reroute_around_closures()

    def _reroute_around_closures(self) -> None:
        """Drivers whose remaining route uses a closed link take a new route from their link's end now, as SUMO's
        closing rerouter (on every edge) makes them do on their next edge. Without this all of them drove up to the
        closed link and turned away at its approach. Off by default (``reroute_on_closure``): measured, it changed the
        Bad Hersfeld closure little (14,640 -> 14,090 vehicle-hours) and cut Bologna's closure effect from +46.5% to
        +38.7% (SUMO micro +58.6%), docs/traffic_model.md."""
        running = np.flatnonzero(self.v_status[: self.n_veh] == K.RUNNING).astype(np.int32)
        running = running[self.v_last[running] != K.FIXED_PATH]  # given paths are never re-routed
        while len(running):
            self._ensure_route_space()
            done, stopped = K.reroute_closed(running, self.v_status, self.v_link, self.v_dest, self.link_to,
                                             self.dest_slot, self.nh, self.route_buf, self.route_used, self.v_rstart,
                                             self.v_rlen, self.v_rpos, self.N, self.mv_ptr, self.mv_out, self.v_mv,
                                             self.v_last, self.link_from.astype(np.int64), self.cap_factor)
            self.reroutes += done
            if not stopped:
                break
            self._grow_routes()

    def link_travel_times_s(self) -> np.ndarray:
        """Current congested travel time of each link (s): free-flow plus queue discharge; inf when closed."""
        self._catch_up()
        return self._current_costs()

    def _costs(self, congested: bool) -> np.ndarray:
        """Link costs for routing queries (s): live congested times, or free-flow times with closures."""
        return self.link_travel_times_s() if congested else np.where(self.cap_factor > 0, self.fft + self.link_jdelay,
                                                                     np.inf)

    # ================================================================ invariants (tests use these)
    def counts(self) -> dict[str, int]:
        """Vehicles by status, plus how many sit in link queues and on priority runs (conservation checks)."""
        st = self.v_status[: self.n_veh]
        due = self.v_depart[: self.n_veh] <= self.t
        return {"total": self.n_veh, "arrived": int((st == K.ARRIVED).sum()), "running": int((st == K.RUNNING).sum()),
                "pending_due": int(((st == K.PENDING) & due).sum()),
                "pending_future": int(((st == K.PENDING) & ~due).sum()),
                "unroutable": int((st == K.UNROUTABLE).sum()), "stranded": int((st == K.STRANDED).sum()),
                "in_queues": int(self.q_count.sum()), "priority_running": int(self.prio_n[0])}

    # ================================================================ recording
    def record(self, t_s: float) -> None:
        self._catch_up()
        span = max(t_s - self._rec_last, 1e-9)
        self._rec_last = t_s
        cnt = self.cnt_exit.astype(_F)
        ff_speed = self.length / np.maximum(self.fft, 1e-9)
        with np.errstate(divide="ignore", invalid="ignore"):
            speed = np.where(cnt > 0, self.length * cnt / np.maximum(self.sum_tt, 1e-9), ff_speed)
            jdelay = np.where(cnt > 0, self.sum_jd / np.maximum(cnt, 1.0), np.nan)
        speed = np.where(self.cap_factor > 0, np.minimum(speed, ff_speed), np.nan)  # closed: no speed
        self._records["flow"].append((cnt * 3600.0 / span).astype(np.float32))
        self._records["speed"].append(speed.astype(np.float32))
        self._records["jdelay"].append(jdelay.astype(np.float32))
        self._records["veh"].append((self.occ / span).astype(np.float32))
        self._records["queue"].append(K.queue_lengths(self.t, self.q_buf, self.q_off, self.q_head, self.q_count,
                                                      self.qcap, self.v_exit).astype(np.float32))
        self._records["capf"].append(self.cap_factor.astype(np.float32))
        self.cnt_exit[:] = 0
        self.sum_tt[:] = 0.0
        self.sum_jd[:] = 0.0
        self.occ[:] = 0.0
        c = self.counts()
        self._net["running"].append(c["running"])
        self._net["completed"].append(c["arrived"])
        self._net["waiting"].append(c["pending_due"])
        self._rec_t.append(t_s)

    def finalize(self, t_end_s: float) -> xr.Dataset:
        self._catch_up()
        self._keep_rows()
        n = self.n_veh
        series = {}
        if self._rec_t:
            series = {name: np.stack(self._records[key]) for name, key in
                      (("flow", "flow"), ("speed", "speed"), ("vehicles", "veh"), ("queue", "queue"), ("capf", "capf"),
                                                   ("junction_delay", "jdelay"))}
            series.update(running=self._net["running"], completed=self._net["completed"], waiting=self._net["waiting"])
        trips = {"origin": self.v_orig[:n], "destination": self.v_dest[:n], "depart": self.v_depart[:n],
                 "arrive": self.v_arrive[:n], "status": self.v_status[:n], "freeflow_time": self.v_fft[:n],
                 "distance": self.v_dist[:n], "links": self.v_rlen[:n], "kind": self.v_kind[:n]}
        ds = traffic_dataset(self.city, fft_s=self.fft, capacity_vph=self.cap_rate * 3600.0, rec_t=self._rec_t,
                             series=series, trips=trips)
        if self.fixed_paths:  # traffic.routes_file: how the trips matched the file's routes
            import json

            ds.attrs["traffic_routes_file"] = json.dumps(self.fixed_paths)
        return ds

    def kpis(self) -> dict[str, KPI]:
        n = self.n_veh
        return traffic_kpis(status=self.v_status[:n], depart=self.v_depart[:n], arrive=self.v_arrive[:n],
                            freeflow_time=self.v_fft[:n], distance_m=self.v_dist[:n], now_s=self.t,
                            pending_due=self.counts()["pending_due"], gridlock_resolutions=int(self.gridlocks[0]))
