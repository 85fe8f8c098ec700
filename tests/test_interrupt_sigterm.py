"""SIGTERM (a CI timeout, `kill`, a container stop) ends `run_scenario.py run` as Ctrl+C does: exit 130 and no
temp file or folder left (session 8 audit: SIGTERM killed it at once and `run --workers` left its
`.citytwin-runs-*` folder in the results folder). Where SIGINT is ignored, SIGTERM keeps its default."""
from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SCENARIO = """name: term
seed: 1
city: {source: grid, grid: {nx: 12, ny: 12}}
time: {duration_s: 86400, record_interval_s: 3600}
demand: {trips: 20000}
outputs: {report: false}
"""


def _start(tmp_path: Path, ignore_sigint: bool) -> subprocess.Popen:
    (tmp_path / "s.yaml").write_text(SCENARIO)

    def as_shell() -> None:  # SIGINT as a terminal gives it (pytest-xdist may hand children an ignored one)
        signal.signal(signal.SIGINT, signal.SIG_IGN if ignore_sigint else signal.SIG_DFL)
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT, signal.SIGTERM})

    return subprocess.Popen([sys.executable, str(ROOT / "run_scenario.py"), "run", str(tmp_path / "s.yaml"),
                             "--out", str(tmp_path / "out"), "--no-report"], cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, preexec_fn=as_shell)


def _wait_running(p: subprocess.Popen, timeout_s: float = 60.0) -> None:
    """Until the run has printed its city line (validated, simulating)."""
    t0 = time.monotonic()
    assert p.stderr is not None
    for line in p.stderr:
        if line.startswith("city:") or time.monotonic() - t0 > timeout_s:
            return


def test_sigterm_during_a_run_exits_130_and_leaves_nothing_half_written(tmp_path):
    p = _start(tmp_path, ignore_sigint=False)
    _wait_running(p)
    time.sleep(1.0)
    p.send_signal(signal.SIGTERM)
    t0 = time.monotonic()
    _, err = p.communicate(timeout=60)
    assert p.returncode == 130, (p.returncode, err[-500:])
    assert time.monotonic() - t0 < 30 and "interrupted" in err
    left = [x.name for x in (tmp_path / "out").rglob("*") if ".tmp" in x.name or x.name.startswith(".citytwin")]
    assert left == []


def test_sigterm_still_kills_where_sigint_is_ignored(tmp_path):
    p = _start(tmp_path, ignore_sigint=True)
    _wait_running(p)
    p.send_signal(signal.SIGTERM)
    p.communicate(timeout=60)
    assert p.returncode == -signal.SIGTERM
