"""Shared helpers for the bench scripts: timing, per-case subprocesses with peak memory, tables, the JSON line.

Every bench case runs in a fresh Python process (``run_case``) so that its peak resident memory
(``ru_maxrss``, taken with ``os.wait4`` for exactly that child) and its numba/first-call costs are its
own. The child reports its result as the last stdout line, prefixed with ``CASE_RESULT``; the parent
adds ``wall_s`` (whole subprocess), ``peak_mem_gb`` and ``returncode``. Machine load (``os.getloadavg``)
is recorded because the bench machine is shared.
"""
from __future__ import annotations

import json
import os
import resource
import signal
import subprocess
import sys
import threading
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterable, Sequence

ROOT = Path(__file__).resolve().parents[1]
RESULT_PREFIX = "CASE_RESULT "

__all__ = ["ROOT", "Timer", "timed", "self_peak_gb", "emit_result", "run_case", "print_table", "final_json",
           "machine_info", "fmt"]


class Timer:
    """Named wall-clock laps: ``with T("phase"): ...``; ``T.laps`` maps name -> seconds (summed if repeated)."""

    def __init__(self) -> None:
        self.laps: dict[str, float] = {}

    @contextmanager
    def __call__(self, name: str):
        t0 = time.perf_counter()
        try:
            yield
        finally:
            self.laps[name] = self.laps.get(name, 0.0) + time.perf_counter() - t0


@contextmanager
def timed(out: dict, key: str):
    """Store the wall time of the block in ``out[key]`` (seconds)."""
    t0 = time.perf_counter()
    try:
        yield
    finally:
        out[key] = time.perf_counter() - t0


def self_peak_gb() -> float:
    """Peak resident memory of this process so far (GB; Linux reports ru_maxrss in KiB)."""
    kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return kb * (1 if sys.platform != "darwin" else 1 / 1024) / 1024**2


def emit_result(result: dict) -> None:
    """Child side: print the case result as the last stdout line (the parent parses it)."""
    result = dict(result)
    result.setdefault("self_peak_mem_gb", round(self_peak_gb(), 4))
    sys.stdout.flush()
    print(RESULT_PREFIX + json.dumps(result, default=_jsonable), flush=True)


def _jsonable(x: Any):
    try:
        import numpy as np

        if isinstance(x, np.generic):
            return x.item()
        if isinstance(x, np.ndarray):
            return x.tolist()
    except ImportError:  # pragma: no cover
        pass
    return str(x)


def run_case(argv: Sequence[str], timeout_s: float, env: dict | None = None, echo: bool = False) -> dict:
    """Run ``python argv...`` in a fresh process; return its CASE_RESULT dict plus wall time and peak memory.

    On timeout the child's process group is killed and ``{"error": "timeout"}`` is returned. Peak memory is
    the child's own ``ru_maxrss`` from ``os.wait4`` (grandchildren are not included); ``cpu_s`` is its user+system
    CPU time (on a busy shared machine wall time can be well above CPU time).
    """
    cmd = [sys.executable, *argv]
    full_env = dict(os.environ)
    full_env.setdefault("PYTHONHASHSEED", "0")
    full_env["PYTHONPATH"] = str(ROOT) + (os.pathsep + full_env["PYTHONPATH"] if full_env.get("PYTHONPATH") else "")
    if env:
        full_env.update(env)
    t0 = time.perf_counter()
    p = subprocess.Popen(cmd, cwd=str(ROOT), env=full_env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         text=True, start_new_session=True)
    out_lines: list[str] = []
    err_chunks: list[str] = []

    def _read_out():
        for line in p.stdout:  # type: ignore[union-attr]
            out_lines.append(line)
            if echo and not line.startswith(RESULT_PREFIX):
                sys.stdout.write("    | " + line)
                sys.stdout.flush()

    def _read_err():
        err_chunks.append(p.stderr.read())  # type: ignore[union-attr]

    threads = [threading.Thread(target=_read_out, daemon=True), threading.Thread(target=_read_err, daemon=True)]
    for th in threads:
        th.start()
    timed_out = False
    deadline = t0 + timeout_s
    status, ru = 0, None
    while True:
        pid, status, ru = os.wait4(p.pid, os.WNOHANG)
        if pid == p.pid:
            break
        if time.perf_counter() > deadline:
            timed_out = True
            try:
                os.killpg(p.pid, signal.SIGKILL)  # the child's own session: only what this call started
            except ProcessLookupError:
                pass
            _, status, ru = os.wait4(p.pid, 0)
            break
        time.sleep(0.02)
    wall = time.perf_counter() - t0
    p.returncode = os.waitstatus_to_exitcode(status)
    for th in threads:
        th.join(timeout=5)
    res: dict = {}
    for line in reversed(out_lines):
        if line.startswith(RESULT_PREFIX):
            res = json.loads(line[len(RESULT_PREFIX):])
            break
    if timed_out:
        res = {**res, "error": f"timeout after {timeout_s:.0f} s"}
    elif p.returncode != 0 or not res:
        tail = "".join(err_chunks).strip().splitlines()[-6:]
        res = {**res, "error": f"exit {p.returncode}: " + " | ".join(tail)}
    res["subprocess_wall_s"] = round(wall, 3)
    res["peak_mem_gb"] = round(ru.ru_maxrss / 1024**2, 4) if ru is not None else None
    res["cpu_s"] = round(ru.ru_utime + ru.ru_stime, 3) if ru is not None else None
    res["returncode"] = p.returncode
    return res


def fmt(x: Any, nd: int = 3) -> str:
    """Compact number formatting for tables: 1.23k / 4.56M, '-' for None."""
    if x is None:
        return "-"
    if isinstance(x, str):
        return x
    if isinstance(x, bool):
        return str(x)
    if isinstance(x, int) and abs(x) < 10_000:
        return str(x)
    x = float(x)
    if x != x:
        return "nan"
    ax = abs(x)
    for div, suf in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if ax >= div * 0.9995 and (suf != "k" or ax >= 1e4):
            return f"{x / div:.3g}{suf}"
    if ax >= 100:
        return f"{x:.0f}"
    return f"{x:.{nd}g}"


def print_table(rows: Iterable[dict], cols: Sequence[tuple[str, str]], title: str | None = None) -> str:
    """Print rows as an aligned text table; ``cols`` is [(key, header)]. Returns the text."""
    rows = list(rows)
    cells = [[h for _, h in cols]] + [[fmt(r.get(k)) for k, _ in cols] for r in rows]
    widths = [max(len(c[i]) for c in cells) for i in range(len(cols))]
    lines = []
    if title:
        lines.append(title)
    for j, c in enumerate(cells):
        lines.append("  ".join(s.rjust(w) if j else s.ljust(w) for s, w in zip(c, widths)))
        if j == 0:
            lines.append("  ".join("-" * w for w in widths))
    text = "\n".join(lines)
    print(text, flush=True)
    return text


def machine_info() -> dict:
    """CPU count, load average, Python and key package versions (for the record)."""
    info: dict[str, Any] = {"cpus": os.cpu_count(), "python": sys.version.split()[0]}
    try:
        info["loadavg_1m"] = round(os.getloadavg()[0], 2)
    except OSError:  # pragma: no cover
        pass
    return info


def final_json(payload: dict) -> None:
    """Print exactly one JSON line (the last line of the bench's output)."""
    print(json.dumps(payload, default=_jsonable, separators=(", ", ": ")), flush=True)
