"""The planning commands print sites and a ready variant, and that variant validates and runs."""
from __future__ import annotations

import textwrap
from pathlib import Path

import yaml

from twin.cli import main
from twin.scenario import load_document, resolve_variants

ROOT = Path(__file__).resolve().parent.parent

EV_TOWN = """\
name: ev_town
seed: 4
city: {source: grid, grid: {nx: 7, ny: 7, spacing_m: 300}, zone_cell_m: 600}
time: {duration_s: 3600, step_s: 1, record_interval_s: 600}
demand: {trips: 1500}
traffic: {backend: freeflow}
ev:
  share: 0.6
  charge_below_soc: 0.75
  target_soc: 0.95
  patience_s: 120
  stations: [{id: corner, node: n0_0, plugs: 1, power_kw: 11}]
"""


def _yaml_block(out: str) -> dict:
    return yaml.safe_load(out.split("add this to the scenario's variants:")[1])


def test_suggest_chargers_proposes_sites_that_run_as_a_variant(tmp_path, capsys):
    path = tmp_path / "ev_town.yaml"
    path.write_text(textwrap.dedent(EV_TOWN))
    assert main(["suggest-chargers", str(path), "--add", "2", "--quiet"]) == 0
    block = _yaml_block(capsys.readouterr().out)
    extra = block["variants"]["suggested_chargers"]["ev"]["extra_stations"]
    assert 1 <= len(extra) <= 2 and all(s["node"] != "n0_0" for s in extra)
    doc = load_document(path)
    doc["variants"] = block["variants"]
    assert "suggested_chargers" in resolve_variants(doc, path)


def test_suggest_stations_prints_a_valid_variant(capsys):
    path = ROOT / "scenarios" / "examples" / "emergency.yaml"
    assert main(["suggest-stations", str(path), "--add", "1"]) == 0
    block = _yaml_block(capsys.readouterr().out)
    doc = load_document(path)
    doc["variants"] = block["variants"]
    sc = resolve_variants(doc, path)["suggested_stations"]
    assert len(sc.domain_configs["emergency"].extra_stations) == 1


def test_planning_commands_reject_bad_input(tmp_path, capsys):
    path = tmp_path / "no_ev.yaml"
    path.write_text(textwrap.dedent(EV_TOWN).split("ev:")[0])
    assert main(["suggest-chargers", str(path), "--add", "1"]) == 2
    assert "ev: missing" in capsys.readouterr().err
