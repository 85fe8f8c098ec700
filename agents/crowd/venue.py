"""One venue inside the twin: its simulation, arrivals through entrances, egress, density sampling, warnings.

Pure state and logic, no simpy: the domain calls :meth:`VenueRun.tick` every ``update_s`` seconds.
Local coordinates (m) are venue-local; ``origin`` (city m) converts them to city coordinates.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from agents.crowd.config import CrowdConfig, ExitConfig, VenueConfig
from agents.crowd.density import DensityGrid
from agents.crowd.geometry import VenueGeometry, lattice_points, rasterise
from agents.crowd.kernel import EGRESS, MOVING, STANDING
from agents.crowd.sim import VenueSim
from agents.crowd.warnings import CrowdWarning, WarningTracker

__all__ = ["VenueRun", "TickResult", "lattice_points"]


@dataclass
class TickResult:
    """What happened in one tick: people who left per exit, warnings raised, peak window density."""

    exits: np.ndarray  # persons per exit (index into VenueRun.exits) this tick
    raised: list[CrowdWarning] = field(default_factory=list)
    peak_density: float = 0.0


class VenueRun:
    """A venue's pedestrian simulation plus arrival/egress schedules, density samples and warnings."""

    def __init__(self, vc: VenueConfig, cfg: CrowdConfig, geometry: VenueGeometry, exits: list[ExitConfig],
                 origin: tuple[float, float], rng: np.random.Generator) -> None:
        self.vc, self.cfg, self.g, self.exit_cfg = vc, cfg, geometry, exits
        self.name = vc.name
        self.origin = origin
        self.rng = rng
        self.p = cfg.model.params()
        self.raster = rasterise(geometry, cfg.raster_cell_m)
        cap = vc.initial_persons + (vc.arrivals.persons if vc.arrivals else 0) + 16
        self.sim = VenueSim(self.raster, self.p, cfg.dt_s, capacity=cap, seed=int(rng.integers(2**31)))
        out_ids = [i for i, e in enumerate(exits) if e.role in ("exit", "both")]
        in_ids = [i for i, e in enumerate(exits) if e.role in ("entrance", "both")]
        self.f_egress = self.sim.add_exit_field("egress", out_ids or None)
        self.attractor = self._attractor(in_ids)
        ax, ay = self.attractor
        cx, cy = self.raster.centres()
        X, Y = np.meshgrid(cx, cy)
        near = ((X - ax) ** 2 + (Y - ay) ** 2 <= 1.5 ** 2) & self.raster.inside
        if not near.any():
            iy, ix = self.raster.cell_of(ax, ay)
            near[iy, ix] = True
        self.f_attr = self.sim.add_field("attractor", near)
        Ta = self.sim.fT[self.f_attr][self.raster.inside]
        self._levels = np.sort(Ta[np.isfinite(Ta)])  # field values of inside cells, for fill-from-front
        self._spawn_pts = self._entrance_points(in_ids)
        self.density = DensityGrid.for_raster(self.raster, cfg.density_cell_m, cfg.density_window_m)
        self.tracker = WarningTracker(vc.name, {"warn": cfg.warn_density, "critical": cfg.critical_density},
                                      cfg.warn_duration_s)
        self.egress_at = np.full(cap, np.inf)  # when each agent starts to leave (s)
        self.queue = 0  # people due to arrive who could not yet step in (entrances full)
        self.arrived_due = 0
        self.exit_prev = np.zeros(len(exits), np.int64)
        self.n_exits = len(exits)
        self.person_s = {"warn": 0.0, "critical": 0.0}
        self.dens_sum = np.zeros(self.density.shape)
        self.dens_n = 0
        self.peak_interval = 0.0
        self.peak_all = 0.0
        self.peak_place = (np.nan, np.nan)
        self.egress_start = vc.egress.start_s if vc.egress else np.inf
        self.last_exit_s = np.nan
        if vc.initial_persons:
            self._place_initial(vc.initial_persons)

    # ---- set-up helpers -----------------------------------------------------------------------
    def _attractor(self, in_ids: list[int]) -> tuple[float, float]:
        if self.vc.attractor is not None:
            return tuple(map(float, self.vc.attractor))
        r = self.raster
        if in_ids:
            from agents.crowd.distance_field import navigation_field

            T, _, _ = navigation_field(r.walkable, np.isin(r.exit_id, in_ids), r.h)
            T = np.where(r.inside & np.isfinite(T), T, -1)
        else:
            from agents.crowd.distance_field import wall_distance

            T = np.where(r.inside, wall_distance(r.inside, r.h), -1)
        iy, ix = np.unravel_index(int(np.argmax(T)), T.shape)
        cx, cy = r.centres()
        return float(cx[ix]), float(cy[iy])

    def _entrance_points(self, in_ids: list[int]) -> tuple[np.ndarray, np.ndarray]:
        xs, ys = [], []
        inset = self.p.radius_m + 0.15
        for i in in_ids:
            e = self.g.exits[i]
            p1, p2, nrm = np.array(e.p1), np.array(e.p2), np.array(e.normal)
            m = max(1, int((e.width_m - 2 * self.p.core_radius_m) // (2 * self.p.radius_m + 0.05)))
            for k in range(m):
                q = p1 + (p2 - p1) * (k + 0.5) / m - nrm * inset
                xs.append(q[0])
                ys.append(q[1])
        return np.array(xs), np.array(ys)

    def _stop_level(self, k: np.ndarray) -> np.ndarray:
        """Attractor-field level at which the k-th arrival stops: the crowd fills outward at standing_density."""
        if self._levels.size == 0:
            return np.zeros(k.shape)
        cell_area = self.raster.h ** 2
        idx = np.minimum(((k + 0.5) / self.vc.standing_density / cell_area).astype(np.int64), self._levels.size - 1)
        return self._levels[idx] + self.rng.uniform(0.0, 1.0, k.shape)

    def _speeds(self, n: int) -> np.ndarray:
        m = self.cfg.model
        return np.clip(self.rng.normal(m.speed_mean_mps, m.speed_sd_mps, n), 0.3, m.max_speed_mps)

    def _place_initial(self, n: int) -> None:
        spacing = max(2 * self.p.radius_m + 0.02, 1.0 / np.sqrt(self.vc.standing_density))
        px, py = lattice_points(self.raster, spacing, self.p.radius_m + 0.05)
        if px.size < n:
            raise ValueError(f"venue {self.name!r}: only {px.size} places at {self.vc.standing_density} /m², "
                             f"initial_persons is {n}")
        iy, ix = self.raster.cell_of(px, py)
        order = np.argsort(self.sim.fT[self.f_attr][iy, ix], kind="stable")[:n]
        idx = self.sim.add_agents(px[order], py[order], self._speeds(n), self.f_attr, state=STANDING)
        self._set_egress_times(idx)

    def _set_egress_times(self, idx: np.ndarray) -> None:
        eg = self.vc.egress
        if eg is not None:
            self.egress_at[idx] = eg.start_s + self.rng.uniform(0.0, eg.spread_s, idx.size)

    # ---- one tick -----------------------------------------------------------------------------
    def _arrive(self, now: float) -> None:
        a = self.vc.arrivals
        if a is None or a.persons == 0:
            return
        due = int(np.floor(a.cumulative(np.array([now]))[0] + 1e-9))
        self.queue += due - self.arrived_due
        self.arrived_due = due
        if self.queue <= 0 or self._spawn_pts[0].size == 0:
            return
        px, py = self._spawn_pts
        free = np.flatnonzero(self.sim.free_mask(px, py))
        if free.size == 0:
            return
        take = self.rng.permutation(free)[: self.queue]
        k = np.arange(self.sim.n, self.sim.n + take.size)
        idx = self.sim.add_agents(px[take], py[take], self._speeds(take.size), self.f_attr, state=MOVING,
                                  stop=self._stop_level(k))
        self._set_egress_times(idx)
        self.queue -= take.size

    def _start_egress(self, now: float) -> None:
        n = self.sim.n
        if n == 0 or now < self.egress_start:
            return
        s = self.sim
        go = s.active[:n] & (s.state[:n] != EGRESS) & (self.egress_at[:n] <= now)
        if go.any():
            s.start_egress(np.flatnonzero(go), self.f_egress)

    def tick(self, now: float, dt: float) -> TickResult:
        """Advance from ``now - dt`` to ``now``: egress starts, kernel steps, exits, arrivals, density."""
        self._start_egress(now - dt)
        self.sim.step(dt)
        counts = self.sim.exit_count[: self.n_exits]
        left = counts - self.exit_prev
        self.exit_prev = counts.copy()
        if left.sum() > 0:
            self.last_exit_s = now
        self._arrive(now)
        x, y = self.sim.positions()
        c = self.density.counts(x, y)
        with np.errstate(invalid="ignore", divide="ignore"):
            self.dens_sum += np.where(self.density.valid, c / np.maximum(self.density.area_m2, 1e-12), 0.0)
        self.dens_n += 1
        w = self.density.window_density(c)
        peak, place = 0.0, (np.nan, np.nan)
        if x.size and np.isfinite(w).any():
            iy, ix = np.unravel_index(int(np.nanargmax(w)), w.shape)
            peak = float(w[iy, ix])
            k = self.density.window
            place = self.density.cell_centre(iy + 0.5 * (k - 1), ix + 0.5 * (k - 1))
            # person-seconds above each level: people whose window density is at/above it
            ny, nx = w.shape
            pix = np.clip(((x - self.density.x0) / self.density.cell_m).astype(np.int64), 0, nx - 1)
            piy = np.clip(((y - self.density.y0) / self.density.cell_m).astype(np.int64), 0, ny - 1)
            # the window whose lower-left cell is (iy - k//2, ix - k//2) is roughly centred on the person
            wy = np.clip(piy - k // 2, 0, ny - 1)
            wx = np.clip(pix - k // 2, 0, nx - 1)
            dp = np.nan_to_num(w[wy, wx])
            self.person_s["warn"] += float((dp >= self.cfg.warn_density).sum()) * dt
            self.person_s["critical"] += float((dp >= self.cfg.critical_density).sum()) * dt
        self.peak_interval = max(self.peak_interval, peak)
        if peak > self.peak_all:
            self.peak_all, self.peak_place = peak, place
        raised = self.tracker.update(now, peak, *place)
        return TickResult(left, raised, peak)

    def take_interval(self) -> tuple[np.ndarray, float]:
        """Time-mean density map and peak window density since the last call (then reset)."""
        m = np.where(self.density.valid, self.dens_sum / max(self.dens_n, 1), np.nan)
        p = self.peak_interval
        self.dens_sum[:] = 0.0
        self.dens_n = 0
        self.peak_interval = 0.0
        return m, p

    # ---- views --------------------------------------------------------------------------------
    def to_city(self, x: float, y: float) -> tuple[float, float]:
        return self.origin[0] + x, self.origin[1] + y

    @property
    def entered(self) -> int:
        return self.sim.n

    @property
    def inside(self) -> int:
        return self.sim.inside

    @property
    def exited(self) -> int:
        return self.sim.exited
