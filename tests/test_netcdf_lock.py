"""One netCDF call at a time in a process: netCDF-C/HDF5 are not thread-safe, and the dashboard's warm-up thread
opening a results file while a run in another thread wrote one segfaulted a CI worker (session 9). Every read
and write of ours waits for ``twin.results.NETCDF_LOCK``."""
from __future__ import annotations

import threading
import time

import numpy as np
import xarray as xr


def _hold(lock, seconds: float, held: threading.Event) -> threading.Thread:
    def run() -> None:
        with lock:
            held.set()
            time.sleep(seconds)

    t = threading.Thread(target=run, daemon=True)
    t.start()
    assert held.wait(10)
    return t


def test_writes_and_reads_wait_for_the_process_netcdf_lock(tmp_path):
    from twin.results import NETCDF_LOCK, read_netcdf, write_atomic

    ds = xr.Dataset({"x": ("n", np.arange(5.0))})
    write_atomic(ds, tmp_path / "a.nc")
    for call in (lambda: write_atomic(ds, tmp_path / "b.nc"), lambda: read_netcdf(tmp_path / "a.nc")):
        held = threading.Event()
        t = _hold(NETCDF_LOCK, 0.8, held)
        t0 = time.monotonic()
        call()
        assert time.monotonic() - t0 >= 0.6  # it waited for the other thread's netCDF call
        t.join()
    assert read_netcdf(tmp_path / "b.nc")["x"].values.tolist() == [0.0, 1.0, 2.0, 3.0, 4.0]


def test_the_dashboard_reads_under_the_same_lock_and_a_writer_may_hold_it_around_a_write(tmp_path):
    import dashboards.data as D
    from twin.results import NETCDF_LOCK, write_atomic

    assert D._io_lock is NETCDF_LOCK
    with D._io_lock:  # as the what-if worker does: re-entrant, no deadlock
        write_atomic(xr.Dataset({"x": ("n", np.zeros(3))}), tmp_path / "c.nc")
    assert (tmp_path / "c.nc").is_file()
