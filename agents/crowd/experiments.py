"""Standard pedestrian experiments built on :class:`VenueSim`: periodic corridor (fundamental diagram),
bottleneck, RiMEA tests 1 and 9, and a room with one exit (benchmark). Shared by tests, validation, bench.

Geometries follow the RiMEA guideline (v3.0) and the bottleneck set-up of Seyfried et al. (room, one
opening, flow measured at the opening). All lengths m, times s, densities persons/m².
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from agents.crowd.geometry import VenueGeometry, rasterise
from agents.crowd.kernel import EGRESS
from agents.crowd.sim import ModelParams, VenueSim
from agents.crowd.venue import lattice_points  # production code's; re-exported for bench and validation

__all__ = ["weidmann_speed", "lattice_points", "corridor_fd", "bottleneck_flow", "rimea1", "rimea9",
           "room_with_exit", "bottleneck_room", "run_egress", "EgressResult"]


def weidmann_speed(rho):
    """Weidmann (1993) speed (m/s) at density rho (persons/m²)."""
    rho = np.asarray(rho, np.float64)
    return 1.34 * (1.0 - np.exp(-1.913 * (1.0 / rho - 1.0 / 5.4)))


def desired_speeds(rng: np.random.Generator, n: int) -> np.ndarray:
    """Free walking speeds (m/s): Weidmann's N(1.34, 0.26) clipped to [0.8, 1.8]."""
    return np.clip(rng.normal(1.34, 0.26, n), 0.8, 1.8)


def place_random(sim: VenueSim, n: int, rng: np.random.Generator, field: int, v0=None, spacing: float = 0.5):
    """Put ``n`` agents on random sites of a ``spacing`` lattice (no two closer than ``spacing``)."""
    px, py = lattice_points(sim.raster, spacing, sim.p.radius_m + 0.05)
    if px.size < n:
        raise ValueError(f"room holds only {px.size} agents at {spacing} m spacing, asked for {n}")
    pick = rng.choice(px.size, n, replace=False)
    v = desired_speeds(rng, n) if v0 is None else v0
    return sim.add_agents(px[pick], py[pick], v, field, state=EGRESS)


# ---- fundamental diagram -----------------------------------------------------------------------
def corridor_fd(density: float, length: float = 16.0, width: float = 4.0, warmup_s: float = 20.0,
                measure_s: float = 20.0, seed: int = 1, params: ModelParams = ModelParams(), dt: float = 0.05,
                v0: float = 1.34) -> float:
    """Mean speed (m/s) in a periodic corridor at a global density (persons/m²) after a warm-up."""
    g = VenueGeometry.build([(0, 0), (length, 0), (length, width), (0, width)])
    r = rasterise(g, 0.2)
    # periodic in x: keep only the two long walls
    r.walls = np.array([[-1.0, 0, length + 1, 0], [-1.0, width, length + 1, width]])
    sim = VenueSim(r, params, dt, periodic_lx_m=length, seed=seed)
    f = sim.add_field("east", direction=(1.0, 0.0))
    n = int(round(density * length * width))
    m = 0.25
    nrow = max(1, int(round(np.sqrt(n * (width - 2 * m) / length))))
    ncol = int(np.ceil(n / nrow))
    xs = (np.arange(ncol) + 0.5) * length / ncol
    ys = m + (np.arange(nrow) + 0.5) * (width - 2 * m) / nrow
    X, Y = np.meshgrid(xs, ys)
    X = X + (np.arange(nrow)[:, None] % 2) * 0.5 * length / ncol
    X, Y = X.ravel() % length, Y.ravel()
    rng = np.random.default_rng(seed)
    pick = np.sort(rng.choice(X.size, n, replace=False))
    sim.add_agents(X[pick], Y[pick], v0, f)
    sim.step(warmup_s)
    x0 = sim.x[:n].copy()
    # unwrap displacement over the measuring window in 1 s chunks
    dist = np.zeros(n)
    steps = int(measure_s)
    for _ in range(steps):
        prev = sim.x[:n].copy()
        sim.step(1.0)
        dx = sim.x[:n] - prev
        dx -= length * np.floor(dx / length + 0.5)
        dist += dx
    del x0
    return float(dist.mean() / steps)


# ---- egress experiments ------------------------------------------------------------------------
@dataclass
class EgressResult:
    """Exit times (s, sorted) of one egress run, and what was left inside."""

    times: np.ndarray
    left_inside: int
    sim: VenueSim

    @property
    def evacuation_time_s(self) -> float:
        return float(self.times[-1]) if self.times.size else float("nan")

    def flow(self, lo: float = 0.1, hi: float = 0.9) -> float:
        """Steady flow (persons/s) between the ``lo`` and ``hi`` fractions of leavers."""
        t = self.times
        a, b = int(lo * t.size), int(hi * t.size) - 1
        return float((b - a) / max(t[b] - t[a], 1e-9))


def run_egress(sim: VenueSim, t_max: float, chunk: float = 1.0) -> EgressResult:
    """Step ``sim`` in ``chunk`` s until everyone is out or ``t_max`` s; agents are conserved (asserted)."""
    n0 = sim.inside
    while sim.inside > 0 and sim.t < t_max:
        sim.step(chunk)
    t = np.sort(sim.exit_time[: sim.n][np.isfinite(sim.exit_time[: sim.n])])
    assert t.size + sim.inside == n0
    return EgressResult(t, sim.inside, sim)


def bottleneck_room(width: float, n: int = 200, room: tuple[float, float] = (10.0, 10.0), seed: int = 1,
                    params: ModelParams = ModelParams(), dt: float = 0.05) -> tuple[VenueSim, VenueGeometry]:
    """A room with one opening of ``width`` m in the middle of its east wall and ``n`` people placed inside
    (egress state, not yet stepped): the set-up of :func:`bottleneck_flow`, also given to peer tools."""
    L, W = room
    g = VenueGeometry.build([(0, 0), (L, 0), (L, W), (0, W)], exits=[("exit", (L, W / 2), width)])
    sim = VenueSim(rasterise(g, 0.1), params, dt, seed=seed)
    f = sim.add_exit_field()
    place_random(sim, n, np.random.default_rng(seed), f)
    return sim, g


def bottleneck_flow(width: float, n: int = 200, room: tuple[float, float] = (10.0, 10.0), seed: int = 1,
                    params: ModelParams = ModelParams(), dt: float = 0.05, t_max: float = 400.0) -> EgressResult:
    """Egress of :func:`bottleneck_room`: exit times of everyone who got out within ``t_max`` s."""
    return run_egress(bottleneck_room(width, n, room, seed, params, dt)[0], t_max)


def rimea1(v0: float = 1.33, params: ModelParams = ModelParams(), dt: float = 0.05) -> float:
    """RiMEA test 1: time (s) for one person to walk a 40 m x 2 m corridor (start at x = 0)."""
    g = VenueGeometry.build([(0, 0), (40, 0), (40, 2), (0, 2)], exits=[("end", (40, 1), 2.0)])
    sim = VenueSim(rasterise(g, 0.1), params, dt)
    f = sim.add_exit_field()
    sim.add_agents(0.0 + params.core_radius_m + 0.01, 1.0, v0, f, state=EGRESS)
    res = run_egress(sim, 100.0, 0.5)
    return res.evacuation_time_s


def rimea9(n_exits: int = 4, n: int = 1000, seed: int = 1, params: ModelParams = ModelParams(),
           dt: float = 0.05, t_max: float = 1200.0) -> EgressResult:
    """RiMEA test 9: 1000 people in a 30 m x 20 m room with four 1 m exits near the corners of the short
    walls (two on each side); with ``n_exits=2`` the two exits on the east wall are closed."""
    exits = [("w1", (0, 2.5), 1.0), ("w2", (0, 17.5), 1.0), ("e1", (30, 2.5), 1.0), ("e2", (30, 17.5), 1.0)]
    g = VenueGeometry.build([(0, 0), (30, 0), (30, 20), (0, 20)], exits=exits[:n_exits])
    sim = VenueSim(rasterise(g, 0.2), params, dt, seed=seed)
    f = sim.add_exit_field()
    place_random(sim, n, np.random.default_rng(seed), f)
    return run_egress(sim, t_max)


def room_with_exit(n: int, density: float = 2.0, exit_width: float = 2.0, seed: int = 1,
                   params: ModelParams = ModelParams(), dt: float = 0.05, h: float = 0.25):
    """A square room sized for ``n`` people at ``density`` with one exit mid east wall (benchmark set-up).

    Returns (sim, geometry) with agents placed (egress state) but not yet stepped."""
    side = float(np.ceil(np.sqrt(n / density))) + 2.0
    g = VenueGeometry.build([(0, 0), (side, 0), (side, side), (0, side)],
                            exits=[("exit", (side, side / 2), exit_width)])
    sim = VenueSim(rasterise(g, h), params, dt, capacity=n, seed=seed)
    f = sim.add_exit_field()
    place_random(sim, n, np.random.default_rng(seed), f, spacing=min(0.5, 1.0 / np.sqrt(density) * 0.98))
    return sim, g
