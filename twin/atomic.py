"""The one atomic file writer: write to a temp file beside the target, make it readable (0644), rename.

Every file CityTwin writes for others to read (results netCDF, batch run/error JSON, HTML reports) goes
through :func:`write_atomic_with`, so a crash never leaves a half-written file and no file is left 0600
(``mkstemp`` creates private files).

Ctrl+C never hangs a write: in the main thread the writer runs in a helper thread (signals reach only the
main thread, so a library's file lock, e.g. xarray's netCDF lock, is never left half-taken); on Ctrl+C the
main thread waits at most :data:`INTERRUPT_GRACE_S` for the helper, removes the temp file and re-raises
``KeyboardInterrupt``: the previous file stays as it was. Temp names carry the writer's pid, so
:func:`remove_stale_temps` can delete those of dead writers (``kill -9``) when a run or sweep resumes.
"""
from __future__ import annotations

import json
import os
import queue
import re
import signal
import tempfile
import threading
from pathlib import Path
from typing import Any, Callable

__all__ = ["write_atomic_with", "write_text_atomic", "write_json_atomic", "remove_stale_temps", "FILE_MODE",
           "INTERRUPT_GRACE_S"]

FILE_MODE = 0o644
INTERRUPT_GRACE_S = 5.0  # how long Ctrl+C waits for a write in progress before giving it up
_SIGMASK = hasattr(signal, "pthread_sigmask")
_TEMP = re.compile(r"^\..+\.pid(\d+)\.[^.]+\.tmp$")


_jobs: "queue.SimpleQueue[tuple[Callable[[], None], threading.Event, list[BaseException]]]" = queue.SimpleQueue()
_worker: threading.Thread | None = None
_worker_lock = threading.Lock()


def _serve() -> None:
    while True:
        fn, done, err = _jobs.get()
        try:
            fn()
        except BaseException as exc:  # handed to the caller
            err.append(exc)
        finally:
            done.set()


def _ensure_worker() -> None:
    """Start the one writer thread, with SIGINT blocked (inherited), so the kernel delivers Ctrl+C to the main
    thread. It is started once, at import, not per write: starting a thread while Ctrl+C arrived hung in
    ``Thread.start()`` in a fresh-clone test run."""
    global _worker
    with _worker_lock:
        if _worker is not None:
            return
        mask = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT}) if _SIGMASK else None
        try:
            th = threading.Thread(target=_serve, name="citytwin-atomic-write", daemon=True)
            th.start()
        finally:
            if mask is not None:
                signal.pthread_sigmask(signal.SIG_SETMASK, mask)
        _worker = th


def _run_guarded(write: Callable[[str], None], tmp: str) -> None:
    """``write(tmp)``; from the main thread on the writer thread, so Ctrl+C interrupts the wait, not the writer."""
    if threading.current_thread() is not threading.main_thread():
        write(tmp)
        return
    _ensure_worker()
    done = threading.Event()
    err: list[BaseException] = []
    _jobs.put((lambda: write(tmp), done, err))
    try:
        while not done.wait(0.05):
            pass
    except KeyboardInterrupt:
        done.wait(INTERRUPT_GRACE_S)  # let the library finish and release its locks; never wait forever
        raise
    if err:
        raise err[0]


def write_atomic_with(path: str | Path, write: Callable[[str], None]) -> Path:
    """Call ``write(tmp_path)`` to fill a temp file in ``path``'s folder, then chmod 0644 and rename onto
    ``path``. On any error the temp file is removed and the error re-raised; the target is untouched."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.pid{os.getpid()}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        _run_guarded(write, tmp)
        # no fsync: under heavy disk IO it blocked Ctrl+C for > 10 s (uninterruptible); the rename alone keeps
        # the file whole against a crash or kill of this process, not against a power cut
        os.chmod(tmp, FILE_MODE)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path


def write_text_atomic(text: str, path: str | Path) -> Path:
    """Write UTF-8 ``text`` to ``path`` atomically."""
    def write(tmp: str) -> None:
        Path(tmp).write_text(text, encoding="utf-8")

    return write_atomic_with(path, write)


def write_json_atomic(obj: Any, path: str | Path) -> Path:
    """Write ``obj`` as indented JSON to ``path`` atomically (non-JSON values as ``str``)."""
    return write_text_atomic(json.dumps(obj, indent=1, default=str), path)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def remove_stale_temps(folder: str | Path, recursive: bool = False) -> list[Path]:
    """Delete temp files of :func:`write_atomic_with` left in ``folder`` by writers that no longer run
    (killed with ``kill -9`` or a power cut); return the paths removed. Temps of live writers are kept."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    removed = []
    for p in (folder.rglob(".*.tmp") if recursive else folder.glob(".*.tmp")):
        m = _TEMP.match(p.name)
        if m and int(m.group(1)) != os.getpid() and not _alive(int(m.group(1))):
            try:
                p.unlink()
                removed.append(p)
            except OSError:
                pass
    return removed


if threading.current_thread() is threading.main_thread():
    _ensure_worker()
