"""Charging stations: Mesa agents that own a simpy ``Resource`` (one unit per plug, FIFO queue) and run
charging sessions through the shared :class:`ChargingController`.

A session: queue for a plug (giving up after ``patience_s``), plug in, stay until the dwell ends or
the battery reaches its target, unplug. Every outcome is returned, so no EV is ever lost.
"""
from __future__ import annotations

from dataclasses import dataclass

import mesa
import numpy as np
import simpy

from agents.ev.attempts import Attempt
from agents.ev.controller import ChargingController

__all__ = ["Station", "SessionOutcome", "build_controller"]


@dataclass
class SessionOutcome:
    """What happened to one charging attempt (times in s, energies in kWh)."""

    station: int
    t_request_s: float
    wait_s: float
    charge_s: float = 0.0
    delivered_kwh: float = 0.0  # grid side
    stored_kwh: float = 0.0  # battery side
    soc_end: float = float("nan")
    abandoned: bool = False


class Station(mesa.Agent):
    """One charging site: ``plugs`` plugs of ``power_kw`` at city node ``node``; optional own limit (kW)."""

    def __init__(self, model: mesa.Model, env: simpy.Environment, index: int, sid: str, node: int, x: float, y: float,
                 plugs: int, power_kw: float, limit_kw: float = float("inf"), name: str = "") -> None:
        super().__init__(model)
        self.env = env
        self.index, self.sid, self.name = index, sid, name or sid
        self.node, self.x, self.y = int(node), float(x), float(y)
        self.plugs, self.power_kw, self.limit_kw = int(plugs), float(power_kw), float(limit_kw)
        self.resource = simpy.Resource(env, capacity=self.plugs)
        self.lo = self.hi = 0  # plug slot range in the controller, set by build_controller
        self.controller: ChargingController | None = None
        self.n_requests = self.n_served = self.n_abandoned = 0
        self.en_route = 0  # EVs driving here (for live guidance)
        self.service_s_sum = 0.0
        self.open_recs: dict[int, Attempt] = {}  # plug -> attempt plugged in there now
        self._q_area = 0.0  # integral of queue length (EV-s)
        self._q_last_t = env.now

    # ---- live state -----------------------------------------------------------------------
    @property
    def queue_len(self) -> int:
        return len(self.resource.queue)

    @property
    def busy(self) -> int:
        return self.resource.count

    def mean_service_s(self, default: float = 3600.0) -> float:
        """Mean plug occupancy per served session so far (s), ``default`` before the first."""
        return self.service_s_sum / self.n_served if self.n_served else default

    def expected_wait_s(self, extra: int = 0, default_service_s: float = 3600.0) -> float:
        """Rough expected wait (s) for one more EV given the live queue (plus ``extra`` EVs on their way)."""
        ahead = self.queue_len + self.busy + extra - self.plugs + 1
        if ahead <= 0:
            return 0.0
        return ahead * self.mean_service_s(default_service_s) / self.plugs

    def queue_area(self) -> float:
        """Integral of the queue length up to now (EV-s)."""
        self._q_update()
        return self._q_area

    def _q_update(self) -> None:
        t = self.env.now
        self._q_area += self.queue_len * (t - self._q_last_t)
        self._q_last_t = t

    # ---- a session ------------------------------------------------------------------------
    def session(self, need_kwh: float, soc: float, cap_kwh: float, ev_kw: float, *, dwell_s: float | None,
                patience_s: float = float("inf"), leave_when_full: bool = True, taper_soc: float = 0.8,
                tag: int = -1, rec: Attempt | None = None, plug_index: int | None = None):
        """simpy process body: queue, charge, leave; returns a :class:`SessionOutcome`.

        ``rec``, if given, is the attempt record: plug-in, unplug/give-up times and stored energy are written
        into it as they happen (so an attempt still open at the end of a run is known). ``plug_index`` (0-based within
        the station) asks for that plug instead of the most powerful free one (it must be free on plug-in).

        ``dwell_s`` None = stay until the target is reached; otherwise stay at most ``dwell_s`` (leaving
        early when full if ``leave_when_full``). ``deadline`` for the load manager = plug-in + dwell.
        """
        env, ctrl = self.env, self.controller
        t0 = env.now
        self.n_requests += 1
        self._q_update()
        req = self.resource.request()
        if np.isfinite(patience_s):
            res = yield req | env.timeout(patience_s)
            if req not in res:
                self._q_update()
                req.cancel()
                self.n_abandoned += 1
                if rec is not None:
                    rec.abandoned, rec.t_end_s = True, env.now
                return SessionOutcome(self.index, t0, env.now - t0, abandoned=True)
        else:
            yield req
        self._q_update()
        t1 = env.now
        plug = ctrl.free_plug(self.index, self.lo, self.hi) if plug_index is None else self.lo + int(plug_index)
        if dwell_s is None:
            rate = max(min(self.power_kw, ev_kw), 1e-9)
            deadline = t1 + need_kwh / rate * 3600.0 * 1.5 + 600.0
        else:
            deadline = t1 + dwell_s
        done = ctrl.plug_in(plug, need_kwh, soc, cap_kwh, ev_kw, deadline, taper_soc, tag)
        if rec is not None:
            rec.t_plug_s = t1
            self.open_recs[plug] = rec
        if dwell_s is None:
            yield done
        elif leave_when_full:
            yield done | env.timeout(dwell_s)
        else:
            yield env.timeout(dwell_s)
        delivered, stored, soc_end = ctrl.unplug(plug)
        if rec is not None:
            rec.t_end_s, rec.stored_kwh = env.now, stored
            self.open_recs.pop(plug, None)
        self.resource.release(req)
        self._q_update()
        self.n_served += 1
        self.service_s_sum += env.now - t1
        return SessionOutcome(self.index, t0, t1 - t0, env.now - t1, delivered, stored, soc_end)


def build_controller(env: simpy.Environment, stations: list[Station], **kwargs) -> ChargingController:
    """One controller over all plugs of ``stations`` (contiguous slots per station); kwargs go to it."""
    plug_station = np.concatenate([np.full(s.plugs, s.index, np.int64) for s in stations] + [np.zeros(0, np.int64)])
    plug_kw = np.concatenate([np.full(s.plugs, s.power_kw) for s in stations] + [np.zeros(0)])
    limits = np.array([s.limit_kw for s in stations], np.float64)
    ctrl = ChargingController(env, plug_station, plug_kw, limits, **kwargs)
    lo = 0
    for s in stations:
        s.lo, s.hi, s.controller = lo, lo + s.plugs, ctrl
        lo += s.plugs
    return ctrl
