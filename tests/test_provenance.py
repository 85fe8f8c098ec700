"""Provenance = what ran: the resolved configuration (every default), CLI overrides, code version, data digests;
the scenario hash and the batch cache key come from them."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import xarray as xr
import yaml

from twin.scenario import PROJECT_ROOT, load_scenario, resolve_variants

BASE = {"name": "prov", "seed": 3, "city": {"source": "grid", "grid": {"nx": 3, "ny": 3}},
        "time": {"duration_s": 300, "record_interval_s": 300}, "demand": {"trips": 20},
        "outputs": {"report": False}}


def _sc(tmp_path: Path, **sections):
    return resolve_variants({**BASE, **sections}, tmp_path / "s.yaml")["baseline"]


def _hash(tmp_path: Path, **sections) -> str:
    from twin.provenance import run_fingerprint

    return run_fingerprint(_sc(tmp_path, **sections), tmp_path)[0]


def test_equal_resolved_configurations_hash_the_same(tmp_path):
    """``traffic: {}``, no traffic section and ``traffic: {speed_scale: <default>}`` are one configuration;
    a different speed scale, or a description-only change, behave as expected."""
    from agents.traffic.config import TrafficConfig

    default = TrafficConfig().speed_scale
    h = _hash(tmp_path, traffic={})
    assert _hash(tmp_path) == h
    assert _hash(tmp_path, traffic={"speed_scale": default}) == h
    assert _hash(tmp_path, traffic={"speed_scale": (default or 1.0) * 0.5}) != h  # null default: automatic
    assert _hash(tmp_path, traffic={}, description="words only") == h  # describes, does not change the run
    assert _hash(tmp_path, traffic={"backend": "freeflow"}) != h


def test_resolved_config_holds_every_default_and_revalidates(tmp_path):
    """The recorded configuration lists defaults explicitly and validates to the same configuration."""
    from twin.provenance import resolved_config

    sc = _sc(tmp_path, traffic={})
    cfg = resolved_config(sc)
    assert cfg["traffic"]["speed_scale"] == sc.domain_configs["traffic"].speed_scale
    assert cfg["traffic"]["backend"] == "meso" and cfg["demand"]["scale"] == 1.0
    again = resolve_variants(cfg, tmp_path / "s.yaml")["baseline"]
    assert resolved_config(again) == cfg
    off = _sc(tmp_path, traffic={"enabled": False})
    assert resolved_config(off)["traffic"] == {"enabled": False}


def _whole_scenarios() -> list[Path]:
    """Scenario files that are whole scenarios (examples/ also holds section fragments to merge)."""
    out = []
    for p in sorted((PROJECT_ROOT / "scenarios").rglob("*.yaml")):
        doc = yaml.safe_load(p.read_text(encoding="utf-8"))
        if isinstance(doc, dict) and "name" in doc and "city" in doc:
            out.append(p.relative_to(PROJECT_ROOT))
    return out


@pytest.mark.parametrize("path", _whole_scenarios(), ids=str)
def test_every_scenario_file_round_trips_through_its_resolved_config(path):
    """For each shipped scenario and variant, the recorded configuration is itself a valid scenario that
    resolves to the same configuration (so a what-if can run it again)."""
    from twin.provenance import resolved_config

    full = PROJECT_ROOT / path
    for name, sc in load_scenario(full).items():
        cfg = resolved_config(sc)
        again = resolve_variants(json.loads(json.dumps(cfg)), full)["baseline"]
        assert resolved_config(again) == cfg, name


def test_data_file_digest_enters_the_hash(tmp_path):
    """Changing the bytes of a data file the scenario names changes the hash (same configuration text)."""
    from twin.provenance import run_fingerprint

    trips = tmp_path / "trips.csv"
    trips.write_text("depart_s,origin,destination\n0,n0_0,n2_2\n")
    sc = _sc(tmp_path, demand={"trips_file": "trips.csv"})
    h1, _, _, digests = run_fingerprint(sc, tmp_path)
    assert list(digests) == ["trips.csv"] and len(digests["trips.csv"]) == 64
    trips.write_text("depart_s,origin,destination\n5,n0_0,n2_2\n")
    h2, _, _, _ = run_fingerprint(sc, tmp_path)
    assert h1 != h2


def test_code_version_enters_the_hash_and_never_needs_git(tmp_path, monkeypatch):
    """A different code version gives another hash; without git the version is still recorded."""
    import subprocess

    from twin import provenance

    uncached = provenance.code_version.__wrapped__
    sc = _sc(tmp_path)
    h = provenance.run_fingerprint(sc, tmp_path)[0]
    monkeypatch.setattr(provenance, "code_version", lambda: {"citytwin": "9.9", "git_commit": "abc", "git_dirty": ""})
    assert provenance.run_fingerprint(sc, tmp_path)[0] != h

    def no_git(*a, **k):
        raise FileNotFoundError("git")

    monkeypatch.setattr(subprocess, "run", no_git)
    v = uncached()
    assert v["git_commit"] == "" and v["citytwin"]


def test_batch_reruns_what_changed(tmp_path, monkeypatch):
    """The batch cache key follows the run's fingerprint: equal configurations share a key, a code change
    gives new keys (old run files are not reused)."""
    from twin import provenance
    from twin.batch import plan_batch

    path = tmp_path / "b.yaml"
    path.write_text(yaml.safe_dump({**BASE, "traffic": {}}))
    k1 = [t.key for t in plan_batch(str(path), seeds=2, out=tmp_path / "o").tasks]
    path.write_text(yaml.safe_dump({**BASE, "traffic": {"speed_scale": _default_speed()}}))
    assert [t.key for t in plan_batch(str(path), seeds=2, out=tmp_path / "o").tasks] == k1
    monkeypatch.setattr(provenance, "code_version", lambda: {"citytwin": "9.9", "git_commit": "x", "git_dirty": ""})
    k3 = [t.key for t in plan_batch(str(path), seeds=2, out=tmp_path / "o").tasks]
    assert set(k3).isdisjoint(k1)


def _default_speed() -> float:
    from agents.traffic.config import TrafficConfig

    return TrafficConfig().speed_scale


def test_results_record_overrides_and_what_ran(tmp_path):
    """``--backend freeflow`` is in ``overrides``, in the resolved configuration and in the hash; the recorded
    configuration is what ``resolved_config(results, variant)`` returns for a what-if."""
    from twin import run as svc

    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump({**BASE, "traffic": {}, "variants": {"more": {"demand": {"scale": 2}}}}))
    out = svc.run_variants(path, out=tmp_path / "o", overrides=svc.RunOverrides(backend="freeflow"))
    with xr.open_dataset(out.path) as ds:
        attrs = dict(ds.attrs)
        hashes = [str(x) for x in ds["run_scenario_hash"].values]
    assert json.loads(attrs["overrides"]) == {"backend": "freeflow"}
    assert attrs["git_commit"] or not (PROJECT_ROOT / ".git").exists()
    assert attrs["citytwin_version"]
    cfg = svc.resolved_config(out.path, "more")
    assert cfg["traffic"]["backend"] == "freeflow" and cfg["demand"]["scale"] == 2
    assert svc.resolved_config(out.path, "baseline")["demand"]["scale"] == 1
    sc = resolve_variants(cfg, path)["baseline"]
    from twin.provenance import run_fingerprint

    assert run_fingerprint(sc, tmp_path)[0] == hashes[1]
    with pytest.raises(KeyError):
        svc.resolved_config(out.path, "nope")
