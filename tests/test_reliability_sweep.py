"""Sweeps survive their parent's death and a dead worker: workers exit when the parent is killed (kill -9),
resume removes stale temp files and gives results equal to an uninterrupted run, and a worker killed mid-run
costs no run (the runs in flight are retried one at a time) (issue 15)."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import xarray as xr
import yaml

ROOT = Path(__file__).resolve().parent.parent
TINY = {"name": "sw", "seed": 5, "city": {"source": "grid", "grid": {"nx": 3, "ny": 3}},
        "time": {"duration_s": 600, "record_interval_s": 300}, "demand": {"trips": 30},
        "outputs": {"report": False}}


def _children(pid: int) -> list[int]:
    out = []
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                if int((d / "stat").read_text().rsplit(")", 1)[1].split()[1]) == pid:
                    out.append(int(d.name))
            except (OSError, IndexError, ValueError):
                pass
    return out


def _workers(pid: int) -> list[int]:
    """The spawned pool workers among ``pid``'s children (not multiprocessing's resource tracker)."""
    out = []
    for c in _children(pid):
        try:
            if b"spawn_main" in (Path("/proc") / str(c) / "cmdline").read_bytes() and _alive(c):
                out.append(c)
        except OSError:
            pass
    return out


def _alive(pid: int) -> bool:
    try:
        state = (Path("/proc") / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def _kpis(path: Path) -> dict[str, np.ndarray]:
    with xr.open_dataset(path, engine="netcdf4") as ds:
        assert (ds["status"].values == "ok").all()
        return {str(k): ds[k].values.copy() for k in ds.data_vars if str(k).startswith("kpi_")}


def test_sweep_killed_then_resumed_equals_an_uninterrupted_one(tmp_path):
    scen = tmp_path / "sw.yaml"
    scen.write_text(yaml.safe_dump(TINY))
    args = ["sweep", str(scen), "--param", "demand.scale=0.5,1.5", "--seeds", "2", "--keep", "kpis", "--quiet"]
    cli = [sys.executable, str(ROOT / "run_scenario.py")]
    # the reference: uninterrupted, in this process's way (no workers)
    ref = subprocess.run(cli + args + ["--workers", "0", "--out", str(tmp_path / "ref")], capture_output=True,
                         text=True, timeout=300)
    assert ref.returncode == 0, ref.stderr
    out = tmp_path / "killed"
    p = subprocess.Popen(cli + args + ["--workers", "2", "--out", str(out)], stdout=subprocess.DEVNULL,
                         stderr=subprocess.DEVNULL, start_new_session=True)
    runs = out / "runs"
    workers: list[int] = []
    try:
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline:  # kill the parent once a first run is on disk
            workers = [c for c in _children(p.pid) if _alive(c)] or workers
            if runs.is_dir() and any(f.suffix == ".nc" for f in runs.iterdir()):
                break
            time.sleep(0.1)
        p.send_signal(signal.SIGKILL)
        p.wait(timeout=10)
        assert workers, "the sweep started no worker processes"
        t0 = time.monotonic()
        while any(_alive(w) for w in workers) and time.monotonic() - t0 < 15:
            time.sleep(0.2)
        assert not any(_alive(w) for w in workers), "workers outlived their killed parent"
    finally:
        for w in workers:
            if _alive(w):
                os.kill(w, signal.SIGKILL)
    stale = runs / f".run_x.nc.pid{p.pid}.abcdef.tmp"  # as a kill -9 mid-write leaves it
    stale.write_text("half")
    res = subprocess.run(cli + args + ["--workers", "2", "--out", str(out)], capture_output=True, text=True,
                         timeout=300)
    assert res.returncode == 0, res.stderr
    assert not stale.exists()
    a, b = _kpis(tmp_path / "ref" / "batch.nc"), _kpis(out / "batch.nc")
    assert a.keys() == b.keys()
    for k in a:
        np.testing.assert_array_equal(a[k], b[k], err_msg=k)


def test_a_worker_killed_mid_run_costs_no_run(tmp_path):
    """kill -9 of one worker while runs are in flight: every run still ends ok (the runs in flight are retried
    one at a time), and the results equal a serial run's."""
    from twin.batch import plan_batch
    from twin.batch_exec import run_local, run_serial

    scen = tmp_path / "sw.yaml"
    scen.write_text(yaml.safe_dump({**TINY, "time": {"duration_s": 1200, "record_interval_s": 300},
                                    "demand": {"trips": 150}}))
    plan = plan_batch(scen, {"demand.scale": [0.5, 1.0, 1.5]}, 1, out=str(tmp_path / "b"))
    serial = {s["key"]: s for s in run_serial(plan.tasks)}
    for f in plan.runs_dir.iterdir():
        f.unlink()
    got, killed = {}, None
    gen = run_local(plan.tasks, 2)
    for st in gen:
        got[st["key"]] = st
        if killed is None:
            kids = _workers(os.getpid())
            if kids:
                killed = kids[0]
                os.kill(killed, signal.SIGKILL)
    assert killed is not None
    assert sorted(got) == sorted(serial)
    assert all(s["status"] == "ok" for s in got.values()), [s.get("error") for s in got.values()]
    for k, s in serial.items():
        assert got[k]["kpis"] == s["kpis"]


def test_closing_a_pool_whose_worker_died_holding_the_queue_lock_never_hangs():
    """A worker killed while it held the call queue's lock (an idle worker holds it while it waits for work) left
    ``shutdown(wait=True)`` waiting for ever: the other workers block on that lock and never read their stop
    signal (a hang of ``test_a_worker_killed_mid_run_costs_no_run`` in a full run). Here this process holds the
    lock, as the dead worker did: ``close_pool`` returns within its grace and leaves no worker alive."""
    import multiprocessing as mp
    from concurrent.futures import ProcessPoolExecutor

    from twin.batch_exec import close_pool

    pool = ProcessPoolExecutor(max_workers=1, mp_context=mp.get_context("spawn"))
    rlock = pool._call_queue._rlock
    assert rlock.acquire(timeout=10)
    try:
        pool.submit(abs, -1)  # the worker starts, then blocks on the lock this process holds
        procs = list(pool._processes.values())
        assert procs
        t0 = time.monotonic()
        close_pool(pool, grace_s=2.0)
        assert time.monotonic() - t0 < 15
        assert not any(p.is_alive() for p in procs)
    finally:
        rlock.release()
