"""Route choice or junctions on the closures: the built-in model on SUMO micro's own routes, baseline and closure.

``validation/fixed_routes.py`` asked the question for the baselines. Here the run behind each fidelity figure is
repeated with SUMO micro's routes, for the baseline and the closure variant of Bologna and Wildau:
- **SUMO micro replica with routes** (:func:`replica`): the fidelity reference run itself
  (``agents.traffic.reference.run_reference``: the SUMO back-end, trips fed through libsumo, closures by SUMO's
  rerouter, the rerouting device, the same seed) with ``--vehroute-output`` and
  ``--vehroute-output.write-unfinished`` appended to SUMO's command line in the child process (the back-end's
  ``_start`` is wrapped; no file of the reference cache key is edited). The last route of every vehicle
  (city link indices) is kept with the reference figures. Cached in ``results/.cache/fixed_routes/`` as
  ``<city>.<variant>.micro_vehroute.<key>.nc``, the key over the reference run's key and the source of the child run's functions.
- **built-in model on those routes**: the routes written as a SUMO route file (one ``<vehicle>`` per trip with
  its departure) and read with ``traffic.routes_file``: each trip drives SUMO's route, never re-routed; trips SUMO
  never inserted, and those whose route crosses a closed link (they crossed it in SUMO before it closed; on a
  fixed path the built-in model would hold them there), are routed by the built-in model (counted).
- the same with built-in traffic overrides: ``actuated_signals: true`` (``actuated``, ``actuated_sumo_routes``), and
  with ``actuated_interval_s: 30`` (``actuated_30s``).

Every figure of the fidelity table is computed against the cached SUMO micro reference, next to SUMO meso-jc and
SUMO micro's other seed, and judged as the fidelity target "on every figure at least as close to SUMO micro as
SUMO meso-jc" (``traffic_fidelity.targets``, with SUMO micro's seed noise per figure).

Run: ``.venv/bin/python validation/closure_routes.py [--cities bologna,wildau] [--cached-only] [--jobs 2]
[--configs routed,sumo_routes,actuated,actuated_sumo_routes,actuated_30s]``; ends with one JSON line
``{"validation": "closure_routes", ...}``.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "validation"))

CITIES = {"bologna": ("scenarios/bologna.yaml", "arterial_closed"),
          "wildau": ("scenarios/wildau.yaml", "arterial_closed")}
CACHE = ROOT / "results" / ".cache" / "fixed_routes"
TIMEOUT_S = 3600.0
_KEEP = ("link_flow", "link_speed", "trip_", "kpi_traffic_")
_LOAD_LOCK = threading.Lock()  # HDF5 is not thread-safe: two threads loading cached runs crashed libhdf5
# built-in configurations: (routes from the SUMO micro replica?, traffic overrides)
CONFIGS: dict[str, tuple[bool, dict]] = {"routed": (False, {}), "sumo_routes": (True, {}),
                                         "actuated": (False, {"actuated_signals": True}),
                                         "actuated_sumo_routes": (True, {"actuated_signals": True}),
                                         "actuated_30s": (False, {"actuated_signals": True, "actuated_interval_s": 30.0})}


def _city(name: str):
    from twin.city import build_city
    from twin.scenario import load_scenario

    path = ROOT / CITIES[name][0]
    sc = load_scenario(path)["baseline"]
    return build_city(sc.city, path.parent, sc.name)


def replica_key(name: str, variant: str, city=None) -> str:
    """Cache key: the fidelity reference run's key (micro) and the source of the child run's functions."""
    import inspect

    from agents.traffic.reference import reference_key

    code = "".join(inspect.getsource(f) for f in (read_vehroutes, run_replica))
    doc = {"reference_key": reference_key(ROOT / CITIES[name][0], variant, "micro", city if city is not None
                                          else _city(name)),
           "code": hashlib.sha256(code.encode()).hexdigest()}
    return hashlib.sha256(json.dumps(doc, sort_keys=True).encode()).hexdigest()[:24]


def replica_file(name: str, variant: str, key: str) -> Path:
    return CACHE / f"{name}.{variant}.micro_vehroute.{key}.nc"


def read_vehroutes(path: Path) -> dict[int, list[str]]:
    """{vehicle id: edges of its last route} from SUMO's vehroute output."""
    import xml.etree.ElementTree as ET

    out: dict[int, list[str]] = {}
    for _, el in ET.iterparse(path):
        if el.tag == "vehicle":
            rs = el.findall(".//route")
            if rs and el.get("id", "").isdigit():
                out[int(el.get("id"))] = rs[-1].get("edges", "").split()
            el.clear()
    return out


def run_replica(name: str, variant: str, out_nc: Path) -> float:
    """The reference SUMO micro run of ``variant`` with SUMO's vehroute output (child process); wall time (s)."""
    from agents.traffic import sumo as sumo_mod
    from agents.traffic.compare import run_backend
    from agents.traffic.config import SumoOptions
    from agents.traffic.reference import MODES
    from twin.scenario import load_scenario

    path = ROOT / CITIES[name][0]
    work = Path(tempfile.mkdtemp(prefix="citytwin_vehroute_"))
    vr = work / "vehroutes.xml"
    orig = sumo_mod.SumoTraffic._start

    def start(self, cmd):
        return orig(self, list(cmd) + ["--vehroute-output", str(vr), "--vehroute-output.write-unfinished", "true"])
    sumo_mod.SumoTraffic._start = start  # type: ignore[method-assign]
    sc = load_scenario(path)[variant]
    base_opts = sc.domain_configs["traffic"].sumo.model_dump()
    opts = SumoOptions(**{**base_opts, **MODES["micro"],
                          "extra_args": list(base_opts["extra_args"]) + MODES["micro"].get("extra_args", [])})
    ds, wall = run_backend(path, variant, "sumo", overrides={"sumo": opts})
    keep = [v for v in ds.data_vars if str(v).startswith(_KEEP)]
    city = _city(name)
    index = {str(e): i for i, e in enumerate(city.link_ids)}
    n = ds.sizes["trip"]
    driven = np.full(n, "", dtype=object)
    for v, edges in read_vehroutes(vr).items():
        if v < n:
            driven[v] = " ".join(str(index.get(e, -1)) for e in edges)
    small = ds[keep].assign(trip_sumo_route=(("trip",), driven.astype(str)))
    small = small.assign_attrs(wall_time_s=wall, sumo_version=ds.attrs.get("sumo_version", ""), mode="micro",
                               variant=variant, city=name, vehroutes=int((driven != "").sum()),
                               created=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))
    tmp = out_nc.with_name(f".{out_nc.name}.{os.getpid()}.tmp")
    small.to_netcdf(tmp)
    os.replace(tmp, out_nc)
    return wall


_CHILDREN: set[subprocess.Popen] = set()


def _kill_children(*_) -> None:
    for p in list(_CHILDREN):
        try:
            os.killpg(p.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass


def replica(name: str, variant: str, city=None, cached_only: bool = False):
    """(dataset or None, cached, key, error) of the SUMO micro replica with routes."""
    import xarray as xr

    CACHE.mkdir(parents=True, exist_ok=True)
    key = replica_key(name, variant, city)
    nc = replica_file(name, variant, key)
    if nc.exists():
        with _LOAD_LOCK:
            return xr.load_dataset(nc), True, key, ""
    if cached_only:
        return None, False, key, "not in the cache (--cached-only)"
    cmd = [sys.executable, str(Path(__file__).resolve()), "--child", name, variant, str(nc)]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    _CHILDREN.add(proc)
    try:
        _, err = proc.communicate(timeout=TIMEOUT_S)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        return None, False, key, f"exceeded {TIMEOUT_S:.0f} s (killed)"
    finally:
        _CHILDREN.discard(proc)
    if proc.returncode != 0 or not nc.exists():
        return None, False, key, f"child failed (exit {proc.returncode}): " + " | ".join(err.strip().splitlines()[-3:])
    with _LOAD_LOCK:
        return xr.load_dataset(nc), False, key, ""


def closed_links(name: str, variant: str, city) -> set[int]:
    """City link indices of the variant's full closures."""
    from twin.scenario import load_scenario

    sc = load_scenario(ROOT / CITIES[name][0])[variant]
    return {int(city.link_index(cl.link)) for cl in sc.domain_configs["traffic"].closures if cl.capacity_factor <= 0}


def write_route_file(rd, city, out: Path, skip: set[int] = frozenset()) -> tuple[int, int]:
    """SUMO's routes of a replica as a route file (one ``<vehicle>`` per routed trip, by departure); (routes
    written, routes left out because they use a link of ``skip``).

    A closure variant's vehicles that crossed the closed link before it closed (in SUMO) are left out: on a fixed
    path the built-in model would hold any of them that reaches the link later, and the queue behind it would
    lock its approach; they are routed by the built-in model instead (``routed_fallback``)."""
    from xml.sax.saxutils import quoteattr

    routes = rd["trip_sumo_route"].values
    dep = rd["trip_depart"].values.astype(float)
    n = n_skip = 0
    tmp = out.with_name(f".{out.name}.tmp")
    with open(tmp, "w", encoding="utf-8") as fh:
        fh.write("<routes>\n")
        for v in np.argsort(dep, kind="stable"):
            idx = [int(x) for x in str(routes[v]).split()]
            if idx and skip and not skip.isdisjoint(idx):
                n_skip += 1
            elif idx and min(idx) >= 0:
                edges = " ".join(str(city.link_ids[i]) for i in idx)
                fh.write(f'  <vehicle id="{v}" depart="{float(dep[v])!r}"><route edges={quoteattr(edges)}/>'
                         f'</vehicle>\n')
                n += 1
        fh.write("</routes>\n")
    tmp.replace(out)
    return n, n_skip


def run_city(name: str, replicas: dict, refs: dict, configs: list[str]) -> dict:
    """Per built-in configuration: the fidelity figures of baseline and closure against the SUMO references, the
    closure deltas and the 'as close as meso-jc' judgement with SUMO micro's seed noise."""
    import traffic_fidelity as tf

    from agents.traffic.compare import flow_agreement, run_backend, run_figures

    path = ROOT / CITIES[name][0]
    closure = CITIES[name][1]
    city = _city(name)
    out: dict = {"configs": {}, "replica": {}, "errors": []}
    route_files = {}
    for variant in ("baseline", closure):
        rd = replicas.get((name, variant))
        if rd is None or rd[0] is None:
            out["errors"].append(f"{variant} replica: {rd[3] if rd else 'not run'}")
            continue
        f = CACHE / f"{name}.{variant}.micro_vehroute.{rd[2]}.rou.xml"
        n, n_skip = write_route_file(rd[0], city, f, closed_links(name, variant, city))
        route_files[variant] = f
        ref = refs[(name, variant, "micro")]
        r, share, _ = flow_agreement(rd[0], ref.ds)
        fr, fm = run_figures(rd[0], float(rd[0].attrs["wall_time_s"])), run_figures(ref.ds, ref.wall_s)
        out["replica"][variant] = {"vehicles_with_route": n, "left_out_over_closed_link": n_skip,
                                   "vs_reference_geh5_share": share,
                                   "vs_reference_r": r, "cached": rd[1],
                                   "same_figures_as_reference": all(
                                       fr[k] == fm[k] for k in ("mean_travel_time_s", "vehicle_hours",
                                                                "trips_completed", "p90_travel_time_s"))}
    for cfg in configs:
        on_routes, over = CONFIGS[cfg]
        if on_routes and len(route_files) < 2:
            continue
        res: dict = {"runs": {}, "closure_delta": {}, "overrides": over}
        for variant in ("baseline", closure):
            ov = dict(over)
            if on_routes:
                ov["routes_file"] = os.path.relpath(route_files[variant], path.parent)
            ds, wall = run_backend(path, variant, "meso", overrides=ov)
            runs = {"builtin": (ds, wall)}
            for model, mode in (("sumo_micro", "micro"), ("sumo_meso_jc", "meso_jc"), ("sumo_micro_seed2", "seed2")):
                ref = refs.get((name, variant, mode))
                if ref is not None and ref.ds is not None:
                    runs[model] = (ref.ds, ref.wall_s)
            figs = {}
            for model, (d, w) in runs.items():
                fg = run_figures(d, w)
                rr, share, pairs = flow_agreement(d, runs["sumo_micro"][0])
                fg.update(flow_r=rr, geh5_share=share, link_hours=pairs)
                figs[model] = fg
            if on_routes:
                figs["builtin"]["routes_mapping"] = json.loads(ds.attrs.get("traffic_routes_file", "{}"))
            res["runs"]["baseline" if variant == "baseline" else "closure"] = figs
        b, c = res["runs"]["baseline"], res["runs"]["closure"]
        for model in b:
            if model in c:
                res["closure_delta"][model] = {
                    "d_vehicle_hours_pct": tf._pct(c[model]["vehicle_hours"], b[model]["vehicle_hours"]),
                    "d_mean_travel_time_pct": tf._pct(c[model]["mean_travel_time_s"], b[model]["mean_travel_time_s"])}
        res["targets"] = tf.targets(res)
        out["configs"][cfg] = res
    return out


_FIGS = [("mean_travel_time_s", "mean travel time (s)", "{:,.1f}"), ("p90_travel_time_s", "p90 travel time (s)",
                                                                    "{:,.1f}"),
         ("vehicle_hours", "vehicle-hours (h)", "{:,.1f}"), ("trips_completed", "completed", "{:,.0f}"),
         ("gridlock_resolutions", "gridlock resolutions / teleports", "{:,.0f}"),
         ("geh5_share", "link-hours GEH < 5 vs SUMO micro", "{:.1%}"), ("flow_r", "r vs SUMO micro", "{:.4f}")]


def format_city(name: str, res: dict) -> str:
    import traffic_fidelity as tf

    lines = [f"### {name}: built-in configurations against the SUMO references (baseline / closure)", ""]
    for v, e in res["replica"].items():
        lines.append(f"- SUMO micro replica with --vehroute-output, {v}: {e['vehicles_with_route']:,} vehicles with a "
                     f"route given to the built-in model ({e['left_out_over_closed_link']:,} more crossed the closed "
                     f"link before it closed: routed by the built-in model); against the cached reference GEH < 5 {e['vs_reference_geh5_share']:.1%}, r "
                     f"{e['vs_reference_r']:.4f}; same mean / p90 / VH / completed as the reference: "
                     f"{e['same_figures_as_reference']}")
    cfgs = list(res["configs"])
    if not cfgs:
        return "\n".join(lines + ["", "errors: " + "; ".join(res["errors"])])
    any_cfg = res["configs"][cfgs[0]]
    cols = [(cfg, "builtin") for cfg in cfgs] + [(cfgs[0], m) for m in ("sumo_micro", "sumo_meso_jc",
                                                                         "sumo_micro_seed2")
                                                  if m in any_cfg["runs"]["baseline"]]
    head = [f"built-in {c}" if m == "builtin" else tf._LABEL[m] for c, m in cols]
    lines += ["", "| figure | run | " + " | ".join(head) + " |", "|" + "---|" * (len(cols) + 2)]
    for run in ("baseline", "closure"):
        for k, lab, fmt in _FIGS:
            cells = [tf._cell(fmt, res["configs"][c]["runs"][run].get(m, {}).get(k)) for c, m in cols]
            lines.append(f"| {lab} | {run} | " + " | ".join(cells) + " |")
    for k, lab in (("d_vehicle_hours_pct", "Δ vehicle-hours"), ("d_mean_travel_time_pct", "Δ mean travel time")):
        cells = [tf._cell("{:+.1f}%", res["configs"][c]["closure_delta"].get(m, {}).get(k)) for c, m in cols]
        lines.append(f"| {lab} | closure | " + " | ".join(cells) + " |")
    lines.append("")
    for c in cfgs:
        t = res["configs"][c]["targets"].get("as_close_as_sumo_meso_jc_on_every_figure")
        if t:
            lines.append(f"- built-in {c}: {tf.misses_text(t)}")
        if "routes_mapping" in res["configs"][c]["runs"]["closure"]["builtin"]:
            mp = {v: res["configs"][c]["runs"][v]["builtin"]["routes_mapping"] for v in ("baseline", "closure")}
            lines.append("  - trips on SUMO's route: " + ", ".join(
                f"{v} {m.get('trips', 0) - m.get('routed_fallback', 0):,} of {m.get('trips', 0):,}"
                for v, m in mp.items()))
    if res["errors"]:
        lines += ["", "errors: " + "; ".join(res["errors"])]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--cities", default=",".join(CITIES))
    ap.add_argument("--cached-only", action="store_true", help="run no SUMO: cached replicas only")
    ap.add_argument("--jobs", type=int, default=2, help="SUMO replicas at once (child processes)")
    ap.add_argument("--configs", default=",".join(CONFIGS), help=f"comma-separated subset of {', '.join(CONFIGS)}")
    ap.add_argument("--stranded-leftmost-lane", action="store_true",
                    help="experiment: the built-in kernel with a stranded vehicle on its first link's leftmost lane "
                         "(closure_where.patch_stranded_leftmost_lane)")
    args = ap.parse_args(argv)
    if args.stranded_leftmost_lane:
        import closure_where

        closure_where.patch_stranded_leftmost_lane()
    import traffic_fidelity as tf

    from agents.traffic.compare import _json_safe, run_backend
    from agents.traffic.reference import SumoReference, reference_key, sumo_reference
    from agents.traffic.reference_seed import seeded_reference

    names = [c.strip() for c in args.cities.split(",") if c.strip()]
    configs = [c.strip() for c in args.configs.split(",") if c.strip()]
    if any(c not in CITIES for c in names) or any(c not in CONFIGS for c in configs) or args.jobs < 1:
        print(f"--cities from {', '.join(CITIES)}; --configs from {', '.join(CONFIGS)}; --jobs >= 1", file=sys.stderr)
        return 2
    signal.signal(signal.SIGTERM, lambda *a: (_kill_children(), sys.exit(143)))
    t0 = time.perf_counter()
    cities = {c: _city(c) for c in names}
    jobs = [(c, v) for c in names for v in ("baseline", CITIES[c][1])]

    def one(job):
        t = time.perf_counter()
        r = replica(job[0], job[1], cities[job[0]], cached_only=args.cached_only)
        how = "cached" if r[1] else (f"FAILED: {r[3]}" if r[0] is None else "ran")
        print(f"  {job[0]} {job[1]} SUMO micro with vehroute output: {how} ({time.perf_counter() - t:.0f} s)",
              file=sys.stderr, flush=True)
        return job, r

    try:
        with ThreadPoolExecutor(max_workers=args.jobs) as pool:
            replicas = dict(pool.map(one, jobs))
    except KeyboardInterrupt:
        _kill_children()
        raise
    refs: dict = {}
    for c in names:
        p = ROOT / CITIES[c][0]
        for v in ("baseline", CITIES[c][1]):
            for m in ("micro", "meso_jc"):
                key = reference_key(p, v, m, cities[c])
                nc = ROOT / "results" / ".cache" / "sumo_reference" / f"{p.stem}.{v}.{m}.{key}.nc"
                refs[(c, v, m)] = (sumo_reference(p, v, m, city=cities[c]) if nc.exists()
                                   else SumoReference(None, float("nan"), False, key, "not cached"))
            refs[(c, v, "seed2")] = seeded_reference(p, v, "micro", tf.other_seed(p), cities[c], cached_only=True)
    run_backend(ROOT / "scenarios" / "wildau.yaml", "gravity_prior", "meso")  # compile outside timing
    res = {}
    for c in names:
        res[c] = run_city(c, replicas, refs, configs)
        print(format_city(c, res[c]))
        print()
    print(f"total wall time {time.perf_counter() - t0:.0f} s")
    print(json.dumps(_json_safe({"validation": "closure_routes", "cities": res})))
    return 0


if __name__ == "__main__" and len(sys.argv) == 5 and sys.argv[1] == "--child":
    if sys.argv[2] not in CITIES:
        print(f"usage: closure_routes.py --child {{{','.join(CITIES)}}} VARIANT OUT.nc", file=sys.stderr)
        sys.exit(2)
    w = run_replica(sys.argv[2], sys.argv[3], Path(sys.argv[4]))
    print(f"{sys.argv[2]} {sys.argv[3]} SUMO micro with vehroute output: {w:.1f} s")
    sys.exit(0)
elif __name__ == "__main__":
    sys.exit(main())
