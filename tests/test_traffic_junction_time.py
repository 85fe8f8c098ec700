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
