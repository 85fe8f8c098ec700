"""Crowd kernel: physics against experiments (free speed, Weidmann, bottleneck, RiMEA 1 and 9) and invariants."""
import numpy as np
import pytest

from agents.crowd.experiments import (bottleneck_flow, corridor_fd, periodic_corridor, place_random, rimea1, rimea9,
                                      weidmann_speed)
from agents.crowd.geometry import VenueGeometry, rasterise
from agents.crowd.kernel import seg_point
from agents.crowd.sim import ModelParams, VenueSim, stable_dt


def test_rimea1_free_walking_time():
    """RiMEA test 1: one person at 1.33 m/s crosses a 40 m corridor in 26-34 s."""
    assert 26.0 <= rimea1(1.33) <= 34.0


@pytest.mark.parametrize("rho", [1.0, 3.0])
def test_speed_density_follows_weidmann(rho):
    """Mean speed in a periodic corridor is within 20% of Weidmann's fundamental diagram."""
    v = np.mean([corridor_fd(rho, warmup_s=20, measure_s=15, seed=s) for s in (1, 2)])
    assert abs(v / weidmann_speed(rho) - 1.0) <= 0.2


def test_bottleneck_flow_grows_with_width_and_one_metre_does_not_clog():
    """Everyone gets out of 1, 1.6 and 2.4 m doors; total flow grows with width; the specific flow (mean of two
    seeds) is within the experimental 1.5-2.2 /(m s) band (Seyfried et al. 2009, Liddle et al. 2011)."""
    prev = 0.0
    for w in (1.0, 1.6, 2.4):
        rs = [bottleneck_flow(w, n=200, seed=s) for s in (1, 2)]
        assert all(r.left_inside == 0 for r in rs)
        J = float(np.mean([r.flow() for r in rs]))
        assert 1.5 <= J / w <= 2.2, (w, J / w)
        assert J > prev
        prev = J


def test_one_metre_exit_keeps_flowing_with_600_people():
    """A long queue at a 1 m door never clogs for good: all 600 leave and no gap between leavers exceeds 10 s
    (JuPedSim's default collision-free speed model clogs here)."""
    r = bottleneck_flow(1.0, n=600, room=(15.0, 15.0), seed=4, t_max=900)
    assert r.left_inside == 0
    assert np.diff(r.times).max() < 10.0


def test_rimea9_two_exits_take_about_twice_as_long():
    """RiMEA test 9: closing 2 of 4 one-metre exits makes evacuation of 1000 people 1.6-2.4x longer."""
    t4 = rimea9(4).evacuation_time_s
    t2 = rimea9(2).evacuation_time_s
    assert 1.6 <= t2 / t4 <= 2.4


def _invariant_run(seed: int):
    g = VenueGeometry.build([(0, 0), (8, 0), (8, 6), (0, 6)], obstacles=[[(4, 2.5), (5, 2.5), (5, 3.5), (4, 3.5)]],
                            exits=[("door", (8, 3), 1.0)])
    sim = VenueSim(rasterise(g, 0.1), ModelParams(), 0.05, seed=seed)
    f = sim.add_exit_field()
    place_random(sim, 80, np.random.default_rng(seed), f)
    return sim


def test_invariants_conservation_walls_overlap():
    """Agents are conserved, never nearer a wall than the clearance, never closer than the minimum distance."""
    sim = _invariant_run(5)
    p = sim.p
    segs = sim.raster.walls
    for _ in range(30):
        sim.step(1.0)
        assert sim.inside + sim.exited == sim.n
        x, y = sim.positions()
        if x.size > 1:
            d2 = (x[:, None] - x[None]) ** 2 + (y[:, None] - y[None]) ** 2
            np.fill_diagonal(d2, np.inf)
            assert np.sqrt(d2.min()) >= 2 * p.core_radius_m - 1e-9
        for xi, yi in zip(x, y):
            dmin = min(seg_point(xi, yi, *s)[0] for s in segs)
            assert dmin >= p.wall_clearance_m - 1e-9
        iy, ix = sim.raster.cell_of(x, y)
        assert sim.raster.walkable[iy, ix].all()
    assert sim.exited > 40


def test_deterministic_with_seed():
    """Same seed gives bit-identical trajectories; another seed gives different ones."""
    a, b, c = _invariant_run(11), _invariant_run(11), _invariant_run(12)
    for s in (a, b, c):
        s.step(10.0)
    assert np.array_equal(a.x[: a.n], b.x[: b.n]) and np.array_equal(a.y[: a.n], b.y[: b.n])
    assert not np.array_equal(a.x[: a.n], c.x[: c.n])


def _run_threads(sim: VenueSim, threads: int, nbuf: int | None, steps: int = 100) -> VenueSim:
    """Run ``sim`` for ``steps`` steps on ``threads`` numba threads (parallel from the first agent), optionally with a
    neighbour buffer of ``nbuf`` slots (tiny: the kernel's full-scan fallback)."""
    import numba

    sim.parallel_min_agents = 0
    if nbuf is not None:
        sim.nbuf = nbuf
    prev = numba.get_num_threads()
    numba.set_num_threads(min(threads, numba.config.NUMBA_NUM_THREADS))
    try:
        sim._run(steps, sim.n, sim.raster)
    finally:
        numba.set_num_threads(prev)
    return sim


def test_same_result_on_one_and_two_threads_and_with_a_tiny_neighbour_buffer():
    """The parallel kernel's result does not depend on the thread count, and the full-scan fallback used when an
    agent's neighbour buffer overflows gives the same moves as the buffer."""
    runs = []
    for threads, nbuf in ((1, None), (2, None), (2, 3)):
        sim = _run_threads(_invariant_run(21), threads, nbuf)
        runs.append((sim.x[: sim.n].copy(), sim.y[: sim.n].copy()))
    for x, y in runs[1:]:
        assert np.array_equal(x, runs[0][0]) and np.array_equal(y, runs[0][1])
    assert not np.array_equal(runs[0][0], _invariant_run(21).x[:80])  # they did move


def test_two_way_corridor_bit_identical_across_threads_and_buffer_fallback():
    """Counter-flow in a periodic corridor (oncoming, zipper and periodic-wrap paths of the kernel) moves everyone
    the same on one and two threads and through the full-scan fallback of a tiny neighbour buffer."""
    def run(threads: int, nbuf: int | None) -> tuple[np.ndarray, ...]:
        sim = periodic_corridor(2.0, length=16.0, width=4.0, split=0.5, speed_sd=0.2, seed=3).sim
        sim = _run_threads(sim, threads, nbuf)
        n = sim.n
        return sim.x[:n].copy(), sim.y[:n].copy(), sim.vx[:n].copy(), sim.vy[:n].copy(), sim.ox[:n].copy()

    ref = run(1, None)
    x0 = periodic_corridor(2.0, length=16.0, width=4.0, split=0.5, speed_sd=0.2, seed=3).sim.x
    assert not np.array_equal(ref[0], x0[: ref[0].size])  # they did move
    assert np.abs(ref[2]).max() > 0.1  # and walked, not just jittered
    for threads, nbuf in ((2, None), (2, 3), (1, 3)):
        got = run(threads, nbuf)
        for a, b in zip(ref, got):
            assert np.array_equal(a, b), (threads, nbuf)


def _state(sim: VenueSim) -> tuple[np.ndarray, ...]:
    n = sim.n
    return tuple(a[:n].copy() for a in (sim.x, sim.y, sim.vx, sim.vy, sim.ox, sim.oy, sim.speed, sim.state,
                                        sim.active, sim.exit_of)) + (sim.exit_count.copy(),)


@pytest.mark.parametrize("make", ["room", "corridor"])
def test_one_long_call_equals_many_one_step_calls(make):
    """The kernel keeps the agents in cell-ordered slot arrays for a whole call and writes them back at its end;
    one call of 300 sub-steps on two threads moves everyone exactly as 300 calls of one sub-step on one thread
    (each call sorting afresh from the agent arrays): the slot order and every neighbour sum do not depend on
    how the steps are cut, and agents that leave mid-call are written back whole."""
    def build() -> VenueSim:
        if make == "room":
            return _invariant_run(31)
        return periodic_corridor(2.0, length=16.0, width=4.0, split=0.5, speed_sd=0.2, seed=5).sim

    one = _run_threads(build(), 2, None, steps=300)
    many = build()
    for _ in range(300):
        many.step(many.dt)
    a, b = _state(one), _state(many)
    for u, v in zip(a, b):
        assert np.array_equal(u, v)
    # exit times: the same sub-step (the clock is summed per call, so the last bit may differ)
    np.testing.assert_allclose(one.exit_time[: one.n], many.exit_time[: many.n], rtol=0, atol=1e-9)
    if make == "room":
        assert one.exited > 20  # agents left mid-call
    else:
        assert np.abs(one.vx[: one.n]).max() > 0.1  # they walked


def test_unstable_dt_refused():
    """A sub-step above the stability limit is refused, not run."""
    p = ModelParams()
    with pytest.raises(ValueError, match="unstable"):
        VenueSim(rasterise(VenueGeometry.build([(0, 0), (5, 0), (5, 5), (0, 5)]), 0.2), p, 2 * stable_dt(p))


@pytest.mark.parametrize("periodic", [False, True])
def test_neighbour_at_the_cut_off_counts_and_one_beyond_does_not(periodic):
    """The kernel picks the candidates within the cut-off in a first pass (1 um generous) and tests each again
    exactly: a neighbour 1e-7 m inside the cut-off sideways of a walker pushes it (its direction, so its position
    after one sub-step, differs from walking alone), one 1e-7 m beyond changes nothing bit for bit; also across a
    periodic corridor's wrap."""
    p = ModelParams()
    cut = p.cutoff_m

    def walker_after_one_step(dy: float | None) -> tuple[float, float]:
        if periodic:
            sim = periodic_corridor(0.1, length=16.0, width=6.0, split=1.0, seed=1).sim
            sim.active[: sim.n] = False  # an empty corridor: only the two placed below walk
            f = 0
            xa, ya = 15.9, 2.0  # near the wrap: the neighbour sits across it
        else:
            g = VenueGeometry.build([(0, 0), (10, 0), (10, 10), (0, 10)], exits=[("e", (10, 5), 2.0)])
            sim = VenueSim(rasterise(g, 0.1), p, 0.05)
            f = sim.add_exit_field()
            xa, ya = 5.0, 5.0
        a = sim.add_agents([xa], [ya], 1.3, f)[0]
        if dy is not None:  # sideways of the walker (the corridor's neighbour also 0.5 m on, across the wrap)
            dx = 0.5 if periodic else 0.0
            xb = (xa + dx) % 16.0 if periodic else xa
            sim.add_agents([xb], [ya + np.sqrt(dy * dy - dx * dx)], 1.3, f)
        sim.step(sim.dt)
        return float(sim.x[a]), float(sim.y[a])

    alone = walker_after_one_step(None)
    inside = walker_after_one_step(cut - 1e-7)
    beyond = walker_after_one_step(cut + 1e-7)
    assert inside != alone
    assert abs(inside[1] - alone[1]) < 1e-4  # a push of about a_p exp((l - cut) / D_p), not a jump
    assert beyond == alone
