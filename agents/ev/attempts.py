"""Charging attempts as records, and the EV KPI definitions as pure functions of them.

An *attempt* starts when an EV joins a station's queue. It ends in exactly one outcome:
``charged`` (plugged in and unplugged before the end), ``abandoned`` (gave up waiting), ``plugged``
(still plugged in at the end of the run) or ``queued`` (still waiting at the end). Warm-start sessions
(in progress at t = 0) are attempts of kind ``warm`` with no EV (``ev = -1``); they count in plug
occupancy and energy but not in the fleet's KPIs. Times are s from scenario start, energies kWh.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

__all__ = [
    "OUTCOMES",
    "Attempt",
    "demand_met",
    "outcome",
    "outcome_counts",
    "plug_occupancy",
    "receivable_kwh",
    "unserved_evs",
    "wait_s",
]

OUTCOMES = ("charged", "abandoned", "plugged", "queued")


@dataclass
class Attempt:
    """One charging attempt (see the module docstring). ``stay_s`` None = stay until the target is reached."""

    ev: int
    station: int
    kind: str  # "en_route" | "destination" | "warm"
    t_request_s: float
    need_kwh: float  # battery side, asked for
    max_kw: float  # most power the battery takes on that plug (kW, battery side: plug x efficiency and EV limit)
    stay_s: float | None  # planned time plugged in (destination dwell), None en route (until the target)
    t_plug_s: float = math.nan
    t_end_s: float = math.nan  # unplug or give-up time
    abandoned: bool = False
    stored_kwh: float = 0.0  # battery side, so far


def outcome(a: Attempt) -> str:
    """Which of :data:`OUTCOMES` an attempt has (at the end of a run)."""
    if a.abandoned:
        return "abandoned"
    if math.isnan(a.t_plug_s):
        return "queued"
    return "plugged" if math.isnan(a.t_end_s) else "charged"


def outcome_counts(attempts: list[Attempt]) -> dict[str, int]:
    """Attempts per outcome; the counts add up to ``len(attempts)``."""
    out = dict.fromkeys(OUTCOMES, 0)
    for a in attempts:
        out[outcome(a)] += 1
    return out


def receivable_kwh(a: Attempt, t_end_run_s: float) -> float:
    """Battery energy (kWh) the attempt could physically receive once plugged in: its request, capped by full plug
    power over the time it was plugged in (to the unplug; if still plugged, to its planned departure or the end of
    the run, whichever is first). En route it stays until the target: the request counts in full once unplugged."""
    if math.isnan(a.t_plug_s):
        return 0.0
    if not math.isnan(a.t_end_s):
        leave = a.t_end_s if a.stay_s is not None else math.inf
    else:
        leave = t_end_run_s if a.stay_s is None else min(a.t_plug_s + a.stay_s, t_end_run_s)
    hours = max(leave - a.t_plug_s, 0.0) / 3600.0
    return min(a.need_kwh, a.max_kw * hours)


def demand_met(attempts: list[Attempt], t_end_run_s: float) -> float:
    """Energy stored / energy receivable over attempts that got a plug (1.0 if none could receive anything)."""
    got = [a for a in attempts if not math.isnan(a.t_plug_s)]
    rec = sum(receivable_kwh(a, t_end_run_s) for a in got)
    return sum(a.stored_kwh for a in got) / rec if rec > 1e-12 else 1.0


def unserved_evs(needed: np.ndarray, attempts: list[Attempt]) -> int:
    """EVs that needed a charge (``needed[i]`` true: below ``charge_below_soc`` before a trip) and never got a plug."""
    plugged = {a.ev for a in attempts if not math.isnan(a.t_plug_s)}
    return int(sum(1 for i in np.flatnonzero(needed) if int(i) not in plugged))


def wait_s(a: Attempt, t_end_run_s: float) -> float:
    """Time (s) the attempt waited for a plug: to plug-in, to giving up, or (still queued) to the end of the run."""
    if not math.isnan(a.t_plug_s):
        return a.t_plug_s - a.t_request_s
    if a.abandoned:
        return a.t_end_s - a.t_request_s
    return t_end_run_s - a.t_request_s


def plug_occupancy(busy_plug_h: float, plugs: int, duration_s: float) -> float:
    """Time-mean share of plugs occupied: busy plug-hours / (plugs x hours)."""
    return busy_plug_h / (plugs * duration_s / 3600.0) if plugs and duration_s > 0 else math.nan
