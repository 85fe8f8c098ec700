"""Erlang C (M/M/c) formulas: the queueing theory a station with Poisson arrivals and exponential
plug times must reproduce (used by the validation tests and to estimate waits for station choice)."""
from __future__ import annotations

import math

__all__ = ["erlang_c", "mmc_mean_wait_s"]


def erlang_c(c: int, offered_load: float) -> float:
    """Probability that an arrival waits, for ``c`` servers and offered load ``a = lambda/mu`` (Erlang)."""
    a = float(offered_load)
    if a >= c:
        return 1.0
    term, s = 1.0, 1.0
    for k in range(1, c):
        term *= a / k
        s += term
    last = term * a / c * c / (c - a)
    return last / (s + last)


def mmc_mean_wait_s(c: int, arrival_rate_per_s: float, service_rate_per_s: float) -> float:
    """Mean time in queue (s) of an M/M/c system; ``inf`` if unstable."""
    if arrival_rate_per_s >= c * service_rate_per_s:
        return math.inf
    p = erlang_c(c, arrival_rate_per_s / service_rate_per_s)
    return p / (c * service_rate_per_s - arrival_rate_per_s)
