"""The one atomic file writer: write to a temp file beside the target, make it readable (0644), rename.

Every file CityTwin writes for others to read (results netCDF, batch run/error JSON, HTML reports) goes
through :func:`write_atomic_with`, so a crash never leaves a half-written file and no file is left 0600
(``mkstemp`` creates private files).

Ctrl+C never hangs a write. A ``KeyboardInterrupt`` raised inside a library's write can leave its file lock
half-taken (xarray's netCDF lock: 5 of 8 such interrupts deadlocked), so in the main thread the first Ctrl+C
during a write is *deferred*: the write finishes (a results file takes about a second), the file is renamed
into place, and then ``KeyboardInterrupt`` is raised. A second Ctrl+C abandons the write at once: the temp
file is removed and the previous file stays as it was. No helper thread is used: threads started or waited on
as SIGINT arrived hung three fresh-clone test runs (``Thread.start()``, ``os.fsync``). Temp names carry the
writer's pid, so :func:`remove_stale_temps` can delete those of dead writers (``kill -9``) when a run or sweep
resumes.
"""
from __future__ import annotations

import json
import os
import re
import signal
import sys
import tempfile
import threading
from pathlib import Path
from typing import Any, Callable

__all__ = ["write_atomic_with", "write_text_atomic", "write_json_atomic", "remove_stale_temps", "FILE_MODE"]

FILE_MODE = 0o644
_TEMP = re.compile(r"^\..+\.pid(\d+)\.[^.]+\.tmp$")


class _DeferInterrupt:
    """Within ``with``: the first SIGINT is recorded (``.hit``) and the code runs on; a second raises
    ``KeyboardInterrupt`` there. Only in the main thread with Python's own SIGINT handler installed (a host
    such as a notebook kernel with its own handler keeps it)."""

    def __init__(self, what: str):
        self.what = what
        self.hit = 0
        self._old: Any = None
        self.active = False

    def _handler(self, signum: int, frame: Any) -> None:
        self.hit += 1
        if self.hit == 1:
            print(f"\nCtrl+C: finishing the write of {self.what} (Ctrl+C again to abandon it)",
                  file=sys.stderr, flush=True)
            return
        raise KeyboardInterrupt

    def __enter__(self) -> "_DeferInterrupt":
        if (threading.current_thread() is threading.main_thread()
                and signal.getsignal(signal.SIGINT) is signal.default_int_handler):
            self._old = signal.signal(signal.SIGINT, self._handler)
            self.active = True
        return self

    def __exit__(self, *exc: Any) -> None:
        if self.active:
            signal.signal(signal.SIGINT, self._old)


def write_atomic_with(path: str | Path, write: Callable[[str], None]) -> Path:
    """Call ``write(tmp_path)`` to fill a temp file in ``path``'s folder, then chmod 0644 and rename onto
    ``path``. On any error the temp file is removed and the error re-raised; the target is untouched."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = ""
    with _DeferInterrupt(path.name) as guard:
        try:
            fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.pid{os.getpid()}.", suffix=".tmp", dir=path.parent)
            os.close(fd)
            write(tmp)
            # no fsync: under heavy disk IO it held Ctrl+C for > 10 s (uninterruptible); the rename alone
            # keeps the file whole against a crash or kill of this process, not against a power cut
            os.chmod(tmp, FILE_MODE)
            os.replace(tmp, path)
        except BaseException:
            if tmp and os.path.exists(tmp):
                os.unlink(tmp)
            raise
    if guard.hit:  # the deferred Ctrl+C, now that the file is whole and in place
        raise KeyboardInterrupt
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

