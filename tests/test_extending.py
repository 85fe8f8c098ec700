"""The open registry and docs/extending.md's example: a fifth domain (parking) and a third back-end, end to end."""
from __future__ import annotations

import tomllib
from importlib.metadata import EntryPoint
from pathlib import Path

import numpy as np
import pytest
import xarray as xr

import twin.registry as reg
from agents.traffic.backend import TrafficAPI
from twin.cli import build_parser, main
from twin.registry import (BACKEND_GROUP, BUILTIN_BACKENDS, BUILTIN_DOMAINS, DOMAIN_GROUP, DomainSpec, RegistryError,
                           domain_names, get_domain_spec, register_domain, register_traffic_backend,
                           traffic_backend_names, unregister_domain, unregister_traffic_backend)
from twin.scenario import ScenarioError, load_scenario

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "docs" / "examples"
SCENARIO = EXAMPLES / "parking.yaml"


@pytest.fixture
def parking(monkeypatch):
    """The example registered as docs/extending.md says (strings: imported only when used), then removed."""
    monkeypatch.syspath_prepend(str(EXAMPLES))
    register_domain("parking_example:DOMAIN", name="parking")
    register_traffic_backend("scaled_freeflow", "parking_example:ScaledFreeFlow")
    yield
    unregister_domain("parking")
    unregister_traffic_backend("scaled_freeflow")


def test_example_runs_through_the_cli_and_answers_its_what_if(parking, tmp_path, capsys):
    """`run_scenario.py run` on the parking example: results hold both domains; physics and the what-if hold."""
    rc = main(["run", str(SCENARIO), "--out", str(tmp_path), "--quiet", "--no-report"])
    out = capsys.readouterr()
    assert rc == 0, out.err
    ds = xr.open_dataset(tmp_path / "parking_example" / "parking_example.nc")
    assert list(ds["variant"].values) == ["baseline", "bigger_market"]
    for v in range(2):  # never more cars parked than spaces; cars that came were parked or turned away
        o = ds["parking_occupied"].isel(variant=v).transpose("time", "lot").values
        s = ds["parking_spaces"].isel(variant=v).values
        assert np.all(o <= s) and np.all(o >= 0)
    away = ds["parking_turned_away"].sel(lot="market").values
    assert away[0] > 0 and away[1] < away[0]  # 40 spaces overflow at 120 cars/h x 1 h; 120 spaces help
    # the traffic results of the example back-end follow the schema, and parking drives are in its trip table
    assert {"trip_origin", "trip_status", "link_length"} <= set(ds.data_vars)
    assert int(ds["trip_kind"].sizes["trip"]) > 200
    # KPIs of the new domain are in the table, with their units
    assert "share of cars (that reached a car park" in out.out and "mean drive to the car park" in out.out


def test_example_backend_passes_the_routing_contract(parking):
    """The third back-end is a TrafficAPI; its drives take the free-flow time at its own (scaled) link times."""
    from twin.engine import CityTwin

    sc = load_scenario(SCENARIO)["baseline"]
    tw = CityTwin(sc, SCENARIO.parent)
    seen = {}

    def proc(t):
        yield t.env.timeout(5.0)
        seen["tt"] = t.traffic.travel_time_s("n0_0", "n5_5")
        res = yield t.traffic.drive("n0_0", "n5_5")
        seen["res"] = res

    setup = tw.setup
    tw.setup = lambda: (setup(), tw.env.process(proc(tw)))
    tw.run()
    assert isinstance(tw.traffic, TrafficAPI)
    ff = tw.city.arrays.fft_s
    route = tw.traffic.route("n0_0", "n5_5")
    assert seen["tt"] == pytest.approx(float((ff[route] / 0.8).sum()))  # speed_scale 0.8: 25% longer
    assert seen["res"].travel_time_s == pytest.approx(seen["tt"])


def test_registered_names_reach_the_schema_and_the_cli(parking):
    """After registering, `parking:` is a scenario section and --backend accepts the new back-end."""
    assert domain_names()[:4] == list(BUILTIN_DOMAINS) and domain_names()[-1] == "parking"
    assert traffic_backend_names()[-1] == "scaled_freeflow"
    parser = build_parser()
    args = parser.parse_args(["run", "x.yaml", "--backend", "scaled_freeflow"])
    assert args.backend == "scaled_freeflow"
    assert get_domain_spec("parking").requires == ("traffic",)


def test_unregistered_names_are_validation_errors(tmp_path, capsys):
    """Without the registration, a parking section and the back-end are errors naming key and choices (exit 2)."""
    text = SCENARIO.read_text().replace("name: parking_example", "name: p")
    bad = tmp_path / "p.yaml"
    bad.write_text(text)
    with pytest.raises(ScenarioError) as err:
        load_scenario(bad)
    msg = str(err.value)
    assert "parking: unknown key; allowed keys:" in msg and "emergency" in msg
    assert "traffic.backend: 'scaled_freeflow'" in msg and "'meso'" in msg
    with pytest.raises(SystemExit):
        build_parser().parse_args(["run", "x.yaml", "--backend", "scaled_freeflow"])
    assert main(["validate", str(bad)]) == 2
    assert not (tmp_path / "results").exists()


def test_bad_section_values_name_the_domain_key(parking, tmp_path):
    """The new domain's config is validated like the built-ins': key path, value, what is allowed."""
    doc = SCENARIO.read_text().replace("spaces: 40}", "spaces: 0}").replace("arrivals_per_hour: 120",
                                                                            "arrivals_per_hour: 120\n  colour: red")
    p = tmp_path / "bad.yaml"
    p.write_text(doc)
    with pytest.raises(ScenarioError) as err:
        load_scenario(p)
    msg = str(err.value)
    assert "parking.lots[0].spaces: 0" in msg and "parking.colour: unknown key" in msg
    p.write_text(SCENARIO.read_text().replace("node: n2_2, spaces: 40", "node: nowhere, spaces: 40"))
    assert main(["validate", str(p)]) == 2


def test_pyproject_entry_points_equal_the_builtin_tables():
    """pyproject.toml registers the built-ins through the same entry points as plug-ins, and nothing else."""
    eps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["entry-points"]
    assert eps[DOMAIN_GROUP] == BUILTIN_DOMAINS
    assert eps[BACKEND_GROUP] == BUILTIN_BACKENDS
    for table in (BUILTIN_DOMAINS, BUILTIN_BACKENDS):  # every target imports
        for target in table.values():
            assert reg._resolve(target) is not None


def test_installed_plugins_are_read_from_entry_points(monkeypatch):
    """A package's entry points add a domain and a back-end; one that overrides a built-in is refused."""
    monkeypatch.syspath_prepend(str(EXAMPLES))
    fake = {DOMAIN_GROUP: [EntryPoint("parking", "parking_example:DOMAIN", DOMAIN_GROUP),
                           EntryPoint("traffic", "agents.traffic:DOMAIN", DOMAIN_GROUP)],  # the built-in itself: fine
            BACKEND_GROUP: [EntryPoint("scaled_freeflow", "parking_example:ScaledFreeFlow", BACKEND_GROUP)]}
    monkeypatch.setattr(reg, "entry_points", lambda group: fake[group])
    try:
        reg.reload_entry_points()
        assert domain_names() == [*BUILTIN_DOMAINS, "parking"]
        assert get_domain_spec("parking").name == "parking"
        assert "scaled_freeflow" in traffic_backend_names()
        fake[BACKEND_GROUP] = [EntryPoint("meso", "somewhere:Else", BACKEND_GROUP)]
        with pytest.raises(RegistryError, match="clashes with the built-in"):
            reg.reload_entry_points()
    finally:
        monkeypatch.undo()
        reg.reload_entry_points()
    assert "parking" not in domain_names()


def test_bad_registrations_are_refused():
    """Names are checked; built-ins and the scenario's own keys cannot be taken; a spec must name itself."""
    from pydantic import BaseModel

    class C(BaseModel):
        pass

    with pytest.raises(RegistryError, match="lower-case"):
        register_domain(DomainSpec("Parking!", C, object))
    with pytest.raises(RegistryError, match="built in"):
        register_domain(DomainSpec("traffic", C, object))
    with pytest.raises(RegistryError, match="scenario key"):
        register_domain(DomainSpec("city", C, object))
    with pytest.raises(RegistryError, match="built in"):
        register_traffic_backend("sumo", object)
    register_domain(DomainSpec("other", C, object), name=None)
    try:
        register_domain("agents.crowd:DOMAIN", name="crowd2")
        with pytest.raises(RegistryError, match="calls itself 'crowd'"):
            get_domain_spec("crowd2")
    finally:
        unregister_domain("other")
        unregister_domain("crowd2")
    with pytest.raises(KeyError, match="registered: traffic, crowd, ev, emergency"):
        get_domain_spec("nothing")


def test_a_missing_required_domain_is_a_validation_error(parking, tmp_path, capsys):
    """The example declares requires=("traffic",): with traffic disabled, validate exits 2 naming the key."""
    p = tmp_path / "no_traffic.yaml"
    p.write_text(SCENARIO.read_text().replace("  backend: scaled_freeflow", "  enabled: false"))
    assert main(["validate", str(p)]) == 2
    err = capsys.readouterr().err
    assert "parking: needs traffic" in err and "traffic.enabled" in err
    assert main(["run", str(p), "--out", str(tmp_path / "out"), "--quiet", "--no-report"]) == 2
    assert not (tmp_path / "out").exists()
