"""The EV fleet as structure-of-arrays (one row per EV) and how it is drawn: types, batteries, initial SoC,
trips (a share of the scenario's car trips, or the domain's own), home charging, destination dwell times and
session energies (fitted), and the uniform draw that decides plugging in (drawn up front: common random numbers)."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from agents.ev.config import EVConfig

__all__ = ["Fleet", "draw_fleet", "beta_params"]


def beta_params(mean: float, sd: float) -> tuple[float, float]:
    """Beta(a, b) with the given mean and standard deviation (method of moments)."""
    var = min(sd**2, mean * (1 - mean) * 0.99)
    k = mean * (1 - mean) / var - 1.0
    return mean * k, (1 - mean) * k


@dataclass
class Fleet:
    """State and per-EV tallies. Energies kWh, times s, distances m; ``soc`` in 0..1."""

    vtype: np.ndarray
    cap_kwh: np.ndarray
    kwh_per_km: np.ndarray
    speed_coeff: np.ndarray
    ac_kw: np.ndarray
    dc_kw: np.ndarray
    origin: np.ndarray
    dest: np.ndarray
    depart_s: np.ndarray
    dwell_s: np.ndarray
    soc: np.ndarray
    home: np.ndarray = None  # type: ignore[assignment]  # bool: charges at home
    session_kwh: np.ndarray = None  # type: ignore[assignment]  # fitted session energy wanted at a destination (kWh)
    plug_u: np.ndarray = None  # type: ignore[assignment]  # uniform draw: plugs in if below the dwell-dependent chance
    soc_start: np.ndarray = field(init=False)
    tallies: dict[str, np.ndarray] = field(init=False)

    def __post_init__(self) -> None:
        n = self.n
        if self.home is None:
            self.home = np.zeros(n, bool)
        if self.session_kwh is None:
            self.session_kwh = np.full(n, np.inf)
        if self.plug_u is None:
            self.plug_u = np.zeros(n)
        self.soc_start = self.soc.copy()
        f = lambda: np.zeros(n)  # noqa: E731
        self.tallies = {"wait_s": f(), "charge_s": f(), "stored_kwh": f(), "delivered_kwh": f(),
                        "requested_kwh": f(), "distance_m": f(), "drive_s": f(), "charges": f(), "abandoned": f(),
                        "ran_flat": f(), "unroutable": f(), "need_node": np.full(n, -1.0),
                        "wish_node": np.full(n, -1.0), "wish_kwh": f(), "done": f(), "declined_full": f()}

    @property
    def n(self) -> int:
        return int(self.vtype.size)


def draw_fleet(cfg: EVConfig, rng: np.random.Generator, origins: np.ndarray, dests: np.ndarray,
               depart_s: np.ndarray, dwell_mu_sigma_h: tuple[float, float],
               energy_mu_sigma_kwh: tuple[float, float] = (1.83, 0.87)) -> Fleet:
    """One EV per trip: a vehicle type by share, home charging (Bernoulli), a Beta initial SoC (home chargers
    fuller), a lognormal dwell (h) and session energy (kWh) from the fitted class, and the plug-in draw."""
    n = origins.size
    types = cfg.vehicle_types
    p = np.array([t.share for t in types], float)
    vt = rng.choice(len(types), size=n, p=p / p.sum())
    arr = lambda attr: np.array([getattr(t, attr) for t in types], float)[vt]  # noqa: E731
    a, b = beta_params(cfg.soc_init_mean, cfg.soc_init_sd)
    soc = np.clip(rng.beta(a, b, size=n), 0.02, 1.0)
    mu, sigma = dwell_mu_sigma_h
    dwell = np.exp(rng.normal(mu, sigma, size=n)) * 3600.0 * cfg.dwell_scale
    home = rng.random(n) < cfg.home_charging_share
    ah, bh = beta_params(cfg.home_soc_mean, cfg.home_soc_sd)
    soc_home = np.clip(rng.beta(ah, bh, size=n), 0.02, 1.0)
    soc = np.where(home, soc_home, soc)
    em, es = energy_mu_sigma_kwh
    session = np.exp(rng.normal(em, es, size=n))
    plug_u = rng.random(n)
    return Fleet(vt.astype(np.int16), arr("battery_kwh"), arr("kwh_per_km"), arr("speed_coeff"), arr("ac_max_kw"),
                 arr("dc_max_kw"), origins.astype(np.int64), dests.astype(np.int64), depart_s.astype(float),
                 np.clip(dwell, 300.0, 24 * 3600.0), soc, home, session, plug_u)
