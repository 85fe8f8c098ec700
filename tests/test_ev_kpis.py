"""EV KPI definitions on hand-made attempts, and on the real engine: home charging removes public demand,
attempts add up to their outcomes, the warm start matches the fitted occupancy."""
import json
import math
from pathlib import Path

import numpy as np
import pytest
from scipy.integrate import quad
from scipy.stats import norm

from agents.ev.attempts import (
    Attempt,
    demand_met,
    outcome,
    outcome_counts,
    plug_occupancy,
    receivable_kwh,
    unserved_evs,
    wait_s,
)
from agents.ev.warm import draw_warm_sessions, occupancy_at
from twin.engine import CityTwin
from twin.scenario import resolve_variants

ROOT = Path(__file__).resolve().parents[1]
PARAMS = json.loads((ROOT / "data" / "ev" / "session_params.json").read_text())["classes"]


def _hand_made() -> list[Attempt]:
    """Four EVs, 11 kW (battery side), run ends at t = 10,000 s."""
    return [
        # charged: plugged 0..3600 s, asked 20 kWh, could get 11 kWh in the hour, got 10
        Attempt(0, 0, "destination", 0.0, 20.0, 11.0, 3600.0, t_plug_s=0.0, t_end_s=3600.0, stored_kwh=10.0),
        # abandoned after 300 s in the queue
        Attempt(1, 0, "destination", 100.0, 5.0, 11.0, 7200.0, t_end_s=400.0, abandoned=True),
        # still plugged at the end: plugged at 9,000 s for a 2 h stay -> 1,000 s left in the run -> 11/3.6 kWh
        Attempt(2, 0, "destination", 9000.0, 30.0, 11.0, 7200.0, t_plug_s=9000.0, stored_kwh=2.0),
        # still queued at the end
        Attempt(3, 0, "en_route", 9500.0, 8.0, 11.0, None),
    ]


def test_outcomes_add_up_on_a_hand_made_case():
    """Each attempt has exactly one outcome; the counts add up to the attempts."""
    att = _hand_made()
    assert [outcome(a) for a in att] == ["charged", "abandoned", "plugged", "queued"]
    c = outcome_counts(att)
    assert c == {"charged": 1, "abandoned": 1, "plugged": 1, "queued": 1}
    assert sum(c.values()) == len(att)


def test_receivable_and_demand_met_on_a_hand_made_case():
    """Demand met = stored / what each plugged stay could physically receive (not the full request)."""
    att = _hand_made()
    t_end = 10_000.0
    rec = [receivable_kwh(a, t_end) for a in att]
    assert rec[0] == pytest.approx(11.0)  # capped by power x 1 h, not by the 20 kWh asked
    assert rec[1] == 0.0 and rec[3] == 0.0  # never plugged in
    assert rec[2] == pytest.approx(11.0 * 1000.0 / 3600.0)  # cut by the end of the run
    assert demand_met(att, t_end) == pytest.approx(12.0 / (11.0 + 11.0 / 3.6))
    # an en-route attempt that was unplugged received its whole request
    a = Attempt(4, 0, "en_route", 0.0, 8.0, 47.5, None, t_plug_s=0.0, t_end_s=700.0, stored_kwh=8.0)
    assert receivable_kwh(a, t_end) == 8.0
    assert demand_met([], t_end) == 1.0


def test_unserved_counts_only_evs_that_needed_and_never_plugged():
    """EV 1 needed a charge and gave up; EV 2 needed one and is plugged at the end (served); EV 4 never needed."""
    needed = np.array([False, True, True, True, False])
    assert unserved_evs(needed, _hand_made()) == 2  # EVs 1 and 3 (EV 3: queued at the end)
    assert plug_occupancy(5.5, 11, 3600.0) == pytest.approx(0.5)
    # waits: to plug-in, to giving up, and still queued to the end of the run
    assert [wait_s(a, 10_000.0) for a in _hand_made()] == [0.0, 300.0, 0.0, 500.0]


def test_warm_start_matches_the_fitted_occupancy():
    """Sessions drawn at 16:00 over many plugs have the M(t)/G/inf occupancy; stays and energies are positive."""
    cls = PARAMS["dundee_7kW"]
    occ = occupancy_at(cls, 16.0)
    # the time mean over a day equals arrivals per plug-day x mean dwell (Little's law; dwell capped at the 72 h
    # horizon the model looks back: E[min(D, 72)] = integral of the lognormal survival function over 0..72 h)
    day_mean = np.mean([occupancy_at(cls, h + 0.5) for h in np.arange(0, 24, 0.25)])
    mu, sigma = cls["dwell_h"]["mu"], cls["dwell_h"]["sigma"]
    mean_dwell_h = quad(lambda u: norm.sf((math.log(u) - mu) / sigma), 0, 72)[0]
    assert day_mean == pytest.approx(cls["arrivals_per_charger_day"] * mean_dwell_h / 24, rel=0.02)
    n = 20_000
    s = draw_warm_sessions(cls, 16.0, n, 7.0, np.random.default_rng(1))
    p = len(s) / n
    assert abs(p - occ) < 4 * math.sqrt(occ * (1 - occ) / n)
    assert all(stay > 0 and kwh >= 0 for _, stay, kwh in s)


def _grid_doc(**ev) -> dict:
    return {"name": "ev_kpi", "seed": 4,
            "city": {"source": "grid", "grid": {"nx": 6, "ny": 6, "spacing_m": 400}},
            "time": {"start": "16:00", "duration_s": 2 * 3600, "record_interval_s": 900},
            "demand": {"trips": 400},
            "traffic": {"backend": "freeflow"},
            "ev": {"share": 1.0, "stations": [{"node": "n2_2", "plugs": 2, "power_kw": 11.0},
                                               {"node": "n4_3", "plugs": 2, "power_kw": 22.0}],
                   "walk_m": 900, **ev}}


def _run(**ev):
    twin = CityTwin(resolve_variants(_grid_doc(**ev), ROOT / "scenarios" / "x.yaml")["baseline"], ROOT / "scenarios")
    ds = twin.run()
    return ds, twin.kpis()["ev"], twin.domains["ev"]


def test_home_charging_with_full_batteries_gives_no_public_demand():
    """Everyone charges at home and starts nearly full: no attempt, no energy; without home charging there is demand."""
    ds, k, _ = _run(home_charging_share=1.0, home_soc_mean=0.95, home_soc_sd=0.02, warm_start=False)
    assert k["home_charging_share"].value == 1.0
    assert k["attempts"].value == 0 and k["energy_delivered_kwh"].value == 0.0
    assert float(ds["ev_requested"].sum()) == 0.0 and k["unserved"].value == 0
    _, k0, _ = _run(home_charging_share=0.0, soc_init_mean=0.3, warm_start=False, plug_dwell_h=0.5)
    assert k0["attempts"].value > 20 and k0["energy_delivered_kwh"].value > 0


def test_engine_kpis_add_up():
    """On the engine: attempts = sum of outcomes; started = charged + plugged; unserved <= EVs that needed one;
    warm-start sessions are attempt records without an EV and stay out of the fleet's counts."""
    ds, k, _ = _run(home_charging_share=0.5, soc_init_mean=0.3, choice="nearest", destination_patience_s=120)
    outs = ds["ev_attempt_outcome"].values[ds["ev_attempt_ev"].values >= 0]
    c = {o: int((outs == o).sum()) for o in ("charged", "abandoned", "plugged", "queued")}
    assert k["attempts"].value == len(outs) == sum(c.values()) > 0
    assert k["sessions_started"].value == c["charged"] + c["plugged"]
    assert k["warm_sessions"].value == int((ds["ev_attempt_ev"].values == -1).sum())
    assert k["sessions_finished"].value == c["charged"]
    assert k["attempts_abandoned"].value == c["abandoned"] > 0  # nearest + short patience: some give up
    assert k["unserved"].value == int(ds["ev_unserved"].sum()) <= int((ds["ev_need_node"] >= 0).sum())
    stored = ds["ev_attempt_stored"].values
    assert np.all(stored <= ds["ev_attempt_receivable"].values + 1e-9)
    assert 0 < k["demand_met"].value <= 1.0
    busy_h = float((ds["station_busy"] * 900 / 3600).sum())
    assert k["plug_occupancy"].value == pytest.approx(busy_h / (4 * 2), rel=1e-6)
