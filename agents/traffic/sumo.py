"""Eclipse SUMO as the traffic back-end (``traffic: {backend: sumo}``): same city, demand, API and results as meso.

How it runs
- Network: the city's own ``.net.xml`` when it came from one (link id = SUMO edge id), else an export
  with netconvert (``networks.sumo_export``; link i -> ``edge_ids[i]``, one to one).
- Demand: ``twin.shared["background_trips"]`` (the demand less the trips other domains claimed, e.g.
  EVs, which drive them themselves; as meso) becomes a SUMO route file of ``<trip>`` elements, id = trip
  index, same departure times; from/to edges are the first and last link of the trip's free-flow
  shortest path on the city graph (see ``sumo_setup``). SUMO routes every trip at insertion on current
  travel times (rerouting device on all vehicles); a ``reroute_share`` of them also re-route en route
  every ``reroute_interval_s`` (vType ``car_rr``), the counterpart of meso's periodic share. Vehicles
  depart on the "best" lane (the one leading furthest along the route), as SUMO's own scenarios do.
- Clock: SUMO lags the simpy clock and catches up step by step to ``env.now`` whenever anyone drives,
  asks for link times, changes a capacity or records, and at least every ``sync_interval_s``; while a
  ``drive`` vehicle is on the road the clock process wakes every SUMO step so arrival events fire on time.
  Each step reads departed/arrived ids and teleports through one simulation subscription.
- Connection: libsumo in-process (default) or TraCI over a socket (``sumo.connection: traci``, with
  ``sumo.gui: true`` for sumo-gui where installed). SUMO's own process is started and owned here.
- Closures: a scenario's full closures (``traffic.closures`` with factor 0) are written as SUMO rerouters
  (``closingReroute``) into an additional file, so SUMO closes them itself (live lane calls crashed SUMO
  meso with junction control). ``set_capacity_factor`` (live, from other domains or partial closures): 0 forbids all vehicle classes on every lane of the edge and makes
  vehicles whose remaining route uses it re-route; 0 < f < 1 closes the rightmost lanes so that
  ``max(1, round(f * lanes))`` stay open; when that leaves every lane open (one-lane roads, f near 1)
  the edge's speed limit is multiplied by f instead (a documented stand-in: SUMO's capacity barely
  depends on speed). 1 restores the lanes' permissions and the speed.
- Results: link_flow / link_speed / link_vehicles from SUMO's edgeData (one interval per record
  interval), link_queue = halting vehicles per edge at each record time, trip table from the step
  subscription and SUMO's tripinfo output (distance). ``trip_freeflow_time`` and ``trip_links`` are
  those of the free-flow shortest path between the trip's from/to edges.
- Faults: a missing or mismatched SUMO raises :class:`SumoNotAvailable`; a SUMO crash or lost TraCI
  connection raises :class:`SumoRunError` carrying the partial results (attr ``complete`` = 0) after
  closing the connection and killing SUMO's process.
"""
from __future__ import annotations

import contextlib
import importlib
import io
import shutil
import subprocess
import weakref
from typing import Any, Hashable

import numpy as np
import simpy
import xarray as xr

from agents.traffic.backend import VEHICLE_KINDS, TrafficBackend, TripResult
from agents.traffic.config import TrafficConfig
from agents.traffic.schema import ARRIVED, PENDING, RUNNING, UNROUTABLE, traffic_dataset, traffic_kpis
from agents.traffic.sumo_io import read_edgedata, read_tripinfo
from agents.traffic.sumo_options import checked_additional
from agents.traffic.sumo_setup import (SumoNotAvailable, check_sumo, freeflow_od_links, new_work_dir,
                                       prepare_network, sumo_binary, sumo_command, write_additional,
                                       write_closures, write_vtypes_and_trips)
from twin.domain import KPI, Domain, DomainRunError

__all__ = ["SumoTraffic", "SumoRunError", "SumoNotAvailable"]

_F = np.float64


class SumoRunError(DomainRunError):
    """SUMO stopped mid-run (crash, killed process, lost TraCI connection).

    ``partial`` is the traffic Dataset up to the failure (attr ``complete`` = 0); ``t_s`` the SUMO time reached.
    """

    def __init__(self, message: str, partial: xr.Dataset | None = None, t_s: float = float("nan")) -> None:
        super().__init__(message, partial, t_s)  # all in args: simpy re-raises a copy built from args
        self.partial = partial
        self.t_s = t_s

    def __str__(self) -> str:
        return str(self.args[0])


def _fatal_errors() -> tuple[type[BaseException], ...]:
    errs: list[type[BaseException]] = [ConnectionError, OSError, EOFError]
    try:
        from traci.exceptions import FatalTraCIError

        errs.append(FatalTraCIError)
    except ImportError:  # pragma: no cover
        pass
    return tuple(errs)


def _command_errors() -> tuple[type[BaseException], ...]:
    """What SUMO raises when it refuses one command (e.g. no route): the run goes on."""
    errs: list[type[BaseException]] = []
    for mod in ("traci.exceptions", "libsumo"):
        try:
            errs.append(importlib.import_module(mod).TraCIException)
        except (ImportError, AttributeError):  # pragma: no cover
            pass
    return tuple(dict.fromkeys(errs))


def _kill(proc: subprocess.Popen | None) -> None:
    """Make sure SUMO's process is gone (terminate, then kill)."""
    if proc is None or proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(timeout=5)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=5)


class SumoTraffic(Domain, TrafficBackend):
    """Eclipse SUMO behind the traffic API (``backend: sumo``); see the module docstring."""

    name = "traffic"

    def __init__(self, config: TrafficConfig) -> None:
        super().__init__(config)
        self.version = check_sumo(config.sumo.connection)
        self.k: Any = None  # libsumo module or a traci Connection: same domain API
        self.proc: subprocess.Popen | None = None
        self._dead = False
        self._closed = False
        self._events: dict[int, simpy.Event] = {}
        self._route_len: dict[int, float] = {}
        self._rec: dict[str, list] = {"queue": [], "capf": [], "running": [], "completed": [], "waiting": []}
        self._rec_t: list[float] = []
        self._ds: xr.Dataset | None = None
        self.teleports = 0
        self.n = 0

    # ================================================================ setup
    def setup(self, twin) -> None:
        """Prepare the network and trips, start SUMO, register the clock process and closures."""
        super().setup(twin)
        c = self.config
        self.city = twin.city
        a = self.city.arrays
        self.L, self.N = a.n_links, a.n_nodes
        self.dt = float(c.sumo.step_length_s)
        self.duration = float(twin.duration_s)
        self.t = 0.0
        self.fft = a.length_m / np.maximum(a.speed_mps, 0.1)
        self.cap_factor = np.ones(self.L, _F)
        self.work = new_work_dir()
        self._cleanup = weakref.finalize(self, shutil.rmtree, str(self.work), True)
        net = prepare_network(self.city, self.work)
        self.net_file, self.edge_ids = net.net_file, net.edge_ids
        self.edge_index = {e: i for i, e in enumerate(self.edge_ids)}
        self._alloc(1024)
        # the trips no other domain claimed (EVs drive theirs themselves): the same demand as meso
        demand = twin.shared.get("background_trips", twin.shared.get("demand_trips"))
        o = np.asarray(demand["origin"], np.int32) if demand is not None else np.zeros(0, np.int32)
        d = np.asarray(demand["destination"], np.int32) if demand is not None else np.zeros(0, np.int32)
        dep = np.asarray(demand["depart_s"], _F) if demand is not None else np.zeros(0)
        ids = self._new_trips(o, d, dep, "car")
        self.rr[ids] = twin.spawn_rng("sumo_reroute").random(len(ids)) < c.reroute_share
        self._feed_order = ids[np.argsort(dep, kind="stable")]
        self._feed_ptr = 0
        self._feed_until = -1.0
        none = np.zeros(0)  # the trips are fed through the API as they depart: only the vTypes go in the file
        self.routes_file = write_vtypes_and_trips(self.work / "vtypes.rou.xml", self.edge_ids, none, none, none, none,
                                                  none, reroute_period_s=c.reroute_interval_s)
        self.edgedata_file = self.work / "edgedata.xml"
        self.tripinfo_file = self.work / "tripinfo.xml"
        add = write_additional(self.work / "citytwin.add.xml", self.edgedata_file, twin.record_interval_s)
        extra_add = list(checked_additional([twin.resolve_path(p) for p in c.sumo.additional_files]))  # no outputs
        # full closures known up front: SUMO's own rerouter closes them (no live lane calls, see _closure)
        full = [cl for cl in c.closures if cl.capacity_factor <= 0.0]
        if full:
            end = self.duration + 10 * self.dt
            clos = write_closures(self.work / "closures.add.xml",
                                  [(self.edge_ids[self.city.link_index(cl.link)], cl.start_s,
                                    cl.end_s if cl.end_s is not None else end) for cl in full], self.edge_ids)
            extra_add.append(str(clos))
        add_files = ",".join([str(add), *extra_add])  # the scenario's own signal programs, detectors...
        cmd = sumo_command(sumo_binary(c.sumo.gui and c.sumo.connection == "traci"), self.net_file,
                           self.routes_file, add_files, self.tripinfo_file, step_length_s=self.dt,
                           end_s=self.duration + 10 * self.dt, seed=twin.seed, mesosim=c.sumo.mesosim,
                           extra_args=c.sumo.extra_args)
        self._start(cmd)
        for cl in c.closures:
            twin.env.process(self._closure(cl))
        self._waiting = False
        self._proc = twin.env.process(self._loop())

    def _start(self, cmd: list[str]) -> None:
        import traci.constants as tc

        if self.config.sumo.connection == "libsumo":
            import libsumo

            if libsumo.simulation.isLoaded():  # a previous run in this process did not close: free the slot
                libsumo.close()
            try:
                libsumo.start(cmd)
            except Exception as exc:
                raise SumoNotAvailable(f"SUMO (libsumo {self.version}) failed to start: {exc}") from exc
            self.k = libsumo
        else:
            import sumolib
            import traci

            port = sumolib.miscutils.getFreeSocketPort()
            self.proc = subprocess.Popen(cmd + ["--remote-port", str(port)], stdout=subprocess.DEVNULL,
                                         stderr=subprocess.PIPE)
            self._killer = weakref.finalize(self, _kill, self.proc)
            try:
                with contextlib.redirect_stdout(io.StringIO()):  # traci prints every connection retry
                    self.k = traci.connect(port, numRetries=200, proc=self.proc, waitBetweenRetries=0.05)
            except Exception as exc:
                err = self.proc.stderr.read().decode(errors="replace")[-1500:] if self.proc.poll() is not None else ""
                _kill(self.proc)
                raise SumoNotAvailable(f"SUMO (TraCI {self.version}) failed to start: {exc} {err}") from exc
        self.k.simulation.subscribe([tc.VAR_DEPARTED_VEHICLES_IDS, tc.VAR_ARRIVED_VEHICLES_IDS,
                                     tc.VAR_TELEPORT_STARTING_VEHICLES_NUMBER])
        self._tc = tc

    def _alloc(self, cap: int) -> None:
        specs = {"orig": (np.int32, -1), "dest": (np.int32, -1), "depart": (_F, np.nan), "arrive": (_F, np.nan),
                 "inserted": (_F, np.nan), "dist": (_F, np.nan), "first": (np.int64, -1), "last": (np.int64, -1),
                 "nlinks": (np.int32, 0), "tff": (_F, np.nan), "kind": (np.int8, 0), "sent": (np.bool_, False),
                 "rr": (np.bool_, False)}
        for name, (dt, fill) in specs.items():
            new: np.ndarray = np.full(cap, fill, dt)
            old = getattr(self, name, None)
            if old is not None:
                new[: self.n] = old[: self.n]
            setattr(self, name, new)
        self.cap = cap

    def _new_trips(self, o: np.ndarray, d: np.ndarray, dep: np.ndarray, kind: str) -> np.ndarray:
        """Register trips (node indices); compute their from/to links on free-flow times; return trip ids."""
        m = len(o)
        if self.n + m > self.cap:
            self._alloc(max(2 * self.cap, self.n + m))
        ids = np.arange(self.n, self.n + m, dtype=np.int64)
        self.n += m
        self.orig[ids], self.dest[ids], self.depart[ids] = o, d, dep
        self.kind[ids] = VEHICLE_KINDS.index(kind) if kind in VEHICLE_KINDS else 0
        cost = np.where(self.cap_factor > 0, self.fft, np.inf)
        f, l, nl, tff = freeflow_od_links(self.city, cost, o, d)
        self.first[ids], self.last[ids], self.nlinks[ids], self.tff[ids] = f, l, nl, tff
        return ids

    # ================================================================ clock
    def _loop(self):
        env = self.twin.env
        while self.t < self.duration - 1e-9:
            step = self.dt if self._events else self.config.sync_interval_s
            nxt = min(self.t + step, self.duration)
            self._waiting = True
            try:
                yield env.timeout(max(nxt - env.now, 0.0))
            except simpy.Interrupt:
                pass
            self._waiting = False
            self._catch_up()

    def _poke(self) -> None:
        if self._waiting and self._proc.is_alive and self.twin.env.active_process is not self._proc:
            self._waiting = False
            self._proc.interrupt()

    def _catch_up(self) -> None:
        """Advance SUMO through every whole step ending at or before ``env.now``; fire arrival events."""
        if self._dead or self._closed:
            return
        now = min(self.twin.env.now, self.duration)
        tc = self._tc
        try:
            while self.t + self.dt <= now + 1e-9:
                if self.t >= self._feed_until:
                    self._feed(self.t + self.FEED_AHEAD_S)
                self.k.simulationStep()
                self.t += self.dt
                res = self.k.simulation.getSubscriptionResults()
                for vid in res.get(tc.VAR_DEPARTED_VEHICLES_IDS, ()):
                    if vid.isdigit():
                        self.inserted[int(vid)] = self.t
                arrived = res.get(tc.VAR_ARRIVED_VEHICLES_IDS, ())
                for vid in arrived:
                    if vid.isdigit():
                        self.arrive[int(vid)] = self.t
                self.teleports += int(res.get(tc.VAR_TELEPORT_STARTING_VEHICLES_NUMBER, 0))
                if self._events and arrived:
                    self._fire(arrived)
        except _fatal_errors() as exc:
            self._fail(exc)

    FEED_AHEAD_S = 60.0

    def _feed(self, until_s: float) -> None:
        """Hand SUMO the demand trips departing before ``until_s`` (from/to re-chosen around closed links)."""
        order = self._feed_order
        j = int(np.searchsorted(self.depart[order], until_s, side="left"))
        batch = order[self._feed_ptr:j]
        self._feed_ptr = j
        self._feed_until = until_s
        if len(batch) == 0:
            return
        if (self.cap_factor <= 0).any():  # trips that would start or end on a closed link: new from/to links
            bad = batch[(self.first[batch] >= 0) & ((self.cap_factor[self.first[batch]] <= 0)
                                                    | (self.cap_factor[self.last[batch]] <= 0))]
            if len(bad):
                cost = np.where(self.cap_factor > 0, self.fft, np.inf)
                f, l, nl, tff = freeflow_od_links(self.city, cost, self.orig[bad], self.dest[bad])
                self.first[bad], self.last[bad], self.nlinks[bad], self.tff[bad] = f, l, nl, tff
        add_route, add_veh = self.k.route.add, self.k.vehicle.add
        for i in batch[self.first[batch] >= 0]:
            e0, e1 = self.edge_ids[self.first[i]], self.edge_ids[self.last[i]]
            add_route(f"r{i}", [e0] if e0 == e1 else [e0, e1])
            add_veh(str(i), f"r{i}", typeID="car_rr" if self.rr[i] else "car",
                    depart=f"{max(self.depart[i], self.t):.2f}", departLane="best")
        self.sent[batch[self.first[batch] >= 0]] = True

    def _fire(self, arrived) -> None:
        for vid in arrived:
            ev = self._events.pop(int(vid), None) if vid.isdigit() else None
            if ev is not None:
                v = int(vid)
                ev.succeed(TripResult(v, int(self.orig[v]), int(self.dest[v]), float(self.depart[v]),
                                      float(self.arrive[v]), self._route_len.get(v, np.nan), "arrived"))

    def _fail(self, exc: BaseException) -> None:
        """SUMO is gone: close what is left, kill its process, raise SumoRunError with the partial results."""
        self._dead = True
        try:
            self.k.close()
        except (*_fatal_errors(), *_command_errors()):  # the connection is already broken
            pass
        _kill(self.proc)
        partial = self._dataset(complete=False)
        self._ds = partial
        raise SumoRunError(f"SUMO stopped at t={self.t:.0f} s ({type(exc).__name__}: {exc}); "
                           f"partial traffic results kept (complete=0)", partial, self.t) from exc

    # ================================================================ public API
    def _vtype(self, kind: str, priority: bool) -> str:
        return "emergency" if (priority or kind == "emergency") else (kind if kind in VEHICLE_KINDS else "car")

    def add_trips(self, origins, destinations, depart_s, kind: str = "car") -> np.ndarray:
        """Add background trips (node indices or ids; departure times >= now, s); SUMO routes them at insertion."""
        self._catch_up()
        conv = lambda xs: np.asarray([self._node(x) for x in xs] if np.asarray(xs).dtype.kind not in "iu"  # noqa: E731
                                     else xs, np.int32)
        o, d = conv(origins), conv(destinations)
        dep = np.maximum(np.asarray(depart_s, _F), self.t)
        ids = self._new_trips(o, d, dep, kind)
        typ = self._vtype(kind, False)
        try:
            for i in ids[self.first[ids] >= 0]:
                e0, e1 = self.edge_ids[self.first[i]], self.edge_ids[self.last[i]]
                self.k.route.add(f"r{i}", [e0] if e0 == e1 else [e0, e1])
                self.k.vehicle.add(str(i), f"r{i}", typeID=typ, depart=f"{max(dep[i - ids[0]], self.t):.2f}",
                                   departLane="best")
                self.sent[i] = True
        except _fatal_errors() as exc:
            self._fail(exc)
        return ids

    def drive(self, origin: Hashable, destination: Hashable, kind: str = "car", speed_factor: float = 1.0,
              priority: bool = False, tag: Any = None) -> simpy.Event:
        """Start a vehicle now (routed by SUMO on current times); the event fires on arrival with a TripResult."""
        self._catch_up()
        env = self.twin.env
        o, d = self._node(origin), self._node(destination)
        i = int(self._new_trips(np.array([o], np.int32), np.array([d], np.int32), np.array([self.t]), kind)[0])
        ev = env.event()
        typ = self._vtype(kind, priority)
        edges: list[str] = []
        try:
            if self.first[i] >= 0:
                e0, e1 = self.edge_ids[self.first[i]], self.edge_ids[self.last[i]]
                stage = self.k.simulation.findRoute(e0, e1, vType=typ)
                edges = list(stage.edges)
                if edges:
                    self._route_len[i] = float(stage.length)
                    self.k.route.add(f"r{i}", edges)
                    self.k.vehicle.add(str(i), f"r{i}", typeID=typ, depart="now", departLane="best")
                    if speed_factor != 1.0:
                        self.k.vehicle.setSpeedFactor(str(i), float(speed_factor))
                    self.sent[i] = True
        except _fatal_errors() as exc:
            self._fail(exc)
        if not edges:
            self.first[i] = -1
            ev.succeed(TripResult(i, o, d, self.t, float("nan"), 0.0, "unroutable"))
            return ev
        self._events[i] = ev
        self._poke()
        return ev

    def set_capacity_factor(self, link: Hashable, factor: float) -> None:
        """Close (0), narrow (0 < f < 1: lanes shut, or speed cut on one-lane roads) or reopen (1) a link."""
        self._catch_up()
        i = self.city.link_index(link)
        f = float(np.clip(factor, 0.0, 1.0))
        old = self.cap_factor[i]
        self.cap_factor[i] = f
        e = self.edge_ids[i]
        k = self.k
        try:
            if not hasattr(self, "_orig_perm"):
                self._orig_perm: dict[str, tuple] = {}
                self._orig_speed: dict[str, float] = {}
            n_lanes = k.edge.getLaneNumber(e)
            lanes = [f"{e}_{j}" for j in range(n_lanes)]
            for ln in lanes:
                self._orig_perm.setdefault(ln, tuple(k.lane.getAllowed(ln)))
            self._orig_speed.setdefault(e, float(k.lane.getMaxSpeed(lanes[0])))
            for ln in lanes:  # reset, then apply
                k.lane.setAllowed(ln, list(self._orig_perm[ln]))
            k.edge.setMaxSpeed(e, self._orig_speed[e])
            if f <= 0.0:
                for ln in lanes:
                    k.lane.setDisallowed(ln, ["all"])
            elif f < 1.0:
                keep = max(1, int(round(f * n_lanes)))
                if keep < n_lanes:
                    for ln in lanes[: n_lanes - keep]:  # lane 0 is the rightmost
                        k.lane.setDisallowed(ln, ["all"])
                else:
                    k.edge.setMaxSpeed(e, self._orig_speed[e] * f)
            if f <= 0.0 < old or f < old:
                self._reroute_through(e)
        except _fatal_errors() as exc:
            self._fail(exc)

    def _closure(self, cl):
        """A scenario closure: full ones are applied by SUMO's rerouter (closures.add.xml), so only the
        factor the city sees changes here; partial ones change lanes live (``set_capacity_factor``)."""
        if cl.capacity_factor > 0.0:
            yield from super()._closure(cl)
            return
        env = self.twin.env
        i = self.city.link_index(cl.link)
        if cl.start_s > env.now:
            yield env.timeout(cl.start_s - env.now)
        self._catch_up()
        self.cap_factor[i] = 0.0
        if cl.end_s is not None and cl.end_s < self.duration:
            yield env.timeout(cl.end_s - env.now)
            self._catch_up()
            self.cap_factor[i] = 1.0

    def _reroute_through(self, edge: str) -> None:
        """Vehicles whose remaining route uses ``edge`` re-route now (one call per running vehicle, rare)."""
        k = self.k
        for vid in k.vehicle.getIDList():
            route = k.vehicle.getRoute(vid)
            if edge in route[k.vehicle.getRouteIndex(vid) + 1:]:
                try:
                    k.vehicle.rerouteTraveltime(vid)
                except _command_errors():  # no alternative route: it keeps its route
                    pass

    def link_travel_times_s(self) -> np.ndarray:
        """Current travel time of each link from SUMO (length / current mean speed), inf when closed."""
        self._catch_up()
        if getattr(self, "_tt_t", None) != self.t or self._dead:
            if not self._dead and not self._closed:
                try:
                    get = self.k.edge.getTraveltime
                    self._tt = np.array([get(e) for e in self.edge_ids], _F)
                except _fatal_errors() as exc:
                    self._fail(exc)
            else:
                self._tt = self.fft.copy()
            self._tt_t = self.t
        tt = np.maximum(self._tt, self.fft)
        return np.where(self.cap_factor > 0, tt, np.inf)

    def _costs(self, congested: bool) -> np.ndarray:
        return self.link_travel_times_s() if congested else np.where(self.cap_factor > 0, self.fft, np.inf)

    # ================================================================ invariants and recording
    def status(self) -> np.ndarray:
        """Trip status codes (0 arrived, 1 running, 2 waiting, 3 unroutable) at SUMO's current time."""
        n = self.n
        st = np.full(n, PENDING, np.int8)
        st[~np.isnan(self.inserted[:n])] = RUNNING
        st[~np.isnan(self.arrive[:n])] = ARRIVED
        st[self.first[:n] < 0] = UNROUTABLE
        return st

    def counts(self) -> dict[str, int]:
        """Trips by status (conservation checks): total = arrived + running + pending + unroutable."""
        st = self.status()
        due = self.depart[: self.n] <= self.t
        return {"total": self.n, "arrived": int((st == ARRIVED).sum()), "running": int((st == RUNNING).sum()),
                "pending_due": int(((st == PENDING) & due).sum()),
                "pending_future": int(((st == PENDING) & ~due).sum()),
                "unroutable": int((st == UNROUTABLE).sum()),
                "sumo_vehicles": int(self.k.vehicle.getIDCount()) if not (self._dead or self._closed) else -1}

    def record(self, t_s: float) -> None:
        self._catch_up()
        if self._dead or self._closed:
            return
        try:
            get = self.k.edge.getLastStepHaltingNumber
            queue = np.array([get(e) for e in self.edge_ids], np.float32)
        except _fatal_errors() as exc:
            self._fail(exc)
        c = self.counts()
        self._rec["queue"].append(queue)
        self._rec["capf"].append(self.cap_factor.astype(np.float32))
        self._rec["running"].append(c["running"])
        self._rec["completed"].append(c["arrived"])
        self._rec["waiting"].append(c["pending_due"])
        self._rec_t.append(t_s)

    def close(self) -> None:
        """Stop SUMO (writes the last edgeData interval and the unfinished trips); idempotent."""
        if self._closed or self._dead or self.k is None:
            return
        self._closed = True
        try:
            self.k.close()
        finally:
            _kill(self.proc)

    def finalize(self, t_end_s: float) -> xr.Dataset:
        if self._ds is not None:
            return self._ds
        self._catch_up()
        self.close()
        self._ds = self._dataset(complete=True)
        self._cleanup()
        return self._ds

    def _dataset(self, complete: bool) -> xr.Dataset:
        n = self.n
        a = self.city.arrays
        rec_t = np.array(self._rec_t, _F)
        ends = np.array(self.twin.record_times, _F)
        ends = ends[ends <= self.duration + 1e-9]
        ed, ed_ok = read_edgedata(self.edgedata_file, self.edge_index, ends)
        trip_tab, ti_ok = read_tripinfo(self.tripinfo_file)
        series: dict[str, Any] = {}
        if len(rec_t):
            k = np.searchsorted(ends, rec_t - 1e-6)
            k = np.clip(k, 0, len(ends) - 1)
            span = np.diff(np.concatenate([[0.0], ends]))[k][:, None]
            found = ed["found"][k][:, None]
            exits, ss, dist = ed["exits"][k], ed["sampled_s"][k], ed["dist_m"][k]
            ffs = (a.length_m / self.fft)[None, :]
            with np.errstate(divide="ignore", invalid="ignore"):
                speed = np.where(ss > 0, np.minimum(dist / ss, ffs), ffs)
            nan = np.float32(np.nan)
            capf = np.stack(self._rec["capf"])
            speed = np.where(capf <= 0.0, np.nan, speed)  # a closed link has no speed (not free flow)
            series = {"flow": np.where(found, exits * 3600.0 / span, nan).astype(np.float32),
                      "speed": np.where(found, speed, nan).astype(np.float32),
                      "vehicles": np.where(found, ss / span, nan).astype(np.float32),
                      "queue": np.stack(self._rec["queue"]),
                      "queue_long_name": "vehicles halting on the link at the interval's end",
                      "capf": capf, "running": self._rec["running"],
                      # SUMO's time loss on the link per vehicle leaving it: the delay of its queue, signal
                      # and give-way at the end (and any slowing on the way), NaN if none left
                      "junction_delay": np.where(found & (exits > 0), ed["time_loss_s"][k] / np.maximum(exits, 1),
                                                 nan).astype(np.float32),
                      "completed": self._rec["completed"], "waiting": self._rec["waiting"]}
        st = self.status()
        dist_m = np.zeros(n)
        for v, (_, _, rl, _) in trip_tab.items():
            if v < n:
                dist_m[v] = rl
        trips = {"origin": self.orig[:n], "destination": self.dest[:n], "depart": self.depart[:n],
                 "arrive": self.arrive[:n], "status": st, "freeflow_time": self.tff[:n],
                 "freeflow_time_long_name": "free-flow time of the free-flow shortest path",
                 "distance": dist_m, "distance_long_name": "distance driven (SUMO routeLength)",
                 "links": self.nlinks[:n], "links_long_name": "links in the free-flow route", "kind": self.kind[:n]}
        ds = traffic_dataset(self.city, fft_s=self.fft, capacity_vph=a.capacity_vph, rec_t=list(rec_t),
                             series=series, trips=trips)
        ds.attrs.update({"complete": int(complete and ed_ok and ti_ok), "sumo_version": self.version,
                         "sumo_connection": self.config.sumo.connection, "sumo_teleports": int(self.teleports),
                         "sumo_time_s": float(self.t)})
        self._dist = dist_m
        return ds

    def kpis(self) -> dict[str, KPI]:
        n = self.n
        c = self.counts()
        return traffic_kpis(status=self.status(), depart=self.depart[:n], arrive=self.arrive[:n],
                            freeflow_time=self.tff[:n], distance_m=getattr(self, "_dist", np.zeros(n)), now_s=self.t,
                            pending_due=c["pending_due"], teleports=int(self.teleports))
