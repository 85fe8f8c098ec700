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
