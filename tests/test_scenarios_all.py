"""Every scenario file under scenarios/ (recursively) validates, and runs shortened through `run_scenario.py run`.

Full scenarios go through the CLI's `validate`; section fragments (a file without ``name``/``city`` whose first
comment names the scenario it merges into, e.g. scenarios/examples/ev.yaml) are validated merged into that
scenario (with the fragment's own variants). The shortened run caps the simulated time at SHORT_S, scales demand
by DEMAND_SCALE (every variant too) and runs the baseline and every variant with the same CLI command a user
types, into a temporary folder.
"""
from __future__ import annotations

import re
from pathlib import Path

import pytest
import xarray as xr
import yaml

from twin.cli import main
from twin.run import scenario_errors
from twin.scenario import deep_merge, load_document, resolve_variants

ROOT = Path(__file__).resolve().parents[1]
SCENARIOS = sorted((ROOT / "scenarios").rglob("*.yaml"))
SHORT_S = 300.0  # simulated seconds of a shortened run
DEMAND_SCALE = 0.05  # share of the demand kept


def _is_fragment(doc: dict) -> bool:
    return "name" not in doc and "city" not in doc


def _base_of(path: Path) -> Path:
    """The scenario a fragment merges into, named in its first comment lines (``scenarios/x.yaml``)."""
    head = "".join(path.read_text(encoding="utf-8").splitlines(keepends=True)[:3])
    m = re.search(r"scenarios/[\w/.-]+\.yaml", head)
    assert m, f"{path.relative_to(ROOT)}: a section fragment must name its scenario (scenarios/....yaml) at the top"
    return ROOT / m.group(0)


def _full_doc(path: Path) -> tuple[dict, Path]:
    """The scenario document (a fragment merged into its base) and the file its relative paths start from."""
    doc = load_document(path)
    if not _is_fragment(doc):
        return doc, path
    base = _base_of(path)
    merged = deep_merge(load_document(base), doc)
    merged["variants"] = doc.get("variants") or {}  # the fragment's own variants (the base's run with the base)
    return merged, base


def _ids(paths):
    return [str(p.relative_to(ROOT / "scenarios")) for p in paths]


def test_the_glob_finds_the_examples():
    """scenarios/examples/*.yaml are part of the set (recursive glob), as are the top-level scenarios."""
    names = set(_ids(SCENARIOS))
    assert {"bad_hersfeld.yaml", "bologna.yaml"} <= names
    assert any(n.startswith("examples/") for n in names)


@pytest.mark.parametrize("path", SCENARIOS, ids=_ids(SCENARIOS))
def test_scenario_file_is_valid(path, capsys):
    """`run_scenario.py validate` accepts every scenario (fragments: merged into the scenario they name)."""
    doc, origin = _full_doc(path)
    if origin == path:
        assert main(["validate", str(path)]) == 0, capsys.readouterr().err
    else:
        variants = resolve_variants(doc, origin)  # raises ScenarioError listing every problem
        assert scenario_errors(variants, origin.parent) == []  # the checks `validate` makes against the city
        assert "baseline" in variants
        frag = load_document(path)
        for key in frag.get("variants", {}):
            assert key in variants
        for section in (k for k in frag if k != "variants"):
            assert section in variants["baseline"].domain_configs or hasattr(variants["baseline"], section)


def _absolute_paths(node, base_dir: Path):
    """Data paths in a scenario document made absolute (the shortened copy lives in a temporary folder)."""
    if isinstance(node, dict):
        return {k: _absolute_paths(v, base_dir) for k, v in node.items()}
    if isinstance(node, list):
        return [_absolute_paths(v, base_dir) for v in node]
    if isinstance(node, str) and ("/" in node or "." in node):
        p = (base_dir / node).resolve()
        if p.is_file():
            return str(p)
    return node


def _shorten(doc: dict) -> dict:
    """Cap the run at SHORT_S and scale the demand by DEMAND_SCALE, in the baseline and every variant."""
    doc = dict(doc)
    t = dict(doc.get("time") or {})
    t["duration_s"] = min(float(t.get("duration_s", 3600.0)), SHORT_S)
    t["record_interval_s"] = min(float(t.get("record_interval_s", 300.0)), t["duration_s"] / 2)
    doc["time"] = t
    d = dict(doc.get("demand") or {})
    d["scale"] = float(d.get("scale", 1.0)) * DEMAND_SCALE
    doc["demand"] = d
    variants = {}
    for name, over in (doc.get("variants") or {}).items():
        over = dict(over)
        if isinstance(over.get("time"), dict):
            over["time"] = {**over["time"], **{k: v for k, v in t.items() if k in over["time"]}}
        if isinstance(over.get("demand"), dict) and "scale" in over["demand"]:
            over["demand"] = {**over["demand"], "scale": float(over["demand"]["scale"]) * DEMAND_SCALE}
        variants[name] = over
    if variants:
        doc["variants"] = variants
    return doc


@pytest.fixture(scope="module")
def short_dir(tmp_path_factory):
    """One folder for the shortened copies: with absolute data paths, scenarios of one city share its build."""
    return tmp_path_factory.mktemp("short")


@pytest.mark.parametrize("path", SCENARIOS, ids=_ids(SCENARIOS))
def test_scenario_runs_shortened_through_the_cli(path, short_dir, tmp_path, capsys):
    """The shortened scenario runs (baseline and every variant) with `run_scenario.py run`; results are complete."""
    doc, origin = _full_doc(path)
    short = _shorten(_absolute_paths(doc, origin.parent))
    f = short_dir / f"{path.stem}_{doc['name']}.yaml"
    f.write_text(yaml.safe_dump(short, sort_keys=False))
    rc = main(["run", str(f), "--out", str(tmp_path / "out"), "--quiet", "--no-report"])
    err = capsys.readouterr().err
    assert rc == 0, err
    ds = xr.open_dataset(tmp_path / "out" / doc["name"] / f"{doc['name']}.nc")
    variants = ["baseline", *(doc.get("variants") or {})]
    if "variant" in ds.dims:
        assert [str(v) for v in ds["variant"].values] == variants
    else:
        assert variants == ["baseline"]
    assert int(ds.attrs["complete"]) == 1  # every run reached the end
    if "net_completed" in ds and float(doc.get("demand", {}).get("trips", 1) or 0) > 0:  # traffic moved cars
        assert float(ds["net_completed"].max()) > 0
