"""Sweep arguments that crashed or exhausted the machine before anything ran (session 8 audit): YAML tags in
--param, plans of millions of parameter sets. Exit 2 at once, one line, nothing written."""
from __future__ import annotations


import pytest

from conftest import write_scenario as _scenario, file_tree as _tree

from twin.cli import main


# --------------------------------------------------------------------- sweeps
@pytest.mark.parametrize("args,words", [
    (["--param", "demand=!!python/object/apply:os.system ['true']"], "not plain YAML values"),
    (["--param", "demand.scale=[&a [1,1], *a]"], "not plain YAML values"),
    (["--param", "demand.scale=nan,1"], "'nan' — values must be finite numbers"),
    (["--param", "demand.scale=1,.inf"], "inf — values must be finite numbers"),
    (["--param", "demand.scale=0..1:10000", "--param", "traffic.reroute_share=0..1:10000"],
     "100,000,000 parameter sets"),
    (["--param", "demand.scale=0.5..1.5", "--design", "latin", "--samples", "1000000"], "at most 10,000 parameter sets"),
    (["--param", "demand.scale=0.5,1", "--seeds", "60000"], "120,000 runs"),
])
def test_sweep_refuses_tags_and_oversized_plans_fast(tmp_path, capsys, args, words):
    """A YAML tag in --param crashed with a traceback; a 10,000 x 10,000 grid took 2.9 GB within a minute and
    1,000,000 latin samples ~50 min of validation before anything ran. Now: exit 2 at once, nothing written."""
    import time

    path = _scenario(tmp_path / "scen", {})
    before = _tree(tmp_path)
    t0 = time.perf_counter()
    rc = main(["sweep", str(path), "--quiet", "--workers", "0", "--out", str(tmp_path / "b"), *args])
    assert rc == 2 and time.perf_counter() - t0 < 30.0  # the refused plans took minutes and GBs; imports on a loaded CI box take seconds
    err = capsys.readouterr().err
    assert words in err and "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    assert _tree(tmp_path) == before


def test_sweep_into_a_file_is_bad_input(tmp_path, capsys):
    """`sweep --out FILE` exited 1 with '[Errno 20] Not a directory' after planning; now exit 2 naming the folder,
    as `run --out FILE` does, and the file is untouched."""
    path = _scenario(tmp_path / "scen", {})
    target = tmp_path / "afile"
    target.write_text("x")
    rc = main(["sweep", str(path), "--quiet", "--workers", "0", "--out", str(target), "--param", "demand.scale=1"])
    err = capsys.readouterr().err
    assert rc == 2 and "is a file, not a folder" in err and "Traceback" not in err, err
    assert target.read_text() == "x"


@pytest.mark.parametrize("address", ["nope", "$(touch x)", "file:///etc/passwd", "tcp://host"])
def test_malformed_dask_address_is_bad_input(tmp_path, capsys, address):
    """A malformed --dask address (or executor.dask in the file) crashed with a ValueError traceback (exit 1)
    after creating the batch folder; now exit 2, one line, nothing written. Reachability is not checked here."""
    path = _scenario(tmp_path / "scen", {})
    before = _tree(tmp_path)
    rc = main(["sweep", str(path), "--quiet", "--out", str(tmp_path / "b"), "--param", "demand.scale=1",
               "--dask", address])
    err = capsys.readouterr().err
    assert rc == 2 and "scheme://host:port" in err and "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert _tree(tmp_path) == before
    doc = _scenario(tmp_path / "scen2", {"batch": {"executor": {"dask": address}, "params": {"demand.scale": [1]}}})
    assert main(["sweep", str(doc), "--quiet", "--out", str(tmp_path / "b2")]) == 2
    assert "batch.executor.dask" in capsys.readouterr().err and not (tmp_path / "b2").exists()
