"""The dispatch centre (a Mesa agent): takes calls, picks units by policy, queues calls when none is free.

Policies: ``congested`` (nearest unit by estimated blue-light time on the live link times, turnout
included), ``distance`` (nearest by road distance), ``station_area`` (units of the station whose
free-flow area holds the incident first, else the nearest by free-flow time). Queued requests are
served by priority, then call order, by the first suitable unit to become free.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import mesa
import numpy as np
import simpy

from agents.emergency.config import EmergencyConfig, IncidentType
from agents.emergency.incidents import Incident
from agents.emergency.paths import QUEUE_SHARE, emergency_link_times_s, route_links, times_from, times_to
from agents.emergency.resources import Site
from agents.emergency.units import Station, Unit

__all__ = ["Request", "DispatchCentre"]


@dataclass
class Request:
    """One unit needed by one incident."""

    incident: Incident
    unit_type: str
    seq: int
    made_s: float

    @property
    def order(self) -> tuple[int, float, int]:
        return (self.incident.priority, self.made_s, self.seq)


class DispatchCentre(mesa.Agent):
    """Owns the incident log, the request queue and the dispatch policy."""

    def __init__(self, model: mesa.Model, cfg: EmergencyConfig, env: simpy.Environment, city: Any,
                 traffic: Any, stations: list[Station], hospitals: list[Site]) -> None:
        super().__init__(model)
        self.cfg, self.env, self.city, self.traffic = cfg, env, city, traffic
        self.types: dict[str, IncidentType] = cfg.incident_types
        self.stations = stations
        self.hospitals = hospitals
        self.units: list[Unit] = []
        self.incidents: list[Incident] = []
        self.queue: list[Request] = []
        self._seq = 0
        self._tt_stamp = -1.0
        self._tt: np.ndarray | None = None
        self._trees: dict[tuple[str, int], tuple[float, np.ndarray]] = {}
        self._area: dict[str, np.ndarray] = {}
        self.dispatches = 0
        self.preemptions = 0
        self.queue_share = QUEUE_SHARE

    # ---- link costs (cached per simulated instant) --------------------------------------
    def link_times_s(self) -> np.ndarray:
        """Live congested link times (s), inf where closed; one call to traffic per instant."""
        if self._tt is None or self._tt_stamp != self.env.now:
            self._tt = np.asarray(self.traffic.link_travel_times_s(), np.float64)
            self._tt_stamp = self.env.now
        return self._tt

    def cost(self, policy: str) -> np.ndarray:
        """Per-link cost of a policy: blue-light seconds (congested), metres, or free-flow seconds."""
        a = self.city.arrays
        tt = self.link_times_s()
        if policy == "congested":
            return emergency_link_times_s(tt, a.fft_s, self.cfg.speed_factor, self.cfg.priority,
                                          self.queue_share)
        closed = ~np.isfinite(tt)
        base = a.length_m if policy == "distance" else a.fft_s / self.cfg.speed_factor
        return np.where(closed, np.inf, base)

    def tree_to(self, node: int, policy: str | None = None) -> np.ndarray:
        """Cost from every node to ``node`` under a policy's cost (cached per instant)."""
        policy = policy or self.cfg.policy
        key = (policy, int(node))
        hit = self._trees.get(key)
        if hit is not None and hit[0] == self.env.now:
            return hit[1]
        if len(self._trees) > 256:
            self._trees.clear()
        dist = times_to(self.city, node, self.cost(policy))
        self._trees[key] = (self.env.now, dist)
        return dist

    def route(self, o: int, d: int) -> list[int]:
        """Links of the fastest route o -> d on the live link times (empty if unroutable); position estimates of
        moving units use it. Computed here, on the same link times the dispatcher sees, so no back-end call can fail."""
        return route_links(self.city, o, d, self.link_times_s())

    # ---- calls --------------------------------------------------------------------------
    def call(self, inc: Incident) -> None:
        """A call comes in now: log it, hand it to a call-taker process."""
        self.incidents.append(inc)
        self.env.process(self._take(inc))

    def _take(self, inc: Incident):
        if self.cfg.call_handling_s > 0:
            yield self.env.timeout(self.cfg.call_handling_s)
        for ut, n in self.types[inc.type].units.items():
            for _ in range(n):
                self.request(inc, ut)

    def request(self, inc: Incident, unit_type: str) -> None:
        """Dispatch a unit of ``unit_type`` to ``inc`` now, queue the request, or log it unreachable."""
        self._seq += 1
        req = Request(inc, unit_type, self._seq, self.env.now)
        inc.needed += 1
        unit = self.select(req)
        if unit is None and self.cfg.preempt:
            unit = self._preemptable(req)
        if unit is not None:
            self._dispatch(unit, req)
        elif not self._reachable(req):
            inc.unreachable += 1
        else:
            inc.queued += 1
            self.queue.append(req)

    def _reachable(self, req: Request) -> bool:
        tree = self.tree_to(req.incident.node)
        return any(np.isfinite(tree[u.station.node]) or np.isfinite(tree[u.node])
                   for u in self.units if u.type == req.unit_type)

    def select(self, req: Request) -> Unit | None:
        """The available unit the policy picks for ``req`` (None if none can reach it)."""
        now = self.env.now
        cands = [u for u in self.units if u.type == req.unit_type and u.available]
        if not cands:
            return None
        node = req.incident.node
        policy = self.cfg.policy
        if policy == "station_area":
            area = self._areas(req.unit_type)[node]
            tree = self.tree_to(node, "station_area")
            home = [u for u in cands if u.station.index == area and np.isfinite(tree[u.position(now)])]
            if home:
                return min(home, key=lambda u: (u.state != "idle", tree[u.position(now)]))
        tree = self.tree_to(node, "station_area" if policy == "station_area" else policy)
        best, best_score = None, math.inf
        for u in cands:
            pos = u.position(now)
            score = tree[pos]
            if policy == "congested" and u.state == "idle" and pos == u.station.node:
                score += self.cfg.turnout_s.get(u.type, 60.0)
            if score < best_score:
                best, best_score = u, score
        return best

    def _preemptable(self, req: Request) -> Unit | None:
        """The unit on its way to a less urgent call that is nearest to ``req``; its old request is requeued."""
        now = self.env.now
        cands = [u for u in self.units if u.type == req.unit_type and not u.off_duty
                 and u.state in ("turnout", "en_route") and u.request is not None
                 and u.request.incident.priority > req.incident.priority]
        if not cands:
            return None
        tree = self.tree_to(req.incident.node, "congested")
        best = min(cands, key=lambda u: tree[u.position(now)])
        if not np.isfinite(tree[best.position(now)]):
            return None
        old = best.request
        old.incident.queued += 1
        self.queue.append(old)
        self.preemptions += 1
        return best

    def _areas(self, unit_type: str) -> np.ndarray:
        """int32[N]: station index whose free-flow time to each node is least (stations with that unit)."""
        if unit_type not in self._area:
            a = self.city.arrays
            cost = np.ascontiguousarray(a.fft_s / self.cfg.speed_factor)
            best = np.full(a.n_nodes, np.inf)
            area = np.full(a.n_nodes, -1, np.int32)
            for s in self.stations:
                if not any(u.type == unit_type for u in s.units):
                    continue
                d = times_from(self.city, s.node, cost)
                better = d < best
                best[better] = d[better]
                area[better] = s.index
            self._area[unit_type] = area
        return self._area[unit_type]

    def _dispatch(self, unit: Unit, req: Request) -> None:
        inc = req.incident
        now = self.env.now
        if math.isnan(inc.dispatch_s):
            inc.dispatch_s = now
        inc.units.append(unit.index)
        self.dispatches += 1
        unit.assign(req, now)

    def next_for(self, unit: Unit, now: float) -> bool:
        """Give a newly free ``unit`` the most urgent queued request it can reach; True if it got one."""
        if not self.queue:
            return False
        pos = unit.position(now)
        for req in sorted((r for r in self.queue if r.unit_type == unit.type), key=lambda r: r.order):
            if np.isfinite(self.tree_to(req.incident.node)[pos]):
                self.queue.remove(req)
                req.incident.queued -= 1
                self._dispatch(unit, req)
                return True
        return False

    # ---- callbacks from units -----------------------------------------------------------
    def unit_arrived(self, unit: Unit, req: Request, t: float) -> None:
        if math.isnan(req.incident.arrival_s):
            req.incident.arrival_s = t

    def unit_cleared(self, unit: Unit, req: Request, t: float) -> None:
        inc = req.incident
        inc.clear_s = t if math.isnan(inc.clear_s) else max(inc.clear_s, t)

    def request_unreachable(self, req: Request) -> None:
        req.incident.unreachable += 1

    def nearest_hospital(self, node: int) -> int | None:
        """Index of the hospital nearest to ``node`` by live congested time (None if none reachable)."""
        if not self.hospitals:
            return None
        d = times_from(self.city, node, np.ascontiguousarray(self.link_times_s()))
        times = [d[h.node] for h in self.hospitals]
        k = int(np.argmin(times))
        return k if np.isfinite(times[k]) else None

    # ---- state for recording ------------------------------------------------------------
    def waiting_calls(self) -> int:
        """Incidents with at least one request waiting for a unit now."""
        return len({id(r.incident) for r in self.queue})
