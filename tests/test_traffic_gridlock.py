"""The gridlock rule follows SUMO's definition: the first vehicle of a queue, standing still for
``gridlock_time_s`` (SUMO's ``--time-to-teleport``), is moved on; its own standing time counts, so vehicles
overtaking it on another lane (turn queues) do not restart its clock."""
from __future__ import annotations

import numpy as np
import pytest

from agents.traffic import meso_kernel as K
from test_traffic_junctions import _city, _twin


def _fork():
    # a two-lane approach x>a; at a, through to e (both lanes) or left into a>n (leftmost lane only)
    pts = {"x": (-600, 0), "a": (0, 0), "e": (600, 0), "n": (0, 300)}
    return _city(pts, [("x", "a", 2, "residential", 3600), ("a", "e", 2, "residential", 3600),
                       ("a", "n", 1, "residential", 1800)])


@pytest.mark.parametrize("gridlock_s", [120.0, 300.0])
def test_blocked_head_is_moved_on_after_its_own_standing_time_while_the_other_lane_flows(gridlock_s):
    city = _fork()
    tw = _twin(city, duration=1500, traffic={"gridlock_time_s": gridlock_s})
    T = tw.traffic
    c, lk = city.node_index, {s: i for i, s in enumerate(city.link_ids)}
    xa, an = lk["x>a"], lk["a>n"]
    m_left = K.find_movement(T.mv_ptr, T.mv_out, xa, an)
    assert m_left >= 0 and T.mv_lanemask[m_left] != T.link_lanemask[xa]  # the left turn has its own lane
    T.mv_rate[m_left] = T.mv_acc[m_left] = 0.0  # a turn that never gets capacity: its first vehicle stands for good
    v = int(T.add_trips(np.array([c("x")], np.int32), np.array([c("n")], np.int32), np.array([0.0]))[0])
    n = 150  # through traffic, 600 veh/h, passes the blocked left-turner on the right lane
    ids = T.add_trips(np.full(n, c("x"), np.int32), np.full(n, c("e"), np.int32), 1.0 + np.arange(n) * 6.0)
    t_line = 600.0 / 13.89  # the left-turner reaches the stop line (free flow)
    tw.env.run(until=t_line + gridlock_s - 10)
    T._catch_up()
    assert T.v_link[v] == xa and T.gridlocks[0] == 0  # not before it has stood gridlock_time_s
    through_left = int(T.cnt_exit[xa])
    assert through_left > 10  # meanwhile the other lane kept flowing past it
    tw.env.run(until=t_line + gridlock_s + 5)
    T._catch_up()
    assert T.gridlocks[0] == 1 and T.v_link[v] != xa  # moved on: the only resolution, on time
    tw.env.run(until=1500)
    T._catch_up()
    assert T.v_status[v] == K.ARRIVED
    tt = T.v_arrive[v] - T.v_depart[v]
    assert tt >= gridlock_s + t_line  # the time it stood stays in its travel time
    assert T.gridlocks[0] == 1 and np.all(T.v_status[ids] == K.ARRIVED)  # nobody else stood, nobody lost
