"""SUMO back-end: a small grid town runs on SUMO in seconds, with the same API and results as the built-in model."""
from __future__ import annotations

import importlib.metadata as md
import os
import signal
from pathlib import Path

import numpy as np
import pytest

from agents.traffic.compare import flow_agreement, geh
from agents.traffic.sumo import SumoRunError, SumoTraffic
from agents.traffic.sumo_setup import SumoNotAvailable, check_sumo, prepare_network
from twin.engine import CityTwin
from twin.scenario import resolve_variants

ROOT = Path(__file__).resolve().parents[1]


def _twin(backend="sumo", trips=300, duration_s=1200, n=5, connection="libsumo", closures=(), extra=None, ev=None):
    doc = {"name": "sumo_test", "seed": 3,
           "city": {"source": "grid", "grid": {"nx": n, "ny": n, "spacing_m": 200}},
           "time": {"duration_s": duration_s, "step_s": 1, "record_interval_s": 300},
           "demand": {"trips": trips, "model": "uniform", "end_s": duration_s / 2},
           "traffic": {"backend": backend, "closures": list(closures), "sumo": {"connection": connection}}}
    if ev is not None:
        doc["ev"] = ev
    sc = resolve_variants(doc, ROOT / "scenarios" / "test.yaml")["baseline"]
    tw = CityTwin(sc, ROOT / "scenarios")
    if extra is not None:  # extra simpy processes started right after setup
        setup = tw.setup
        tw.setup = lambda: (setup(), [tw.env.process(p(tw)) for p in extra])
    return tw


def _no_sumo_left():
    out = os.popen("pgrep -x sumo").read().split()
    return [p for p in out if p and os.getppid() != int(p)]


def test_link_ids_map_one_to_one_to_sumo_edges(tmp_path):
    """Every city link becomes exactly one SUMO edge with the same end nodes and length."""
    import sumolib

    tw = _twin()
    net = prepare_network(tw.city, tmp_path)
    assert net.exported and len(set(net.edge_ids)) == tw.city.arrays.n_links
    sn = sumolib.net.readNet(str(net.net_file))
    a = tw.city.arrays
    for i, e in enumerate(net.edge_ids):
        edge = sn.getEdge(e)
        assert edge.getFromNode().getCoord() == pytest.approx((a.node_x[a.link_from[i]], a.node_y[a.link_from[i]]))
        assert edge.getToNode().getCoord() == pytest.approx((a.node_x[a.link_to[i]], a.node_y[a.link_to[i]]))
    # a city loaded from that .net.xml uses the file itself, with link id = edge id
    from networks.sumo_net import load_sumo_net

    city2 = load_sumo_net(net.net_file)
    net2 = prepare_network(city2, tmp_path / "unused")
    assert not net2.exported and net2.edge_ids == [str(x) for x in city2.link_ids]


def test_trips_conserved_and_physics_hold():
    """All trips are accounted for; travel times respect free-flow; link exits and distances agree."""
    tw = _twin()
    ds = tw.run()
    tr: SumoTraffic = tw.traffic
    c = tr.counts()
    assert c["total"] == len(tw.shared["demand_trips"]["origin"]) == ds.sizes["trip"]
    assert c["arrived"] + c["running"] + c["pending_due"] + c["pending_future"] + c["unroutable"] == c["total"]
    assert c["arrived"] == c["total"]  # light demand, enough time: everybody arrives
    assert ds.attrs["complete"] == 1
    assert np.all(np.diff(ds.net_completed.values) >= 0) and ds.net_completed.values[-1] == c["arrived"]
    tt, tff = ds.trip_travel_time.values, ds.trip_freeflow_time.values
    assert np.all(tt >= 0.75 * tff)  # drivers exceed the limit by at most ~20% (SUMO speedDev 0.1)
    # vehicle-km from trips equals exits x link length summed over links and intervals (within junction lengths)
    span = np.diff(np.concatenate([[0.0], ds.time.values]))
    exits = ds.link_flow.values * span[:, None] / 3600.0
    km_links = float((exits * ds.link_length.values[None, :]).sum() / 1000)
    assert km_links == pytest.approx(float(ds.trip_distance.sum()) / 1000, rel=0.1)
    assert exits.sum() >= c["arrived"]
    assert np.all(ds.link_speed.values <= ds.link_freeflow_speed.values[None, :] + 1e-3)
    assert not _no_sumo_left()


def test_same_schema_and_kpis_as_meso_and_flows_agree():
    """Both back-ends give the same variables, units and KPI names; on light demand their link flows agree."""
    dm, ds = _twin("meso").run(), _twin("sumo").run()
    traffic_vars = [v for v in dm.data_vars if v.startswith(("link_", "net_", "trip_", "kpi_traffic_"))]
    for v in traffic_vars:
        assert v in ds.data_vars, v
        assert ds[v].dims == dm[v].dims and ds[v].attrs.get("units") == dm[v].attrs.get("units"), v
    assert list(ds.link.values) == list(dm.link.values)
    assert np.array_equal(ds.trip_origin.values, dm.trip_origin.values)
    assert np.array_equal(ds.trip_depart.values, dm.trip_depart.values)
    r, share, pairs = flow_agreement(dm, ds)
    assert pairs > 20 and r > 0.8 and share > 0.8


def test_drive_events_fire_on_arrival_and_closures_are_avoided():
    """drive() events fire at SUMO's arrival time; a closed link carries nothing once closed; closed = inf time."""
    got = {}

    def ambulance(tw):
        yield tw.env.timeout(120)
        ff = tw.traffic.travel_time_s(0, 24, congested=False)
        res = yield tw.traffic.drive(0, 24, kind="emergency", priority=True)
        got["amb"] = (res, tw.env.now, ff)

    def ev(tw):
        yield tw.env.timeout(200)
        res = yield tw.traffic.drive("n4_4", "n0_0", kind="ev")
        got["ev"] = (res, tw.env.now)

    closed = "n2_2>n3_2"
    tw = _twin(extra=[ambulance, ev], closures=[{"link": closed, "start_s": 300}])
    ds = tw.run()
    res, now, ff = got["amb"]
    assert res.status == "arrived" and res.arrive_s == pytest.approx(now) and now > 120
    assert res.travel_time_s >= ff / 1.3 - 2  # emergency speedFactor 1.3
    res2, now2 = got["ev"]
    assert res2.status == "arrived" and res2.arrive_s == pytest.approx(now2) and res2.distance_m >= 1600 - 1
    kinds = ds.trip_kind.attrs["kinds"].split()
    assert set(kinds[k] for k in ds.trip_kind.values[-2:]) == {"emergency", "ev"}
    li = tw.city.link_index(closed)
    t = ds.time.values
    assert np.all(ds.link_flow.values[t > 600, li] == 0)
    assert np.all(ds.link_capacity_factor.values[t > 300, li] == 0)
    assert np.all(np.isnan(ds.link_speed.values[t > 300, li]))  # closed: no speed, not free flow


def test_both_backends_get_the_same_trips():
    """With EVs claiming a share of the demand, SUMO drives the same car trips as meso, none of them twice."""
    ev = {"share": 0.2, "stations": [{"node": "n2_2", "plugs": 2, "power_kw": 50.0}]}
    out = {}
    for backend in ("meso", "sumo"):
        tw = _twin(backend, ev=ev)
        out[backend] = (tw, tw.run())
    dem = out["meso"][0].shared["demand_trips"]
    bg = out["meso"][0].shared["background_trips"]
    claimed = len(dem["origin"]) - len(bg["origin"])
    assert claimed >= 0.15 * len(dem["origin"])  # the EV domain took its share
    for backend, (tw, ds) in out.items():
        kinds = np.array(ds.trip_kind.attrs["kinds"].split())[ds.trip_kind.values]
        car = kinds == "car"
        assert car.sum() == len(bg["origin"]), backend  # not the whole demand: claimed trips are not driven as cars
        assert np.array_equal(ds.trip_origin.values[car], bg["origin"]), backend
        assert np.array_equal(ds.trip_depart.values[car], bg["depart_s"]), backend
        assert (kinds == "ev").sum() >= claimed * 0.9, backend  # the EVs drive their trips themselves


def test_killed_sumo_stops_with_clear_error_and_partial_results():
    """A SUMO process killed mid-run raises SumoRunError carrying results marked incomplete; no process is left."""
    def killer(tw):
        yield tw.env.timeout(650)
        os.kill(tw.traffic.proc.pid, signal.SIGKILL)

    tw = _twin(connection="traci", extra=[killer])
    with pytest.raises(SumoRunError, match="SUMO stopped at t=") as info:
        tw.run()
    part = info.value.partial
    assert part.attrs["complete"] == 0 and 0 < info.value.t_s <= 650
    assert part.sizes["time"] == 2  # records at 300 s and 600 s
    st = part.trip_status.values
    assert (st == 0).sum() == part.net_completed.values[-1] or (st == 0).sum() >= part.net_completed.values[-1]
    assert tw.traffic.proc.poll() is not None


def test_missing_or_mismatched_sumo_is_a_clear_message(monkeypatch):
    """No libsumo, or packages of different versions: SumoNotAvailable naming the fix."""
    real = md.version

    def missing(name):
        if name == "libsumo":
            raise md.PackageNotFoundError(name)
        return real(name)

    monkeypatch.setattr(md, "version", missing)
    with pytest.raises(SumoNotAvailable, match="pip install eclipse-sumo"):
        check_sumo("libsumo")
    monkeypatch.setattr(md, "version", lambda n: "1.0.0" if n == "traci" else real(n))
    with pytest.raises(SumoNotAvailable, match="disagree"):
        check_sumo("traci")


def test_geh_values():
    """GEH of equal flows is 0; 100 vs 150 veh/h is about 4.5; empty pairs count as 0."""
    assert geh(np.array([100.0]), np.array([100.0]))[0] == 0
    assert geh(np.array([100.0]), np.array([150.0]))[0] == pytest.approx(4.472, abs=1e-3)
    assert geh(np.array([0.0]), np.array([0.0]))[0] == 0
