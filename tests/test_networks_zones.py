"""Zones: square-cell grouping, building-area weights on the real Bad Hersfeld net, routable members only."""
from __future__ import annotations

import csv
import gzip
from pathlib import Path

import numpy as np
import pytest

from networks.sumo_net import load_sumo_net
from networks.synthetic import grid, line
from networks.zones import attach_zones, building_node_weights, building_zones, grid_zones

DATA = Path(__file__).resolve().parents[1] / "data" / "bad_hersfeld"
BUILDINGS = DATA / "osm_buildings.all.csv.gz"


def test_grid_zones_partition_nodes():
    """A 6x4 grid at 100 m in 250 m cells: 3x2 zones, every node in exactly one, ids by cell."""
    city = grid(6, 4, spacing_m=100.0)
    zones = grid_zones(city, 250.0)
    assert sorted(zones) == sorted(f"z{c}_{r}" for c in range(3) for r in range(2))
    members = np.concatenate([z.nodes for z in zones.values()])
    assert sorted(members.tolist()) == list(range(24))
    z = zones["z2_1"]  # x in [500, 750), y in [250, 500): i = 5, j = 3
    assert [city.node_ids[i] for i in z.nodes] == ["n5_3"] and z.population == 1
    assert all(np.all(z.weights == 1.0) for z in zones.values())
    a = city.arrays
    for zid, zz in zones.items():
        col, row = map(int, zid[1:].split("_"))
        assert np.all(np.floor(a.node_x[zz.nodes] / 250.0) == col)
        assert np.all(np.floor(a.node_y[zz.nodes] / 250.0) == row)


def test_zones_skip_unroutable_nodes():
    """On a one-way corridor no two nodes are mutually reachable: zones keep at most one node."""
    city = line(4, length_m=100.0)
    zones = grid_zones(city, 1000.0)
    assert sum(len(z.nodes) for z in zones.values()) == 1
    with pytest.raises(ValueError):
        grid_zones(city, 0.0)


@pytest.fixture(scope="module")
def bad_hersfeld():
    return load_sumo_net(DATA / "osm_edited.net.xml.gz")


def test_building_zone_weights_sum_to_building_area(bad_hersfeld):
    """Zone weights add up to the area of every building whose GenEdge is a city link; all nodes routable."""
    city = bad_hersfeld
    links = set(city.link_ids)
    with gzip.open(BUILDINGS, "rt") as f:
        rows = list(csv.DictReader(f))
    expected_area = sum(float(r["Area"]) for r in rows if r["GenEdge"] in links)
    expected_n = sum(1 for r in rows if r["GenEdge"] in links)
    bw = building_node_weights(city, BUILDINGS)
    assert bw.rows == len(rows) and bw.attached == expected_n and bw.missing_edge == len(rows) - expected_n
    zones = attach_zones(city, building_zones(city, BUILDINGS, cell_m=1000.0)).zones
    assert sum(z.weights.sum() for z in zones.values()) == pytest.approx(expected_area)
    assert sum(z.population for z in zones.values()) == expected_n
    mask = city.largest_component_mask()
    for z in zones.values():
        assert np.all(mask[z.nodes]) and np.all(z.weights > 0)
    assert len(zones) > 10


def test_attach_zones_checks_fit(bad_hersfeld):
    """Zones of another (bigger) city do not fit: attach_zones refuses them."""
    small = grid(2, 2)
    with pytest.raises(ValueError):
        attach_zones(small, grid_zones(bad_hersfeld, 2000.0))
    assert attach_zones(small, grid_zones(small, 1000.0)).zones.keys() == {"z0_0"}


def test_buildings_with_unknown_edges_are_counted(tmp_path):
    """A building on an unknown edge is dropped and counted; the others land on their edge's from-node."""
    city = grid(3, 3, spacing_m=100.0)
    path = tmp_path / "b.csv"
    path.write_text("TAZ,Poly,Area,Weight,GenEdge,PedEdge\n"
                    "all,1,50,0,n0_0>n1_0,x\nall,2,70,0,n0_0>n0_1,x\nall,3,20,0,n2_2>n2_1,x\nall,4,99,0,nope,x\n")
    bw = building_node_weights(city, path)
    assert (bw.rows, bw.attached, bw.missing_edge, bw.moved) == (4, 3, 1, 0)
    assert bw.area_m2[city.node_index("n0_0")] == 120.0 and bw.buildings[city.node_index("n0_0")] == 2
    assert bw.area_m2[city.node_index("n2_2")] == 20.0 and bw.area_m2.sum() == 140.0
    zones = building_zones(city, path, cell_m=150.0)
    assert {z: float(v.weights.sum()) for z, v in zones.items()} == {"z0_0": 120.0, "z1_1": 20.0}
