"""``run_scenario.py calibrate``: fit a scenario's demand to traffic counts, write the demand, a variant
snippet and the report, and end with one JSON line.

Bad input (scenario, variant, counts, options) exits 2 with one line per problem and writes nothing.
"""
from __future__ import annotations

import csv
import json
import sys
import time
from pathlib import Path

import numpy as np

__all__ = ["add_arguments", "cli_calibrate"]

EXIT_OK, EXIT_FAIL, EXIT_BAD_INPUT = 0, 1, 2


def add_arguments(p) -> None:
    """The subcommand's options (kept here so twin/cli.py only adds one subparser)."""
    p.add_argument("file", help="scenario YAML")
    p.add_argument("--counts", required=True, help="counts: CSV, SUMO edgeData XML, Cadyts XML, dfrouter CSV, "
                                                   "turn counts XML (.gz allowed)")
    p.add_argument("--detectors", help="SUMO detector definitions (for dfrouter files or a CSV 'detector' column)")
    p.add_argument("--time-offset", type=float, default=0.0, help="dfrouter: clock time (s) of Time 0 (default 0)")
    p.add_argument("--interval", type=float, default=60.0, help="dfrouter: seconds each row counts (default 60)")
    p.add_argument("--attribute", default="entered", help="edgeData: attribute holding the count (default entered)")
    p.add_argument("--holdout", type=float, default=0.2, help="share of count locations held out (default 0.2)")
    p.add_argument("--folds", type=int, default=0, help="also run K leave-some-out folds (each location held out "
                                                        "once) and report them all")
    p.add_argument("--seed", type=int, default=0, help="seed of the hold-out choice and of the demand draw")
    p.add_argument("--variant", default="baseline", help="the scenario variant whose demand is the prior")
    p.add_argument("--iterations", type=int, default=3, help="bilevel iterations (simulate, re-route, refit)")
    p.add_argument("--screenlines", help="CSV screenline,link: report observed/simulated totals per screenline")
    p.add_argument("--out", help="output folder (default results/<scenario name>/calibration, beside the run results)")
    p.add_argument("--quiet", action="store_true")


def _read_screenlines(path: str, counts) -> dict[str, list[str]]:
    from agents.traffic.counts.readers import CountsError

    p = Path(path)
    if not p.is_file():
        raise CountsError(p, ["file not found"])
    rows = list(csv.DictReader(p.read_text(encoding="utf-8-sig").splitlines()))
    if not rows or not {"screenline", "link"} <= set(rows[0]):
        raise CountsError(p, ["columns must be screenline,link"])
    labels = set(counts.label)
    out: dict[str, list[str]] = {}
    errs = []
    for i, r in enumerate(rows):
        if r["link"] not in labels:
            errs.append(f"row {i + 2}: link {r['link']!r} — not a counted location")
        out.setdefault(r["screenline"], []).append(r["link"])
    if errs:
        raise CountsError(p, errs[:10])
    return out


def _window_errors(counts, clock0: float, duration: float, path: str) -> list[str]:
    bad = np.flatnonzero((counts.start_s < clock0 - 1e-6) | (counts.end_s > clock0 + duration + 1e-6))
    return [f"{path}: count {counts.label[i]!r} {counts.start_s[i]:g}-{counts.end_s[i]:g} s — outside the "
            f"scenario's clock window {clock0:g}-{clock0 + duration:g} s (time.start, time.duration_s)"
            for i in bad[:10]]


def _out_dir(args, name: str) -> Path:
    from twin.scenario import PROJECT_ROOT

    if args.out:
        return Path(args.out).resolve()
    return PROJECT_ROOT / "results" / name / "calibration"


def _snippet(scenario_file: str, sc, demand: Path, fit: float, hold: float | None, variant: str,
             counts_file: str) -> str:
    """A ready ``variants:`` entry using the calibrated trips (path relative to the scenario file)."""
    import os

    from twin.scenario import resolve_data_path

    rel = os.path.relpath(demand, Path(scenario_file).resolve().parent)
    try:
        resolve_data_path(rel, Path(scenario_file).resolve().parent)
        note = ""
    except ValueError:  # scenarios may only name files beside them or in the project
        note = "# note: this file is outside the scenario's folder and the project: copy it beside the scenario\n"
    d = sc.demand
    end = d.end_s if d.end_s is not None else sc.time.duration_s
    hold_txt = "n/a" if hold is None else f"{100 * hold:.0f}%"
    return (f"{note}calibrated:\n"
            f"  description: >-\n"
            f"    Demand calibrated to {Path(counts_file).name} from variant {variant} (GEH<5 on {100 * fit:.0f}% of "
            f"fit counts, {hold_txt} of hold-out counts).\n"
            f"  demand:\n"
            f"    trips_file: {rel}\n"
            f"    start_s: {d.start_s:g}\n"
            f"    end_s: {end:g}\n"
            f"    scale: 1.0\n")


def cli_calibrate(args) -> int:
    from agents.traffic.counts.assign import write_trips_csv
    from agents.traffic.counts.odme import (
        OdmeOptions,
        calibrate_demand,
        fold_groups,
        prior_trips,
        split_holdout,
    )
    from agents.traffic.counts.readers import CountsError, read_counts
    from agents.traffic.counts.report import build_report, calibration_html, text_report
    from twin.run import load_variants, variant_city
    from twin.scenario import ScenarioError

    t0 = time.perf_counter()
    say = (lambda *a: None) if args.quiet else (lambda *a: print(*a, file=sys.stderr, flush=True))
    try:
        opt_errs = []
        if not 0.0 <= args.holdout < 1.0:
            opt_errs.append(f"--holdout {args.holdout} — a share from 0 to below 1")
        if args.folds and args.folds < 2:
            opt_errs.append(f"--folds {args.folds} — at least 2 (or 0 for none)")
        if not 0 <= args.iterations <= 20:
            opt_errs.append(f"--iterations {args.iterations} — 0 to 20")
        if args.interval <= 0:
            opt_errs.append(f"--interval {args.interval} — seconds > 0")
        if opt_errs:
            raise ScenarioError(args.file, opt_errs)
        variants = load_variants(args.file)  # the run service: every variant checked against its own city
        if args.variant not in variants:
            raise ScenarioError(args.file, [f"--variant {args.variant!r} — not a variant of this scenario; choose "
                                            f"from {', '.join(variants)}"])
        sc = variants[args.variant]
        city = variant_city(sc, Path(args.file).parent)
        if "traffic" not in sc.domain_configs:
            raise ScenarioError(args.file, ["traffic: disabled — calibration needs the traffic model"])
        counts = read_counts(args.counts, city, detectors=args.detectors, time_offset_s=args.time_offset,
                             interval_s=args.interval, attribute=args.attribute)
        clock0 = sc.time.start_hour * 3600.0
        werr = _window_errors(counts, clock0, sc.time.duration_s, args.counts)
        if werr:
            print("\n".join(werr), file=sys.stderr)
            return EXIT_BAD_INPUT
        screen = _read_screenlines(args.screenlines, counts) if args.screenlines else None
        if len(counts.locations()) < 2 and (args.holdout > 0 or args.folds):
            raise CountsError(args.counts, ["hold-out needs counts at two or more locations (use --holdout 0)"])
    except ScenarioError as exc:
        print(str(exc), file=sys.stderr)
        return EXIT_BAD_INPUT
    except CountsError as exc:
        print(str(exc), file=sys.stderr)
        return EXIT_BAD_INPUT
    name = sc.name
    sdir = Path(args.file).parent
    opts = OdmeOptions(iterations=args.iterations, seed=args.seed)
    prior = prior_trips(sc, city, sdir)
    say(f"calibrate: {name} ({args.variant}): {len(prior['origin']):,} prior trips, {len(counts)} counts at "
        f"{len(counts.locations())} locations from {args.counts}")
    log = (lambda r: say(f"  iteration {r['iteration']}: {r['trips']:,} trips, GEH<5 fit "
                         f"{100 * r['geh5_fit']:.0f}%" + ("" if r["geh5_holdout"] is None else
                                                          f", hold-out {100 * r['geh5_holdout']:.0f}%") +
                         f" ({r['wall_s']:.1f} s)"))
    from agents.traffic.counts.metrics import geh

    hours = (counts.end_s - counts.start_s) / 3600.0
    folds: list[dict] = []
    if args.folds:
        for f, mask in enumerate(fold_groups(counts, args.folds, args.seed)):
            say(f"fold {f + 1}/{args.folds}")
            r = calibrate_demand(sc, city, counts, mask, opts, prior=prior, scenario_dir=sdir, log=log)
            g = geh(r.sim_counts / hours, counts.count / hours)
            folds.append({"fold": f + 1, "holdout": [counts.label[i] for i in np.flatnonzero(~mask)],
                          "geh5_share_fit": float(np.mean(g[mask] < 5)),
                          "geh5_share_holdout": float(np.mean(g[~mask] < 5)),
                          "holdout_geh": [round(float(x), 2) for x in g[~mask]], "wall_s": round(r.wall_s, 1)})
    holdout = 0.0 if args.folds else args.holdout
    fit_mask = split_holdout(counts, holdout, args.seed)
    say("final fit" + ("" if holdout == 0 else f" (hold-out {100 * holdout:.0f}%)"))
    res = calibrate_demand(sc, city, counts, fit_mask, opts, prior=prior, scenario_dir=sdir, log=log)
    g = geh(res.sim_counts / hours, counts.count / hours)
    fit_share = float(np.mean(g[fit_mask] < 5))
    hold_share: float | None
    if folds:
        pooled = np.array([x for f in folds for x in f["holdout_geh"]])
        hold_share = float(np.mean(pooled < 5))
    else:
        hold_share = float(np.mean(g[~fit_mask] < 5)) if (~fit_mask).any() else None
    out = _out_dir(args, name)
    out.mkdir(parents=True, exist_ok=True)
    demand = write_trips_csv(out / "calibrated_trips.csv", city, res.trips)
    snippet = _snippet(args.file, sc, demand, fit_share, hold_share, args.variant, args.counts)
    (out / "variant.yaml").write_text("# add under `variants:` of " + args.file + "\n" + snippet, encoding="utf-8")
    wall = time.perf_counter() - t0
    rep = build_report(name, counts, res, scenario_file=args.file, variant=args.variant, counts_file=args.counts,
                       holdout=holdout, seed=args.seed, demand_file=str(demand), snippet=snippet, folds=folds,
                       screenlines=screen, wall_s=wall)
    rep["geh5_share_holdout_reported"] = hold_share
    (out / "calibration.json").write_text(json.dumps(rep, indent=1), encoding="utf-8")
    text = text_report(rep)
    (out / "calibration.txt").write_text(text + "\n", encoding="utf-8")
    _write_html(out / "calibration.html", rep, calibration_html)
    print(text)
    print(f"\nreport: {out / 'calibration.html'}  (and calibration.json, calibration.txt)")
    print(json.dumps({"calibrate": name, "geh5_share_fit": round(fit_share, 4),
                      "geh5_share_holdout": None if hold_share is None else round(hold_share, 4),
                      "counts": len(counts), "demand_file": str(demand), "wall_s": round(wall, 1)}))
    return EXIT_OK


def _write_html(path: Path, rep: dict, section) -> None:
    """A standalone page holding the report section (plotly.js embedded once, works offline)."""
    import plotly.offline

    js = plotly.offline.get_plotlyjs()
    page = (f"<!doctype html><html><head><meta charset='utf-8'><title>CityTwin calibration: {rep['calibrate']}"
            f"</title><script>{js}</script><style>body{{font-family:sans-serif;margin:24px}}table{{border-collapse:"
            f"collapse}}td,th{{padding:3px 8px;border-bottom:1px solid #eee;text-align:right}}</style></head>"
            f"<body>{section(rep)}</body></html>")
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(page, encoding="utf-8")
    tmp.replace(path)
