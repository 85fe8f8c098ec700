"""The run service: the only code that validates a scenario against its cities and runs the engine.

The CLI (``run``, ``validate``), the planning commands (``suggest-*``), batches (``twin.batch_exec``) and the
dashboard's what-if all call it. What it guarantees:

* **Each variant runs on its own city** (a variant may change ``city:``); equal city sections share one
  build (``twin.city`` caches it).
* **The checks live here**: schema (``twin.scenario``), domain dependencies (EV and emergency need traffic),
  demand files and every domain's ``city_errors`` against the variant's own city. Bad input raises
  :class:`~twin.scenario.ScenarioError` naming file and key before anything runs.
* **Overrides are recorded**: ``--backend``/``--seed`` given on the command line go into the results
  (``overrides`` attr) and into the resolved configuration they change (``scenario_json``, ``scenario_hash``).
* **Replications** (``replications: N``): every variant runs N times; replication r of every variant uses the
  same seed (common random numbers). KPIs per replication, means and 95% intervals of each KPI and of each
  paired difference to the baseline are added (docs/results.md). With ``workers > 1`` the runs go to local
  processes through ``twin.batch_exec``.
"""
from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterable


if TYPE_CHECKING:  # xarray loads only when a run happens: a refused file exits at once (docs/security.md)
    import xarray as xr

from twin.scenario import BASELINE, PROJECT_ROOT, Scenario, ScenarioError, load_document, resolve_variants

__all__ = ["RunOverrides", "RunOutcome", "load_variants", "apply_overrides", "scenario_errors", "variant_city",
           "replication_seeds", "run_one", "run_variants", "run_single", "resolved_config", "results_dir"]


@dataclass(frozen=True)
class RunOverrides:
    """Command-line changes to every variant: traffic back-end, scenario seed."""

    backend: str | None = None
    seed: int | None = None

    def as_dict(self) -> dict[str, Any]:
        """The overrides actually given (recorded in the results' ``overrides`` attr)."""
        return {k: v for k, v in (("backend", self.backend), ("seed", self.seed)) if v is not None}


@dataclass
class RunOutcome:
    """What :func:`run_variants` did: the results file (None if nothing ran), the stacked Dataset, and
    the variants that failed (name -> error) or stopped early (partial results kept, ``complete`` = 0)."""

    path: Path | None
    dataset: xr.Dataset | None
    failed: dict[str, str] = field(default_factory=dict)
    partial: list[str] = field(default_factory=list)
    wall_time_s: dict[str, float] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.dataset is not None and not self.failed and not self.partial


# ------------------------------------------------------------------------------------------- validation
def apply_overrides(sc: Scenario, overrides: RunOverrides | None) -> Scenario:
    """A copy of ``sc`` with the overrides applied (the validated domain configs are carried over)."""
    if overrides is None or not overrides.as_dict():
        return sc
    upd = {"seed": overrides.seed} if overrides.seed is not None else {}
    out = sc.model_copy(update=upd)
    domains = dict(sc.domain_configs)
    if overrides.backend and "traffic" in domains:
        domains["traffic"] = domains["traffic"].model_copy(update={"backend": overrides.backend})
    out._domains = domains
    return out


def variant_city(sc: Scenario, scenario_dir: str | Path):
    """The city graph of one variant (built from its own ``city:`` section; equal sections share a build)."""
    from twin.city import build_city

    return build_city(sc.city, Path(scenario_dir), sc.name)


def scenario_errors(variants: dict[str, Scenario], scenario_dir: str | Path) -> list[str]:
    """Every problem of resolved variants that the schema cannot see: broken data files (``twin.data_checks``,
    read before anything is built), a domain without the domain it needs, demand files and domain sections
    that do not fit the variant's own city. One message per problem; a loader that still fails is reported
    as a message naming the variant's data files, never as a traceback."""
    from twin.data_checks import city_data_errors, scenario_data_errors
    from twin.demand import demand_errors
    from twin.engine import missing_domains
    from twin.scenario import resolve_data_path

    base_dir = Path(scenario_dir)

    def prefix(vname: str) -> str:
        return "" if vname == BASELINE else f"variants.{vname}."

    msgs = scenario_data_errors(variants, base_dir, prefix)
    if msgs:  # nothing is built from a broken file
        return msgs
    for vname, sc in variants.items():
        pre = prefix(vname)
        msgs += [f"{pre}{m}" for m in missing_domains(sc.domain_configs)]
        try:
            city = variant_city(sc, base_dir)
        except (ScenarioError, ValueError, KeyError, IndexError, TypeError, OSError, EOFError, MemoryError,
                RecursionError, ArithmeticError, AttributeError) as exc:
            msgs.append(f"{pre}city: {_city_files(sc)} — the city could not be built: {_short_exc(exc)}")
            continue
        try:
            msgs += [f"{pre}{m}" for m in demand_errors(sc.demand, city, lambda p: resolve_data_path(p, base_dir),
                                                              sc.time)]
        except ScenarioError as exc:
            msgs += [f"{pre}{m}" for m in exc.messages]
        except (ValueError, KeyError, IndexError, TypeError, OSError, EOFError, MemoryError, ArithmeticError) as exc:
            msgs.append(f"{pre}demand: {_demand_files(sc)} — could not be read: {_short_exc(exc)}")
        msgs += [f"{pre}{m}" for m in city_data_errors(sc, city, base_dir)]
        for dname, cfg in sc.domain_configs.items():
            check = getattr(cfg, "city_errors", None)
            if check is not None:
                try:
                    msgs += [f"{pre}{dname}.{m}" for m in check(city)]
                except (ValueError, KeyError, IndexError, TypeError, OSError, ArithmeticError) as exc:
                    msgs.append(f"{pre}{dname}: {_short_exc(exc)}")
    return list(dict.fromkeys(msgs))


def _short_exc(exc: BaseException) -> str:
    """``Type: message`` in one line of at most 200 characters."""
    text = " ".join(str(exc).split()) or type(exc).__name__
    return (text if len(text) <= 200 else text[:197] + "...") if isinstance(exc, ScenarioError) else \
        f"{type(exc).__name__}: {text[:180]}"


def _city_files(sc: Scenario) -> str:
    files = [Path(f).name for f in (sc.city.path, sc.city.pois, sc.city.buildings) if f]
    return ", ".join(files) or f"source {sc.city.source}"


def _demand_files(sc: Scenario) -> str:
    return ", ".join(Path(f).name for f in (sc.demand.od_file, sc.demand.trips_file) if f) or "generated trips"


def load_variants(scenario_path: str | Path, variants: Iterable[str] | None = None,
                  overrides: RunOverrides | None = None, extra_variants: dict[str, dict] | None = None,
                  check_city: bool = True, force: bool = False) -> dict[str, Scenario]:
    """Load and validate a scenario file; keep the baseline and the named ``variants`` (all when None);
    add ``extra_variants`` (name -> override mapping, e.g. a planner's suggestion); apply ``overrides``.
    Before any city is built, a variant whose memory estimate exceeds the free memory is refused
    (``twin.estimate``; ``force`` skips that). Raises :class:`ScenarioError` listing every problem (nothing has run)."""
    doc = load_document(scenario_path)
    if extra_variants:
        have: dict = doc["variants"] if isinstance(doc.get("variants"), dict) else {}
        doc["variants"] = {**have, **extra_variants}
    resolved = resolve_variants(doc, scenario_path)
    if variants is not None:
        wanted = list(variants) + list(extra_variants or {})
        unknown = [v for v in wanted if v not in resolved]
        if unknown:
            raise ScenarioError(scenario_path, [f"--variant {u!r} — not a variant of this scenario; choose from "
                                                f"{', '.join(resolved)}" for u in unknown])
        resolved = {k: v for k, v in resolved.items() if k == BASELINE or k in wanted}
    resolved = {k: apply_overrides(v, overrides) for k, v in resolved.items()}
    if check_city and not force:
        from twin.estimate import estimate_errors

        too_big, _ = estimate_errors(resolved, Path(scenario_path).parent, resolved[BASELINE].replications)
        if too_big:
            raise ScenarioError(scenario_path, too_big)
    if check_city:
        msgs = scenario_errors(resolved, Path(scenario_path).parent)
        if msgs:
            raise ScenarioError(scenario_path, msgs)
    return resolved


# ------------------------------------------------------------------------------------------- running
def replication_seeds(seed: int, n: int) -> list[int]:
    """Seeds of ``n`` replications: the scenario seed itself, then ``SeedSequence(seed).spawn(n - 1)``
    (so replication 0 is the run without replications, and every variant with this seed gets the same list)."""
    from twin.batch import derive_seeds

    return [int(seed)] + (derive_seeds(int(seed), n - 1) if n > 1 else [])


def run_one(sc: Scenario, scenario_dir: str | Path, overrides: RunOverrides | dict | None = None,
            progress: Callable[[float, float], None] | None = None, city=None) -> xr.Dataset:
    """Run one resolved variant on its own city; return its results Dataset (``DomainRunError`` carries the
    partial results when an external engine fails mid-run). ``city``: the variant's city when the caller has
    already built it (e.g. calibration, whose demand file lives in a temp folder); default: built here."""
    from twin.engine import CityTwin

    ov = overrides.as_dict() if isinstance(overrides, RunOverrides) else dict(overrides or {})
    city = city if city is not None else variant_city(sc, scenario_dir)
    twin = CityTwin(sc, Path(scenario_dir), city=city, overrides=ov)
    return twin.run(progress=progress)


def results_dir(base: Scenario, out: str | Path | None) -> Path:
    """``<out or outputs.dir>/<scenario name>``; a relative ``outputs.dir`` is taken from the project root,
    a relative ``out`` from the working directory."""
    d = Path(out) if out else Path(base.outputs.dir)
    if not d.is_absolute():
        d = (Path.cwd() if out else PROJECT_ROOT) / d
    return d / base.name


def _task_doc(sc: Scenario, seed: int) -> dict:
    from twin.provenance import resolved_config as _resolved

    doc = _resolved(sc)
    doc["seed"] = int(seed)
    doc.pop("batch", None)
    doc["replications"] = 1
    return doc


def _run_in_processes(jobs: list[tuple[str, int, Scenario, int]], scenario_path: Path, overrides: dict,
                      workers: int, tmp: Path, log: Callable[[str], None],
                      out: dict[tuple[str, int], Any] | None = None,
                      on_done: Callable[[str], None] | None = None) -> dict[tuple[str, int], Any]:
    """Run (variant, replication) jobs on local worker processes (twin.batch_exec); return datasets or errors
    (filled into ``out`` as they finish; ``on_done(variant)`` after each)."""
    from twin.batch_exec import RunTask, run_local
    from twin.results import read_netcdf

    tasks, by_key = [], {}
    for i, (vname, r, sc, seed) in enumerate(jobs):
        key = f"{i:05d}"
        tasks.append(RunTask(key=key, doc=_task_doc(sc, seed), scenario_path=str(scenario_path),
                             out_path=str(tmp / f"run_{key}.nc"), error_path=str(tmp / f"run_{key}.error.json"),
                             keep="all", variant=i, seed_index=r, seed=seed, overrides=overrides))
        by_key[key] = (vname, r)
    out = {} if out is None else out
    for st in run_local(tasks, workers):
        vname, r = by_key[st["key"]]
        if st["status"] == "ok":
            out[(vname, r)] = read_netcdf(tmp / f"run_{st['key']}.nc")
            log(f"{vname} replication {r}: done in {st.get('run_s', 0.0):.1f} s wall (pid {st.get('pid')})")
        else:
            out[(vname, r)] = RuntimeError(st.get("error", "failed"))
        if on_done is not None:
            on_done(vname)
    return out


def run_variants(scenario_path: str | Path, variants: Iterable[str] | None = None, out: str | Path | None = None,
                 overrides: RunOverrides | None = None, *, extra_variants: dict[str, dict] | None = None,
                 replications: int | None = None, workers: int | None = None, write: bool = True,
                 progress: Callable[[str, Scenario], Any] | None = None,
                 log: Callable[[str], None] | None = None, debug: bool = False, force: bool = False) -> RunOutcome:
    """Validate, run every variant (each on its own city, ``replications`` times), stack and write the results.

    ``progress(name, scenario)`` may return a callable ``(t_s, duration_s)`` (with an optional ``close()``)
    shown while that run goes; ``log`` receives one line per finished or failed run. Writes
    ``<out>/<name>/<name>.nc`` atomically unless ``write=False``. Raises :class:`ScenarioError` on bad input.
    """
    import xarray as xr

    from twin.domain import DomainRunError

    log = log or (lambda msg: None)
    scenario_path = Path(scenario_path)
    resolved = load_variants(scenario_path, variants, overrides, extra_variants, force=force)
    base = resolved[BASELINE]
    n_rep = int(replications if replications is not None else base.replications)
    if n_rep < 1:
        raise ScenarioError(scenario_path, [f"replications: {n_rep} — use 1 or more"])
    ov = overrides.as_dict() if overrides else {}
    jobs = [(v, r, sc, s) for v, sc in resolved.items() for r, s in enumerate(replication_seeds(sc.seed, n_rep))]
    results: dict[tuple[str, int], Any] = {}
    outcome = RunOutcome(path=None, dataset=None)
    target = results_dir(base, out) / f"{base.name}.nc"
    if write:
        check_writable(target, scenario_path)
    partial_run = variants is not None  # --variant: the file's other variants are kept

    def save(final: bool) -> Path | None:
        """Write what has finished so far (merged with the file's other variants); None if nothing has."""
        ds_now = _stack(resolved, results, n_rep)
        if ds_now is None:
            return None
        return write_results(ds_now, target, keep_others=partial_run or not final,
                             only=None if partial_run or not final else list(resolved), log=log)

    if workers is not None and workers > 1 and len(jobs) > 1:
        scratch = results_dir(base, out)
        made = not scratch.exists()
        scratch.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=".citytwin-runs-", dir=scratch))
        def variant_done(vname: str) -> None:  # all its replications in: safe on disk now
            if write and all((vname, r) in results for r in range(n_rep)) and len(results) < len(jobs):
                save(final=False)

        try:
            _run_in_processes(jobs, scenario_path, ov, min(workers, len(jobs)), tmp, log, results, variant_done)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
            if made:  # interrupted before any variant was written: leave no empty results folder behind
                with contextlib.suppress(OSError):
                    scratch.rmdir()  # only when empty
    else:
        for vname, r, sc, seed in jobs:
            sc_r = sc if seed == sc.seed else _with_seed(sc, seed)
            label = vname if n_rep == 1 else f"{vname} #{r}"
            bar = progress(label, sc_r) if progress else None
            try:
                results[(vname, r)] = run_one(sc_r, scenario_path.parent, ov, progress=bar)
            except DomainRunError as exc:  # e.g. SUMO crashed: keep the partial results, marked complete = 0
                results[(vname, r)] = exc
            except Exception as exc:  # a failed run is reported, the others are kept
                if debug:
                    raise
                results[(vname, r)] = exc
            finally:
                if bar is not None and hasattr(bar, "close"):
                    bar.close()
            res = results[(vname, r)]
            if isinstance(res, xr.Dataset):
                log(f"{label}: done in {float(res.attrs.get('wall_time_s', 0.0)):.1f} s wall")
            if write and r == n_rep - 1 and (vname, r) != (jobs[-1][0], jobs[-1][1]):
                save(final=False)  # this variant is safe on disk now: a later failure or Ctrl+C keeps it
    for (vname, r), res in sorted(results.items(), key=lambda kv: (list(resolved).index(kv[0][0]), kv[0][1])):
        if isinstance(res, DomainRunError):
            outcome.partial.append(vname if n_rep == 1 else f"{vname} #{r}")
            log(f"run {vname!r} (replication {r}) stopped early: {res}; partial results kept (complete=0)")
            res = res.dataset
        elif isinstance(res, BaseException):
            outcome.failed[vname if n_rep == 1 else f"{vname} #{r}"] = f"{type(res).__name__}: {res}"
            log(f"run {vname!r} (replication {r}) failed: {type(res).__name__}: {res}")
            continue
        if res is None:
            continue
        outcome.wall_time_s[vname] = outcome.wall_time_s.get(vname, 0.0) + float(res.attrs.get("wall_time_s", 0.0))
    outcome.dataset = _stack(resolved, results, n_rep)
    if outcome.dataset is None:
        return outcome
    if write:
        outcome.path = save(final=True)
    return outcome


def _stack(resolved: dict[str, Scenario], results: dict[tuple[str, int], Any], n_rep: int) -> xr.Dataset | None:
    """The results file's Dataset from the runs finished so far (failed runs left out; None if none)."""
    from twin.domain import DomainRunError
    from twin.results import add_replications, stack_variants

    runs: dict[str, Any] = {}
    kpis: dict[str, list[Any]] = {v: [None] * n_rep for v in resolved}
    for (vname, r), res in sorted(results.items(), key=lambda kv: (list(resolved).index(kv[0][0]), kv[0][1])):
        if isinstance(res, DomainRunError):
            res = res.dataset
        elif isinstance(res, BaseException) or res is None:
            continue
        kpis[vname][r] = res
        runs.setdefault(vname, res)  # the variant's full results: replication 0 (or the first that ran)
    if not runs:
        return None
    ds = stack_variants({v: runs[v] for v in resolved if v in runs})
    return add_replications(ds, {v: kpis[v] for v in resolved if v in runs},
                            {v: replication_seeds(sc.seed, n_rep) for v, sc in resolved.items() if v in runs})


def check_writable(target: Path, scenario_path: str | Path) -> None:
    """Refuse (ScenarioError, exit 2) a results folder that cannot be written, before anything runs: a file in
    the way, no write permission, or under 50 MB free."""
    d = target.parent
    probe = d
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    problem = None
    if not probe.is_dir():
        problem = f"{_shown_path(probe)} is a file, not a folder"
    elif not os.access(probe, os.W_OK | os.X_OK) or not _can_create_in(probe):
        problem = f"no permission to write in {_shown_path(probe)}"
    elif target.exists() and not os.access(target, os.W_OK) and not os.access(d, os.W_OK):
        problem = f"{target.name} exists and cannot be replaced"
    else:
        free = shutil.disk_usage(probe).free
        if free < 50e6:
            problem = f"only {free / 1e6:.0f} MB free on the disk of {_shown_path(probe)} (need 50 MB)"
    if problem:
        raise ScenarioError(scenario_path, [f"results folder {_shown_path(d)}: {problem} — choose another with "
                                            "--out (or outputs.dir)"])


def _can_create_in(folder: Path) -> bool:
    """Whether a file can really be created in ``folder``: ``os.access`` says yes to root on a read-only mount."""
    try:
        with tempfile.TemporaryFile(dir=folder):
            return True
    except OSError:
        return False


def _shown_path(p: Path) -> str:
    try:
        return str(p.relative_to(Path.cwd()))
    except ValueError:
        return str(p)


def write_results(ds: xr.Dataset, target: Path, keep_others: bool = True, only: list[str] | None = None,
                  log: Callable[[str], None] = lambda m: None) -> Path:
    """Write a stacked results Dataset to ``target`` atomically. With ``keep_others`` the variants of an
    existing file at ``target`` that ``ds`` does not hold are kept (merged after them) when the file comes from
    the same scenario (equal baseline ``scenario_hash`` and replications); ``only`` limits the kept ones to
    those names. A file from another scenario version is replaced; an unreadable one is left alone and the
    results go to ``<name>.<date>.nc`` beside it."""
    import time as _time

    from twin.results import read_netcdf, write_atomic

    if keep_others and target.exists():
        try:
            old = read_netcdf(target)
        except Exception as exc:  # noqa: BLE001 - any unreadable file: keep it, write beside it
            alt = target.with_name(f"{target.stem}.{_time.strftime('%Y%m%d-%H%M%S')}.nc")
            log(f"run note: {target.name} could not be read ({type(exc).__name__}); kept as it is, results "
                f"written to {alt.name}")
            return write_atomic(ds, alt)
        ds = _merge_results(ds, old, only)
    return write_atomic(ds, target)


def _merge_results(new: xr.Dataset, old: xr.Dataset, only: list[str] | None) -> xr.Dataset:
    """``new`` plus the variants of ``old`` that it lacks (same scenario only), in the old file's order."""
    import xarray as xr

    if "variant" not in old.dims or "run_scenario_hash" not in old:
        return new
    old_names = [str(v) for v in old["variant"].values]
    new_names = [str(v) for v in new["variant"].values]
    same = (old_names and old_names[0] == BASELINE and new_names[0] == BASELINE
            and str(old["run_scenario_hash"].values[0]) == str(new["run_scenario_hash"].values[0])
            and old.attrs.get("replications") == new.attrs.get("replications"))
    keep = [v for v in old_names if v not in new_names and (only is None or v in only)]
    if not same or not keep:
        return new
    import numpy as np

    new = new.assign_coords(variant=np.array(new_names, dtype=object))  # one dtype for both indexes
    old = old.assign_coords(variant=np.array(old_names, dtype=object))
    both = xr.concat([new, old.sel(variant=keep)], dim="variant", join="outer", data_vars="minimal",
                     coords="minimal", compat="override", combine_attrs="override")
    order = [v for v in old_names if v in new_names or v in keep] + [v for v in new_names if v not in old_names]
    both = both.sel(variant=order)
    runs = {**json.loads(old.attrs.get("runs", "{}")), **json.loads(new.attrs.get("runs", "{}"))}
    both.attrs = dict(new.attrs)
    both.attrs["variants"] = json.dumps(order)
    both.attrs["runs"] = json.dumps({v: runs[v] for v in order if v in runs}, default=str)
    both.attrs["complete"] = int(int(new.attrs.get("complete", 1)) and int(old.attrs.get("complete", 1)))
    return both


def _with_seed(sc: Scenario, seed: int) -> Scenario:
    out = sc.model_copy(update={"seed": int(seed)})
    out._domains = dict(sc.domain_configs)
    return out


def run_single(sc: Scenario, scenario_dir: str | Path, out_path: str | Path,
               progress: Callable[[float, float], None] | None = None, overrides: dict | None = None) -> Path:
    """Run one resolved variant (e.g. a dashboard what-if built from :func:`resolved_config`) on its own city
    and write it as a one-variant results file, atomically. Returns the path written."""
    from twin.results import stack_variants, write_atomic

    ds = run_one(sc, scenario_dir, overrides, progress=progress)
    return write_atomic(stack_variants({sc.variant: ds}), out_path)


def resolved_config(results_path: str | Path, variant: str = BASELINE) -> dict:
    """The resolved configuration a results file recorded for ``variant`` (every default in force, command-line
    overrides applied): a scenario document a what-if can deep-merge its changes onto and run again."""
    import xarray as xr

    from twin.results import NETCDF_LOCK

    with NETCDF_LOCK, xr.open_dataset(results_path, engine="netcdf4") as ds:
        raw = ""
        if "run_scenario_json" in ds and "variant" in ds["run_scenario_json"].dims:
            names = [str(v) for v in ds["variant"].values]
            if variant in names:
                raw = str(ds["run_scenario_json"].values[names.index(variant)])
        elif str(ds.attrs.get("variant", BASELINE)) == variant:
            raw = str(ds.attrs.get("scenario_json", ""))
    if not raw:
        raise KeyError(f"{results_path}: no recorded configuration for variant {variant!r}")
    return json.loads(raw)
