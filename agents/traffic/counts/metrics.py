"""Goodness-of-fit figures traffic engineers report (UK TAG unit M3.1, TxDOT): GEH, flow criteria, regression."""
from __future__ import annotations

import numpy as np

__all__ = ["geh", "geh5_share", "regression", "tag_flow_ok"]


def geh(model_vph: np.ndarray, observed_vph: np.ndarray) -> np.ndarray:
    """GEH statistic of hourly flows: sqrt(2 (M - C)^2 / (M + C)); 0 where both are 0."""
    m, c = np.asarray(model_vph, float), np.asarray(observed_vph, float)
    s = m + c
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(s > 0, np.sqrt(2.0 * (m - c) ** 2 / np.where(s > 0, s, 1.0)), 0.0)


def geh5_share(model_vph: np.ndarray, observed_vph: np.ndarray) -> float:
    """Share of counts with GEH < 5 (NaN for no counts)."""
    g = geh(model_vph, observed_vph)
    return float(np.mean(g < 5.0)) if len(g) else float("nan")


def tag_flow_ok(model_vph: np.ndarray, observed_vph: np.ndarray) -> np.ndarray:
    """TAG M3.1 individual flow criterion: within 100 veh/h below 700 veh/h observed, within 15% from 700 to
    2,700 veh/h, within 400 veh/h above 2,700 veh/h."""
    m, c = np.asarray(model_vph, float), np.asarray(observed_vph, float)
    d = np.abs(m - c)
    return np.where(c < 700, d <= 100, np.where(c <= 2700, d <= 0.15 * c, d <= 400))


def regression(x: np.ndarray, y: np.ndarray) -> dict[str, float]:
    """Least-squares line y = intercept + slope x, its R², and the slope through the origin."""
    x, y = np.asarray(x, float), np.asarray(y, float)
    if len(x) < 2 or np.ptp(x) == 0:
        return {"slope": float("nan"), "intercept": float("nan"), "r2": float("nan"),
                "slope_origin": float(y.sum() / x.sum()) if len(x) and x.sum() else float("nan")}
    slope, intercept = np.polyfit(x, y, 1)
    ss_res = float(((y - (intercept + slope * x)) ** 2).sum())
    ss_tot = float(((y - y.mean()) ** 2).sum())
    return {"slope": float(slope), "intercept": float(intercept), "r2": 1.0 - ss_res / ss_tot if ss_tot else 1.0,
            "slope_origin": float((x * y).sum() / (x * x).sum())}
