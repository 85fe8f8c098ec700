"""Scenario values that were accepted though they could not work (session 8 audit): a results folder with a control
character, a YAML reader error; a closure starting after the run is named over two lines. Exit 2, one line, nothing written."""
from __future__ import annotations

from conftest import write_scenario as _scenario

from twin.cli import main


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
