"""Queueing theory the simulated queues are checked against: Erlang C (M/M/c) and Allen–Cunneen (M/G/c).

One module for every domain (EV plugs, emergency units). Argument order is always
``(c, ...)`` for the load form and ``(lam, mu, c)`` for rates: ``lam`` arrivals per second, ``mu`` services
per second per server, ``c`` servers; offered load ``a = lam / mu`` in erlangs.
P(wait) = C(c, a); mean wait Wq = C / (c mu - lam); P(Wq > t) = C exp(-(c mu - lam) t).
"""
from __future__ import annotations

import math

__all__ = ["erlang_c", "mean_wait_s", "p_wait_longer", "servers_needed", "allen_cunneen_wait_s"]


def erlang_c(c: int, a: float) -> float:
    """Probability that an arrival waits, for ``c`` servers and offered load ``a`` = lam/mu erlangs (1 if a >= c)."""
    if c < 1 or a < 0:
        raise ValueError("need c >= 1 and a >= 0")
    if a >= c:
        return 1.0
    # Erlang B by its stable recursion, then C = B / (1 - (a/c)(1 - B))
    b = 1.0
    for k in range(1, c + 1):
        b = a * b / (k + a * b)
    return b / (1.0 - (a / c) * (1.0 - b))


def mean_wait_s(lam: float, mu: float, c: int) -> float:
    """Mean wait in queue (s) of M/M/c; inf when unstable (lam >= c mu)."""
    if lam >= c * mu:
        return math.inf
    return erlang_c(c, lam / mu) / (c * mu - lam)


def p_wait_longer(t_s: float, lam: float, mu: float, c: int) -> float:
    """P(wait > t_s) of M/M/c (1 when unstable)."""
    if lam >= c * mu:
        return 1.0
    return erlang_c(c, lam / mu) * math.exp(-(c * mu - lam) * t_s)


def allen_cunneen_wait_s(lam: float, mu: float, c: int, cv2_service: float, cv2_arrival: float = 1.0) -> float:
    """Allen–Cunneen approximation of the mean wait (s) of G/G/c: the M/M/c wait times (ca² + cs²)/2."""
    return mean_wait_s(lam, mu, c) * (cv2_arrival + cv2_service) / 2.0


def servers_needed(lam: float, mu: float, max_p_wait: float) -> int:
    """Fewest servers ``c`` with P(wait) <= ``max_p_wait`` for arrivals at ``lam`` (1/s), service rate ``mu`` (1/s).

    Fleet sizing from a run: lam = calls needing the unit type / duration, 1/mu = busy time per mission.
    """
    if not 0.0 < max_p_wait <= 1.0:
        raise ValueError("max_p_wait must lie in (0, 1]")
    a = lam / mu
    c = max(1, math.floor(a) + 1)
    while erlang_c(c, a) > max_p_wait:
        c += 1
    return c
