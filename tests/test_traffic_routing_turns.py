"""Routing of the built-in model (session 6): turn-based tables, smoothed costs, pinned count incidence.

- Turn-based tables (``turn_costs``): a movement with a larger delay is routed around where an equal path exists,
  even when the link's other movements are free (node tables see only the link's least delay).
- With no movement costs the turn-based labels equal node Dijkstra distances.
- Smoothed routing costs (``route_cost_tau_s``) follow a step change with the documented time constant.
- The count calibration's assignment (``count_incidence``) walks exactly the pinned routes the model drives.
"""
from __future__ import annotations

import math

import networkx as nx
import numpy as np
import pytest

from agents.traffic import meso_kernel as K
from agents.traffic.counts.assign import count_incidence, pinned_ends
from conftest import make_twin
from networks.graph import CityGraph
from networks.routing import dijkstra_to, movement_graph, turn_route_tables


def _city(nodes: dict, links: list, signal: tuple = ()) -> CityGraph:
    """nodes {id: (x, y)}; links [(u, v)]: one lane, primary, 1800 veh/h, 13.89 m/s, straight."""
    G = nx.MultiDiGraph()
    for n, (x, y) in nodes.items():
        G.add_node(n, x=float(x), y=float(y), lon=np.nan, lat=np.nan, signal=n in signal)
    for u, v in links:
        (xu, yu), (xv, yv) = nodes[u], nodes[v]
        G.add_edge(u, v, id=f"{u}>{v}", length_m=math.hypot(xv - xu, yv - yu), lanes=1, speed_mps=13.89,
                   capacity_vph=1800.0, road_class="primary")
    city = CityGraph(G, name="t")
    city.source = "test"
    return city


def _diamond():
    """o -> a -> d and o -> b -> d; the a-path is 10 m shorter; at a a right turn a -> e is always green, the
    through movement a -> d has a red phase (green share 0.3, cycle 90 s: Webster's delay 22 s)."""
    city = _city({"o": (0, 0), "a": (400, 145), "b": (400, -150), "d": (800, 0), "e": (400, 500)},
                 [("o", "a"), ("a", "d"), ("o", "b"), ("b", "d"), ("a", "e")], signal=("a",))
    j = city.junctions()
    i_oa, i_ad, i_ae = city.link_index("o>a"), city.link_index("a>d"), city.link_index("a>e")
    m_thru, m_right = j.movement(i_oa, i_ad), j.movement(i_oa, i_ae)
    assert m_thru >= 0 and m_right >= 0
    j.mv_class[m_thru] = j.mv_class[m_right] = 5  # signal-controlled (a lone in-link gets no signal of its own)
    j.mv_green[m_thru], j.mv_cycle[m_thru] = 0.3, 90.0
    j.mv_green[m_right], j.mv_cycle[m_right] = 1.0, 90.0
    return city


def _share_via_a(turn: bool) -> float:
    city = _diamond()
    tw = make_twin({"city": {"source": "line"}, "time": {"duration_s": 1500, "step_s": 1, "record_interval_s": 1500},
                    "traffic": {"reroute_share": 0.0, "turn_costs": turn, "pin_end_links": False}}, city=city)
    tw.setup()
    T = tw.traffic
    n = 60  # 240 veh/h: no queues, routing decides alone
    T.add_trips(np.full(n, city.node_index("o"), np.int32), np.full(n, city.node_index("d"), np.int32),
                np.arange(n) * 15.0)
    tw.env.run(until=1500)
    T._catch_up()
    assert T.counts()["arrived"] == n
    first = T.route_buf[T.v_rstart[:n]]
    return float(np.mean(first == city.link_index("o>a")))


def test_a_movement_with_a_larger_delay_is_routed_around_when_an_equal_path_exists():
    """Node tables price link o>a by its least movement delay (the free right turn): every trip takes the 10 m
    shorter a-path and waits at the red. Turn-based tables price the through movement itself: every trip
    goes via b."""
    assert _share_via_a(turn=False) == 1.0
    assert _share_via_a(turn=True) == 0.0


def test_turn_labels_equal_node_distances_without_movement_costs():
    """On a grid with no junction model (every link continues onto every out-link, no turn cost) the best first
    link's label from each node equals the node Dijkstra distance to the target, and following the table
    reaches the target."""
    tw = make_twin({"city": {"source": "grid", "grid": {"nx": 5, "ny": 4, "spacing_m": 200}},
                    "time": {"duration_s": 600, "step_s": 1}, "traffic": {"junctions": False}})
    a = tw.city.arrays
    rng = np.random.default_rng(3)
    cost = a.fft_s * rng.uniform(0.5, 2.0, a.n_links)
    g = movement_graph(a, np.zeros(a.n_links + 1, np.int64), np.zeros(0, np.int32))
    targets = np.array([0, 7, a.n_nodes - 1])
    dist, nxt = turn_route_tables(targets, cost, np.zeros(0), g, a)
    L = a.n_links
    for r, d in enumerate(targets):
        dn, _ = dijkstra_to(int(d), cost, a.in_indptr, a.in_links, a.link_from, a.n_nodes)
        assert np.allclose(dist[r, L:], dn)
        for u in range(a.n_nodes):
            buf = np.zeros(4 * L, np.int32)
            n = K.follow_turns(r, -1, u, -1, d, nxt, a.link_to, buf, 0, L + a.n_nodes)
            assert n >= 0 and (u == d or a.link_to[buf[n - 1]] == d)
            assert cost[buf[:n]].sum() == pytest.approx(dn[u])


def test_smoothed_routing_costs_follow_a_step_with_the_documented_time_constant():
    """A link's cost steps from 10 s to 40 s; sampled every 10 s, the smoothed cost after tau = 90 s has gone
    1 - 1/e of the way (exponential moving average), and a closed link is inf at once."""
    tw = make_twin({"city": {"source": "grid", "grid": {"nx": 3, "ny": 3, "spacing_m": 200}},
                    "time": {"duration_s": 600, "step_s": 1},
                    "traffic": {"route_cost_tau_s": 90.0, "route_sample_s": 10.0}})
    tw.setup()
    T = tw.traffic
    L = T.L
    T._ema_link = np.full(L, 10.0)
    T._ema_t = 0.0
    step = np.full(L, 40.0)
    step[1] = np.inf
    T._raw_costs = lambda: (step, None)
    for t in range(10, 91, 10):
        T.t = float(t)
        T._sample_costs()
    assert T._ema_link[0] == pytest.approx(40.0 - 30.0 * math.exp(-1.0), rel=1e-12)
    assert np.isinf(T._ema_link[1])
    T.t = 10_000.0
    T._sample_costs()
    assert T._ema_link[0] == pytest.approx(40.0, rel=1e-9)


def test_pinned_count_incidence_equals_the_pinned_routes_driven():
    """Light traffic, no table refresh before the last departure: the assignment's walk (first link, path to the
    last link's tail, last link) passes exactly the links the model's pinned trips drove, link by link."""
    tw = make_twin({"seed": 4, "city": {"source": "grid", "grid": {"nx": 5, "ny": 5, "spacing_m": 150},
                                        "zone_cell_m": 300},
                    "time": {"duration_s": 1200, "step_s": 1, "record_interval_s": 300},
                    "demand": {"trips": 150, "end_s": 250},
                    "traffic": {"reroute_share": 0.0, "reroute_interval_s": 300, "pin_end_links": True}})
    tw.setup()
    T = tw.traffic
    costs = T._link_costs.copy()  # the costs the tables were built on (first refresh at 300 s)
    tw.env.run(until=1200)
    T._catch_up()
    n = T.n_veh
    routed = np.flatnonzero(T.v_rlen[:n] > 0)
    assert len(routed) > 100 and np.all(T.v_depart[routed] < 300)
    driven = np.zeros(T.L, np.int64)
    for v in routed:
        np.add.at(driven, T.route_buf[T.v_rstart[v]: T.v_rstart[v] + T.v_rlen[v]], 1)
    trips = {"origin": T.v_orig[routed], "destination": T.v_dest[routed], "depart_s": T.v_depart[routed]}
    L = T.L
    ob, _ = count_incidence(tw.city, trips, np.zeros(len(routed), np.int64), costs[None, :],
                            np.array([0.0, 1e9]), np.arange(L), np.full(L, -1), np.zeros(L), np.full(L, 1e12),
                            pin_end_links=True)
    assert np.array_equal(np.bincount(ob, minlength=L), driven)
    f, e = pinned_ends(tw.city, trips["origin"], trips["destination"])
    assert np.array_equal(f, T.v_first[routed]) and np.array_equal(e, T.v_last[routed])
    # and node-to-node walking would not (the test can fail): it differs on some link
    ob2, _ = count_incidence(tw.city, trips, np.zeros(len(routed), np.int64), costs[None, :],
                             np.array([0.0, 1e9]), np.arange(L), np.full(L, -1), np.zeros(L), np.full(L, 1e12),
                             pin_end_links=False)
    assert not np.array_equal(np.bincount(ob2, minlength=L), driven)


def test_sumo_like_routing_is_the_default_on_sumo_networks_only():
    """Null options resolve to SUMO's routing rules on a SUMO network and to the fast node tables elsewhere;
    explicit values win."""
    from types import SimpleNamespace

    from agents.traffic.config import TrafficConfig

    sumo, grid = SimpleNamespace(sumo_net="x.net.xml"), SimpleNamespace(sumo_net=None)
    c = TrafficConfig()
    assert tuple(c.routing_for(sumo)) == (True, True, 60.0, 90.0, 0.92)
    assert tuple(c.routing_for(grid)) == (False, False, 300.0, 0.0, 1.0)
    c2 = TrafficConfig(turn_costs=False, pin_end_links=False, speed_scale=1.0, reroute_interval_s=120)
    assert tuple(c2.routing_for(sumo)) == (False, False, 120.0, 0.0, 1.0)
    assert TrafficConfig(reroute_interval_s=30).routing_for(sumo).route_refresh_s == 30.0
