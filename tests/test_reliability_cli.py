"""Command-line arguments and scenario values are checked like scenario keys: exit 2 and one line naming the
argument or key and what is allowed; duplicate keys, .nan/.inf, huge integers and seeds are refused (issue 15)."""
from __future__ import annotations

import pytest
import yaml

from twin.cli import main

TINY = {"name": "tiny", "seed": 1, "city": {"source": "grid", "grid": {"nx": 3, "ny": 3}},
        "time": {"duration_s": 600, "record_interval_s": 300}, "outputs": {"report": False}}


@pytest.fixture
def tiny(tmp_path):
    p = tmp_path / "tiny.yaml"
    p.write_text(yaml.safe_dump(TINY))
    return p


@pytest.mark.parametrize("argv,words", [
    (["run", "{f}", "--seed", "-1"], "--seed: -1 — allowed 0 to 9,223,372,036,854,775,807"),
    (["run", "{f}", "--seed", "9" * 5000], "--seed"),
    (["run", "{f}", "--workers", "-1"], "--workers: -1 — allowed 1 to 256"),
    (["run", "{f}", "--replications", "0"], "--replications: 0"),
    (["dashboard", "--port", "99999"], "--port: 99999 — allowed 1 to 65,535"),
    (["sweep", "{f}", "--workers", "-3"], "--workers: -3"),
    (["sweep", "{f}", "--seeds", "abc"], "--seeds: 'abc' — a whole number"),
    (["sweep", "{f}", "--param", "demand.trips=5..1:3"], "demand.trips=5..1:3: range: max (1.0) is below min (5.0)"),
    (["sweep", "{f}", "--param", "demand.trips=1..5:0"], "num: Input should be greater than or equal to 1"),
    (["report", "{f}"], "not a netCDF results file"),
])
def test_bad_arguments_exit_2_with_one_line(tiny, capsys, argv, words):
    argv = [str(tiny) if a == "{f}" else a for a in argv]
    try:
        rc = main(argv)
    except SystemExit as exc:  # argparse's refusal
        rc = exc.code
    err = capsys.readouterr().err
    assert rc == 2, err
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1 and words in lines[0] and "validation error" not in err, err


@pytest.mark.parametrize("text,words", [
    ("name: a\nname: b\ncity: {source: grid}\n", "key 'name' is given twice"),
    ("name: a\ncity: {source: grid, grid: {nx: 3, nx: 4}}\n", "key 'nx' is given twice"),
    ("name: a\ncity: {source: grid}\ndemand: {trips: 5, profile: [[0, .nan], [5, 1]]}\n", "must be finite"),
    ("name: a\ncity: {source: grid}\ndemand: {trips: 5, profile: [[0, .inf]]}\n", "must be finite"),
    ("name: a\ncity: {source: grid}\ndemand: {trips: 5, profile: [[0, 1e400]]}\n",
     "demand.profile[0][1]: inf — must be a finite number"),
    ("name: a\ncity: {source: grid}\ntraffic: {closures: [{link: 'n0_0>n1_0', start_s: .inf}]}\n",
     "must be finite"),
    ("name: a\ncity: {source: grid}\ntraffic: {closures: [{link: 'n0_0>n1_0', start_s: 1e999}]}\n",
     "traffic.closures[0].start_s: inf — must be a finite number"),
    ("name: a\nseed: " + "9" * 5000 + "\ncity: {source: grid}\n", "integer of 5,000 digits"),
    ("name: a\nseed: 9223372036854775808\ncity: {source: grid}\n", "less than or equal to 9223372036854775807"),
    ("name: a\ncity: {source: grid}\ndescription: " + "[" * 3000 + "]" * 3000 + "\n", "nesting deeper"),
    ("name: a\ncity: {source: grid}\nx:\n" + "".join(" " * i + "a:\n" for i in range(1, 400)), "nesting deeper"),
])
def test_scenario_values_yaml_allows_but_a_scenario_never_means(tmp_path, capsys, text, words):
    p = tmp_path / "s.yaml"
    p.write_text(text)
    assert main(["validate", str(p)]) == 2
    err = capsys.readouterr().err
    assert words in err and "Traceback" not in err, err
    assert len(err.strip().splitlines()) == 1, err


def test_estimate_refuses_what_does_not_fit_before_building(tmp_path, capsys, monkeypatch):
    """400 M trips (the old schema maximum, which used 8 GB in 49 s) are refused from the keys, with the figure
    and the key to change; --force skips the guard; the estimate grows with the keys it names."""
    import twin.run as run
    from twin.estimate import estimate
    from twin.scenario import load_scenario

    doc = {**TINY, "demand": {"trips": 20_000_000, "scale": 20}}
    p = tmp_path / "big.yaml"
    p.write_text(yaml.safe_dump(doc))
    monkeypatch.setattr(run, "variant_city", lambda *a: pytest.fail("built a city before refusing"))
    assert main(["validate", str(p)]) == 2
    err = capsys.readouterr().err
    assert "demand.trips: needs about 12" in err and "400,000,000 car trips" in err and "--force" in err
    assert len(err.strip().splitlines()) == 1
    sc = load_scenario(p)["baseline"]
    small = load_scenario(_write(tmp_path, {**TINY, "demand": {"trips": 1000}}))["baseline"]
    assert estimate(sc, tmp_path).memory_bytes > 1000 * estimate(small, tmp_path).memory_bytes / 2


def test_force_skips_the_memory_guard(tmp_path, monkeypatch):
    import twin.estimate as est
    from twin.run import load_variants
    from twin.scenario import ScenarioError

    p = _write(tmp_path, {**TINY, "demand": {"trips": 1000}})
    monkeypatch.setattr(est, "available_memory_bytes", lambda: 1e3)  # a machine with 1 kB free
    with pytest.raises(ScenarioError, match="more than the 0 MB free"):
        load_variants(p)
    assert "baseline" in load_variants(p, force=True)  # --force: no estimate, the normal checks still run


def _write(tmp_path, doc):
    p = tmp_path / f"s{len(list(tmp_path.iterdir()))}.yaml"
    p.write_text(yaml.safe_dump(doc))
    return p
