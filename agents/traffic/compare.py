"""Side-by-side validation of the built-in model against SUMO on one scenario (``run_scenario.py compare-backends``).

Both back-ends run the same resolved scenario (same city object, same seed, so the same trips).
Compared: mean and 90th-percentile travel time of completed trips, completed trips, vehicle-km,
teleports, and hourly link flows: Pearson correlation and the share of (link, hour) pairs with
GEH < 5, over pairs where either model has traffic. GEH = sqrt(2 (M - C)^2 / (M + C)) on hourly
counts (veh/h). Wall times of both runs and their ratio close the table.
"""
from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

__all__ = ["compare_backends", "cli_compare_backends", "hourly_link_flows", "geh", "flow_agreement",
           "run_backend", "vehicle_hours_all", "run_figures", "FIGURE_UNITS"]

# the figures of one run (run_figures), with their units; the validation suite and --json use these names
FIGURE_UNITS = {"mean_travel_time_s": "s", "p90_travel_time_s": "s", "vehicle_hours": "h", "trips": "1",
                "trips_completed": "1", "trips_unfinished": "1", "gridlock_resolutions": "1", "vehicle_km": "km",
                "wall_time_s": "s"}


def geh(m: np.ndarray, c: np.ndarray) -> np.ndarray:
    """GEH statistic of hourly flows ``m`` (model) and ``c`` (count/reference), 0 where both are 0."""
    m, c = np.asarray(m, float), np.asarray(c, float)
    s = m + c
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(s > 0, np.sqrt(2.0 * (m - c) ** 2 / np.where(s > 0, s, 1.0)), 0.0)


def hourly_link_flows(ds: xr.Dataset) -> np.ndarray:
    """Vehicles leaving each link per clock hour from the start, ``[hours, links]`` (whole and part hours)."""
    t = ds["time"].values.astype(float)
    span = np.diff(np.concatenate([[0.0], t]))
    veh = np.nan_to_num(ds["link_flow"].values.astype(float)) * span[:, None] / 3600.0
    hour = np.floor((t - 1e-6) / 3600.0).astype(int)
    out = np.zeros((hour.max() + 1, veh.shape[1]))
    np.add.at(out, hour, veh)
    # a trailing part hour is scaled to an hourly rate
    part = (t[-1] - 3600.0 * hour.max()) / 3600.0
    if 0 < part < 1:
        out[-1] /= part
    return out


def flow_agreement(a: xr.Dataset, b: xr.Dataset) -> tuple[float, float, int]:
    """(Pearson r, share of GEH < 5, pairs compared) of hourly link flows, over (link, hour) with any flow."""
    fa, fb = hourly_link_flows(a), hourly_link_flows(b)
    h = min(len(fa), len(fb))
    fa, fb = fa[:h].ravel(), fb[:h].ravel()
    used = (fa + fb) > 0
    if used.sum() < 2:
        return float("nan"), float("nan"), int(used.sum())
    r = float(np.corrcoef(fa[used], fb[used])[0, 1])
    return r, float((geh(fa[used], fb[used]) < 5.0).mean()), int(used.sum())


def run_backend(path: str | Path, variant: str, backend: str, city=None, overrides: dict | None = None,
                progress=None, seed: int | None = None) -> tuple[xr.Dataset, float]:
    """Run one variant of a scenario file on ``backend`` (``overrides``: TrafficConfig fields); (results, wall s).

    Runs through the run service (``twin.run``): the variant runs on its own city (``city`` is ignored).
    ``seed``: the scenario seed instead of the file's (as ``run --seed``; None keeps the file's)."""
    from twin.run import RunOverrides, load_variants, run_one

    del city
    sc = load_variants(path, [] if variant == "baseline" else [variant], RunOverrides(backend=backend, seed=seed))[variant]
    sc2 = sc.model_copy()
    sc2._domains = dict(sc.domain_configs)
    sc2._domains["traffic"] = sc2._domains["traffic"].model_copy(update={"backend": backend, **(overrides or {})})
    t0 = time.perf_counter()
    recorded = {k: (v.model_dump(mode="json") if hasattr(v, "model_dump") else v) for k, v in (overrides or {}).items()}
    if seed is not None:
        recorded["seed"] = int(seed)
    ds = run_one(sc2, Path(path).parent, {"backend": backend, **recorded}, progress=progress)  # provenance: JSON
    return ds, time.perf_counter() - t0


def kpi_value(ds: xr.Dataset, name: str) -> float:
    v = ds.get(f"kpi_traffic_{name}")
    if v is None and name in ("teleports", "gridlock_resolutions"):  # one count, renamed
        v = ds.get("kpi_traffic_teleports" if name == "gridlock_resolutions" else "kpi_traffic_gridlock_resolutions")
    return float(v.values) if v is not None else float("nan")


def _trip_table(ds: xr.Dataset) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
    """(depart s, arrive s or NaN, status, end of the run s) of every trip in a results Dataset."""
    end = float(ds["time"].values[-1]) if "time" in ds.coords and ds.sizes.get("time", 0) else float("nan")
    return (ds["trip_depart"].values.astype(float), ds["trip_arrive"].values.astype(float),
            ds["trip_status"].values, end)


def vehicle_hours_all(ds: xr.Dataset) -> float:
    """Vehicle-hours of every trip due by the end (h): arrived trips until arrival, trips still running or
    still waiting to enter the network until the end of the run; unroutable trips are left out."""
    from agents.traffic.schema import ARRIVED, UNROUTABLE

    dep, arr, st, end = _trip_table(ds)
    use = (st != UNROUTABLE) & (dep < end)
    t_end = np.where(st == ARRIVED, arr, end)
    return float(np.nansum((t_end - dep)[use]) / 3600.0)


def run_figures(ds: xr.Dataset, wall_s: float) -> dict[str, float]:
    """The validation figures of one run (units in ``FIGURE_UNITS``); travel times over completed trips.

    ``trips``: trips in the demand that are due by the end and routable; ``trips_unfinished``: those of them
    still on the road or waiting to enter at the end; ``vehicle_hours`` counts both (``vehicle_hours_all``).
    """
    from agents.traffic.schema import ARRIVED, UNROUTABLE

    dep, arr, st, end = _trip_table(ds)
    due = (st != UNROUTABLE) & (dep < end)
    done = st == ARRIVED
    tt = (arr - dep)[done]
    return {"mean_travel_time_s": float(tt.mean()) if len(tt) else float("nan"),
            "p90_travel_time_s": float(np.percentile(tt, 90)) if len(tt) else float("nan"),
            "vehicle_hours": vehicle_hours_all(ds), "trips": int(due.sum()), "trips_completed": int(done.sum()),
            "trips_unfinished": int((due & ~done).sum()),
            "gridlock_resolutions": kpi_value(ds, "gridlock_resolutions"), "vehicle_km": kpi_value(ds, "vehicle_km"),
            "wall_time_s": float(wall_s)}


def compare_backends(path: str | Path, variant: str = "baseline", quiet: bool = True,
                     meso_overrides: dict | None = None, sumo_cache: str | Path | None = None) -> pd.DataFrame:
    """Run the built-in model and SUMO on one scenario variant; one row per measure, columns meso, sumo, diff.

    ``sumo_cache``: a netCDF file holding the SUMO run (read if present, else written): calibrating the
    built-in model against one SUMO run then costs only built-in runs.
    """
    from twin.city import build_city
    from twin.scenario import load_scenario

    base = load_scenario(path)["baseline"]
    city = build_city(base.city, Path(path).parent, base.name)
    runs = {}
    for backend in ("meso", "sumo"):
        if backend == "sumo" and sumo_cache is not None and Path(sumo_cache).exists():
            cached = xr.load_dataset(sumo_cache)
            runs[backend] = (cached, float(cached.attrs["wall_time_s"]))
            continue
        if not quiet:
            print(f"running {backend} ...", file=sys.stderr, flush=True)
        runs[backend] = run_backend(path, variant, backend, city, meso_overrides if backend == "meso" else None)
        if backend == "sumo" and sumo_cache is not None:
            ds_s, w = runs[backend]
            keep = [v for v in ds_s.data_vars if str(v).startswith(("link_flow", "kpi_traffic", "trip_"))]
            ds_s[keep].assign_attrs(wall_time_s=w, complete=ds_s.attrs.get("complete", 0)).to_netcdf(sumo_cache)
    (dm, wm), (ds_, ws) = runs["meso"], runs["sumo"]
    r, share, pairs = flow_agreement(dm, ds_)
    rows = []
    for key, label, unit in [("mean_travel_time", "mean travel time", "s"), ("p90_travel_time", "p90 travel time", "s"),
                             ("trips", "trips", "1"), ("trips_completed", "completed trips", "1"),
                             ("vehicle_km", "vehicle-km", "km"), ("vehicle_hours", "vehicle-hours", "h"),
                             ("gridlock_resolutions", "gridlock resolutions / teleports", "1")]:
        if key == "vehicle_hours":  # including trips still running or waiting to enter at the end
            a, b = vehicle_hours_all(dm), vehicle_hours_all(ds_)
        else:
            a, b = kpi_value(dm, key), kpi_value(ds_, key)
        rows.append((label, unit, a, b, 100.0 * (a - b) / b if b else float("nan")))
    rows.append(("hourly link flow correlation r", "1", r, r, float("nan")))
    rows.append(("links·hours with GEH < 5", "%", 100 * share, 100 * share, float("nan")))
    rows.append(("(link, hour) pairs compared", "1", pairs, pairs, float("nan")))
    rows.append(("wall time", "s", wm, ws, float("nan")))
    rows.append(("wall time ratio sumo/meso", "x", ws / wm, ws / wm, float("nan")))
    df = pd.DataFrame(rows, columns=["measure", "units", "meso", "sumo", "meso vs sumo %"]).set_index("measure")
    df.attrs.update({"scenario": str(path), "variant": variant, "complete_sumo": int(ds_.attrs.get("complete", 0))})
    df.attrs["figures"] = {
        "scenario": str(path), "variant": variant, "units": FIGURE_UNITS,
        "models": {"builtin": run_figures(dm, wm), "sumo": run_figures(ds_, ws)},
        "sumo_options": {"mesosim": bool(getattr(base.domain_configs["traffic"], "sumo").mesosim)},
        "agreement": {"flow_r": r, "geh5_share": share, "link_hours_compared": pairs,
                      "wall_time_ratio_sumo_over_builtin": ws / wm if wm else float("nan")},
        "complete_sumo": int(ds_.attrs.get("complete", 0))}
    return df


def format_table(df: pd.DataFrame) -> str:
    """A plain-text (and Markdown) table of a compare_backends frame."""
    lines = [f"| {'measure':<32} | {'units':<5} | {'meso':>12} | {'sumo':>12} | {'meso vs sumo':>12} |",
             f"|{'-' * 34}|{'-' * 7}|{'-' * 14}|{'-' * 14}|{'-' * 14}|"]
    for name, r in df.iterrows():
        shared = name.startswith(("hourly", "links", "(link", "wall time ratio"))
        fmt = (lambda x: f"{x:,.3f}") if abs(r["meso"]) < 10 and r["units"] in ("1", "x") and "trips" not in name \
            and "pairs" not in name and "gridlock" not in name else (lambda x: f"{x:,.1f}")
        a = fmt(r["meso"])
        b = "" if shared else fmt(r["sumo"])
        d = "" if np.isnan(r["meso vs sumo %"]) else f"{r['meso vs sumo %']:+.1f}%"
        lines.append(f"| {name:<32} | {r['units']:<5} | {a:>12} | {b:>12} | {d:>12} |")
    return "\n".join(lines)


def cli_compare_backends(args) -> int:
    """``run_scenario.py compare-backends FILE [--variant V] [--quiet]``: print the comparison table."""
    from agents.traffic.sumo_setup import SumoNotAvailable
    from twin.scenario import ScenarioError

    try:
        df = compare_backends(args.file, args.variant, quiet=args.quiet,
                              sumo_cache=getattr(args, "sumo_cache", None))
    except ScenarioError as exc:
        print(str(exc), file=sys.stderr)
        return 2
    except SumoNotAvailable as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except RuntimeError as exc:  # SumoRunError and other failed runs
        print(f"error: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    if getattr(args, "json", False):
        import json

        print(json.dumps(_json_safe(df.attrs["figures"])))
        return 0
    print(f"compare-backends: {args.file} / variant {args.variant}")
    print(format_table(df))
    return 0


def _json_safe(x):
    """NaN and inf become null (strict JSON); numpy scalars become Python numbers."""
    if isinstance(x, dict):
        return {str(k): _json_safe(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_json_safe(v) for v in x]
    if isinstance(x, (np.integer,)):
        return int(x)
    if isinstance(x, (float, np.floating)):
        return float(x) if np.isfinite(x) else None
    return x
