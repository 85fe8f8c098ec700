"""Traffic bench: the built-in meso kernel through the real engine path, side by side with UXsim.

    .venv/bin/python -m bench.traffic            # the whole bench (< 10 min on 2 cores), table + one JSON line
    .venv/bin/python -m bench.traffic --quick    # 1k and 10k trips only, for quick iterations
    .venv/bin/python -m bench.traffic --no-uxsim # skip UXsim (it is optional anyway)

Two ladders of growing demand on growing synthetic grids (200 m links, 1 lane, 13.89 m/s, 1800 veh/h,
gravity demand), 1 s steps, every vehicle individually, re-routing on (engine defaults):

    day:  24 h weekday profile   1k trips on 10x10 (360 links), 10k on 16x16 (960), 100k on 25x25 (2,400),
                                 1M on 36x36 (5,040 links)  <- the goal case
    peak: 2 h from 07:00         1k / 10k / 100k on the same grids  <- the UXsim comparison input

UXsim at platoon size 1 keeps ~4 float64 per link per time step (C++) plus one in its Python wrapper (a whole
day: ~3.5 MB per link, 1.5 GB for 360 links, 8.3 GB for 2,400) and one float64 per link per vehicle (its
route_preference vector: 1.9 GB for 100k vehicles on 2,400 links, 40 GB for 1M on 5,040). The comparison
therefore runs on the 2 h peak input, plus the day cases that fit; UXsim cases predicted to need more than
4.5 GB or 3 minutes are skipped and listed.

Every case runs in a fresh subprocess (its own ru_maxrss). CityTwin cases go scenario dict ->
twin.scenario.resolve_variants -> twin.engine.CityTwin(...).run(), after two short warm-up runs in the
same process (timed separately; a separate case measures numba's cold compile with an empty cache).
The timed run is instrumented (wrappers around the kernel calls, no change to the engine) to split the
wall time into kernel stepping, routing-table refresh, en-route re-routing, recording and the rest.

UXsim gets the very same trips: its child process builds the same scenario, draws the demand with the
engine's own generator and seed (checked by a CRC of origin/destination/departure arrays), and adds
one vehicle per trip with W.addVehicle(orig, dest, departure_time) at platoon size 1 (deltan=1),
same node names, link lengths, speeds, lanes, outflow capacity and jam density (see docs/bench_traffic.md).

Vehicle-seconds, for both tools alike: sum over trips that departed before the end of
(arrival or end of run) - scheduled departure, i.e. time on the road including waiting to enter.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
import zlib
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make the project importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._common import ROOT, emit_result, final_json, machine_info, print_table, run_case  # noqa: E402

DAY_S = 86400.0
# (label, trips, grid nodes per side); links = 4 n (n - 1)
DAY_CASES = [("1k", 1_000, 10), ("10k", 10_000, 16), ("100k", 100_000, 25), ("1M", 1_000_000, 36)]
# the comparison input: the same grids and trip counts in a 2 h morning peak (UXsim at deltan=1 keeps
# ~4 float64 per link per time step, so a whole day on 960+ links needs 3+ GB in UXsim alone)
PEAK_S, PEAK_START = 7200.0, "07:00"
PEAK_CASES = DAY_CASES[:3]
SKIP_MEM_GB = 4.5  # skip UXsim cases predicted above this (shared machine)
UX_BYTES_PER_LINK_STEP = 40.0  # 4 x float64 in C++ + 1 x float64 in the Python wrapper
UX_BYTES_PER_LINK_VEH = 8.0  # C++ Vehicle::route_preference, one float64 per link
TARGET_WALL_S = 60.0
TARGET_MEM_GB = 3.0
TARGET_RATIO = 10.0
BUDGET_S = 570.0  # the whole bench must stay under 10 minutes
SKIP_PREDICTED_S = 180.0  # skip UXsim cases predicted to take longer than this
# UXsim Python engine cost model for skipping (measured here, loaded 2-core machine): ~1 ms per step on
# 360 links and ~7 ms on 1,520 links with almost no vehicles (3-5 us per link-step), plus ~20k vehicle-s
# per wall-s (NOTES.md) for the vehicles themselves.
UXPY_LINK_STEP_S = 3.5e-6
UXPY_VEH_S_PER_S = 20_000.0
# UXsim C++: ~80 ns per link-step with an empty network (measured here), 0.67 M vehicle-s/s (NOTES.md)
UXCPP_LINK_STEP_S = 8e-8
UXCPP_VEH_S_PER_S = 670_000.0


# =========================================================================== scenario (shared by both tools)
def scenario_doc(n: int, trips: int, duration_s: float = DAY_S, start: str = "00:00", seed: int = 1) -> dict:
    """The bench scenario as plain data (what a YAML file would hold)."""
    return {
        "name": f"bench-grid{n}-{trips}", "seed": seed,
        "city": {"source": "grid", "grid": {"nx": n, "ny": n, "spacing_m": 200.0, "lanes": 1, "speed_mps": 13.89},
                 "capacity_per_lane_vph": 1800.0, "zone_cell_m": 1000.0},
        "time": {"start": start, "duration_s": duration_s, "step_s": 1.0, "record_interval_s": 300.0},
        "demand": {"trips": trips, "model": "gravity", "profile": "weekday"},
        # reroute every 300 s, 10 % of drivers, jam spacing 7.5 m; the SUMO-calibrated junction delays and speed
        # scale are switched off so both tools simulate the same link model on this signal-free grid
        "traffic": {"backend": "meso", "speed_scale": 1.0},
        "outputs": {"report": False},
    }


def _resolve(doc: dict):
    from twin.scenario import resolve_variants

    return resolve_variants(doc, ROOT / "scenarios" / "bench_traffic.yaml")["baseline"]


def _trips_crc(o, d, dep) -> int:
    import numpy as np

    h = zlib.crc32(np.ascontiguousarray(o, np.int32).tobytes())
    h = zlib.crc32(np.ascontiguousarray(d, np.int32).tobytes(), h)
    return zlib.crc32(np.round(np.asarray(dep, np.float64), 3).tobytes(), h)


def _veh_seconds(dep, arr, end_s):
    """Vehicle-seconds on the road (incl. waiting to enter) up to ``end_s``; ``arr`` NaN/negative = not arrived."""
    import numpy as np

    dep = np.asarray(dep, float)
    arr = np.asarray(arr, float)
    started = dep < end_s
    a = np.where(np.isfinite(arr) & (arr >= 0), np.minimum(arr, end_s), end_s)
    return float(np.maximum(a - dep, 0.0)[started].sum())


# =========================================================================== child: CityTwin
def _instrument(T: dict) -> None:
    """Wrap the traffic kernel entry points as the meso module sees them, timing each one's own (exclusive) wall and
    CPU time: a kernel called inside another timed call (advance inside record's catch-up, route_tables
    inside setup) counts only once, under itself."""
    import agents.traffic.meso as meso
    import agents.traffic.meso_kernel as meso_kernel
    import twin.engine as eng

    stack: list[list[float]] = []  # per active wrapper: [child wall, child cpu]

    def wrap(obj, name, key):
        fn = getattr(obj, name)

        def w(*a, **k):
            stack.append([0.0, 0.0])
            t0, c0 = time.perf_counter(), time.process_time()
            try:
                return fn(*a, **k)
            finally:
                dw, dc = time.perf_counter() - t0, time.process_time() - c0
                cw, cc = stack.pop()
                if stack:
                    stack[-1][0] += dw
                    stack[-1][1] += dc
                T[key] = T.get(key, 0.0) + dw - cw
                T[key + "_cpu"] = T.get(key + "_cpu", 0.0) + dc - cc
                T[key + "_calls"] = T.get(key + "_calls", 0) + 1

        setattr(obj, name, w)

    class _K:  # stands in for the kernel module inside meso (meso calls K.advance etc.)
        def __getattr__(self, item):
            return getattr(meso_kernel, item)

    proxy = _K()
    for name in ("advance", "reroute_share", "link_costs", "queue_lengths"):
        setattr(proxy, name, getattr(meso_kernel, name))
        wrap(proxy, name, name)
    meso.K = proxy
    wrap(meso, "route_tables", "route_tables")
    wrap(meso, "update_route_tables", "update_route_tables")
    wrap(meso.MesoTraffic, "record", "record")
    wrap(meso.MesoTraffic, "finalize", "finalize")
    wrap(meso.MesoTraffic, "setup", "traffic_setup")
    wrap(eng, "generate_trips", "demand_generation")
    wrap(eng.CityTwin, "results", "results")


def child_engine(spec: dict) -> dict:
    import numpy as np

    t_imp = time.perf_counter()
    from twin.engine import CityTwin

    out: dict = {"tool": "citytwin", "import_s": time.perf_counter() - t_imp}
    import numba

    out["numba_threads"] = numba.get_num_threads()
    # warm-up: a tiny run loads (or compiles) the numba kernels, then a short busy run on a grid one node smaller than
    # the case's (another city, so the timed run still builds its own; the same serial or threaded routing-table
    # repair, which the tiny run never reaches): with an empty numba cache the repair kernels were otherwise compiled
    # inside the timed run (~2.5 s of the peak 10k case's run)
    t0 = time.perf_counter()
    CityTwin(_resolve(scenario_doc(3, 20, duration_s=900.0)), ROOT / "scenarios").run()
    nw = max(3, spec["n"] - 1)  # 6 trips per link in 15 minutes: link costs change, so the tables are repaired
    CityTwin(_resolve(scenario_doc(nw, 6 * 4 * nw * (nw - 1), duration_s=900.0, start="07:00")),
             ROOT / "scenarios").run()
    out["warmup_s"] = time.perf_counter() - t0
    T: dict = {}
    _instrument(T)
    doc = scenario_doc(spec["n"], spec["trips"], spec["duration_s"], spec["start"])
    t0 = time.perf_counter()
    sc = _resolve(doc)
    out["resolve_s"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    tw = CityTwin(sc, ROOT / "scenarios")
    out["build_city_s"] = time.perf_counter() - t0
    t0, c0 = time.perf_counter(), time.process_time()
    ds = tw.run()
    out["run_s"] = time.perf_counter() - t0
    out["run_cpu_s"] = time.process_time() - c0
    tr = tw.traffic
    n = tr.n_veh
    end = tw.duration_s
    dep, arr, st = tr.v_depart[:n], tr.v_arrive[:n], tr.v_status[:n]
    from agents.traffic import meso_kernel as K

    arr_ok = np.where(st == K.ARRIVED, arr, np.nan)
    out.update({
        "links": int(tr.L), "nodes": int(tr.N), "trips": int(n),
        "trips_crc": _trips_crc(tr.v_orig[:n], tr.v_dest[:n], dep),
        "veh_s": _veh_seconds(np.where(st == K.UNROUTABLE, np.inf, dep), arr_ok, end),
        "completed": int((st == K.ARRIVED).sum()), "unroutable": int((st == K.UNROUTABLE).sum()),
        "mean_tt_s": float(np.nanmean(arr_ok - dep)) if (st == K.ARRIVED).any() else None,
        "vehicle_km": float(tr.v_dist[:n].sum() / 1000.0), "reroutes": int(tr.reroutes),
        "table_updates": int(tr.table_updates), "dests": int(len(tr.dests)), "result_vars": len(ds.data_vars),
    })
    out["phases"] = {k: (round(v, 4) if isinstance(v, float) else v) for k, v in T.items()}
    return out


def child_compile(spec: dict) -> dict:
    """Cold numba compile (NUMBA_CACHE_DIR is an empty temp folder, set by the parent) vs a second, warm run."""
    t0 = time.perf_counter()
    from twin.engine import CityTwin

    imp = time.perf_counter() - t0
    sc = _resolve(scenario_doc(3, 20, duration_s=900.0))
    t0 = time.perf_counter()
    CityTwin(sc, ROOT / "scenarios").run()
    first = time.perf_counter() - t0
    t0 = time.perf_counter()
    CityTwin(sc, ROOT / "scenarios").run()
    second = time.perf_counter() - t0
    return {"tool": "compile", "import_s": imp, "first_run_s": first, "second_run_s": second,
            "cache_dir": os.environ.get("NUMBA_CACHE_DIR", "(default)")}


# =========================================================================== child: UXsim
def child_uxsim(spec: dict) -> dict:
    import numpy as np

    out: dict = {"tool": "uxsim_cpp" if spec["cpp"] else "uxsim_py"}
    try:
        import uxsim
        from uxsim import World
    except ImportError as exc:
        return {**out, "error": f"uxsim not installed ({exc})"}
    out["uxsim_version"] = getattr(uxsim, "__version__", "?")
    from twin.demand import generate_trips
    from twin.engine import CityTwin

    sc = _resolve(scenario_doc(spec["n"], spec["trips"], spec["duration_s"], spec["start"]))
    tw = CityTwin(sc, ROOT / "scenarios")
    # exactly the engine's demand: same generator, same seed stream, same call as CityTwin.setup
    trips = generate_trips(sc.demand, tw.city, tw.spawn_rng("demand"), tw.duration_s, sc.time.start_hour,
                           resolve=tw.resolve_path, source=str(tw.scenario_dir))
    o, d, dep = trips["origin"], trips["destination"], trips["depart_s"]
    out["trips_crc"] = _trips_crc(o, d, dep)
    tc = sc.domain_configs["traffic"]
    a = tw.city.arrays
    names = [str(x) for x in tw.city.node_ids]
    t0 = time.perf_counter()
    W = World(name="bench", deltan=1, reaction_time=float(sc.time.step_s), tmax=float(tw.duration_s),
              duo_update_time=float(tc.reroute_interval_s), random_seed=0, print_mode=0, save_mode=0,
              show_mode=0, show_progress=0, vehicle_logging_timestep_interval=-1, cpp=bool(spec["cpp"]))
    for i, nm in enumerate(names):
        W.addNode(nm, float(a.node_x[i]), float(a.node_y[i]))
    link_ids = tw.city.link_ids
    for lk in range(a.n_links):
        W.addLink(str(link_ids[lk]), names[a.link_from[lk]], names[a.link_to[lk]], float(a.length_m[lk]),
                  free_flow_speed=float(a.speed_mps[lk] * tc.speed_scale),
                  jam_density_per_lane=1.0 / tc.jam_spacing_m, number_of_lanes=int(a.lanes[lk]),
                  capacity_out=float(a.capacity_vph[lk] / 3600.0 * tc.capacity_scale))
    out["build_net_s"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    for i in range(len(o)):
        W.addVehicle(names[o[i]], names[d[i]], float(dep[i]))
    out["add_vehicles_s"] = time.perf_counter() - t0
    t0, c0 = time.perf_counter(), time.process_time()
    W.exec_simulation()
    out["run_s"] = time.perf_counter() - t0
    out["run_cpu_s"] = time.process_time() - c0
    t0 = time.perf_counter()
    end = tw.duration_s
    if spec["cpp"]:
        vs = W._cpp_world.VEHICLES
        rows = np.array([(v.departure_time, v.arrival_time, v.state) for v in vs], float)
        vdep, varr, vst = rows[:, 0], rows[:, 1], rows[:, 2]
        done = vst == 3  # end
    else:
        vs = list(W.VEHICLES.values())
        dt = W.DELTAT
        vdep = np.array([v.departure_time * dt for v in vs], float)
        varr = np.array([v.arrival_time * dt if v.arrival_time >= 0 else -1 for v in vs], float)
        done = np.array([v.state == "end" for v in vs])
    varr = np.where(done, varr, np.nan)
    out["extract_s"] = time.perf_counter() - t0
    out.update({"links": int(a.n_links), "nodes": int(a.n_nodes), "trips": int(len(vdep)),
                "veh_s": _veh_seconds(vdep, varr, end), "completed": int(done.sum()),
                "mean_tt_s": float(np.nanmean(varr - vdep)) if done.any() else None})
    return out


# =========================================================================== parent
def _pred_uxsim(kind: str, links: int, steps: float, veh_s: float, rate: float | None,
                trips: int = 0) -> tuple[float, float]:
    """Predicted UXsim (wall s, peak GB): idle stepping over every link-step plus vehicle work at a known rate;
    memory ~ 4 float64 per link per time step in C++ (+1 in the wrapper) at deltan=1, plus one float64 per link
    per vehicle (each C++ vehicle holds a route_preference vector indexed by link)."""
    if kind == "uxsim_py":
        wall = steps * links * UXPY_LINK_STEP_S + veh_s / (rate or UXPY_VEH_S_PER_S)
    else:
        wall = steps * links * UXCPP_LINK_STEP_S + veh_s / (rate or UXCPP_VEH_S_PER_S)
    return wall, 0.25 + (links * steps * UX_BYTES_PER_LINK_STEP + links * trips * UX_BYTES_PER_LINK_VEH) / 1e9


def _spec(ladder: str, label: str, trips: int, n: int) -> dict:
    dur, start = (DAY_S, "00:00") if ladder == "day" else (PEAK_S, PEAK_START)
    return {"n": n, "trips": trips, "duration_s": dur, "start": start}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="1k and 10k trips only (quick iterations)")
    ap.add_argument("--no-uxsim", action="store_true", help="skip UXsim")
    ap.add_argument("--no-uxsim-python", action="store_true", help="skip UXsim's Python engine")
    ap.add_argument("--no-compile", action="store_true", help="skip the cold-compile case")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        spec = json.loads(args.child)
        fn = {"engine": child_engine, "uxsim": child_uxsim, "compile": child_compile}[spec["kind"]]
        emit_result(fn(spec))
        return

    t_start = time.perf_counter()
    me = [str(Path(__file__).resolve())]

    def left() -> float:
        return BUDGET_S - (time.perf_counter() - t_start)

    def child(spec: dict, timeout: float, env: dict | None = None) -> dict:
        return run_case([*me, "--child", json.dumps(spec)], timeout_s=max(10.0, timeout), env=env)

    info = machine_info()
    have_uxsim = False
    if not args.no_uxsim:
        import importlib.util

        have_uxsim = importlib.util.find_spec("uxsim") is not None
        if not have_uxsim:
            print("UXsim is not installed: comparison skipped (pip install uxsim)")
    day_cases = DAY_CASES[:2] if args.quick else DAY_CASES
    peak_cases = PEAK_CASES[:2] if args.quick else PEAK_CASES
    print(f"traffic bench: day ladder {[c[0] for c in day_cases]}, peak ladder {[c[0] for c in peak_cases]}; "
          f"machine {info}", flush=True)

    comp: dict = {}
    rows: list[dict] = []
    eng: dict[tuple, dict] = {}

    def run_engine(ladder, label, trips, n, env=None, tool="citytwin"):
        spec = {"kind": "engine", **_spec(ladder, label, trips, n)}
        r = child(spec, min(420.0, left()), env=env)
        r.update(ladder=ladder, case=f"{ladder} {label}", grid=f"{n}x{n}", tool=tool)
        rows.append(r)
        _say(r)
        return r

    # ---- order: the comparison first (CityTwin and UXsim C++ on the peak ladder), then the goal case (day 1M,
    # then the smaller days), then what the budget leaves (UXsim day cases and Python engine, 1 thread, compile):
    # on a loaded machine the budget otherwise ran out before UXsim reached its larger cases
    for label, trips, n in peak_cases:
        eng[("peak", label)] = run_engine("peak", label, trips, n)
    # ---- UXsim ---------------------------------------------------------------------------------------------------
    skipped: list[str] = []
    ux: dict[str, dict[tuple, dict]] = {"uxsim_cpp": {}, "uxsim_py": {}}
    if have_uxsim:
        plan = [("uxsim_cpp", True, "peak", c) for c in peak_cases] + [None] + \
            [("uxsim_cpp", True, "day", c) for c in day_cases]
        if not args.no_uxsim_python:
            plan += [("uxsim_py", False, "peak", c) for c in peak_cases]
    else:
        plan = [None]
    rate: dict[str, float] = {}
    for item in plan:
        if item is None:  # after the comparison: the goal case (the biggest day) first, then the smaller days
            for label, trips, n in reversed(day_cases):
                eng[("day", label)] = run_engine("day", label, trips, n)
            continue
        kind, cpp, ladder, (label, trips, n) = item
        spec = _spec(ladder, label, trips, n)
        e = eng.get((ladder, label), {})
        links = 4 * n * (n - 1)
        veh_s = e.get("veh_s") or trips * 200.0
        pred, mem = _pred_uxsim(kind, links, spec["duration_s"], veh_s, rate.get(kind), trips)
        why = None
        if mem > SKIP_MEM_GB:
            why = f"predicted {mem:.1f} GB > {SKIP_MEM_GB:g} GB (per-link arrays per time step and per vehicle)"
        elif pred > SKIP_PREDICTED_S:
            why = f"predicted {pred:.0f} s > {SKIP_PREDICTED_S:.0f} s"
        elif pred * 1.5 + 15 > left():
            why = f"predicted {pred:.0f} s, only {left():.0f} s of the bench budget left"
        case = f"{ladder} {label}"
        if why:
            skipped.append(f"{kind} {case}: {why}")
            print(f"  skip {kind:10s} {case:>10s} ({why})", flush=True)
            continue
        r = child({"kind": "uxsim", **spec, "cpp": cpp}, min(max(3 * pred + 30, 60), left()))
        r.update(ladder=ladder, case=case, grid=f"{n}x{n}", tool=kind, predicted_s=round(pred, 1),
                 predicted_mem_gb=round(mem, 2))
        if "error" in r:
            skipped.append(f"{kind} {case}: {r['error']}")
        elif r.get("veh_s") and r.get("run_s") and ladder == "peak":
            rate[kind] = r["veh_s"] / r["run_s"]
        ux[kind][(ladder, label)] = r
        rows.append(r)
        _say(r)

    # what the budget leaves: CityTwin on one thread (UXsim's C++ engine runs single-threaded), numba's cold compile
    cl, ct, cn = peak_cases[-1]
    if left() > 200:
        run_engine("peak", cl, ct, cn, env={"NUMBA_NUM_THREADS": "1"}, tool="citytwin 1 thread")
    if not args.no_compile and left() > 150:
        with tempfile.TemporaryDirectory(prefix="numba-cold-") as tmp:
            comp = child({"kind": "compile"}, min(240, left()), env={"NUMBA_CACHE_DIR": tmp})
        print(f"numba cold compile: first tiny run {comp.get('first_run_s', float('nan')):.2f} s, second "
              f"{comp.get('second_run_s', float('nan')):.3f} s (import {comp.get('import_s', float('nan')):.2f} s)"
              f"{'  ERROR ' + comp['error'] if 'error' in comp else ''}", flush=True)
    elif not args.no_compile:
        print("numba cold compile: skipped (bench budget)")

    # ---- table -------------------------------------------------------------------------------------------------
    for r in rows:
        if r.get("veh_s") and r.get("run_s"):
            r["veh_s_per_s"] = r["veh_s"] / r["run_s"]
            r["trips_per_s"] = r["trips"] / r["run_s"]
        e = eng.get((r.get("ladder"), r.get("case", " ").split(" ", 1)[-1]), {})
        if r.get("tool", "").startswith("uxsim") and e.get("trips_crc") is not None and r.get("trips_crc") is not None:
            r["same_trips"] = "yes" if r.get("trips_crc") == e.get("trips_crc") else "NO"
        ph = r.get("phases") or {}
        if ph:
            r["kern_s"] = ph.get("advance", 0.0)
            r["tables_s"] = ph.get("route_tables", 0.0) + ph.get("update_route_tables", 0.0)
    print()
    print_table(rows, [("case", "case"), ("grid", "grid"), ("links", "links"), ("tool", "tool"), ("trips", "trips"),
                       ("run_s", "run s"), ("run_cpu_s", "cpu s"), ("veh_s", "veh-s"), ("veh_s_per_s", "veh-s/s"),
                       ("trips_per_s", "trips/s"), ("completed", "done"), ("mean_tt_s", "mean tt s"),
                       ("peak_mem_gb", "peak GB"), ("kern_s", "kernel s"), ("tables_s", "tables s"),
                       ("same_trips", "same trips")],
                title=f"Traffic, 1 s steps, every vehicle individually. day = 24 h weekday profile from 00:00; "
                      f"peak = {PEAK_S / 3600:.0f} h from {PEAK_START}.\n"
                      "run s = CityTwin.run() (demand, setup, simulation, results) / UXsim exec_simulation(); "
                      "cpu s = CPU time of that call (all threads)")

    # ---- ratios ------------------------------------------------------------------------------------------------
    ratios = {}
    for key, r in ux["uxsim_cpp"].items():
        e = eng.get(key, {})
        if r.get("veh_s_per_s") and e.get("veh_s_per_s"):
            kern = (e.get("phases") or {})
            kern_s = kern.get("advance", 0) + kern.get("route_tables", 0) + kern.get("update_route_tables", 0) + kern.get("reroute_share", 0) + \
                kern.get("link_costs", 0)
            ratios[" ".join(key)] = {
                "veh_s_ratio": e["veh_s_per_s"] / r["veh_s_per_s"],
                "trips_per_s_ratio": e["trips_per_s"] / r["trips_per_s"],
                "cpu_ratio": (r["run_cpu_s"] / r["veh_s"]) / (e["run_cpu_s"] / e["veh_s"]) if e.get("run_cpu_s") else None,
                "kernel_only_ratio": (r["run_s"] / r["veh_s"]) / (kern_s / e["veh_s"]) if kern_s else None,
                "uxsim_total_s": r.get("build_net_s", 0) + r.get("add_vehicles_s", 0) + r["run_s"]}
    py_ratios = {" ".join(k): eng[k]["veh_s_per_s"] / r["veh_s_per_s"] for k, r in ux["uxsim_py"].items()
                 if r.get("veh_s_per_s") and eng.get(k, {}).get("veh_s_per_s")}
    if ratios:
        print("\nCityTwin vs UXsim C++ on the same trips (x = CityTwin faster):")
        for k, x in ratios.items():
            print(f"  {k:>12s}: {x['veh_s_ratio']:.1f}x vehicle-s per wall-s, {x['trips_per_s_ratio']:.1f}x trips per "
                  f"wall-s, {x['cpu_ratio'] or float('nan'):.1f}x per CPU-s, kernel calls only "
                  f"{x['kernel_only_ratio'] or float('nan'):.1f}x")
    if py_ratios:
        print("CityTwin vs UXsim Python: " + ", ".join(f"{k} {v:.0f}x" for k, v in py_ratios.items()))
    for s_ in skipped:
        print(f"skipped: {s_}")
    if comp.get("first_run_s") is not None:
        print(f"numba: cold compile of every kernel {comp['first_run_s'] - comp['second_run_s']:.1f} s (empty "
              f"cache); each case's warm-up with the on-disk cache is listed as warmup_s in the JSON")

    # ---- phases of the biggest case ------------------------------------------------------------------------------
    big_label = day_cases[-1][0]
    big = eng.get(("day", big_label), {})
    ph = big.get("phases") or {}
    if ph and big.get("run_s"):
        run_s = big["run_s"]
        parts = [("advance", "kernel steps (advance)"), ("route_tables", "routing tables, full builds (route_tables)"), ("update_route_tables", "routing tables, incremental repairs"),
                 ("reroute_share", "en-route re-routing"), ("link_costs", "link costs"),
                 ("record", "recording (record, own time)"), ("queue_lengths", "queue lengths (in record)"),
                 ("demand_generation", "demand generation"), ("traffic_setup", "traffic setup (own time)"),
                 ("finalize", "traffic finalize"), ("results", "results assembly (own time)")]
        run_c = big.get("run_cpu_s") or float("nan")
        print(f"\nwhere the day {big_label} run's {run_s:.1f} s wall ({run_c:.1f} s CPU, all threads) go:")
        acc = acc_c = 0.0
        for key, name in parts:
            v, vc = ph.get(key, 0.0), ph.get(key + "_cpu", 0.0)
            acc += v
            acc_c += vc
            print(f"  {name:34s} {v:7.2f} s wall {100 * v / run_s:5.1f} %  {vc:7.2f} s CPU  "
                  f"({ph.get(key + '_calls', 0)} calls)")
        print(f"  {'other (simpy, Python glue, setup)':34s} {run_s - acc:7.2f} s wall {100 * (run_s - acc) / run_s:5.1f} %"
              f"  {run_c - acc_c:7.2f} s CPU")

    # ---- JSON ----------------------------------------------------------------------------------------------------
    wall = big.get("run_s")
    main_key = f"peak {peak_cases[-1][0]}" if f"peak {peak_cases[-1][0]}" in ratios else \
        (max(ratios, key=lambda k: ratios[k]["veh_s_ratio"]) if ratios else None)
    payload = {
        "bench": "traffic", "value": round(wall, 2) if wall else None, "unit": "s", "target": TARGET_WALL_S,
        "vs_uxsim": round(ratios[main_key]["veh_s_ratio"], 2) if main_key else None,
        "vs_uxsim_case": main_key,
        "vs_uxsim_by_case": {k: round(v["veh_s_ratio"], 2) for k, v in ratios.items()},
        "vs_uxsim_cpu_by_case": {k: round(v["cpu_ratio"], 2) for k, v in ratios.items() if v["cpu_ratio"]},
        "vs_uxsim_kernel_only_by_case": {k: round(v["kernel_only_ratio"], 2) for k, v in ratios.items()
                                         if v["kernel_only_ratio"]},
        "vs_uxsim_python_by_case": {k: round(v, 1) for k, v in py_ratios.items()},
        "peak_mem_gb": big.get("peak_mem_gb"),
        "case": f"day {big_label}: {big.get('trips')} trips over 24 h, grid {big.get('grid')}, {big.get('links')} links",
        "run_cpu_s": round(big["run_cpu_s"], 2) if big.get("run_cpu_s") else None,
        "completed": big.get("completed"),
        "veh_s_per_s": round(big["veh_s_per_s"]) if big.get("veh_s_per_s") else None,
        "trips_per_s": round(big["trips_per_s"]) if big.get("trips_per_s") else None,
        "meets_wall": bool(wall and wall < TARGET_WALL_S),
        "meets_mem": bool(big.get("peak_mem_gb") and big["peak_mem_gb"] < TARGET_MEM_GB),
        "meets_ratio": bool(main_key and ratios[main_key]["veh_s_ratio"] >= TARGET_RATIO),
        "phases_s": {k: v for k, v in ph.items() if not k.endswith(("_calls", "_cpu"))},
        "phases_cpu_s": {k[:-4]: v for k, v in ph.items() if k.endswith("_cpu")},
        "warmup_s": round(big["warmup_s"], 3) if big.get("warmup_s") else None,
        "compile_cold_s": round(comp["first_run_s"] - comp["second_run_s"], 2) if "first_run_s" in comp else None,
        "cases": {f"{r['tool']}|{r['case']}": {k: (round(r[k], 3) if isinstance(r[k], float) else r[k])
                                                for k in ("run_s", "run_cpu_s", "veh_s", "veh_s_per_s", "trips_per_s",
                                                          "peak_mem_gb", "completed", "mean_tt_s", "error")
                                                if r.get(k) is not None} for r in rows},
        "uxsim_skipped": skipped, "uxsim": "installed" if have_uxsim else "not installed",
        "machine": {**info, "loadavg_1m_end": round(os.getloadavg()[0], 2)},
        "bench_wall_s": round(time.perf_counter() - t_start, 1),
    }
    final_json(payload)


def _say(r: dict) -> None:
    bits = [f"{r.get('tool', '?'):18s} {r.get('case', ''):>10s} {r.get('grid', ''):>6s}"]
    if "error" in r:
        bits.append(f"ERROR {r['error']}")
    if r.get("run_s") is not None:
        bits.append(f"run {r['run_s']:.2f} s" + (f" ({r['run_cpu_s']:.2f} s CPU)" if r.get("run_cpu_s") else ""))
    if r.get("veh_s") and r.get("run_s"):
        bits.append(f"{r['veh_s'] / r['run_s'] / 1e6:.2f} M veh-s/s")
    if r.get("warmup_s") is not None:
        bits.append(f"warm-up {r['warmup_s']:.2f} s")
    if r.get("peak_mem_gb") is not None:
        bits.append(f"peak {r['peak_mem_gb']:.2f} GB")
    bits.append(f"(subprocess {r.get('subprocess_wall_s', 0):.1f} s)")
    print("  " + ", ".join(bits), flush=True)


if __name__ == "__main__":
    main()
