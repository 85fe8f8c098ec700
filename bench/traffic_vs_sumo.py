"""Benchmark: the built-in traffic model against SUMO (libsumo) on the same network and demand, growing demand.

A synthetic grid town (exported to SUMO with netconvert, links one to one) carries N uniform trips
departing over 30 minutes; each back-end runs the same scenario (same trips) through the whole
engine. Speed = vehicle-seconds simulated (vehicle-hours KPI x 3600) per wall second of the run.
Prints a table and, last, one JSON line whose ``value`` is the speed ratio meso / SUMO at the largest
demand. Run: ``.venv/bin/python bench/traffic_vs_sumo.py`` (about 5-8 minutes on 2 cores;
``--quick`` for a 1-minute smoke run).
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from twin.engine import CityTwin  # noqa: E402
from twin.scenario import resolve_variants  # noqa: E402


def scenario(trips: int, backend: str, n: int, duration_s: float):
    doc = {"name": "bench_traffic_vs_sumo", "seed": 11,
           "city": {"source": "grid", "grid": {"nx": n, "ny": n, "spacing_m": 200, "lanes": 2}},
           "time": {"duration_s": duration_s, "step_s": 1, "record_interval_s": 300},
           "demand": {"trips": trips, "model": "uniform", "end_s": 1800},
           "traffic": {"backend": backend}}
    return resolve_variants(doc, ROOT / "bench" / "bench.yaml")["baseline"]


def run_once(trips: int, backend: str, n: int, duration_s: float) -> dict:
    sc = scenario(trips, backend, n, duration_s)
    t0 = time.perf_counter()
    tw = CityTwin(sc, ROOT / "bench")
    ds = tw.run()
    wall = time.perf_counter() - t0
    veh_s = float(ds["kpi_traffic_vehicle_hours"]) * 3600.0
    return {"wall_s": wall, "veh_s": veh_s, "speed": veh_s / wall,
            "completed": int(ds["kpi_traffic_trips_completed"]), "trips": int(ds["kpi_traffic_trips"]),
            "mean_tt_s": float(ds["kpi_traffic_mean_travel_time"])}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="small demands (smoke run)")
    args = p.parse_args(argv)
    n, duration = (8, 2400.0) if args.quick else (12, 3000.0)
    demands = [500, 1500] if args.quick else [1500, 4500, 12000]
    run_once(200, "meso", n, 600.0)  # warm-up: numba kernels load from cache / compile once
    rows = []
    head = (f"{'trips':>7} | {'meso veh-s/s':>13} {'wall s':>7} {'done':>6} {'mean tt':>8} | "
            f"{'sumo veh-s/s':>13} {'wall s':>7} {'done':>6} {'mean tt':>8} | {'ratio':>7}")
    print(f"grid {n}x{n}, 200 m links, 2 lanes; trips depart over 30 min; run {duration / 60:.0f} min")
    print(head)
    print("-" * len(head))
    for trips in demands:
        m = run_once(trips, "meso", n, duration)
        s = run_once(trips, "sumo", n, duration)
        ratio = m["speed"] / s["speed"]
        rows.append({"trips": trips, "meso": m, "sumo": s, "ratio": ratio})
        print(f"{trips:>7} | {m['speed']:>13,.0f} {m['wall_s']:>7.1f} {m['completed']:>6} {m['mean_tt_s']:>8.0f} | "
              f"{s['speed']:>13,.0f} {s['wall_s']:>7.1f} {s['completed']:>6} {s['mean_tt_s']:>8.0f} | "
              f"{ratio:>6.0f}x", flush=True)
    print(json.dumps({"bench": "traffic_vs_sumo", "value": round(rows[-1]["ratio"], 1), "unit": "x", "target": 100,
                      "ratios": {r["trips"]: round(r["ratio"], 1) for r in rows},
                      "meso_veh_s_per_s": round(rows[-1]["meso"]["speed"]),
                      "sumo_veh_s_per_s": round(rows[-1]["sumo"]["speed"]), "grid": n}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
