"""Scenario files: variants deep-merge; each kind of bad input exits 2 with one clear line and writes nothing."""
from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from twin.cli import main
from twin.scenario import ScenarioError, deep_merge, load_scenario

ROOT = Path(__file__).resolve().parent.parent

GOOD = """\
name: tiny
seed: 3
city: {source: grid, grid: {nx: 4, ny: 4, spacing_m: 200}, zone_cell_m: 400}
time: {duration_s: 600, step_s: 1, record_interval_s: 300}
demand: {trips: 200}
traffic: {backend: meso}
variants:
  closed:
    description: one link closed
    traffic: {closures: [{link: "n1_1>n2_1", start_s: 0}]}
  busier: {demand: {scale: 2.0}}
"""


def _write(tmp_path: Path, text: str, name: str = "s.yaml") -> Path:
    p = tmp_path / name
    p.write_text(textwrap.dedent(text))
    return p


def test_variants_merge_onto_baseline(tmp_path):
    """A variant overrides only what it names; lists replace, dicts merge."""
    v = load_scenario(_write(tmp_path, GOOD))
    assert list(v) == ["baseline", "closed", "busier"]
    assert v["busier"].demand.scale == 2.0 and v["busier"].demand.trips == 200
    assert v["closed"].domain_configs["traffic"].closures[0].link == "n1_1>n2_1"
    assert v["baseline"].domain_configs["traffic"].closures == []
    assert deep_merge({"a": {"b": 1, "c": [1]}}, {"a": {"c": [2]}}) == {"a": {"b": 1, "c": [2]}}


BAD = [
    ("unknown key", GOOD.replace("seed: 3", "seed: 3\ncolour: red"), ["colour", "unknown key", "allowed keys"]),
    ("wrong type", GOOD.replace("trips: 200", "trips: lots"), ["demand.trips", "'lots'", "integer"]),
    ("out of range", GOOD.replace("step_s: 1,", "step_s: -1,"), ["time.step_s", "-1", "greater than 0"]),
    ("bad choice", GOOD.replace("backend: meso", "backend: vissim"), ["traffic.backend", "'vissim'", "'meso'"]),
    ("missing file", GOOD.replace("source: grid,", "source: sumo, path: nowhere.net.xml,"),
     ["city.path", "nowhere.net.xml", "file not found"]),
    ("unknown link", GOOD.replace('"n1_1>n2_1"', '"no-such-link"'),
     ["variants.closed.traffic.closures[0].link", "no-such-link", "not a link"]),
    ("bad variant key", GOOD.replace("busier: {demand: {scale: 2.0}}", "busier: {demand: {scael: 2.0}}"),
     ["variants.busier.demand.scael", "unknown key"]),
    ("path escapes", GOOD.replace("demand: {trips: 200}", "demand: {trips: 200, trips_file: /etc/passwd}"),
     ["demand.trips_file", "/etc/passwd", "leaves"]),
    ("not yaml", "name: [unclosed\n", ["YAML", "line"]),
    ("not a mapping", "- just\n- a list\n", ["(top level)", "mapping"]),
]


@pytest.mark.parametrize("label,text,expect", BAD, ids=[b[0] for b in BAD])
def test_bad_input_exits_2_names_file_key_value_and_writes_nothing(tmp_path, capsys, label, text, expect):
    path = _write(tmp_path, text)
    out = tmp_path / "out"
    rc = main(["run", str(path), "--out", str(out), "--quiet"])
    err = capsys.readouterr().err
    assert rc == 2
    assert str(path) in err
    for word in expect:
        assert word in err, f"{label}: {word!r} not in {err!r}"
    assert "Traceback" not in err
    assert not out.exists()


def test_unknown_zone_in_od_file_is_reported(tmp_path, capsys):
    (tmp_path / "od.csv").write_text("origin_zone,destination_zone,trips\nz0_0,z9_9,10\n")
    path = _write(tmp_path, GOOD.replace("demand: {trips: 200}", "demand: {od_file: od.csv}"))
    rc = main(["run", str(path), "--out", str(tmp_path / "out"), "--quiet"])
    err = capsys.readouterr().err
    assert rc == 2 and "z9_9" in err and "not a zone" in err
    assert not (tmp_path / "out").exists()


def test_validate_accepts_the_shipped_scenarios(capsys):
    for f in sorted((ROOT / "scenarios").glob("*.yaml")):
        assert main(["validate", str(f)]) == 0, capsys.readouterr().err


def test_run_writes_results_atomically_and_prints_kpis(tmp_path, capsys):
    import xarray as xr

    path = _write(tmp_path, GOOD)
    out = tmp_path / "out"
    assert main(["run", str(path), "--out", str(out), "--quiet", "--no-report"]) == 0
    stdout = capsys.readouterr().out
    nc = out / "tiny" / "tiny.nc"
    assert nc.is_file() and str(nc) in stdout
    assert "trips completed" in stdout and "busier" in stdout  # a variant column of the KPI table
    assert not list((out / "tiny").glob(".*.tmp"))  # no temp files left behind
    ds = xr.open_dataset(nc)
    assert list(ds["variant"].values) == ["baseline", "closed", "busier"]
    for name, var in ds.data_vars.items():
        assert "units" in var.attrs and "long_name" in var.attrs, name
    assert ds.attrs["scenario_name"] == "tiny" and len(ds.attrs["scenario_hash"]) > 0
    busier = ds["kpi_traffic_trips"].sel(variant="busier").item()
    assert busier == pytest.approx(2 * ds["kpi_traffic_trips"].sel(variant="baseline").item(), rel=0.05)


def test_scenario_error_is_an_exception_listing_every_problem(tmp_path):
    bad = GOOD.replace("trips: 200", "trips: -5").replace("step_s: 1,", "step_s: 0,")
    with pytest.raises(ScenarioError) as exc:
        load_scenario(_write(tmp_path, bad))
    assert len(exc.value.messages) == 2


def test_bologna_second_real_city_runs():
    """The Bologna district (real network, count-based SUMO demand) loads and runs; vehicles are conserved."""
    from twin.engine import CityTwin
    from twin.scenario import deep_merge, load_document, resolve_variants

    path = ROOT / "scenarios" / "bologna.yaml"
    doc = load_document(path)
    doc.pop("variants")
    doc = deep_merge(doc, {"time": {"duration_s": 900}})
    twin = CityTwin(resolve_variants(doc, path)["baseline"], path.parent)
    ds = twin.run(progress=None)
    c = twin.traffic.counts()
    assert c["total"] > 2000  # the first 15 minutes of the ~10,800 vehicles
    assert c["in_queues"] + c["priority_running"] == c["running"]
    assert ds["kpi_traffic_trips_completed"].item() > 0.5 * c["total"]
