"""``run_scenario.py sweep FILE --param key=v1,v2 --seeds 10 --workers N``: a batch from the command line.

Also runnable on its own (``python -m twin.batch_cli FILE ...``) with the same options plus ``--keep``,
``--batch-seed``, ``--dask-workers`` and ``--no-retry``. The file's ``batch:`` section gives defaults; options
given here override it. Exit codes: 0 all runs done, 1 some failed, 2 bad input (nothing runs).
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

__all__ = ["cli_sweep", "build_parser", "main"]

EXIT_OK, EXIT_FAIL, EXIT_BAD_INPUT, EXIT_INTERRUPTED = 0, 1, 2, 130


def _opt(args, name, default=None):
    return getattr(args, name, default)


def cli_sweep(args) -> int:
    """Run the sweep described by parsed arguments (see :func:`build_parser`); print a summary table."""
    from twin.batch import format_summary, parse_param, plan_batch, run_plan, combine
    from twin.results import write_atomic
    from twin.scenario import ScenarioError, load_document

    quiet = bool(_opt(args, "quiet"))
    try:
        params = {}
        for spec in _opt(args, "param") or []:
            try:
                k, v = parse_param(spec)
            except ValueError as exc:
                raise ScenarioError(args.file, [str(exc).split("\n")[0]]) from None
            params[k] = v
        dask_arg = _opt(args, "dask")
        if dask_arg is not None:
            from twin.batch_config import DASK_ADDRESS

            if not DASK_ADDRESS.fullmatch(str(dask_arg)):
                raise ScenarioError(args.file, [f"--dask {str(dask_arg)[:60]!r} — a scheduler address "
                                                "scheme://host:port (tcp, tls, ws, wss, ucx; e.g. tcp://10.0.0.5:8786) "
                                                "or 'local'"])
        section = (load_document(args.file).get("batch") or {})
        section = section if isinstance(section, dict) else {}
        if params and isinstance(section.get("params"), dict):  # --param adds to (or replaces) the file's keys
            params = {**section["params"], **params}
        seeds, design = _opt(args, "seeds"), _opt(args, "design")
        # the core parser's defaults (seeds=1, design=grid) must not hide the file's batch section
        if seeds == 1 and "seeds" in section:
            seeds = None
        if design == "grid" and "design" in section:
            design = None
        executor = {}
        if _opt(args, "dask_workers"):
            executor["dask_workers"] = args.dask_workers
        plan = plan_batch(args.file, params or None, seeds, design, _opt(args, "samples"),
                          batch_seed=_opt(args, "batch_seed"), keep=_opt(args, "keep"), out=_opt(args, "out"),
                          executor=executor or None)
        if _opt(args, "no_retry"):
            plan.config.retry_failed = False
        from twin.run import check_writable

        check_writable(plan.out_dir / "batch.nc", args.file)  # a file in the way: exit 2 before anything runs
    except ScenarioError as exc:
        print(str(exc), file=sys.stderr)
        return EXIT_BAD_INPUT
    cfg = plan.config
    workers, dask = _opt(args, "workers"), _opt(args, "dask")
    nw = workers if workers is not None else cfg.executor.workers
    where = (f"dask {dask or cfg.executor.dask}" if (dask or cfg.executor.dask) else
             "this process" if nw == 0 else f"{nw or 'one per core:'} local worker process(es)")
    if not quiet:
        print(f"CityTwin sweep: {plan.name}: {len(plan.param_sets)} parameter set(s) x {len(plan.seeds)} seed(s) = "
              f"{len(plan.tasks)} runs ({cfg.design}), batch seed {plan.batch_seed}, keep {cfg.keep}, on {where}",
              file=sys.stderr)
        print(f"batch folder: {plan.out_dir}", file=sys.stderr)
    t0 = time.perf_counter()
    try:
        info = run_plan(plan, workers, dask, progress=not quiet)
    except KeyboardInterrupt:
        print("interrupted: finished runs are kept; run the same command again to resume", file=sys.stderr)
        return EXIT_INTERRUPTED
    except OSError as exc:  # e.g. a dask scheduler that cannot be reached
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_FAIL
    ds = combine(plan)
    path = write_atomic(ds.load(), plan.out_dir / "batch.nc")
    wall = time.perf_counter() - t0
    kpis = [k for k in ("kpi_traffic_mean_travel_time", "kpi_traffic_mean_delay", "kpi_traffic_trips_completed",
                        "kpi_ev_demand_met", "kpi_ev_wait_p90_s", "kpi_emergency_response_p90_s") if k in ds]
    print()
    print(format_summary(ds, kpis or None))
    print()
    print(f"{info['done']} run(s) done, {info['failed']} failed, {info['skipped']} skipped (already done) "
          f"in {wall:.1f} s; mean ± 95% CI over seeds (Student t)")
    print(f"results: {path}  (runs: {plan.runs_dir})")
    if info["failed"]:
        print(f"failed runs: see {plan.runs_dir}/run_*.error.json; run the same command again to retry them",
              file=sys.stderr)
    return EXIT_OK if not info["failed"] and ds.attrs["n_failed"] == 0 else EXIT_FAIL


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m twin.batch_cli", description="CityTwin parameter sweep / replications.")
    p.add_argument("file")
    p.add_argument("--param", action="append", default=[], help="key.path=v1,v2,... or key.path=min..max[:num] (repeatable)")
    p.add_argument("--seeds", type=int, default=None, help="replications per parameter set")
    p.add_argument("--workers", type=int, default=None, help="local worker processes (default: cores; 0: this process)")
    p.add_argument("--dask", default=None, help="dask.distributed scheduler address, or 'local' for a LocalCluster")
    p.add_argument("--dask-workers", type=int, default=None, help="workers of a LocalCluster")
    p.add_argument("--design", choices=["grid", "random", "latin"], default=None)
    p.add_argument("--samples", type=int, default=None, help="parameter sets for random/latin designs")
    p.add_argument("--batch-seed", type=int, default=None, help="seed the replication seeds derive from")
    p.add_argument("--keep", choices=["kpis", "series", "all"], default=None, help="what each run file keeps")
    p.add_argument("--no-retry", action="store_true", help="do not re-run runs that failed before")
    p.add_argument("--out", default=None, help="batch folder (default: <outputs.dir>/<name>/batch)")
    p.add_argument("--quiet", action="store_true")
    return p


def main(argv: list[str] | None = None) -> int:
    return cli_sweep(build_parser().parse_args(argv))


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    sys.exit(main())
