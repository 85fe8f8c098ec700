"""Vehicles on given paths (``MesoTraffic.add_trips(paths=...)``, ``traffic.routes_file``): driven link by link,
never re-routed, held at a closed link; unused, the hook changes nothing; bad paths are clear errors."""
from __future__ import annotations

import numpy as np
import pytest

from agents.traffic.schema import ARRIVED, RUNNING
from conftest import make_twin

NEUTRAL = {"speed_scale": 1.0, "junctions": False}


def _grid(trips=0, duration=1200, traffic=None, seed=5):
    doc = {"seed": seed, "city": {"source": "grid", "grid": {"nx": 5, "ny": 5, "spacing_m": 200}, "zone_cell_m": 400},
           "time": {"duration_s": duration, "step_s": 1, "record_interval_s": 300},
           "demand": {"trips": trips, "end_s": duration * 0.6}, "traffic": {**NEUTRAL, **(traffic or {})}}
    return make_twin(doc)


def _detour(city):
    """A path from n0_0 to n2_0 that is not the shortest: up, across twice, down (link ids)."""
    nodes = ["n0_0", "n0_1", "n1_1", "n2_1", "n2_0"]
    links = [f"{a}>{b}" for a, b in zip(nodes[:-1], nodes[1:])]
    assert all(city.has_link(x) for x in links)
    return nodes, links


def _drive_and_trace(tw, v, until):
    """Links vehicle ``v`` is on, second by second, without repeats."""
    T = tw.traffic
    seen = []
    for t in range(int(tw.env.now) + 1, until):
        tw.env.run(until=t)
        T._catch_up()
        ln = int(T.v_link[v])
        if ln >= 0 and (not seen or seen[-1] != ln):
            seen.append(ln)
    return seen


def test_given_path_is_driven_link_by_link_and_never_rerouted():
    """A detour given as a path is driven exactly, even with every driver re-routing every 10 s in heavy traffic."""
    tw = _grid(trips=800, traffic={"reroute_interval_s": 10, "reroute_share": 1.0})
    tw.setup()
    T, city = tw.traffic, tw.city
    nodes, links = _detour(city)
    ids = T.add_trips([nodes[0]], [nodes[-1]], [30.0], paths=[links])
    v = int(ids[0])
    seen = _drive_and_trace(tw, v, 1000)
    assert [city.link_ids[x] for x in seen] == links
    assert T.v_status[v] == ARRIVED
    assert T.v_dist[v] == pytest.approx(sum(city.arrays.length_m[city.link_index(x)] for x in links))
    assert T.reroutes > 0  # the routed drivers did re-route: the test is not vacuous


def test_path_as_link_indices_mixed_with_routed_trips():
    """Paths as link indices; None entries are routed as usual; returned ids follow the input order."""
    tw = _grid()
    tw.setup()
    T, city = tw.traffic, tw.city
    nodes, links = _detour(city)
    idx = [city.link_index(x) for x in links]
    ids = T.add_trips([nodes[0], "n4_4"], [nodes[-1], "n0_4"], [5.0, 5.0], paths=[idx, None])
    tw.env.run(until=900)
    T._catch_up()
    assert list(T.route_buf[T.v_rstart[ids[0]]:T.v_rstart[ids[0]] + T.v_rlen[ids[0]]]) == idx
    assert T.v_status[ids[0]] == ARRIVED and T.v_status[ids[1]] == ARRIVED
    assert T.v_orig[ids[1]] == city.node_index("n4_4")


def test_closed_link_on_a_given_path_holds_the_vehicle_until_it_opens():
    """A vehicle on a given path waits at the end of the link before a closed one (no detour), then goes on."""
    tw = _grid(traffic={"gridlock_time_s": 3000})
    tw.setup()
    T, city = tw.traffic, tw.city
    nodes, links = _detour(city)
    T.set_capacity_factor(links[2], 0.0)
    v = int(T.add_trips([nodes[0]], [nodes[-1]], [0.0], paths=[links])[0])
    tw.env.run(until=400)
    T._catch_up()
    assert T.v_status[v] == RUNNING and city.link_ids[T.v_link[v]] == links[1]  # held before the closure
    T.set_capacity_factor(links[2], 1.0)
    seen = [city.link_index(links[1])] + _drive_and_trace(tw, v, 800)
    assert [city.link_ids[x] for x in dict.fromkeys(seen)] == links[1:]
    assert T.v_status[v] == ARRIVED


@pytest.mark.parametrize("paths, match", [
    ([["n0_0>n0_1", "no_such_link"]], "unknown link"),
    ([["n0_0>n0_1", "n2_1>n2_0"]], "does not lead to"),
    ([["n0_1>n1_1", "n1_1>n2_1", "n2_1>n2_0"]], "not from its origin"),
    ([[]], "empty path"),
    ([None, None], "2 paths for 1 trips"),
])
def test_bad_paths_are_clear_errors(paths, match):
    tw = _grid()
    tw.setup()
    with pytest.raises(ValueError, match=match):
        tw.traffic.add_trips(["n0_0"], ["n2_0"], [0.0], paths=paths)
    assert tw.traffic.n_veh == 0


def test_unused_hook_leaves_results_bit_identical(monkeypatch):
    """The same scenario with the demand added through ``paths=[None, ...]`` gives the same results bit for bit."""
    from agents.traffic.meso import MesoTraffic

    doc_traffic = {"reroute_interval_s": 60, "reroute_share": 0.2}
    ds0 = _grid(trips=1500, traffic=doc_traffic).run()
    orig = MesoTraffic.add_trips

    def with_none(self, o, d, dep, kind="car", paths=None):
        return orig(self, o, d, dep, kind, paths=[None] * len(o) if paths is None else paths)

    monkeypatch.setattr(MesoTraffic, "add_trips", with_none)
    ds1 = _grid(trips=1500, traffic=doc_traffic).run()
    for k in ("link_flow", "link_speed", "trip_arrive", "trip_distance", "kpi_traffic_vehicle_hours"):
        np.testing.assert_array_equal(ds0[k].values, ds1[k].values)
    assert float(ds0["kpi_traffic_vehicle_hours"]) > 0


def _route_file(tmp_path, body: str):
    p = tmp_path / "r.rou.xml"
    p.write_text(f"<routes>\n{body}\n</routes>\n")
    return p


def test_routes_file_matches_trips_and_counts_fallbacks(tmp_path):
    """``match_file_paths``: trips take their file entry's edges; a route the city cannot drive is routed, named."""
    from agents.traffic.file_routes import match_file_paths

    tw = _grid()
    city = tw.city
    nodes, links = _detour(city)
    body = "\n".join([
        f'<vehicle id="a" depart="10"><route edges="{" ".join(links)}"/></vehicle>',
        '<vehicle id="b" depart="20"><route edges="n0_0>n0_1 n2_1>n2_0"/></vehicle>',  # a gap
    ])
    path = _route_file(tmp_path, body)
    n = city.node_index
    demand = {"origin": np.array([n("n0_0"), n("n0_0"), n("n3_3")], np.int32),
              "destination": np.array([n("n2_0"), n("n2_0"), n("n3_4")], np.int32),
              "depart_s": np.array([10.0, 20.0, 30.0])}
    paths, summary = match_file_paths(path, city, demand)
    assert [city.link_ids[x] for x in paths[0]] == links
    assert paths[1] is None and paths[2] is None  # the gap: routed; no entry: routed
    assert summary["matched"] == 2 and summary["full_routes_mapped"] == 1 and summary["routed_fallback"] == 2
    assert "'b'" in summary["routed_fallback_examples"][0]
    with pytest.raises(ValueError, match="route 'b'"):
        match_file_paths(path, city, demand, fallback=False)


def test_routes_file_in_a_scenario_is_checked_and_used(tmp_path):
    """``traffic.routes_file``: a missing file is a validation error; a good one puts its routes on the trips."""
    from agents.traffic.config import TrafficConfig

    errs = TrafficConfig(routes_file="nope.rou.xml").path_errors(lambda p: tmp_path / p)
    assert errs and "routes_file" in errs[0] and "not found" in errs[0]
    errs = TrafficConfig(routes_file="x.csv").path_errors(lambda p: tmp_path / p)
    assert errs and "SUMO route file" in errs[0]
    tw = _grid()
    nodes, links = _detour(tw.city)
    body = "\n".join(f'<vehicle id="v{k}" depart="{10 * k}"><route edges="{" ".join(links)}"/></vehicle>'
                     for k in range(5))
    path = _route_file(tmp_path, body)
    doc = {"seed": 5, "city": {"source": "grid", "grid": {"nx": 5, "ny": 5, "spacing_m": 200}, "zone_cell_m": 400},
           "time": {"duration_s": 900, "step_s": 1, "record_interval_s": 300},
           "demand": {"trips_file": str(path)}, "traffic": {**NEUTRAL, "routes_file": str(path)}}
    ds = make_twin(doc, tmp_path=tmp_path).run()
    assert '"matched": 5' in ds.attrs["traffic_routes_file"]
    length = sum(tw.city.arrays.length_m[tw.city.link_index(x)] for x in links)
    np.testing.assert_allclose(ds["trip_distance"].values, length)
