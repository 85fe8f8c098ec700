"""A short link into a signal passes what the signal lets through (issue 13, session 9).

Bad Hersfeld's 7.5 m link ``23979548#0`` runs into a signal (2 lanes, green share 0.41, 90 s cycle, 4.7 s turn
on the junction's internal lane). Each vehicle holds its in-link for the free-flow time plus its movement's
fixed delay (turn time + Webster's uniform delay, ~21 s there); with room for 5 the link passed 5 / 21 s =
840 veh/h where the signal passes 0.41 x 1800 x 2 = 1,480 and SUMO micro 1,530. The storage floor now counts
what the movements hold at their capacity (Little's law), so the short link discharges at green share x
saturation flow x lanes, as a long one does.
"""
from __future__ import annotations

import math

import networkx as nx
import numpy as np
import pytest

from conftest import make_twin
from networks import junctions as J
from networks.graph import CityGraph

SAT = 1800.0  # veh/h/lane, the config default


def _approach(short_m: float, lanes: int, green: float, turn_s: float, cycle: float = 90.0):
    """z -(400 m)-> a -(short_m)-> b (signal) -(400 m)-> c, plus a one-lane side road s -> b; ``lanes`` each."""
    nodes = {"z": (-400.0, 0.0), "a": (0.0, 0.0), "b": (short_m, 0.0), "c": (short_m + 400.0, 0.0),
             "s": (short_m, -400.0)}
    links = [("z", "a", lanes), ("a", "b", lanes), ("b", "c", lanes), ("s", "b", 1)]
    G = nx.MultiDiGraph()
    for n, (x, y) in nodes.items():
        G.add_node(n, x=x, y=y, lon=np.nan, lat=np.nan, signal=n == "b")
    for u, v, n_lanes in links:
        (xu, yu), (xv, yv) = nodes[u], nodes[v]
        G.add_edge(u, v, id=f"{u}>{v}", length_m=math.hypot(xv - xu, yv - yu), lanes=n_lanes, speed_mps=13.89,
                   capacity_vph=SAT * n_lanes, road_class="primary")
    city = CityGraph(G, name="t")
    city.source = "test"
    j = city.junctions()
    m = j.movement(city.link_index("a>b"), city.link_index("b>c"))
    assert j.mv_class[m] == J.SIGNAL
    j.mv_green[m], j.mv_cycle[m], j.mv_turn_s[m] = green, cycle, turn_s
    return city, m


def _discharge_vph(city, demand_vph: float = 2500.0) -> tuple[float, object]:
    """Vehicles per hour leaving a>b between 900 s and 2700 s with ``demand_vph`` offered from z for 3000 s."""
    tw = make_twin({"city": {"source": "line"}, "time": {"duration_s": 3600, "step_s": 1, "record_interval_s": 3600},
                    "traffic": {"reroute_share": 0.0}}, city=city)
    tw.setup()
    T = tw.traffic
    n = int(3000 * demand_vph / 3600)
    T.add_trips(np.full(n, city.node_index("z"), np.int32), np.full(n, city.node_index("c"), np.int32),
                np.arange(n) * 3600.0 / demand_vph)
    ab = city.link_index("a>b")
    tw.env.run(until=900.0)
    T._catch_up()
    T.cnt_exit[:] = 0
    tw.env.run(until=2700.0)
    T._catch_up()
    return float(T.cnt_exit[ab]) * 2.0, T


@pytest.mark.parametrize("short_m, lanes, green, turn_s", [
    (7.5, 2, 0.411, 4.69),   # Bad Hersfeld 23979548#0 -> 240545277 (was 840 veh/h)
    (7.0, 2, 0.41, 0.0),     # the same without the turn time (was 412 veh/h: room for 2, 16 s held)
    (1.0, 1, 0.25, 0.0),     # a 1 m cluster piece, one lane, a long red
    (15.0, 3, 0.30, 2.0),    # just under two vehicles per lane
])
def test_short_link_into_a_signal_discharges_at_green_share_times_saturation_flow(short_m, lanes, green, turn_s):
    city, m = _approach(short_m, lanes, green, turn_s)
    vph, T = _discharge_vph(city)
    assert vph == pytest.approx(green * SAT * lanes, rel=0.05)
    # the held time is the whole fixed delay: turn time + Webster's uniform delay c (1 - g)^2 / 2
    assert T.mv_delay[m] == pytest.approx(turn_s + 90.0 * (1.0 - green) ** 2 / 2.0)
    # and the queue stands upstream, on the 400 m link, as in SUMO
    assert T.q_count[city.link_index("z>a")] > 10


def test_storage_floor_is_what_the_movements_hold_at_capacity():
    """Storage = ceil(capacity x (free-flow time + fixed delay + one step)) where that exceeds the link's room,
    and a long link keeps its room (length x lanes / 7.5 m)."""
    city, m = _approach(7.0, 2, 0.41, 0.0)
    tw = make_twin({"city": {"source": "line"}, "time": {"duration_s": 60, "step_s": 1, "record_interval_s": 60},
                    "traffic": {"reroute_share": 0.0}}, city=city)
    tw.setup()
    T = tw.traffic
    ab, za = city.link_index("a>b"), city.link_index("z>a")
    held = 0.41 * SAT * 2 / 3600.0 * (T.fft[ab] + T.mv_delay[m] + 1.0)
    assert T.storage[ab] == math.ceil(held)
    assert T.storage[ab] > 2 * 7.0 / 7.5 + 2  # far above its physical room
    assert T.storage[za] == math.floor(400.0 * 2 / 7.5)


def test_two_movements_fill_the_link_capacity_longest_held_first():
    """A link whose movements together could pass more than the link: the floor counts the longest-held ones up
    to the link's capacity (the most vehicles the link can hold at once while passing its capacity)."""
    from agents.traffic.meso import MesoTraffic

    class Stub:
        L = 1
        fft = np.array([1.0])
        mv_ptr = np.array([0, 2])
        mv_delay = np.array([10.0, 30.0])
        mv_rate = np.array([0.6, 0.6])
        mv_prate = np.zeros(2)
        dt = 1.0

    # cap 1.0 veh/s: 0.6 veh/s held 32 s, then the remaining 0.4 veh/s held 12 s -> 19.2 + 4.8 = 24
    assert MesoTraffic._held_floor(Stub(), np.array([1.0]))[0] == 24.0
    # cap 0.5 veh/s: only the longest-held movement counts, up to the link's capacity -> 16
    assert MesoTraffic._held_floor(Stub(), np.array([0.5]))[0] == 16.0
