"""Load management: split a grid limit among plugged EVs, one numba kernel call per control step.

Policies (the ones ACN-Sim compares, plus the two baselines):

- ``uncontrolled``: every EV draws its maximum; the limit is ignored and the overload is counted.
- ``fcfs`` / ``edf`` / ``llf``: sort by arrival, deadline or laxity, then give each EV in turn the most
  it can take under its station's limit and the city (feeder) limit (ACN-Sim's ``SortedSchedulingAlgo``).
- ``equal``: max-min fair share (progressive filling / water-filling) under both levels of limits.

All powers are kW on the grid side; ``ub_kw`` already folds in plug power, EV maximum, the taper
and the energy still wanted over one control period.
"""
from __future__ import annotations

import numpy as np
from numba import njit

__all__ = ["POLICIES", "POLICY_CODES", "allocate_kw", "sort_key"]

POLICIES = ("uncontrolled", "fcfs", "equal", "edf", "llf")
# kernel mode per policy: 0 = take the upper bound, 1 = sorted greedy, 2 = equal share
POLICY_CODES = {"uncontrolled": 0, "fcfs": 1, "edf": 1, "llf": 1, "equal": 2}
_EPS = 1e-9


@njit(cache=True)
def _sorted_greedy(ub, order, station, st_limit, city_limit, out):
    head = st_limit.copy()
    city = city_limit
    for k in range(order.shape[0]):
        i = order[k]
        s = station[i]
        a = ub[i]
        if head[s] < a:
            a = head[s]
        if city < a:
            a = city
        if a < 0.0:
            a = 0.0
        out[i] = a
        head[s] -= a
        city -= a


@njit(cache=True)
def _equal_share(ub, station, st_limit, city_limit, out):
    n = ub.shape[0]
    S = st_limit.shape[0]
    head = st_limit.copy()
    city = city_limit
    live = np.zeros(n, np.bool_)
    for i in range(n):
        out[i] = 0.0
        live[i] = ub[i] > _EPS
    n_st = np.zeros(S, np.int64)
    while True:
        n_st[:] = 0
        n_live = 0
        for i in range(n):
            if live[i]:
                n_st[station[i]] += 1
                n_live += 1
        if n_live == 0:
            break
        # the largest common increment before an EV, a station or the city saturates
        delta = np.inf
        for i in range(n):
            if live[i] and ub[i] - out[i] < delta:
                delta = ub[i] - out[i]
        for s in range(S):
            if n_st[s] > 0 and head[s] / n_st[s] < delta:
                delta = head[s] / n_st[s]
        if city / n_live < delta:
            delta = city / n_live
        if delta < 0.0:
            delta = 0.0
        for i in range(n):
            if live[i]:
                out[i] += delta
        for s in range(S):
            head[s] -= delta * n_st[s]
        city -= delta * n_live
        for i in range(n):
            if live[i]:
                s = station[i]
                if ub[i] - out[i] <= _EPS or head[s] <= _EPS * (1.0 + abs(out[i])) or city <= _EPS * (1.0 + delta):
                    live[i] = False


@njit(cache=True)
def allocate_kernel(mode, ub, key, station, st_limit, city_limit, out):
    if mode == 0:
        for i in range(ub.shape[0]):
            out[i] = ub[i]
    elif mode == 1:
        order = np.argsort(key, kind="mergesort")
        _sorted_greedy(ub, order, station, st_limit, city_limit, out)
    else:
        _equal_share(ub, station, st_limit, city_limit, out)


def allocate_kw(policy: str, ub_kw: np.ndarray, key: np.ndarray, station: np.ndarray,
                station_limit_kw: np.ndarray, city_limit_kw: float) -> np.ndarray:
    """Power (kW) for each plugged EV under ``policy``; ``key`` orders sorted policies (lower first).

    ``station`` maps each EV to a station index; limits may be ``inf``. Never exceeds a limit unless
    the policy is ``uncontrolled``.
    """
    out = np.zeros(ub_kw.shape[0], np.float64)
    allocate_kernel(POLICY_CODES[policy], np.ascontiguousarray(ub_kw, np.float64), np.ascontiguousarray(key, np.float64),
              np.ascontiguousarray(station, np.int64), np.ascontiguousarray(station_limit_kw, np.float64),
              float(city_limit_kw), out)
    return out


def sort_key(policy: str, t_s: float, arrival_s: np.ndarray, deadline_s: np.ndarray,
             remaining_kwh: np.ndarray, max_kw: np.ndarray) -> np.ndarray:
    """Priority of each EV for the sorted policies (lower is served first).

    LLF laxity (s) = time left before the deadline - time needed at full power (ACN-Sim's definition).
    """
    if policy == "fcfs":
        return arrival_s
    if policy == "edf":
        return deadline_s
    if policy == "llf":
        return (deadline_s - t_s) - remaining_kwh / np.maximum(max_kw, 1e-9) * 3600.0
    return arrival_s
