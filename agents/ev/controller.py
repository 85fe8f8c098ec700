"""The charging controller: per-plug state arrays, energy integration and load management on the simpy clock.

Power is piecewise constant between *allocation points*: every control period ``dt_s`` (a tick), every
plug-in and every unplug (ACN-Sim re-solves at the same moments). Between them energy is integrated
exactly, and a battery that reaches its target stops drawing at the exact time (its ``done`` event
fires); the freed power is reallocated at the next allocation point, as in ACN-Sim.

Slots are plugs: ``plug_station[j]`` is fixed, a plugged EV occupies its slot until it unplugs.
Energies: ``delivered`` is grid side (kWh through the plug), ``stored`` is battery side = efficiency x delivered.
"""
from __future__ import annotations

from typing import Callable

import numpy as np
import simpy
from numba import njit

from agents.ev.allocation import POLICY_CODES, allocate_kernel
from agents.ev.site import PhaseNetwork, greedy_phases_kernel

__all__ = ["ChargingController", "TouWindow"]

_INF = np.inf


@njit(cache=True)
def _advance(dt_h, busy, power, eta, need, soc, cap, delivered, stored, plug_station,
             st_energy, st_busy_h, done_mask):
    """Integrate ``dt_h`` hours at the current powers; flag plugs whose battery reached its target."""
    total = 0.0
    for j in range(busy.shape[0]):
        if not busy[j]:
            continue
        s = plug_station[j]
        st_busy_h[s] += dt_h
        p = power[j]
        if p <= 0.0:
            continue
        e_grid = p * dt_h
        e_batt = e_grid * eta[j]
        if e_batt >= need[j] - 1e-12:
            e_batt = need[j] if need[j] > 0.0 else 0.0
            e_grid = e_batt / eta[j]
            power[j] = 0.0
            done_mask[j] = True
        need[j] -= e_batt
        soc[j] += e_batt / cap[j]
        delivered[j] += e_grid
        stored[j] += e_batt
        st_energy[s] += e_grid
        total += e_grid
    return total


@njit(cache=True)
def _upper_bounds(busy, need, soc, cap, eta, plug_kw, ev_kw, taper, floor, period_h, defer, ub):
    """Most each plug may draw (kW grid side) over the next control period."""
    for j in range(busy.shape[0]):
        if (not busy[j]) or need[j] <= 1e-12 or defer[j]:
            ub[j] = 0.0
            continue
        frac = 1.0
        if soc[j] > taper[j]:
            frac = (1.0 - soc[j]) / max(1.0 - taper[j], 1e-9)
            if frac < floor:
                frac = floor
        batt_kw = ev_kw[j] * frac / eta[j]
        a = plug_kw[j] if plug_kw[j] < batt_kw else batt_kw
        rest = need[j] / eta[j] / period_h
        ub[j] = a if a < rest else rest


class TouWindow:
    """A time-of-use peak window [start_h, end_h) of each day, during which flexible charging is deferred."""

    def __init__(self, start_h: float, end_h: float) -> None:
        self.start_s, self.end_s = start_h * 3600.0, end_h * 3600.0

    def seconds_left(self, t_s: float) -> float:
        """Seconds until the window ends if ``t_s`` is inside it, else 0."""
        tod = t_s % 86400.0
        if self.start_s <= tod < self.end_s:
            return self.end_s - tod
        return 0.0


class ChargingController:
    """Plug state of every station and the load manager that shares the grid limit among them.

    Args:
        env: the simpy clock.
        plug_station: station index of each plug (plugs of a station are contiguous).
        plug_kw: rated power of each plug (kW).
        station_limit_kw: per-station (feeder) limit, ``inf`` for none.
        city_limit_kw: limit on the sum of all plugs (kW), ``inf`` for none.
        policy: one of ``allocation.POLICIES``.
        dt_s: control period (s).
        efficiency: charger efficiency (battery energy / grid energy), per plug or scalar.
        tou: peak windows in which sessions that can still finish later get no power.
        limit_signal: optional ``f(t_s) -> factor`` scaling the city limit (a grid operator's signal).
        phase_net: optional three-phase site network over all plugs (``agents.ev.site``); with a sorted policy its
            per-phase constraints replace the station and city limits.
    """

    def __init__(self, env: simpy.Environment, plug_station: np.ndarray, plug_kw: np.ndarray,
                 station_limit_kw: np.ndarray, city_limit_kw: float = _INF, policy: str = "uncontrolled",
                 dt_s: float = 60.0, efficiency: float | np.ndarray = 0.95, taper_floor: float = 0.05,
                 tou: list[TouWindow] | None = None, limit_signal: Callable[[float], float] | None = None,
                 phase_net: PhaseNetwork | None = None) -> None:
        if policy not in POLICY_CODES:
            raise ValueError(f"unknown policy {policy!r}")
        if phase_net is not None and (POLICY_CODES[policy] != 1 or phase_net.n_plugs != len(plug_station)):
            raise ValueError("phase_net needs a sorted policy (fcfs, edf, llf) and one column per plug")
        self.phase_net = phase_net
        if phase_net is not None:
            ph = np.deg2rad(phase_net.phase_deg)
            self._ph = (np.ascontiguousarray(phase_net.a, np.float64), np.cos(ph), np.sin(ph),
                        np.ascontiguousarray(phase_net.voltage_v, np.float64),
                        np.ascontiguousarray(phase_net.limit_a, np.float64))
        self.env = env
        self.policy, self.mode = policy, POLICY_CODES[policy]
        self.dt_s = float(dt_s)
        self.plug_station = np.ascontiguousarray(plug_station, np.int64)
        n = self.plug_station.shape[0]
        self.n_stations = int(station_limit_kw.shape[0])
        self.plug_kw = np.asarray(plug_kw, np.float64).copy()
        self.station_limit_kw = np.asarray(station_limit_kw, np.float64).copy()
        self.city_limit_kw = float(city_limit_kw)
        self.eta = np.broadcast_to(np.asarray(efficiency, np.float64), (n,)).copy()
        self.taper_floor = float(taper_floor)
        self.tou = tou or []
        self.limit_signal = limit_signal
        z = lambda dt=np.float64: np.zeros(n, dt)  # noqa: E731
        self.busy = z(np.bool_)
        self.power, self.need, self.soc, self.cap = z(), z(), z(), np.ones(n)
        self.ev_kw, self.taper, self.arrival, self.deadline = z(), np.ones(n), z(), z()
        self.delivered, self.stored = z(), z()
        self.tag = np.full(n, -1, np.int64)
        self._ub, self._defer, self._done_mask = z(), z(np.bool_), z(np.bool_)
        self.done_events: list[simpy.Event | None] = [None] * n
        # cumulative counters (grid side)
        self.st_energy_kwh = np.zeros(self.n_stations)
        self.st_busy_h = np.zeros(self.n_stations)
        self.energy_kwh = 0.0
        self.overload_kwh = 0.0
        self.overload_s = 0.0
        self.peak_kw = 0.0
        self.n_allocations = 0
        self._t_last = env.now
        self._gen = 0
        self._ticking = False

    # ---- public ---------------------------------------------------------------------------
    def start(self) -> None:
        """Register the periodic control tick on the clock (idempotent)."""
        if not self._ticking:
            self._ticking = True
            self.env.process(self._tick())

    def plug_in(self, plug: int, need_kwh: float, soc: float, cap_kwh: float, ev_kw: float,
                deadline_s: float, taper_soc: float = 0.8, tag: int = -1) -> simpy.Event:
        """Plug an EV into a free ``plug``; return an event fired when its battery reaches the target.

        ``need_kwh`` is battery-side energy wanted; ``deadline_s`` the expected departure (for EDF/LLF/ToU).
        """
        if self.busy[plug]:
            raise RuntimeError(f"plug {plug} is busy")
        self.advance()
        self.busy[plug] = True
        self.need[plug] = max(float(need_kwh), 0.0)
        self.soc[plug], self.cap[plug] = float(soc), max(float(cap_kwh), 1e-9)
        self.ev_kw[plug], self.taper[plug] = float(ev_kw), float(taper_soc)
        self.arrival[plug], self.deadline[plug] = self.env.now, float(deadline_s)
        self.delivered[plug] = self.stored[plug] = 0.0
        self.tag[plug] = tag
        ev = self.env.event()
        self.done_events[plug] = ev
        if self.need[plug] <= 1e-12:
            ev.succeed()
        self.reallocate()
        return ev

    def unplug(self, plug: int) -> tuple[float, float, float]:
        """Unplug; return (delivered kWh grid side, stored kWh battery side, final SoC)."""
        self.advance()
        out = (float(self.delivered[plug]), float(self.stored[plug]), float(self.soc[plug]))
        self.busy[plug] = False
        self.power[plug] = 0.0
        self.need[plug] = 0.0
        self.tag[plug] = -1
        self.done_events[plug] = None
        self.reallocate()
        return out

    def free_plug(self, station: int, lo: int, hi: int) -> int:
        """Index of the free plug with the highest power among plugs ``lo..hi-1`` (-1 if none)."""
        free = np.flatnonzero(~self.busy[lo:hi])
        if free.size == 0:
            return -1
        return lo + int(free[np.argmax(self.plug_kw[lo + free])])

    def city_limit_now(self) -> float:
        """The city limit in force now (kW), after the grid signal."""
        f = self.limit_signal(self.env.now) if self.limit_signal is not None else 1.0
        return self.city_limit_kw * f

    def total_power_kw(self) -> float:
        return float(self.power.sum())

    def station_power_kw(self) -> np.ndarray:
        return np.bincount(self.plug_station, weights=self.power, minlength=self.n_stations)

    # ---- internals ------------------------------------------------------------------------
    def advance(self) -> None:
        """Integrate energy from the last allocation point to now; fire events of batteries now full."""
        t = self.env.now
        dt_h = (t - self._t_last) / 3600.0
        if dt_h <= 0.0:
            return
        p_tot = float(self.power.sum())
        lim = self.city_limit_now()
        if p_tot > lim + 1e-9:
            self.overload_kwh += (p_tot - lim) * dt_h
            self.overload_s += dt_h * 3600.0
        self._done_mask[:] = False
        self.energy_kwh += _advance(dt_h, self.busy, self.power, self.eta, self.need, self.soc, self.cap,
                                    self.delivered, self.stored, self.plug_station, self.st_energy_kwh,
                                    self.st_busy_h, self._done_mask)
        self._t_last = t
        if self._done_mask.any():
            for j in np.flatnonzero(self._done_mask):
                ev = self.done_events[j]
                if ev is not None and not ev.triggered:
                    ev.succeed()

    def reallocate(self) -> None:
        """Recompute every plug's power now and schedule the wake-up at the next battery to fill."""
        self.advance()
        t = self.env.now
        self._defer[:] = False
        if self.tou and self.mode != 0:
            left = max(w.seconds_left(t) for w in self.tou)
            if left > 0.0:
                # flexible = can still reach its target after the peak at full power
                full = np.maximum(np.minimum(self.plug_kw, self.ev_kw), 1e-9)
                lax = (self.deadline - t) - self.need / self.eta / full * 3600.0
                self._defer[:] = self.busy & (lax > left)
        _upper_bounds(self.busy, self.need, self.soc, self.cap, self.eta, self.plug_kw, self.ev_kw, self.taper,
                      self.taper_floor, self.dt_s / 3600.0, self._defer, self._ub)
        if self.policy == "llf":
            key = (self.deadline - t) - self.need / self.eta / np.maximum(np.minimum(self.plug_kw, self.ev_kw), 1e-9) * 3600.0
        elif self.policy == "edf":
            key = self.deadline
        else:
            key = self.arrival
        key = np.where(self.busy, key, np.inf)
        if self.phase_net is not None:
            a, cos_p, sin_p, volt, lim = self._ph
            greedy_phases_kernel(self._ub, np.argsort(key, kind="mergesort"), a, cos_p, sin_p, volt, lim, 0.0,
                                  self.power)
        else:
            allocate_kernel(self.mode, self._ub, np.ascontiguousarray(key, np.float64), self.plug_station,
                            self.station_limit_kw, self.city_limit_now(), self.power)
        self.n_allocations += 1
        p = float(self.power.sum())
        if p > self.peak_kw:
            self.peak_kw = p
        # wake-up when the first battery fills (earlier than the next tick), stale wake-ups are ignored
        self._gen += 1
        on = self.power > 0.0
        if on.any():
            t_full = float(np.min(self.need[on] / (self.eta[on] * self.power[on]))) * 3600.0
            if t_full < self.dt_s:
                gen = self._gen
                self.env.timeout(max(t_full, 0.0)).callbacks.append(lambda _e, g=gen: self._on_full(g))

    def _on_full(self, gen: int) -> None:
        if gen == self._gen:
            self.advance()
            # no reallocation here (ACN-Sim semantics): freed power goes out at the next allocation point
            on = self.power > 0.0
            if on.any():
                t_full = float(np.min(self.need[on] / (self.eta[on] * self.power[on]))) * 3600.0
                self.env.timeout(max(t_full, 0.0)).callbacks.append(lambda _e, g=gen: self._on_full(g))

    def _tick(self):
        while True:
            yield self.env.timeout(self.dt_s)
            self.reallocate()
