"""Batches: parameter sweeps and replications with confidence intervals, locally or on a Dask cluster.

``sweep(scenario, params={"demand.scale": [0.8, 1.0, 1.2]}, seeds=10)`` runs every (parameter set, seed)
pair once and returns one ``xarray.Dataset`` with ``variant`` and ``seed`` dimensions, the parameters as
coordinates along ``variant``, every KPI per run, and per variant its mean, standard deviation and 95%
confidence half-width across seeds (Student t). See docs/batch.md.

How a batch is kept safe and repeatable:

* **Validated first.** Every parameter set is merged onto the scenario and validated with the scenario
  schema (and the domains' city checks) before anything runs; a bad key path or value is a
  :class:`~twin.scenario.ScenarioError` naming the key.
* **One file per run**, written atomically as the run finishes, named by a content key (the resolved
  scenario's hash, the parameters, the seed and what is kept). A failed run leaves a small JSON with its
  error instead. Running the same batch again skips runs whose file exists (an interrupted batch resumes;
  failed runs are retried).
* **Seeds from one batch seed** (``numpy.random.SeedSequence(batch_seed).spawn(seeds)``); replication ``r``
  uses the same seed in every parameter set (common random numbers), so results do not depend on the
  executor or the number of workers.
"""
from __future__ import annotations

import hashlib
import itertools
import json
import math
import os
import re
import zlib
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np
from pydantic import ValidationError

from twin.batch_config import BatchConfig, ExecutorConfig, Range
from twin.batch_exec import RUN_FORMAT, RunTask, Tracker, run_dask, run_local, run_serial
from twin.results import NETCDF_LOCK, t_ci95
from twin.scenario import PROJECT_ROOT, Scenario, ScenarioError, deep_merge, load_document, resolve_variants

__all__ = ["BatchConfig", "ExecutorConfig", "Range", "Plan", "plan_batch", "sweep", "run_plan", "combine",
           "summary_table", "format_summary", "parse_param", "set_path", "t_ci95", "derive_seeds"]

def _batch_errors(err: ValidationError, prefix: str = "batch") -> list[str]:
    try:
        from twin.scenario import pydantic_messages

        return pydantic_messages(err, BatchConfig, prefix)
    except ImportError:  # pragma: no cover
        return [f"{prefix}.{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in err.errors()]


# ------------------------------------------------------------------------------------------- params
def parse_param(spec: str) -> tuple[str, list[Any] | Range]:
    """Parse a CLI parameter: ``key.path=v1,v2,...`` (YAML scalars), ``key=lo..hi`` or ``key=lo..hi:num``."""
    import yaml

    if "=" not in spec:
        raise ValueError(f"--param {spec!r}: write key.path=v1,v2,... or key.path=min..max[:num]")
    key, _, rhs = spec.partition("=")
    key, rhs = key.strip(), rhs.strip()
    m = re.fullmatch(r"([-+0-9.eE]+)\.\.([-+0-9.eE]+)(?::(\d+))?", rhs)
    if m:
        lo, hi = (yaml.safe_load(x) for x in m.group(1, 2))
        d = {"min": lo, "max": hi}
        if m.group(3):
            d["num"] = int(m.group(3))
        try:
            return key, Range.model_validate(d)
        except ValidationError as err:
            why = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'range'}: {e['msg'].removeprefix('Value error, ')}"
                            for e in err.errors())
            raise ValueError(f"--param {key}={rhs[:60]}: {why} — write min..max[:num] with finite min <= max "
                             "and num from 1 to 10,000") from None
    try:
        vals = [yaml.safe_load(x.strip()) if x.strip() else "" for x in rhs.split(",")]
    except yaml.YAMLError as exc:  # e.g. a '!!python/...' tag or a broken flow list: refused, never built
        why = " ".join(str(getattr(exc, "problem", None) or exc).split())[:100]
        raise ValueError(f"--param {key}={rhs[:60]}: not plain YAML values ({why}) — write key.path=v1,v2,... "
                         "with numbers, strings, true/false or null") from None
    bad = [v for v in vals if (isinstance(v, float) and not math.isfinite(v))
           or (isinstance(v, str) and v.strip().lower().lstrip("+-") in ("nan", "inf", "infinity"))]
    if bad:  # pydantic would read 'nan' as a float and report it as "less than or equal to ..."
        raise ValueError(f"--param {key}={rhs[:60]}: {bad[0]!r} — values must be finite numbers")
    return key, vals


def set_path(doc: dict, path: str, value: Any, prefix: str = "") -> dict:
    """A copy of ``doc`` with ``value`` at the dotted ``path`` (sections are created as needed; integer
    parts index lists). Raises ``ValueError`` naming the path when it runs through a non-section."""
    parts = path.split(".")
    over: Any = value
    # build the override from the innermost key out, indexing existing lists where a part is an integer
    def walk(node: Any, i: int) -> Any:
        if i == len(parts):
            return value
        p = parts[i]
        where = ".".join(parts[:i]) or "(top level)"
        if isinstance(node, list):
            if not p.isdigit() or int(p) >= len(node):
                raise ValueError(f"{prefix}{path}: {where} is a list of {len(node)}; use an index 0..{len(node) - 1}")
            out = list(node)
            out[int(p)] = walk(node[int(p)], i + 1)
            return out
        if node is None:
            node = {}
        if not isinstance(node, dict):
            raise ValueError(f"{prefix}{path}: {where} is {node!r}, not a section with keys")
        sec = dict(node)
        sec[p] = walk(node.get(p), i + 1)
        return sec

    del over
    return walk(doc, 0)


MAX_PARAM_SETS = 10_000   # each set is validated (~3 ms) and kept in memory before anything runs
MAX_RUNS = 100_000        # parameter sets x seeds


def design_size(cfg: BatchConfig) -> int:
    """How many parameter sets ``cfg`` makes, computed without making them (a grid's product can be huge)."""
    if not cfg.params:
        return 1
    if cfg.design == "grid":
        return math.prod(len(v.grid()) if isinstance(v, Range) else len(v) for v in cfg.params.values())
    return int(cfg.samples or 1)


def _design_sets(cfg: BatchConfig, batch_seed: int) -> list[dict]:
    names = list(cfg.params)
    if not names:
        return [{}]
    if cfg.design == "grid":
        axes = [v.grid() if isinstance(v, Range) else list(v) for v in cfg.params.values()]
        return [dict(zip(names, combo)) for combo in itertools.product(*axes)]
    n = int(cfg.samples or 1)
    rng = np.random.default_rng(np.random.SeedSequence([batch_seed, zlib.crc32(b"design")]))
    cols = []
    for v in cfg.params.values():
        if cfg.design == "latin":  # one sample in each of n equal strata, strata shuffled per parameter
            u = (rng.permutation(n) + rng.random(n)) / n
        else:
            u = rng.random(n)
        if isinstance(v, Range):
            cols.append(v.at(u))
        else:
            vals = list(v)
            cols.append([vals[min(int(x * len(vals)), len(vals) - 1)] for x in u])
    return [dict(zip(names, row)) for row in zip(*cols)]


def derive_seeds(batch_seed: int, n: int) -> list[int]:
    """Replication seeds: ``SeedSequence(batch_seed).spawn(n)``, each as a 63-bit integer."""
    kids = np.random.SeedSequence(int(batch_seed)).spawn(int(n))
    return [int(k.generate_state(1, np.uint64)[0] >> np.uint64(1)) for k in kids]


# ------------------------------------------------------------------------------------------- plan
@dataclass
class Plan:
    """A validated batch: the parameter sets, the seeds and one :class:`RunTask` per (set, seed)."""

    name: str
    scenario_path: Path
    config: BatchConfig
    batch_seed: int
    param_names: list[str]
    param_sets: list[dict]
    seeds: list[int]
    out_dir: Path
    tasks: list[RunTask] = field(default_factory=list)

    @property
    def runs_dir(self) -> Path:
        return self.out_dir / "runs"

    def task(self, variant: int, seed_index: int) -> RunTask:
        return self.tasks[variant * len(self.seeds) + seed_index]


def _run_key(sc: Scenario, scenario_dir: Path, seed: int, keep: str) -> str:
    """Cache key of one run: what ran (resolved configuration, code version, data digests: the run's
    ``scenario_hash``), the seed, what is kept and the run-file format. Equal inputs share one run however the
    batch names its parameters; a change of code, data or any setting (defaults included) gives a new key."""
    from twin.provenance import run_fingerprint

    blob = json.dumps({"scenario": run_fingerprint(sc, scenario_dir)[0], "seed": seed, "keep": keep,
                       "format": RUN_FORMAT}, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:24]


def _load(scenario, scenario_dir) -> tuple[dict, Path]:
    if isinstance(scenario, (str, Path)):
        return load_document(scenario), Path(scenario).resolve()
    base_dir = Path(scenario_dir) if scenario_dir else PROJECT_ROOT / "scenarios"
    if isinstance(scenario, Scenario):
        doc = scenario.model_dump(mode="json", exclude_none=True)
        for k in ("variant", "variant_description"):
            doc.pop(k, None)
        return doc, (base_dir / f"{scenario.name}.yaml").resolve()
    if isinstance(scenario, dict):
        return dict(scenario), (base_dir / f"{scenario.get('name', 'scenario')}.yaml").resolve()
    raise TypeError(f"scenario: a file path, a scenario dict or a Scenario, not {type(scenario).__name__}")


def _city_messages(scenarios: list[tuple[str, Scenario]], scenario_path: Path) -> list[str]:
    """The run service's checks (domain dependencies, demand files, domain sections against each city)."""
    from twin.run import scenario_errors

    msgs: list[str] = []
    for label, sc in scenarios:
        msgs += [f"{label}{m}" for m in scenario_errors({"baseline": sc}, scenario_path.parent)]
    return msgs


def plan_batch(scenario, params: dict | None = None, seeds: int | None = None, design: str | None = None,
               samples: int | None = None, *, batch_seed: int | None = None, keep: str | None = None,
               out: str | Path | None = None, scenario_dir: str | Path | None = None,
               check_city: bool = True, executor: dict | None = None) -> Plan:
    """Resolve and validate every run of a batch (nothing runs, nothing is written).

    ``scenario`` is a YAML path, a scenario dict or a resolved ``Scenario``; its ``batch:`` section gives
    defaults that the arguments override. Raises :class:`ScenarioError` listing every problem.
    """
    doc, spath = _load(scenario, scenario_dir)
    section = doc.pop("batch", None) or {}
    variants = doc.pop("variants", None) or {}
    if not isinstance(section, dict):
        raise ScenarioError(spath, [f"batch: {type(section).__name__} — a mapping (params, seeds, design, ...)"])
    if section.get("out") is not None and out is None:  # a file may not choose where on the machine it writes
        from twin.scenario import relative_folder

        try:
            relative_folder(str(section["out"]), "run_scenario.py sweep --out")
        except ValueError as exc:
            raise ScenarioError(spath, [f"batch.out: {str(section['out'])[:80]!r} — {exc}"]) from None
    merged = dict(section)
    for k, v in (("params", params), ("seeds", seeds), ("design", design), ("samples", samples),
                 ("seed", batch_seed), ("keep", keep), ("out", None if out is None else str(out))):
        if v is not None:
            merged[k] = v
    if executor:
        merged["executor"] = {**(merged.get("executor") or {}), **executor} \
            if isinstance(merged.get("executor"), dict) else executor
    if params is not None:
        merged["params"] = {k: (v.model_dump() if isinstance(v, Range) else
                                list(v) if isinstance(v, (list, tuple, np.ndarray)) else
                                v if isinstance(v, dict) else [v]) for k, v in params.items()}
    try:
        cfg = BatchConfig.model_validate(merged)
    except ValidationError as err:
        raise ScenarioError(spath, _batch_errors(err)) from None

    base_seed = int(doc.get("seed", 0) or 0)
    bseed = int(cfg.seed if cfg.seed is not None else base_seed)
    n_sets = design_size(cfg)
    if n_sets > MAX_PARAM_SETS or n_sets * cfg.seeds > MAX_RUNS:
        raise ScenarioError(spath, [f"batch: {n_sets:,} parameter sets x {cfg.seeds:,} seeds = {n_sets * cfg.seeds:,} "
                                    f"runs — at most {MAX_PARAM_SETS:,} parameter sets and {MAX_RUNS:,} runs per "
                                    "batch (fewer values, samples or seeds; split the study into batches)"])
    sets = _design_sets(cfg, bseed)
    run_seeds = derive_seeds(bseed, cfg.seeds)

    msgs: list[str] = []
    resolved: list[Scenario | None] = []
    for i, ps in enumerate(sets):
        label = ", ".join(f"{k}={v!r}" for k, v in ps.items()) or "(no parameters)"
        d = dict(doc)
        vname = ps.get("variant")
        if vname is not None and vname != "baseline":
            if not isinstance(variants, dict) or vname not in variants:
                have = ", ".join(["baseline", *(variants or {})])
                msgs.append(f"batch.params.variant: {vname!r} — not a variant of this scenario; choose from {have}")
                resolved.append(None)
                continue
            over = dict(variants[vname] or {})
            desc = over.pop("description", "")
            d = deep_merge(d, over)
            d["variant"], d["variant_description"] = str(vname), str(desc)
        try:
            for k, v in ps.items():
                if k != "variant":
                    d = set_path(d, k, v, prefix="batch.params.")
        except ValueError as exc:
            msgs.append(str(exc))
            resolved.append(None)
            continue
        try:
            sc = resolve_variants(d, spath)["baseline"]
        except ScenarioError as exc:
            msgs += [f"{m}  (parameter set {i}: {label})" for m in exc.messages]
            resolved.append(None)
            continue
        resolved.append(sc)
    if msgs:
        # the same bad key usually fails in every set: report each problem once
        seen, uniq = set(), []
        for m in msgs:
            core = m.split("  (parameter set")[0]
            if core not in seen:
                seen.add(core)
                uniq.append(m)
        raise ScenarioError(spath, uniq)
    ok_scenarios = [sc for sc in resolved if sc is not None]  # every set resolved (else we raised above)
    if check_city:
        distinct: dict[str, tuple[str, Scenario]] = {}
        for i, sc in enumerate(ok_scenarios):
            key = json.dumps({k: sc.model_dump(mode="json").get(k) for k in ("city", "demand", *sc.domain_configs)},
                             sort_keys=True, default=str)
            distinct.setdefault(key, (f"(parameter set {i}) ", sc))
        cm = _city_messages(list(distinct.values()), spath)
        if cm:
            raise ScenarioError(spath, sorted(set(cm), key=cm.index))

    name = str(doc.get("name", "scenario"))
    if cfg.out:
        out_dir = Path(cfg.out)
        if not out_dir.is_absolute():
            out_dir = (Path.cwd() if out is not None else spath.parent) / out_dir
    else:
        odir = Path((doc.get("outputs") or {}).get("dir", "results"))
        out_dir = (odir if odir.is_absolute() else PROJECT_ROOT / odir) / name / "batch"
    plan = Plan(name=name, scenario_path=spath, config=cfg, batch_seed=bseed, param_names=list(cfg.params),
                param_sets=sets, seeds=run_seeds, out_dir=out_dir)
    runs = plan.runs_dir
    for i, (ps, sc) in enumerate(zip(sets, ok_scenarios)):
        base = sc.model_dump(mode="json")
        for r, s in enumerate(run_seeds):
            rdoc = {**base, "seed": s}
            rdoc.pop("batch", None)
            rsc = sc.model_copy(update={"seed": s})
            key = _run_key(rsc, spath.parent, s, cfg.keep)
            plan.tasks.append(RunTask(key=key, doc=rdoc, scenario_path=str(spath),
                                      out_path=str(runs / f"run_{key}.nc"),
                                      error_path=str(runs / f"run_{key}.error.json"),
                                      keep=cfg.keep, variant=i, seed_index=r, seed=s,
                                      params={k: _plain(v) for k, v in ps.items()}))
    return plan


def _plain(v: Any) -> Any:
    if isinstance(v, np.generic):
        return v.item()
    return v


# ------------------------------------------------------------------------------------------- running
def run_plan(plan: Plan, workers: int | None = None, dask: str | None = None, *, progress: bool | Callable = False,
             context: str | None = None, dask_workers: int | None = None) -> dict:
    """Execute the runs of ``plan`` that have no results file yet; return counts and per-run statuses.

    ``workers``: local processes (0 = this process; default: the plan's executor, else the cores).
    ``dask``: a scheduler address, or ``"local"`` for a LocalCluster (overrides ``workers``).
    ``progress``: True for a tqdm bar (stderr), or a callable receiving count snapshots.
    """
    ex = plan.config.executor
    dask = dask if dask is not None else ex.dask
    workers = workers if workers is not None else ex.workers
    context = context or ex.context
    plan.runs_dir.mkdir(parents=True, exist_ok=True)
    from twin.atomic import remove_stale_temps

    remove_stale_temps(plan.runs_dir)  # temp files of runs killed mid-write (kill -9, power cut)
    remove_stale_temps(plan.out_dir)
    todo, seen, skipped = [], set(), 0
    for t in plan.tasks:
        if t.key in seen:
            continue
        seen.add(t.key)
        if os.path.exists(t.out_path) or (not plan.config.retry_failed and os.path.exists(t.error_path)):
            skipped += 1
        else:
            todo.append(t)
    tracker = Tracker(len(seen), skipped, bar=progress is True,
                      callback=progress if callable(progress) else None)
    if workers is None:
        workers = os.cpu_count() or 1
    workers = max(0, min(int(workers), len(todo))) if todo else 0
    statuses: list[dict] = []
    it: Iterator[dict]
    try:
        if not todo:
            it = iter(())
        elif dask:
            it = run_dask(todo, dask, dask_workers or ex.dask_workers, tracker)
        elif workers == 0:
            it = run_serial(todo, tracker)
        else:
            it = run_local(todo, workers, context, tracker)
        for st in it:
            statuses.append(st)
            tracker.finished(st)
    finally:
        tracker.close()
    snap = tracker.snapshot()
    snap["statuses"] = statuses
    return snap


def sweep(scenario, params: dict | None = None, seeds: int | None = None, design: str | None = None,
          samples: int | None = None, *, batch_seed: int | None = None, keep: str | None = None,
          workers: int | None = None, dask: str | None = None, out: str | Path | None = None,
          scenario_dir: str | Path | None = None, progress: bool | Callable = False,
          check_city: bool = True, write: bool = True) -> Any:
    """Run a parameter sweep with replications; return the batch Dataset (see :func:`combine`).

    Example: ``sweep("scenarios/bad_hersfeld.yaml", {"demand.scale": [0.8, 1.2]}, seeds=5, workers=2)``.
    Runs already on disk (same scenario, parameters, seed and ``keep``) are not run again. The combined
    Dataset is also written to ``<out>/batch.nc`` unless ``write=False``.
    """
    plan = plan_batch(scenario, params, seeds, design, samples, batch_seed=batch_seed, keep=keep, out=out,
                      scenario_dir=scenario_dir, check_city=check_city)
    info = run_plan(plan, workers, dask, progress=progress)
    ds = combine(plan)
    ds.attrs["batch_skipped"] = info["skipped"]
    ds.attrs["batch_ran"] = info["done"] + info["failed"]
    if write:
        from twin.results import write_atomic

        write_atomic(ds.load() if plan.config.keep != "kpis" else ds, plan.out_dir / "batch.nc")
    return ds


# ------------------------------------------------------------------------------------------- combining
def combine(plan: Plan):
    """The batch Dataset from the run files on disk (failed or missing runs are NaN, ``status`` says why).

    Dims ``variant`` (parameter sets) and ``seed`` (replications). Coordinates: one per parameter (along
    ``variant``), ``seed_value`` (the derived seed), ``run_key``/``run_file``/``status`` (variant, seed).
    Variables: each ``kpi_*`` (variant, seed) with ``<kpi>_mean``, ``<kpi>_std``, ``<kpi>_ci95`` (half-width
    of the 95% Student-t interval of the mean) along ``variant``; ``n_ok`` per variant; ``run_wall_time``;
    with ``keep: series/all`` the time series (variant, seed, time), opened lazily (dask).
    """
    import xarray as xr

    V, S = len(plan.param_sets), len(plan.seeds)
    status = np.full((V, S), "missing", dtype=object)
    files = np.full((V, S), "", dtype=object)
    keys = np.full((V, S), "", dtype=object)
    errors = np.full((V, S), "", dtype=object)
    wall = np.full((V, S), np.nan)
    kpis: dict[str, np.ndarray] = {}
    kattrs: dict[str, dict] = {}
    series_files: dict[tuple[int, int], str] = {}
    for t in plan.tasks:
        v, s = t.variant, t.seed_index
        keys[v, s] = t.key
        if os.path.exists(t.out_path):
            with NETCDF_LOCK, xr.open_dataset(t.out_path, engine="netcdf4") as ds:
                for vname, da in ds.data_vars.items():
                    name = str(vname)
                    if da.ndim == 0 and name.startswith("kpi_"):
                        if name not in kpis:
                            kpis[name] = np.full((V, S), np.nan)
                            kattrs[name] = dict(da.attrs)
                        kpis[name][v, s] = float(da.values)
                wall[v, s] = float(ds.attrs.get("wall_time_s", np.nan))
                has_series = any(da.dims == ("time",) for da in ds.data_vars.values())
            status[v, s], files[v, s] = "ok", os.path.relpath(t.out_path, plan.out_dir)
            if has_series and plan.config.keep != "kpis":
                series_files[(v, s)] = t.out_path
        elif os.path.exists(t.error_path):
            status[v, s] = "failed"
            try:
                errors[v, s] = json.loads(Path(t.error_path).read_text()).get("error", "")[:500]
            except (OSError, ValueError):
                errors[v, s] = "(unreadable error file)"
    coords: dict[str, Any] = {"variant": np.arange(V), "seed": np.arange(S),
                              "seed_value": ("seed", np.array(plan.seeds, dtype=np.int64))}
    for p in plan.param_names:
        vals = [ps.get(p) for ps in plan.param_sets]
        arr = np.array(vals)
        if arr.dtype == object or arr.dtype.kind in "US":
            arr = np.array([str(x) for x in vals], dtype=object)
        coords[p] = ("variant", arr)
    coords["run_key"] = (("variant", "seed"), keys.astype(str))
    data: dict[str, Any] = {
        "status": (("variant", "seed"), status.astype(str), {"long_name": "run status (ok, failed, missing)"}),
        "run_file": (("variant", "seed"), files.astype(str), {"long_name": "results file of the run, relative to the batch folder"}),
        "run_error": (("variant", "seed"), errors.astype(str), {"long_name": "error of a failed run"}),
        "run_wall_time": (("variant", "seed"), wall, {"units": "s", "long_name": "wall time of the run"}),
    }
    ok = status == "ok"
    data["n_ok"] = (("variant",), ok.sum(axis=1).astype(np.int64), {"units": "1", "long_name": "completed seeds"})
    for name, arr in kpis.items():
        a = kattrs[name]
        mean, std, half, _ = t_ci95(arr, axis=1)
        data[name] = (("variant", "seed"), arr, a)
        base = a.get("long_name", name)
        data[f"{name}_mean"] = (("variant",), mean, {**a, "long_name": f"{base} (mean over seeds)"})
        data[f"{name}_std"] = (("variant",), std, {**a, "long_name": f"{base} (std over seeds)", "better": "none"})
        data[f"{name}_ci95"] = (("variant",), half, {**a, "long_name": f"{base} (95% CI half-width, Student t)",
                                                    "better": "none"})
    ds = xr.Dataset(data, coords=coords)
    if series_files:
        ds = ds.merge(_combine_series(series_files, V, S), join="outer")
    cfg = plan.config
    ds.attrs.update({
        "title": f"CityTwin batch: {plan.name}", "scenario_name": plan.name,
        "scenario_path": str(plan.scenario_path), "batch_seed": str(plan.batch_seed),
        "design": cfg.design, "n_variants": V, "n_seeds": S, "keep": cfg.keep,
        "params": json.dumps({k: (v.model_dump() if isinstance(v, Range) else v) for k, v in cfg.params.items()},
                             default=str),
        "param_names": json.dumps(plan.param_names), "batch_dir": str(plan.out_dir),
        "n_ok": int(ok.sum()), "n_failed": int((status == "failed").sum()), "n_missing": int((status == "missing").sum()),
        "confidence": "95% Student t interval of the mean over seeds (<kpi>_mean +/- <kpi>_ci95)",
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    })
    return ds


def _combine_series(files: dict[tuple[int, int], str], V: int, S: int):
    """Time-only variables of the run files, stacked lazily (dask) along (variant, seed)."""
    import xarray as xr

    opened = {}
    for vs, f in files.items():
        with NETCDF_LOCK:
            ds = xr.open_dataset(f, engine="netcdf4", chunks={})
        opened[vs] = ds[[n for n, da in ds.data_vars.items() if da.dims == ("time",)]]
    template = next(iter(opened.values()))
    empty = xr.full_like(template, np.nan, dtype=float)
    rows = []
    for v in range(V):
        cols = [opened.get((v, s), empty) for s in range(S)]
        rows.append(xr.concat(cols, dim="seed", join="outer"))
    out = xr.concat(rows, dim="variant", join="outer")
    return out.assign_coords(variant=np.arange(V), seed=np.arange(S))


# ------------------------------------------------------------------------------------------- tables
def summary_table(ds, kpis: list[str] | None = None):
    """One row per variant: the parameters, completed seeds, and ``mean ± ci95`` of each KPI (a DataFrame)."""
    import pandas as pd

    params = json.loads(ds.attrs.get("param_names", "[]"))
    names = kpis or [n for n in ds.data_vars if str(n).startswith("kpi_") and not str(n).endswith(("_mean", "_std", "_ci95"))]
    rows = []
    for v in range(ds.sizes["variant"]):
        row: dict[str, Any] = {p: ds[p].values[v] for p in params}
        row["seeds ok"] = f"{int(ds['n_ok'].values[v])}/{ds.sizes['seed']}"
        for n in names:
            m, h = float(ds[f"{n}_mean"].values[v]), float(ds[f"{n}_ci95"].values[v])
            label = f"{ds[n].attrs.get('long_name', n)} [{ds[n].attrs.get('units', '')}]"
            row[label] = _pm(m, h)
        rows.append(row)
    return pd.DataFrame(rows)


def _num(x: float) -> str:
    if not np.isfinite(x):
        return "—"
    ax = abs(x)
    if ax < 1e-9:
        return "0"
    return f"{x:,.0f}" if ax >= 1000 else f"{x:.1f}" if ax >= 10 else f"{x:.2f}" if ax >= 0.1 else f"{x:.3g}"


def _pm(m: float, h: float) -> str:
    if not np.isfinite(m):
        return "—"
    return _num(m) if not np.isfinite(h) else f"{_num(m)} ± {_num(h)}"


def format_summary(ds, kpis: list[str] | None = None, max_width: int = 160) -> str:
    """The summary table as aligned text (what the CLI prints)."""
    df = summary_table(ds, kpis)
    if df.empty:
        return "(no runs)"
    params = json.loads(ds.attrs.get("param_names", "[]"))
    fixed = [p for p in params if len(df) > 1 and df[p].nunique() == 1]  # overrides, not sweep axes
    df = df.drop(columns=fixed)
    cols = [str(c) for c in df.columns]
    cells = [cols] + [[str(x) for x in row] for row in df.itertuples(index=False)]
    widths = [max(len(r[i]) for r in cells) for i in range(len(cols))]
    lines = []
    for j, r in enumerate(cells):
        lines.append("  ".join(s.rjust(w) if j and i >= 1 else s.ljust(w) for i, (s, w) in enumerate(zip(r, widths))))
        if j == 0:
            lines.append("  ".join("-" * w for w in widths))
    if fixed:
        lines.append("fixed: " + ", ".join(f"{p}={ds[p].values[0]}" for p in fixed))
    return "\n".join(line[:max_width] if max_width else line for line in lines)
