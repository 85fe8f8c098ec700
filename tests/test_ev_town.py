"""Town-level EV inputs: public plugs filled up to a register density (greedy covering of building weight), a
low EV sent to a fast charger, and the fitted references over a clock window (agents.ev.reference)."""
import json
from pathlib import Path

import numpy as np
import pytest

from agents.ev.config import EVConfig
from agents.ev.reference import class_window, comparison_rows, model_window
from agents.ev.siting import fill_rows, node_weights, station_rows
from agents.ev.warm import occupancy_at
from twin.engine import CityTwin
from twin.scenario import resolve_variants

ROOT = Path(__file__).resolve().parents[1]
PARAMS = json.loads((ROOT / "data" / "ev" / "session_params.json").read_text())


def _grid_doc(**ev) -> dict:
    return {"name": "ev_town", "seed": 3,
            "city": {"source": "grid", "grid": {"nx": 8, "ny": 8, "spacing_m": 300}},
            "time": {"start": "16:00", "duration_s": 3 * 3600, "record_interval_s": 900},
            "demand": {"trips": 300},
            "traffic": {"backend": "freeflow"},
            "ev": {"share": 1.0, "stations": [{"node": "n0_0", "plugs": 2, "power_kw": 22.0}], **ev}}


def _twin(**ev) -> CityTwin:
    return CityTwin(resolve_variants(_grid_doc(**ev), ROOT / "scenarios" / "x.yaml")["baseline"], ROOT / "scenarios")


def test_fill_reaches_the_town_totals_and_covers_the_heaviest_places_first():
    """AC and DC plugs are filled up to the totals exactly, in sites of the given size; the first added site covers
    the most node weight not yet within walk_m of a station; the fill is deterministic."""
    twin = _twin()
    city = twin.city
    cfg = EVConfig(stations=[{"node": "n0_0", "plugs": 2, "power_kw": 22.0}], town_ac_plugs=9, town_dc_plugs=5,
                   fill_ac_site=(2, 22.0), fill_dc_site=(4, 150.0), walk_m=400.0)
    rows = station_rows(city, cfg)
    ac = sum(r["plugs"] for r in rows if r["power_kw"] <= 22.0)
    dc = sum(r["plugs"] for r in rows if r["power_kw"] > 22.0)
    assert (ac, dc) == (9, 5)
    added = [r for r in rows if r["id"].startswith("fill_")]
    assert [r["plugs"] for r in added] == [2, 2, 2, 1, 4, 1]
    assert rows == station_rows(city, cfg)  # no random draws
    # the first added site: no other node covers more uncovered weight (straight-line walk_m)
    a = city.arrays
    xy = np.column_stack([a.node_x, a.node_y])
    w = node_weights(city)
    covered = np.hypot(*(xy - xy[city.node_index("n0_0")]).T) <= 400.0
    gain = [w[(np.hypot(*(xy - xy[j]).T) <= 400.0) & ~covered].sum() for j in range(len(w))]
    assert gain[added[0]["node"]] == pytest.approx(max(gain))
    # no totals, or totals already met: nothing added
    assert fill_rows(city, EVConfig(), rows[:1]) == []
    assert fill_rows(city, EVConfig(town_ac_plugs=1), rows[:1]) == []


def test_bad_fill_site_is_an_error():
    with pytest.raises(ValueError, match="fill_ac_site"):
        EVConfig(fill_ac_site=(2, 50.0))
    with pytest.raises(ValueError, match="fill_dc_site"):
        EVConfig(fill_dc_site=(0, 150.0))


def test_a_low_ev_goes_to_the_fast_charger():
    """Smart choice weighs charging time: a low EV before its trip picks the DC site although an AC site is nearer."""
    twin = _twin(stations=[{"node": "n1_1", "plugs": 4, "power_kw": 22.0},
                           {"node": "n5_5", "plugs": 4, "power_kw": 150.0}], trips=40,
                 home_charging_share=0.0, soc_init_mean=0.1, soc_init_sd=0.03, charge_below_soc=0.2,
                 warm_start=False, choice="smart", destination_charge_below_soc=0.0)
    twin.run()
    dom = twin.domains["ev"]
    en_route = [a for a in dom.attempts if a.kind == "en_route"]
    assert len(en_route) > 10
    dc = sum(dom.stations[a.station].power_kw > 22.0 for a in en_route)
    assert dc / len(en_route) > 0.8
    # with `nearest` (drive time only) most go to whichever site is nearer, so AC takes a real share
    twin2 = _twin(stations=[{"node": "n1_1", "plugs": 4, "power_kw": 22.0},
                            {"node": "n5_5", "plugs": 4, "power_kw": 150.0}], trips=40,
                  home_charging_share=0.0, soc_init_mean=0.1, soc_init_sd=0.03, charge_below_soc=0.2,
                  warm_start=False, choice="nearest", destination_charge_below_soc=0.0)
    twin2.run()
    d2 = twin2.domains["ev"]
    er2 = [a for a in d2.attempts if a.kind == "en_route"]
    assert sum(d2.stations[a.station].power_kw <= 22.0 for a in er2) / len(er2) > 0.2


def test_class_window_is_arrivals_times_share_and_mean_occupancy():
    cls = PARAMS["classes"]["boulder_7kW"]
    share = np.asarray(cls["hourly_share"], float)
    r = class_window(cls, 16.0, 19.0)
    assert r["plug_ins_per_plug"] == pytest.approx(cls["arrivals_per_charger_day"] * share[16:19].sum() / share.sum())
    occ = [occupancy_at(cls, h) for h in (16.0, 17.0, 18.0, 19.0)]
    assert min(occ) - 1e-9 <= r["occupancy"] <= max(occ) + 1e-9
    day = class_window(cls, 0.0, 24.0)
    assert day["plug_ins_per_plug"] == pytest.approx(cls["arrivals_per_charger_day"])


def test_model_window_and_rows_on_a_run():
    """Plug-ins per plug and occupancy per AC/DC from the attempt records equal the KPIs' definitions."""
    twin = _twin(stations=[{"node": "n3_3", "plugs": 3, "power_kw": 22.0},
                           {"node": "n6_6", "plugs": 2, "power_kw": 150.0}],
                 home_charging_share=0.0, soc_init_mean=0.3, plug_dwell_h=0.5, walk_m=900)
    ds = twin.run()
    k = twin.kpis()["ev"]
    m = model_window(ds, 3 * 3600.0)
    assert m["AC"]["plugs"] == 3 and m["DC"]["plugs"] == 2
    # plugged EV attempts over all plugs = the KPI
    total = m["AC"]["plug_ins_per_plug"] * 3 + m["DC"]["plug_ins_per_plug"] * 2
    assert total == pytest.approx(k["sessions_started"].value)
    occ = (m["AC"]["occupancy"] * 3 + m["DC"]["occupancy"] * 2) / 5
    assert occ == pytest.approx(k["plug_occupancy"].value, rel=1e-6)
    rows = comparison_rows(ds, PARAMS, 16.0, 3 * 3600.0, population=30_000)
    assert [r[0] for r in rows][-2:] == ["public AC plugs", "public DC plugs"]
    assert rows[-2][2] == "45" and rows[-1][2] == "13"
