"""Emergency-response benchmark (not a test): ``python bench/emergency.py`` (no arguments; a few minutes).

A day in Bad Hersfeld (DLR's SUMO network, real stations and hospitals from the OSM extract) with the
meso traffic model (20,000 car trips, weekday profile) and about 3,000 emergency calls (the default
rates x 180; 60 ambulances per ambulance station, 10 engines per fire station, so peak hours are
loaded but stable). Dispatch is congestion-aware (a reverse Dijkstra on live link times per request);
units drive through the traffic model.
Cases: the coupled run, the same day without the emergency domain (to isolate its cost), and the
dispatch policies on the same calls with fixed-time drives (the domain's own throughput).
Ends with one JSON line; value = incidents handled per wall second of the coupled run.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import yaml  # noqa: E402

from twin.scenario import deep_merge, resolve_variants  # noqa: E402

SCENARIO = ROOT / "scenarios" / "bad_hersfeld.yaml"
EMERGENCY = {"demand_scale": 180.0, "units": {"ambulance": 60, "fire": 10}, "policy": "congested",
             "hospital_names": ["Klinikum Bad Hersfeld"]}


def _scenario(hours: float, trips: int, emergency: dict | None):
    doc = yaml.safe_load(SCENARIO.read_text())
    doc.pop("variants", None)
    doc.pop("emergency", None)
    over = {"time": {"start": "00:00", "duration_s": hours * 3600.0, "record_interval_s": 900.0},
            "demand": {"trips": trips, "profile": "weekday", "end_s": None}}
    if emergency is not None:
        over["emergency"] = emergency
    return resolve_variants(deep_merge(doc, over), SCENARIO)["baseline"]


def _coupled(hours: float, trips: int, emergency: dict | None) -> dict:
    from twin.engine import CityTwin

    sc = _scenario(hours, trips, emergency)
    twin = CityTwin(sc, SCENARIO.parent)
    t0 = time.perf_counter()
    twin.run()
    wall = time.perf_counter() - t0
    row = {"wall_s": wall, "trips": int(twin.kpis()["traffic"]["trips"].value)}
    if "emergency" in twin.domains:
        k = twin.kpis()["emergency"]
        row.update(calls=int(k["incidents"].value), resp_med_s=k["response_median_s"].value,
                   resp_p90_s=k["response_p90_s"].value, within=k["within_target"].value,
                   coverage=k["coverage"].value, util=k["unit_utilisation"].value,
                   dispatches=twin.domains["emergency"].centre.dispatches)
    return row, twin


def _dispatch_only(city, emergency: dict, hours: float) -> dict:
    """The emergency domain alone on the city: every drive takes 240 s (no traffic kernel)."""
    from agents.emergency.config import EmergencyConfig
    from agents.emergency.domain import EmergencyDomain
    from agents.traffic.standins import FixedTimeTraffic
    from twin.context import DomainContext
    from twin.engine import Engine

    dom = EmergencyDomain(EmergencyConfig.model_validate(emergency))
    twin = Engine(DomainContext.for_city(city, hours * 3600.0, 900.0, seed=42),
                  {"traffic": FixedTimeTraffic(240.0), "emergency": dom})
    t0 = time.perf_counter()
    twin.run()
    wall = time.perf_counter() - t0
    k = dom.kpis()
    return {"wall_s": wall, "calls": int(k["incidents"].value), "dispatches": dom.centre.dispatches,
            "within": k["within_target"].value, "util": k["unit_utilisation"].value}


def _table(rows: list[tuple[str, dict]]) -> None:
    cols = [("wall_s", "wall s", "{:.1f}"), ("calls", "calls", "{:d}"), ("per_s", "calls/wall-s", "{:.1f}"),
            ("trips", "car trips", "{:d}"), ("resp_med_s", "resp med s", "{:.0f}"),
            ("resp_p90_s", "resp p90 s", "{:.0f}"), ("within", "in target", "{:.3f}"),
            ("coverage", "coverage", "{:.3f}"), ("util", "util", "{:.3f}")]
    head = f"{'case':<34}" + "".join(f"{h:>13}" for _, h, _ in cols)
    print(head)
    print("-" * len(head))
    for name, r in rows:
        cells = []
        for key, _, f in cols:
            v = r.get(key)
            cells.append(f"{'-':>13}" if v is None else f"{f.format(v):>13}")
        print(f"{name:<34}" + "".join(cells))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--hours", type=float, default=24.0, help="simulated hours (default 24)")
    ap.add_argument("--trips", type=int, default=20000, help="car trips over the run (default 20,000)")
    args = ap.parse_args(argv)
    load0 = os.getloadavg()[0]
    rows = []
    coupled, twin = _coupled(args.hours, args.trips, EMERGENCY)
    coupled["per_s"] = coupled["calls"] / coupled["wall_s"]
    rows.append(("coupled: meso traffic + emergency", coupled))
    traffic_only, _ = _coupled(args.hours, args.trips, None)
    rows.append(("traffic only (same day)", traffic_only))
    extra_s = max(coupled["wall_s"] - traffic_only["wall_s"], 1e-9)
    rows.append(("difference (emergency cost; noisy)", {"wall_s": extra_s, "calls": coupled["calls"],
                                                     "per_s": coupled["calls"] / extra_s}))
    for policy in ("congested", "distance", "station_area"):
        r = _dispatch_only(twin.city, {**EMERGENCY, "policy": policy}, args.hours)
        r["per_s"] = r["calls"] / r["wall_s"]
        rows.append((f"dispatch only ({policy}, fixed 240 s)", r))
    a = twin.city.arrays
    print(f"Bad Hersfeld: {a.n_nodes} nodes, {a.n_links} links; {args.hours:g} h; "
          f"{len(twin.domains['emergency'].units)} units at {len(twin.domains['emergency'].stations)} stations; "
          f"load average {load0:.2f} -> {os.getloadavg()[0]:.2f} on {os.cpu_count()} cpus")
    _table(rows)
    out = {"bench": "emergency", "value": round(coupled["per_s"], 2), "unit": "incidents/s",
           "calls": coupled["calls"], "hours": args.hours, "car_trips": coupled["trips"],
           "coupled_wall_s": round(coupled["wall_s"], 2), "traffic_only_wall_s": round(traffic_only["wall_s"], 2),
           "emergency_only_incidents_per_s": round(coupled["calls"] / extra_s, 1),
           "dispatch_only_incidents_per_s": {n.split("(")[1].split(",")[0]: round(r["per_s"], 1)
                                             for n, r in rows if n.startswith("dispatch only")},
           "response_median_s": round(coupled["resp_med_s"], 1), "response_p90_s": round(coupled["resp_p90_s"], 1),
           "within_target": round(coupled["within"], 4), "coverage": round(coupled["coverage"], 4),
           "policy": "congested", "loadavg_1m": round(os.getloadavg()[0], 2)}
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
