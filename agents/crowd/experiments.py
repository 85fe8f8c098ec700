"""Standard pedestrian experiments built on :class:`VenueSim`: periodic corridor (fundamental diagram),
bottleneck, RiMEA tests 1 and 9, and a room with one exit (benchmark). Shared by tests, validation, bench.

Geometries follow the RiMEA guideline (v3.0) and the bottleneck set-up of Seyfried et al. (room, one
opening, flow measured at the opening). All lengths m, times s, densities persons/m².
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from agents.crowd.geometry import VenueGeometry, lattice_points, periodic_strip, rasterise
from agents.crowd.kernel import EGRESS
from agents.crowd.sim import ModelParams, VenueSim

__all__ = ["weidmann_speed", "lattice_points", "corridor_fd", "bottleneck_flow", "rimea1", "rimea9",
           "room_with_exit", "bottleneck_room", "run_egress", "EgressResult", "Corridor", "periodic_corridor",
           "MeasurementArea", "AreaResult", "measure", "lane_order", "neck_bottleneck", "start_lattice",
           "line_crossing_times", "HoldUp", "counterflow_holdup"]


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


# ---- periodic corridors ------------------------------------------------------------------------
def start_lattice(n: int, length: float, width: float, margin: float, min_dist: float):
    """At least ``n`` start points (m) on a staggered (triangular) lattice filling a periodic strip ``length`` x
    ``width`` m, at least ``margin`` from the long walls. Raises ValueError when the nearest neighbours would be
    closer than ``min_dist`` (the body length: a closer start would hold everyone up from the first step)."""
    w = width - 2.0 * margin
    if n <= 0:
        return np.zeros(0), np.zeros(0)
    if w <= 0:
        raise ValueError(f"corridor {width} m wide leaves no room at {margin} m from its walls")
    best = None
    for nrow in range(1, int(w / (0.5 * min_dist)) + 2):  # the row count that keeps neighbours farthest apart
        ncol = int(np.ceil(n / nrow))
        dx = length / ncol
        dy = w / nrow
        dmin = min(dx, np.hypot(0.5 * dx, dy), 2 * dy if nrow > 2 else np.inf) if nrow > 1 else dx
        if best is None or dmin > best[0]:
            best = (dmin, nrow, ncol)
    dmin, nrow, ncol = best
    if dmin < min_dist - 1e-9:
        raise ValueError(f"{n} people do not fit a {length} m x {width} m corridor {min_dist} m apart "
                         f"(closest start spacing {dmin:.3f} m): lower the density")
    xs = (np.arange(ncol) + 0.5) * length / ncol
    ys = margin + (np.arange(nrow) + 0.5) * w / nrow
    X, Y = np.meshgrid(xs, ys)
    X = X + (np.arange(nrow)[:, None] % 2) * 0.5 * length / ncol
    return X.ravel() % length, Y.ravel()


@dataclass
class Corridor:
    """A periodic corridor experiment: the sim and each agent's walking direction (+1 east, -1 west)."""

    sim: VenueSim
    length_m: float
    width_m: float
    heading: np.ndarray

    @property
    def n(self) -> int:
        return self.sim.n


def periodic_corridor(density: float, length: float = 16.0, width: float = 4.0, split: float = 1.0,
                      speed_mean: float = 1.34, speed_sd: float = 0.0, start: str = "mixed", seed: int = 1,
                      params: ModelParams = ModelParams(), dt: float = 0.05) -> Corridor:
    """A corridor periodic in x at ``density`` persons/m²; a share ``split`` walks east, the rest west.

    Desired speeds N(``speed_mean``, ``speed_sd``) m/s clipped to [0.5, 1.8] (sd 0: all the same). Start
    positions fill a staggered lattice; ``start="mixed"`` draws who walks which way at random,
    ``"lanes"`` puts the east-walkers on the south side (their right) and the west-walkers on the north side."""
    if not 0.0 <= split <= 1.0:
        raise ValueError(f"split must be in [0, 1], got {split}")
    if start not in ("mixed", "lanes"):
        raise ValueError(f"start must be 'mixed' or 'lanes', got {start!r}")
    sim = VenueSim(periodic_strip(length, width, 0.2), params, dt, periodic_lx_m=length, seed=seed)
    east = sim.add_field("east", direction=(1.0, 0.0))
    west = sim.add_field("west", direction=(-1.0, 0.0))
    n = int(round(density * length * width))
    X, Y = start_lattice(n, length, width, params.wall_clearance_m + 0.05, 2 * params.radius_m + 0.01)
    rng = np.random.default_rng(seed)
    pick = np.sort(rng.choice(X.size, n, replace=False))
    X, Y = X[pick], Y[pick]
    n_east = int(round(split * n))
    heading = -np.ones(n)
    if start == "lanes":
        heading[np.argsort(Y, kind="stable")[:n_east]] = 1.0
    else:
        heading[rng.permutation(n)[:n_east]] = 1.0
    v0 = np.full(n, speed_mean) if speed_sd <= 0 else np.clip(rng.normal(speed_mean, speed_sd, n), 0.5, 1.8)
    for h, f in ((1.0, east), (-1.0, west)):
        k = heading == h
        if k.any():
            sim.add_agents(X[k], Y[k], v0[k], f)
    heading = np.concatenate([np.ones(int((heading == 1).sum())), -np.ones(int((heading == -1).sum()))])
    return Corridor(sim, length, width, heading)


@dataclass(frozen=True)
class MeasurementArea:
    """A box (m) where density, speed and flow are measured, RiMEA test 4 style; flow is counted through its
    middle line x = (x0 + x1) / 2."""

    x0: float
    x1: float
    y0: float
    y1: float

    @property
    def area_m2(self) -> float:
        return (self.x1 - self.x0) * (self.y1 - self.y0)


@dataclass
class AreaResult:
    """Time means in one measurement area. density persons/m²; speed m/s along each walker's own heading;
    flow persons/s through the middle line (both ways); specific flow persons/(m·s) = flow / box width;
    speed_by_heading: mean speed of the east (+1) and west (-1) walkers in the box; stopped: share of the
    walkers in the box slower than 0.05 m/s."""

    density: float
    speed: float
    flow: float
    specific_flow: float
    speed_by_heading: dict
    stopped: float


def measure(sim: VenueSim, areas: list[MeasurementArea], duration_s: float, heading: np.ndarray | None = None,
            sample_s: float = 0.5) -> list[AreaResult]:
    """Step ``sim`` for ``duration_s`` s and measure each area every ``sample_s`` s. Speeds are displacements
    over a sample (unwrapped in a periodic corridor) along ``heading`` (+1/-1 per agent: along x) or, without
    it, their length."""
    n = sim.n
    lx = sim.lx
    k = max(1, int(round(duration_s / sample_s)))
    cnt = np.zeros(len(areas))
    vsum = np.zeros(len(areas))
    vn = np.zeros(len(areas))
    stop = np.zeros(len(areas))
    cross = np.zeros(len(areas))
    hs = {1.0: [np.zeros(len(areas)), np.zeros(len(areas))], -1.0: [np.zeros(len(areas)), np.zeros(len(areas))]}
    for _ in range(k):
        x0 = sim.x[:n].copy()
        y0 = sim.y[:n].copy()
        act = sim.active[:n].copy()
        sim.step(sample_s)
        dx = sim.x[:n] - x0
        if lx > 0:
            dx -= lx * np.floor(dx / lx + 0.5)
        dy = sim.y[:n] - y0
        v = (dx * heading if heading is not None else np.hypot(dx, dy)) / sample_s
        for a, ar in enumerate(areas):
            inside = act & (x0 >= ar.x0) & (x0 < ar.x1) & (y0 >= ar.y0) & (y0 < ar.y1)
            cnt[a] += inside.sum()
            vsum[a] += v[inside].sum()
            vn[a] += inside.sum()
            stop[a] += (inside & (np.hypot(dx, dy) / sample_s < 0.05)).sum()
            if heading is not None:
                for h, acc in hs.items():
                    m = inside & (heading == h)
                    acc[0][a] += v[m].sum()
                    acc[1][a] += m.sum()
            xm = 0.5 * (ar.x0 + ar.x1)
            x1 = x0 + dx
            band = act & (y0 >= ar.y0) & (y0 < ar.y1)
            cross[a] += (band & ((x0 - xm) * (x1 - xm) < 0) & (np.abs(dx) < 0.5 * max(ar.x1 - ar.x0, 1e-9) + 1.0)).sum()
    out = []
    T = k * sample_s
    for a, ar in enumerate(areas):
        rho = cnt[a] / k / ar.area_m2
        v = vsum[a] / max(vn[a], 1)
        q = cross[a] / T
        by = {h: (acc[0][a] / acc[1][a] if acc[1][a] else float("nan")) for h, acc in hs.items()}
        out.append(AreaResult(float(rho), float(v), float(q), float(q / (ar.y1 - ar.y0)), by,
                              float(stop[a] / max(vn[a], 1))))
    return out


def lane_order(c: Corridor, band_m: float = 0.3, reach_m: float = 2.0) -> float:
    """Lane order parameter in [0, 1]: for each walker, ((same - opposite) / (same + opposite))² over the
    walkers within ``band_m`` sideways and ``reach_m`` along the corridor, averaged (1: perfect lanes; a
    random 50/50 mix of a few neighbours gives about 0.2-0.3)."""
    s = c.sim
    x, y, hd = s.x[: s.n], s.y[: s.n], c.heading
    dx = x[:, None] - x[None, :]
    dx -= c.length_m * np.floor(dx / c.length_m + 0.5)
    near = (np.abs(y[:, None] - y[None, :]) < band_m) & (np.abs(dx) < reach_m)
    np.fill_diagonal(near, False)
    same = (near & (hd[:, None] == hd[None, :])).sum(1)
    opp = (near & (hd[:, None] != hd[None, :])).sum(1)
    tot = same + opp
    ok = tot > 0
    return float(np.mean(((same[ok] - opp[ok]) / tot[ok]) ** 2)) if ok.any() else float("nan")


@dataclass
class HoldUp:
    """Who holds up whom in a two-way corridor, now (shares 0-1). standing: walkers slower than 0.05 m/s over
    the last sub-step; by_oncoming: of those, the share whose nearest neighbour ahead along their heading (within
    ``body_width_m`` sideways) walks the other way; mutual: the share in head-on pairs, each the other's nearest
    one ahead; same_way_neighbours: the mean share of a walker's neighbours within 1 m walking its way (lane
    formation: 0.5 for a random 50/50 mix, 1 for perfect lanes); median_gap_m: the median gap (centre distance
    minus the body length 0.41 m) to the nearest one ahead, over everyone."""

    standing: float
    by_oncoming: float
    mutual: float
    same_way_neighbours: float
    median_gap_m: float


def counterflow_holdup(c: Corridor, body_width_m: float = 0.65, length_m: float = 0.41) -> HoldUp:
    """:class:`HoldUp` of a :class:`Corridor` at this instant (a diagnosis of stalls: are the standing held by
    people coming the other way, locked in head-on pairs, or by their own lane?)."""
    s = c.sim
    n = s.n
    x, y, hd = s.x[:n], s.y[:n], c.heading
    dx = x[None, :] - x[:, None]
    dx -= c.length_m * np.floor(dx / c.length_m + 0.5)
    dy = y[None, :] - y[:, None]
    dist = np.hypot(dx, dy)
    near = dist < 1.0
    np.fill_diagonal(near, False)
    tot = near.sum(1)
    same = (near & (hd[:, None] == hd[None, :])).sum(1)
    ahead = (dx * hd[:, None] > 0) & (np.abs(dy) < body_width_m)
    d = np.where(ahead, dist, np.inf)
    j = np.argmin(d, 1)
    has = np.isfinite(d.min(1))
    stand = s.speed[:n] < 0.05
    onc = has & (hd[j] != hd)
    mutual = onc & (j[j] == np.arange(n))
    ns = max(int(stand.sum()), 1)
    gap = d.min(1)[has] - length_m
    return HoldUp(float(stand.mean()), float((onc & stand).sum() / ns), float((mutual & stand).sum() / ns),
                  float(np.mean(same[tot > 0] / tot[tot > 0])) if (tot > 0).any() else float("nan"),
                  float(np.median(gap)) if gap.size else float("nan"))


def corridor_fd(density: float, length: float = 16.0, width: float = 4.0, warmup_s: float = 20.0,
                measure_s: float = 20.0, seed: int = 1, params: ModelParams = ModelParams(), dt: float = 0.05,
                v0: float = 1.34, speed_sd: float = 0.0) -> float:
    """Mean speed (m/s) of everyone in a one-way periodic corridor at a global density (persons/m²) after a
    warm-up (desired speeds N(``v0``, ``speed_sd``) m/s; sd 0: all ``v0``)."""
    c = periodic_corridor(density, length, width, 1.0, v0, speed_sd, seed=seed, params=params, dt=dt)
    c.sim.step(warmup_s)
    r = measure(c.sim, [MeasurementArea(0.0, length, 0.0, width)], measure_s, c.heading, sample_s=1.0)[0]
    return r.speed


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


def neck_bottleneck(width: float, neck_length: float, n: int = 200, room: tuple[float, float] = (10.0, 10.0),
                    seed: int = 1, params: ModelParams = ModelParams(), dt: float = 0.05,
                    walk_on_m: float = 0.0) -> tuple[VenueSim, VenueGeometry]:
    """A room with a neck: a corridor ``width`` m wide and ``neck_length`` m long leaving the middle of its east
    wall, ``n`` people placed inside (egress state, not yet stepped). ``walk_on_m`` 0: the neck's far end is the
    exit (people leave as they reach it; ``neck_length`` 0 is a door in the wall, :func:`bottleneck_room`).
    ``walk_on_m`` > 0: beyond the neck's end (or the door) lies an open area that deep and as wide as the room,
    whose far wall is the exit, so people walk on past the neck as in the experiments (measure the flow with
    :func:`line_crossing_times` at x = room length + ``neck_length``). Seyfried et al. 2009 and Kretz et al.
    2006 used necks of 0.4-4 m."""
    if neck_length <= 0 and walk_on_m <= 0:
        return bottleneck_room(width, n, room, seed, params, dt)
    L, W = room
    a, b = W / 2 - width / 2, W / 2 + width / 2
    X = L + max(neck_length, 0.0)
    walls: list = []
    if walk_on_m <= 0:
        poly = [(0, 0), (L, 0), (L, a), (X, a), (X, b), (L, b), (L, W), (0, W)]
        exit_ = ("exit", (X, W / 2), width)
    elif neck_length > 0:
        D = X + walk_on_m
        poly = [(0, 0), (L, 0), (L, a), (X, a), (X, 0), (D, 0), (D, W), (X, W), (X, b), (L, b), (L, W), (0, W)]
        exit_ = ("exit", (D, W / 2), W)
    else:  # a door in a thin wall between the room and the open area
        D = X + walk_on_m
        poly = [(0, 0), (D, 0), (D, W), (0, W)]
        walls = [[(L, 0), (L, a)], [(L, b), (L, W)]]
        exit_ = ("exit", (D, W / 2), W)
    g = VenueGeometry.build(poly, walls=walls, exits=[exit_])
    sim = VenueSim(rasterise(g, 0.1), params, dt, seed=seed)
    f = sim.add_exit_field()
    rng = np.random.default_rng(seed)
    px, py = lattice_points(sim.raster, 0.5, params.radius_m + 0.05)
    room_pts = px < L - 0.3
    px, py = px[room_pts], py[room_pts]
    if px.size < n:
        raise ValueError(f"room holds only {px.size} agents at 0.5 m spacing, asked for {n}")
    pick = rng.choice(px.size, n, replace=False)
    sim.add_agents(px[pick], py[pick], desired_speeds(rng, n), f, state=EGRESS)
    return sim, g


def line_crossing_times(sim: VenueSim, x_line: float, t_max: float, sample_s: float = 0.1) -> np.ndarray:
    """Step ``sim`` (sample by sample, ``sample_s`` s) until every agent has crossed the line x = ``x_line`` m
    eastwards (or left the venue) or ``t_max`` s; returns the sorted crossing times (s), end of the sample in
    which each agent first crossed. For flows measured at a line people walk on past (RiMEA / FZJ style)."""
    n = sim.n
    t_cross = np.full(n, np.nan)
    while sim.t < t_max and np.isnan(t_cross).any():
        x0 = sim.x[:n].copy()
        act0 = sim.active[:n].copy()
        sim.step(sample_s)
        hit = act0 & np.isnan(t_cross) & (x0 < x_line) & ((sim.x[:n] >= x_line) | ~sim.active[:n])
        t_cross[hit] = sim.t
        t_cross[np.isnan(t_cross) & ~sim.active[:n]] = sim.t  # left without being seen crossing (not expected)
    return np.sort(t_cross[np.isfinite(t_cross)])


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
