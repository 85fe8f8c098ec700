"""Replay a real session log through the station model: each logged session plugs in at its real arrival,
asks for its real energy, and leaves at its real departure; the load manager decides the power.

Used to check the station model against the log (hourly occupancy) and to compare load-management
policies on real demand (bench/ev.py runs the same sessions through ACN-Sim).
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import mesa
import numpy as np
import pandas as pd
import simpy

from agents.ev.site import PhaseNetwork
from agents.ev.stations import Station, build_controller

__all__ = ["SessionLog", "load_log", "replay", "ReplayResult", "log_hourly_occupancy", "DEFAULT_LOG"]

DEFAULT_LOG = Path(__file__).resolve().parents[2] / "data" / "ev" / "boulder_2019-08_sessions.csv.gz"


@dataclass
class SessionLog:
    """Sessions as arrays: arrival and departure (s from ``t0``), requested energy (kWh), station label."""

    arrival_s: np.ndarray
    departure_s: np.ndarray
    energy_kwh: np.ndarray
    station: np.ndarray
    t0: pd.Timestamp

    def __len__(self) -> int:
        return int(self.arrival_s.size)

    def snapped(self, period_s: float) -> "SessionLog":
        """Times floored to a ``period_s`` grid (as ACN-Sim does); sessions left with no time are dropped."""
        a = np.floor(self.arrival_s / period_s) * period_s
        d = np.floor(self.departure_s / period_s) * period_s
        keep = d > a
        return SessionLog(a[keep], d[keep], self.energy_kwh[keep], self.station[keep], self.t0)


def load_log(path: str | Path = DEFAULT_LOG) -> SessionLog:
    """Read a log with columns station, start, end, energy_kwh; time zero = midnight of the first day."""
    df = pd.read_csv(path, parse_dates=["start", "end"]).sort_values("start")
    t0 = df["start"].min().normalize()
    a = (df["start"] - t0).dt.total_seconds().to_numpy()
    d = (df["end"] - t0).dt.total_seconds().to_numpy()
    return SessionLog(a, d, df["energy_kwh"].to_numpy(float), df["station"].to_numpy(str), t0)


def log_hourly_occupancy(log: SessionLog, n_hours: int) -> np.ndarray:
    """Mean number of plugged sessions in each hour, straight from the log's intervals (no model)."""
    occ = np.zeros(n_hours)
    edges = np.arange(n_hours + 1) * 3600.0
    for a, d in zip(log.arrival_s, log.departure_s):
        overlap = np.clip(np.minimum(d, edges[1:]) - np.maximum(a, edges[:-1]), 0.0, None)
        occ += overlap / 3600.0
    return occ


@dataclass
class ReplayResult:
    """Outcome of a replay: energies in kWh, powers in kW, times in s."""

    delivered_kwh: np.ndarray  # per session, grid side
    waits_s: np.ndarray
    abandoned: np.ndarray
    hourly_busy: np.ndarray  # mean busy plugs per hour
    hourly_energy_kwh: np.ndarray
    peak_kw: float
    overload_kwh: float
    wall_s: float
    events: int

    @property
    def energy_kwh(self) -> float:
        return float(self.delivered_kwh.sum())


def replay(log: SessionLog, plugs: int, plug_kw: float = 6.656, policy: str = "llf", limit_kw: float = np.inf,
           dt_s: float = 300.0, ev_kw: float | None = None, efficiency: float = 1.0, taper_soc: float = 1.0,
           patience_s: float = np.inf, phase_net: PhaseNetwork | None = None,
           plug_of: np.ndarray | None = None) -> ReplayResult:
    """Feed ``log`` through one site of ``plugs`` plugs under ``policy`` and a site limit (kW).

    Defaults reproduce ACN-Sim's ideal battery: capacity = requested energy, no losses, no taper.
    ``phase_net`` (one column per plug) replaces the site limit by per-phase constraints; ``plug_of[i]`` then
    fixes the plug of session ``i`` (phases differ between plugs, so the plug matters).
    """
    t_wall = time.perf_counter()
    env = simpy.Environment()
    model = mesa.Model(seed=0)
    site = Station(model, env, 0, "site", 0, 0.0, 0.0, plugs=plugs, power_kw=plug_kw)
    ctrl = build_controller(env, [site], city_limit_kw=limit_kw, policy=policy, dt_s=dt_s, efficiency=efficiency,
                            phase_net=phase_net)
    ctrl.start()
    n = len(log)
    delivered, waits = np.zeros(n), np.zeros(n)
    abandoned = np.zeros(n, bool)
    evkw = plug_kw if ev_kw is None else ev_kw
    end_s = float(np.ceil(log.departure_s.max() / 3600.0) * 3600.0) + 3600.0
    n_hours = int(end_s // 3600)
    busy_h, energy_h = np.zeros(n_hours), np.zeros(n_hours)

    def one(i):
        e = float(log.energy_kwh[i])
        out = yield env.process(site.session(e, 0.0, max(e, 1e-6), evkw, dwell_s=log.departure_s[i] - env.now,
                                             patience_s=patience_s, leave_when_full=False, taper_soc=taper_soc,
                                             tag=i, plug_index=None if plug_of is None else int(plug_of[i])))
        delivered[i], waits[i], abandoned[i] = out.delivered_kwh, out.wait_s, out.abandoned

    def source():
        for i in np.argsort(log.arrival_s, kind="stable"):
            if log.arrival_s[i] > env.now:
                yield env.timeout(log.arrival_s[i] - env.now)
            env.process(one(int(i)))

    def recorder():
        last_b = last_e = 0.0
        for h in range(n_hours):
            yield env.timeout(3600.0)
            ctrl.advance()
            b, e = float(ctrl.st_busy_h.sum()), ctrl.energy_kwh
            busy_h[h], energy_h[h] = b - last_b, e - last_e
            last_b, last_e = b, e

    env.process(source())
    env.process(recorder())
    env.run(until=end_s)
    events = next(env._eid)  # simpy's running event counter: events scheduled in the run
    return ReplayResult(delivered, waits, abandoned, busy_h, energy_h, ctrl.peak_kw, ctrl.overload_kwh,
                        time.perf_counter() - t_wall, events)
