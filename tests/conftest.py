"""Shared fixtures: build small scenarios and engines without files on disk."""
from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def make_scenario(doc: dict, tmp_path: Path | None = None, variant: str = "baseline"):
    """Validate a scenario dict as if it were a file in ``tmp_path``; return the resolved variant."""
    from twin.scenario import resolve_variants

    base = {"name": "t", "seed": 1, "city": {"source": "grid", "grid": {"nx": 5, "ny": 5}},
            "time": {"duration_s": 1800, "step_s": 1, "record_interval_s": 300}}
    base.update(doc)
    path = (tmp_path or ROOT / "scenarios") / "test.yaml"
    return resolve_variants(base, path)[variant]


def make_twin(doc: dict, city=None, tmp_path: Path | None = None, variant: str = "baseline"):
    """A CityTwin for a scenario dict (optionally on a given city graph)."""
    from twin.engine import CityTwin

    sc = make_scenario(doc, tmp_path, variant)
    return CityTwin(sc, (tmp_path or ROOT / "scenarios"), city=city)


@pytest.fixture
def scenario_dict():
    return make_scenario


# ---------------------------------------------------------------- bad-input harness (tests/test_*input*.py)
BAD_INPUT_BASE = {"name": "h", "seed": 1, "city": {"source": "grid", "grid": {"nx": 4, "ny": 4}},
                  "time": {"duration_s": 600, "record_interval_s": 300}, "demand": {"trips": 20},
                  "outputs": {"report": False}}


def write_scenario(folder: Path, extra: dict, files: dict[str, str] | None = None) -> Path:
    """A small grid scenario file ``s.yaml`` in ``folder`` (BAD_INPUT_BASE updated by ``extra``), plus data files."""
    import yaml

    folder.mkdir(parents=True, exist_ok=True)
    for name, text in (files or {}).items():
        (folder / name).write_text(text)
    p = folder / "s.yaml"
    p.write_text(yaml.safe_dump({**BAD_INPUT_BASE, **extra}))
    return p


def file_tree(*folders: Path) -> set[str]:
    """Every path under the folders: compared before and after to check that nothing was written."""
    return {str(p) for f in folders if f.exists() for p in f.rglob("*")}


def assert_refused(path: Path, capsys, words: tuple[str, ...], commands=("validate", "run")) -> None:
    """Exit 2 from each command, the words in one of the lines, no traceback, nothing new on disk."""
    from twin.cli import main
    from twin.scenario import PROJECT_ROOT

    for cmd in commands:
        out = path.parent / "out"
        before = file_tree(path.parent, PROJECT_ROOT / "results")
        argv = [cmd, str(path)] + (["--out", str(out), "--quiet", "--no-report"] if cmd == "run" else [])
        assert main(argv) == 2, (cmd, capsys.readouterr().err)
        err = capsys.readouterr().err
        assert "Traceback" not in err, err
        line = next((ln for ln in err.splitlines() if all(w in ln for w in words)), None)
        assert line is not None and line.startswith(str(path)), (words, err)
        assert file_tree(path.parent, PROJECT_ROOT / "results") == before, cmd


# ---------------------------------------------------------------- child processes started as a shell would
# Without ``preexec_fn``: forking a pytest-xdist worker that has other threads (numba's pool, a dashboard's
# warm-up thread) and running Python in the child before ``exec`` can deadlock that child, and a test reading
# its pipe then waits for ever (a 90-minute CI hang, session 8). The signal set-up runs after ``exec`` instead.
_SHELL_BOOT = """\
import os, runpy, signal, sys
mode, script = sys.argv[1], sys.argv[2]
signal.signal(signal.SIGINT, signal.SIG_IGN if mode == "ignore" else signal.default_int_handler)
signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT, signal.SIGTERM})
sys.argv = sys.argv[2:]
sys.path.insert(0, os.path.dirname(os.path.abspath(script)))
runpy.run_path(script, run_name="__main__")
"""



def drive_grid_with_closure(tw) -> None:
    """3,000 random trips over 20 min on ``tw``'s set-up traffic model, the middle link closed from 500 s to 1,100 s,
    run to 2,400 s: a congested day with re-routing around a closure, for tests that compare two ways of routing."""
    import numpy as np

    T = tw.traffic
    rng = np.random.default_rng(5)
    n = 3000
    T.add_trips(rng.integers(0, T.N, n).astype(np.int32), rng.integers(0, T.N, n).astype(np.int32),
                np.sort(rng.uniform(0, 1200.0, n)))
    tw.env.run(until=500)
    T.set_capacity_factor(T.L // 2, 0.0)
    tw.env.run(until=1100)
    T.set_capacity_factor(T.L // 2, 1.0)
    tw.env.run(until=2400)

def popen_as_from_shell(script: str | Path, *args: str, sigint: str = "default", **popen_kw):
    """Start ``python script args...`` as a terminal would: SIGINT raising KeyboardInterrupt (``sigint="default"``)
    or ignored, as in a script's background job (``"ignore"``), and unblocked. A pytest-xdist worker can hand its
    children an ignored or blocked SIGINT, and Python then never installs its Ctrl+C handler."""
    import subprocess
    import sys

    if sigint not in ("default", "ignore"):
        raise ValueError(f"sigint must be 'default' or 'ignore', not {sigint!r}")
    return subprocess.Popen([sys.executable, "-c", _SHELL_BOOT, sigint, str(script), *map(str, args)], **popen_kw)


class LineReader:
    """The lines of a child's pipe, read by a daemon thread, so a test waits for a line with a deadline instead
    of blocking for ever on a child that never writes."""

    def __init__(self, stream) -> None:
        import queue
        import threading

        self._q: queue.Queue = queue.Queue()
        self.lines: list[str] = []
        self._t = threading.Thread(target=self._pump, args=(stream,), daemon=True)
        self._t.start()

    def _pump(self, stream) -> None:
        for line in stream:
            self._q.put(line)
        self._q.put(None)

    def next(self, timeout_s: float = 60.0) -> str | None:
        """The next line (``None`` at end of stream); AssertionError when none comes within ``timeout_s``."""
        import queue

        try:
            line = self._q.get(timeout=timeout_s)
        except queue.Empty:
            raise AssertionError(f"the child wrote no line within {timeout_s:.0f} s") from None
        if line is not None:
            self.lines.append(line)
        return line

    def until(self, pred, timeout_s: float = 60.0) -> str:
        """Read lines until one satisfies ``pred``; AssertionError at end of stream or after ``timeout_s``."""
        import time

        t_end = time.monotonic() + timeout_s
        while True:
            line = self.next(max(0.0, t_end - time.monotonic()))
            if line is None:
                raise AssertionError("the child ended before the expected line:\n" + "".join(self.lines[-20:]))
            if pred(line):
                return line

    def rest(self, timeout_s: float = 30.0) -> str:
        """Everything read so far and up to the end of the stream (call after the child has exited)."""
        self._t.join(timeout_s)
        while not self._q.empty():
            line = self._q.get_nowait()
            if line is not None:
                self.lines.append(line)
        return "".join(self.lines)
