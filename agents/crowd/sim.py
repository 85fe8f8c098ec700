"""One venue's pedestrian simulation: agent arrays, navigation fields and the numba kernel, standalone.

Used by the crowd domain (one per venue), the validation script and the benchmark. Time is in s,
positions in venue-local m. Agents are never deleted: an exited agent's slot stays inactive.
"""
from __future__ import annotations

import time
from dataclasses import dataclass

import numba
import numpy as np

from agents.crowd.distance_field import navigation_field, wall_distance
from agents.crowd.geometry import Raster
from agents.crowd.kernel import (EGRESS, MOVING, KernelParams, bin_walls, neighbour_buffer, noise_dirs,
                                 run_steps)
from agents.crowd.threads import ThreadPicker

__all__ = ["ModelParams", "VenueSim", "stable_dt"]


@dataclass(frozen=True)
class ModelParams:
    """Collision-free speed model parameters (JuPedSim's repulsion defaults; time gap and length calibrated)."""

    radius_m: float = 0.205  # l = 2 r: the length an agent occupies along its path
    time_gap_s: float = 0.6  # T: speed = gap / T
    a_ped: float = 8.0  # neighbour repulsion strength
    d_ped_m: float = 0.1  # neighbour repulsion range
    a_wall: float = 5.0  # wall repulsion strength
    d_wall_m: float = 0.02  # wall repulsion range
    core_radius_m: float = 0.15  # hard core: no two centres closer than 2x this (bodies compress in a crush)
    wall_clearance_m: float = 0.2  # no centre closer than this to a wall (a body's half width)
    max_speed_mps: float = 2.0  # largest desired speed allowed
    noise: float = 0.3  # magnitude of a reproducible random term added to the direction (breaks clogging arches)
    lateral_m: float = 0.65  # body width: a neighbour (not in one's lane) blocks the way when its centre is within
    # this of one's path (0.55 m before issue 19's third pass; 0.65 with the lower field clearance keeps doors in band)
    creep_mps: float = 0.4  # speed allowed to one held up only by people behind it in the field (breaks deadlocks)
    # counter-flow (walkers with another goal coming the other way), after Xu, Chraibi & Seyfried 2021:
    anticipation_s: float = 1.0  # oncoming walkers are avoided as if closer by their closing speed x this (s)
    a_side: float = 2.0  # strength of the sideways step away from an oncoming walker ahead (0: off)
    d_side_m: float = 0.8  # its range (m of anticipated gap)
    side_bias_m: float = 0.1  # pass on the right unless the oncoming walker is this far to one's right already
    oncoming_width_m: float = 0.3  # an oncoming walker holds one up only within this of one's path (shoulders
    # turned: the hard core), a same-way one within lateral_m
    oncoming_sideways: bool = True  # an oncoming walker ahead repels only sideways, not back
    # the zipper (staggered lanes closer than the body width, Hoogendoorn & Daamen 2005): a walker ahead going
    # one's way, moving at >= zipper_speed_mps with a desired direction within zipper_angle_deg of one's own (a
    # lane, not a crowd converging on a door), holds one up only within zipper_width_m of one's path
    zipper_width_m: float = 0.3
    zipper_speed_mps: float = 0.3  # 0: off
    zipper_angle_deg: float = 30.0  # 10 before the third pass: lanes entering a neck converge by up to ~30 deg
    field_clearance_m: float = 0.15  # navigation fields make cells within this of a wall up to 3x slower (0.5 m before
    # the third pass: in a 1 m neck that steered everyone onto the centre line at 24-57 deg, one file)
    reaction_time_s: float = 0.2  # the walking direction turns towards the computed one with this reaction time
    # (Xu, Chraibi & Seyfried 2021, eq. 7, as in JuPedSim's anticipation velocity model; 0: at once; issue 19's
    # fourth pass: two-way 0.45 -> 0.51 m/s at 2.1 /m², necks +1-7%, doors and Weidmann unchanged)
    noise_speed_mps: float = 1.5  # the noise fades out as one's last speed rises to this (0: at any speed):
    # it breaks arches where people are held up and leaves walkers in a lane on their line

    @property
    def cutoff_m(self) -> float:
        """Neighbour range: beyond it repulsion < 1e-2 and the gap no longer limits the speed."""
        return 2 * self.radius_m + max(self.max_speed_mps * self.time_gap_s, 6 * self.d_ped_m)


def stable_dt(p: ModelParams) -> float:
    """Largest stable sub-step (s): dt <= T/2 (no overtaking in a head-on pair) and
    dt * v_max <= min(core radius, wall clearance) (a step cannot tunnel through a wall or a core)."""
    return min(0.5 * p.time_gap_s, min(p.core_radius_m, p.wall_clearance_m) / p.max_speed_mps)


class VenueSim:
    """Pedestrians in one rasterised venue, stepped by the collision-free speed kernel."""

    parallel_min_agents = 1000  # below this many agents inside, the kernel runs on one thread (threads cost more)
    stencil_cells = 3  # neighbour cells are cutoff / stencil_cells wide; an agent scans (2 s + 1)^2 of them

    def __init__(self, raster: Raster, params: ModelParams = ModelParams(), dt_s: float = 0.05,
                 capacity: int = 1024, periodic_lx_m: float = 0.0, seed: int = 0) -> None:
        if dt_s > stable_dt(params) + 1e-12:
            raise ValueError(f"dt_s {dt_s} s is unstable: must be <= {stable_dt(params):.4f} s")
        self.raster = raster
        self.p = params
        self.dt = float(dt_s)
        self.t = 0.0
        self.lx = float(periodic_lx_m)
        ny, nx = raster.shape
        cut = params.cutoff_m
        nr = self.stencil_cells
        if self.lx > 0:
            ncx = int(self.lx // (cut / nr))
            if ncx < 2 * nr + 1:
                raise ValueError(f"periodic length {self.lx} m is too short: needs >= {(2 * nr + 1) * cut / nr:.2f} m")
            cs = self.lx / ncx
        else:
            cs = cut / nr
            ncx = max(1, int(np.ceil(nx * raster.h / cs)))
        self.cs = cs
        self.ncx = ncx
        self.ncy = max(1, int(np.ceil(ny * raster.h / cs)))
        self.nr = nr
        self.nrc = max(1, int(np.ceil(2 * params.core_radius_m / cs)))
        self.wstart, self.widx = bin_walls(raster.walls, raster.x0, raster.y0, cs, self.ncx, self.ncy,
                                           params.radius_m + 0.3)
        self.fields: dict[str, int] = {}
        self.fT = np.zeros((0, ny, nx), np.float32)
        self.fgx = np.zeros((0, ny, nx), np.float32)
        self.fgy = np.zeros((0, ny, nx), np.float32)
        self.n_exits = int(raster.exit_id.max()) + 1 if raster.exit_id.size else 0
        self.exit_count = np.zeros(max(self.n_exits, 1), np.int64)
        self._alloc(capacity)
        self.n = 0
        self.seed = int(seed) & 0xFFFFFFFF
        self.steps_done = 0
        self.undone_moves = 0
        self.par = KernelParams(
            l=2 * params.radius_m, T=params.time_gap_s, a_p=params.a_ped, D_p=params.d_ped_m, a_w=params.a_wall,
            D_w=params.d_wall_m, r=params.radius_m, r_core=params.wall_clearance_m, dt=self.dt, lx=self.lx,
            cutoff=cut, d_min=2 * params.core_radius_m, noise=params.noise, w=params.lateral_m,
            creep=params.creep_mps, t_ant=params.anticipation_s, a_side=params.a_side, d_side=params.d_side_m,
            side_bias=params.side_bias_m, noise_v=params.noise_speed_mps, w_onc=params.oncoming_width_m,
            onc_lateral=float(params.oncoming_sideways), w_zip=params.zipper_width_m, v_zip=params.zipper_speed_mps,
            c_zip=float(np.cos(np.radians(params.zipper_angle_deg))), t_react=params.reaction_time_s)
        self.par = KernelParams(*(float(v) for v in self.par))
        self.nbuf = neighbour_buffer(cut, 2 * params.core_radius_m)
        self._ndir = noise_dirs()
        self.threads = ThreadPicker(self.parallel_min_agents)

    # ---- storage ------------------------------------------------------------------------------
    def _alloc(self, cap: int) -> None:
        self.x = np.zeros(cap)
        self.y = np.zeros(cap)
        self.v0 = np.zeros(cap)
        self.state = np.zeros(cap, np.int8)
        self.fid = np.zeros(cap, np.int32)
        self.stop = np.full(cap, -1.0)
        self.active = np.zeros(cap, np.bool_)
        self.exit_time = np.full(cap, np.nan)
        self.enter_time = np.full(cap, np.nan)
        self.exit_of = np.full(cap, -1, np.int32)
        self.speed = np.zeros(cap)
        self.vx = np.zeros(cap)  # velocity (m/s) over the last sub-step
        self.vy = np.zeros(cap)
        self.ox = np.zeros(cap)  # walking direction (unit; 0 = not yet walked), used with a reaction time
        self.oy = np.zeros(cap)

    def _grow(self, need: int) -> None:
        cap = self.x.shape[0]
        if need <= cap:
            return
        new = max(need, 2 * cap)
        for name in ("x", "y", "v0", "state", "fid", "stop", "active", "exit_time", "enter_time", "exit_of",
                     "speed", "vx", "vy", "ox", "oy"):
            a = getattr(self, name)
            b = np.zeros(new, a.dtype)
            if name in ("exit_time", "enter_time"):
                b[:] = np.nan
            if name == "exit_of":
                b[:] = -1
            b[:cap] = a
            setattr(self, name, b)

    # ---- fields -------------------------------------------------------------------------------
    def add_field(self, name: str, targets: np.ndarray | None = None, direction: tuple[float, float] | None = None,
                  clearance_m: float | None = None) -> int:
        """Add a navigation field toward ``targets`` (bool raster) or a uniform ``direction``; return its id."""
        r = self.raster
        if direction is not None:
            T = np.zeros(r.shape)
            gx = np.full(r.shape, direction[0], np.float32)
            gy = np.full(r.shape, direction[1], np.float32)
        else:
            # aim at target cells an agent's core fits into (not the corners of a door's apron): otherwise
            # people beside a door post are led straight at it and wedge the door
            fit = targets & (wall_distance(r.walkable, r.h) >= self.p.wall_clearance_m)
            T, gx, gy = navigation_field(r.walkable, fit if fit.any() else targets, r.h,
                                         self.p.field_clearance_m if clearance_m is None else clearance_m)
        self.fT = np.concatenate([self.fT, T[None].astype(np.float32)])
        self.fgx = np.concatenate([self.fgx, gx[None]])
        self.fgy = np.concatenate([self.fgy, gy[None]])
        self.fields[name] = len(self.fields)
        return self.fields[name]

    def add_exit_field(self, name: str = "egress", exits: list[int] | None = None) -> int:
        """Field toward the aprons of ``exits`` (all exits by default): agents take the nearest one."""
        ex = self.raster.exit_id
        targets = ex >= 0 if exits is None else np.isin(ex, exits)
        return self.add_field(name, targets)

    # ---- agents -------------------------------------------------------------------------------
    def add_agents(self, x, y, v0, field: int, state: int = MOVING, stop=-1.0) -> np.ndarray:
        """Add agents (no placement check: see :meth:`free_mask`); return their indices."""
        x = np.atleast_1d(np.asarray(x, np.float64))
        k = x.shape[0]
        self._grow(self.n + k)
        idx = np.arange(self.n, self.n + k)
        self.x[idx] = x
        self.y[idx] = y
        self.v0[idx] = v0
        self.state[idx] = state
        self.fid[idx] = field
        self.stop[idx] = stop
        self.active[idx] = True
        self.enter_time[idx] = self.t
        self.n += k
        return idx

    def free_mask(self, px: np.ndarray, py: np.ndarray, clearance_m: float | None = None) -> np.ndarray:
        """Which candidate points are at least ``clearance_m`` (default 2 r) from every active agent."""
        c = 2 * self.p.radius_m if clearance_m is None else clearance_m
        ok = np.ones(px.shape[0], bool)
        act = np.flatnonzero(self.active[: self.n])
        if act.size == 0:
            return ok
        ax, ay = self.x[act], self.y[act]
        for k in range(px.shape[0]):
            near = (np.abs(ax - px[k]) < c) & (np.abs(ay - py[k]) < c)
            if near.any():
                ok[k] = np.min((ax[near] - px[k]) ** 2 + (ay[near] - py[k]) ** 2) >= c * c
        return ok

    def start_egress(self, idx: np.ndarray, field: int) -> None:
        """Switch agents to egress along ``field`` (they leave when they reach an exit apron)."""
        idx = idx[self.active[idx]]
        self.state[idx] = EGRESS
        self.fid[idx] = field

    def step(self, duration_s: float) -> None:
        """Advance by ``duration_s`` (a whole number of sub-steps dt)."""
        nsteps = int(round(duration_s / self.dt))
        if nsteps <= 0:
            return
        r = self.raster
        # threads pay off from about 1,000 agents on an idle machine and cost 2-9x on a busy one: the picker
        # measures which is faster here and now (the result is the same either way)
        self.threads.min_agents = self.parallel_min_agents
        prev = numba.get_num_threads()
        inside = self.inside
        try:
            for threads, k, probe in self.threads.pieces(inside, nsteps):
                numba.set_num_threads(threads)
                t0 = time.perf_counter()
                self.undone_moves += self._run(k, self.n, r)
                self.threads.record(threads, k * 0.5 * (inside + self.inside), time.perf_counter() - t0, probe)
                inside = self.inside
                self.t += k * self.dt
                self.steps_done += k
        finally:
            numba.set_num_threads(prev)

    def _run(self, nsteps: int, n: int, r: Raster) -> int:
        return run_steps(
            nsteps, self.t, self.x[:n], self.y[:n], self.v0[:n], self.state[:n], self.fid[:n], self.stop[:n],
            self.active[:n], self.fT, self.fgx, self.fgy, r.x0, r.y0, r.h, r.walkable, r.exit_id, r.x0, r.y0,
            self.cs, self.ncx, self.ncy, self.nr, self.nrc, self.wstart, self.widx, r.walls, self.par, self.exit_count,
            self.exit_time[:n], self.exit_of[:n], self.speed[:n], self.seed, self.steps_done, self.nbuf,
            self._ndir, self.vx[:n], self.vy[:n], self.ox[:n], self.oy[:n])

    # ---- views --------------------------------------------------------------------------------
    @property
    def inside(self) -> int:
        return int(self.active[: self.n].sum())

    @property
    def exited(self) -> int:
        return int(self.exit_count.sum())

    def positions(self) -> tuple[np.ndarray, np.ndarray]:
        a = self.active[: self.n]
        return self.x[: self.n][a], self.y[: self.n][a]
