"""Actuated signals (SUMO ``tlLogic type="actuated"``) for the built-in model: phase durations from arrivals.

SUMO's ``MSActuatedTrafficLightLogic`` extends an actuated green phase while its detectors see vehicles less
than ``max-gap`` (3 s) apart, from ``minDur`` up to ``maxDur``; other phases keep their duration and the phases
run in order. The meso version sets, every interval, each actuated phase to the green its movements need:

    g_p = clip(max over the movements m green in p of  lam_m r_m / (s_m - lam_m)  +  (exp(Lam_p G) - 1) / Lam_p,
               minDur_p, maxDur_p)

the queue built during the movement's red r_m (= cycle - g_p) discharged at its saturation flow s_m, plus the
expected wait for a gap of G = max-gap in the phase's Poisson arrivals of combined rate Lam_p (= G when nobody
comes: the gap-out). The cycle depends on the greens, so this is a damped fixed point. A movement at or over its
saturation flow runs its phase to maxDur.
"""
from __future__ import annotations

import gzip
import math
import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

import numpy as np

__all__ = ["ActuatedProgram", "MAX_GAP_S", "read_actuated", "gap_out_s", "phase_durations"]

MAX_GAP_S = 3.0  # SUMO's default max-gap of an actuated program (s)


@dataclass
class ActuatedProgram:
    """One actuated program: phases as written, and per phase minDur/maxDur (NaN: not actuated)."""

    tl: str
    offset: float
    phases: list[tuple[float, str]]
    min_dur: np.ndarray
    max_dur: np.ndarray
    max_gap: float = MAX_GAP_S


def _open(path: str | Path):
    with open(path, "rb") as f:
        magic = f.read(2)
    return gzip.open(path, "rb") if magic == b"\x1f\x8b" else open(path, "rb")


_TL_RE = re.compile(rb"<tlLogic\b.*?</tlLogic>", re.S)


def read_actuated(paths: Iterable[str | Path]) -> dict[str, ActuatedProgram]:
    """Actuated programs of SUMO net/additional files (the last program of an id wins, as in SUMO; a later static
    program of the same id removes it). Only the ``tlLogic`` elements are parsed (a net is mostly lanes)."""
    out: dict[str, ActuatedProgram] = {}
    for path in paths:
        with _open(path) as f:
            data = f.read()
        for block in _TL_RE.finditer(data):
            el = ET.fromstring(block.group(0))
            tl, kind = el.get("id", ""), el.get("type", "static")
            gap = MAX_GAP_S
            phases: list[tuple[float, str]] = []
            lo_l: list[float] = []
            hi_l: list[float] = []
            for ch in el:
                if ch.tag == "param" and ch.get("key") == "max-gap":
                    gap = float(ch.get("value", MAX_GAP_S))
                elif ch.tag == "phase":
                    phases.append((float(ch.get("duration", 0)), ch.get("state", "")))
                    lo = float(ch.get("minDur", "nan"))
                    hi = float(ch.get("maxDur", "nan"))
                    ok = hi > lo  # both given (NaN compares false)
                    lo_l.append(lo if ok else math.nan)
                    hi_l.append(hi if ok else math.nan)
            if kind == "actuated" and any(math.isfinite(x) for x in lo_l):
                out[tl] = ActuatedProgram(tl, float(el.get("offset", 0) or 0), phases, np.array(lo_l), np.array(hi_l),
                                          gap)
            else:
                out.pop(tl, None)
    return out


def gap_out_s(lam: float, gap: float = MAX_GAP_S) -> float:
    """Expected time (s) until a gap of ``gap`` s in Poisson arrivals of ``lam`` veh/s: (exp(lam gap) - 1) / lam."""
    x = lam * gap
    return gap if x < 1e-9 else math.expm1(x) / lam


def phase_durations(prog: ActuatedProgram, green_of: list[list[int]], lam: np.ndarray, sat: np.ndarray,
                    start: list[float] | None = None, iters: int = 30, tol: float = 0.05) -> list[float]:
    """Phase durations of ``prog`` for movement arrival rates ``lam`` and saturation flows ``sat`` (veh/s).

    ``green_of[p]``: the movements (indices into ``lam``/``sat``) green in phase p. Non-actuated phases keep their
    written duration. Damped fixed point over the cycle (see the module docstring), from ``start`` (the last
    durations) if given, until no phase moves by more than ``tol`` s.
    """
    lam_l, sat_l = [float(x) for x in lam], [float(x) for x in sat]
    dur = list(start) if start is not None else [float(d) for d, _ in prog.phases]
    act = [p for p in range(len(dur)) if math.isfinite(prog.min_dur[p])]
    lo = {p: float(prog.min_dur[p]) for p in act}
    hi = {p: float(prog.max_dur[p]) for p in act}
    Lam = {p: sum(lam_l[m] for m in green_of[p]) for p in act}
    for _ in range(iters):
        cycle = sum(dur)
        moved = 0.0
        new = list(dur)
        for p in act:
            red = max(cycle - dur[p], 0.0)
            need = 0.0
            for m in green_of[p]:
                if lam_l[m] >= sat_l[m]:
                    need = math.inf
                    break
                need = max(need, lam_l[m] * red / (sat_l[m] - lam_l[m]))
            g = min(max(need + gap_out_s(Lam[p], prog.max_gap), lo[p]), hi[p])
            moved = max(moved, abs(g - dur[p]))
            new[p] = g
        if moved < tol:
            return new
        dur = [0.5 * a + 0.5 * b for a, b in zip(dur, new)]
    return dur
