"""Route choice or junctions? Bologna's and Wildau's baselines with every vehicle on its route file's own path.

The traffic fidelity suite (validation/traffic_fidelity.py) compares runs in which SUMO and the built-in model
each route every trip themselves. Here nobody routes: each trip drives the path its route file gives
(``agents/traffic/file_routes.py``: Bologna's ``<route edges>`` as written, a route over bus-only edges joined
around them, Wildau's ``from``/``via``/``to`` flows joined by SUMO's fastest passenger path; a route cars
cannot drive at all is routed as usual, counted). What disagreement remains is queue and junction behaviour.

Models per city: SUMO micro and SUMO meso-jc on the fixed routes (validation/fixed_routes_sumo.py: the
reference runs' network, signal programs, vType, seed and edgeData period, no rerouting device), and the
built-in model with ``traffic.routes_file`` (each vehicle's path given, never re-routed). Beside them, the
routed figures: the built-in model as it routes, and the cached fidelity references (SUMO micro and meso-jc
routed, ``results/.cache/sumo_reference``, read only; missing ones are reported, never run here). Figures as
the fidelity table: mean and p90 travel time of completed trips (s), vehicle-hours of every trip due including
those still running or waiting (h), trips due, completed, gridlock resolutions / teleports, the share of
(link, hour) pairs with GEH < 5 and r of hourly link flows against SUMO micro *of the same routing*, wall
time (s). Then: SUMO micro routed against SUMO micro fixed (how much route choice alone moves SUMO), the share
of vehicles whose route in a routed SUMO micro run (the reference set-up run again with
``--vehroute-output``) differs from the file's, and the links with the largest GEH under fixed routes, with
SUMO micro's per-lane speeds there.

Run: ``.venv/bin/python validation/fixed_routes.py [--cities bologna,wildau] [--cached-only] [--jobs 2]
[--no-route-diff]``; ends with one JSON line ``{"validation": "fixed_routes", ...}``.
"""
from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "validation"))

from agents.traffic.compare import _json_safe, flow_agreement, hourly_link_flows, geh, run_backend, run_figures  # noqa: E402
from fixed_routes_sumo import CITIES, SumoRun, _kill_children, _scenario, fixed_sumo  # noqa: E402

TARGET_GEH5 = 0.85
MODELS = ("builtin", "sumo_micro", "sumo_meso_jc")
_LABEL = {"builtin": "built-in", "sumo_micro": "SUMO micro", "sumo_meso_jc": "SUMO meso-jc"}
_ROWS = [("mean_travel_time_s", "mean travel time", "s", "{:,.1f}"),
         ("p90_travel_time_s", "p90 travel time", "s", "{:,.1f}"),
         ("vehicle_hours", "vehicle-hours (incl. unfinished)", "h", "{:,.1f}"),
         ("trips", "trips due", "1", "{:,.0f}"), ("trips_completed", "completed trips", "1", "{:,.0f}"),
         ("gridlock_resolutions", "gridlock resolutions / teleports", "1", "{:,.0f}"),
         ("geh5_share", "link-hours with GEH < 5 (vs SUMO micro, same routing)", "%", "{:.1%}"),
         ("flow_r", "hourly link flow r (same)", "1", "{:.3f}"), ("wall_time_s", "wall time", "s", "{:,.1f}")]

_LOAD_LOCK = threading.Lock()  # HDF5 is not thread-safe: loads of cached runs from two threads crashed libhdf5


def _locked_loads() -> None:
    """Serialise every ``xarray.load_dataset`` of this process (the SUMO jobs' threads load their results)."""
    import xarray as xr

    orig = xr.load_dataset
    if getattr(orig, "_locked", False):
        return

    def load(*a, **k):
        with _LOAD_LOCK:
            return orig(*a, **k)
    load._locked = True  # type: ignore[attr-defined]
    xr.load_dataset = load


def routed_reference(name: str, mode: str, city) -> SumoRun:
    """The fidelity suite's cached routed SUMO run of a city's baseline (never run here)."""
    import xarray as xr

    from agents.traffic.reference import reference_key

    path = ROOT / CITIES[name]
    key = reference_key(path, "baseline", mode, city)
    nc = ROOT / "results" / ".cache" / "sumo_reference" / f"{path.stem}.baseline.{mode}.{key}.nc"
    if not nc.exists():
        return SumoRun(None, False, key, f"routed reference not in results/.cache/sumo_reference ({nc.name}); "
                                         f"run validation/traffic_fidelity.py")
    return SumoRun(xr.load_dataset(nc), True, key)


def worst_links(b, m, city, k: int = 8) -> list[dict]:
    """Links with the largest GEH of the built-in model (``b``) against SUMO micro (``m``) on one routing, over
    their worst hour: flows, speeds, end junction, and SUMO's per-lane speeds and exits (laneData)."""
    fb, fm = hourly_link_flows(b), hourly_link_flows(m)
    h = min(len(fb), len(fm))
    g = geh(fb[:h], fm[:h])
    worst = np.argsort(-g.max(axis=0), kind="stable")[:k]
    a = city.arrays
    tt = b["time"].values
    out = []
    for ln in worst:
        hr = int(np.argmax(g[:, ln]))
        lid = str(city.link_ids[ln])
        e = {"link": lid, "hour": hr, "geh": float(g[hr, ln]), "builtin_vph": float(fb[hr, ln]),
             "sumo_micro_vph": float(fm[hr, ln]), "length_m": float(a.length_m[ln]), "lanes": int(a.lanes[ln]),
             "end_node": str(city.node_ids[a.link_to[ln]]), "end_signal": bool(a.node_signal[a.link_to[ln]]),
             "freeflow_speed_mps": float(a.speed_mps[ln])}
        sel = (tt > 3600.0 * hr) & (tt <= 3600.0 * (hr + 1))
        for tag, ds in (("builtin", b), ("sumo_micro", m)):
            sp = ds["link_speed"].values[sel, ln].astype(float)
            fl = np.nan_to_num(ds["link_flow"].values[sel, ln].astype(float))
            e[f"{tag}_speed_mps"] = float(np.nansum(sp * fl) / fl.sum()) if fl.sum() > 0 else float("nan")
        if "lane" in m.coords:
            lanes = [str(x) for x in m["lane"].values if str(x).rsplit("_", 1)[0] == lid]
            per = {}
            for lane in lanes:
                ss = m["lane_sampled_s"].sel(lane=lane).values[sel].astype(float)
                sp = m["lane_speed"].sel(lane=lane).values[sel].astype(float)
                ex = m["lane_exits"].sel(lane=lane).values[sel].astype(float)
                ok = ss > 0
                per[lane] = {"exits": float(ex.sum()),
                             "speed_mps": float(np.sum(sp[ok] * ss[ok]) / ss[ok].sum()) if ok.any() else float("nan")}
            e["sumo_micro_lanes"] = per
        out.append(e)
    return out


def builtin_route_differs(T, name: str, sc, city, path) -> dict:
    """Share of the built-in model's arrived vehicles (routed run) whose route differs from the file's path.

    The route buffer holds each vehicle's last route: from departure, or from the link where it last re-routed
    (``reroute_share``); it counts as the file's when it is the file path's part from that link on."""
    from agents.traffic.schema import ARRIVED
    from fixed_routes_sumo import city_demand_paths

    _, paths, _ = city_demand_paths(name, sc, city, path)
    n = min(len(paths), T.n_veh)
    flags = np.full(len(paths), -1, np.int8)  # per trip: 1 differs, 0 the file's, -1 not compared
    last = [None] * len(paths)
    for v in range(n):
        p = paths[v]
        if p is None or T.v_status[v] != ARRIVED:
            continue
        r = T.route_buf[T.v_rstart[v]:T.v_rstart[v] + T.v_rlen[v]]
        last[v] = r.copy()
        flags[v] = 0 if _ends_with(p, r) else 1
    known = flags >= 0
    return {"vehicles_compared": int(known.sum()), "route_differs_share": float((flags[known] == 1).mean()),
            "_flags": flags, "_routes": last}


def _ends_with(full: np.ndarray, part: np.ndarray) -> bool:
    """True when ``part`` is ``full`` from the first link of ``part`` on."""
    at = np.flatnonzero(full == part[0])
    return len(at) > 0 and np.array_equal(full[at[0]:], part)


def builtin_on_sumo_routes(name: str, sc, path: Path, rd: SumoRun, rm: tuple | None) -> dict:
    """The built-in model with SUMO micro's own routes (the routed replica's vehroute output, unfinished vehicles
    included) as fixed paths, against that SUMO run: what choosing SUMO's routes would give."""
    from fixed_routes_sumo import CACHE

    city = _scenario(name)[2]
    routes = rd.ds["trip_sumo_route"].values
    dep = rd.ds["trip_depart"].values
    f = CACHE / f"{name}.baseline.sumo_routes.{rd.key}.rou.xml"
    if not f.exists():
        tmp = f.with_name(f".{f.name}.tmp")
        with open(tmp, "w", encoding="utf-8") as fh:
            fh.write("<routes>\n")
            for v in np.argsort(dep, kind="stable"):
                idx = [int(x) for x in str(routes[v]).split()]
                if idx and min(idx) >= 0:
                    edges = " ".join(str(city.link_ids[i]) for i in idx)
                    fh.write(f'  <vehicle id="{v}" depart="{float(dep[v])!r}"><route edges="{edges}"/></vehicle>\n')
            fh.write("</routes>\n")
        tmp.replace(f)
    rel = os.path.relpath(f, path.parent)
    ds, w = run_backend(path, "baseline", "meso", overrides={"routes_file": rel})
    out: dict = {"builtin_on_sumo_routes_mapping": json.loads(ds.attrs.get("traffic_routes_file", "{}")),
           "builtin_on_sumo_routes_figures": run_figures(ds, w)}
    r, share, _ = flow_agreement(ds, rd.ds)
    out.update(builtin_on_sumo_routes_vs_replica_geh5_share=share, builtin_on_sumo_routes_vs_replica_r=r)
    if rm is not None:
        r, share, _ = flow_agreement(ds, rm[0])
        out.update(builtin_on_sumo_routes_vs_reference_geh5_share=share)
    return out


def run_city(name: str, sumo: dict[tuple[str, str], SumoRun], route_diff: bool) -> dict:
    """Built-in runs (fixed paths, routed) of one city against its SUMO runs; figures, agreement, diagnostics."""
    path, sc, city = _scenario(name)
    res: dict = {"scenario": CITIES[name], "runs": {"fixed": {}, "routed": {}}, "errors": []}
    b_fix, w_fix = run_backend(path, "baseline", "meso", overrides={"routes_file": sc.demand.trips_file})
    from twin.engine import CityTwin

    t = time.perf_counter()
    tw = CityTwin(sc, path.parent)  # routed, as run_backend runs it, keeping the model to read its routes
    b_rt = tw.run()
    w_rt = time.perf_counter() - t
    res["builtin_routed_routes"] = builtin_route_differs(tw.traffic, name, sc, city, path)
    res["mapping"] = json.loads(b_fix.attrs.get("traffic_routes_file", "{}"))
    ds = {("fixed", "builtin"): (b_fix, w_fix), ("routed", "builtin"): (b_rt, w_rt)}
    for model, mode in (("sumo_micro", "micro"), ("sumo_meso_jc", "meso_jc")):
        run = sumo[(name, mode)]
        if run.ds is None:
            res["errors"].append(f"fixed {model}: {run.error}")
        else:
            ds[("fixed", model)] = (run.ds, run.wall_s)
        rr = routed_reference(name, mode, city)
        if rr.ds is None:
            res["errors"].append(f"routed {model}: {rr.error}")
        else:
            ds[("routed", model)] = (rr.ds, rr.wall_s)
    for routing in ("fixed", "routed"):
        micro = ds.get((routing, "sumo_micro"))
        for model in MODELS:
            if (routing, model) not in ds:
                continue
            d, w = ds[(routing, model)]
            f: dict = run_figures(d, w)
            if micro is not None and model != "sumo_micro":
                rr_, share, pairs = flow_agreement(d, micro[0])
                f.update(flow_r=rr_, geh5_share=share, link_hours=pairs)
            res["runs"][routing][model] = f
    cross: dict = {}
    fm, rm = ds.get(("fixed", "sumo_micro")), ds.get(("routed", "sumo_micro"))
    if fm is not None and rm is not None:
        r, share, pairs = flow_agreement(rm[0], fm[0])
        cross["sumo_micro_routed_vs_sumo_micro_fixed"] = {"flow_r": r, "geh5_share": share, "link_hours": pairs}
    if fm is not None:
        r, share, pairs = flow_agreement(b_rt, fm[0])
        cross["builtin_routed_vs_sumo_micro_fixed"] = {"flow_r": r, "geh5_share": share, "link_hours": pairs}
        res["worst_links_fixed"] = worst_links(b_fix, fm[0], city)
    if rm is not None:
        res["worst_links_routed"] = worst_links(b_rt, rm[0], city, k=5)
    rd = sumo.get((name, "micro_routed")) if route_diff else None
    if rd is not None and rd.ds is not None:
        from agents.traffic.schema import ARRIVED

        dif = rd.ds["trip_route_differs"].values
        known = (dif >= 0) & (rd.ds["trip_status"].values == ARRIVED)
        e: dict = {"vehicles_compared": int(known.sum()), "route_differs_share": float((dif[known] == 1).mean())}
        bf = res["builtin_routed_routes"].pop("_flags")
        both = known & (bf[:len(dif)] >= 0)
        sd, bd = dif[both] == 1, bf[:len(dif)][both] == 1
        # which vehicles leave the file's route, per model: the same ones, or others?
        e["joint"] = {"vehicles": int(both.sum()), "both_file_route": float((~sd & ~bd).mean()),
                      "only_sumo_differs": float((sd & ~bd).mean()), "only_builtin_differs": float((~sd & bd).mean()),
                      "both_differ": float((sd & bd).mean())}
        if "trip_sumo_route" in rd.ds:  # the two models' own routes, vehicle by vehicle
            broutes = res["builtin_routed_routes"].pop("_routes")
            sr = rd.ds["trip_sumo_route"].values
            same = other = 0
            same_off = off = 0
            for v in np.flatnonzero(both):
                srt = np.array([int(x) for x in str(sr[v]).split()], np.int64)
                if not len(srt) or broutes[v] is None:
                    continue
                ok = _ends_with(srt, broutes[v])
                same += ok
                other += not ok
                if dif[v] == 1 and bf[v] == 1:
                    off += 1
                    same_off += ok
            e["builtin_route_equals_sumo_route_share"] = same / max(same + other, 1)
            e["both_off_file_same_route_share"] = same_off / max(off, 1)
            e.update(builtin_on_sumo_routes(name, sc, path, rd, rm))
        if rm is not None:  # the replica against the reference routed run: the same set-up run again
            r, share, _ = flow_agreement(rd.ds, rm[0])
            e.update(replica_vs_reference_geh5_share=share, replica_vs_reference_r=r)
        if fm is not None:
            r, share, _ = flow_agreement(rd.ds, fm[0])
            e.update(replica_vs_fixed_micro_geh5_share=share)
        cross["sumo_micro_routed_routes"] = e
    elif route_diff:
        res["errors"].append(f"routed SUMO micro with vehroute output: {rd.error if rd else 'not run'}")
    res["cross"] = cross
    res["builtin_routed_routes"].pop("_flags", None)
    res["builtin_routed_routes"].pop("_routes", None)
    fx = res["runs"]["fixed"].get("builtin", {})
    res["fixed_geh5_at_least_85pct"] = bool(fx.get("geh5_share", 0.0) >= TARGET_GEH5)
    return res


def _cell(fmt: str, v) -> str:
    if v is None or (isinstance(v, float) and not np.isfinite(v)):
        return "n/a"
    return fmt.format(v)


def format_city(name: str, res: dict) -> str:
    """Markdown tables of one city: fixed and routed side by side, cross agreements, worst links."""
    lines = [f"### {name} ({res['scenario']}, baseline): fixed routes vs routed", "",
             f"route mapping: {json.dumps({k: v for k, v in res['mapping'].items() if k != 'routed_fallback_examples'})}",
             "", "| measure | unit | " + " | ".join(f"{r}: {_LABEL[m]}" for r in ("fixed", "routed") for m in MODELS)
             + " |", "|" + "---|" * 8]
    for key, label, unit, fmt in _ROWS:
        cells = []
        for routing in ("fixed", "routed"):
            for m in MODELS:
                f = res["runs"][routing].get(m)
                if m == "sumo_micro" and key in ("geh5_share", "flow_r"):
                    cells.append("ref")
                else:
                    cells.append(_cell(fmt, f.get(key) if f else None))
        lines.append(f"| {label} | {'' if unit == '%' else unit} | " + " | ".join(cells) + " |")
    c = res.get("cross", {})
    if c:
        lines += ["", "| cross comparison | link-hours GEH < 5 | r |", "|---|---|---|"]
        for k, lab in (("sumo_micro_routed_vs_sumo_micro_fixed", "SUMO micro routed vs SUMO micro fixed"),
                       ("builtin_routed_vs_sumo_micro_fixed", "built-in routed vs SUMO micro fixed")):
            if k in c:
                lines.append(f"| {lab} | {_cell('{:.1%}', c[k]['geh5_share'])} | {_cell('{:.3f}', c[k]['flow_r'])} |")
        e = res.get("builtin_routed_routes")
        if e:
            lines += ["", f"built-in routed: {e['route_differs_share']:.1%} of {e['vehicles_compared']:,} arrived vehicles "
                          f"finished on another route than the file's (last route in the buffer)"]
        e = c.get("sumo_micro_routed_routes")
        if e:
            lines += ["", f"SUMO micro routed (reference set-up, run again with --vehroute-output): "
                          f"{e['route_differs_share']:.1%} of {e['vehicles_compared']:,} arrived vehicles drove another "
                          f"edge list than the file's; this replica vs the cached reference: GEH < 5 on "
                          f"{_cell('{:.1%}', e.get('replica_vs_reference_geh5_share'))}"]
            j = e.get("joint")
            if j:
                lines += ["", f"per vehicle ({j['vehicles']:,} arrived in both): both on the file's route "
                              f"{j['both_file_route']:.1%}, only SUMO off it {j['only_sumo_differs']:.1%}, only the "
                              f"built-in off it {j['only_builtin_differs']:.1%}, both off it {j['both_differ']:.1%}"]
            if "builtin_route_equals_sumo_route_share" in e:
                lines += ["", f"the built-in model's route is SUMO micro's route (same edges from where the built-in "
                              f"last routed) for {e['builtin_route_equals_sumo_route_share']:.1%} of those vehicles; "
                              f"of those both models took off the file's route, "
                              f"{e['both_off_file_same_route_share']:.1%} took the same other route"]
            if "builtin_on_sumo_routes_vs_replica_geh5_share" in e:
                mp = e["builtin_on_sumo_routes_mapping"]
                fg = e["builtin_on_sumo_routes_figures"]
                lines += ["", f"built-in model on SUMO micro's own routes "
                              f"({mp.get('trips', 0) - mp.get('routed_fallback', 0):,} of {mp.get('trips', 0):,} trips "
                              f"given SUMO's route, {mp.get('routed_fallback', 0):,} routed): GEH < 5 on "
                              f"{e['builtin_on_sumo_routes_vs_replica_geh5_share']:.1%} of link-hours against that SUMO run "
                              f"(r {e['builtin_on_sumo_routes_vs_replica_r']:.3f}), "
                              f"{_cell('{:.1%}', e.get('builtin_on_sumo_routes_vs_reference_geh5_share'))} against the "
                              f"cached routed reference; mean travel time {fg['mean_travel_time_s']:.1f} s"]
    wl = res.get("worst_links_fixed")
    if wl:
        lines += ["", "| worst links, fixed routes | hour | GEH | built-in veh/h | SUMO micro veh/h | length m | lanes | "
                      "end junction | built-in speed m/s | SUMO speed m/s | SUMO per lane (exits, m/s) |",
                  "|" + "---|" * 11]
        for e in wl:
            lanes = "; ".join(f"{k.rsplit('_', 1)[1]}: {v['exits']:.0f}, {_cell('{:.1f}', v['speed_mps'])}"
                              for k, v in e.get("sumo_micro_lanes", {}).items())
            lines.append(f"| {e['link']} | {e['hour']} | {e['geh']:.1f} | {e['builtin_vph']:.0f} | "
                         f"{e['sumo_micro_vph']:.0f} | {e['length_m']:.0f} | {e['lanes']} | {e['end_node']}"
                         f"{' (signal)' if e['end_signal'] else ''} | {_cell('{:.1f}', e['builtin_speed_mps'])} | "
                         f"{_cell('{:.1f}', e['sumo_micro_speed_mps'])} | {lanes} |")
    if res["errors"]:
        lines += ["", "errors: " + "; ".join(res["errors"])]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--cities", default=",".join(CITIES), help=f"comma-separated subset of {', '.join(CITIES)}")
    ap.add_argument("--cached-only", action="store_true", help="run no SUMO: use cached fixed-route runs only")
    ap.add_argument("--jobs", type=int, default=2, help="SUMO runs at once (child processes)")
    ap.add_argument("--no-route-diff", action="store_true",
                    help="skip the routed SUMO micro run with --vehroute-output (share of routes that differ)")
    args = ap.parse_args(argv)
    names = [c.strip() for c in args.cities.split(",") if c.strip()]
    bad = [c for c in names if c not in CITIES]
    if bad or args.jobs < 1:
        print(f"--cities: {', '.join(bad)} — not a fixed-route city; choose from {', '.join(CITIES)}" if bad
              else "--jobs: at least 1", file=sys.stderr)
        return 2
    _locked_loads()
    signal.signal(signal.SIGTERM, lambda *a: (_kill_children(), sys.exit(143)))
    t0 = time.perf_counter()
    modes = ("micro", "meso_jc") + (() if args.no_route_diff else ("micro_routed",))
    jobs = [(c, m) for c in names for m in modes]

    def one(job):
        t = time.perf_counter()
        r = fixed_sumo(job[0], job[1], cached_only=args.cached_only)
        how = "cached" if r.cached else ("FAILED: " + r.error if r.ds is None else "ran")
        print(f"  {job[0]} fixed-route SUMO {job[1]}: {how} ({time.perf_counter() - t:.0f} s)", file=sys.stderr,
              flush=True)
        return job, r

    try:
        with ThreadPoolExecutor(max_workers=args.jobs) as pool:
            sumo = dict(pool.map(one, jobs))
    except KeyboardInterrupt:
        _kill_children()
        raise
    run_backend(ROOT / "scenarios" / "wildau.yaml", "gravity_prior", "meso")  # compile the kernels outside timing
    cities = {}
    for c in names:
        cities[c] = run_city(c, sumo, not args.no_route_diff)
        print(format_city(c, cities[c]))
        print()
    n_cached = sum(r.cached for r in sumo.values())
    print(f"fixed-route SUMO runs reused from the cache: {n_cached} of {len(sumo)} (their wall times are from when "
          f"they ran); total wall time {time.perf_counter() - t0:.0f} s")
    summary = {c: {"fixed_builtin_geh5": r["runs"]["fixed"].get("builtin", {}).get("geh5_share"),
                   "fixed_meso_jc_geh5": r["runs"]["fixed"].get("sumo_meso_jc", {}).get("geh5_share"),
                   "routed_builtin_geh5": r["runs"]["routed"].get("builtin", {}).get("geh5_share"),
                   "gap_is_route_choice": r["fixed_geh5_at_least_85pct"]} for c, r in cities.items()}
    print("summary: " + json.dumps(_json_safe(summary)))
    print(json.dumps(_json_safe({"validation": "fixed_routes", "target_geh5": TARGET_GEH5, "summary": summary,
                                 "cities": cities, "sumo_cached_runs": n_cached, "sumo_runs": len(sumo)})))
    return 0


if __name__ == "__main__":
    sys.exit(main())
