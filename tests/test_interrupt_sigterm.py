"""SIGTERM (a CI timeout, `kill`, a container stop) ends `run_scenario.py run` as Ctrl+C does: exit 130 and no
temp file or folder left (session 8 audit: SIGTERM killed it at once and `run --workers` left its
`.citytwin-runs-*` folder in the results folder). Where SIGINT is ignored, SIGTERM keeps its default."""
from __future__ import annotations

import signal
import subprocess
import time
from pathlib import Path

from conftest import LineReader, popen_as_from_shell

ROOT = Path(__file__).resolve().parent.parent
SCENARIO = """name: term
seed: 1
city: {source: grid, grid: {nx: 20, ny: 20}}
time: {duration_s: 86400, record_interval_s: 3600}
demand: {trips: 500000}
outputs: {report: false}
"""


def _start(tmp_path: Path, ignore_sigint: bool) -> tuple[subprocess.Popen, LineReader]:
    (tmp_path / "s.yaml").write_text(SCENARIO)
    p = popen_as_from_shell(ROOT / "run_scenario.py", "run", tmp_path / "s.yaml", "--out", tmp_path / "out",
                            "--no-report", sigint="ignore" if ignore_sigint else "default", cwd=ROOT,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    return p, LineReader(p.stderr)


def _stop(p: subprocess.Popen) -> None:
    if p.poll() is None:
        p.kill()
        p.wait()


def test_sigterm_during_a_run_exits_130_and_leaves_nothing_half_written(tmp_path):
    p, err = _start(tmp_path, ignore_sigint=False)
    try:
        # validated, now building and simulating (about 6 s on a fast idle machine: 20,000 trips on 12 x 12 took
        # 0.4 s there, and a SIGTERM a second after this line met a process already exiting)
        err.until(lambda line: line.startswith("city:"), timeout_s=120)
        p.send_signal(signal.SIGTERM)
        t0 = time.monotonic()
        p.wait(timeout=60)
        text = err.rest()
        assert p.returncode == 130, (p.returncode, text[-500:])
        assert time.monotonic() - t0 < 30 and "interrupted" in text
    finally:
        _stop(p)
    left = [x.name for x in (tmp_path / "out").rglob("*") if ".tmp" in x.name or x.name.startswith(".citytwin")]
    assert left == []


def test_sigterm_still_kills_where_sigint_is_ignored(tmp_path):
    p, err = _start(tmp_path, ignore_sigint=True)
    try:
        err.until(lambda line: line.startswith("city:"), timeout_s=120)
        p.send_signal(signal.SIGTERM)
        p.wait(timeout=60)
        assert p.returncode == -signal.SIGTERM
    finally:
        _stop(p)


def test_sigterm_during_a_run_with_workers_leaves_no_empty_results_folder(tmp_path):
    """`run --workers 2` interrupted before any variant finished: exit 130, and neither its scratch folder nor
    the scenario's results folder it had just made is left behind (an empty `<out>/term/` was)."""
    (tmp_path / "s.yaml").write_text(SCENARIO + "variants:\n  more: {demand: {scale: 1.1}}\n")
    p = popen_as_from_shell(ROOT / "run_scenario.py", "run", tmp_path / "s.yaml", "--out", tmp_path / "out",
                            "--no-report", "--workers", "2", cwd=ROOT, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)
    err = LineReader(p.stderr)
    try:
        deadline = time.monotonic() + 120
        while not any((tmp_path / "out" / "term").glob(".citytwin-runs-*")):  # the workers are starting
            assert time.monotonic() < deadline and p.poll() is None, err.rest()
            time.sleep(0.1)
        time.sleep(1.0)
        p.send_signal(signal.SIGTERM)
        p.wait(timeout=60)
        assert p.returncode == 130, (p.returncode, err.rest()[-500:])
        assert not (tmp_path / "out" / "term").exists(), sorted(x.name for x in (tmp_path / "out").rglob("*"))
    finally:
        _stop(p)
