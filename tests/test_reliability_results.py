"""Finished work is never lost: each variant is on disk as soon as it finishes, ``run --variant X`` keeps the
file's other variants, and an unwritable results folder is refused before anything runs (issue 15)."""
from __future__ import annotations

import os
from pathlib import Path

import pytest
import xarray as xr
import yaml

from twin.cli import main

DOC = {"name": "tiny", "seed": 3, "city": {"source": "grid", "grid": {"nx": 3, "ny": 3}},
       "time": {"duration_s": 600, "record_interval_s": 300}, "demand": {"trips": 30},
       "outputs": {"report": False},
       "variants": {"more": {"demand": {"trips": 60}}, "fewer": {"demand": {"trips": 10}}}}


def _scenario(tmp_path, doc=DOC):
    p = tmp_path / "tiny.yaml"
    p.write_text(yaml.safe_dump(doc, sort_keys=False))
    return p


def _variants(path):
    with xr.open_dataset(path, engine="netcdf4") as ds:
        return [str(v) for v in ds["variant"].values], {
            str(v): float(ds["kpi_traffic_trips_completed"].sel(variant=v)) for v in ds["variant"].values}


def test_ctrl_c_in_a_later_variant_keeps_the_finished_ones(tmp_path, monkeypatch, capsys):
    import twin.run as run

    real = run.run_one

    def run_one(sc, *a, **k):
        if sc.variant == "fewer":
            raise KeyboardInterrupt
        return real(sc, *a, **k)

    monkeypatch.setattr(run, "run_one", run_one)
    path = _scenario(tmp_path)
    assert main(["run", str(path), "--out", str(tmp_path / "out"), "--quiet"]) == 130
    assert "interrupted" in capsys.readouterr().err
    names, _ = _variants(tmp_path / "out" / "tiny" / "tiny.nc")
    assert names == ["baseline", "more"]


def test_run_variant_merges_into_the_existing_file(tmp_path, capsys):
    path = _scenario(tmp_path)
    out = tmp_path / "out"
    assert main(["run", str(path), "--out", str(out), "--quiet"]) == 0
    full_names, full = _variants(out / "tiny" / "tiny.nc")
    assert full_names == ["baseline", "more", "fewer"]
    assert main(["run", str(path), "--out", str(out), "--quiet", "--variant", "fewer"]) == 0
    names, again = _variants(out / "tiny" / "tiny.nc")
    assert names == full_names and again == full  # same seed: the re-run variant is equal, the others kept


def test_run_variant_after_the_scenario_changed_does_not_mix_versions(tmp_path):
    out = tmp_path / "out"
    path = _scenario(tmp_path)
    assert main(["run", str(path), "--out", str(out), "--quiet"]) == 0
    changed = {**DOC, "demand": {"trips": 40}}
    path = _scenario(tmp_path, changed)
    assert main(["run", str(path), "--out", str(out), "--quiet", "--variant", "more"]) == 0
    names, _ = _variants(out / "tiny" / "tiny.nc")
    assert names == ["baseline", "more"]  # the old 'fewer' belonged to another baseline


def test_read_only_results_folder_is_refused_before_running(tmp_path, capsys):
    if os.geteuid() == 0:  # root writes through permissions: use a read-only mount instead
        ro = Path("/sys/kernel")
        assert ro.is_dir(), "needs /sys (read-only for root) to test a results folder that cannot be written"
        main_args = ["--out", str(ro / "citytwin-out")]
    else:
        ro = tmp_path / "ro"
        ro.mkdir()
        ro.chmod(0o555)
        main_args = ["--out", str(ro / "x")]
    try:
        assert main(["run", str(_scenario(tmp_path)), *main_args, "--quiet"]) == 2
    finally:
        if os.geteuid() != 0:
            ro.chmod(0o755)
    assert "no permission to write" in capsys.readouterr().err


def test_a_file_in_the_way_of_the_results_folder_is_refused_before_running(tmp_path, capsys, monkeypatch):
    import twin.run as run

    monkeypatch.setattr(run, "run_one", lambda *a, **k: pytest.fail("ran before checking the folder"))
    (tmp_path / "afile").write_text("x")
    assert main(["run", str(_scenario(tmp_path)), "--out", str(tmp_path / "afile" / "sub"), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "is a file, not a folder" in err and "--out" in err and "Traceback" not in err
