"""The emergency domain on the engine: congestion slows units down; Bad Hersfeld runs with its real stations."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from agents.emergency.planning import suggest_stations
from twin.engine import CityTwin
from twin.scenario import deep_merge, load_document, resolve_variants

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "scenarios" / "examples" / "emergency.yaml"


def _grid_run(backend: str, trips: int):
    doc = {"name": "em_congestion", "seed": 3,
           "city": {"source": "grid", "grid": {"nx": 10, "ny": 10, "spacing_m": 300}, "capacity_per_lane_vph": 300},
           "time": {"start": "08:00", "duration_s": 3600, "record_interval_s": 600},
           "demand": {"trips": trips},
           # neutral junction parameters: the test is about congestion, not the calibrated junction delays
           "traffic": {"backend": backend, "speed_scale": 1.0},
           "emergency": {"stations_from_osm": False, "hospitals_from_osm": False,
                         "stations": [{"name": "A", "node": "n0_0", "units": [{"type": "ambulance", "count": 20}]}],
                         "incident_types": {"medical": {"rate_per_day": 2000, "transport_prob": 0.0,
                                                        "on_scene_s": 300}},
                         "hourly_profile": [1.0] * 24}}
    twin = CityTwin(resolve_variants(doc, ROOT / "scenarios" / "x.yaml")["baseline"], ROOT / "scenarios")
    return twin.run(), twin


def test_response_times_grow_with_congestion():
    """Same calls, enough units: heavy meso traffic makes units slower and shrinks coverage vs free flow."""
    free, _ = _grid_run("freeflow", 0)
    jam, twin = _grid_run("meso", 15000)
    assert twin.kpis()["traffic"]["mean_delay"].value > 60  # the network really is congested
    np.testing.assert_array_equal(free["em_call_time"].values, jam["em_call_time"].values)
    w = free["em_wait_time"].values
    assert (w[np.isfinite(w)] == 0).all()
    w = jam["em_wait_time"].values  # slow drives keep units busy longer: at most a few calls wait
    assert np.mean(w[np.isfinite(w)] > 0) < 0.05
    drive = lambda ds: (ds["em_arrival_time"] - ds["em_dispatch_time"]).values  # noqa: E731
    assert np.nanmean(drive(jam)) > 1.1 * np.nanmean(drive(free))
    assert np.nanmedian(jam["em_response_time"].values) > np.nanmedian(free["em_response_time"].values)
    assert jam["em_coverage"].values.min() < free["em_coverage"].values.min() == pytest.approx(1.0)


def test_bad_hersfeld_real_stations_results_and_suggestion():
    """The example scenario places OSM stations/hospitals, records KPIs, and a suggestion runs as a variant."""
    doc = load_document(EXAMPLE)
    variants = doc.pop("variants")
    doc = deep_merge(doc, {"time": {"duration_s": 1800, "record_interval_s": 900}, "demand": {"trips": 300},
                           "emergency": {"demand_scale": 100.0}})
    sc = resolve_variants(doc, EXAMPLE)["baseline"]
    twin = CityTwin(sc, EXAMPLE.parent)
    ds = twin.run()
    em = twin.domains["emergency"]
    names = {s.name: s.kind for s in em.stations}
    assert names["Rettungswache 1a Europaallee"] == "ambulance" and names["DRK-Rettungswache"] == "ambulance"
    assert sum(k == "fire" for k in names.values()) == 4
    assert [h.name for h in em.hospital_sites] == ["Klinikum Bad Hersfeld"]
    assert ds.sizes["incident"] > 10 and "kpi_emergency_within_target" in ds
    assert (ds["em_incident_status"].values == "served").any()
    sug = suggest_stations(twin, k=1)
    assert len(sug.sites) == 1 and sug.coverage_after >= sug.coverage_before
    assert sug.sites[0]["mean_time_saved_s"] > 0
    doc["variants"] = {"suggested": sug.override, "new_station": variants["new_station"]}
    resolved = resolve_variants(doc, EXAMPLE)
    extra = resolved["suggested"].domain_configs["emergency"].extra_stations
    assert [s.name for s in extra] == ["suggested-1"]
    assert resolved["new_station"].domain_configs["emergency"].city_errors(twin.city) == []
