"""Experiment API (periodic corridors, measurement areas, necks), counter-flow, thread picking, small defects."""
import dataclasses
import subprocess
import sys
import time

import numpy as np
import pytest

from agents.crowd.experiments import (Corridor, MeasurementArea, counterflow_holdup, lane_order, line_crossing_times, measure, neck_bottleneck,
                                      periodic_corridor, run_egress, start_lattice)
from agents.crowd.geometry import VenueGeometry, periodic_strip
from agents.crowd.sim import ModelParams
from agents.crowd.threads import ThreadPicker


def test_exit_as_wide_as_its_wall_is_accepted_and_wider_refused():
    """Float rounding no longer refuses an exit exactly as wide as its wall; a wider one is still an error."""
    g = VenueGeometry.build([(8.8, 0), (11.2, 0), (11.2, 10), (8.8, 10)], exits=[("e", (10, 0), 2.4)])
    assert np.isclose(g.exits[0].width_m, 2.4)
    with pytest.raises(ValueError, match="exceeds"):
        VenueGeometry.build([(8.8, 0), (11.2, 0), (11.2, 10), (8.8, 10)], exits=[("e", (10, 0), 2.5)])


def test_start_lattice_keeps_bodies_apart_up_to_five_per_m2():
    """Start positions are at least a body length apart at 5 /m² (the old lattice put them 0.40 m apart);
    an impossible density is refused."""
    x, y = start_lattice(320, 16.0, 4.0, 0.25, 0.42)
    assert x.size >= 320  # the lattice may hold a few more; the caller picks n of them
    dx = x[:, None] - x[None]
    dx -= 16.0 * np.floor(dx / 16.0 + 0.5)
    d = np.hypot(dx, y[:, None] - y[None])
    np.fill_diagonal(d, np.inf)
    assert d.min() >= 0.42 - 1e-9
    with pytest.raises(ValueError, match="do not fit"):
        start_lattice(700, 16.0, 4.0, 0.25, 0.42)


def test_five_per_m2_corridor_moves():
    """At 5 /m² a one-way corridor still creeps forward (it returned exactly 0 before)."""
    c = periodic_corridor(5.0, length=8.0, width=3.0)
    r = measure(c.sim, [MeasurementArea(0.0, 8.0, 0.0, 3.0)], 10.0, c.heading)[0]
    assert 0.0 < r.speed < 0.3


def test_periodic_strip_has_only_the_long_walls_and_agents_wrap():
    """The periodic corridor needs no hand edits: two long walls, and walkers leaving east come back west."""
    r = periodic_strip(10.0, 3.0)
    assert r.walls.shape == (2, 4) and set(r.walls[:, 1]) == {0.0, 3.0}
    c = periodic_corridor(0.3, length=10.0, width=3.0)
    x0 = c.sim.x[: c.n].copy()
    c.sim.step(12.0)
    assert (c.sim.x[: c.n] >= 0).all() and (c.sim.x[: c.n] < 10.0).all()
    assert not np.allclose(c.sim.x[: c.n], x0)


def test_measurement_area_obeys_continuity_in_free_flow():
    """At 0.5 /m² walkers keep their desired speed; density matches the global one and the counted flow
    through the middle line matches density x speed x width (RiMEA test 4 style measurement)."""
    c = periodic_corridor(0.5, length=20.0, width=3.0, speed_mean=1.2)
    c.sim.step(5.0)
    r = measure(c.sim, [MeasurementArea(0.0, 20.0, 0.0, 3.0)], 30.0, c.heading)[0]
    assert abs(r.density - 0.5) < 0.02
    assert abs(r.speed - 1.2) < 0.05
    assert abs(r.flow - r.density * r.speed * 3.0) / r.flow < 0.15
    assert r.stopped == 0.0


@pytest.mark.parametrize("split", [0.5, 0.8])
def test_counter_flow_keeps_moving_and_forms_lanes_from_a_mixed_start(split):
    """Two-way flow at 2 /m² in a 4 m corridor, mixed at the start (50/50 and 80/20): both groups keep walking
    (under 10% standing, both faster than 0.25 m/s) and lanes form (the order parameter rises above the
    random start's to 0.8 or more; 1 = perfect lanes). Before the counter-flow terms: 0.07 m/s, 73-77% standing."""
    c = periodic_corridor(2.0, length=16.0, width=4.0, split=split, speed_sd=0.26, start="mixed", seed=2)
    phi0 = lane_order(c)
    c.sim.step(30.0)
    r = measure(c.sim, [MeasurementArea(0.0, 16.0, 0.0, 4.0)], 20.0, c.heading)[0]
    assert r.stopped < 0.1, r.stopped
    assert min(r.speed_by_heading.values()) > 0.25, r.speed_by_heading
    assert lane_order(c) >= 0.8 and lane_order(c) > phi0 + 0.1, (phi0, lane_order(c))


def test_counter_flow_same_on_one_and_two_threads():
    """The counter-flow terms read only the state at the start of a sub-step: two threads give the same
    trajectories bit for bit."""
    import numba

    runs = []
    for threads in (1, 2):
        c = periodic_corridor(2.0, length=16.0, width=4.0, split=0.5, speed_sd=0.26, seed=3)
        c.sim.threads.fixed = min(threads, numba.config.NUMBA_NUM_THREADS)
        c.sim.parallel_min_agents = 0
        c.sim.step(5.0)
        runs.append((c.sim.x[: c.n].copy(), c.sim.y[: c.n].copy()))
    assert np.array_equal(runs[0][0], runs[1][0]) and np.array_equal(runs[0][1], runs[1][1])


def test_neck_bottleneck_geometry_and_egress():
    """A 2 m long neck: everyone leaves through its far end, the exit spans the neck's whole width."""
    sim, g = neck_bottleneck(1.2, 2.0, n=60, room=(6.0, 6.0), seed=3)
    assert np.isclose(g.exits[0].width_m, 1.2)
    r = run_egress(sim, 200.0)
    assert r.left_inside == 0 and r.times.size == 60


def _idle_two_cores(monkeypatch):
    """Let the picker see a 2-core machine with no other process running (the tests below are about its choices,
    not about this machine's load)."""
    import agents.crowd.threads as th

    monkeypatch.setattr(th.os, "sched_getaffinity", lambda _pid: {0, 1})
    monkeypatch.setattr(th, "others_running", lambda: 0)
    return th


def test_thread_picker_prefers_the_faster_and_probes_rarely(monkeypatch):
    """Below the agent threshold one thread; above it the picker takes whichever measured faster and keeps
    re-checking the other choice only on a few sub-steps, less often while it keeps losing."""
    _idle_two_cores(monkeypatch)
    tp = ThreadPicker(min_agents=100, probe_every=4, max_probe_every=64)
    tp.max_threads = lambda: 2
    assert tp.plan(50, 20) == [(1, 20, False)]
    tp.rate = {2: 9e-7}  # two threads measured; one not yet: the next call probes one thread on 1 sub-step
    assert tp.plan(5000, 20) == [(1, 1, True), (2, 19, False)]
    tp.record(1, 1 * 5000, 1 * 5000 * 3e-7, probe=True)  # one thread was 3x faster (a busy machine)
    assert tp.plan(5000, 20)[-1][0] == 1
    probes = 0
    for _ in range(400):
        plan = tp.plan(5000, 20)
        for th, k, probe in plan:
            probes += probe
            tp.record(th, k * 5000, k * 5000 * (9e-7 if th == 2 else 3e-7), probe)
    assert probes <= 12  # backed off: 4, 8, 16, 32, 64, 64, ... calls apart
    assert all(p[0] == 1 for p in tp.plan(5000, 20) if not p[2])


def test_thread_picker_ignores_the_cold_first_call():
    """A run's first call is slow per agent-step (its arrays are touched for the first time): its timing is not
    used, so a probe of the other choice is compared with a warm rate, not with that cold one."""
    tp = ThreadPicker(min_agents=100)
    tp.max_threads = lambda: 2
    tp.record(1, 10_000, 10_000 * 2e-6)  # the cold first call, 6x slower than warm
    assert tp.rate == {}
    tp.record(1, 10_000, 10_000 * 3e-7)
    tp.record(2, 1_000, 1_000 * 5e-7, probe=True)  # two threads beside a busy core
    assert tp._fastest() == 1


def test_thread_picker_does_not_probe_two_threads_beside_a_busy_core(monkeypatch):
    """While another process runs on the second core the picker, on one thread, does not probe two (such a probe
    ran ~7x slower per sub-step and could be mistaken for a win); once that core is free it probes again."""
    th = _idle_two_cores(monkeypatch)
    tp = ThreadPicker(min_agents=100, probe_every=4)
    tp.max_threads = lambda: 2
    tp.rate = {1: 3e-7}
    monkeypatch.setattr(th, "others_running", lambda: 1)
    assert not any(probe for _ in range(12) for (_t, _k, probe) in tp.plan(5000, 20))
    monkeypatch.setattr(th, "others_running", lambda: 0)
    assert tp.plan(5000, 20)[0] == (2, 1, True)


def test_others_running_sees_a_busy_process_and_not_our_own_threads():
    """A spinning process started a moment ago counts as another process running."""
    from agents.crowd.threads import others_running

    busy = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        time.sleep(0.3)
        assert (others_running() or 0) >= 1
    finally:
        busy.kill()
        busy.wait()


def test_thread_picker_uses_the_probe_within_the_same_call(monkeypatch):
    """A wrong first guess (one thread, from a load average that counts our own last minute of work) costs only
    the probe's sub-steps: once the probe shows two threads faster, the rest of that call runs on two."""
    _idle_two_cores(monkeypatch)
    tp = ThreadPicker(min_agents=100, probe_every=4, max_probe_every=64)
    tp.max_threads = lambda: 2
    tp.rate = {1: 9e-7}  # the first call ran on one thread; two not yet measured
    got = []
    for th, k, probe in tp.pieces(100_000, 20):
        got.append((th, k, probe))
        tp.record(th, k * 100_000, k * 100_000 * (9e-7 if th == 1 else 5e-7), probe)
    assert got == [(2, 1, True), (2, 19, False)] and tp.last_choice == 2
    got = []  # and the other way: a probe that loses leaves the rest on the faster choice
    for th, k, probe in tp.pieces(100_000, 20):
        got.append((th, k, probe))
    assert all(th == 2 for th, _, probe in got if not probe)
    tp2 = ThreadPicker(min_agents=100)
    tp2.max_threads = lambda: 2
    tp2.rate = {1: 3e-7}
    got = []
    for th, k, probe in tp2.pieces(5000, 20):
        got.append((th, k, probe))
        tp2.record(th, k * 5000, k * 5000 * (3e-7 if th == 1 else 9e-7), probe)
    assert got == [(2, 1, True), (1, 19, False)]


def _one_way_speed(params: ModelParams) -> float:
    """Mean speed (m/s) in the middle 8 m of a one-way corridor 3 m x 16 m at 2 /m², desired speeds N(1.34, 0.26)."""
    c = periodic_corridor(2.0, length=16.0, width=3.0, speed_sd=0.26, seed=1, params=params)
    c.sim.step(20.0)
    return measure(c.sim, [MeasurementArea(4.0, 12.0, 0.0, 3.0)], 10.0, c.heading)[0].speed


def test_zipper_speeds_up_a_moving_queue_to_the_fzj_corridor_speed():
    """Staggered lanes (a walker ahead in one's lane, moving, held up one only within the 0.3 m zipper width)
    carry more than lanes a body width apart: at 2 /m² the one-way corridor walks faster with the zipper than
    without, and within 20% of the FZJ corridor speed (Zhang et al. 2011: about 0.83 m/s at 2 /m²)."""
    v_zip = _one_way_speed(ModelParams())
    v_off = _one_way_speed(dataclasses.replace(ModelParams(), zipper_speed_mps=0.0))
    assert v_zip >= 1.05 * v_off
    assert abs(v_zip / 0.83 - 1.0) <= 0.2


def test_neck_field_no_longer_funnels_everyone_onto_the_centre_line():
    """Issue 19, third pass: with the field's wall clearance at 0.5 m every cell of a 1 m neck was near a wall,
    and the field pointed 24-57 deg towards the centre line 0.1-0.3 m off it (one file). Now a walker 0.2 m off
    the centre line, where a second lane walks, is led along the neck (within 10 deg)."""
    for clearance, funnel in ((0.5, True), (ModelParams().field_clearance_m, False)):
        sim, _ = neck_bottleneck(1.0, 3.0, n=10, params=dataclasses.replace(ModelParams(), field_clearance_m=clearance))
        r = sim.raster
        i = int((11.5 - r.x0) / r.h)
        j = int((5.2 - r.y0) / r.h)
        angle = abs(np.degrees(np.arctan2(sim.fgy[0, j, i], sim.fgx[0, j, i])))
        assert (angle > 20.0) == funnel, (clearance, angle)


def test_two_metre_neck_carries_more_than_two_single_files():
    """A 2 m wide, 3 m long neck: at the second pass it carried 2.1 /s in two files ~0.8 m apart (1.05 /(m·s));
    with the lower field clearance and the zipper over 30 deg lanes form closer (3 of them), measured 1.45-1.49
    /(m·s) on two seeds (the experiments' band is 1.6-2.2: not reached)."""
    sim, _ = neck_bottleneck(2.0, 3.0, n=200, seed=1)
    r = run_egress(sim, 300.0)
    assert r.left_inside == 0
    assert r.flow() / 2.0 >= 1.3


def test_reaction_time_turns_the_walking_direction_gradually():
    """Fourth pass (Xu et al. 2021, eq. 7): with a reaction time the direction turns towards the computed one at
    rate dt / t_react per sub-step; without it, at once. A lone walker facing north whose field points east."""
    for t_react, expect_north in ((0.2, True), (0.0, False)):
        p = ModelParams(reaction_time_s=t_react, noise=0.0)
        c = periodic_corridor(0.0, length=16.0, width=4.0, params=p)
        s = c.sim
        s.add_agents(8.0, 2.0, 1.3, s.fields["east"])
        s.ox[0], s.oy[0] = 0.0, 1.0
        s.step(s.dt)
        ang = np.degrees(np.arctan2(s.vy[0], s.vx[0]))
        if expect_north:  # o + (e - o) dt / t_react = (0.25, 0.75): 71.6 deg
            assert 60.0 < ang < 80.0
        else:
            assert abs(ang) < 1e-6


def test_walk_on_past_a_door_lowers_its_flow_as_a_neck_does():
    """Fourth pass diagnosis: a door whose leavers vanish at its line passes more than one they walk on past
    (the neck's situation); everyone is seen crossing the line."""
    r = run_egress(neck_bottleneck(1.0, 0.0, n=120, seed=1)[0], 300.0)
    sim, _ = neck_bottleneck(1.0, 0.0, n=120, seed=1, walk_on_m=4.0)
    t = line_crossing_times(sim, 10.0, 300.0)
    assert t.size == 120
    a, b = int(0.1 * t.size), int(0.9 * t.size) - 1
    q_walk_on = (b - a) / (t[b] - t[a])
    assert q_walk_on < 0.9 * r.flow()


def test_counterflow_holdup_tells_head_on_locks_from_queues():
    """The stall diagnosis: a head-on pair standing nose to nose counts as held by oncoming walkers and mutual;
    a walker standing behind its own lane-mate does not; shares are of the standing walkers."""
    from agents.crowd.sim import VenueSim
    sim = VenueSim(periodic_strip(16.0, 4.0, 0.2), ModelParams(), 0.05, periodic_lx_m=16.0)
    east = sim.add_field("east", direction=(1.0, 0.0))
    west = sim.add_field("west", direction=(-1.0, 0.0))
    sim.add_agents(np.array([8.0, 3.0, 3.45]), np.array([2.0, 1.0, 1.0]), np.full(3, 1.3), east)
    sim.add_agents(np.array([8.35]), np.array([2.0]), np.full(1, 1.3), west)
    sim.speed[:4] = [0.0, 0.0, 1.0, 0.0]  # the pair (agents 0 and 3) and the queued walker 1 stand
    h = counterflow_holdup(Corridor(sim, 16.0, 4.0, np.array([1.0, 1.0, 1.0, -1.0])))
    assert h.standing == pytest.approx(0.75)
    assert h.by_oncoming == pytest.approx(2 / 3)
    assert h.mutual == pytest.approx(2 / 3)
    assert h.same_way_neighbours == pytest.approx(0.5)  # the pair sees only each other, the queue only itself
    assert h.median_gap_m < 0.0  # the pair's centres are closer than a body length along their path
