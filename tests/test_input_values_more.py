"""Scenario values that were accepted though they could not work (session 8 audit): a results folder with a control
character, a YAML reader error; a closure starting after the run is named over two lines. Exit 2, one line, nothing written."""
from __future__ import annotations

from pathlib import Path

import yaml

from twin.cli import main

BASE = {"name": "h", "seed": 1, "city": {"source": "grid", "grid": {"nx": 4, "ny": 4}},
        "time": {"duration_s": 600, "record_interval_s": 300}, "demand": {"trips": 20},
        "outputs": {"report": False}}
def _scenario(folder: Path, extra: dict, files: dict[str, str] | None = None) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in (files or {}).items():
        (folder / name).write_text(text)
    doc = {**BASE, **extra}
    p = folder / "s.yaml"
    p.write_text(yaml.safe_dump(doc))
    return p


def _tree(*folders: Path) -> set[str]:
    return {str(p) for f in folders if f.exists() for p in f.rglob("*")}


def _refused(path: Path, capsys, words: tuple[str, ...], commands=("validate", "run")) -> None:
    """Exit 2 from each command, the words in one of the lines, no traceback, nothing new on disk."""
    from twin.scenario import PROJECT_ROOT

    for cmd in commands:
        out = path.parent / "out"
        before = _tree(path.parent, PROJECT_ROOT / "results")
        argv = [cmd, str(path)] + (["--out", str(out), "--quiet", "--no-report"] if cmd == "run" else [])
        assert main(argv) == 2, (cmd, capsys.readouterr().err)
        err = capsys.readouterr().err
        assert "Traceback" not in err, err
        line = next((ln for ln in err.splitlines() if all(w in ln for w in words)), None)
        assert line is not None and line.startswith(str(path)), (words, err)
        assert _tree(path.parent, PROJECT_ROOT / "results") == before, cmd


def test_results_folder_with_a_control_character_is_refused_before_running(tmp_path, capsys):
    """outputs.dir 'a\\0b' passed validation, ran the whole simulation and then crashed writing (ValueError:
    embedded null byte, a traceback)."""
    path = _scenario(tmp_path / "scen", {"outputs": {"report": False, "dir": "a\0b"}})
    assert main(["run", str(path), "--quiet", "--no-report"]) == 2
    err = capsys.readouterr().err
    assert "outputs.dir" in err and "control characters" in err and "Traceback" not in err, err


# --------------------------------------------------------------------- values that could never act, messages in one line
def test_closure_starting_after_the_run_is_said_not_silently_ignored(tmp_path, capsys):
    """start_s 1e6 in a 600 s run was accepted silently and ran as an unchanged baseline (exit 0). It is not
    refused (a shortened copy of a scenario is a normal way to try it), but validate and run name it."""
    late = {"traffic": {"closures": [{"link": "n0_0>n1_0", "start_s": 1e6}]}}
    path = _scenario(tmp_path / "scen", late)
    assert main(["validate", str(path)]) == 0
    err = capsys.readouterr().err
    assert "note: traffic.closures[0].start_s: 1e+06 — at or after the end of the run" in err and "never applies" in err
    ok = _scenario(tmp_path / "ok", {"traffic": {"closures": [{"link": "n0_0>n1_0", "start_s": 599}]}})
    assert main(["validate", str(ok)]) == 0 and "never applies" not in capsys.readouterr().err


def test_yaml_reader_errors_are_one_line(tmp_path, capsys):
    """A NUL byte in the file gave a two-line message (the reader's 'in "<unicode string>"' on a line of its own)."""
    p = tmp_path / "s.yaml"
    p.write_bytes(b"name: a\x00\n")
    assert main(["validate", str(p)]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "(YAML)" in err and "not valid YAML" in err, err
