"""The one KPI formatter (terminal, report, dashboard): units, points, counts, clock times, noise and intervals."""
from twin import kpi_format as K


def test_change_is_in_the_values_own_unit():
    # 16.5 min against 17.5 min: both shown in minutes, the change too (not "-60" seconds without a unit)
    assert K.fmt_value(990.0, "kpi_traffic_mean_travel_time", "s", ref=1050.0) == "16.5 min"
    d = K.fmt_delta(1050.0, 990.0, "kpi_traffic_mean_travel_time", "s")
    assert d.startswith("-1.0 min"), d
    assert "(-5.7%)" in d
    # short durations stay in seconds, long ones in hours
    assert K.fmt_value(45.0, "kpi_x_wait_s", "s") == "45.0 s"
    assert K.fmt_value(3 * 3600.0, "kpi_x_time", "s").endswith(" h")


def test_shares_in_percent_and_points():
    assert K.fmt_value(0.023, "kpi_emergency_within_target", "1") == "2.3%"
    d = K.fmt_delta(0.023, 0.062, "kpi_emergency_within_target", "1")
    assert d == "+3.9 pts"  # not "+170%"


def test_counts_are_integers():
    assert K.fmt_value(21076.0, "kpi_traffic_trips", "1") == "21,076"
    assert K.fmt_delta(21076.0, 21000.0, "kpi_traffic_trips", "1").startswith("-76 ")


def test_density_person_time_and_missing():
    assert K.fmt_value(4.25, "kpi_crowd_peak_density", "m-2") == "4.25 persons/m²"
    assert K.fmt_value(15066.0, "kpi_crowd_person_seconds_above_warn", "s") == "4.2 person-h"
    assert K.fmt_value(float("nan"), "kpi_x", "s") == "—"
    assert K.fmt_delta(float("nan"), 3.0, "kpi_x", "s") == "—"
    assert "nan" not in K.kpi_text("kpi_x", "1", "lower", float("nan"), float("nan")).value


def test_clock_times():
    assert K.clock_time("17:00", 0) == "17:00"
    assert K.clock_time("17:00", 5400 + 59) == "18:30"
    assert K.clock_time("23:30", 3600) == "00:30"


def test_noise_and_intervals():
    # single run: a 1% change of a travel time is within noise, a 10% one is judged by the KPI's direction
    assert K.judge("lower", 100.0, 99.0, "kpi_t", "s") == "same"
    assert K.judge("lower", 100.0, 90.0, "kpi_t", "s") == "better"
    assert K.judge("lower", 100.0, 110.0, "kpi_t", "s") == "worse"
    assert K.judge("higher", 0.50, 0.505, "kpi_x_share", "1") == "same"  # half a point
    # with replications: an interval that includes 0 is "no clear change", whatever the size
    assert K.judge("lower", 100.0, 80.0, "kpi_t", "s", ci=25.0) == "unclear"
    assert K.judge("lower", 100.0, 80.0, "kpi_t", "s", ci=5.0) == "better"
    t = K.kpi_text("kpi_t", "s", "lower", 100.0, 80.0, ci=25.0, n=5)
    assert t.verdict == "unclear" and "± 25" in t.delta and "n=5" in t.delta and t.marker == "no clear change"
    assert "no clear change" not in t.delta  # said once (the marker), not twice
    # a change far below the display unit keeps 2 significant digits, not "+0.0 min"
    assert K.kpi_text("kpi_t", "s", "lower", 120.0, 121.0, ci=0.3, n=3).delta.startswith("+0.017 ± 0.005 min")


def _results(n_var: int = 8, reps: int = 1):
    import numpy as np
    import xarray as xr

    var = ["baseline"] + [f"a_rather_long_variant_name_{i}" for i in range(n_var - 1)]
    ds = xr.Dataset(coords={"variant": var})
    ds["kpi_traffic_mean_travel_time"] = ("variant", np.linspace(990, 1100, n_var),
                                          {"units": "s", "better": "lower", "domain": "traffic",
                                           "long_name": "mean trip travel time of the trips completed in the run"})
    ds["kpi_emergency_within_target"] = ("variant", np.linspace(0.023, 0.06, n_var),
                                         {"units": "1", "better": "higher", "domain": "emergency",
                                          "long_name": "share of calls reached within the target"})
    ds["kpi_traffic_trips"] = ("variant", np.full(n_var, 21076.0),
                               {"units": "1", "better": "none", "domain": "traffic", "long_name": "trips"})
    return ds


def test_terminal_table_fits_and_has_full_names(capsys):
    import io

    from twin.cli import print_kpis

    ds = _results()
    for width in (100, 80):
        f = io.StringIO()
        print_kpis(ds, file=f, width=width)
        text = f.getvalue()
        assert max(len(line) for line in text.splitlines()) <= width, text
    assert "a_rather_long_variant_name_6" in text  # full variant names, each in some block
    assert "share of calls reached within" in text and "target [%]" in text  # full name, wrapped
    assert "+3.7 pts" in text or "+0.5 pts" in text  # a share's change in points
    assert "21,076" in text and "21,076.0" not in text


def test_terminal_table_csv_and_json():
    import csv
    import io
    import json

    from twin.cli import print_kpis

    ds = _results(3)
    f = io.StringIO()
    print_kpis(ds, file=f, fmt="json")
    rows = json.loads(f.getvalue())
    assert len(rows) == 3 * 3
    r = next(r for r in rows if r["kpi"] == "kpi_traffic_mean_travel_time" and r["variant"] != "baseline")
    assert r["units"] == "s" and abs(r["delta"] - (r["value"] - 990.0)) < 1e-9 and r["verdict"] == "worse"
    f = io.StringIO()
    print_kpis(ds, file=f, fmt="csv")
    rows_csv = list(csv.DictReader(io.StringIO(f.getvalue())))
    assert len(rows_csv) == 9 and rows_csv[0]["variant"] == "baseline"


def test_replications_show_intervals_and_no_clear_change():
    """kpi_<n>_mean/_delta_mean/_delta_ci95: the table marks a change whose interval includes 0 '~'."""
    import io

    import numpy as np

    from twin.cli import print_kpis

    ds = _results(3).drop_vars(["kpi_emergency_within_target", "kpi_traffic_trips"])
    n = "kpi_traffic_mean_travel_time"
    runs = np.array([[1000, 1010, 990], [1100, 1180, 1020], [1001, 1002, 1000]], float)
    attrs = dict(ds[n].attrs)
    ds[n] = (("variant", "replication"), runs, attrs)
    ds[f"{n}_mean"] = ("variant", runs.mean(1), attrs)
    ds[f"{n}_ci95"] = ("variant", np.array([24.8, 198.7, 2.5]), attrs)
    ds[f"{n}_delta_mean"] = ("variant", runs.mean(1) - runs[0].mean(), attrs)
    ds[f"{n}_delta_ci95"] = ("variant", np.array([0.0, 150.0, 1.0]), attrs)  # variant 1: +100 ± 150 s
    ds.attrs["replications"] = 3
    rows = [r for r in K.kpi_rows(ds) if r["variant"] != "baseline"]
    assert [r["verdict"] for r in rows] == ["unclear", "unclear"]  # +1 s ± 1 s: 0 is in the interval too
    f = io.StringIO()
    print_kpis(ds, file=f, width=100)
    text = f.getvalue()
    assert "± 2.5" in text and "~" in text and "mean of 3 replications" in text


def test_count_means_of_replications():
    # a mean of 3 runs: whole above 100 (no "20,307.3"), one decimal below; a change of 0 ± 0 is "+0 ± 0"
    assert K.fmt_value(20307.33, "kpi_traffic_trips", "1") == "20,307"
    assert K.fmt_value(45.67, "kpi_traffic_trips_stranded", "1") == "45.7"
    assert K.fmt_delta(20307.33, 20182.67, "kpi_traffic_trips", "1", ci=8.0).startswith("-125 ± 8 ")
    assert K.fmt_delta(0.0, 45.67, "kpi_traffic_trips_stranded", "1", ci=10.04).startswith("+45.7 ± 10.0")
    assert K.fmt_delta(0.0, 0.0, "kpi_traffic_trips_stranded", "1", ci=0.0) == "+0 ± 0"
