"""OpenStreetMap loading: tag rules, graph simplification on a tiny file, the real Bad Hersfeld extract and POIs."""
from __future__ import annotations

import gzip
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from networks.geo import haversine_m
from networks.osm import load_osm
from networks.osm_pois import load_osm_pois
from networks.osm_tags import directions, is_drivable, lanes_per_direction, speed_kph
from networks.routing import reachable_share

OSM = Path(__file__).resolve().parents[1] / "data" / "bad_hersfeld" / "osm_bbox.osm.xml.gz"


def test_tag_rules():
    """oneway/roundabout/motorway direction, maxspeed forms, lanes split, access and class filters."""
    assert directions({"highway": "residential"}) == (True, True)
    assert directions({"highway": "residential", "oneway": "-1"}) == (False, True)
    assert directions({"highway": "primary", "junction": "roundabout"}) == (True, False)
    assert directions({"highway": "motorway"}) == (True, False)
    assert directions({"highway": "motorway", "oneway": "no"}) == (True, True)
    assert speed_kph({"highway": "primary", "maxspeed": "50 mph"}) == pytest.approx(80.4672)
    assert speed_kph({"highway": "primary", "maxspeed": "DE:urban"}) == 50.0
    assert speed_kph({"highway": "residential", "maxspeed": "DE:zone30"}) == 30.0
    assert speed_kph({"highway": "residential"}) < speed_kph({"highway": "primary"})
    assert speed_kph({"highway": "motorway", "maxspeed": "none"}) >= 130.0
    assert speed_kph({"highway": "primary", "maxspeed": "70", "maxspeed:backward": "50"}, "backward") == 50.0
    assert lanes_per_direction({"highway": "primary", "lanes": "4"}, oneway=False) == 2
    assert lanes_per_direction({"highway": "primary", "lanes": "3"}, oneway=True) == 3
    assert lanes_per_direction({"highway": "primary", "lanes": "3", "lanes:forward": "2"}, False) == 2
    assert lanes_per_direction({"highway": "motorway"}, oneway=True) == 2
    assert is_drivable({"highway": "tertiary"}) and not is_drivable({"highway": "footway"})
    assert not is_drivable({"highway": "service"}) and is_drivable({"highway": "service"}, include_service=True)
    assert not is_drivable({"highway": "residential", "access": "private"})
    assert is_drivable({"highway": "residential", "access": "no", "motor_vehicle": "yes"})


TINY = """<?xml version="1.0"?>
<osm version="0.6">
  <node id="1" lon="9.700" lat="50.860"/>
  <node id="2" lon="9.701" lat="50.860"/>
  <node id="3" lon="9.702" lat="50.860"><tag k="highway" v="traffic_signals"/></node>
  <node id="4" lon="9.702" lat="50.861"/>
  <node id="5" lon="9.703" lat="50.860"/>
  <node id="6" lon="9.702" lat="50.859"/>
  <node id="8" lon="9.704" lat="50.8605"/>
  <node id="9" lon="9.705" lat="50.860"/>
  <node id="7" lon="9.7015" lat="50.8595"><tag k="amenity" v="hospital"/><tag k="name" v="H"/></node>
  <way id="10"><nd ref="1"/><nd ref="2"/><nd ref="3"/><nd ref="5"/>
    <tag k="highway" v="primary"/><tag k="lanes" v="4"/><tag k="maxspeed" v="50"/></way>
  <way id="11"><nd ref="4"/><nd ref="3"/><nd ref="6"/><tag k="highway" v="residential"/><tag k="oneway" v="yes"/></way>
  <way id="14"><nd ref="5"/><nd ref="8"/><nd ref="9"/><nd ref="5"/><tag k="highway" v="tertiary"/>
    <tag k="junction" v="roundabout"/></way>
  <way id="12"><nd ref="5"/><nd ref="6"/><tag k="highway" v="footway"/></way>
  <way id="13"><nd ref="2"/><nd ref="4"/><nd ref="5"/><nd ref="2"/><tag k="amenity" v="marketplace"/></way>
</osm>"""


def test_tiny_file_simplifies_to_intersections(tmp_path):
    """Node 2 (inside a way only) is dropped; node 3 (shared) splits way 10; a loop is halved at node 9."""
    path = tmp_path / "tiny.osm.gz"
    path.write_bytes(gzip.compress(TINY.encode()))
    city = load_osm(path)
    assert sorted(city.G.nodes) == ["1", "3", "4", "5", "6", "9"]
    assert sorted(city.link_ids) == sorted(["w10_0+", "w10_0-", "w10_1+", "w10_1-", "w11_0+", "w11_1+",
                                            "w14_0+", "w14_1+"])
    assert all("x" in d and "lon" in d for _, d in city.G.nodes(data=True))
    assert city.G.has_edge("5", "9") and city.G.has_edge("9", "5") and not city.G.has_edge("9", "8")
    d = city.link_attr(city.link_index("w10_0+"))
    assert d["length_m"] == pytest.approx(float(haversine_m(9.700, 50.86, 9.702, 50.86)), rel=1e-9)
    assert len(d["shape"]) == 3 and d["lanes"] == 2 and d["speed_mps"] == pytest.approx(50 / 3.6)
    assert d["capacity_vph"] == pytest.approx(2 * 1800.0)
    a = city.arrays
    assert a.node_signal[city.node_index("3")] and not a.node_signal[city.node_index("1")]
    shape = np.array(d["shape"])  # projected metres: ~140 m east per 0.002 degrees at 50.86 N
    assert np.hypot(*(shape[-1] - shape[0])) == pytest.approx(d["length_m"], rel=0.01)
    assert city.crs == "EPSG:32632" and city.lonlat_to_xy(9.7, 50.86) == pytest.approx(
        (a.node_x[city.node_index("1")], a.node_y[city.node_index("1")]))
    cut = load_osm(path, bbox=(9.6995, 50.8585, 9.7025, 50.8615))  # node 5 outside
    assert "5" not in cut.G.nodes and cut.has_link("w10_0+") and not cut.has_link("w10_1+")
    pois = load_osm_pois(path, city)
    kinds = {p["kind"]: p for p in pois}
    assert set(kinds) == {"hospital", "venue"} and kinds["hospital"]["name"] == "H"
    assert kinds["venue"]["lon"] == pytest.approx((9.701 + 9.702 + 9.703) / 3)  # closed way counted once
    assert 0 <= kinds["hospital"]["node"] < a.n_nodes


@pytest.fixture(scope="module")
def bad_hersfeld():
    return load_osm(OSM)


def test_real_osm_loads_mostly_connected(bad_hersfeld):
    """The Bad Hersfeld extract gives a few thousand links, unique ids, ~90% of pairs routable."""
    city = bad_hersfeld
    a = city.arrays
    assert 1000 < a.n_nodes < 5000 and 2000 < a.n_links < 10000
    assert len(set(city.link_ids)) == a.n_links
    assert np.all(a.length_m > 0) and np.all(a.capacity_vph > 0) and np.all(a.speed_mps > 1)
    lon = np.array([d["lon"] for _, d in city.G.nodes(data=True)])
    assert abs(np.median(lon) - 9.7) < 0.1
    rep = city.connectivity()
    assert rep.largest_component > 0.85 * a.n_nodes
    assert reachable_share(city) > 0.8
    classes = Counter(city.link_attr(i)["road_class"] for i in range(a.n_links))
    assert classes["highway.motorway"] > 0 and "highway.service" not in classes


def test_real_osm_pois(bad_hersfeld):
    """Known POI counts of the extract; each POI snaps to a routable node near it."""
    pois = load_osm_pois(OSM, bad_hersfeld)
    counts = Counter(p["kind"] for p in pois)
    assert counts["charging_station"] == 7 and counts["hospital"] == 6
    assert counts["ambulance_station"] == 2 and counts["control_centre"] == 1
    a = bad_hersfeld.arrays
    mask = bad_hersfeld.largest_component_mask()
    for p in pois:
        assert mask[p["node"]]
        assert np.hypot(a.node_x[p["node"]] - p["x"], a.node_y[p["node"]] - p["y"]) < 2000.0
