"""Command-line face of CityTwin (``run_scenario.py``): validate, run, report, dashboard and planning tools.

Exit codes: 0 success, 1 a run failed, 2 bad input (scenario or arguments). Bad input writes nothing.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

__all__ = ["main"]

EXIT_OK, EXIT_FAIL, EXIT_BAD_INPUT = 0, 1, 2


def _err(msg: str) -> None:
    print(f"error: {msg}", file=sys.stderr)


def _load(path: str):
    """Validate a scenario file and build its city; raise ScenarioError with every problem found."""
    from twin.scenario import ScenarioError, load_scenario

    variants = load_scenario(path)
    base = variants["baseline"]
    from twin.city import build_city

    city = build_city(base.city, Path(path).parent, base.name)
    from twin.demand import demand_errors
    from twin.scenario import resolve_data_path

    msgs = []
    for vname, sc in variants.items():
        pre = "" if vname == "baseline" else f"variants.{vname}."
        msgs += [f"{pre}{m}" for m in demand_errors(sc.demand, city,
                                                     lambda p: resolve_data_path(p, Path(path).parent))]
        for dname, cfg in sc.domain_configs.items():
            check = getattr(cfg, "city_errors", None)
            if check is not None:
                msgs += [f"{pre}{dname}.{m}" for m in check(city)]
    if msgs:
        raise ScenarioError(path, sorted(set(msgs), key=msgs.index))
    return variants, city


def cmd_validate(args) -> int:
    from networks.io import summary
    from twin.scenario import ScenarioError

    try:
        variants, city = _load(args.file)
    except ScenarioError as exc:
        print(str(exc), file=sys.stderr)
        return EXIT_BAD_INPUT
    base = variants["baseline"]
    print(f"{args.file}: valid scenario {base.name!r} with variants: {', '.join(variants)}")
    print(f"city: {summary(city)}")
    print(f"domains: {', '.join(base.domain_configs)}")
    return EXIT_OK


class _Progress:
    """A tqdm bar over simulated time with the simulation speed (sim-s per wall-s)."""

    def __init__(self, label: str, total_s: float, quiet: bool) -> None:
        from tqdm import tqdm

        self.label, self.quiet, self.tty = label, quiet, sys.stderr.isatty()
        self.next_pct = 10
        self.bar = tqdm(total=round(total_s), desc=f"{label:>20}", unit="sim-s", disable=quiet or not sys.stderr.isatty(),
                        file=sys.stderr, dynamic_ncols=True, leave=True,
                        bar_format="{desc}: {percentage:3.0f}%|{bar}| {n_fmt}/{total_fmt} sim-s "
                                   "[{elapsed}<{remaining}, {postfix}]")
        self.t0 = time.perf_counter()

    def __call__(self, t_s: float, total_s: float) -> None:
        speed = t_s / max(time.perf_counter() - self.t0, 1e-9)
        if not self.tty:  # logs and CI: one line per 10% instead of a redrawn bar
            pct = 100.0 * t_s / total_s
            if not self.quiet and pct >= self.next_pct:
                print(f"{self.label:>20}: {pct:3.0f}% of {total_s:,.0f} sim-s, {speed:,.0f}x real time",
                      file=sys.stderr, flush=True)
                self.next_pct = (int(pct) // 10 + 1) * 10
            return
        self.bar.update(round(t_s) - self.bar.n)
        self.bar.set_postfix_str(f"{speed:,.0f}x real time")

    def close(self) -> None:
        self.bar.close()


def print_kpis(ds, file=None) -> None:
    """Print the KPI table: one row per KPI, one column per variant, Δ% against the baseline."""
    from twin.results import kpi_table

    file = file or sys.stdout
    df = kpi_table(ds)
    if df.empty:
        print("(no KPIs)", file=file)
        return
    variants = [str(v) for v in ds["variant"].values] if "variant" in ds.dims else ["baseline"]
    head = f"{'domain':<10} {'KPI':<38} {'units':<6}" + "".join(f"{v[:16]:>17}" for v in variants) + \
        "".join(f"{('Δ% ' + v)[:16]:>17}" for v in variants[1:])
    print(head, file=file)
    print("-" * len(head), file=file)
    for _, r in df.iterrows():
        line = f"{r['domain']:<10} {str(r['kpi'])[:38]:<38} {r['units']:<6}"
        for v in variants:
            x = r[v]
            if x != x:  # NaN: the domain was not simulated in this variant
                line += f"{'—':>17}"
            elif abs(x) < 10 and x != int(x):
                line += f"{x:>17,.3f}"
            else:
                line += f"{x:>17,.1f}" if abs(x) < 1e6 else f"{x:>17,.0f}"
        for v in variants[1:]:
            d = r[f"Δ% {v}"]
            line += f"{d:>+16.1f}%" if d == d else f"{'—':>17}"
        print(line, file=file)


def cmd_run(args) -> int:
    from twin.engine import CityTwin
    from twin.results import stack_variants, write_atomic
    from twin.scenario import PROJECT_ROOT, ScenarioError

    try:
        variants, city = _load(args.file)
        if args.variant:
            unknown = [v for v in args.variant if v not in variants]
            if unknown:
                raise ScenarioError(args.file, [f"--variant {u!r} — not a variant of this scenario; "
                                                f"choose from {', '.join(variants)}" for u in unknown])
            variants = {k: v for k, v in variants.items() if k == "baseline" or k in args.variant}
        if args.backend or args.seed is not None:
            for k, sc in list(variants.items()):
                upd = {}
                if args.seed is not None:
                    upd["seed"] = args.seed
                sc2 = sc.model_copy(update=upd)
                sc2._domains = dict(sc.domain_configs)
                if args.backend and "traffic" in sc2._domains:
                    sc2._domains["traffic"] = sc2._domains["traffic"].model_copy(update={"backend": args.backend})
                variants[k] = sc2
    except ScenarioError as exc:
        print(str(exc), file=sys.stderr)
        return EXIT_BAD_INPUT
    base = variants["baseline"]
    out_dir = Path(args.out) if args.out else Path(base.outputs.dir)
    if not out_dir.is_absolute():
        out_dir = (Path.cwd() if args.out else PROJECT_ROOT) / out_dir
    out_dir = out_dir / base.name
    if not args.quiet:
        print(f"CityTwin: {base.name} — {base.description.strip()[:200]}", file=sys.stderr)
        print(f"city: {city.name}: {city.arrays.n_nodes:,} nodes, {city.arrays.n_links:,} links; "
              f"{len(variants)} run(s): {', '.join(variants)}", file=sys.stderr)
    from twin.domain import DomainRunError

    runs, failed = {}, []
    for name, sc in variants.items():
        bar = _Progress(name, sc.time.duration_s, args.quiet)
        try:
            twin = CityTwin(sc, Path(args.file).parent, city=city)
            runs[name] = twin.run(progress=bar)
        except DomainRunError as exc:  # e.g. SUMO crashed: keep the partial results, marked complete = 0
            bar.close()
            _err(f"run {name!r} stopped early: {exc}; partial results kept (complete=0)")
            if exc.dataset is not None:
                runs[name] = exc.dataset
            failed.append(name)
            continue
        except Exception as exc:  # a failed run is reported, the others are kept
            bar.close()
            _err(f"run {name!r} failed: {type(exc).__name__}: {exc}")
            if args.debug:
                raise
            continue
        bar.close()
        if not args.quiet:
            print(f"{'':>20}  done in {twin.wall_time_s:.1f} s wall", file=sys.stderr)
    if not runs:
        return EXIT_FAIL
    ds = stack_variants(runs)
    path = write_atomic(ds, out_dir / f"{base.name}.nc")
    print()
    print_kpis(ds)
    print()
    print(f"results: {path}")
    report_path = None
    if base.outputs.report and not args.no_report:
        try:
            from dashboards.report import write_report

            report_path = write_report(path, out_dir / "report.html")
            print(f"report:  {report_path}  (open it in a browser; works offline)")
        except ImportError:
            pass
    print(f"next:    .venv/bin/python run_scenario.py dashboard {out_dir}   (serves http://127.0.0.1:8050)")
    return EXIT_OK if len(runs) == len(variants) and not failed else EXIT_FAIL


def cmd_report(args) -> int:
    from dashboards.report import write_report

    src = Path(args.results)
    if not src.is_file():
        _err(f"{src}: results file not found")
        return EXIT_BAD_INPUT
    out = Path(args.out) if args.out else src.with_name("report.html")
    print(f"report: {write_report(src, out)}")
    return EXIT_OK


def cmd_dashboard(args) -> int:
    from dashboards.app import serve

    return serve(args.results_dir, host=args.host, port=args.port, debug=args.debug) or EXIT_OK


def _delegate(module: str, func: str):
    def run(args) -> int:
        import importlib

        try:
            mod = importlib.import_module(module)
        except ImportError as exc:
            _err(f"this command needs {module}, which is not available: {exc}")
            return EXIT_FAIL
        return getattr(mod, func)(args)

    return run


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="run_scenario.py", description="CityTwin: run what-if scenarios of a city.")
    sub = p.add_subparsers(dest="command", required=True)

    v = sub.add_parser("validate", help="check a scenario file (and its city) without running it")
    v.add_argument("file")
    v.set_defaults(func=cmd_validate)

    r = sub.add_parser("run", help="run a scenario's baseline and variants; print KPIs; write results and report")
    r.add_argument("file")
    r.add_argument("--variant", action="append", help="run only this variant (and the baseline); repeatable")
    r.add_argument("--backend", choices=["meso", "freeflow", "sumo"], help="override traffic.backend")
    r.add_argument("--seed", type=int, help="override the scenario seed")
    r.add_argument("--out", help="results folder (default: the scenario's outputs.dir)")
    r.add_argument("--quiet", action="store_true", help="no progress bars")
    r.add_argument("--no-report", action="store_true", help="do not write the HTML report")
    r.add_argument("--debug", action="store_true", help="show tracebacks")
    r.set_defaults(func=cmd_run)

    rep = sub.add_parser("report", help="write a self-contained HTML report from a results file")
    rep.add_argument("results")
    rep.add_argument("--out")
    rep.set_defaults(func=cmd_report)

    d = sub.add_parser("dashboard", help="serve the what-if dashboard (reads results files only)")
    d.add_argument("results_dir", nargs="?", default="results")
    d.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1: this machine only)")
    d.add_argument("--port", type=int, default=8050)
    d.add_argument("--debug", action="store_true")
    d.set_defaults(func=cmd_dashboard)

    c = sub.add_parser("compare-backends", help="run the built-in model and SUMO on one scenario; compare")
    c.add_argument("file")
    c.add_argument("--variant", default="baseline")
    c.add_argument("--quiet", action="store_true")
    c.set_defaults(func=_delegate("agents.traffic.compare", "cli_compare_backends"))

    s = sub.add_parser("sweep", help="run a parameter sweep / replications in parallel")
    s.add_argument("file")
    s.add_argument("--param", action="append", default=[], help="key.path=v1,v2,... (repeatable)")
    s.add_argument("--seeds", type=int, default=None, help="replications per parameter set (default: the file's, else 1)")
    s.add_argument("--workers", type=int, default=None, help="local worker processes (default: cores)")
    s.add_argument("--dask", default=None, help="address of a dask.distributed scheduler")
    s.add_argument("--design", choices=["grid", "random", "latin"], default=None, help="default: the file's, else grid")
    s.add_argument("--keep", choices=["kpis", "series", "all"], default=None, help="what each run keeps on disk")
    s.add_argument("--batch-seed", type=int, default=None, help="seed all replication seeds derive from")
    s.add_argument("--dask-workers", type=int, default=None, help="workers of a LocalCluster (--dask local)")
    s.add_argument("--no-retry", action="store_true", help="do not retry runs that failed before")
    s.add_argument("--samples", type=int, default=None, help="parameter sets for random/latin designs")
    s.add_argument("--out", default=None)
    s.add_argument("--quiet", action="store_true")
    s.set_defaults(func=_delegate("twin.batch_cli", "cli_sweep"))

    sc = sub.add_parser("suggest-chargers", help="propose K charging sites from simulated unmet demand")
    sc.add_argument("file")
    sc.add_argument("--add", type=int, default=3)
    sc.add_argument("--run", action="store_true", help="also run the suggestion as a variant")
    sc.add_argument("--quiet", action="store_true")
    sc.set_defaults(func=_delegate("agents.ev.cli", "cli_suggest_chargers"))

    ss = sub.add_parser("suggest-stations", help="propose K emergency station sites maximising coverage")
    ss.add_argument("file")
    ss.add_argument("--add", type=int, default=1)
    ss.add_argument("--run", action="store_true", help="also run the suggestion as a variant")
    ss.add_argument("--quiet", action="store_true")
    ss.set_defaults(func=_delegate("agents.emergency.cli", "cli_suggest_stations"))

    cal = sub.add_parser("calibrate", help="fit the scenario's demand to traffic counts (ODME); report GEH")
    from agents.traffic.counts.cli import add_arguments as _calibrate_args

    _calibrate_args(cal)
    cal.set_defaults(func=_delegate("agents.traffic.counts.cli", "cli_calibrate"))
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except KeyboardInterrupt:
        _err("interrupted; results written so far are kept")
        return EXIT_FAIL


def planning_inputs(path: str, domain: str, add: int):
    """Scenario baseline, its ``domain`` config and city for a planning command; ScenarioError if unusable."""
    from twin.city import build_city
    from twin.scenario import ScenarioError, load_scenario

    base = load_scenario(path)["baseline"]
    cfg = base.domain_configs.get(domain)
    if cfg is None:
        raise ScenarioError(path, [f"{domain}: missing or disabled — add a {domain}: section to the scenario"])
    if add < 1:
        raise ScenarioError(path, [f"--add {add} — ask for at least 1 site"])
    city = build_city(base.city, Path(path).parent, base.name)
    errs = [f"{domain}.{m}" for m in cfg.city_errors(city)] if hasattr(cfg, "city_errors") else []
    if errs:
        raise ScenarioError(path, errs)
    return base, cfg, city


def run_with_variant(path: str, name: str, override: dict, city, quiet: bool = False) -> int:
    """Run a scenario's baseline and one extra variant ``name`` built from ``override``; print KPI deltas.

    Used by the planning commands (suggest-chargers, suggest-stations) to try their suggestion at once.
    """
    from twin.engine import CityTwin
    from twin.results import stack_variants
    from twin.scenario import load_document, resolve_variants

    doc = load_document(path)
    doc["variants"] = {name: override}
    both = resolve_variants(doc, path)
    runs = {}
    for vname, sc in both.items():
        bar = _Progress(vname, sc.time.duration_s, quiet)
        try:
            runs[vname] = CityTwin(sc, Path(path).parent, city=city).run(progress=bar)
        except Exception as exc:  # a failed run is reported, not hidden
            bar.close()
            _err(f"run {vname!r} failed: {type(exc).__name__}: {exc}")
            return EXIT_FAIL
        bar.close()
    print_kpis(stack_variants(runs))
    return EXIT_OK
