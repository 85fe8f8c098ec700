"""Replaying the shipped real session log through the station model reproduces the log itself."""
import numpy as np

from agents.ev.replay import load_log, log_hourly_occupancy, replay


def test_replay_reproduces_hourly_occupancy():
    """With enough plugs and no limit, hourly plug occupancy equals the log's and every feasible kWh is delivered."""
    log = load_log()
    n_hours = int(np.ceil(log.departure_s.max() / 3600.0)) + 1
    want = log_hourly_occupancy(log, n_hours)
    r = replay(log, plugs=int(want.max() * 2 + 10), plug_kw=50.0, policy="uncontrolled", dt_s=60.0)
    got = r.hourly_busy[:n_hours]
    assert np.allclose(got, want, atol=1e-6), np.abs(got - want).max()
    assert r.waits_s.max() == 0.0 and not r.abandoned.any()
    # each session gets its energy, or as much as 50 kW can give over its (real) stay (stays >= 2 control periods)
    feasible = np.minimum(log.energy_kwh, 50.0 * (log.departure_s - log.arrival_s) / 3600.0)
    assert np.allclose(r.delivered_kwh, feasible, rtol=1e-9, atol=1e-9)
    assert np.isclose(r.hourly_energy_kwh.sum(), r.energy_kwh, rtol=1e-9)


def test_site_limit_holds_on_real_sessions():
    """Under LLF the site never draws above its limit; uncontrolled does and its overload is counted."""
    log = load_log().snapped(300.0)
    llf = replay(log, plugs=14, policy="llf", limit_kw=15.0)
    unc = replay(log, plugs=14, policy="uncontrolled", limit_kw=15.0)
    assert llf.peak_kw <= 15.0 + 1e-9 and llf.overload_kwh == 0.0
    assert unc.peak_kw > 15.0 and unc.overload_kwh > 0.0
    assert llf.energy_kwh < unc.energy_kwh <= log.energy_kwh.sum() + 1e-6
    assert np.all(llf.hourly_energy_kwh <= 15.0 + 1e-6)
