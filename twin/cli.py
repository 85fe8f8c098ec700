"""Command-line face of CityTwin (``run_scenario.py``): validate, run, report, dashboard and planning tools.

Exit codes: 0 success, 1 a run failed, 2 bad input (scenario, data files or arguments), 130 interrupted (Ctrl+C;
finished variants are kept). Bad input writes nothing (docs/reliability.md).
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

__all__ = ["main"]

EXIT_OK, EXIT_FAIL, EXIT_BAD_INPUT, EXIT_INTERRUPTED = 0, 1, 2, 130


class OneLineParser(argparse.ArgumentParser):
    """argparse that reports a bad argument as one line (``<prog>: error: ...``), exit 2, like a bad scenario key."""

    def error(self, message: str):  # type: ignore[override]
        print(f"{self.prog}: error: {message} (see {self.prog} --help)", file=sys.stderr)
        raise SystemExit(EXIT_BAD_INPUT)


def bounded_int(lo: int, hi: int):
    """An argparse type: an integer from ``lo`` to ``hi`` (the message says what is allowed)."""
    def parse(text: str) -> int:
        t = text.strip()
        if len(t) > 30 or not t.lstrip("+-").isdigit():
            raise argparse.ArgumentTypeError(f"{text[:40]!r} — a whole number from {lo:,} to {hi:,}")
        v = int(t)
        if not lo <= v <= hi:
            raise argparse.ArgumentTypeError(f"{t} — allowed {lo:,} to {hi:,}")
        return v

    parse.__name__ = "integer"
    return parse


MAX_WORKERS = 256


def _err(msg: str) -> None:
    print(f"error: {msg}", file=sys.stderr)


def _load(path: str, force: bool = False):
    """Validate a scenario file against every variant's own city (the run service); raise ScenarioError."""
    from twin.run import BASELINE, load_variants, variant_city

    variants = load_variants(path, force=force)
    return variants, variant_city(variants[BASELINE], Path(path).parent)


def cmd_validate(args) -> int:
    from twin.scenario import ScenarioError

    try:
        variants, city = _load(args.file, args.force)
    except ScenarioError as exc:
        print(str(exc), file=sys.stderr)
        return EXIT_BAD_INPUT
    from networks.io import summary

    base = variants["baseline"]
    _print_notes(variants, args.file)
    _print_estimate(variants, args.file, base.replications)
    print(f"{args.file}: valid scenario {base.name!r} with variants: {', '.join(variants)}")
    print(f"city: {summary(city)}")
    print(f"domains: {', '.join(base.domain_configs)}")
    return EXIT_OK


def _print_notes(variants, path: str) -> None:
    """Facts about the data that are not errors (e.g. trips outside the demand window), one line each."""
    from twin.data_checks import data_notes
    from twin.run import variant_city

    seen = set()
    for name, sc in variants.items():
        for note in data_notes(sc, variant_city(sc, Path(path).parent), Path(path).parent):
            if note not in seen:  # said once: a variant inheriting the baseline's setting repeats its note
                seen.add(note)
                where = "" if name == "baseline" or note.startswith("demand.") else f"variants.{name}."
                print(f"{path}: note: {where}{note}", file=sys.stderr)


def _print_estimate(variants, path: str, runs: int) -> None:
    """The memory/time estimate (twin.estimate) when the run will be long."""
    from twin.estimate import estimate_errors

    _, notes = estimate_errors(variants, Path(path).parent, runs, free_bytes=float("inf"))
    for n in notes:
        print(f"{path}: note: {n}", file=sys.stderr)


class Progress:
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


_MARK = {"better": "+", "worse": "!", "unclear": "~", "same": "", "baseline": ""}


def print_kpis(ds, file=None, fmt: str = "text", width: int | None = None) -> None:
    """Print the KPI table for people (``text``: fits ``width`` = $COLUMNS, default 100) or scripts (``csv``,
    ``json``: one record per KPI and variant, raw numbers in the KPI's units).

    Text: per-domain blocks, KPIs as rows with their full names and display unit, each variant's value and its
    change against the baseline together (same unit); "+" better, "!" worse, "~" no clear change (95% interval
    includes 0); with one run per variant changes under 2% / 1 point are noise and unmarked."""
    import csv
    import json
    import os
    import textwrap

    from twin import kpi_format as K

    file = file or sys.stdout
    rows = K.kpi_rows(ds)
    if fmt == "json":
        print(json.dumps(rows, indent=1), file=file)
        return
    if fmt == "csv":
        w = csv.DictWriter(file, fieldnames=list(rows[0]) if rows else ["kpi"], lineterminator="\n")
        w.writeheader()
        w.writerows(rows)
        return
    if not rows:
        print("(no KPIs)", file=file)
        return
    if width is None:
        try:
            width = int(os.environ.get("COLUMNS", "100"))
        except ValueError:
            width = 100
    width = max(width, 60)
    variants = list(dict.fromkeys(r["variant"] for r in rows))
    by = {(r["kpi"], r["variant"]): r for r in rows}
    kpis = list(dict.fromkeys(r["kpi"] for r in rows))
    n_rep = rows[0]["n"]
    head = ("mean of %d replications per variant; change: mean paired difference ± 95%% interval. " % n_rep
            if n_rep > 1 else "one run per variant (no interval): changes under 2% or 1 point are not marked. ") + \
        "Each variant: value, change against the baseline (same unit). Marks: + better, ! worse" + \
        (", ~ no clear change" if n_rep > 1 else "") + "."
    print("\n".join(textwrap.wrap(head, width)), file=file)
    # cells wide enough for the full variant names (up to 36 characters) and "value change mark"
    base_w, min_label = max(10, min(16, len(variants[0]))), 30
    cell_w = max(24, min(36, max(len(v) for v in variants)))
    per = max(1, (width - base_w - min_label) // (cell_w + 1))
    others = variants[1:]
    groups = [others[i:i + per] for i in range(0, len(others), per)] or [[]]
    for g in groups:
        label_w = min(60, width - base_w - 1 - len(g) * (cell_w + 1))
        print(file=file)
        print(f"{'KPI [unit]':<{label_w}} {variants[0][:base_w]:>{base_w}}" +
              "".join(f" {v[:cell_w]:>{cell_w}}" for v in g), file=file)
        print("=" * min(width, label_w + 1 + base_w + len(g) * (cell_w + 1)), file=file)
        last = None
        for k in kpis:
            b = by[(k, variants[0])]
            if b["domain"] != last:
                last = b["domain"]
                print(f"-- {last} " + "-" * max(0, min(width, 40) - len(last) - 4), file=file)
            ref = b["value"] if b["value"] is not None else float("nan")
            unit = K.unit_label(k, b["units"], ref)
            label = b["label"] + (f" [{unit}]" if unit else "")
            cells = []
            for v in g:
                r = by[(k, v)]
                val = K.fmt_value(r["value"], k, r["units"], ref=ref, unit=False)
                if r["delta"] is None:
                    d = ""
                elif r["delta"] == 0 and r["delta_ci95"] is None:
                    d = "="
                else:
                    # the values are means over each variant's runs with a value; the change is over the pairs
                    # where both have one: say how many when that is fewer than the replications
                    few = r.get("n_pairs", r["n"]) < r["n"]
                    d = K.fmt_delta(ref, ref + r["delta"], k, r["units"], r["delta_ci95"],
                                    r["n_pairs"] if few else None, pct=False, unit=False)
                mark = _MARK.get(r["verdict"], "")
                cell = f"{val} {d} {mark}".rstrip() if d else val
                cells.append(f" {cell:>{cell_w}}"[: cell_w + 1] if len(cell) <= cell_w else f" {cell}")
            lines = textwrap.wrap(label, label_w - 1) or [""]
            base_val = K.fmt_value(b["value"], k, b["units"], ref=ref, unit=False)
            print(f"{lines[0]:<{label_w}} {base_val:>{base_w}}" + "".join(cells), file=file)
            for extra in lines[1:]:
                print(f"  {extra}", file=file)


def cmd_run(args) -> int:
    from twin.run import BASELINE, RunOverrides, load_variants, results_dir, run_variants, variant_city
    from twin.scenario import ScenarioError

    overrides = RunOverrides(backend=args.backend, seed=args.seed)
    try:
        variants = load_variants(args.file, args.variant, overrides, force=args.force)
    except ScenarioError as exc:
        print(str(exc), file=sys.stderr)
        return EXIT_BAD_INPUT
    base = variants[BASELINE]
    n_rep = args.replications or base.replications
    if not args.quiet:
        _print_notes(variants, args.file)
        _print_estimate(variants, args.file, n_rep)
    if not args.quiet:
        city = variant_city(base, Path(args.file).parent)
        print(f"CityTwin: {base.name} — {base.description.strip()[:200]}", file=sys.stderr)
        print(f"city: {city.name}: {city.arrays.n_nodes:,} nodes, {city.arrays.n_links:,} links; "
              f"{len(variants)} variant(s): {', '.join(variants)}"
              + (f"; {n_rep} replications each" if n_rep > 1 else ""), file=sys.stderr)

    def bar(label, sc):
        return Progress(label, sc.time.duration_s, args.quiet)

    def log(msg: str) -> None:
        if msg.startswith("run "):
            _err(msg)
        elif not args.quiet:
            print(f"{'':>20}  {msg}", file=sys.stderr)

    try:
        outcome = run_variants(args.file, args.variant, args.out, overrides, replications=args.replications,
                               workers=args.workers, progress=bar, log=log, debug=args.debug, force=args.force)
    except ScenarioError as exc:
        print(str(exc), file=sys.stderr)
        return EXIT_BAD_INPUT
    if outcome.dataset is None:
        return EXIT_FAIL
    ds, path = outcome.dataset, outcome.path
    assert path is not None  # run_variants writes when it has results
    out_dir = results_dir(base, args.out)
    if getattr(args, "format", "text") != "text":  # for scripts: the table alone on stdout, paths on stderr
        print_kpis(ds, fmt=args.format)
        print(f"results: {path}", file=sys.stderr)
        return EXIT_OK if outcome.ok else EXIT_FAIL
    print()
    print_kpis(ds)
    print()
    print(f"results: {path}")
    if base.outputs.report and not args.no_report:
        try:
            from dashboards.report import write_report

            print(f"report:  {write_report(path, out_dir / 'report.html')}  (open it in a browser; works offline)")
        except ImportError:
            pass
    print(f"next:    .venv/bin/python run_scenario.py dashboard {out_dir}   (serves http://127.0.0.1:8050)")
    return EXIT_OK if outcome.ok else EXIT_FAIL


def cmd_report(args) -> int:
    from dashboards.report import write_report

    src = Path(args.results)
    if not src.is_file():
        _err(f"{src}: results file not found")
        return EXIT_BAD_INPUT
    with open(src, "rb") as fh:
        magic = fh.read(8)
    if not (magic.startswith(b"\x89HDF\r\n\x1a\n") or magic[:3] == b"CDF"):
        _err(f"{src}: not a netCDF results file (written by run_scenario.py run) — give the .nc file")
        return EXIT_BAD_INPUT
    out = Path(args.out) if args.out else src.with_name("report.html")
    try:
        print(f"report: {write_report(src, out)}")
    except (OSError, KeyError, ValueError) as exc:
        _err(f"{src}: cannot make a report from this file — {type(exc).__name__}: {str(exc)[:160]} "
             "(is it a CityTwin results file?)")
        return EXIT_BAD_INPUT
    return EXIT_OK


def cmd_dashboard(args) -> int:
    from dashboards.app import serve

    return serve(args.results_dir, host=args.host, port=args.port, debug=args.debug, whatif=not args.no_whatif,
                 allow_hosts=tuple(args.allow_host or ())) or EXIT_OK


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
    from twin.scenario import MAX_SEED

    p = OneLineParser(prog="run_scenario.py", description="CityTwin: run what-if scenarios of a city.")
    sub = p.add_subparsers(dest="command", required=True)

    v = sub.add_parser("validate", help="check a scenario file (and its city) without running it")
    v.add_argument("file")
    v.add_argument("--force", action="store_true", help="check even when the memory estimate exceeds free memory")
    v.set_defaults(func=cmd_validate)

    r = sub.add_parser("run", help="run a scenario's baseline and variants; print KPIs; write results and report")
    r.add_argument("file")
    r.add_argument("--variant", action="append", help="run only this variant (and the baseline); repeatable")
    from twin.registry import traffic_backend_names  # the choices are the registered back-ends

    r.add_argument("--backend", choices=traffic_backend_names(), help="override traffic.backend")
    r.add_argument("--seed", type=bounded_int(0, MAX_SEED), help="override the scenario seed (0 to 2**63-1)")
    r.add_argument("--replications", type=bounded_int(1, 1000), default=None,
                   help="runs per variant with common random numbers (default: the file's replications, else 1)")
    r.add_argument("--workers", type=bounded_int(1, MAX_WORKERS), default=None,
                   help="local worker processes for the runs (default: this process, one run at a time)")
    r.add_argument("--out", help="results folder (default: the scenario's outputs.dir)")
    r.add_argument("--quiet", action="store_true", help="no progress bars")
    r.add_argument("--no-report", action="store_true", help="do not write the HTML report")
    r.add_argument("--debug", action="store_true", help="show tracebacks")
    r.add_argument("--force", action="store_true",
                   help="run even when the memory estimate exceeds the free memory (docs/reliability.md)")
    r.add_argument("--format", choices=("text", "csv", "json"), default="text",
                   help="KPI table format: text (fits $COLUMNS, default 100), csv or json (for scripts)")
    r.set_defaults(func=cmd_run)

    rep = sub.add_parser("report", help="write a self-contained HTML report from a results file")
    rep.add_argument("results")
    rep.add_argument("--out")
    rep.set_defaults(func=cmd_report)

    d = sub.add_parser("dashboard", help="serve the what-if dashboard (reads results files only)")
    d.add_argument("results_dir", nargs="?", default="results")
    d.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1: this machine only)")
    d.add_argument("--port", type=bounded_int(1, 65535), default=8050)
    d.add_argument("--no-whatif", action="store_true", help="turn the what-if page off (no runs from the web)")
    d.add_argument("--allow-host", action="append", metavar="NAME",
                   help="another Host name the server answers to (e.g. the proxy's name); repeatable")
    d.add_argument("--debug", action="store_true", help="Dash debug mode (only with --host 127.0.0.1)")
    d.set_defaults(func=cmd_dashboard)

    c = sub.add_parser("compare-backends", help="run the built-in model and SUMO on one scenario; compare")
    c.add_argument("file")
    c.add_argument("--variant", default="baseline")
    c.add_argument("--quiet", action="store_true")
    c.add_argument("--json", action="store_true", help="print the figures as one JSON object instead of the table")
    c.set_defaults(func=_delegate("agents.traffic.compare", "cli_compare_backends"))

    s = sub.add_parser("sweep", help="run a parameter sweep / replications in parallel")
    s.add_argument("file")
    s.add_argument("--param", action="append", default=[], help="key.path=v1,v2,... (repeatable)")
    s.add_argument("--seeds", type=bounded_int(1, 100_000), default=None, help="replications per parameter set (default: the file's, else 1)")
    s.add_argument("--workers", type=bounded_int(0, MAX_WORKERS), default=None,
                   help="local worker processes (default: cores; 0: this process)")
    s.add_argument("--dask", default=None, help="address of a dask.distributed scheduler")
    s.add_argument("--design", choices=["grid", "random", "latin"], default=None, help="default: the file's, else grid")
    s.add_argument("--keep", choices=["kpis", "series", "all"], default=None, help="what each run keeps on disk")
    s.add_argument("--batch-seed", type=bounded_int(0, MAX_SEED), default=None, help="seed all replication seeds derive from")
    s.add_argument("--dask-workers", type=bounded_int(1, MAX_WORKERS), default=None, help="workers of a LocalCluster (--dask local)")
    s.add_argument("--no-retry", action="store_true", help="do not retry runs that failed before")
    s.add_argument("--samples", type=bounded_int(1, 1_000_000), default=None, help="parameter sets for random/latin designs")
    s.add_argument("--out", default=None)
    s.add_argument("--quiet", action="store_true")
    s.set_defaults(func=_delegate("twin.batch_cli", "cli_sweep"))

    sc = sub.add_parser("suggest-chargers", help="propose K charging sites from simulated unmet demand")
    sc.add_argument("file")
    sc.add_argument("--add", type=bounded_int(1, 1000), default=3)
    sc.add_argument("--run", action="store_true", help="also run the suggestion as a variant")
    sc.add_argument("--quiet", action="store_true")
    sc.set_defaults(func=_delegate("agents.ev.cli", "cli_suggest_chargers"))

    ss = sub.add_parser("suggest-stations", help="propose K emergency station sites maximising coverage")
    ss.add_argument("file")
    ss.add_argument("--add", type=bounded_int(1, 1000), default=1)
    ss.add_argument("--run", action="store_true", help="also run the suggestion as a variant")
    ss.add_argument("--quiet", action="store_true")
    ss.set_defaults(func=_delegate("agents.emergency.cli", "cli_suggest_stations"))

    cal = sub.add_parser("calibrate", help="fit the scenario's demand to traffic counts (ODME); report GEH")
    from agents.traffic.counts.cli import add_arguments as _calibrate_args

    _calibrate_args(cal)
    cal.set_defaults(func=_delegate("agents.traffic.counts.cli", "cli_calibrate"))
    return p


def _term_as_interrupt() -> None:
    """SIGTERM (a CI timeout, ``kill``, a container stop) ends a command as Ctrl+C does: finished variants kept,
    temp folders removed, exit 130 (it killed the process at once, leaving ``.citytwin-runs-*`` folders). The
    handler re-sends SIGINT, so a results write in progress is deferred exactly as for Ctrl+C (twin/atomic.py)."""
    import os
    import signal
    import threading

    # only where SIGINT raises KeyboardInterrupt: a process started with SIGINT ignored (a background job of a
    # script) keeps SIGTERM's default, so SIGTERM still ends it
    if (threading.current_thread() is threading.main_thread() and signal.getsignal(signal.SIGTERM) is signal.SIG_DFL
            and signal.getsignal(signal.SIGINT) is signal.default_int_handler):
        signal.signal(signal.SIGTERM, lambda _sig, _frame: os.kill(os.getpid(), signal.SIGINT))


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if argv is None:  # the command line, not a caller embedding main() (tests, notebooks keep their handlers)
        _term_as_interrupt()
    try:
        return args.func(args)
    except KeyboardInterrupt:  # every finished variant is already on disk (twin.run writes after each one)
        _err("interrupted; the variants that finished are kept in the results file")
        return EXIT_INTERRUPTED


def planning_inputs(path: str, domain: str, add: int):
    """Scenario baseline, its ``domain`` config and city for a planning command; ScenarioError if unusable."""
    from twin.run import BASELINE, load_variants, variant_city
    from twin.scenario import ScenarioError

    base = load_variants(path, variants=[])[BASELINE]
    cfg = base.domain_configs.get(domain)
    if cfg is None:
        raise ScenarioError(path, [f"{domain}: missing or disabled — add a {domain}: section to the scenario"])
    if add < 1:
        raise ScenarioError(path, [f"--add {add} — ask for at least 1 site"])
    return base, cfg, variant_city(base, Path(path).parent)


def run_with_variant(path: str, name: str, override: dict, city=None, quiet: bool = False) -> int:
    """Run a scenario's baseline and one extra variant ``name`` built from ``override`` (through the run
    service, each on its own city; nothing written); print KPI deltas. Used by suggest-chargers/-stations."""
    from twin.run import run_variants
    from twin.scenario import ScenarioError

    del city  # the run service builds each variant's own city
    try:
        outcome = run_variants(path, variants=[], extra_variants={name: override}, write=False,
                               progress=lambda label, sc: Progress(label, sc.time.duration_s, quiet),
                               log=lambda m: _err(m) if m.startswith("run ") else None)
    except ScenarioError as exc:
        print(str(exc), file=sys.stderr)
        return EXIT_BAD_INPUT
    if outcome.dataset is None or outcome.failed:
        return EXIT_FAIL
    print_kpis(outcome.dataset)
    return EXIT_OK
