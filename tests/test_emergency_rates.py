"""German call rates on the engine: per-1,000 rates x population give the BASt call volume; at that rate two
ambulances wait as Erlang C says; the censored-aware KPIs add up and keep unreached calls."""
import math
from pathlib import Path

import numpy as np
import pytest

from agents.emergency.censored import censored_responses, km_quantile, waited
from agents.emergency.config import EmergencyConfig
from twin.engine import CityTwin
from twin.scenario import resolve_variants

ROOT = Path(__file__).resolve().parents[1]
BAST_PER_1000 = 169.0  # ambulance missions per 1,000 inhabitants a year (BASt 2016/17)
POP = 30_000


def erlang_c(c: int, a: float) -> float:
    """P(wait) in M/M/c with offered load ``a`` erlangs (independent reference formula)."""
    s = sum(a**k / math.factorial(k) for k in range(c))
    top = a**c / math.factorial(c) * c / (c - a)
    return top / (s + top)


def _run(seed: int, days: float = 7.0, **em):
    doc = {"name": "bast", "seed": seed,
           "city": {"source": "grid", "grid": {"nx": 2, "ny": 2, "spacing_m": 20}},
           "time": {"start": "00:00", "duration_s": days * 86400, "record_interval_s": 86400},
           "traffic": {"backend": "freeflow", "sync_interval_s": 3600, "reroute_interval_s": 86400},
           "emergency": {"stations_from_osm": False, "hospitals_from_osm": False, "population": POP,
                         "stations": [{"name": "A", "node": "n0_0", "units": [{"type": "ambulance", "count": 2}]}],
                         "call_handling_s": 0, "turnout_s": {"ambulance": 0}, "hourly_profile": [1.0] * 24,
                         "incident_types": {
                             "emergency": {"rate_per_1000_per_year": BAST_PER_1000 * 0.53, "on_scene_s": 1800,
                                           "on_scene_dist": "exponential", "transport_prob": 0},
                             "patient_transport": {"rate_per_1000_per_year": BAST_PER_1000 * 0.47, "priority": 5,
                                                   "target_s": None, "on_scene_s": 1800,
                                                   "on_scene_dist": "exponential", "transport_prob": 0}},
                         **em}}
    twin = CityTwin(resolve_variants(doc, ROOT / "scenarios" / "x.yaml")["baseline"], ROOT / "scenarios")
    ds = twin.run()
    return ds, twin.kpis()["emergency"]


def test_default_rates_are_the_german_ones():
    """Default categories: BASt ambulance missions split 53/47 (accidents inside the 53%), fire 6.8 per 1,000."""
    t = EmergencyConfig().incident_types
    amb = sum(v.rate_per_1000_per_year for k, v in t.items() if "ambulance" in v.units)
    assert amb == pytest.approx(169.0, abs=0.05)
    assert t["patient_transport"].target_s is None and t["patient_transport"].priority > t["emergency"].priority
    assert t["emergency"].target_s == 600.0 and t["fire"].rate_per_1000_per_year == 6.8


def test_erlang_c_at_the_bast_rate_with_two_ambulances():
    """30,000 people at 169 missions per 1,000 a year, 2 ambulances, exponential 30-min jobs, ~zero travel: the pooled
    share of calls that waited matches Erlang C at the measured load within a 3-sigma binomial interval."""
    waited_n = calls = 0
    busy = horizon = 0.0
    for seed in range(10):
        ds, _ = _run(seed)
        w = ds["em_wait_time"].values
        ok = np.isfinite(w)
        waited_n += int((w[ok] > 1e-6).sum())
        calls += int(ok.sum())
        busy += float(ds["em_unit_busy_time"].sum())
        horizon += 7 * 86400.0
    lam_per_day = BAST_PER_1000 * POP / 1000 / 365
    assert calls == pytest.approx(lam_per_day * 70, rel=4 / math.sqrt(lam_per_day * 70))  # Poisson count
    a = busy / horizon  # carried = offered load (no losses), erlangs
    assert a == pytest.approx(lam_per_day * 1800 / 86400, rel=0.15)
    p_theory = erlang_c(2, a)
    p = waited_n / calls
    assert abs(p - p_theory) <= 3 * math.sqrt(p_theory * (1 - p_theory) / calls), (p, p_theory, calls)
    assert abs(p - a) > 3 * math.sqrt(a * (1 - a) / calls)  # one ambulance (P(wait) = a) would be rejected


def test_censored_kpis_add_up_and_keep_unreached_calls():
    """An overloaded day (one ambulance, 20x the rate): calls = reached + censored + unreachable; the response
    percentiles do not drop the calls still waiting; waited share counts them as waited."""
    ds, k = _run(1, days=1.0, demand_scale=20.0,
                 stations=[{"name": "A", "node": "n0_0", "units": [{"type": "ambulance", "count": 1}]}])
    assert k["incidents"].value == k["calls_reached"].value + k["calls_censored"].value + k["unreachable"].value
    assert k["calls_censored"].value > 10
    resp = ds["em_response_time"].values
    urgent = np.isfinite(ds["em_target"].values)
    naive = float(np.nanmedian(resp[urgent]))  # reached calls only
    km = k["response_median_s"].value
    assert math.isnan(km) or km > naive
    assert str(int(urgent.sum())) in k["response_median_s"].label
    assert k["waited_share"].value > float(np.mean(ds["em_wait_time"].values[np.isfinite(resp)] > 0))
    assert 0.0 <= k["utilisation_ambulance"].value <= 1.0 and "utilisation_fire" not in k


def test_kaplan_meier_on_a_hand_made_case():
    """Five calls: reached at 100, 200, 400 s; one censored at 300 s; one unreachable (censored at infinity)."""
    call = np.zeros(5)
    arr = np.array([100.0, 200.0, np.nan, 400.0, np.nan])
    unreach = np.array([False, False, False, False, True])
    t, got = censored_responses(call, arr, unreach, 300.0)
    assert t.tolist() == [100.0, 200.0, 300.0, 400.0, math.inf] and got.tolist() == [1, 1, 0, 1, 0]
    # S: 0.8 after 100, 0.6 after 200, censoring at 300 leaves 2 at risk, 0.3 after 400
    assert km_quantile(t, got, 0.2) == 100.0 and km_quantile(t, got, 0.4) == 200.0
    assert km_quantile(t, got, 0.5) == 400.0 and math.isnan(km_quantile(t, got, 0.9))
    assert waited(np.array([10.0, 12.0, np.nan]), np.array([10.0, 11.0, 5.0])).tolist() == [0.0, 1.0, 1.0]
