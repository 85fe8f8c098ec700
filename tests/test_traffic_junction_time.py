"""Time inside junctions (issue 13, session 9): the turn time of a movement against a hand calculation.

The turn time is the kinematic loss of braking from the approach speed v to the speed u through the junction
((v-u)²/(2 b v), b = 4.5 m/s²), accelerating back to the exit speed w ((w-u)²/(2 a w), a = 2.6 m/s²) and the
internal lane(s) driven at u. Two things are checked here: a movement that gives way (SUMO states m, =, s, w) passes
no faster than SUMO's minor-link approach speed sqrt(2 b d), d = 4.5 m (the connection's default `visibility`),
and a left turn that waits inside the junction counts both of its internal lanes (via -> internal junction -> via).
"""
from __future__ import annotations

import math
import subprocess

import networkx as nx
import numpy as np
import pytest
import sumolib

from networks import junctions as J
from networks.graph import CityGraph

NODES = """<nodes>
  <node id="C" x="0" y="0" type="priority"/>
  <node id="W" x="-200" y="0"/><node id="E" x="200" y="0"/>
  <node id="S" x="0" y="-200"/><node id="N" x="0" y="200"/>
</nodes>"""
EDGES = [("WC", "W", "C", 3), ("CE", "C", "E", 3), ("EC", "E", "C", 3), ("CW", "C", "W", 3),
         ("SC", "S", "C", 1), ("CN", "C", "N", 1), ("NC", "N", "C", 1), ("CS", "C", "S", 1)]


def test_minor_approach_speed_and_turn_loss_by_hand():
    # sqrt(2 x 4.5 m/s² x 4.5 m) = sqrt(40.5) = 6.364 m/s
    assert J.MINOR_APPROACH_MPS == pytest.approx(6.36396, abs=1e-5)
    # 13.89 m/s -> 6.364 -> 13.89 over a 20 m internal lane:
    # 7.526²/(2 x 4.5 x 13.89) = 0.4531, 7.526²/(2 x 2.6 x 13.89) = 0.7842, 20 / 6.364 = 3.1427 -> 4.3800 s
    assert J.turn_loss_s(13.89, J.MINOR_APPROACH_MPS, 13.89, 20.0) == pytest.approx(4.3800, abs=2e-3)
    # no slowing where the turn speed is the approach speed: just the internal lane at that speed
    assert J.turn_loss_s(13.89, 13.89, 13.89, 14.4) == pytest.approx(14.4 / 13.89)


@pytest.fixture(scope="module")
def cross_net(tmp_path_factory):
    """A priority junction: W-E major road (priority 3), S-N minor road (1), one lane each way, 13.89 m/s."""
    d = tmp_path_factory.mktemp("jtime")
    (d / "n.nod.xml").write_text(NODES)
    (d / "n.edg.xml").write_text("<edges>" + "".join(
        f'<edge id="{e}" from="{u}" to="{v}" priority="{p}" numLanes="1" speed="13.89"/>' for e, u, v, p in EDGES)
        + "</edges>")
    net = d / "x.net.xml"
    subprocess.run([sumolib.checkBinary("netconvert"), "-n", str(d / "n.nod.xml"), "-e", str(d / "n.edg.xml"),
                    "-o", str(net), "--no-turnarounds", "true", "--junctions.limit-turn-speed", "5.5"],
                   check=True, capture_output=True, timeout=120)
    return net


def _internal(net):
    """internal lane -> (length, speed) and the connections' via chains, read from the file independently."""
    import xml.etree.ElementTree as ET

    root = ET.parse(net).getroot()
    lanes = {ln.get("id"): (float(ln.get("length")), float(ln.get("speed")))
             for e in root.iter("edge") if e.get("function") == "internal" for ln in e.iter("lane")}
    conns = [c.attrib for c in root.iter("connection")]
    return lanes, conns


def test_sumo_turn_times_follow_the_hand_calculation(cross_net):
    idx = {e[0]: i for i, e in enumerate(EDGES)}
    j = J.sumo_junctions(cross_net, idx, np.ones(len(EDGES)), np.full(len(EDGES), 13.89))
    lanes, conns = _internal(cross_net)
    by = {(c["from"], c["to"]): c for c in conns if not c["from"].startswith(":")}
    nxt = {c["from"] + "_0": c["via"] for c in conns if c["from"].startswith(":") and c.get("via")}
    u = J.MINOR_APPROACH_MPS

    def loss(v, s, w, L):  # the hand formula
        return (v - s) ** 2 / (2 * 4.5 * v) + (w - s) ** 2 / (2 * 2.6 * w) + L / s

    # major straight (state M): its internal lane at its own speed, no slowing
    c = by[("WC", "CE")]
    assert c["state"] == "M"
    L, sp = lanes[c["via"]]
    assert sp == pytest.approx(13.89)
    assert j.mv_turn_s[j.movement(idx["WC"], idx["CE"])] == pytest.approx(L / 13.89, rel=1e-6)
    # minor straight (state m): through the junction no faster than sqrt(2 b d)
    c = by[("SC", "CN")]
    assert c["state"] == "m"
    L, sp = lanes[c["via"]]
    assert sp > u
    assert j.mv_turn_s[j.movement(idx["SC"], idx["CN"])] == pytest.approx(loss(13.89, u, 13.89, L), rel=1e-6)
    # minor straight at 14.40 m: 0.4531 + 0.7842 + 14.40 / 6.364 = 3.500 s (was 14.40 / 13.89 = 1.037 s)
    assert j.mv_turn_s[j.movement(idx["SC"], idx["CN"])] == pytest.approx(0.4531 + 0.7842 + L / 6.36396, abs=2e-3)
    # major left turn giving way to the oncoming stream: two internal lanes (it waits at the internal junction)
    c = by[("WC", "CN")]
    assert c["state"] == "m" and c["via"] in nxt
    L1, sp1 = lanes[c["via"]]
    L2, sp2 = lanes[nxt[c["via"]]]
    m = j.movement(idx["WC"], idx["CN"])
    assert j.mv_len_m[m] == pytest.approx(L1 + L2) and L2 > L1
    assert j.mv_turn_s[m] == pytest.approx(loss(13.89, min(sp1, sp2, u), 13.89, L1 + L2), rel=1e-6)
    # major right turn (state M): the internal lane's own turn speed (netconvert's limit-turn-speed), not capped
    c = by[("EC", "CN")]
    L, sp = lanes[c["via"]]
    assert c["state"] == "M" and sp < 13.89
    assert j.mv_turn_s[j.movement(idx["EC"], idx["CN"])] == pytest.approx(loss(13.89, sp, 13.89, L), rel=1e-6)


def test_graph_give_way_movement_slows_to_the_minor_approach_speed():
    """OSM/synthetic: a straight movement from the lower-class road gives way and pays the approach loss."""
    nodes = {"C": (0, 0), "W": (-200, 0), "E": (200, 0), "S": (0, -200), "N": (0, 200)}
    G = nx.MultiDiGraph()
    for n, (x, y) in nodes.items():
        G.add_node(n, x=float(x), y=float(y), lon=np.nan, lat=np.nan, signal=False)
    for u, v, rc in [("W", "C", "primary"), ("C", "E", "primary"), ("S", "C", "residential"),
                     ("C", "N", "residential")]:
        (xu, yu), (xv, yv) = nodes[u], nodes[v]
        G.add_edge(u, v, id=f"{u}>{v}", length_m=math.hypot(xv - xu, yv - yu), lanes=1, speed_mps=13.89,
                   capacity_vph=1800.0, road_class=rc)
    city = CityGraph(G, name="t")
    city.source = "test"
    j = J.graph_junctions(city)
    major = j.movement(city.link_index("W>C"), city.link_index("C>E"))
    minor = j.movement(city.link_index("S>C"), city.link_index("C>N"))
    assert j.mv_class[major] == J.PRIORITY and j.mv_turn_s[major] == 0.0
    assert j.mv_class[minor] == J.YIELD
    # 13.89 -> 6.364 -> 13.89, no internal lane in a graph: 0.4531 + 0.7842 = 1.2373 s
    assert j.mv_turn_s[minor] == pytest.approx(1.2373, abs=2e-3)


def test_signal_movement_is_minor_only_in_its_permissive_green(tmp_path):
    """At a signal, SUMO's minor approach applies while the movement is green as 'g' (havePriority() false), not
    by the connection's `state` (that is the state with the signal switched off: 'o' even for the minor road's
    protected straight)."""
    (tmp_path / "n.nod.xml").write_text(NODES.replace('type="priority"', 'type="traffic_light"'))
    (tmp_path / "n.edg.xml").write_text("<edges>" + "".join(
        f'<edge id="{e}" from="{u}" to="{v}" priority="{p}" numLanes="1" speed="13.89"/>' for e, u, v, p in EDGES)
        + "</edges>")
    net = tmp_path / "t.net.xml"
    subprocess.run([sumolib.checkBinary("netconvert"), "-n", str(tmp_path / "n.nod.xml"), "-e",
                    str(tmp_path / "n.edg.xml"), "-o", str(net), "--no-turnarounds", "true"],
                   check=True, capture_output=True, timeout=120)
    idx = {e[0]: i for i, e in enumerate(EDGES)}
    j = J.sumo_junctions(net, idx, np.ones(len(EDGES)), np.full(len(EDGES), 13.89))
    lanes, conns = _internal(net)
    by = {(c["from"], c["to"]): c for c in conns if not c["from"].startswith(":")}
    u = J.MINOR_APPROACH_MPS
    # the minor road's straight: state 'o' in the file, but green only as 'G' (netconvert's default program)
    c = by[("SC", "CN")]
    m = j.movement(idx["SC"], idx["CN"])
    L, sp = lanes[c["via"]]
    assert c["state"] == "o" and j.mv_permissive_share[m] == 0.0
    assert j.mv_turn_s[m] == pytest.approx(L / sp, rel=1e-6)
    # a left turn green only as 'g' (permissive all its green): the whole minor approach, both internal lanes
    c = by[("WC", "CN")]
    m = j.movement(idx["WC"], idx["CN"])
    assert j.mv_permissive_share[m] == pytest.approx(j.mv_green[m]) and j.mv_green[m] > 0
    L = j.mv_len_m[m]
    assert j.mv_turn_s[m] == pytest.approx((13.89 - u) ** 2 / (2 * 4.5 * 13.89) + (13.89 - u) ** 2 / (2 * 2.6 * 13.89)
                                           + L / u, rel=1e-6)


# ---------------------------------------------------------------- junction interaction (session 10, jint10)
# A vehicle of a stream that gives way, arriving at an idle line, waits for a gap of at least the critical gap t_g
# in its foes' flow q (veh/s). With Poisson foes the mean wait is Adams' delay (exp(q t_g) - q t_g - 1) / q. By hand,
# t_g = 6.4 s: q = 400 veh/h = 0.11111/s: q t_g = 0.71111, exp = 2.03625, (2.03625 - 0.71111 - 1) / 0.11111 = 2.926 s;
# q = 800 veh/h: q t_g = 1.42222, exp = 4.14632, (4.14632 - 1.42222 - 1) / 0.22222 = 7.758 s; q -> 0: q t_g² / 2.


@pytest.mark.parametrize("q_vph, expected", [(400.0, 2.926), (800.0, 7.758), (1e-3, 1e-3 / 3600 * 6.4 ** 2 / 2)])
def test_adams_delay_by_hand(q_vph, expected):
    from agents.traffic.meso_kernel import adams_delay
    assert adams_delay(q_vph / 3600.0, 6.4) == pytest.approx(expected, rel=1e-3)


@pytest.mark.parametrize("gap_wait, t_ready", [(2.0, 100), (-1.0, 107)])
def test_minor_gap_delay_makes_a_lone_arrival_wait_adams_delay(gap_wait, t_ready):
    """Movement 0 gives way to movement 1 (800 veh/h, held constant: tau huge). HBS capacity 1/3.5 x
    exp(-0.22222 (6.4 - 1.75)) = 0.10166 veh/s. A vehicle arriving in the step (99, 100] at the idle line: with
    ``minor_gap_delay`` (gap_wait -1) its credit is 1 - 0.10166 x 7.758 = 0.2113 at 99 s, a whole vehicle at
    99 + 7.758 s: ready in the step ending at 107 s; without it the idle account lets it go at once."""
    from agents.traffic.meso_kernel import _movement_ready
    acc, tacc = np.ones(2), np.zeros(2)
    q = 800.0 / 3600.0
    mv_rate, cf_ptr, cf_mv = np.array([1.0, 1.0]), np.array([0, 1, 1], np.int64), np.array([1], np.int32)
    mv_flow, mv_tflow = np.array([0.0, q]), np.array([0.0, 100.0])
    tf, tg = np.array([3.5, 2.0]), np.array([6.4, 6.4])
    for t in range(100, 130):
        if _movement_ready(0, float(t), 1.0, 1.0, 1e12, mv_rate, cf_ptr, cf_mv, mv_flow, mv_tflow, tf, tg, acc,
                           tacc, np.zeros(2), np.ones(1), np.array([gap_wait, 2.0])):
            break
    assert t == t_ready


def _t_city():
    # major road w -> j -> e (primary), minor road s -> j -> e (residential) merging into it (a right turn)
    nodes = {"w": (0, 0), "j": (600, 0), "e": (1200, 0), "s": (600, -600)}
    G = nx.MultiDiGraph()
    for n, (x, y) in nodes.items():
        G.add_node(n, x=float(x), y=float(y), lon=np.nan, lat=np.nan, signal=False)
    for u, v, lanes, rc, cap in [("w", "j", 1, "primary", 1800), ("j", "e", 2, "primary", 3600),
                                 ("s", "j", 1, "residential", 1800)]:
        (xu, yu), (xv, yv) = nodes[u], nodes[v]
        G.add_edge(u, v, id=f"{u}>{v}", length_m=math.hypot(xv - xu, yv - yu), lanes=lanes, speed_mps=13.89,
                   capacity_vph=float(cap), road_class=rc)
    city = CityGraph(G, name="t")
    city.source = "test"
    return city


def _minor_mean_time(minor_gap_delay: bool, q_major: float) -> tuple[float, float]:
    """Mean travel time (s) of 40 minor vehicles 90 s apart (they never queue) and the major flow's measured rate."""
    from conftest import make_twin
    city = _t_city()
    tw = make_twin({"city": {"source": "line"}, "time": {"duration_s": 4000, "step_s": 1, "record_interval_s": 4000},
                    "traffic": {"reroute_share": 0.0, "minor_gap_delay": minor_gap_delay}}, city=city)
    tw.setup()
    T = tw.traffic
    w, e, s = city.node_index("w"), city.node_index("e"), city.node_index("s")
    n = int(3800 * q_major / 3600)
    T.add_trips(np.full(n, w, np.int32), np.full(n, e, np.int32), np.arange(n) * 3600.0 / q_major)
    t_minor = 300.0 + np.arange(40) * 90.0
    ids = T.add_trips(np.full(40, s, np.int32), np.full(40, e, np.int32), t_minor)
    tw.env.run(until=4000)
    T._catch_up()
    tt = np.array([T.v_arrive[v] - T.v_depart[v] for v in ids])
    return float(tt.mean()), n / 3800 * 3600


def test_minor_stream_vehicles_wait_adams_delay_end_to_end():
    """On the T junction with 800 veh/h on the major road, a lone minor vehicle's trip is longer by Adams' delay
    (7.76 s) with ``minor_gap_delay``, to the step grid: it leaves at a step end, 7 or 8 whole steps after the step
    it reached the line in (measured 8.34 s mean; 6.6 s for the first, while the major flow's average builds up)."""
    off, _ = _minor_mean_time(False, 800.0)
    on, q = _minor_mean_time(True, 800.0)
    assert q == pytest.approx(800.0, rel=0.01)
    assert 7.758 - 0.5 <= on - off <= 7.758 + 1.0
