"""run_scenario.py calibrate: bad counts exit 2 writing nothing; a synthetic recovery reproduces held-out
counts and the known trip total; the calibrated demand file runs with ``run``."""
from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest

from twin.cli import main

ROOT = Path(__file__).resolve().parent.parent
TOWN = """\
name: ctown
seed: 5
city: {source: grid, grid: {nx: 7, ny: 7, spacing_m: 250}, zone_cell_m: 500}
time: {start: "07:00", duration_s: 3600, step_s: 1, record_interval_s: 300}
demand: {trips: 3000, model: gravity, distance_decay_per_km: 0.3, end_s: 3000}
traffic: {backend: meso}
outputs: {dir: results, report: false}
variants:
  prior: {demand: {trips: 1800, distance_decay_per_km: 1.2}}
"""
L1, L2 = "n1_1>n2_1", "n2_1>n3_1"


@pytest.fixture
def town(tmp_path):
    p = tmp_path / "ctown.yaml"
    p.write_text(TOWN)
    return p


def _counts(tmp_path, rows: str) -> Path:
    p = tmp_path / "counts.csv"
    p.write_text("link,start,end,count\n" + rows)
    return p


@pytest.mark.parametrize("rows,words", [
    (f"{L1},07:00,08:00,-3\n{L2},07:00,08:00,50\n", ["row 2", "-3", ">= 0"]),
    (f"{L1},07:00,08:00,NaN\n{L2},07:00,08:00,50\n", ["row 2", "NaN", "finite"]),
    (f"B27,07:00,08:00,30\n{L2},07:00,08:00,50\n", ["row 2", "'B27'", "not a link"]),
    (f"{L1},07:00,08:00,30\n{L1},07:30,07:45,10\n", ["row 3", "overlaps"]),
    (f"{L1},06:00,07:00,30\n{L2},07:00,08:00,50\n", ["'n1_1>n2_1'", "outside the scenario's clock window"]),
])
def test_bad_counts_exit_2_and_write_nothing(town, tmp_path, capsys, rows, words):
    out = tmp_path / "out"
    rc = main(["calibrate", str(town), "--counts", str(_counts(tmp_path, rows)), "--out", str(out), "--quiet"])
    err = capsys.readouterr().err
    assert rc == 2 and not out.exists()
    assert "counts.csv" in err and all(w in err for w in words), err


def test_bad_options_and_variant_exit_2(town, tmp_path, capsys):
    c = _counts(tmp_path, f"{L1},07:00,08:00,30\n{L2},07:00,08:00,50\n")
    assert main(["calibrate", str(town), "--counts", str(c), "--variant", "nope", "--quiet"]) == 2
    assert "--variant 'nope'" in capsys.readouterr().err
    assert main(["calibrate", str(town), "--counts", str(c), "--holdout", "1.5", "--quiet"]) == 2
    assert "--holdout 1.5" in capsys.readouterr().err


def _recovery_module():
    spec = importlib.util.spec_from_file_location("calibration_recovery",
                                                  ROOT / "validation" / "calibration_recovery.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_synthetic_recovery_reproduces_held_out_counts(town):
    """Counts from a known demand on a third of the busiest links; from a 25% smaller, steeper, flat prior the
    fitted demand reproduces most never-counted busy links and the known total within 10%."""
    from twin.city import build_city
    from twin.scenario import load_scenario

    rec = _recovery_module()
    sc = load_scenario(town)["baseline"]
    city = build_city(sc.city, town.parent, sc.name)
    r = rec.recovery(sc, city, town.parent, busy_share=0.3, count_share=1 / 3, holdout=0.25, interval_s=1200.0)
    assert r["holdout_locations"] >= 3
    assert r["trips_prior"] <= 0.8 * r["trips_true"]  # the prior really is wrong ...
    assert r["geh5_fit"] >= 0.8
    # ... and calibration fixes it unseen, judged on the 33 never-counted busy links (x 3 intervals). The 4 held-out
    # count locations (12 counts) are too few to assert on: with the junction model they moved 0.75 -> 0.50 while
    # the never-counted links reach 0.84 and the total 7% (docs/calibration.md)
    assert r["uncounted_busy_links"] >= 20 and r["geh5_uncounted_busy"] >= 0.8
    assert abs(r["total_error"]) <= 0.10


def test_calibrated_demand_runs_with_run(town, tmp_path, capsys):
    """Counts from the baseline; calibrate the prior variant; the demand file and snippet run as a variant."""
    rc = main(["run", str(town), "--out", str(tmp_path / "truth"), "--quiet", "--no-report"])
    assert rc == 0
    import xarray as xr

    ds = xr.open_dataset(tmp_path / "truth" / "ctown" / "ctown.nc").sel(variant="baseline")
    flow = ds["link_flow"].values  # veh/h per 300 s record
    links = [str(x) for x in ds["link"].values]
    busy = np.argsort(-flow.sum(0))[:12]
    rows = "".join(f"{links[i]},07:00,08:00,{flow[:, i].sum() * 300 / 3600:.0f}\n" for i in busy)
    counts = _counts(tmp_path, rows)
    out = tmp_path / "cal"
    capsys.readouterr()
    rc = main(["calibrate", str(town), "--variant", "prior", "--counts", str(counts), "--out", str(out),
               "--quiet", "--iterations", "2"])
    text = capsys.readouterr().out
    assert rc == 0
    line = json.loads(text.strip().splitlines()[-1])
    assert set(line) == {"calibrate", "geh5_share_fit", "geh5_share_holdout", "counts", "demand_file", "wall_s"}
    assert line["counts"] == 12 and line["calibrate"] == "ctown"
    rep = json.loads((out / "calibration.json").read_text())
    assert rep["summary"]["fit"]["n"] + rep["summary"]["holdout"]["n"] == 12
    assert sum(r["set"] == "holdout" for r in rep["rows"]) == round(0.2 * 12)
    assert line["geh5_share_fit"] > rep["summary"]["prior_all"]["geh5_share"]
    _report_views_show(out, tmp_path, rep)
    trips = (out / "calibrated_trips.csv").read_text().strip().splitlines()
    assert trips[0] == "depart_s,origin,destination"
    town.write_text(TOWN + "  " + (out / "variant.yaml").read_text().split("\n", 1)[1].replace("\n", "\n  "))
    rc = main(["run", str(town), "--variant", "calibrated", "--out", str(tmp_path / "run2"), "--quiet",
               "--no-report"])
    assert rc == 0
    ds2 = xr.open_dataset(tmp_path / "run2" / "ctown" / "ctown.nc").sel(variant="calibrated")
    assert int(ds2.sizes["trip"]) == len(trips) - 1
    assert np.nansum(ds2["link_flow"].values) > 0


def _report_views_show(out: Path, tmp_path: Path, rep: dict) -> None:
    """The same JSON feeds the HTML section and the dashboard page, with fit and hold-out shares."""
    import sys

    from agents.traffic.counts.report import calibration_sections
    from dashboards.app import create_app

    sections = calibration_sections(out)
    assert len(sections) == 1
    share = f"{100 * rep['summary']['holdout']['geh5_share']:.1f}%"
    assert "Calibration to traffic counts" in sections[0] and share in sections[0]
    create_app(tmp_path)
    page = next(m for k, m in sys.modules.items() if k.endswith("calibration") and "pages" in k)
    opts, value = page.options("/calibration")
    assert value is not None and len(opts) == 1
    cards = page.show(value)
    text = str(cards)
    assert "calibration-summary" in text and share in text and "calibration-scatter" in text
