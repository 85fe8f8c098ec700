"""City-graph builders: synthetic graphs have the promised shape; the real SUMO net and routes load."""
from __future__ import annotations

import math
import pickle
from pathlib import Path

import numpy as np
import pytest

from networks.io import summary
from networks.roadclass import lane_capacity_vph
from networks.sumo_net import load_sumo_net, load_sumo_trips
from networks.synthetic import grid, line, radial

DATA = Path(__file__).resolve().parents[1] / "data"
BH_NET = DATA / "bad_hersfeld" / "osm_edited.net.xml.gz"


def _csr_agrees(city) -> None:
    """The CSR arrays describe exactly the edges of G, with the edge attributes."""
    a = city.arrays
    ids = city.node_ids
    for l in range(a.n_links):
        d = city.link_attr(l)
        assert city.link_ids[l] == d["id"]
        assert city.G.has_edge(ids[a.link_from[l]], ids[a.link_to[l]])
        assert a.length_m[l] == pytest.approx(max(d["length_m"], 1.0))
        assert a.capacity_vph[l] == d["capacity_vph"] and a.lanes[l] == d["lanes"]
    for v in range(a.n_nodes):
        outs = a.out_links[a.out_indptr[v]:a.out_indptr[v + 1]]
        ins = a.in_links[a.in_indptr[v]:a.in_indptr[v + 1]]
        assert np.all(a.link_from[outs] == v) and np.all(a.link_to[ins] == v)
        assert len(outs) == city.G.out_degree(ids[v]) and len(ins) == city.G.in_degree(ids[v])


def test_grid_counts_and_attributes():
    """An nx x ny grid has nx*ny nodes and 2*(nx*(ny-1) + ny*(nx-1)) links with the given attributes."""
    city = grid(4, 3, spacing_m=150.0, lanes=2, capacity_per_lane_vph=1500.0)
    a = city.arrays
    assert a.n_nodes == 12 and a.n_links == 2 * (4 * 2 + 3 * 3)
    assert city.G.nodes["n3_2"]["x"] == 450.0 and city.G.nodes["n3_2"]["y"] == 300.0
    assert math.isnan(city.G.nodes["n0_0"]["lon"]) and city.zones == {} and city.lonlat_to_xy is None
    d = city.link_attr(city.link_index("n0_0>n1_0"))
    assert d["length_m"] == 150.0 and d["capacity_vph"] == 3000.0 and d["road_class"] == "residential"
    assert city.connectivity().strongly_connected
    _csr_agrees(city)


def test_radial_has_arterial_spokes():
    """A radial city: 1 + rings*spokes nodes, every road two-way; spokes are faster 2-lane arterials."""
    city = radial(3, 8, ring_spacing_m=400.0)
    a = city.arrays
    assert a.n_nodes == 1 + 3 * 8 and a.n_links == 2 * (3 * 8) * 2
    spoke = city.link_attr(city.link_index("c>r1_0"))
    ring = city.link_attr(city.link_index("r2_0>r2_1"))
    assert spoke["lanes"] == 2 and spoke["speed_mps"] > ring["speed_mps"] and ring["lanes"] == 1
    assert spoke["length_m"] == pytest.approx(400.0)
    assert ring["length_m"] == pytest.approx(2 * 800.0 * math.sin(math.pi / 8))  # chord
    assert city.connectivity().strongly_connected
    _csr_agrees(city)


def test_line_with_bottleneck():
    """A corridor of n links in series; the bottleneck overrides exactly one link's capacity."""
    city = line(5, length_m=300.0, lanes=2, bottleneck={"index": 3, "capacity_vph": 900.0})
    a = city.arrays
    assert city.link_ids == [f"c{i}>c{i + 1}" for i in range(5)]
    np.testing.assert_array_equal(a.capacity_vph, [3600.0, 3600.0, 3600.0, 900.0, 3600.0])
    assert a.length_m.sum() == pytest.approx(1500.0)
    assert not city.connectivity().strongly_connected
    assert "not strongly connected" in summary(city)
    with pytest.raises(ValueError):
        line(3, bottleneck={"index": 3, "capacity_vph": 1.0})


def test_road_class_capacity_scales():
    """Per-lane capacity depends on class and scales with the base; untyped edges fall back on speed."""
    assert lane_capacity_vph("highway.motorway") > lane_capacity_vph("highway.primary") \
        > lane_capacity_vph("highway.residential")
    assert lane_capacity_vph("highway.primary", 900.0) == pytest.approx(0.5 * lane_capacity_vph("highway.primary"))
    assert lane_capacity_vph("", speed_mps=30.0) > lane_capacity_vph("", speed_mps=8.0)


@pytest.fixture(scope="module")
def bad_hersfeld():
    return load_sumo_net(BH_NET)


def test_sumo_net_links_are_passenger_edges(bad_hersfeld):
    """Link ids are exactly the SUMO edges that allow passenger cars; geometry is in Bad Hersfeld."""
    import sumolib

    net = sumolib.net.readNet(str(BH_NET), withInternal=False)
    expected = {e.getID() for e in net.getEdges(withInternal=False) if e.allows("passenger")}
    city = bad_hersfeld
    assert set(city.link_ids) == expected and len(city.link_ids) == len(expected)
    lon = np.array([d["lon"] for _, d in city.G.nodes(data=True)])
    lat = np.array([d["lat"] for _, d in city.G.nodes(data=True)])
    assert abs(np.median(lon) - 9.7) < 0.1 and abs(np.median(lat) - 50.87) < 0.1
    e = net.getEdge(city.link_ids[0])
    d = city.link_attr(0)
    assert d["length_m"] == pytest.approx(e.getLength()) and d["road_class"] == e.getType()
    assert city.arrays.node_signal.sum() > 0 and "+proj=utm" in city.crs
    x, y = city.lonlat_to_xy(lon[0], lat[0])  # round trip through the net's projection
    assert x == pytest.approx(city.arrays.node_x[0], abs=0.01) and y == pytest.approx(city.arrays.node_y[0], abs=0.01)
    assert pickle.loads(pickle.dumps(city.lonlat_to_xy))(lon[0], lat[0]) == pytest.approx((x, y))
    assert city.connectivity().largest_component > 0.9 * city.arrays.n_nodes
    _csr_agrees(city)


def test_bologna_routes_load():
    """The Bologna route file gives ~11k one-hour trips; origin/destination are the route's end nodes."""
    city = load_sumo_net(DATA / "bologna" / "joined_buslanes.net.xml.gz")
    trips = load_sumo_trips(DATA / "bologna" / "joined.rou.xml.gz", city)
    n = len(trips["id"])
    assert 10_000 < n + trips["skipped"] <= 11_079 and n > 10_000
    assert trips["depart_s"].min() >= 0 and trips["depart_s"].max() <= 3600
    assert np.all(np.diff(trips["depart_s"]) >= 0)  # SUMO route files are sorted by departure
    assert trips["origin"].dtype == np.int32 and trips["destination"].max() < city.arrays.n_nodes
    assert len(set(trips["id"])) == n


def test_trip_file_with_route_refs_and_trips(tmp_path, bad_hersfeld):
    """Vehicles referencing a <route id>, <trip from= to=>, flows and unknown edges are all handled."""
    city = bad_hersfeld
    a, ids = city.arrays, city.link_ids
    l0, l1 = 0, int(a.out_links[a.out_indptr[a.link_to[0]]])
    text = f"""<routes>
  <route id="r0" edges="{ids[l0]} {ids[l1]}"/>
  <vehicle id="v0" depart="5.5" route="r0"/>
  <trip id="t0" depart="7" from="{ids[l1]}" to="{ids[l0]}"/>
  <vehicle id="v1" depart="9"><route edges="{ids[l0]} nosuchedge"/></vehicle>
  <flow id="f0" begin="0" end="60" number="3" from="{ids[l0]}" to="{ids[l1]}"/>
</routes>"""
    path = tmp_path / "t.rou.xml"
    path.write_text(text)
    t = load_sumo_trips(path, city)
    assert list(t["id"]) == ["v0", "t0", "f0.0", "f0.1", "f0.2"] and list(t["depart_s"]) == [5.5, 7.0, 0, 20, 40]
    assert t["origin"][0] == a.link_from[l0] and t["destination"][0] == a.link_to[l1]
    assert t["origin"][1] == a.link_from[l1] and t["destination"][1] == a.link_to[l0]
    assert t["skipped"] == 1 and t["flows"] == 1  # the flow's 3 vehicles are expanded (tests/test_demand_files.py)


def test_networks_stands_alone():
    """Importing every networks module pulls in nothing from twin/ or agents/."""
    import subprocess
    import sys

    code = ("import sys, networks, networks.bench, networks.zones, networks.osm_pois; "
            "bad = [m for m in sys.modules if m.split('.')[0] in ('twin', 'agents')]; "
            "assert not bad, bad")
    subprocess.run([sys.executable, "-c", code], check=True, cwd=Path(__file__).resolve().parents[1], timeout=120)


def test_export_to_sumo_round_trip(tmp_path):
    """A grid exported with netconvert loads back with the same links (SUMO-safe ids), lengths and signals."""
    from networks.sumo_export import sumo_safe_id, to_sumo_net

    city = grid(3, 2, spacing_m=250.0, lanes=2, speed_mps=12.0)
    city.G.nodes["n1_1"]["signal"] = True
    city.invalidate()
    link_map = to_sumo_net(city, tmp_path / "g.net.xml")
    assert link_map["n0_0>n1_0"] == "n0_0-to-n1_0" and sumo_safe_id("a b;c") == "a_b_c"
    back = load_sumo_net(tmp_path / "g.net.xml")
    assert set(back.link_ids) == set(link_map.values())
    for lid, sid in link_map.items():
        d, e = city.link_attr(city.link_index(lid)), back.link_attr(back.link_index(sid))
        assert e["length_m"] == pytest.approx(d["length_m"], abs=0.01)
        assert e["lanes"] == 2 and e["speed_mps"] == pytest.approx(12.0)
    assert back.arrays.node_signal[back.node_index("n1_1")] and back.arrays.node_signal.sum() == 1
    assert back.G.nodes["n2_1"]["x"] == pytest.approx(500.0)
