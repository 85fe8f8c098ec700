"""Emergency units and stations as Mesa agents; a unit's mission is a simpy process that drives in traffic.

A mission: turnout at the station, drive to the scene (blue lights), serve on scene, for ambulances
maybe carry the patient to the nearest hospital and hand over, then free: take the next queued call
from where it is, or drive back (as ordinary traffic). A unit driving back is available and can be
redirected: its position is estimated from the route and link times it started with.
"""
from __future__ import annotations

import math
from typing import TYPE_CHECKING

import mesa
import numpy as np
import simpy

if TYPE_CHECKING:  # pragma: no cover
    from agents.emergency.dispatch import DispatchCentre, Request

__all__ = ["Station", "Unit", "on_duty", "UNIT_STATES"]

UNIT_STATES = ("off", "idle", "turnout", "en_route", "on_scene", "transport", "handover", "returning")


def on_duty(shift: tuple[float, float], hour: float) -> bool:
    """True when ``hour`` (of day, 0..24) lies in the shift [start, end); start > end wraps midnight."""
    a, b = shift
    if b - a >= 24.0 or (a == 0.0 and b == 24.0):
        return True
    h = hour % 24.0
    return a <= h < b if a <= b else (h >= a or h < b)


class Station(mesa.Agent):
    """A station on the city graph (node index) with its kind and home units."""

    def __init__(self, model: mesa.Model, index: int, name: str, kind: str, node: int,
                 x: float, y: float, source: str) -> None:
        super().__init__(model)
        self.index, self.name, self.kind, self.node = index, name, kind, node
        self.x, self.y, self.source = x, y, source
        self.units: list[Unit] = []


class Unit(mesa.Agent):
    """One vehicle (ambulance or fire engine) with a home station and a shift; its state drives dispatch."""

    def __init__(self, model: mesa.Model, index: int, name: str, type_: str, station: Station,
                 shift: tuple[float, float], centre: "DispatchCentre") -> None:
        super().__init__(model)
        self.index, self.name, self.type, self.station = index, name, type_, station
        self.shift = shift
        self.centre = centre
        self.node = station.node  # last known node index
        self.state = "idle"
        self.off_duty = False
        self.missions = 0
        self.busy_s = 0.0  # committed to incidents: dispatch -> free
        self.duty_s = 0.0  # on duty (accumulated at record/finalize)
        self._busy_since = math.nan
        self._duty_since = 0.0
        self._return_proc: simpy.Process | None = None
        self._mission_proc: simpy.Process | None = None
        self._trip: tuple[float, int, np.ndarray, np.ndarray] | None = None  # depart, origin, links, cum s
        self._turnout_end = 0.0
        self.request: "Request | None" = None  # the request being driven to (turnout / en route)
        station.units.append(self)

    # ---- availability and position ------------------------------------------------------
    @property
    def available(self) -> bool:
        return not self.off_duty and (self.state == "idle"
                                      or (self.state == "returning" and self.centre.cfg.redirect_returning))

    def position(self, now: float) -> int:
        """Node where a new drive would start: home, the scene, or on the way (estimated from the route)."""
        if self.state not in ("returning", "en_route") or self._trip is None:
            return self.node
        depart, origin, links, cum = self._trip
        if links.size == 0:
            return origin
        k = int(np.searchsorted(cum, now - depart, side="right"))
        return int(self.centre.city.arrays.link_to[links[min(k, links.size - 1)]])

    # ---- missions -----------------------------------------------------------------------
    def assign(self, req: "Request", now: float) -> None:
        """Start ``req``: from the station with turnout, or redirected while driving (no turnout)."""
        turnout = 0.0
        if self.state in ("returning", "en_route", "turnout"):
            turnout = max(0.0, self._turnout_end - now) if self.state == "turnout" else 0.0
            self.node = self.position(now)
            for proc in (self._return_proc, self._mission_proc):
                if proc is not None and proc.is_alive and proc is not self.centre.env.active_process:
                    proc.interrupt("redirect")
            self._return_proc = None
            self._trip = None
        elif self.node == self.station.node:
            turnout = self.centre.cfg.turnout_s.get(self.type, 60.0)
        self.state = "turnout"
        self.request = req
        self._turnout_end = now + turnout
        self.missions += 1
        if math.isnan(self._busy_since):
            self._busy_since = now
        self._mission_proc = self.centre.env.process(self._mission(req, turnout))

    def _start_trip(self, dest: int, cost: np.ndarray) -> None:
        """Remember route and cumulative link times of a drive now, to estimate the position later."""
        links = np.asarray(self.centre.route(self.node, dest), np.int64)
        cum = np.cumsum(cost[links]) if links.size else np.empty(0)
        self._trip = (self.centre.env.now, self.node, links, cum)

    def _drive(self, dest: int, blue: bool):
        cfg = self.centre.cfg
        if blue:
            return self.centre.traffic.drive(self.node, dest, kind="emergency", priority=cfg.priority,
                                             speed_factor=cfg.speed_factor, tag=self.name)
        return self.centre.traffic.drive(self.node, dest, kind="emergency", tag=self.name)

    def _mission(self, req: "Request", turnout: float):
        env, centre, inc = self.centre.env, self.centre, req.incident
        try:
            if turnout > 0:
                yield env.timeout(turnout)
            self.state = "en_route"
            if centre.cfg.preempt:
                self._start_trip(inc.node, centre.cost("congested"))
            res = yield self._drive(inc.node, blue=True)
        except simpy.Interrupt:
            return  # diverted to a more urgent call: the new mission has taken over
        self._trip = None
        self.request = None
        if res.status != "arrived":
            centre.request_unreachable(req)
            self._free()
            return
        self.node = inc.node
        centre.unit_arrived(self, req, env.now)
        self.state = "on_scene"
        if inc.on_scene_s > 0:
            yield env.timeout(inc.on_scene_s)
        centre.unit_cleared(self, req, env.now)
        if self.type == "ambulance" and inc.transport_u < centre.types[inc.type].transport_prob:
            h = centre.nearest_hospital(inc.node)
            if h is not None:
                self.state = "transport"
                res = yield self._drive(centre.hospitals[h].node, blue=False)
                if res.status == "arrived":
                    self.node = centre.hospitals[h].node
                    inc.hospital = h
                    self.state = "handover"
                    yield env.timeout(centre.types[inc.type].handover_s)
        self._free()

    def _free(self) -> None:
        """Mission over: account busy time, take a queued call, or head home."""
        now = self.centre.env.now
        if not math.isnan(self._busy_since):
            self.busy_s += now - self._busy_since
            self._busy_since = math.nan
        self.state = "idle" if self.node == self.station.node else "returning"
        if not self.off_duty and self.centre.next_for(self, now):
            return
        if self.node == self.station.node:
            self.state = "off" if self.off_duty else "idle"
        else:
            self._return_proc = self.centre.env.process(self._return())

    def _return(self):
        env, centre = self.centre.env, self.centre
        self.state = "returning"
        home = self.station.node
        self._start_trip(home, centre.link_times_s())
        try:
            res = yield self._drive(home, blue=False)
        except simpy.Interrupt:
            return
        self._trip = None
        self._return_proc = None
        if res.status == "arrived":
            self.node = home
        self.state = "off" if self.off_duty else "idle"
        if not self.off_duty:
            centre.next_for(self, env.now)

    # ---- shifts -------------------------------------------------------------------------
    def shift_process(self, start_hour: float):
        """Toggle duty at shift boundaries; a busy unit finishes its mission first."""
        env = self.centre.env
        while True:
            hour = (start_hour + env.now / 3600.0) % 24.0
            duty = on_duty(self.shift, hour)
            self.set_duty(duty, env.now)
            # next boundary: the shift start or end after this hour
            nxt = min(((b - hour) % 24.0) or 24.0 for b in self.shift)
            yield env.timeout(nxt * 3600.0)

    def set_duty(self, duty: bool, now: float) -> None:
        if duty and self.off_duty:
            self.off_duty = False
            self._duty_since = now
            if self.state == "off":
                self.state = "idle"
                self.centre.next_for(self, now)
        elif not duty and not self.off_duty:
            self.off_duty = True
            self.duty_s += now - self._duty_since
            if self.state == "idle":
                self.state = "off"

    def duty_time_s(self, now: float) -> float:
        """On-duty seconds up to ``now``."""
        return self.duty_s + (0.0 if self.off_duty else now - self._duty_since)

    def busy_time_s(self, now: float) -> float:
        """Seconds committed to incidents up to ``now``."""
        return self.busy_s + (0.0 if math.isnan(self._busy_since) else now - self._busy_since)

