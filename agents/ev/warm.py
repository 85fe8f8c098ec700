"""Warm start: charging sessions already in progress at t = 0, drawn from a fitted session class.

With arrivals per plug at rate lambda(t) (fitted arrivals per charger-day x hourly share) and lognormal dwell D,
plugs are an M(t)/G/inf system: the mean number of sessions in progress at time t is
``integral_0^inf lambda(t - u) P(D > u) du`` and the age u of a session in progress has density proportional
to ``lambda(t - u) P(D > u)``. A session of age u stays ``D - u`` more, with D drawn from D | D > u, and
still wants its fitted energy minus what full plug power delivered over u.
"""
from __future__ import annotations

import numpy as np
from scipy.stats import norm

__all__ = ["draw_warm_sessions", "occupancy_at"]

_DU_H = 0.05
_U_H = np.arange(_DU_H / 2, 72.0, _DU_H)  # ages considered (h), midpoints


def _age_weights(cls: dict, hour: float) -> np.ndarray:
    """lambda(t - u) P(D > u) du on the age grid (sessions per plug), for a start at clock ``hour``."""
    share = np.asarray(cls["hourly_share"], float)
    rate_h = cls["arrivals_per_charger_day"] * share / share.sum()  # arrivals per plug per clock hour
    lam = rate_h[np.floor((hour - _U_H) % 24.0).astype(int) % 24]  # (-tiny) % 24 can round to 24.0
    mu, sigma = cls["dwell_h"]["mu"], cls["dwell_h"]["sigma"]
    surv = norm.sf((np.log(_U_H) - mu) / sigma)
    return lam * surv * _DU_H


def occupancy_at(cls: dict, hour: float) -> float:
    """Mean sessions in progress per plug at clock ``hour`` (0..24) for a fitted class (see module docstring)."""
    return float(_age_weights(cls, hour).sum())


def draw_warm_sessions(cls: dict, hour: float, n_plugs: int, plug_kw: float,
                       rng: np.random.Generator) -> list[tuple[int, float, float]]:
    """Sessions in progress on ``n_plugs`` plugs at ``hour``: list of (plug k, remaining stay s, remaining kWh).

    Each plug is occupied with probability min(occupancy, 1); kWh are battery side at full ``plug_kw``.
    """
    w = _age_weights(cls, hour)
    p_busy = min(float(w.sum()), 1.0)
    busy = np.flatnonzero(rng.random(n_plugs) < p_busy)
    mu, sigma = cls["dwell_h"]["mu"], cls["dwell_h"]["sigma"]
    emu, esig = cls["energy_kwh"]["mu"], cls["energy_kwh"]["sigma"]
    if busy.size == 0:
        return []
    u = rng.choice(_U_H, size=busy.size, p=w / w.sum())
    f_u = norm.cdf((np.log(u) - mu) / sigma)
    q = np.minimum(f_u + rng.random(busy.size) * (1.0 - f_u), 1.0 - 1e-12)  # D | D > u by inverse CDF
    d = np.exp(mu + sigma * norm.ppf(q))
    e = np.exp(rng.normal(emu, esig, size=busy.size))
    stay = np.maximum(d - u, 1.0 / 60.0) * 3600.0
    kwh = np.maximum(e - plug_kw * u, 0.0)
    return [(int(k), float(a), float(b)) for k, a, b in zip(busy, stay, kwh)]
