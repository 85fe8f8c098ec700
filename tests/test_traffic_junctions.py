"""The built-in model's junction model: signal and give-way capacities, merges, gridlock, closures.

Each test builds a small network, feeds it above capacity and measures discharge against the formula the
model claims to follow (green share x saturation flow; HBS gap acceptance; merge shares by capacity).
"""
from __future__ import annotations

import math

import networkx as nx
import numpy as np
import pytest

from conftest import make_twin
from agents.traffic import meso_kernel as K
from networks import junctions as J
from networks.graph import CityGraph

SAT = 1800.0  # veh/h/lane, the config default


def _city(nodes: dict, links: list, signal: tuple = ()) -> CityGraph:
    """nodes {id: (x, y)}; links [(u, v, lanes, road_class, capacity_vph)]; straight links, 13.89 m/s."""
    G = nx.MultiDiGraph()
    for n, (x, y) in nodes.items():
        G.add_node(n, x=float(x), y=float(y), lon=np.nan, lat=np.nan, signal=n in signal)
    for u, v, lanes, rc, cap in links:
        (xu, yu), (xv, yv) = nodes[u], nodes[v]
        G.add_edge(u, v, id=f"{u}>{v}", length_m=math.hypot(xv - xu, yv - yu), lanes=lanes, speed_mps=13.89,
                   capacity_vph=float(cap), road_class=rc)
    city = CityGraph(G, name="t")
    city.source = "test"
    return city


def _twin(city, duration=3600, traffic=None):
    tw = make_twin({"city": {"source": "line"}, "time": {"duration_s": duration, "step_s": 1, "record_interval_s": duration},
                    "traffic": {"reroute_share": 0.0, **(traffic or {})}}, city=city)
    tw.setup()
    return tw


def _exits_between(tw, link: int, t0: float, t1: float) -> int:
    """Vehicles leaving ``link`` in (t0, t1] (runs the clock to t1; records come only at the end)."""
    T = tw.traffic
    tw.env.run(until=t0)
    T._catch_up()
    T.cnt_exit[:] = 0
    tw.env.run(until=t1)
    T._catch_up()
    return int(T.cnt_exit[link])


def _uniform(tw, o, d, rate_vph, t0, t1):
    n = int((t1 - t0) * rate_vph / 3600.0)
    c = tw.city
    tw.traffic.add_trips(np.full(n, c.node_index(o), np.int32), np.full(n, c.node_index(d), np.int32),
                         t0 + np.arange(n) * 3600.0 / rate_vph)


def test_green_shares_from_a_signal_program():
    """Effective green = green + yellow - 4 s lost per green interval, over the cycle; always green = 1."""
    g, cycle = J.green_shares([(30.0, "Gr"), (3.0, "yr"), (2.0, "rr"), (50.0, "rG"), (5.0, "ry")])
    assert cycle == 90.0
    assert g[0] == pytest.approx((30 + 3 - 4) / 90)
    assert g[1] == pytest.approx((50 + 5 - 4) / 90)
    g, _ = J.green_shares([(10.0, "GG"), (10.0, "Gr")])
    assert g[0] == 1.0


def test_signalised_approach_discharges_at_green_share_times_saturation_flow():
    """An oversaturated two-lane approach to a signal with green share 0.4 passes 0.4 x 1800 x 2 veh/h (±5%)."""
    city = _city({"a": (0, 0), "b": (400, 0), "c": (800, 0), "s": (400, -400)},
                 [("a", "b", 2, "primary", 3600), ("b", "c", 2, "primary", 3600), ("s", "b", 1, "primary", 1800)],
                 signal=("b",))
    j = city.junctions()
    m = j.movement(city.link_index("a>b"), city.link_index("b>c"))
    assert j.mv_class[m] == J.SIGNAL
    j.mv_green[m] = 0.4
    j.mv_cycle[m] = 90.0
    tw = _twin(city)
    _uniform(tw, "a", "c", 2500.0, 0.0, 3000.0)
    n = _exits_between(tw, city.link_index("a>b"), 900.0, 2700.0)
    assert n * 2.0 == pytest.approx(0.4 * SAT * 2, rel=0.05)  # veh/h over 1800 s
    # and the queue is real: the approach holds vehicles
    assert tw.traffic.q_count[city.link_index("a>b")] > 20


def test_short_link_before_a_slow_turn_still_passes_its_demand():
    """A 6 m link (two vehicles of road) whose movement takes 16 s on the junction's internal lane passes 1500 veh/h.

    Its vehicles hold it for the turn time: with room for two it would pass 2 / 16.4 s = 439 veh/h. The storage
    floor counts (free-flow time + turn time) x capacity, as SUMO keeps a turning vehicle on the junction's
    internal lane, outside the link; this is what unlocked Bad Hersfeld's centre.
    """
    city = _city({"z": (-400, 0), "a": (0, 0), "b": (6, 0), "c": (406, 0)},
                 [("z", "a", 1, "primary", 1800), ("a", "b", 1, "primary", 1800), ("b", "c", 1, "primary", 1800)])
    j = city.junctions()
    m = j.movement(city.link_index("a>b"), city.link_index("b>c"))
    j.mv_turn_s[m] = 16.0
    tw = _twin(city)
    ab = city.link_index("a>b")
    assert tw.traffic.mv_delay[m] == pytest.approx(16.0)
    _uniform(tw, "z", "c", 1500.0, 0.0, 3000.0)
    n = _exits_between(tw, ab, 900.0, 2700.0)
    assert n * 2.0 == pytest.approx(1500.0, rel=0.05)  # veh/h over 1800 s


def _t_junction():
    # major road w -> j -> e (primary), minor road s -> j -> e (residential) merging into it
    return _city({"w": (0, 0), "j": (600, 0), "e": (1200, 0), "s": (600, -600)},
                 [("w", "j", 1, "primary", 1800), ("j", "e", 2, "primary", 3600), ("s", "j", 1, "residential", 1800)])


@pytest.mark.parametrize("q_major", [0.0, 400.0, 800.0])
def test_minor_stream_capacity_falls_with_major_flow_as_hbs_says(q_major):
    """Minor stream capacity = 3600/t_f exp(-q_p/3600 (t_g - t_f/2)) veh/h (a right turn: t_f 3.0 s; t_g 6.4 s), ±8%."""
    city = _t_junction()
    j = city.junctions()
    m = j.movement(city.link_index("s>j"), city.link_index("j>e"))
    assert j.mv_class[m] == J.YIELD and j.mv_dir[m] == -1  # s -> j -> e turns right
    assert j.movement(city.link_index("w>j"), city.link_index("j>e")) in j.cf_mv[j.cf_ptr[m]:j.cf_ptr[m + 1]]
    tw = _twin(city)
    if q_major:
        _uniform(tw, "w", "e", q_major, 0.0, 3400.0)
    _uniform(tw, "s", "e", 1500.0, 0.0, 3400.0)
    n = _exits_between(tw, city.link_index("s>j"), 1000.0, 3000.0)
    expected = 3600.0 / 3.0 * math.exp(-q_major / 3600.0 * (6.4 - 3.0 / 2))
    assert n * 1.8 == pytest.approx(expected, rel=0.08)


def test_merge_shares_downstream_supply_in_proportion_to_capacity():
    """Two priority approaches (1800 and 900 veh/h) into a 600 veh/h bottleneck get 2:1 of it (±10%)."""
    city = _city({"a": (0, 300), "b": (0, -300), "j": (400, 0), "c": (800, 0), "d": (1600, 0)},
                 [("a", "j", 1, "primary", 1800), ("b", "j", 1, "primary", 900), ("j", "c", 1, "primary", 600),
                  ("c", "d", 1, "primary", 1800)])
    tw = _twin(city, traffic={"junctions": False})
    _uniform(tw, "a", "d", 1500.0, 0.0, 3400.0)
    _uniform(tw, "b", "d", 800.0, 0.0, 3400.0)
    T = tw.traffic
    tw.env.run(until=1200)
    T._catch_up()
    T.cnt_exit[:] = 0
    tw.env.run(until=3000)
    T._catch_up()
    na, nb = T.cnt_exit[city.link_index("a>j")], T.cnt_exit[city.link_index("b>j")]
    assert (na + nb) * 2.0 == pytest.approx(600.0, rel=0.05)  # the bottleneck is full
    assert na / nb == pytest.approx(2.0, rel=0.10)


def _ring_city():
    # a one-way square block with a long approach: fills to gridlock when everybody circles it
    pts = {"a": (0, 0), "b": (60, 0), "c": (60, 60), "d": (0, 60), "x": (-600, 0)}
    return _city(pts, [("a", "b", 1, "residential", 1800), ("b", "c", 1, "residential", 1800),
                       ("c", "d", 1, "residential", 1800), ("d", "a", 1, "residential", 1800),
                       ("x", "a", 1, "residential", 1800), ("a", "x", 1, "residential", 1800)])


@pytest.mark.parametrize("gridlock_s", [300.0, 86400.0])
def test_no_vehicle_lost_in_a_gridlock(gridlock_s):
    """Cars circling a block lock it; every car is always in exactly one state, with or without the gridlock rule."""
    city = _ring_city()
    tw = _twin(city, duration=2400, traffic={"gridlock_time_s": gridlock_s})
    c = city.node_index
    n = 200
    # from each corner to the corner before it: three sides of the block each
    o = np.array([c(k) for k in "abcd"] * (n // 4), np.int32)
    d = np.array([c(k) for k in "dabc"] * (n // 4), np.int32)
    tw.traffic.add_trips(o, d, np.arange(n) * 0.5)
    T = tw.traffic
    for t in range(60, 2400, 60):
        tw.env.run(until=t)
        T._catch_up()
        k = T.counts()
        assert k["total"] == (k["arrived"] + k["running"] + k["pending_due"] + k["pending_future"]
                              + k["unroutable"] + k["stranded"])
        assert k["in_queues"] + k["priority_running"] == k["running"]
    kp = T.kpis()
    assert kp["trips_completed"].value < n  # it does lock
    if gridlock_s < 2400:
        assert kp["gridlock_resolutions"].value > 0  # the rule moves heads on, one per gridlock time ...
        assert kp["trips_completed"].value >= kp["gridlock_resolutions"].value  # ... and they finish
    else:
        assert kp["gridlock_resolutions"].value == 0


def test_gridlock_rule_moves_only_the_first_vehicle_after_it_stood_still():
    """Resolutions never come before gridlock_time_s of standing, and the waited time stays in travel time."""
    city = _ring_city()
    tw = _twin(city, duration=2400, traffic={"gridlock_time_s": 300.0})
    c = city.node_index
    n = 200
    tw.traffic.add_trips(np.array([c(k) for k in "abcd"] * (n // 4), np.int32),
                         np.array([c(k) for k in "dabc"] * (n // 4), np.int32), np.arange(n) * 0.5)
    T = tw.traffic
    tw.env.run(until=2400)
    T._catch_up()
    assert T.kpis()["gridlock_resolutions"].value > 0
    done = T.v_status[:n] == 0
    tt = (T.v_arrive[:n] - T.v_depart[:n])[done]
    assert tt.max() > 300.0  # the moved vehicles stood 300 s first and keep that time
    assert np.all(tt >= T.v_fft[:n][done] - 1e-6)


def test_closed_link_carries_nothing_and_reports_no_speed():
    """A link closed from the start has zero flow and NaN speed (not free-flow) in every record."""
    doc = {"seed": 5, "city": {"source": "grid", "grid": {"nx": 5, "ny": 5, "spacing_m": 150}, "zone_cell_m": 300},
           "time": {"duration_s": 1800, "step_s": 1, "record_interval_s": 300},
           "demand": {"trips": 3000, "model": "uniform"},
           "traffic": {"closures": [{"link": "n2_2>n3_2", "start_s": 0}]}}
    ds = make_twin(doc).run()
    sel = ds.sel(link="n2_2>n3_2")
    assert np.all(sel["link_flow"].values == 0)
    assert np.all(np.isnan(sel["link_speed"].values))
    open_link = ds.sel(link="n1_2>n2_2")
    assert np.all(np.isfinite(open_link["link_speed"].values))
    ff = ds["link_length"] / ds["link_freeflow_speed"]
    assert float(ff.sel(link="n1_2>n2_2")) == pytest.approx(150.0 / 13.89, rel=1e-6)  # free flow means free flow


def test_junction_model_is_reproducible_bit_for_bit():
    """Same scenario and seed give identical results with the junction model on (signals and give-way)."""
    doc = {"seed": 9, "city": {"source": "radial", "radial": {"rings": 3, "spokes": 6}, "zone_cell_m": 500},
           "time": {"duration_s": 1500, "step_s": 1, "record_interval_s": 300},
           "demand": {"trips": 2500, "end_s": 1000}}
    a, b = make_twin(doc).run(), make_twin(doc).run()
    for ds in (a, b):
        ds.attrs = {k: v for k, v in ds.attrs.items() if k not in ("created", "wall_time_s")}
    assert a.identical(b)
    assert float(a["kpi_traffic_trips_completed"]) > 1000


def test_routing_queries_work_on_the_built_in_model():
    """route(), travel_time_s() and times_to() answer on meso (issue 14: an array shadowed _costs())."""
    doc = {"seed": 2, "city": {"source": "grid", "grid": {"nx": 4, "ny": 4, "spacing_m": 200}, "zone_cell_m": 400},
           "time": {"duration_s": 600, "step_s": 1, "record_interval_s": 300}, "demand": {"trips": 200}}
    tw = make_twin(doc)
    tw.setup()
    tw.env.run(until=300)
    T = tw.traffic
    path = T.route("n0_0", "n3_3")
    assert len(path) == 6
    tt = T.travel_time_s("n0_0", "n3_3")
    assert tt >= 6 * 200.0 / 13.89
    free = T.travel_time_s("n0_0", "n3_3", congested=False)
    assert free <= tt + 1e-9
    times = T.times_to("n3_3")
    assert times[tw.city.node_index("n0_0")] == pytest.approx(tt)
    assert times[tw.city.node_index("n3_3")] == 0.0


def _chain_junctions(tl_first: str, mid_len_m: float, tl_last: str = "T"):
    """Links 0 -> 1 -> 2 -> 3: signal ``tl_first`` at 0's end, a priority node at 1's end, signal ``tl_last`` at 2's."""
    rows = [(0, 1, 2.0, 3, J.SIGNAL if tl_first else J.PRIORITY, 0.5, 90.0, 0.0, tl_first, [0] if tl_first else [], 0),
            (1, 2, 2.0, 3, J.PRIORITY, 1.0, 0.0, 0.0, "", [], 0),
            (2, 3, 2.0, 3, J.SIGNAL, 0.5, 90.0, 0.0, tl_last, [1], 0)]
    j = J._build(4, rows, {}, np.full(4, 3, np.int64))
    return j, np.array([200.0, mid_len_m, 1.0, 200.0])


def test_same_green_feed_looks_through_short_unsignalised_cluster_links():
    """A head fed by the same controller across a 1 m priority piece waits no second red; another controller,
    an uncontrolled source or a long link between the heads keeps the uniform delay."""
    j, length = _chain_junctions("T", 1.0)
    assert J.same_green_feed(j, length, 15.0).tolist() == [False, False, True]  # only the downstream head
    j, length = _chain_junctions("U", 1.0)
    assert not J.same_green_feed(j, length, 15.0)[2]  # vehicles released by another controller
    j, length = _chain_junctions("T", 80.0)
    assert not J.same_green_feed(j, length, 15.0)[2]  # a real link between: they arrive spread over the cycle
    j, length = _chain_junctions("", 1.0)
    assert not J.same_green_feed(j, length, 15.0)[2]  # an unsignalised source


def test_free_lane_share_counts_only_lanes_not_held_ahead():
    """A two-lane movement behind a vehicle blocked on its left lane discharges on one lane: share 1/2."""
    from agents.traffic.meso_kernel import free_lane_share
    assert free_lane_share(0b11, 0b00) == 1.0
    assert free_lane_share(0b11, 0b10) == 0.5
    assert free_lane_share(0b110, 0b001) == 1.0
    assert free_lane_share(0b111, 0b011) == pytest.approx(1 / 3)


def test_shared_lane_held_by_a_waiting_turner_halves_the_through_discharge():
    """Two-lane approach, through movement on both lanes, a turn on the left lane that can never go: while a
    turner stands at the head, through vehicles leave at one lane's saturation flow (1,800 veh/h), not two."""
    city = _city({"a": (0, 0), "b": (400, 0), "c": (800, 0), "s": (400, 400)},
                 [("a", "b", 2, "primary", 7200), ("b", "c", 2, "primary", 7200), ("b", "s", 1, "primary", 1800)])
    j = city.junctions()
    ab, bc, bs = city.link_index("a>b"), city.link_index("b>c"), city.link_index("b>s")
    ms, ml = j.movement(ab, bc), j.movement(ab, bs)
    j.mv_lanes[ms], j.mv_lanemask[ms] = 2.0, 0b11
    j.mv_lanes[ml], j.mv_lanemask[ml] = 1.0, 0b10
    tw = _twin(city, traffic={"gridlock_time_s": 3000})
    T = tw.traffic
    T.mv_rate[ml] = 0.0  # the turn never gets to go (a permissive turn with no gap)
    T.mv_acc[ml] = 0.0  # nor has it a start-up credit
    c = tw.city
    tw.traffic.add_trips(np.array([c.node_index("a")], np.int32), np.array([c.node_index("s")], np.int32),
                         np.array([0.0]))
    _uniform(tw, "a", "c", 5000, 5.0, 1205.0)
    n = _exits_between(tw, ab, 300.0, 900.0)
    assert n == pytest.approx(600 * SAT / 3600.0, rel=0.06)  # one lane: ~300 in 600 s (two lanes would be ~600)


def test_green_parts_split_protected_and_permissive_green():
    """50 s 'g' then 6 s 'G' and 3 s yellow in a 90 s cycle: the interval's 4 s lost time is charged 2 s to the
    part that starts it ('g') and 2 s to the part that ends it ('G' with its yellow); the parts sum to the share."""
    phases = [(50.0, "gG"), (6.0, "Gr"), (3.0, "yr"), (31.0, "rr")]
    prot, perm, cycle = J.green_parts(phases)
    total, _ = J.green_shares(phases)
    assert cycle == 90.0
    assert perm[0] == pytest.approx((50 - 2) / 90)
    assert prot[0] == pytest.approx((6 + 3 - 2) / 90)
    assert prot[0] + perm[0] == pytest.approx(total[0])
    assert perm[1] == 0.0 and prot[1] == pytest.approx(total[1])
    # the opposing stream (index 1) is green during all of index 0's 'g': its flow there is its mean / its share
    assert J.permissive_foe_weights(phases, [0], [1], 0.4) == pytest.approx(1 / 0.4)
    # a foe never green with it takes no gaps from it
    assert J.permissive_foe_weights([(50.0, "gr"), (40.0, "rG")], [0], [1], 0.4) == 0.0


def _permissive_approach(q_foe_vph: float):
    """Approach a -> b -> c (one lane) with 6 s 'G' + 50 s 'g' of a 90 s cycle, giving way while 'g' to the
    crossing stream n -> b -> s (always green, ``q_foe_vph``). Returns the subject's discharge (veh/h)."""
    city = _city({"a": (0, 0), "b": (400, 0), "c": (800, 0), "n": (400, 400), "s": (400, -400)},
                 [("a", "b", 1, "primary", 1800), ("b", "c", 1, "primary", 1800), ("n", "b", 1, "primary", 1800),
                  ("b", "s", 1, "primary", 1800)], signal=("b",))
    j = city.junctions()
    m = j.movement(city.link_index("a>b"), city.link_index("b>c"))
    foe = j.movement(city.link_index("n>b"), city.link_index("b>s"))
    assert j.mv_class[m] == J.SIGNAL and j.mv_class[foe] == J.SIGNAL and j.cf_mv.size == 0
    j.mv_green[m], j.mv_permissive_share[m], j.mv_cycle[m] = 56 / 90, 50 / 90, 90.0
    j.mv_green[foe], j.mv_cycle[foe] = 1.0, 0.0
    j.cf_ptr = np.where(np.arange(j.n_movements + 1) > m, 1, 0).astype(np.int64)
    j.cf_mv, j.cf_w = np.array([foe], np.int32), np.array([1.0])
    tw = _twin(city)
    if q_foe_vph:
        _uniform(tw, "n", "s", q_foe_vph, 0.0, 3400.0)
    _uniform(tw, "a", "c", 1500.0, 0.0, 3400.0)
    return _exits_between(tw, city.link_index("a>b"), 1000.0, 3000.0) * 1.8


@pytest.mark.parametrize("q_foe", [0.0, 600.0])
def test_protected_plus_permissive_green_discharges_both_parts(q_foe):
    """6 s 'G' + 50 s 'g' (90 s cycle): saturation flow x 6/90 plus the gap capacity 1800 exp(-q_p (t_g - t_f/2))
    x 50/90 (t_f = 2 s = 1 / saturation flow, t_g 4.5 s), ±5%; with no conflicting flow that is 1800 x 56/90,
    as if all 56 s were protected. With the old rule ('G' and 'g' alike) it was 1800 x 56/90 at any foe flow."""
    n = _permissive_approach(q_foe)
    gap = SAT * math.exp(-q_foe / 3600.0 * (4.5 - 2.0 / 2))
    assert n == pytest.approx(SAT * 6 / 90 + gap * 50 / 90, rel=0.05)


@pytest.mark.parametrize("credit, t_ready", [(2.0, 100), (0.2, 107)])
def test_permissive_gap_wait_makes_a_lone_arrival_wait_for_its_gap(credit, t_ready):
    """Option permissive_gap_wait: a turner arriving in the step (99, 100] s at an idle permissive movement
    (capacity 0.1 veh/s) finds only its protected share (0.2) of a vehicle banked and waits (1 - 0.2) / 0.1 = 8 s
    from the step's start (ready at 107 s); without it (credit >= 1) the account saved while idle lets it go at once."""
    from agents.traffic.meso_kernel import _movement_ready
    z = np.zeros(1)
    acc, tacc = np.ones(1), np.zeros(1)
    args = (np.array([0.02]), np.zeros(2, np.int64), np.zeros(0, np.int32), z.copy(), z.copy(), np.array([2.0]),
            np.array([4.5]))
    for t in range(100, 120):
        if _movement_ready(0, float(t), 1.0, 1.0, 120.0, *args, acc, tacc, np.array([0.08]), np.zeros(0),
                           np.array([credit])):
            break
    assert t == t_ready


@pytest.mark.parametrize("lookahead_m, expected_vph", [(0.0, 3000.0), (50.0, SAT)])
def test_lanes_chosen_ahead_hold_an_onward_movement_to_its_lanes(lookahead_m, expected_vph):
    """Two-lane approach a -> b into a 20 m link b -> c whose straight-on movement is reached only from lane 0
    (lane 1 leads to the left turn c -> e). With lane_lookahead_m the 3,000 veh/h going straight pass on one lane
    (1,800 veh/h, ±5%); without it on both (all 3,000)."""
    city = _city({"a": (0, 0), "b": (400, 0), "c": (420, 0), "d": (820, 0), "e": (420, 400)},
                 [("a", "b", 2, "primary", 7200), ("b", "c", 2, "primary", 7200), ("c", "d", 2, "primary", 7200),
                  ("c", "e", 1, "primary", 1800)])
    j = city.junctions()
    ab, bc, cd = city.link_index("a>b"), city.link_index("b>c"), city.link_index("c>d")
    m = j.movement(ab, bc)
    onward = range(int(j.mv_ptr[bc]), int(j.mv_ptr[bc + 1]))
    assert len(onward) == 2 and j.mv_lanes[m] == 2.0
    j.nx_ptr = np.where(np.arange(j.n_movements + 1) > m, 2, 0).astype(np.int64)
    j.nx_mask = np.array([0b01 if j.mv_out[k] == cd else 0b10 for k in onward], np.int64)
    tw = _twin(city, traffic={"lane_lookahead_m": lookahead_m})
    _uniform(tw, "a", "d", 3000.0, 0.0, 3400.0)
    n = _exits_between(tw, ab, 900.0, 2700.0)
    assert n * 2.0 == pytest.approx(expected_vph, rel=0.05)


@pytest.mark.parametrize("stand", [False, True])
def test_unroutable_trip_stands_on_the_rightmost_lane_until_the_gridlock_rule(stand):
    """A trip whose pinned first and last links have no path between them (SUMO inserts it anyway with
    --ignore-route-errors): with stand_unroutable it departs, holds lane 0 at the end of its first link, so the
    two-lane through traffic behind it passes on one lane (1,800 veh/h, ±6%), and after gridlock_time_s it is
    moved on and arrives (one gridlock resolution); without the option it never enters (unroutable)."""
    city = _city({"a": (0, 0), "b": (400, 0), "c": (800, 0), "x": (0, 800), "y": (400, 800)},
                 [("a", "b", 2, "primary", 7200), ("b", "c", 2, "primary", 7200), ("x", "y", 1, "primary", 1800)])
    tw = _twin(city, duration=1500, traffic={"gridlock_time_s": 600.0, "stand_unroutable": stand})
    T, c = tw.traffic, tw.city
    ab, xy = c.link_index("a>b"), c.link_index("x>y")
    T.add_trips(np.array([c.node_index("a")], np.int32), np.array([c.node_index("y")], np.int32), np.array([0.0]))
    T.v_first[0], T.v_last[0] = ab, xy  # pinned ends with no path from a>b to x>y
    _uniform(tw, "a", "c", 5000, 5.0, 1205.0)
    n = _exits_between(tw, ab, 200.0, 500.0)
    tw.env.run(until=1500)
    T._catch_up()
    if not stand:
        assert T.v_status[0] == K.UNROUTABLE
        assert n == pytest.approx(300 * 2 * SAT / 3600.0, rel=0.06)  # both lanes
        return
    assert n == pytest.approx(300 * SAT / 3600.0, rel=0.06)  # lane 0 held: one lane's saturation flow
    assert T.v_status[0] == K.ARRIVED
    assert T.kpis()["gridlock_resolutions"].value == 1
    assert T.v_arrive[0] - T.v_depart[0] >= 600.0 + T.fft[ab] - 1e-6  # its standing time stays in its travel time


@pytest.mark.parametrize("lane_queues", [False, True])
def test_a_long_queue_on_one_lane_stops_the_other_lane_only_with_lane_queues(lane_queues):
    """Two-lane approach: lane 0 only turns right into a turn that never goes, lane 1 only goes straight. Twenty
    right-turners arrive first, then 3,000 veh/h straight on. With lane_queues the straight-on traffic passes
    on lane 1 at one lane's saturation flow (1,800 veh/h, ±6%); without it the look behind the blocked head
    ends after 8 vehicles, all standing right-turners, and nothing passes."""
    city = _city({"a": (0, 0), "b": (400, 0), "c": (800, 0), "s": (400, -400)},
                 [("a", "b", 2, "primary", 7200), ("b", "c", 2, "primary", 7200), ("b", "s", 1, "primary", 1800)])
    j = city.junctions()
    ab, bc, bs = city.link_index("a>b"), city.link_index("b>c"), city.link_index("b>s")
    ms, mr = j.movement(ab, bc), j.movement(ab, bs)
    j.mv_lanes[ms], j.mv_lanemask[ms] = 1.0, 0b10
    j.mv_lanes[mr], j.mv_lanemask[mr] = 1.0, 0b01
    tw = _twin(city, traffic={"gridlock_time_s": 3000, "lane_queues": lane_queues})
    T = tw.traffic
    T.mv_rate[mr] = 0.0  # the right turn never goes
    T.mv_acc[mr] = 0.0
    _uniform(tw, "a", "s", 3600, 0.0, 20.0)
    _uniform(tw, "a", "c", 3000, 25.0, 1225.0)
    n = _exits_between(tw, ab, 300.0, 900.0)
    assert n == (pytest.approx(600 * SAT / 3600.0, rel=0.06) if lane_queues else 0)
