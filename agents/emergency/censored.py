"""Response statistics that keep calls not reached by the end of a run (right-censored) in the population.

A call not reached by the end has a response time of at least ``t_end - call``; dropping it (as plain
percentiles of reached calls do) makes a run that falls behind look faster. Percentiles here are
Kaplan-Meier estimates: a censored call stays "not yet reached" up to its censoring time. A call no unit can
reach is censored at infinity (it never leaves the risk set). When the estimate never falls to ``1 - q``
within the observed times, the percentile is unknown (NaN) and the label says so.
"""
from __future__ import annotations

import math

import numpy as np

__all__ = ["censored_responses", "km_quantile", "waited"]


def censored_responses(call_s: np.ndarray, arrival_s: np.ndarray, unreachable: np.ndarray,
                       t_end_s: float) -> tuple[np.ndarray, np.ndarray]:
    """(time s, reached 1/0) per call: response if reached, else elapsed to the end (inf if unreachable)."""
    reached = np.isfinite(arrival_s)
    t = np.where(reached, arrival_s - call_s, t_end_s - call_s)
    t = np.where(~reached & unreachable, np.inf, t)
    return t, reached


def km_quantile(time_s: np.ndarray, reached: np.ndarray, q: float) -> float:
    """Kaplan-Meier q-quantile of the response time: the first reach time where at most 1 - q are still waiting.

    NaN if there are no calls or the estimate never gets there (too many calls still waiting).
    """
    n = time_s.size
    if n == 0:
        return math.nan
    order = np.lexsort((~reached, time_s))  # at equal times, reaches before censorings (standard convention)
    t, d = time_s[order], reached[order]
    surv, at_risk = 1.0, n
    i = 0
    while i < n:
        j = i
        events = 0
        while j < n and t[j] == t[i]:
            events += int(d[j])
            j += 1
        if events:
            surv *= 1.0 - events / at_risk
            if surv <= 1.0 - q + 1e-12:
                return float(t[i])
        at_risk -= j - i
        i = j
    return math.nan


def waited(dispatch_s: np.ndarray, request_s: np.ndarray) -> np.ndarray:
    """1 if the call waited for a free unit after call handling: dispatched later, or never dispatched (censored)."""
    late = np.where(np.isfinite(dispatch_s), dispatch_s - request_s > 1e-6, True)
    return late.astype(np.float64)
