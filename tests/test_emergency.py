"""Emergency domain rules: validation, call sources, dispatch timing, policies, shifts, faults, results schema."""
from __future__ import annotations

import math

import networkx as nx
import numpy as np
import pytest
from pydantic import ValidationError
from scipy import stats

from agents.emergency import DOMAIN
from agents.emergency.config import DEFAULT_HOURLY_PROFILE, EmergencyConfig
from agents.emergency.domain import EmergencyDomain
from agents.emergency.incidents import demand_points, poisson_schedule, read_calls
from agents.traffic.standins import FixedTimeTraffic, FreeFlowTravel
from twin.context import DomainContext
from twin.engine import Engine
from networks.synthetic import grid

H, U, T, S = 60.0, 30.0, 100.0, 600.0  # call handling, turnout, fixed travel, time on scene (s)


def _cfg(**kw) -> EmergencyConfig:
    base = dict(stations_from_osm=False, hospitals_from_osm=False, generate=False, call_handling_s=H,
                turnout_s={"ambulance": U, "fire": U},
                incident_types={"medical": {"on_scene_s": S, "on_scene_dist": "fixed", "transport_prob": 0.0}},
                stations=[{"name": "A", "node": "n0_0", "units": [{"type": "ambulance", "count": 1}]}])
    base.update(kw)
    return EmergencyConfig.model_validate(base)


def _run(tmp_path, city, cfg, calls, traffic=None, duration_s=7200.0, interval_s=600.0, procs=()):
    """Run the domain alone with calls [(time_s, type, node id)] from a CSV file; return (dataset, domain)."""
    (tmp_path / "calls.csv").write_text("time_s,type,node\n" + "".join(f"{t},{k},{n}\n" for t, k, n in calls))
    cfg = cfg.model_copy(update={"calls_file": "calls.csv"})
    dom = EmergencyDomain(cfg)
    twin = Engine(DomainContext.for_city(city, duration_s, interval_s, scenario_dir=tmp_path),
                  {"traffic": traffic or FixedTimeTraffic(T), "emergency": dom})
    for p in procs:
        twin.env.process(p(twin, dom))
    twin.run()
    return dom.finalize(duration_s), dom  # the domain's own variables


# ---- configuration ------------------------------------------------------------------------------
def test_registry_spec_and_strict_bounded_config():
    """The registered spec builds the domain; unknown keys and out-of-range values are rejected."""
    assert DOMAIN.name == "emergency" and DOMAIN.config_model is EmergencyConfig
    assert isinstance(DOMAIN.factory(EmergencyConfig()), EmergencyDomain)
    with pytest.raises(ValidationError, match="extra"):
        EmergencyConfig.model_validate({"polcy": "distance"})
    with pytest.raises(ValidationError):
        EmergencyConfig.model_validate({"speed_factor": 9})
    with pytest.raises(ValidationError):
        EmergencyConfig.model_validate({"stations": [{"name": "no place"}]})
    with pytest.raises(ValidationError, match="bus_kinds.crowd"):
        EmergencyConfig.model_validate({"bus_kinds": {"crowd": "nope"}})


def test_station_on_unknown_node_is_named():
    """city_errors names the key path and the bad node; a missing unit type is reported too."""
    city = grid(3, 3)
    cfg = _cfg(stations=[{"name": "A", "node": "n0_0"}, {"name": "B", "node": "n99"}])
    errs = cfg.city_errors(city)
    assert any(e.startswith("stations[1].node: 'n99' — not a node of the city") for e in errs), errs
    cfg = _cfg(incident_types={"fire": {"units": {"fire": 1}}})
    assert any(e.startswith("incident_types.fire.units.fire: 1") for e in cfg.city_errors(city))
    assert _cfg().city_errors(city) == []


# ---- call sources -------------------------------------------------------------------------------
def test_poisson_calls_follow_rate_and_hour_profile():
    """Counts match rate x days within 4 sd, and calls per hour of day fit the profile (chi-square)."""
    city = grid(4, 4)
    dp = demand_points(city)
    days, rate, start_hour = 100, 60.0, 6.0
    sched = poisson_schedule({"medical": rate}, DEFAULT_HOURLY_PROFILE, dp, days * 86400.0,
                             np.random.default_rng(1), start_hour)
    n = len(sched)
    assert abs(n - rate * days) < 4 * math.sqrt(rate * days)
    assert np.all(np.diff(sched.time_s) >= 0) and sched.time_s.max() < days * 86400.0
    hours = ((start_hour + sched.time_s / 3600.0) % 24).astype(int)
    observed = np.bincount(hours, minlength=24)
    expected = np.asarray(DEFAULT_HOURLY_PROFILE) / sum(DEFAULT_HOURLY_PROFILE) * n
    assert stats.chisquare(observed, expected).pvalue > 1e-3
    assert set(np.unique(sched.node)) <= set(range(city.arrays.n_nodes))


def test_calls_file_errors_name_the_row(tmp_path):
    """A call of an unknown type or at an unknown node is a ValueError naming the CSV row."""
    city = grid(3, 3)
    p = tmp_path / "c.csv"
    p.write_text("time_s,type,node\n10,medical,n1_1\n20,alien,n1_1\n")
    with pytest.raises(ValueError, match="row 3: type 'alien'"):
        read_calls(p, city, {"medical"})
    p.write_text("time,type,node\n00:10:00,medical,n1_1\n00:05,medical,nowhere\n")
    with pytest.raises(ValueError, match="row 3: node 'nowhere'"):
        read_calls(p, city, {"medical"})
    p.write_text("time,type,x,y\n00:10:00,medical,390,10\n00:05,medical,0,0\n")
    sched = read_calls(p, city, {"medical"})
    assert list(sched.time_s) == [300.0, 600.0]
    assert [city.node_ids[i] for i in sched.node] == ["n0_0", "n2_0"]


# ---- dispatch timing ----------------------------------------------------------------------------
def test_queued_call_waits_for_the_unit_and_takes_it_from_the_scene(tmp_path):
    """One unit, two calls: the second waits until the first clears, then goes without turnout."""
    ds, _ = _run(tmp_path, grid(3, 3), _cfg(), [(0, "medical", "n1_1"), (10, "medical", "n2_2")])
    disp, arr, clr = (ds[v].values for v in ("em_dispatch_time", "em_arrival_time", "em_clear_time"))
    assert disp[0] == H and arr[0] == H + U + T and clr[0] == H + U + T + S
    assert disp[1] == clr[0] and arr[1] == clr[0] + T
    assert ds["em_wait_time"].values[1] == pytest.approx(clr[0] - 10 - H)
    assert ds["em_wait_time"].values[0] == 0.0
    assert ds["em_response_time"].values[1] == pytest.approx(arr[1] - 10)
    assert list(ds["em_incident_status"].values) == ["served", "served"]


@pytest.mark.parametrize("redirect", [True, False])
def test_returning_unit_is_redirected_only_when_allowed(tmp_path, redirect):
    """A call during the drive home is taken at once (no turnout) with redirect, else after getting home."""
    cfg = _cfg(redirect_returning=redirect)
    free_at = H + U + T + S
    second = free_at + 10  # the unit is on its way home (home at free_at + T)
    ds, _ = _run(tmp_path, grid(3, 3), cfg, [(0, "medical", "n2_2"), (second, "medical", "n1_2")])
    disp, arr = ds["em_dispatch_time"].values[1], ds["em_arrival_time"].values[1]
    if redirect:
        assert disp == second + H and arr == disp + T
    else:
        assert disp == free_at + T and arr == disp + U + T
    assert ds["em_unit_missions"].values[0] == 2


def test_shift_keeps_calls_waiting_until_the_unit_is_on_duty(tmp_path):
    """A unit on duty 08-20 answers a 01:00 call at 08:00; units on duty follow the shift."""
    cfg = _cfg(stations=[{"name": "A", "node": "n0_0",
                          "units": [{"type": "ambulance", "count": 1, "shift": [8, 20]}]}])
    ds, _ = _run(tmp_path, grid(3, 3), cfg, [(3600, "medical", "n1_1")], duration_s=86400.0, interval_s=3600.0)
    assert ds["em_dispatch_time"].values[0] == 8 * 3600.0
    hours = ds["time"].values / 3600.0
    on = ds["em_units_on_duty"].values
    assert np.all(on[(hours > 8) & (hours < 20)] == 1) and np.all(on[(hours < 8) | (hours > 20)] == 0)
    assert ds["em_unit_duty_time"].values[0] == pytest.approx(12 * 3600.0)


class _SlowAround(FixedTimeTraffic):
    """Fixed-time drives, but links touching one node report a huge congested time."""

    def __init__(self, node: str) -> None:
        super().__init__(T)
        self.slow_node = node

    def setup(self, twin) -> None:
        super().setup(twin)
        a, i = twin.city.arrays, twin.city.node_index(self.slow_node)
        self.fft[(a.link_from == i) | (a.link_to == i)] *= 100.0


@pytest.mark.parametrize("policy,traffic,expect", [
    ("distance", None, "B"), ("station_area", None, "B"), ("congested", None, "B"),
    ("congested", "slow", "A"), ("distance", "slow", "B"), ("station_area", "slow", "B")])
def test_policies_pick_the_expected_station(tmp_path, policy, traffic, expect):
    """Nearest by distance/area is B; with B's roads jammed only the congested policy sends A."""
    cfg = _cfg(policy=policy, stations=[{"name": "A", "node": "n0_0", "units": [{"type": "ambulance"}]},
                                        {"name": "B", "node": "n8_0", "units": [{"type": "ambulance"}]}])
    ds, _ = _run(tmp_path, grid(9, 1), cfg, [(0, "medical", "n6_0")],
                 traffic=_SlowAround("n8_0") if traffic else None)
    sent = ds["unit"].values[ds["em_unit_missions"].values == 1]
    assert [u.split("/")[0] for u in sent] == [expect]


# ---- faults ---------------------------------------------------------------------------------------
def test_unreachable_incident_is_recorded_not_a_crash(tmp_path):
    """An incident on a node no unit can reach is 'unreachable' and counts against the target."""
    city = grid(3, 3)
    city.G.add_node("island", x=900.0, y=900.0, lon=np.nan, lat=np.nan)
    city.G.add_edge("island", "n2_2", id="island>n2_2", length_m=100.0, lanes=1, speed_mps=10.0,
                    capacity_vph=900.0, road_class="residential")
    city.invalidate()
    ds, dom = _run(tmp_path, city, _cfg(), [(0, "medical", "island"), (5, "medical", "n2_2")])
    assert list(ds["em_incident_status"].values) == ["unreachable", "served"]
    assert ds["em_within_target"].values[0] == 0.0 and math.isnan(ds["em_response_time"].values[0])
    assert dom.kpis()["unreachable"].value == 1.0
    assert ds["em_dispatch_time"].values[1] == 5 + H  # the unit was not tied up by the unreachable call


# ---- other domains --------------------------------------------------------------------------------
def test_bus_incidents_and_crash_closure(tmp_path):
    """A crowd alert becomes a medical call; a crash closes its link for its duration, then reopens it."""
    seen = {}

    def publisher(twin, dom):
        yield twin.env.timeout(100)
        twin.bus.publish("incident", {"kind": "crowd", "node": "n1_1", "time_s": 100.0, "source": "crowd"})
        twin.bus.publish("incident", {"kind": "meteor", "node": "n1_1", "source": "sky"})
        twin.bus.publish("incident", {"kind": "crash", "link": "n0_1>n1_1", "duration_s": 600.0,
                                      "capacity_factor": 0.0, "source": "traffic"})
        li = twin.city.link_index("n0_1>n1_1")
        yield twin.env.timeout(300)
        seen["during"] = twin.traffic.link_travel_times_s()[li]
        yield twin.env.timeout(600)
        seen["after"] = twin.traffic.link_travel_times_s()[li]

    cfg = _cfg(incident_types={"medical": {"on_scene_s": S, "on_scene_dist": "fixed"},
                               "traffic_accident": {"on_scene_s": S, "on_scene_dist": "fixed"}})
    ds, dom = _run(tmp_path, grid(3, 3), cfg, [], procs=[publisher])
    assert list(ds["em_incident_source"].values) == ["bus:crowd", "bus:crash"]
    assert list(ds["em_incident_type"].values) == ["medical", "traffic_accident"]
    assert dom.bus_ignored == 1
    assert seen["during"] == np.inf and np.isfinite(seen["after"])


# ---- results ------------------------------------------------------------------------------------
def test_results_schema_and_coverage_against_networkx(tmp_path):
    """Every variable has units and long_name; coverage equals the networkx share within the budget."""
    city = grid(8, 8, 400.0)
    cfg = _cfg(generate=True, incident_types={"medical": {"rate_per_day": 600.0, "transport_prob": 0.5}},
               hospitals=[{"name": "H", "x": 1500, "y": 1500}], coverage_target_s=300.0)
    ds, dom = _run(tmp_path, city, cfg, [], duration_s=6 * 3600.0)
    assert set(ds.dims) <= {"incident", "unit", "em_station", "em_hospital", "zone", "time"}
    for name, var in ds.variables.items():
        assert "units" in var.attrs and "long_name" in var.attrs, name
        assert name in ds.dims or name.startswith("em_"), name
    assert ds.sizes["incident"] > 20 and (ds["em_incident_hospital"].values == 0).any()
    ok = ds["em_incident_status"].values == "served"
    assert np.all(ds["em_arrival_time"].values[ok] >= ds["em_dispatch_time"].values[ok] + T)
    clear = ds["em_clear_time"].values
    assert np.all(clear[ok & np.isfinite(clear)] >= ds["em_arrival_time"].values[ok & np.isfinite(clear)])
    util = ds["em_unit_utilisation"].values
    assert np.all((util >= 0) & (util <= 1))
    budget = cfg.coverage_target_s - H - U
    w = {(u, v): min(d["length_m"] / d["speed_mps"] for d in dd.values()) / cfg.speed_factor
         for u, v, dd in ((u, v, city.G.get_edge_data(u, v)) for u, v in city.G.edges())}
    dist = nx.single_source_dijkstra_path_length(nx.DiGraph(city.G), "n0_0", weight=lambda u, v, d: w[(u, v)])
    share = sum(t <= budget for t in dist.values()) / city.G.number_of_nodes()
    assert 0 < share < 1
    assert ds["em_coverage"].values == pytest.approx(np.full(ds.sizes["time"], share))
    k = dom.kpis()
    p90 = k["response_p90_s"].value  # NaN when too many calls are still waiting (censored): unknown
    assert (math.isnan(p90) or k["response_median_s"].value <= p90) and 0 <= k["within_target"].value <= 1


def test_free_flow_stand_in_units_drive_free_flow_shortest_paths(tmp_path):
    """On the free-flow stand-in, arrival = call handling + turnout + networkx free-flow time / speed factor."""
    city = grid(5, 5, 250.0)
    cfg = _cfg()
    (tmp_path / "calls.csv").write_text("time_s,type,node\n0,medical,n4_3\n")
    dom = EmergencyDomain(cfg.model_copy(update={"calls_file": "calls.csv"}))
    ds = Engine(DomainContext.for_city(city, 3600.0, 600.0, scenario_dir=tmp_path),
                {"traffic": FreeFlowTravel(), "emergency": dom}).run()
    fft = nx.shortest_path_length(nx.DiGraph(city.G), "n0_0", "n4_3",
                                  weight=lambda u, v, d: d["length_m"] / d["speed_mps"])
    assert ds["em_arrival_time"].values[0] == pytest.approx(H + U + fft / cfg.speed_factor)


@pytest.mark.parametrize("preempt", [True, False])
def test_urgent_call_diverts_a_unit_from_a_less_urgent_one(tmp_path, preempt):
    """With preempt, a priority-1 call takes the unit driving to a priority-2 call, which waits its turn."""
    types = {"minor": {"priority": 2, "on_scene_s": S, "on_scene_dist": "fixed"},
             "medical": {"priority": 1, "on_scene_s": S, "on_scene_dist": "fixed"}}
    cfg = _cfg(preempt=preempt, incident_types=types)
    urgent = U + 10.0  # its call handling ends at H + U + 10, while the unit drives to the minor call
    ds, dom = _run(tmp_path, grid(3, 3), cfg, [(0, "minor", "n2_2"), (urgent, "medical", "n1_2")])
    disp, arr = ds["em_dispatch_time"].values, ds["em_arrival_time"].values
    if preempt:
        assert dom.centre.preemptions == 1
        assert disp[1] == urgent + H and arr[1] == disp[1] + T  # no turnout: already rolling
        assert arr[0] == arr[1] + S + T  # the minor call is served after the urgent one clears
    else:
        assert dom.centre.preemptions == 0
        assert arr[0] == H + U + T and disp[1] == arr[0] + S
    assert list(ds["em_incident_status"].values) == ["served", "served"]
