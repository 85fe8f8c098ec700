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
