"""Traffic fidelity: the built-in model against SUMO micro and SUMO meso (junction control) on three real towns.

For Bad Hersfeld, Bologna and Wildau, each baseline and one closure of a busy two-way arterial (both
directions, from early in the run) run on three models: the built-in mesoscopic model, SUMO's microscopic
model (the reference) and SUMO's mesoscopic model with ``--meso-junction-control true`` (the bar to beat).
Per model and run: mean and p90 travel time of completed trips (s), vehicle-hours of every trip due by the
end, including trips still running or waiting to enter (h), trips due and completed, gridlock resolutions
(SUMO: teleports), the share of (link, hour) pairs with GEH < 5 and Pearson's r of hourly link flows
against SUMO micro, and wall time (s). For the closure, each model's change in vehicle-hours and mean travel
time against its own baseline, next to SUMO micro's.

Targets (issue 13), per city, built-in model against SUMO micro: mean travel time within 10% (baseline);
GEH < 5 on at least 85% of link-hours (baseline); closure change in vehicle-hours within 25% of SUMO's and
of the same sign; on every figure at least as close to SUMO micro as SUMO meso-jc; at least 10x faster than
SUMO meso-jc (sum of both runs' wall times).

Noise floor: SUMO micro and the built-in model are run again with another scenario seed (the second
replication seed, ``twin.run.replication_seeds``: SUMO's ``--seed`` and the demand's sampling change), and the
same figures are computed between the two seeds of one model ("SUMO micro, other seed" against SUMO micro;
the built-in model against itself). A target tighter than a model's agreement with itself cannot be told apart
from seed noise. ``--no-other-seed`` skips these runs. The target "on every figure at least as close as SUMO
meso-jc" stays strict (its pass/fail is unchanged); beside its misses the table says which of them are within SUMO
micro's own seed noise (``seed_noise``, ``classify_misses``): the built-in model trails meso-jc on that figure by no
more than SUMO micro's other seed differs from its reference seed (JSON: ``within_seed_noise``, the list, and per
figure ``seed_noise`` and ``within_seed_noise``: true / false for a miss, null for a figure met).

SUMO runs happen in child processes and are cached under ``results/.cache/sumo_reference/`` keyed by their
exact inputs (``agents/traffic/reference.py``): a run without arguments reuses valid cached SUMO runs and
says so (their wall times are those measured when they ran); ``--no-cache`` runs SUMO again.

Run: ``.venv/bin/python validation/traffic_fidelity.py [--no-cache | --cached-only] [--cities wildau,bologna] [--jobs 2]
[--no-other-seed]``
Prints one table per city and ends with one JSON line ``{"validation": "traffic_fidelity", "pass": ..., ...}``.
"""
from __future__ import annotations

import argparse
import json
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from agents.traffic.compare import _json_safe, flow_agreement, run_backend, run_figures  # noqa: E402
from agents.traffic.reference import MODES, SumoReference, reference_key, sumo_reference  # noqa: E402
from agents.traffic.reference_seed import seeded_file, seeded_key, seeded_reference  # noqa: E402

# city -> (scenario file, closure variant)
CITIES: dict[str, tuple[str, str]] = {
    "bad_hersfeld": ("scenarios/bad_hersfeld.yaml", "main_road_closed"),
    "bologna": ("scenarios/bologna.yaml", "arterial_closed"),
    "wildau": ("scenarios/wildau.yaml", "arterial_closed"),
}
MODELS = ("builtin", "sumo_micro", "sumo_meso_jc")
# the same models with the other seed (noise floor); "SUMO micro, other seed" is compared with SUMO micro
SEED_MODELS = ("builtin_seed2", "sumo_micro_seed2")
_LABEL = {"builtin": "built-in", "sumo_micro": "SUMO micro", "sumo_meso_jc": "SUMO meso-jc",
          "builtin_seed2": "built-in, other seed", "sumo_micro_seed2": "SUMO micro, other seed"}
_MODE = {"sumo_micro": "micro", "sumo_meso_jc": "meso_jc", "sumo_micro_seed2": "micro_seed2"}
TARGETS = {"mean_tt_pct": 10.0, "geh5_share": 0.85, "closure_dvh_rel": 0.25, "speedup_vs_meso": 10.0}

# rows of the printed table: (figure key, label, unit, format)
_ROWS = [("mean_travel_time_s", "mean travel time", "s", "{:,.1f}"),
         ("p90_travel_time_s", "p90 travel time", "s", "{:,.1f}"),
         ("vehicle_hours", "vehicle-hours (incl. unfinished)", "h", "{:,.1f}"),
         ("trips", "trips due", "1", "{:,.0f}"), ("trips_completed", "completed trips", "1", "{:,.0f}"),
         ("trips_unfinished", "running or waiting at the end", "1", "{:,.0f}"),
         ("gridlock_resolutions", "gridlock resolutions / teleports", "1", "{:,.0f}"),
         ("geh5_share", "link-hours with GEH < 5", "%", "{:.1%}"), ("flow_r", "hourly link flow r", "1", "{:.3f}"),
         ("wall_time_s", "wall time", "s", "{:,.1f}")]


def _pct(a: float, b: float) -> float:
    return 100.0 * (a - b) / b if b and np.isfinite(a) and np.isfinite(b) else float("nan")


def _warm_up() -> None:
    """Compile the built-in model's kernels once, so no timed run includes numba's compile time: a Wildau run,
    and the threaded turn-table kernels (a town as small as Wildau never calls them; Bad Hersfeld does)."""
    from networks.routing import load_threaded_turn_kernels
    from twin.city import build_city
    from twin.scenario import load_scenario

    path = ROOT / "scenarios" / "wildau.yaml"
    run_backend(path, "gravity_prior", "meso")
    sc = load_scenario(path)["baseline"]
    city = build_city(sc.city, path.parent, sc.name)
    j = city.junctions()
    load_threaded_turn_kernels(city.arrays, j.mv_ptr, j.mv_out)


def other_seed(path: Path) -> int:
    """The noise-floor seed of a scenario: its second replication seed."""
    from twin.run import replication_seeds
    from twin.scenario import load_scenario

    return replication_seeds(load_scenario(path)["baseline"].seed, 2)[1]


def run_city(name: str, refs: dict[tuple[str, str], SumoReference], seeded: bool = True) -> dict:
    """Built-in runs of one city against its SUMO references; figures, closure deltas, noise floor, targets.

    ``refs`` also holds the other-seed SUMO micro runs under mode ``micro_seed2`` (when ``seeded``)."""
    from twin.city import build_city
    from twin.scenario import load_scenario

    path, closure = CITIES[name]
    path = ROOT / path
    base = load_scenario(path)["baseline"]
    city = build_city(base.city, path.parent, base.name)
    seed2 = other_seed(path)
    out: dict = {"scenario": str(path.relative_to(ROOT)), "closure_variant": closure, "runs": {}, "errors": [],
                 "other_seed": seed2 if seeded else None}
    for variant in ("baseline", closure):
        ds_b, wall_b = run_backend(path, variant, "meso", city)
        runs = {"builtin": (ds_b, wall_b)}
        if seeded:
            runs["builtin_seed2"] = run_backend(path, variant, "meso", city, seed=seed2)
        for model in ("sumo_micro", "sumo_meso_jc") + (("sumo_micro_seed2",) if seeded else ()):
            ref = refs[(name, variant, _MODE[model])]
            if ref.ds is None:
                out["errors"].append(f"{variant} {model}: {ref.error}")
                continue
            runs[model] = (ref.ds, ref.wall_s)
        figs = {}
        micro = runs.get("sumo_micro")
        for model, (ds, wall) in runs.items():
            f = run_figures(ds, wall)
            if micro is not None:
                r, share, pairs = flow_agreement(ds, micro[0])
                f.update(flow_r=r, geh5_share=share, link_hours=pairs)
            if model == "builtin_seed2":  # the built-in model against itself
                r2, share2, _ = flow_agreement(ds, runs["builtin"][0])
                f.update(self_flow_r=r2, self_geh5_share=share2)
            if not model.startswith("builtin"):
                ref = refs[(name, variant, _MODE[model])]
                f.update(cached=ref.cached, sumo_version=str(ref.ds.attrs.get("sumo_version", "")),
                         measured=str(ref.ds.attrs.get("created", "")))
            figs[model] = f
        out["runs"]["baseline" if variant == "baseline" else "closure"] = figs
    out["closure_delta"] = {}
    b, c = out["runs"]["baseline"], out["runs"]["closure"]
    for model in MODELS + SEED_MODELS:
        if model in b and model in c:
            out["closure_delta"][model] = {
                "d_vehicle_hours_pct": _pct(c[model]["vehicle_hours"], b[model]["vehicle_hours"]),
                "d_mean_travel_time_pct": _pct(c[model]["mean_travel_time_s"], b[model]["mean_travel_time_s"])}
    out["noise_floor"] = noise_floor(out)
    out["targets"] = targets(out)
    out["pass"] = bool(out["targets"]) and all(t["pass"] for t in out["targets"].values()) and not out["errors"]
    return out


def noise_floor(city: dict) -> dict:
    """Each model against itself with the other seed: the agreement a target cannot ask beyond.

    SUMO micro: the other-seed run against the reference run (mean travel time %, GEH < 5 share and r of
    link-hours, closure Δ vehicle-hours and its relative difference); built-in: the same between its two seeds."""
    b, d = city["runs"]["baseline"], city["closure_delta"]
    out = {}
    for model, ref, share, r in (("sumo_micro_seed2", "sumo_micro", "geh5_share", "flow_r"),
                                 ("builtin_seed2", "builtin", "self_geh5_share", "self_flow_r")):
        if model not in b or ref not in b:
            continue
        x, y = b[model], b[ref]
        e = {"mean_travel_time_pct": _pct(x["mean_travel_time_s"], y["mean_travel_time_s"]),
             "geh5_share": x.get(share), "flow_r": x.get(r)}
        if model in d and ref in d:
            dx, dy = d[model]["d_vehicle_hours_pct"], d[ref]["d_vehicle_hours_pct"]
            e.update(closure_dvh_pct=dx, closure_dvh_ref_pct=dy,
                     closure_dvh_rel=abs(dx - dy) / abs(dy) if dy else float("nan"))
        out[ref] = e
    return out


def targets(city: dict) -> dict:
    """Per-target value, bound and pass/fail for one city (missing references fail)."""
    t: dict = {}
    b, c, d = city["runs"]["baseline"], city["runs"]["closure"], city["closure_delta"]
    if "sumo_micro" not in b or "sumo_micro" not in d:
        return {"sumo_micro_reference": {"value": None, "target": "present", "pass": False}}
    bi, mi = b["builtin"], b["sumo_micro"]
    dev = _pct(bi["mean_travel_time_s"], mi["mean_travel_time_s"])
    t["mean_travel_time_within_10pct"] = {"value": dev, "unit": "%", "target": f"|x| <= {TARGETS['mean_tt_pct']}",
                                          "pass": bool(abs(dev) <= TARGETS["mean_tt_pct"])}
    t["geh5_share_at_least_85pct"] = {"value": bi["geh5_share"], "unit": "1", "target": ">= 0.85",
                                      "pass": bool(bi["geh5_share"] >= TARGETS["geh5_share"])}
    db, dm = d["builtin"]["d_vehicle_hours_pct"], d["sumo_micro"]["d_vehicle_hours_pct"]
    rel = abs(db - dm) / abs(dm) if dm else float("inf")
    t["closure_dvh_within_25pct_same_sign"] = {
        "value": {"builtin": db, "sumo_micro": dm, "relative_error": rel}, "unit": "%",
        "target": "|builtin - micro| <= 0.25 |micro|, same sign",
        "pass": bool(rel <= TARGETS["closure_dvh_rel"] and np.sign(db) == np.sign(dm))}
    if "sumo_meso_jc" in b and "sumo_meso_jc" in d:
        me = b["sumo_meso_jc"]
        per = {}
        for k in ("mean_travel_time_s", "p90_travel_time_s", "vehicle_hours", "trips_completed"):
            per[f"baseline_{k}"] = (abs(bi[k] - mi[k]), abs(me[k] - mi[k]))
            per[f"closure_{k}"] = (abs(c["builtin"][k] - c["sumo_micro"][k]), abs(c["sumo_meso_jc"][k] - c["sumo_micro"][k]))
        for k in ("geh5_share", "flow_r"):  # higher is closer
            per[f"baseline_{k}"] = (1.0 - bi[k], 1.0 - me[k])
            per[f"closure_{k}"] = (1.0 - c["builtin"][k], 1.0 - c["sumo_meso_jc"][k])
        for k in ("d_vehicle_hours_pct", "d_mean_travel_time_pct"):
            per[k] = (abs(d["builtin"][k] - d["sumo_micro"][k]), abs(d["sumo_meso_jc"][k] - d["sumo_micro"][k]))
        noise = seed_noise(city)
        fails, within = classify_misses(per, noise)
        t["as_close_as_sumo_meso_jc_on_every_figure"] = {
            "value": {k: {"builtin_gap": x, "meso_jc_gap": y,
                          **({"seed_noise": noise[k], "within_seed_noise": (k in within) if k in fails else None}
                             if k in noise else {})}
                      for k, (x, y) in per.items()},
            "not_met": fails, "within_seed_noise": within if noise else None,
            "target": "builtin gap <= meso-jc gap", "pass": not fails}
        w_b = b["builtin"]["wall_time_s"] + c["builtin"]["wall_time_s"]
        w_m = me["wall_time_s"] + c["sumo_meso_jc"]["wall_time_s"]
        t["speedup_vs_sumo_meso_jc_at_least_10x"] = {"value": w_m / w_b, "unit": "x", "target": ">= 10",
                                                     "pass": bool(w_m / w_b >= TARGETS["speedup_vs_meso"])}
    else:
        t["sumo_meso_jc_reference"] = {"value": None, "target": "present", "pass": False}
    return t


def seed_noise(city: dict) -> dict[str, float]:
    """SUMO micro's own seed-to-seed difference of each figure of the "as close as meso-jc" target.

    The other-seed SUMO micro run against the reference run: the absolute difference of mean and p90 travel time,
    vehicle-hours and completed trips (baseline and closure) and of the closure's Δ vehicle-hours and Δ mean travel
    time (percentage points); for the GEH < 5 share and r, 1 − the other seed's agreement with the reference (the
    gap of a model as close to the reference as SUMO's other seed). Empty without the other-seed runs."""
    b, c, d = city["runs"]["baseline"], city["runs"]["closure"], city.get("closure_delta", {})
    s2, mi = "sumo_micro_seed2", "sumo_micro"
    if not (s2 in b and s2 in c and mi in b and mi in c):
        return {}
    out: dict[str, float] = {}
    for run, f in (("baseline", b), ("closure", c)):
        for k in ("mean_travel_time_s", "p90_travel_time_s", "vehicle_hours", "trips_completed"):
            out[f"{run}_{k}"] = abs(f[s2][k] - f[mi][k])
        for k in ("geh5_share", "flow_r"):
            out[f"{run}_{k}"] = 1.0 - f[s2][k]
    if s2 in d and mi in d:
        for k in ("d_vehicle_hours_pct", "d_mean_travel_time_pct"):
            out[k] = abs(d[s2][k] - d[mi][k])
    return out


def classify_misses(per: dict[str, tuple[float, float]], noise: dict[str, float]) -> tuple[list[str], list[str]]:
    """(figures where the built-in gap to SUMO micro exceeds meso-jc's, those of them within SUMO micro's seed noise).

    ``per``: figure -> (built-in gap, meso-jc gap); ``noise``: figure -> SUMO micro's seed-to-seed difference
    (:func:`seed_noise`). A miss is within noise when the built-in model is no further behind meso-jc than SUMO
    micro differs from itself with another seed (built-in gap − meso-jc gap <= noise); a figure without a noise
    value (or NaN) is never within noise. The strict miss list is the target's pass/fail, unchanged."""
    fails = [k for k, (x, y) in per.items() if not (x <= y + 1e-12)]
    within = [k for k in fails if k in noise and np.isfinite(noise[k]) and per[k][0] - per[k][1] <= noise[k] + 1e-12]
    return fails, within


def misses_text(t: dict) -> str:
    """'not met on: ...; of these within SUMO micro's seed noise: ...' of the "as close as meso-jc" target."""
    s = "not met on: " + (", ".join(t.get("not_met", [])) or "none")
    if t.get("not_met"):
        w = t.get("within_seed_noise")
        s += ("; of these within SUMO micro's seed noise: " + (", ".join(w) or "none") if w is not None
              else "; SUMO micro's other seed not run: seed noise not judged")
    return s


def _cell(fmt: str, v) -> str:
    if v is None or (isinstance(v, float) and not np.isfinite(v)):
        return "n/a"
    return fmt.format(v)


def format_city(name: str, res: dict) -> str:
    """Markdown table of one city: both runs side by side, closure deltas, targets."""
    lines = [f"### {name} ({res['scenario']}, closure variant `{res['closure_variant']}`)", ""]
    head = "| measure | unit | " + " | ".join(f"{r}: {m}" for r in ("baseline", "closure")
                                               for m in ("built-in", "SUMO micro", "SUMO meso-jc")) + " |"
    lines += [head, "|" + "---|" * 8]
    for key, label, unit, fmt in _ROWS:
        cells = []
        for run in ("baseline", "closure"):
            for m in MODELS:
                f = res["runs"].get(run, {}).get(m)
                cells.append(_cell(fmt, f.get(key) if f else None) if not (m == "sumo_micro" and key in
                                                                          ("geh5_share", "flow_r")) else "ref")
        unit_s = "" if unit == "%" else unit
        lines.append(f"| {label} | {unit_s} | " + " | ".join(cells) + " |")
    d = res["closure_delta"]
    lines += ["", "| closure effect | built-in | SUMO micro | SUMO meso-jc |", "|---|---|---|---|"]
    for k, label in (("d_vehicle_hours_pct", "Δ vehicle-hours"), ("d_mean_travel_time_pct", "Δ mean travel time")):
        lines.append(f"| {label} | " + " | ".join(_cell("{:+.1f}%", d.get(m, {}).get(k)) for m in MODELS) + " |")
    nf = res.get("noise_floor", {})
    if nf:
        lines += ["", "| noise floor: a model against itself, other seed | mean travel time | link-hours GEH < 5 | "
                  "flow r | closure Δ vehicle-hours (other seed / reference seed, difference) |", "|---|---|---|---|---|"]
        for ref, e in nf.items():
            clo = (f"{e['closure_dvh_pct']:+.1f}% / {e['closure_dvh_ref_pct']:+.1f}% (off by {e['closure_dvh_rel']:.0%})"
                   if "closure_dvh_pct" in e and e["closure_dvh_pct"] is not None
                   and np.isfinite(e["closure_dvh_pct"]) and np.isfinite(e["closure_dvh_rel"]) else "n/a")
            lines.append(f"| {_LABEL[ref]}, seed {res.get('other_seed')} vs its reference seed | "
                         f"{_cell('{:+.1f}%', e['mean_travel_time_pct'])} | {_cell('{:.1%}', e['geh5_share'])} | "
                         f"{_cell('{:.3f}', e['flow_r'])} | {clo} |")
    lines += ["", "| target | value | pass |", "|---|---|---|"]
    for k, t in res["targets"].items():
        v = t["value"]
        if isinstance(v, dict) and "relative_error" in v:
            vs = f"built-in {v['builtin']:+.1f}% vs micro {v['sumo_micro']:+.1f}% (off by {v['relative_error']:.0%})"
        elif isinstance(v, dict):
            vs = misses_text(t)
        elif v is None:
            vs = "missing"
        else:
            vs = f"{v:+.1f}%" if t.get("unit") == "%" else (f"{v:.1%}" if k.startswith("geh") else f"{v:.1f}x")
        lines.append(f"| {k} | {vs} | {'PASS' if t['pass'] else 'FAIL'} |")
    if res["errors"]:
        lines += ["", "SUMO errors: " + "; ".join(res["errors"])]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--no-cache", action="store_true", help="run SUMO again instead of reusing cached runs")
    ap.add_argument("--cities", default=",".join(CITIES), help=f"comma-separated subset of {', '.join(CITIES)}")
    ap.add_argument("--jobs", type=int, default=2, help="SUMO runs at once (child processes)")
    ap.add_argument("--cached-only", action="store_true",
                    help="run no SUMO: use valid cached runs, report the missing ones (targets needing them fail)")
    ap.add_argument("--cache-dir", default=None, help="default results/.cache/sumo_reference")
    ap.add_argument("--no-other-seed", action="store_true",
                    help="skip the noise-floor runs (SUMO micro and the built-in model with another seed)")
    args = ap.parse_args(argv)
    names = [c.strip() for c in args.cities.split(",") if c.strip()]
    bad = [c for c in names if c not in CITIES]
    if bad:
        print(f"--cities: {', '.join(bad)} — not a validation city; choose from {', '.join(CITIES)}", file=sys.stderr)
        return 2
    t0 = time.perf_counter()
    jobs = [(c, v, m) for c in names for v in ("baseline", CITIES[c][1]) for m in MODES]
    if not args.no_other_seed:
        jobs += [(c, v, "micro_seed2") for c in names for v in ("baseline", CITIES[c][1])]
    how = "no cache" if args.no_cache else ("cached runs only" if args.cached_only else "reusing valid cached runs")
    print(f"SUMO reference runs: {len(jobs)} ({how})",
          file=sys.stderr, flush=True)

    from twin.city import build_city
    from twin.scenario import load_scenario

    graphs = {}
    for c in names:  # the city's topology is part of the cache key (build_city caches per process)
        base = load_scenario(ROOT / CITIES[c][0])["baseline"]
        graphs[c] = build_city(base.city, (ROOT / CITIES[c][0]).parent, base.name)

    read_lock = threading.Lock()  # HDF5 is not thread-safe: two threads reading cached runs crashed libhdf5

    def one(job):
        c, v, m = job
        t = time.perf_counter()
        cache = Path(args.cache_dir) if args.cache_dir else ROOT / "results" / ".cache" / "sumo_reference"
        if m == "micro_seed2":  # the noise-floor run: SUMO micro with the other seed
            seed2 = other_seed(ROOT / CITIES[c][0])
            key = seeded_key(ROOT / CITIES[c][0], v, "micro", seed2, graphs[c])
            nc = seeded_file(cache, ROOT / CITIES[c][0], v, "micro", seed2, key)
            if nc.exists() and not args.no_cache:
                with read_lock:
                    ref = seeded_reference(ROOT / CITIES[c][0], v, "micro", seed2, graphs[c], args.cache_dir)
            else:
                ref = seeded_reference(ROOT / CITIES[c][0], v, "micro", seed2, graphs[c], args.cache_dir,
                                       use_cache=not args.no_cache, cached_only=args.cached_only)
            print(f"  {c} {v} SUMO micro seed {seed2}: "
                  f"{'cached' if ref.cached else (ref.error if ref.ds is None else 'ran')} "
                  f"({time.perf_counter() - t:.0f} s)", file=sys.stderr, flush=True)
            return job, ref
        key = reference_key(ROOT / CITIES[c][0], v, m, graphs[c])
        nc = cache / f"{Path(CITIES[c][0]).stem}.{v}.{m}.{key}.nc"
        if args.cached_only and not nc.exists():
            print(f"  {c} {v} SUMO {m}: not in the cache (--cached-only)", file=sys.stderr, flush=True)
            return job, SumoReference(None, float("nan"), False, key, "not in the cache (--cached-only)")
        if nc.exists() and not args.no_cache:
            with read_lock:
                ref = sumo_reference(ROOT / CITIES[c][0], v, m, city=graphs[c], cache_dir=args.cache_dir)
        else:
            ref = sumo_reference(ROOT / CITIES[c][0], v, m, city=graphs[c], cache_dir=args.cache_dir,
                                 use_cache=not args.no_cache)
        how = "cached" if ref.cached else ("FAILED: " + ref.error if ref.ds is None else "ran")
        print(f"  {c} {v} SUMO {m}: {how} ({time.perf_counter() - t:.0f} s)", file=sys.stderr, flush=True)
        return job, ref

    with ThreadPoolExecutor(max_workers=max(1, args.jobs)) as pool:
        refs = dict(pool.map(one, jobs))
    n_cached = sum(r.cached for r in refs.values())
    _warm_up()
    cities = {}
    for c in names:
        cities[c] = run_city(c, refs, seeded=not args.no_other_seed)
        print(format_city(c, cities[c]))
        print()
    ok = all(r["pass"] for r in cities.values())
    summary = {c: {"pass": r["pass"], **{k: t["pass"] for k, t in r["targets"].items()}} for c, r in cities.items()}
    print(f"SUMO runs reused from the cache: {n_cached} of {len(refs)} (their wall times are from when they ran); "
          f"total wall time {time.perf_counter() - t0:.0f} s")
    print("summary: " + json.dumps(summary))
    print(json.dumps(_json_safe({"validation": "traffic_fidelity", "pass": ok, "cities": cities,
                                 "sumo_cached_runs": n_cached, "sumo_runs": len(refs)})))
    return 0


if __name__ == "__main__":
    sys.exit(main())
