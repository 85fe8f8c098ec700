"""The run service (twin/run.py): each variant on its own city, one place for checks, missing domains are
validation errors, results merge without silent overwrites, one atomic writer."""
from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
import xarray as xr
import yaml

from twin.cli import main

TINY = {"name": "tiny_run", "seed": 7, "city": {"source": "grid", "grid": {"nx": 4, "ny": 4, "spacing_m": 200}},
        "time": {"duration_s": 300, "record_interval_s": 300}, "demand": {"trips": 60}, "traffic": {},
        "outputs": {"report": False}}


def _write(tmp_path: Path, doc: dict, name: str = "s.yaml") -> Path:
    p = tmp_path / name
    p.write_text(yaml.safe_dump(doc), encoding="utf-8")
    return p


def test_cli_run_gives_each_variant_its_own_city(tmp_path, capsys):
    """A variant that changes city: runs on its own 6x6 grid (120 links), the baseline on its 4x4 (48)."""
    doc = {**TINY, "variants": {"big": {"city": {"grid": {"nx": 6, "ny": 6}}}}}
    path = _write(tmp_path, doc)
    assert main(["run", str(path), "--out", str(tmp_path / "out"), "--quiet", "--no-report"]) == 0
    with xr.open_dataset(tmp_path / "out" / "tiny_run" / "tiny_run.nc") as ds:
        links = {str(v): int(np.isfinite(ds["link_length"].sel(variant=v).values).sum()) for v in ds["variant"].values}
        nodes = {str(v): int(np.isfinite(ds["node_x"].sel(variant=v).values).sum()) for v in ds["variant"].values}
    assert links == {"baseline": 48, "big": 120}
    assert nodes == {"baseline": 16, "big": 36}


def test_variant_city_errors_are_checked_on_the_variants_city(tmp_path, capsys):
    """A station on a node that exists only in the baseline's city is an error of the variant, exit 2."""
    doc = {**TINY, "city": {"source": "grid", "grid": {"nx": 6, "ny": 6}},
           "ev": {"trips": 5, "stations": [{"node": "n5_5", "plugs": 1}]},
           "variants": {"small": {"city": {"grid": {"nx": 3, "ny": 3}}}}}
    path = _write(tmp_path, doc)
    assert main(["validate", str(path)]) == 2
    err = capsys.readouterr().err
    assert "variants.small.ev.stations[0].node" in err and "n5_5" in err
    assert "baseline" not in err.split("variants.small")[0].split(str(path))[-1]  # the baseline is fine


@pytest.mark.parametrize("domain,section", [("ev", {"trips": 5}), ("emergency", {"generate": False})])
def test_domain_without_traffic_is_a_validation_error(tmp_path, capsys, domain, section):
    """EV and emergency need traffic: with traffic off, validate and run exit 2 naming the key; nothing written."""
    doc = {**TINY, "traffic": {"enabled": False}, domain: section}
    path = _write(tmp_path, doc)
    assert main(["validate", str(path)]) == 2
    assert f"{domain}: needs traffic, but traffic.enabled is false" in capsys.readouterr().err
    out = tmp_path / "out"
    assert main(["run", str(path), "--out", str(out), "--quiet"]) == 2
    assert f"{domain}: needs traffic, but traffic.enabled is false" in capsys.readouterr().err
    assert not out.exists()


def test_engine_refuses_a_domain_without_its_dependency():
    """The engine itself checks ``requires`` (scripts that skip validation get the same message)."""
    from agents.ev import EVConfig, EVDomain
    from networks.synthetic import grid
    from twin.context import DomainContext
    from twin.engine import Engine, MissingDomainError

    with pytest.raises(MissingDomainError, match="ev: needs traffic, but traffic.enabled is false"):
        Engine(DomainContext.for_city(grid(3, 3), 600.0), {"ev": EVDomain(EVConfig(trips=1))})


def test_results_merge_refuses_two_domains_writing_one_variable():
    """Two domains producing the same variable (or disagreeing coordinates) raise, naming both domains."""
    from twin.results import ResultsConflictError, merge_domain_results

    a = xr.Dataset({"x_total": ((), 1.0)})
    b = xr.Dataset({"x_total": ((), 2.0)})
    with pytest.raises(ResultsConflictError, match="'x_total' comes from both 'alpha' and 'beta'"):
        merge_domain_results({"alpha": a, "beta": b})
    c = xr.Dataset({"a_v": ("k", [1.0, 2.0])}, coords={"k": [0, 1], "k_name": ("k", ["p", "q"])})
    d = xr.Dataset({"b_v": ("k", [3.0, 4.0])}, coords={"k": [0, 1], "k_name": ("k", ["p", "z"])})
    with pytest.raises(ResultsConflictError, match="disagree"):
        merge_domain_results({"alpha": c, "beta": d})
    ok = merge_domain_results({"alpha": a, "beta": xr.Dataset({"y_total": ((), 3.0)})})
    assert float(ok["x_total"]) == 1.0 and float(ok["y_total"]) == 3.0


def test_engine_merge_conflict_between_domains_raises():
    """On the engine: a domain whose finalize repeats the traffic stand-in's variable is refused, not dropped."""
    from agents.traffic.standins import FixedTimeTraffic
    from networks.synthetic import grid
    from twin.context import DomainContext
    from twin.domain import Domain
    from twin.engine import Engine
    from twin.results import ResultsConflictError

    class Copycat(Domain):
        name = "copycat"

        def finalize(self, t_end_s):
            return xr.Dataset({"link_length": (("link",), np.zeros(4))})

    eng = Engine(DomainContext.for_city(grid(2, 2), 60.0, 60.0), {"traffic": FixedTimeTraffic(1.0),
                                                                   "copycat": Copycat(None)})
    with pytest.raises(ResultsConflictError, match="'link_length' comes from both 'traffic' and 'copycat'"):
        eng.run()


def test_domains_receive_the_context_not_the_engine():
    """setup() gets the DomainContext: its clock, city, traffic, named RNG streams and times."""
    from agents.traffic.standins import FixedTimeTraffic
    from networks.synthetic import grid
    from twin.context import DomainContext
    from twin.domain import Domain
    from twin.engine import Engine

    seen = {}

    class Probe(Domain):
        name = "probe"

        def setup(self, twin):
            seen["ctx"] = twin
            seen["traffic"] = twin.traffic

    traffic = FixedTimeTraffic(1.0)
    ctx = DomainContext.for_city(grid(3, 3), 120.0, 60.0, seed=5)
    Engine(ctx, {"traffic": traffic, "probe": Probe(None)}).run()
    assert seen["ctx"] is ctx and seen["traffic"] is traffic
    assert list(ctx.record_times) == [60.0, 120.0] and ctx.env.now >= 120.0


def test_atomic_writer_leaves_readable_files_and_no_temp(tmp_path):
    """Results, JSON and text go through one writer: mode 0644 whatever the umask, no temp file left."""
    from twin.atomic import write_json_atomic, write_text_atomic
    from twin.results import write_atomic

    old = os.umask(0o077)
    try:
        paths = [write_json_atomic({"a": 1}, tmp_path / "x.json"), write_text_atomic("hi", tmp_path / "x.txt"),
                 write_atomic(xr.Dataset({"v": ((), 1.0)}), tmp_path / "x.nc")]
    finally:
        os.umask(old)
    for p in paths:
        assert (p.stat().st_mode & 0o777) == 0o644, p
    assert json.loads((tmp_path / "x.json").read_text()) == {"a": 1}
    assert sorted(f.name for f in tmp_path.iterdir()) == ["x.json", "x.nc", "x.txt"]
    with pytest.raises(ZeroDivisionError):  # a failing writer leaves the target untouched and no temp file
        from twin.atomic import write_atomic_with

        write_atomic_with(tmp_path / "x.txt", lambda tmp: 1 / 0)
    assert (tmp_path / "x.txt").read_text() == "hi" and len(list(tmp_path.iterdir())) == 3


def test_package_exports_the_run_service_not_a_missing_module():
    """``twin.run_variants`` is the run service; the old lazy ``twin.api`` export is gone."""
    import twin
    import twin.run

    assert twin.run_variants is twin.run.run_variants
    assert "run" not in twin.__all__
