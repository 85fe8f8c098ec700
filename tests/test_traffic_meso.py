"""Physics and invariants of the built-in mesoscopic traffic model.

The tests pin the calibration parameters to neutral values (no junction delays, drivers at the limit), so that
what they check is the queue model itself; the calibrated defaults are checked against SUMO (test_sumo.py).
"""
from __future__ import annotations

import numpy as np
import pytest

from conftest import make_twin
from networks import synthetic
from networks.routing import shortest_path

NEUTRAL = {"speed_scale": 1.0, "junctions": False}


def _grid_twin(trips=1500, duration=1800, nx=6, seed=3, traffic=None, **kw):
    doc = {"seed": seed, "city": {"source": "grid", "grid": {"nx": nx, "ny": nx, "spacing_m": 150}, "zone_cell_m": 300},
           "time": {"duration_s": duration, "step_s": 1, "record_interval_s": 300},
           "demand": {"trips": trips, "end_s": duration * 0.7}, "traffic": {**NEUTRAL, **(traffic or {})}}
    doc.update(kw)
    return make_twin(doc)


def test_vehicles_conserved_and_storage_respected_every_step():
    """Every vehicle is in exactly one state at every step, and no link holds more than its storage."""
    tw = _grid_twin(trips=2500, duration=1500, traffic={"reroute_interval_s": 120, "reroute_share": 0.3})
    tw.setup()
    T = tw.traffic
    for t in range(5, 1500, 5):
        tw.env.run(until=t)
        T._catch_up()
        c = T.counts()
        assert c["total"] == (c["arrived"] + c["running"] + c["pending_due"] + c["pending_future"]
                              + c["unroutable"] + c["stranded"])
        assert c["in_queues"] + c["priority_running"] == c["running"]
        assert np.all(T.q_count <= T.storage)
        assert np.all(T.q_count >= 0)
    assert T.counts()["arrived"] > 1500


def test_outflow_never_above_capacity():
    """Recorded link flows never exceed capacity (plus the one vehicle the accumulator may hold)."""
    tw = _grid_twin(trips=6000, duration=1800, nx=5)
    ds = tw.run()
    cap = ds["link_capacity"].values[None, :]
    slack = 3600.0 / 300.0  # one vehicle per 300 s interval, in veh/h
    assert float(ds["link_flow"].max()) > 0.5 * float(ds["link_capacity"].min())  # the test is not vacuous
    assert np.all(ds["link_flow"].values <= cap + slack + 1e-6)


def _line_twin(n_links=3, length=2000.0, bottleneck_vph=1200.0, lanes=2, duration=3000):
    city = synthetic.line(n_links, length_m=length, lanes=lanes, speed_mps=15.0, capacity_per_lane_vph=1800.0,
                          bottleneck={"index": 1, "capacity_vph": bottleneck_vph})
    tw = make_twin({"city": {"source": "line"}, "time": {"duration_s": duration, "step_s": 1, "record_interval_s": 60},
                    "traffic": {**NEUTRAL, "reroute_share": 0.0, "gridlock_time_s": 3600}}, city=city)
    tw.setup()
    return tw, city


def test_bottleneck_queue_grows_at_deterministic_queueing_rate():
    """Fed above capacity, the bottleneck's queue grows at (arrival rate - capacity), within 5%."""
    q_in, cap_b = 2400.0, 1200.0  # veh/h
    tw, city = _line_twin(bottleneck_vph=cap_b)
    n = 800
    dep = np.arange(n) * 3600.0 / q_in  # uniform arrivals for 20 minutes
    tw.traffic.add_trips(np.zeros(n, np.int32), np.full(n, 3, np.int32), dep)
    T = tw.traffic
    t_first = T.fft[0] + T.fft[1]  # first vehicle reaches the bottleneck's end
    samples = []
    for t in (600.0, 900.0, 1100.0):
        tw.env.run(until=t)
        T._catch_up()
        from agents.traffic.meso_kernel import waiting_count

        wq = waiting_count(1, T.t, T.q_buf, T.q_off, T.q_head, T.q_count, T.qcap, T.v_exit)
        samples.append((t, wq))
    (t1, q1), (t2, q2), (t3, q3) = samples
    rate = (q3 - q1) / (t3 - t1) * 3600.0
    assert rate == pytest.approx(q_in - cap_b, rel=0.05)
    # and the level: queue = (q_in - cap) * (t - t_first)
    assert q2 == pytest.approx((q_in - cap_b) / 3600.0 * (t2 - t_first), rel=0.05)
    # the bottleneck discharges at capacity: completed trips over 10 minutes
    tw.env.run(until=1600)
    T._catch_up()
    a0 = T.counts()["arrived"]
    tw.env.run(until=2200)
    T._catch_up()
    assert (T.counts()["arrived"] - a0) * 6.0 == pytest.approx(cap_b, rel=0.05)


def test_spillback_blocks_upstream():
    """When the bottleneck link is full, the link upstream holds a queue and its outflow drops to the bottleneck's."""
    tw, city = _line_twin(length=300.0, bottleneck_vph=600.0, duration=1500)
    n = 600
    tw.traffic.add_trips(np.zeros(n, np.int32), np.full(n, 3, np.int32), np.arange(n) * 2.0)
    T = tw.traffic
    tw.env.run(until=900)
    T._catch_up()
    assert T.q_count[1] == T.storage[1]  # bottleneck link full
    assert T.q_count[0] >= T.storage[0] - 1  # queue spilled onto the first link
    a0 = T.counts()["arrived"]
    tw.env.run(until=1500)
    T._catch_up()
    assert T.q_count[0] >= T.storage[0] - 1  # still full: the queue holds
    flow = (T.counts()["arrived"] - a0) / 600.0 * 3600.0
    assert flow == pytest.approx(600.0, rel=0.03)  # the whole corridor runs at the bottleneck's capacity


def test_free_flow_travel_times_exact():
    """A lone vehicle's travel time equals the sum of free-flow times on its route, to the microsecond."""
    city = synthetic.grid(6, 6, spacing_m=137.0, speed_mps=11.3)
    tw = make_twin({"city": {"source": "grid"}, "time": {"duration_s": 1200, "step_s": 1, "record_interval_s": 300},
                    "traffic": NEUTRAL}, city=city)
    tw.setup()
    T = tw.traffic
    results = {}

    def go(o, d, t0):
        yield tw.env.timeout(t0)
        r = yield T.drive(o, d)
        results[(o, d)] = r

    pairs = [("n0_0", "n5_5", 3.3), ("n2_1", "n0_4", 10.7), ("n5_0", "n0_5", 100.25)]
    for o, d, t0 in pairs:
        tw.env.process(go(o, d, t0))
    tw.env.run(until=1200)
    a = city.arrays
    for o, d, t0 in pairs:
        r = results[(o, d)]
        path = shortest_path(city, o, d)
        assert r.status == "arrived"
        assert r.depart_s == pytest.approx(t0)
        assert r.travel_time_s == pytest.approx(a.fft_s[path].sum(), abs=1e-6)
        assert r.distance_m == pytest.approx(a.length_m[path].sum(), abs=1e-6)


def test_unroutable_trips_counted_not_crashing():
    """Trips to a node nobody can reach are counted as unroutable; the rest run."""
    city = synthetic.grid(4, 4)
    G = city.G
    for u, v, k in list(G.in_edges("n3_3", keys=True)):  # n3_3 can be left but not reached
        G.remove_edge(u, v, k)
    city.invalidate()
    tw = make_twin({"city": {"source": "grid"}, "time": {"duration_s": 900, "step_s": 1, "record_interval_s": 300}},
                   city=city)
    tw.setup()
    idx = city.node_index
    T = tw.traffic
    T.add_trips(np.array([idx("n0_0"), idx("n0_0"), idx("n3_3")]), np.array([idx("n3_3"), idx("n2_2"), idx("n0_0")]),
                np.array([10.0, 10.0, 10.0]))
    tw.env.run(until=900)
    T._catch_up()
    k = T.kpis()
    assert k["trips_unroutable"].value == 1
    assert k["trips_completed"].value == 2


def test_drive_event_and_priority_vehicle_beat_congestion():
    """drive() fires on arrival; a priority vehicle passes a jam that delays an ordinary car."""
    tw, city = _line_twin(length=1000.0, bottleneck_vph=600.0, duration=3600)
    n = 300
    tw.traffic.add_trips(np.zeros(n, np.int32), np.full(n, 3, np.int32), np.arange(n) * 1.5)
    out = {}

    def go(name, prio):
        yield tw.env.timeout(700)
        r = yield tw.traffic.drive(0, 3, kind="emergency" if prio else "car", priority=prio, speed_factor=1.0)
        out[name] = (r, tw.env.now)

    tw.env.process(go("car", False))
    tw.env.process(go("amb", True))
    tw.env.run(until=3600)
    car, t_car = out["car"]
    amb, t_amb = out["amb"]
    ff = tw.traffic.fft[:3].sum()
    assert amb.travel_time_s < 0.5 * car.travel_time_s
    assert amb.travel_time_s >= ff - 1e-6
    assert t_amb >= amb.arrive_s and t_amb - amb.arrive_s < tw.traffic.dt + 1e-9  # fired within one step


def test_closure_diverts_traffic_and_reopens():
    """A closed link carries nothing while closed; routing goes around it; it carries traffic again after."""
    doc = {"seed": 5, "city": {"source": "grid", "grid": {"nx": 5, "ny": 5, "spacing_m": 150}, "zone_cell_m": 300},
           "time": {"duration_s": 2700, "step_s": 1, "record_interval_s": 300},
           "demand": {"trips": 4000, "model": "uniform"},
           "traffic": {**NEUTRAL, "closures": [{"link": "n2_2>n3_2", "start_s": 600, "end_s": 1800},
                                    {"link": "n3_2>n2_2", "start_s": 600, "end_s": 1800}]}}
    ds = make_twin(doc).run()
    f = ds["link_flow"].sel(link="n2_2>n3_2").values
    times = ds["time"].values
    closed = (times > 900) & (times <= 1800)  # an interval after the queue on it has drained
    assert np.all(f[closed] == 0)
    assert f[times == 300].item() > 0 and f[times > 2100].max() > 0
    assert ds["kpi_traffic_trips_unroutable"].item() == 0


def test_same_seed_same_results_different_seed_differs():
    """Bit-for-bit reproducible with the seed."""
    a = _grid_twin(trips=800, duration=900, seed=11).run()
    b = _grid_twin(trips=800, duration=900, seed=11).run()
    c = _grid_twin(trips=800, duration=900, seed=12).run()
    drop = ["created", "wall_time_s"]
    a.attrs = {k: v for k, v in a.attrs.items() if k not in drop}
    b.attrs = {k: v for k, v in b.attrs.items() if k not in drop}
    assert a.identical(b)
    assert not np.array_equal(a["trip_depart"].values, c["trip_depart"].values)


def test_freeflow_backend_has_no_delay():
    """The free-flow back-end (same kernel, no capacity limits) gives zero delay even under heavy demand."""
    ds = _grid_twin(trips=5000, duration=1200, traffic={"backend": "freeflow"}).run()
    assert ds["kpi_traffic_mean_delay"].item() == pytest.approx(0.0, abs=1e-6)
    meso = _grid_twin(trips=5000, duration=1200).run()
    assert meso["kpi_traffic_mean_delay"].item() > 1.0
