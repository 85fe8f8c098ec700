"""Coverage: the population share that a unit from some station reaches within the target time.

A demand point is covered when the least estimated blue-light time from any station is within the
travel budget (target minus call handling and turnout). Zone coverage is the weighted share of a
zone's points; city coverage weights zones by population (or building weight).
"""
from __future__ import annotations

from typing import Any

import numpy as np

from agents.emergency.incidents import DemandPoints
from agents.emergency.paths import min_times_from

__all__ = ["covered_points", "zone_coverage", "coverage_share"]


def covered_points(city: Any, station_nodes: np.ndarray, cost: np.ndarray, budget_s: float,
                   dp: DemandPoints) -> np.ndarray:
    """bool[P]: demand points reached from the nearest station within ``budget_s`` seconds."""
    if len(station_nodes) == 0:
        return np.zeros(len(dp.node), np.bool_)
    best = min_times_from(city, np.asarray(station_nodes), cost)
    return best[dp.node] <= budget_s


def zone_coverage(covered: np.ndarray, dp: DemandPoints) -> np.ndarray:
    """float64[Z]: covered share of each zone (its points' weights sum to 1)."""
    return np.bincount(dp.zone, weights=dp.weight * covered, minlength=len(dp.zone_ids))


def coverage_share(zone_cov: np.ndarray, dp: DemandPoints) -> float:
    """City-wide covered share, zones weighted by population share."""
    return float(np.dot(zone_cov, dp.zone_weight))
