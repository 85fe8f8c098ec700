"""SUMO route files as demand: flows expand as SUMO inserts them, clock-time files run their trips or are refused."""
from __future__ import annotations

import textwrap
from pathlib import Path

import numpy as np
import pytest

from networks.sumo_routes import load_sumo_trips, sumo_time_s
from networks.synthetic import grid
from twin.cli import main

ROOT = Path(__file__).resolve().parent.parent

SCENARIO = """\
name: routes
seed: 5
city: {source: grid, grid: {nx: 4, ny: 4, spacing_m: 200}, zone_cell_m: 400}
time: {start: "15:00", duration_s: 1800, step_s: 1, record_interval_s: 300}
demand: {trips_file: trips.rou.xml}
traffic: {backend: meso}
"""


@pytest.fixture(scope="module")
def city():
    return grid(4, 4, spacing_m=200)


def _file(tmp_path: Path, body: str, name: str = "trips.rou.xml") -> Path:
    p = tmp_path / name
    p.write_text(f"<routes>\n{textwrap.dedent(body)}\n</routes>\n")
    return p


def test_sumo_times():
    """Seconds and SUMO clock strings (h:m:s, d:h:m:s) parse; non-fixed departures are None."""
    assert sumo_time_s("54000") == 54000.0 and sumo_time_s("15:00:00") == 54000.0
    assert sumo_time_s("1:00:00:30") == 86430.0 and sumo_time_s("now") is None
    assert sumo_time_s(None, 7.0) == 7.0


def test_flows_expand_like_sumo(tmp_path, city):
    """number, vehsPerHour and period spread departures evenly; route ids, routes and from/to all work."""
    ids = city.link_ids
    a = city.arrays
    l0, l1 = 0, int(a.out_links[a.out_indptr[a.link_to[0]]])
    path = _file(tmp_path, f"""
      <route id="r0" edges="{ids[l0]} {ids[l1]}"/>
      <flow id="n" begin="0" end="100" number="4" route="r0"/>
      <flow id="v" begin="10" end="40" vehsPerHour="360" from="{ids[l1]}" to="{ids[l1]}"/>
      <flow id="p" begin="0:00:05" end="0:00:35" period="10"><route edges="{ids[l0]}"/></flow>
      <flow id="rail" begin="0" end="10" number="2" from="nosuchedge" to="{ids[l0]}"/>""")
    t = load_sumo_trips(path, city)
    by = {i: d for i, d in zip(t["id"], t["depart_s"])}
    assert [by[f"n.{k}"] for k in range(4)] == [0, 25, 50, 75]
    assert [by[f"v.{k}"] for k in range(3)] == [10, 20, 30]
    assert [by[f"p.{k}"] for k in range(3)] == [5, 15, 25]
    assert len(t["id"]) == 10 and t["flows"] == 4 and t["skipped"] == 2  # the two 'rail' vehicles
    k = list(t["id"]).index("n.0")
    assert t["origin"][k] == a.link_from[l0] and t["destination"][k] == a.link_to[l1]


def test_random_flows_follow_the_seed(tmp_path, city):
    """probability and exp(rate) flows: same seed, same departures; their counts match the rate."""
    e = city.link_ids[0]
    path = _file(tmp_path, f"""
      <flow id="b" begin="0" end="3600" probability="0.1" from="{e}" to="{e}"/>
      <flow id="x" begin="0" end="3600" period="exp(0.05)" from="{e}" to="{e}"/>""")
    t1 = load_sumo_trips(path, city, np.random.default_rng(1))
    t2 = load_sumo_trips(path, city, np.random.default_rng(1))
    t3 = load_sumo_trips(path, city, np.random.default_rng(2))
    assert np.array_equal(t1["depart_s"], t2["depart_s"]) and not np.array_equal(t1["depart_s"], t3["depart_s"])
    nb = sum(i.startswith("b.") for i in t1["id"])
    nx_ = sum(i.startswith("x.") for i in t1["id"])
    assert abs(nb - 360) < 4 * np.sqrt(360 * 0.9) and abs(nx_ - 180) < 4 * np.sqrt(180)


def test_clock_time_route_file_runs_its_trips(tmp_path, capsys, city):
    """Departures 54,000-55,200 s (15:00-15:20) in a scenario starting 15:00 are shifted, with a message."""
    import xarray as xr

    ids = city.link_ids
    _file(tmp_path, f"""
      <flow id="f" begin="15:00:00" end="15:20:00" number="40" from="{ids[0]}" to="{ids[30]}"/>
      <vehicle id="v" depart="54600"><route edges="{ids[5]} {ids[12]}"/></vehicle>""")
    (tmp_path / "s.yaml").write_text(SCENARIO)
    assert main(["validate", str(tmp_path / "s.yaml")]) == 0
    out = tmp_path / "out"
    rc = main(["run", str(tmp_path / "s.yaml"), "--out", str(out), "--quiet", "--no-report"])
    err = capsys.readouterr().err
    assert rc == 0, err
    assert "clock times" in err and "trips.rou.xml" in err and "54,000" in err
    ds = xr.open_dataset(out / "routes" / "routes.nc").sel(variant="baseline")
    dep = np.sort(ds.trip_depart.values[~np.isnan(ds.trip_depart.values)])
    assert ds.sizes["trip"] == 41 and dep[0] == 0.0 and dep[-1] == pytest.approx(1170.0)
    assert float(ds.kpi_traffic_trips_completed) == 41


@pytest.mark.parametrize("depart", ["72000", "3:00:00"])
def test_route_file_outside_the_run_is_refused(tmp_path, capsys, city, depart):
    """Departures in neither the run's window nor its clock window: exit 2 naming the file and the range."""
    _file(tmp_path, f'<trip id="t" depart="{depart}" from="{city.link_ids[0]}" to="{city.link_ids[30]}"/>')
    (tmp_path / "s.yaml").write_text(SCENARIO)
    for cmd in (["validate", str(tmp_path / "s.yaml")],
                ["run", str(tmp_path / "s.yaml"), "--out", str(tmp_path / "out"), "--quiet"]):
        rc = main(cmd)
        err = capsys.readouterr().err
        assert rc == 2, err
        assert "trips.rou.xml" in err and f"{sumo_time_s(depart):,.0f}" in err and "Traceback" not in err
    assert not (tmp_path / "out").exists()


def test_route_file_with_no_usable_trip_is_refused(tmp_path, capsys):
    """A file whose entries all use edges the city lacks would run zero trips: refused with exit 2."""
    _file(tmp_path, '<trip id="t" depart="0" from="nosuch" to="other"/>')
    (tmp_path / "s.yaml").write_text(SCENARIO)
    rc = main(["run", str(tmp_path / "s.yaml"), "--out", str(tmp_path / "out"), "--quiet"])
    err = capsys.readouterr().err
    assert rc == 2 and "no trip" in err and "trips.rou.xml" in err
    assert not (tmp_path / "out").exists()


def test_wildau_counted_flows_load_in_clock_time():
    """The shipped Wildau demand: 100 flows, 2,286 road vehicles 15:00-16:00 (216 rail vehicles skipped), clock times."""
    from networks.sumo_net import load_sumo_net

    city = load_sumo_net(ROOT / "data" / "wildau" / "Netzmodell2.net.xml.gz")
    t = load_sumo_trips(ROOT / "data" / "wildau" / "flows_SUMOV2.2.rou.xml.gz", city)
    assert t["flows"] == 100 and len(t["id"]) == 2286 and t["skipped"] == 216  # 5 of the flows are trains
    assert t["depart_s"].min() == 54000.0 and t["depart_s"].max() < 57600.0
