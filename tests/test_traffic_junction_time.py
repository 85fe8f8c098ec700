"""Junction interaction (issue 13, session 10, branch jint10): a vehicle of a stream that gives way waits for a gap.

Checked against hand calculations: Adams' delay (the mean wait for a gap of at least t_g in a Poisson stream), the
kernel's credit rule that makes a lone arrival at an idle give-way line wait that delay, and end to end on a T
junction. (Branch jtime9's turn-time tests went with its turn-time change, which is not kept: docs/traffic_model.md.)
"""
from __future__ import annotations

import math

import networkx as nx
import numpy as np
import pytest

from networks.graph import CityGraph


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


# ---------------------------------------------------------------- actuated signals (option actuated_signals)
def _prog(min1=5.0, max1=50.0):
    from networks.actuated import ActuatedProgram
    phases = [(30.0, "Gr"), (3.0, "yr"), (30.0, "rG"), (3.0, "ry")]
    nan = math.nan
    return ActuatedProgram("t", 0.0, phases, np.array([min1, nan, 5.0, nan]), np.array([max1, nan, 50.0, nan]))


def test_gap_out_by_hand():
    from networks.actuated import gap_out_s
    assert gap_out_s(0.0) == 3.0  # nobody comes: the phase ends max-gap after its last vehicle
    # 0.2 veh/s: (exp(0.6) - 1) / 0.2 = (1.822119 - 1) / 0.2 = 4.110594 s
    assert gap_out_s(0.2) == pytest.approx(4.110594, rel=1e-6)


def test_actuated_phase_durations_by_hand():
    from networks.actuated import phase_durations
    green_of = [[0], [], [1], []]
    sat = np.array([0.5, 0.5])
    # nobody arrives: each actuated phase gaps out at max-gap = 3 s, below minDur: both at minDur
    assert phase_durations(_prog(), green_of, np.zeros(2), sat) == [5.0, 3.0, 5.0, 3.0]
    # movement 0 at its saturation flow: its phase runs to maxDur, the quiet one stays at minDur
    assert phase_durations(_prog(), green_of, np.array([0.5, 0.0]), sat) == [50.0, 3.0, 5.0, 3.0]
    # 0.1 veh/s on movement 0: its red is the rest of the cycle, 3 + 5 + 3 = 11 s; queue cleared at 0.5 veh/s:
    # 0.1 x 11 / (0.5 - 0.1) = 2.75 s, plus the gap-out (exp(0.3) - 1) / 0.1 = 3.498588 s: 6.248588 s (> minDur)
    d = phase_durations(_prog(), green_of, np.array([0.1, 0.0]), sat, tol=1e-9, iters=200)
    assert d[0] == pytest.approx(6.248588, abs=1e-5) and d[1:] == pytest.approx([3.0, 5.0, 3.0])


def test_read_actuated_takes_min_max_and_skips_static(tmp_path):
    from networks.actuated import read_actuated
    f = tmp_path / "a.add.xml"
    f.write_text("""<additional>
      <tlLogic id="A" type="actuated" programID="0" offset="0"><param key="max-gap" value="2.5"/>
        <phase duration="30" state="Gr" minDur="5" maxDur="45"/><phase duration="3" state="yr"/>
        <phase duration="30" state="rG" minDur="8" maxDur="40"/><phase duration="3" state="ry"/></tlLogic>
      <tlLogic id="B" type="static" programID="0" offset="0"><phase duration="30" state="Gr"/></tlLogic>
    </additional>""")
    progs = read_actuated([f])
    assert list(progs) == ["A"]
    p = progs["A"]
    assert p.max_gap == 2.5 and p.min_dur[0] == 5.0 and p.max_dur[2] == 40.0 and math.isnan(p.min_dur[1])


def test_actuated_signals_end_to_end_on_wildau():
    """Wildau's three actuated programs: with nobody arrived every actuated phase gaps out at minDur (5 s) and each
    signal movement's capacity becomes saturation flow x lanes x its green share in that shortened program; heavy
    arrivals on one movement run its phase to maxDur and raise its capacity."""
    from pathlib import Path

    from conftest import make_twin
    from networks.actuated import read_actuated
    from networks.junctions import green_shares
    from networks.sumo_net import load_sumo_net

    net = Path(__file__).resolve().parent.parent / "data" / "wildau" / "Netzmodell2.net.xml.gz"
    city = load_sumo_net(net)
    tw = make_twin({"city": {"source": "line"}, "time": {"duration_s": 600, "step_s": 1, "record_interval_s": 600},
                    "traffic": {"reroute_share": 0.0, "actuated_signals": True}}, city=city)
    tw.setup()
    T = tw.traffic
    assert set(T._act) == set(read_actuated([net])) and len(T._act) == 3
    T._set_durations()
    j = T._act_state[0]
    for tl, (prog, mvs, _) in T._act.items():
        phases = [(float(lo) if np.isfinite(lo) else d, st) for lo, (d, st) in zip(prog.min_dur, prog.phases)]
        g, cycle = green_shares(phases)
        for m in mvs:
            ks = [k for k in j.mv_tl_index[m] if k < len(g)]
            assert j.mv_cycle[m] == pytest.approx(cycle) or j.mv_green[m] == 1.0
            if j.mv_permissive_share[m] == 0:
                assert T.mv_rate[m] == pytest.approx(0.5 * j.mv_lanes[m] * float(np.mean(g[ks])))
    # movement 0 of the first program at saturation: its phases run to maxDur, its capacity grows
    tl, (prog, mvs, green_of) = next(iter(T._act.items()))
    m = int(mvs[green_of[0][0]])
    before = float(T.mv_rate[m] + T.mv_prate[m])
    T.mv_flow[m], T.mv_tflow[m] = 1.0, T.t
    T._set_durations()
    assert T._act_dur[tl][0] == pytest.approx(prog.max_dur[0])
    assert T.mv_rate[m] + T.mv_prate[m] > before
