"""Batches: validated plans, identical results on every executor, failures kept apart, resume, confidence intervals."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from twin.batch import (BatchConfig, ExecutorConfig, Range, derive_seeds, format_summary, parse_param, plan_batch,
                        sweep, t_ci95)
from twin.scenario import ScenarioError

TINY = {"name": "tiny", "seed": 5, "city": {"source": "grid", "grid": {"nx": 5, "ny": 5}},
        "time": {"duration_s": 1800, "step_s": 1, "record_interval_s": 300},
        "demand": {"trips": 300}, "traffic": {"backend": "meso"}}
MTT = "kpi_traffic_mean_travel_time"


def _kpis(ds) -> dict[str, np.ndarray]:
    return {k: ds[k].values for k in ds.data_vars if str(k).startswith("kpi_")}


def test_plan_validates_every_parameter_set_before_running(tmp_path):
    """A bad key path or value anywhere in the sweep is a ScenarioError naming the key; nothing is written."""
    out = tmp_path / "b"
    cases = [({"demand.scal": [1.0]}, "demand.scal: unknown key"),
             ({"demand.scale": [1.0, 50.0]}, "demand.scale: 50.0"),
             ({"traffic.reroute_share": [0.1, 2]}, "traffic.reroute_share: 2"),
             ({"demand.trips.x": [1]}, "batch.params.demand.trips.x: demand.trips is 300, not a section"),
             ({"demand.scale.x": [1]}, "demand.scale: {...} — Input should be a valid number"),
             ({"variant": ["baseline", "nope"]}, "'nope' — not a variant"),
             ({"emergency.units.helicopter": [1]}, "emergency.units.helicopter")]
    for params, needle in cases:
        with pytest.raises(ScenarioError) as ei:
            plan_batch(TINY, params, seeds=2, out=out, scenario_dir=tmp_path)
        assert needle in str(ei.value), (needle, str(ei.value))
    with pytest.raises(ScenarioError, match="batch.seeds"):
        plan_batch(TINY, {"demand.scale": [1.0]}, seeds=0, out=out, scenario_dir=tmp_path)
    with pytest.raises(ScenarioError, match="needs 'num'"):
        plan_batch(TINY, {"demand.scale": Range(min=0.5, max=1.0)}, out=out, scenario_dir=tmp_path)
    assert not out.exists()
    plan = plan_batch(TINY, {"demand.scale": [0.5, 1.0], "traffic.reroute_share": [0.0, 0.2, 0.4]}, seeds=3,
                      out=out, scenario_dir=tmp_path)
    assert len(plan.param_sets) == 6 and len(plan.tasks) == 18 and len({t.key for t in plan.tasks}) == 18
    assert plan.param_sets[1] == {"demand.scale": 0.5, "traffic.reroute_share": 0.2}
    assert plan.task(1, 2).doc["traffic"]["reroute_share"] == 0.2 and plan.task(1, 2).seed == plan.seeds[2]


def test_seeds_and_designs_are_reproducible(tmp_path):
    """Seeds come from SeedSequence(batch_seed).spawn; random/latin designs are fixed by the batch seed."""
    kids = np.random.SeedSequence(7).spawn(4)
    assert derive_seeds(7, 4) == [int(k.generate_state(1, np.uint64)[0] >> np.uint64(1)) for k in kids]
    assert derive_seeds(7, 4)[:2] == derive_seeds(7, 2)  # adding seeds keeps the earlier runs
    params = {"demand.scale": Range(min=0.5, max=1.5), "traffic.reroute_share": [0.0, 0.5, 1.0],
              "demand.trips": Range(min=100, max=400)}
    lat = plan_batch(TINY, params, seeds=1, design="latin", samples=8, batch_seed=3, scenario_dir=tmp_path,
                     out=tmp_path / "x")
    again = plan_batch(TINY, params, seeds=1, design="latin", samples=8, batch_seed=3, scenario_dir=tmp_path,
                       out=tmp_path / "x")
    assert lat.param_sets == again.param_sets and len(lat.param_sets) == 8
    scales = np.array([p["demand.scale"] for p in lat.param_sets])
    assert sorted(np.floor((scales - 0.5) * 8).astype(int)) == list(range(8))  # one value per stratum
    assert all(isinstance(p["demand.trips"], int) and 100 <= p["demand.trips"] <= 400 for p in lat.param_sets)
    rnd = plan_batch(TINY, params, seeds=1, design="random", samples=5, batch_seed=4, scenario_dir=tmp_path,
                     out=tmp_path / "x")
    assert len(rnd.param_sets) == 5 and rnd.param_sets != lat.param_sets[:5]
    assert parse_param("demand.scale=0.8,1, 1.2") == ("demand.scale", [0.8, 1, 1.2])
    k, r = parse_param("traffic.reroute_share=0..0.4:3")
    assert k == "traffic.reroute_share" and r.grid() == [0.0, 0.2, 0.4]
    assert ExecutorConfig.model_validate("serial").workers == 0
    assert ExecutorConfig.model_validate("tcp://1.2.3.4:8786").dask == "tcp://1.2.3.4:8786"
    assert BatchConfig.model_validate({"executor": {"dask": "local"}}).executor.dask == "local"


def test_identical_results_serial_two_processes_and_dask(tmp_path):
    """The same batch gives identical KPIs and time series in this process, on 2 processes and on dask."""
    from distributed import LocalCluster

    params = {"demand.scale": [0.6, 1.2]}
    kw = dict(seeds=2, keep="series", scenario_dir=tmp_path)
    serial = sweep(TINY, params, workers=0, out=tmp_path / "serial", **kw)
    procs = sweep(TINY, params, workers=2, out=tmp_path / "procs", **kw)
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                      dashboard_address=None) as cluster:
        dsk = sweep(TINY, params, dask=cluster.scheduler_address, out=tmp_path / "dask", **kw)
    assert (serial["status"].values == "ok").all()
    assert serial.sizes["variant"] == 2 and serial.sizes["seed"] == 2
    assert list(serial["demand.scale"].values) == [0.6, 1.2]
    for other in (procs, dsk):
        assert (other["status"].values == "ok").all()
        a, b = _kpis(serial), _kpis(other)
        assert a.keys() == b.keys()
        for k in a:
            np.testing.assert_array_equal(a[k], b[k], err_msg=k)
        np.testing.assert_array_equal(serial["net_running"].values, other["net_running"].values)
    # different seeds differ, more demand means more trips
    assert serial[MTT].values[0, 0] != serial[MTT].values[0, 1]
    assert (serial["kpi_traffic_trips_mean"].values[1] > serial["kpi_traffic_trips_mean"].values[0])
    assert (tmp_path / "procs" / "batch.nc").is_file()


def test_failed_run_is_recorded_and_the_rest_complete_then_retried(tmp_path):
    """A run that raises leaves an error JSON; the other runs complete; a rerun retries only the failed one."""
    (tmp_path / "good.csv").write_text("depart_s,origin,destination\n10,n0_0,n4_4\n20,n4_0,n0_4\n")
    (tmp_path / "bad.csv").write_text("depart_s,origin,destination\n10,nowhere,n4_4\n")
    params = {"demand.trips_file": ["good.csv", "bad.csv"]}
    # the city check would catch bad.csv before running; skip it to make the run itself fail
    ds = sweep(TINY, params, seeds=2, workers=0, out=tmp_path / "b", scenario_dir=tmp_path, check_city=False)
    assert list(ds["status"].values[0]) == ["ok", "ok"] and list(ds["status"].values[1]) == ["failed", "failed"]
    assert "nowhere" in ds["run_error"].values[1, 0]
    assert np.isnan(ds[MTT].values[1]).all() and np.isfinite(ds[MTT].values[0]).all()
    assert ds.attrs["n_failed"] == 2
    errs = sorted((tmp_path / "b" / "runs").glob("*.error.json"))
    assert len(errs) == 2
    # the city check finds the bad file before anything runs
    with pytest.raises(ScenarioError, match="nowhere"):
        plan_batch(TINY, params, seeds=2, out=tmp_path / "b", scenario_dir=tmp_path)
    # same inputs again: only the failed runs are retried (same keys)
    ds1 = sweep(TINY, params, seeds=2, workers=0, out=tmp_path / "b", scenario_dir=tmp_path, check_city=False)
    assert ds1.attrs["batch_ran"] == 2 and ds1.attrs["batch_skipped"] == 2 and ds1.attrs["n_failed"] == 2
    # fixed data: its digest is in the run key, so exactly those runs run again, under new keys
    (tmp_path / "bad.csv").write_text("depart_s,origin,destination\n10,n0_0,n4_4\n")
    ds2 = sweep(TINY, params, seeds=2, workers=0, out=tmp_path / "b", scenario_dir=tmp_path, check_city=False)
    assert (ds2["status"].values == "ok").all() and ds2.attrs["batch_ran"] == 2 and ds2.attrs["batch_skipped"] == 2
    plan = plan_batch(TINY, params, seeds=2, out=tmp_path / "b", scenario_dir=tmp_path)
    assert not any(Path(t.error_path).exists() for t in plan.tasks)


def test_second_invocation_skips_completed_runs_and_resumes(tmp_path):
    """Runs already on disk are not run again; a run whose file is missing (interrupted) is run again."""
    params = {"demand.scale": [0.5, 1.0]}
    first = sweep(TINY, params, seeds=2, workers=0, out=tmp_path / "b", scenario_dir=tmp_path)
    files = sorted((tmp_path / "b" / "runs").glob("run_*.nc"))
    assert len(files) == 4 and first.attrs["batch_ran"] == 4
    mtimes = [f.stat().st_mtime_ns for f in files]
    second = sweep(TINY, params, seeds=2, workers=0, out=tmp_path / "b", scenario_dir=tmp_path)
    assert second.attrs["batch_ran"] == 0 and second.attrs["batch_skipped"] == 4
    assert [f.stat().st_mtime_ns for f in files] == mtimes
    np.testing.assert_array_equal(first[MTT].values, second[MTT].values)
    os.unlink(files[0])  # as if the batch had been interrupted before this run finished
    third = sweep(TINY, params, seeds=3, workers=0, out=tmp_path / "b", scenario_dir=tmp_path)
    assert third.attrs["batch_ran"] == 1 + 2 and third.attrs["batch_skipped"] == 3  # the lost run + seed 3
    np.testing.assert_array_equal(third[MTT].values[:, :2], first[MTT].values)
    # a sweep naming its parameters differently reuses runs with the same resolved scenario and seed
    fourth = sweep(TINY, {"demand.scale": [1.0]}, seeds=2, workers=0, out=tmp_path / "b", scenario_dir=tmp_path)
    assert fourth.attrs["batch_ran"] == 0


def test_confidence_intervals_shrink_as_seeds_grow(tmp_path):
    """The 95% half-width (Student t) of a KPI's mean narrows with more replications."""
    ds = sweep(TINY, {"demand.scale": [1.0]}, seeds=12, workers=0, out=tmp_path / "b", scenario_dir=tmp_path)
    x = ds[MTT].values[0]
    half = [float(t_ci95(x[:n])[2]) for n in (3, 6, 12)]
    assert half[0] > half[1] > half[2] > 0, half
    assert np.isclose(float(ds[f"{MTT}_ci95"].values[0]), half[2])
    assert np.isclose(float(ds[f"{MTT}_mean"].values[0]), x.mean())
    from scipy import stats

    m, s, h, n = t_ci95(x)
    lo, hi = stats.t.interval(0.95, len(x) - 1, loc=x.mean(), scale=stats.sem(x))
    assert np.isclose(m - h, lo) and np.isclose(m + h, hi) and n == 12
    assert "±" in format_summary(ds)


def test_cli_sweep_with_batch_section(tmp_path, capsys):
    """``run_scenario.py sweep`` reads the file's batch section, adds --param keys, prints the table."""
    import yaml

    from twin.cli import main

    doc = {**TINY, "batch": {"params": {"demand.scale": [0.5, 1.0]}, "seeds": 2, "executor": "serial",
                             "out": "out"}}
    f = tmp_path / "tiny.yaml"
    f.write_text(yaml.safe_dump(doc))
    rc = main(["sweep", str(f), "--param", "traffic.reroute_share=0,0.5", "--quiet"])
    out = capsys.readouterr().out
    assert rc == 0, out
    assert "demand.scale" in out and "traffic.reroute_share" in out and "8 run(s) done" in out
    assert (tmp_path / "out" / "batch.nc").is_file()
    rc = main(["sweep", str(f), "--param", "traffic.reroute_share=0,0.5", "--quiet"])
    assert rc == 0 and "8 skipped" in capsys.readouterr().out
    rc = main(["sweep", str(f), "--param", "traffic.reroute_shar=0,1", "--quiet"])
    err = capsys.readouterr().err
    assert rc == 2 and "traffic.reroute_shar: unknown key" in err
