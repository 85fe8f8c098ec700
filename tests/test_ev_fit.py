"""The session fitter recovers known arrival, dwell and energy parameters from synthetic sessions."""
import numpy as np
import pandas as pd

from agents.ev.fit_sessions import fit_sessions, power_class_kw


def test_fit_recovers_known_parameters():
    """Lognormal dwell/energy and the hourly arrival shares come back within sampling error."""
    rng = np.random.default_rng(7)
    n, days = 20000, 100
    share = np.r_[np.full(8, 0.01), np.full(10, 0.08), np.full(6, (1 - 0.08 - 0.8) / 6)]
    day = rng.integers(0, days, n)
    hour = rng.choice(24, n, p=share / share.sum())
    start = pd.Timestamp("2020-01-01") + pd.to_timedelta(day * 86400 + hour * 3600 + rng.integers(0, 3600, n), "s")
    dwell_h = np.exp(rng.normal(0.5, 0.6, n))
    energy = np.exp(rng.normal(2.0, 0.5, n))
    df = pd.DataFrame({"station": rng.integers(0, 10, n).astype(str), "start": start,
                       "end": start + pd.to_timedelta(dwell_h * 3600, "s"), "energy_kwh": energy, "power_kw": 7.0})
    f = fit_sessions(df)
    kept = f["n_sessions"] / n
    assert kept > 0.99  # the plausibility filter barely bites on clean data
    assert abs(f["dwell_h"]["mu"] - 0.5) < 0.02 and abs(f["dwell_h"]["sigma"] - 0.6) < 0.02
    assert abs(f["energy_kwh"]["mu"] - 2.0) < 0.02 and abs(f["energy_kwh"]["sigma"] - 0.5) < 0.02
    assert np.allclose(f["hourly_share"], share / share.sum(), atol=0.01)
    assert abs(f["arrivals_per_charger_day"] - n / 10 / (days - 1)) / (n / 10 / days) < 0.03


def test_power_class_from_model_names():
    """Dundee charger model names map to 7, 22 and 50 kW classes."""
    assert power_class_kw("APT 7kW Dual Outlet") == 7.0
    assert power_class_kw("APT 22kW Dual Outlet") == 22.0
    assert power_class_kw("APT 50kW Raption") == 50.0
    assert power_class_kw("APT Triple Rapid Charger") == 50.0
