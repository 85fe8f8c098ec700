"""Executing a batch: the worker-side task (one run -> one results file) and the executors that schedule it.

A :class:`RunTask` is small, plain data (the resolved scenario document, paths, the seed): it pickles cheaply
to a local worker process or to a ``dask.distributed`` worker. :func:`execute_run` never raises for a failed
run: it writes the error next to where the results would have been and returns a status dict, so one bad run
never stops the others. Workers are reused for many runs, so imports, numba kernels (``cache=True`` on disk)
and the city graph (``twin.city.build_city`` caches per process) are paid once per worker, not per run.

Executors (all yield the same status dicts as runs finish): :func:`run_serial` (this process),
:func:`run_local` (``ProcessPoolExecutor`` with the ``spawn``/``forkserver`` context, never ``fork``: the
parent may hold numba/dask threads) and :func:`run_dask` (a scheduler address, or a ``LocalCluster``).
"""
from __future__ import annotations

import json
import os
import socket
import sys
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator

from twin.atomic import write_json_atomic

__all__ = ["RunTask", "execute_run", "select_keep", "run_serial", "run_local", "run_dask", "Tracker",
           "write_json_atomic", "RUN_FORMAT"]

RUN_FORMAT = 1  # bump when the per-run file layout changes: old files are then not reused


@dataclass(frozen=True)
class RunTask:
    """One (parameter set, seed) run of a batch; everything a worker needs, as plain data."""

    key: str                 # content key: scenario hash + parameters + seed + keep (names the files)
    doc: dict                # the resolved scenario document for this run (no variants, no batch section)
    scenario_path: str       # the scenario file: relative data paths and error messages refer to it
    out_path: str            # results file (netCDF), written atomically
    error_path: str          # JSON written instead when the run fails
    keep: str = "kpis"       # kpis | series | all
    variant: int = 0         # index of the parameter set
    seed_index: int = 0      # index of the replication
    seed: int = 0            # the derived scenario seed
    params: dict = field(default_factory=dict)
    threads: int | None = 1  # numba threads in a worker (None: leave as is; used for in-process runs)
    overrides: dict = field(default_factory=dict)  # command-line overrides already in ``doc`` (recorded)


def select_keep(ds, keep: str):
    """Reduce a run's Dataset to what the batch keeps: ``kpis`` (scalars), ``series`` (+ time-only
    variables), ``all`` (everything, trip tables included)."""
    if keep == "all":
        return ds
    names = []
    for n, v in ds.data_vars.items():
        if v.ndim == 0 or (keep == "series" and v.dims == ("time",)):
            names.append(n)
    out = ds[names]
    drop = [c for c in out.coords if c not in out.dims]
    return out.drop_vars(drop)


def _set_threads(n: int | None) -> None:
    """Pin this worker's numba threads to ``n`` (clamped to the pool numba started with)."""
    if n is None:
        return
    import numba

    n = max(1, min(int(n), int(getattr(numba.config, "NUMBA_NUM_THREADS"))))
    if numba.get_num_threads() != n:
        numba.set_num_threads(n)


def execute_run(task: RunTask) -> dict:
    """Run one task in this process; write its results (or its error) file; return a status dict.

    The dict holds ``key``, ``variant``, ``seed_index``, ``status`` (``ok``/``failed``), ``kpis`` (ok runs),
    ``error`` (failed runs), and timings: ``run_s`` (the engine's run), ``task_s`` (everything here),
    ``city_s`` (building the city, 0 when cached), ``write_s``; ``pid`` and ``host`` say where it ran.
    """
    t0 = time.perf_counter()
    info: dict[str, Any] = {"key": task.key, "variant": task.variant, "seed_index": task.seed_index,
                            "seed": task.seed, "params": task.params, "status": "failed",
                            "pid": os.getpid(), "host": socket.gethostname()}
    try:
        _set_threads(task.threads)
        from twin.results import write_atomic
        from twin.run import run_one, variant_city
        from twin.scenario import resolve_variants

        sc = resolve_variants(task.doc, task.scenario_path)["baseline"]
        base_dir = Path(task.scenario_path).parent
        tc = time.perf_counter()
        variant_city(sc, base_dir)  # cached per process: a worker builds each city once
        info["city_s"] = time.perf_counter() - tc
        tr = time.perf_counter()
        ds = run_one(sc, base_dir, task.overrides)
        info["run_s"] = time.perf_counter() - tr
        tw = time.perf_counter()
        ds = select_keep(ds, task.keep)
        ds.attrs.update({"batch_key": task.key, "batch_variant": task.variant,
                         "batch_seed_index": task.seed_index, "batch_params": json.dumps(task.params),
                         "batch_keep": task.keep, "batch_format": RUN_FORMAT})
        write_atomic(ds, task.out_path)
        if os.path.exists(task.error_path):
            os.unlink(task.error_path)
        info["write_s"] = time.perf_counter() - tw
        info["kpis"] = {str(k): float(v) for k, v in ds.data_vars.items() if str(k).startswith("kpi_")}
        info["status"] = "ok"
    except Exception as exc:  # recorded, never raised: the other runs go on
        info["error"] = f"{type(exc).__name__}: {exc}"
        info["traceback"] = traceback.format_exc()
        info["task_s"] = time.perf_counter() - t0
        try:
            write_json_atomic({**info, "scenario_path": task.scenario_path}, task.error_path)
        except OSError as wexc:  # pragma: no cover - disk full etc.: still report
            info["error"] += f" (and the error file could not be written: {wexc})"
        return info
    info["task_s"] = time.perf_counter() - t0
    return info


def failure(task: RunTask, exc: BaseException, where: str) -> dict:
    """Status dict (and error file) for a run whose worker failed (crashed, lost, cancelled)."""
    info = {"key": task.key, "variant": task.variant, "seed_index": task.seed_index, "seed": task.seed,
            "params": task.params, "status": "failed", "error": f"{where}: {type(exc).__name__}: {exc}",
            "traceback": "".join(traceback.format_exception(exc))}
    try:
        write_json_atomic({**info, "scenario_path": task.scenario_path}, task.error_path)
    except OSError:  # pragma: no cover
        pass
    return info


# ------------------------------------------------------------------------------------------- executors
def run_serial(tasks: Iterable[RunTask], tracker: "Tracker | None" = None) -> Iterator[dict]:
    """Run the tasks one after the other in this process."""
    for t in tasks:
        if tracker:
            tracker.set_running(1)
        yield execute_run(RunTask(**{**t.__dict__, "threads": None}))
    if tracker:
        tracker.set_running(0)


def _exit_with_parent(parent_pid: int) -> None:
    """End this worker when the sweep's parent dies (even by ``kill -9``): Linux ``PR_SET_PDEATHSIG`` sends
    SIGTERM at once; a watchdog thread polling the parent pid every second covers other systems (and the
    parent dying before the prctl call)."""
    import signal
    import threading

    if sys.platform.startswith("linux"):
        try:
            import ctypes

            ctypes.CDLL(None, use_errno=True).prctl(1, int(signal.SIGTERM), 0, 0, 0)  # PR_SET_PDEATHSIG = 1
        except (OSError, AttributeError):  # pragma: no cover
            pass

    def watch() -> None:
        while True:
            if os.getppid() != parent_pid:
                os._exit(1)
            time.sleep(1.0)

    if os.getppid() != parent_pid:
        os._exit(1)
    threading.Thread(target=watch, name="citytwin-parent-watchdog", daemon=True).start()


def _init_worker(path0: list[str], parent_pid: int | None = None) -> None:
    """Worker start: exit with the parent, one core per run (numba/BLAS threads 1), the parent's import path,
    warm imports."""
    if parent_pid is not None:
        _exit_with_parent(parent_pid)
    for var in ("NUMBA_NUM_THREADS", "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(var, "1")
    for p in reversed(path0):
        if p not in sys.path:
            sys.path.insert(0, p)
    import twin.engine  # noqa: F401  (numba kernels load from the on-disk cache once per worker)


def close_pool(pool: Any, grace_s: float = 10.0) -> None:
    """Shut a ``ProcessPoolExecutor`` down without ever hanging; kill workers still alive after ``grace_s``.

    ``shutdown(wait=True)`` waits for ever when a worker died (``kill -9``, out of memory) while it held the
    call queue's lock, which an idle worker holds while it waits for work: the other workers block on that lock
    and never read their stop signal (seen as a test hang). Normally every worker is idle here and exits at
    once; after an interrupt, runs still going in workers are stopped after ``grace_s`` seconds.
    """
    procs = list((getattr(pool, "_processes", None) or {}).values())  # before shutdown() forgets them
    pool.shutdown(wait=False, cancel_futures=True)
    deadline = time.monotonic() + grace_s
    for proc in procs:
        proc.join(max(0.0, deadline - time.monotonic()))
    for proc in procs:
        if proc.is_alive():
            proc.kill()
            proc.join(5.0)


def run_local(tasks: list[RunTask], workers: int, context: str = "spawn",
              tracker: "Tracker | None" = None) -> Iterator[dict]:
    """Run the tasks on ``workers`` local processes (``spawn``/``forkserver``), reusing each worker.

    At most ``2 * workers`` runs are queued at a time, so an interrupt loses little. If a worker dies
    (segfault, out of memory), the runs that were in flight are retried one at a time, each in a fresh worker,
    so only the run that kills its worker is recorded as failed; a fresh pool takes the rest. Workers exit
    when this process dies (:func:`_exit_with_parent`).
    """
    import multiprocessing as mp
    from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
    from concurrent.futures.process import BrokenProcessPool

    if context not in ("spawn", "forkserver"):
        raise ValueError(f"context {context!r}: use 'spawn' or 'forkserver' (fork is unsafe after numba/threads)")
    queue = list(tasks)[::-1]
    path0 = [p for p in sys.path if p]
    suspects: list[RunTask] = []  # in flight when a worker died: retried one at a time

    def pool_of(n: int):
        return ProcessPoolExecutor(max_workers=n, mp_context=mp.get_context(context),
                                   initializer=_init_worker, initargs=(path0, os.getpid()))

    while queue or suspects:
        while suspects:  # alone in its own worker: only the run that kills its worker fails
            t = suspects.pop()
            solo = pool_of(1)
            try:
                if tracker:
                    tracker.set_running(1)
                yield solo.submit(execute_run, t).result()
            except BrokenProcessPool as exc:
                yield failure(t, exc, "worker process died while running this run (retried alone)")
            except Exception as exc:  # pickling errors and the like
                yield failure(t, exc, "executor")
            finally:
                close_pool(solo)
        if not queue:
            break
        pool = pool_of(workers)
        inflight: dict = {}
        broken = False
        try:
            while queue or inflight:
                while queue and len(inflight) < 2 * workers and not broken:
                    t = queue.pop()
                    try:
                        inflight[pool.submit(execute_run, t)] = t
                    except BrokenProcessPool:
                        queue.append(t)
                        broken = True
                if tracker:
                    tracker.set_running(min(len(inflight), workers))
                if not inflight:
                    break
                done, _ = wait(list(inflight), return_when=FIRST_COMPLETED)
                for f in done:
                    t = inflight.pop(f)
                    try:
                        yield f.result()
                    except BrokenProcessPool:
                        broken = True
                        suspects.append(t)
                    except Exception as exc:  # pickling errors and the like
                        yield failure(t, exc, "executor")
        finally:
            close_pool(pool)


def run_dask(tasks: list[RunTask], address: str | None = None, workers: int | None = None,
             tracker: "Tracker | None" = None) -> Iterator[dict]:
    """Run the tasks on a ``dask.distributed`` cluster: ``address`` of its scheduler, or (None/"local") a
    ``LocalCluster`` of ``workers`` single-threaded processes started (and closed) here.

    Workers must be able to import ``twin`` (same environment as here). Start cluster workers with
    ``--nthreads 1`` so one run gets one core.
    """
    import uuid

    from distributed import Client, LocalCluster, as_completed

    cluster = None
    if address in (None, "", "local"):
        cluster = LocalCluster(n_workers=workers or os.cpu_count() or 1, threads_per_worker=1, processes=True,
                               host="127.0.0.1", dashboard_address=None)
        client = Client(cluster)
    else:
        client = Client(address)
    token = uuid.uuid4().hex[:8]
    try:
        client.run(_init_worker, [])
        slots = max(1, sum(client.nthreads().values()))
        futs = {}
        for t in tasks:
            futs[client.submit(execute_run, t, key=f"citytwin-run-{t.key}-{token}", pure=False, retries=0)] = t
        pending = len(futs)
        if tracker:
            tracker.set_running(min(pending, slots))
        for fut in as_completed(list(futs)):
            t = futs[fut]
            try:
                res = fut.result()
            except Exception as exc:  # worker lost, task erred outside execute_run
                res = failure(t, exc, "dask worker")
            fut.release()
            pending -= 1
            if tracker:
                tracker.set_running(min(pending, slots))
            yield res
    finally:
        client.close()
        if cluster is not None:
            cluster.close()


# ------------------------------------------------------------------------------------------- progress
class Tracker:
    """Counts of a batch's runs (done / running / failed / skipped) with an optional tqdm bar and callback."""

    def __init__(self, total: int, skipped: int = 0, bar: bool = False,
                 callback: Callable[[dict], None] | None = None, label: str = "runs") -> None:
        self.total, self.skipped, self.done, self.failed, self.running = total, skipped, 0, 0, 0
        self.t0 = time.perf_counter()
        self.callback = callback
        self.bar = None
        self.lines = bar and not sys.stderr.isatty()  # logs and CI: plain lines instead of a redrawn bar
        self._next_line = 0.0
        if bar and not self.lines:
            from tqdm import tqdm

            self.bar = tqdm(total=total, initial=skipped, desc=label, unit="run", file=sys.stderr,
                            dynamic_ncols=True, smoothing=0.1)
            self._post()

    def snapshot(self) -> dict:
        finished = self.done + self.failed
        el = time.perf_counter() - self.t0
        left = self.total - self.skipped - finished
        eta = el / finished * left if finished else None
        return {"total": self.total, "skipped": self.skipped, "done": self.done, "failed": self.failed,
                "running": self.running, "elapsed_s": el, "eta_s": eta}

    def _post(self, refresh: bool = True) -> None:
        if self.bar is not None:
            s = f"done={self.done + self.skipped} running={self.running} failed={self.failed}"
            if self.skipped:
                s += f" (skipped {self.skipped} already done)"
            self.bar.set_postfix_str(s, refresh=refresh)
        if self.callback:
            self.callback(self.snapshot())

    def set_running(self, n: int) -> None:
        if n != self.running:
            self.running = n
            self._post()

    def finished(self, status: dict) -> None:
        if status.get("status") == "ok":
            self.done += 1
        else:
            self.failed += 1
            if self.bar is not None:
                self.bar.write(f"run {status.get('variant')}/{status.get('seed_index')} failed: "
                               f"{str(status.get('error', ''))[:200]}")
        self._post(refresh=False)
        if self.bar is not None:
            self.bar.update(1)
        if self.lines:
            if status.get("status") != "ok":
                print(f"run {status.get('variant')}/{status.get('seed_index')} failed: "
                      f"{str(status.get('error', ''))[:200]}", file=sys.stderr, flush=True)
            s = self.snapshot()
            fin = self.done + self.failed + self.skipped
            if fin >= self._next_line or fin == self.total:
                eta = f", ETA {s['eta_s']:.0f} s" if s["eta_s"] is not None else ""
                print(f"runs {fin}/{self.total}: done={self.done + self.skipped} running={self.running} "
                      f"failed={self.failed}, {s['elapsed_s']:.0f} s{eta}", file=sys.stderr, flush=True)
                self._next_line = fin + max(1, self.total // 20)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
