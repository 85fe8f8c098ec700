"""Calibrate the built-in model's junction parameters against one SUMO run of the same scenario.

``python -m agents.traffic.calibrate scenarios/bologna.yaml`` runs SUMO once (cached in a netCDF file), then
the built-in model over a small grid of its physical junction parameters (saturation flow, HBS critical
gap and follow-up time, speed scale), and prints each candidate's gaps: mean travel time, completed trips, and the share of
link-hours with GEH < 5. The best candidate minimises |Δ mean travel time| + |Δ completed| + (1 - GEH share).
"""
from __future__ import annotations

import argparse
import itertools
import sys
from pathlib import Path

from agents.traffic.compare import kpi_value, flow_agreement, run_backend

__all__ = ["calibrate", "GRID"]

GRID = {
    "saturation_flow_vph": [1700.0, 1800.0, 1900.0],
    "critical_gap_s": [5.9, 6.4],
    "follow_up_s": [3.0, 3.5],
    "speed_scale": [0.9, 1.0],
}


def _score(meso, sumo) -> dict:
    tt_m, tt_s = kpi_value(meso, "mean_travel_time"), kpi_value(sumo, "mean_travel_time")
    c_m, c_s = kpi_value(meso, "trips_completed"), kpi_value(sumo, "trips_completed")
    r, geh_share, _ = flow_agreement(meso, sumo)
    d_tt, d_c = (tt_m - tt_s) / tt_s, (c_m - c_s) / c_s
    return {"d_tt": d_tt, "d_completed": d_c, "r": r, "geh5": geh_share,
            "score": abs(d_tt) + abs(d_c) + (1.0 - geh_share)}


def calibrate(path: str | Path, sumo_cache: str | Path, grid: dict | None = None, variant: str = "baseline"):
    """Score every grid candidate against the (cached) SUMO run; return rows sorted best first."""
    import xarray as xr

    from twin.city import build_city
    from twin.scenario import load_scenario

    grid = grid or GRID
    base = load_scenario(path)["baseline"]
    city = build_city(base.city, Path(path).parent, base.name)
    cache = Path(sumo_cache)
    if cache.exists():
        sumo = xr.load_dataset(cache)
    else:
        sumo, wall = run_backend(path, variant, "sumo", city)
        keep = [v for v in sumo.data_vars if str(v).startswith(("link_flow", "kpi_traffic", "trip_"))]
        sumo[keep].assign_attrs(wall_time_s=wall).to_netcdf(cache)
    rows = []
    keys = list(grid)
    for values in itertools.product(*(grid[k] for k in keys)):
        over = dict(zip(keys, values))
        meso, _ = run_backend(path, variant, "meso", city, over)
        rows.append({**over, **_score(meso, sumo)})
    rows.sort(key=lambda r: r["score"])
    return rows


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("scenario")
    p.add_argument("--sumo-cache", default=None, help="netCDF file for the SUMO run (default: next to the scenario)")
    p.add_argument("--top", type=int, default=10)
    args = p.parse_args(argv)
    cache = args.sumo_cache or str(Path(args.scenario).with_suffix(".sumo_cache.nc"))
    rows = calibrate(args.scenario, cache)
    cols = list(GRID) + ["d_tt", "d_completed", "r", "geh5", "score"]
    print(" ".join(f"{c:>22}" for c in cols))
    for r in rows[: args.top]:
        print(" ".join(f"{r[c]:>22.3f}" if isinstance(r[c], float) else f"{r[c]:>22}" for c in cols))
    return 0


if __name__ == "__main__":
    sys.exit(main())
