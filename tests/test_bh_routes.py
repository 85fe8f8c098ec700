"""validation/bh_routes.py: reading SUMO's vehroute output and warning log, matching trips across runs."""
from __future__ import annotations

import gzip
import sys
from pathlib import Path

import numpy as np
import xarray as xr

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "validation"))

import bh_routes as B  # noqa: E402

VEHROUTES = """<routes>
    <vehicle id="0" depart="1.00" arrival="95.00">
        <routeDistribution>
            <route replacedOnEdge="a" reason="device.rerouting" replacedAtTime="1.00" probability="0"
                   edges="a b c" exitTimes="10.00 20.00 30.00"/>
            <route edges="a d c" exitTimes="10.00 50.00 95.00"/>
        </routeDistribution>
    </vehicle>
    <vehicle id="1" depart="5.00">
        <route edges="b c x" exitTimes="40.00"/>
    </vehicle>
    <vehicle id="ev7" depart="9.00" arrival="20.00"><route edges="a b"/></vehicle>
</routes>
"""


def test_read_vehroutes_last_route_exits_and_unfinished(tmp_path):
    f = tmp_path / "v.xml.gz"
    with gzip.open(f, "wt") as fh:
        fh.write(VEHROUTES)
    idx = {"a": 0, "b": 1, "c": 2, "d": 3}
    r = B.read_vehroutes(f, idx)
    assert set(r) == {0, 1}  # only numeric ids (trip indices)
    links, left, arr = r[0]
    assert links.tolist() == [0, 3, 2] and left == 3 and arr == 95.0  # the route it finally drove
    links, left, arr = r[1]
    assert links.tolist() == [1, 2, -1] and left == 1 and np.isnan(arr)  # unknown edge -1; still running
    assert B.sumo_where(r, 3).tolist() == [-1, 2, -1]  # vehicle 1 is on its second edge at the end
    assert B.EXIT_TIMES[0].tolist() == [10.0, 50.0, 95.0]


def test_read_teleports_all_reasons(tmp_path):
    log = tmp_path / "x.warnings.log"
    log.write_text(
        "Warning: Teleporting vehicle '1846'; waited too long (yield), lane='-157535157#0_1', time=1855.00.\n"
        "Warning: Vehicle '1846' ends teleporting on edge '-240561442#3', time=1910.00.\n"
        "Warning: Teleporting vehicle '12655'; junction collision with vehicle '19849', lane=':c_5_0', gap=-7.15, "
        "time=6439.00, stage=move.\n"
        "Warning: Teleporting vehicle '10474'; waited too long (jam), lane='34750425#4_1', time=5944.00.\n")
    t = B.read_teleports(log)
    assert [x[0] for x in t] == ["1846", "12655", "10474"]
    assert t[0] == ("1846", "waited too long (yield)", "-157535157#0_1", 1855.0)
    assert t[1][1].startswith("junction collision") and t[1][2] == ":c_5_0" and t[1][3] == 6439.0


def test_align_matches_renumbered_trips():
    rep = xr.Dataset({"trip_depart": ("trip", [0.5, 1.25, 1.25, 7.0]), "trip_origin": ("trip", [1, 2, 2, 3]),
                      "trip_destination": ("trip", [4, 5, 5, 6])})
    # the built-in numbers its routed fallbacks first: same trips, another order, one trip missing
    ds = xr.Dataset({"trip_depart": ("trip", [7.0, 1.25, 0.5, 1.25, 9.0]), "trip_origin": ("trip", [3, 2, 1, 2, 8]),
                     "trip_destination": ("trip", [6, 5, 4, 5, 9])})
    tid = B.align(ds, rep, 4)
    assert tid.tolist() == [2, 1, 3, 0]
    rep2 = rep.assign(trip_depart=("trip", [0.5, 1.25, 1.25, 8.0]))
    assert B.align(ds, rep2, 4).tolist() == [2, 1, 3, -1]


def test_ends_with():
    full = np.array([4, 7, 9, 2])
    assert B._ends_with(full, np.array([9, 2]))
    assert B._ends_with(full, full)
    assert not B._ends_with(full, np.array([9, 3]))
    assert not B._ends_with(full, np.array([5, 2]))
