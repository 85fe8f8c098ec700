"""Replications (``replications: N``): common random numbers across variants, per-replication KPIs, means and
95% intervals per KPI and per paired difference to the baseline (docs/results.md)."""
from __future__ import annotations

import numpy as np
import pytest
import yaml
from scipy import stats

from twin import run as svc

DOC = {"name": "reps", "seed": 11, "city": {"source": "grid", "grid": {"nx": 4, "ny": 4, "spacing_m": 200}},
       "time": {"duration_s": 300, "record_interval_s": 300}, "demand": {"trips": 80}, "traffic": {},
       "outputs": {"report": False},
       "variants": {"same": {"description": "identical to the baseline"},
                    "busier": {"demand": {"scale": 2.0}}}}
MTT = "kpi_traffic_mean_travel_time"
TRIPS = "kpi_traffic_trips"


@pytest.fixture(scope="module")
def three(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("reps")
    path = tmp / "reps.yaml"
    path.write_text(yaml.safe_dump({**DOC, "replications": 3}))
    return path, svc.run_variants(path, write=False).dataset


def test_layout_and_names(three):
    """kpi_<name> is (variant, replication); _mean/_ci95/_delta_mean/_delta_ci95 along variant; attrs say N."""
    _, ds = three
    assert ds.attrs["replications"] == 3 and list(ds["replication"].values) == [0, 1, 2]
    assert ds[MTT].dims == ("variant", "replication")
    for suffix in ("_mean", "_ci95", "_delta_mean", "_delta_ci95"):
        assert ds[MTT + suffix].dims == ("variant",), suffix
        assert ds[MTT + suffix].attrs["units"] == "s"
    seeds = ds["replication_seed"].values
    assert (seeds == seeds[0]).all() and seeds[0, 0] == 11 and len(set(seeds[0])) == 3  # CRN: same per variant


def test_statistics_are_student_t_over_replications(three):
    """Means and half-widths are the Student-t ones of the per-replication values, recomputed here."""
    _, ds = three
    x = ds[MTT].values
    t = stats.t.ppf(0.975, 2)
    np.testing.assert_allclose(ds[MTT + "_mean"].values, x.mean(axis=1))
    np.testing.assert_allclose(ds[MTT + "_ci95"].values, t * x.std(axis=1, ddof=1) / np.sqrt(3))
    d = x - x[0]
    np.testing.assert_allclose(ds[MTT + "_delta_mean"].values, d.mean(axis=1))
    np.testing.assert_allclose(ds[MTT + "_delta_ci95"].values, t * d.std(axis=1, ddof=1) / np.sqrt(3))


def test_common_random_numbers_make_an_identical_variant_differ_by_exactly_zero(three):
    """A variant equal to the baseline reproduces it replication by replication: every paired difference is
    0 with a 0-wide interval, so the table calls it 'no clear change'; a demand change is clear."""
    from twin.results import kpi_table

    _, ds = three
    names = [str(n) for n in ds.data_vars if str(n).startswith("kpi_") and ds[n].dims == ("variant", "replication")]
    i = list(ds["variant"].values).index("same")
    for n in names:
        np.testing.assert_array_equal(ds[n].values[i], ds[n].values[0])
        assert ds[n + "_delta_mean"].values[i] == 0 and ds[n + "_delta_ci95"].values[i] == 0
    row = kpi_table(ds).set_index("kpi").loc[ds[TRIPS].attrs["long_name"]]
    assert row["clear same"] is False or row["clear same"] == False  # noqa: E712 (numpy bool)
    assert row["clear busier"]  # twice the trips, in every replication
    assert ds[TRIPS].sel(variant="busier").values.tolist() == [160.0, 160.0, 160.0]


def test_replication_zero_is_the_run_without_replications(three, tmp_path):
    """N=1 behaves as before (no replication dim, no statistics) and equals replication 0 bit for bit."""
    path, ds = three
    one = svc.run_variants(path, write=False, replications=1).dataset
    assert one.attrs["replications"] == 1 and "replication" not in one.dims and MTT + "_mean" not in one
    np.testing.assert_array_equal(one[MTT].values, ds[MTT].values[:, 0])


def test_same_seeds_give_identical_intervals(three, tmp_path):
    """Running the same replications again gives identical values and intervals (reproducible)."""
    path, ds = three
    again = svc.run_variants(path, write=False).dataset
    for suffix in ("", "_mean", "_ci95", "_delta_mean", "_delta_ci95"):
        np.testing.assert_array_equal(again[MTT + suffix].values, ds[MTT + suffix].values)


def test_cli_prints_no_clear_change_and_processes_match(three, tmp_path, capsys):
    """``run --workers 2`` runs the replications in processes (twin.batch_exec) with the same numbers; the
    table marks the identical variant's deltas 'no clear change'."""
    from twin.cli import main

    path, ds = three
    out = tmp_path / "out"
    assert main(["run", str(path), "--out", str(out), "--quiet", "--no-report", "--workers", "2",
                 "--variant", "same"]) == 0
    text = capsys.readouterr().out
    assert "mean of 3 replications" in text and "no clear change" in text
    import xarray as xr

    with xr.open_dataset(out / "reps" / "reps.nc") as par:
        np.testing.assert_array_equal(par[MTT].values, ds[MTT].sel(variant=["baseline", "same"]).values)
        assert par.attrs["replications"] == 3


def test_a_replicated_label_shows_every_runs_population_not_the_first_runs():
    from twin.results import label_over_runs

    runs = [f"median response (Kaplan-Meier; {n} calls with a target, {c} not reached; {{set}})"
            for n, c in ((2, 0), (14, 1), (1210, 0))]
    out = label_over_runs(runs)
    assert "2–1,210 calls with a target, 0–1 not reached" in out and "ranges over the 3 runs" in out
    assert "{set}" in out
    same = ["trips completed (5 h)"] * 3
    assert label_over_runs(same) == same[0]  # nothing varies: the label is kept as it is
    odd = label_over_runs(["a 3 b", "a b 4"])
    assert odd.startswith("a 3 b") and "vary by run" in odd


def test_a_change_over_fewer_pairs_than_replications_says_so(capsys):
    """A KPI missing in some runs (no call of a type in one replication): the variant means are over the runs with
    a value, the change over the pairs where both have one; the table shows that n, so 14.8 → 6.8 with a change
    of +0.5 is not read as a contradiction."""
    import xarray as xr

    from twin.cli import print_kpis
    from twin.kpi_format import kpi_rows
    from twin.results import add_replications

    name = "kpi_emergency_response_p90_s"
    base = xr.Dataset({name: ("variant", [0.0, 0.0])}, coords={"variant": ["baseline", "closed"]})
    base[name].attrs = {"units": "s", "long_name": "90th percentile response", "better": "lower",
                        "domain": "emergency"}

    def run(x):
        return xr.Dataset({name: xr.DataArray(x, attrs=base[name].attrs)})

    runs = {"baseline": [run(800.0), run(900.0), run(950.0)], "closed": [run(400.0), run(float("nan")), run(960.0)]}
    ds = add_replications(base, runs, {"baseline": [1, 2, 3], "closed": [1, 2, 3]})
    rows = {r["variant"]: r for r in kpi_rows(ds)}
    assert rows["closed"]["n"] == 3 and rows["closed"]["n_pairs"] == 2 and rows["baseline"]["n_pairs"] == 3
    print_kpis(ds, width=100)
    out = capsys.readouterr().out
    assert "n=2" in out and "n=3" not in out
