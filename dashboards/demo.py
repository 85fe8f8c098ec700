"""A small all-domain results file for tests, docs and demos (a 6 x 6 grid town; about 20 s to run)."""
from __future__ import annotations

import copy
from pathlib import Path

__all__ = ["DEMO_SCENARIO", "make_demo_results", "make_synthetic_city"]

DEMO_SCENARIO: dict = {
    "name": "demo_town",
    "description": "A small grid town at the evening peak: cars, EV charging, an open-air event and ambulances.",
    "seed": 1,
    "city": {"source": "grid", "name": "Demo Town", "grid": {"nx": 6, "ny": 6, "spacing_m": 300}},
    "time": {"start": "17:00", "duration_s": 1800, "step_s": 1, "record_interval_s": 300},
    "demand": {"trips": 900, "model": "uniform"},
    "traffic": {"backend": "meso"},
    "ev": {"share": 0.3, "grid_limit_kw": 60, "soc_init_mean": 0.3,
           "stations": [{"node": "n2_2", "plugs": 2, "power_kw": 50.0},
                        {"node": "n4_4", "plugs": 2, "power_kw": 22.0}]},
    "emergency": {"stations_from_osm": False, "hospitals_from_osm": False, "demand_scale": 40,
                  "incident_types": {"medical": {"rate_per_day": 14, "units": {"ambulance": 1}, "target_s": 300,
                                                 "on_scene_s": 600, "transport_prob": 0.0}},
                  "stations": [{"name": "Central", "node": "n1_1",
                                "units": [{"type": "ambulance", "count": 3}]}]},
    "crowd": {"dt_s": 0.075, "warn_density": 1.5, "critical_density": 2.5, "warn_duration_s": 5,
              "venues": [{"name": "square", "origin": [600, 600],
                          "polygon": [[0, 0], [24, 0], [24, 16], [0, 16]],
                          "exits": [{"name": "gate", "at": [12, 0], "width_m": 1.5}], "attractor": [12, 14],
                          "arrivals": {"persons": 300, "start_s": 0, "end_s": 300},
                          "egress": {"start_s": 600, "spread_s": 30}}]},
    "variants": {
        "closure": {"description": "A central link is closed from 17:05.",
                    "traffic": {"closures": [{"link": "n2_2>n3_2", "start_s": 300},
                                             {"link": "n3_2>n2_2", "start_s": 300}]}},
        "more_demand": {"description": "50% more trips.", "demand": {"scale": 1.5}},
        # other stations and another venue than the baseline: the views must not mix them up
        "ev_hub": {"description": "A fast-charging hub at n0_5 and the event moved to the market.",
                   "ev": {"stations": [{"node": "n2_2", "plugs": 2, "power_kw": 50.0},
                                       {"node": "n4_4", "plugs": 2, "power_kw": 22.0},
                                       {"name": "hub", "node": "n0_5", "plugs": 4, "power_kw": 150.0}]},
                   "crowd": {"venues": [{"name": "market", "origin": [900, 300],
                                         "polygon": [[0, 0], [20, 0], [20, 20], [0, 20]],
                                         "exits": [{"name": "gate", "at": [10, 0], "width_m": 1.5}],
                                         "attractor": [10, 18],
                                         "arrivals": {"persons": 250, "start_s": 0, "end_s": 300},
                                         "egress": {"start_s": 600, "spread_s": 30}}]}},
    },
}


def make_demo_results(out_dir: str | Path, domains: tuple[str, ...] = ("traffic", "ev", "emergency", "crowd"),
                      variants: tuple[str, ...] | None = None, name: str | None = None) -> Path:
    """Run the demo town (only ``domains``; ``variants`` of it, default all) and write ``<name>.nc`` into ``out_dir``."""
    from twin.engine import CityTwin
    from twin.results import stack_variants, write_atomic
    from twin.scenario import resolve_variants

    doc = copy.deepcopy(DEMO_SCENARIO)
    for d in ("ev", "emergency", "crowd"):
        if d not in domains:
            doc.pop(d)
    if variants is not None:
        doc["variants"] = {k: v for k, v in doc["variants"].items() if k in variants}
    if name:
        doc["name"] = name
    out_dir = Path(out_dir)
    scen = resolve_variants(doc, out_dir / f"{doc['name']}.yaml")
    runs = {v: CityTwin(sc, out_dir).run() for v, sc in scen.items()}
    return write_atomic(stack_variants(runs), out_dir / f"{doc['name']}.nc")


def make_synthetic_city(folder: str | Path, nx: int = 51, ny: int = 51, n_t: int = 288) -> Path:
    """A 10,200-link grid city with a day of 5-minute intervals (random but plausible traffic)."""
    import numpy as np
    import xarray as xr

    from twin.results import write_atomic

    xs, ys = np.meshgrid(np.arange(nx) * 150.0, np.arange(ny) * 150.0)
    node_x, node_y = xs.ravel(), ys.ravel()
    idx = np.arange(nx * ny).reshape(ny, nx)
    frm = np.r_[idx[:, :-1].ravel(), idx[:, 1:].ravel(), idx[:-1, :].ravel(), idx[1:, :].ravel()]
    to = np.r_[idx[:, 1:].ravel(), idx[:, :-1].ravel(), idx[1:, :].ravel(), idx[:-1, :].ravel()]
    L = len(frm)
    rng = np.random.default_rng(0)
    t = 300.0 * np.arange(1, n_t + 1)
    day = 0.5 + 0.5 * np.sin((t / 86400.0) * 2 * np.pi - np.pi / 2) ** 2
    load = (day[:, None] * rng.uniform(0.2, 1.2, L)[None, :]).astype(np.float32)
    ff = np.full(L, 13.89, np.float32)
    ds = xr.Dataset(
        {"link_flow": (("time", "link"), 800 * load), "link_speed": (("time", "link"), ff * np.clip(1.2 - load, 0.05, 1)),
         "link_vehicles": (("time", "link"), 10 * load), "link_queue": (("time", "link"), np.maximum(load - 0.8, 0) * 20),
         "link_from": ("link", frm), "link_to": ("link", to), "link_length": ("link", np.full(L, 150.0)),
         "link_freeflow_speed": ("link", ff), "link_capacity": ("link", np.full(L, 1800.0)),
         "net_running": ("time", (5000 * day).astype(np.int64)), "net_waiting": ("time", np.zeros(n_t, np.int64)),
         "node_x": ("node", node_x), "node_y": ("node", node_y),
         "kpi_traffic_mean_travel_time": ((), 300.0, {"units": "s", "long_name": "mean trip travel time",
                                                      "better": "lower", "domain": "traffic"})},
        coords={"time": t, "link": np.array([f"l{i}" for i in range(L)], dtype=object),
                "node": np.array([str(i) for i in range(nx * ny)], dtype=object)},
        attrs={"scenario_name": "big_city", "clock_start": "00:00", "city": "Synthetic 10k"})
    return write_atomic(ds, Path(folder) / "big_city.nc")
