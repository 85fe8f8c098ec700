"""Battery physics in vectorised numpy: the charging curve (constant power, then a linear taper) and
the speed-dependent driving consumption that lowers the state of charge after every trip.

The taper follows ACN-Sim's ``Linear2StageBattery`` and SUMO's SoC-dependent charge curves: full power
up to ``taper_soc``, then falling linearly to ``floor`` x full power at SoC 1 (a floor > 0 keeps the
time to reach a target finite, as real chargers do with their minimum current).
"""
from __future__ import annotations

import numpy as np

__all__ = ["max_charge_kw", "consumption_kwh_per_km", "trip_energy_kwh", "REF_SPEED_MPS"]

REF_SPEED_MPS = 50.0 / 3.6  # speed at which a vehicle type's nominal consumption applies (urban 50 km/h)


def max_charge_kw(soc: np.ndarray | float, p_max_kw: np.ndarray | float, taper_soc: np.ndarray | float = 0.8,
                  floor: float = 0.05) -> np.ndarray:
    """Largest power (kW, battery side) a battery accepts at state of charge ``soc`` (0..1)."""
    soc = np.asarray(soc, dtype=np.float64)
    taper = np.asarray(taper_soc, dtype=np.float64)
    frac = np.where(soc <= taper, 1.0, (1.0 - soc) / np.maximum(1.0 - taper, 1e-9))
    return np.asarray(p_max_kw, dtype=np.float64) * np.clip(frac, floor, 1.0)


def consumption_kwh_per_km(speed_mps: np.ndarray | float, nominal_kwh_per_km: np.ndarray | float,
                           speed_coeff: np.ndarray | float = 0.25) -> np.ndarray:
    """Consumption (kWh/km) at a mean trip speed: nominal x ((1 - c) + c (v / v_ref)^2).

    ``c`` is the share of the nominal consumption due to aerodynamic drag at 50 km/h; 0 makes
    consumption speed-independent. Speeds are clipped to 2..45 m/s so a stalled trip stays finite.
    """
    v = np.clip(np.asarray(speed_mps, dtype=np.float64), 2.0, 45.0)
    c = np.asarray(speed_coeff, dtype=np.float64)
    return np.asarray(nominal_kwh_per_km, dtype=np.float64) * ((1.0 - c) + c * (v / REF_SPEED_MPS) ** 2)


def trip_energy_kwh(distance_m: np.ndarray | float, duration_s: np.ndarray | float,
                    nominal_kwh_per_km: np.ndarray | float, speed_coeff: np.ndarray | float = 0.25) -> np.ndarray:
    """Energy (kWh) a trip of ``distance_m`` taking ``duration_s`` draws from the battery."""
    d = np.asarray(distance_m, dtype=np.float64)
    v = d / np.maximum(np.asarray(duration_s, dtype=np.float64), 1.0)
    return consumption_kwh_per_km(v, nominal_kwh_per_km, speed_coeff) * d / 1000.0
