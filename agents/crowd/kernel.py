"""Collision-free speed model (Tordeux, Chraibi & Seyfried 2016) on flat arrays, numba-compiled.

Each sub-step, for every walking agent i:
  direction  e_i = normalise(e0_i + sum_j a_p exp((l - d_ij)/D_p) n_ji + sum_walls a_w exp((r - d_iw)/D_w) n_wi
             + noise u_i)
  speed      v_i = min(v0_i, max(0, s_i / T, min(s'_i / T, v_creep)))
             with s_i the gap (centre distance - l) to the nearest agent ahead (e_i . (x_j - x_i) >= 0 and
             lateral offset < w, the body width) and s'_i the same gap counting only agents not behind i in
             its navigation field (who is nearer the exit goes first: no side-by-side deadlock at a door)
  move       x_i += dt v_i e_i
Counter-flow (neighbours j with another goal whose desired direction opposes i's; after Xu, Chraibi &
Seyfried 2021, "Anticipation in a velocity-based model for pedestrian dynamics"): an oncoming j ahead of i
repels only sideways (its radial term is projected on i's lateral axis), and adds a sideways step
a_side exp(-g_ij / d_side) (e0_i . n_ij) along -+ the lateral axis, g_ij the gap minus the closing speed
(from the last sub-step's velocities) x t_ant, to i's right unless j's position in t_ant s is more than
side_bias to i's right already; it holds i up only within w_onc of i's path. The noise fades out as i's last
speed rises to noise_v, so walkers in a lane keep their line while the held-up still get the jitter.
e0_i is the unit direction of the agent's navigation field (fast marching, bilinear); u_i a reproducible
random unit vector. Neighbours come from cell lists (counting sort into cells of cutoff / nr, each cell's agents
by id, so each row of neighbour cells is one contiguous range of slots): a first pass lists the candidates within the
cut-off without a branch on the distance, then one pass over that list, in the same order, sums the repulsion and
keeps the neighbours near enough to limit the speed for the headway. For a whole call the agents' state lives in slot
arrays in that cell order, re-sorted every sub-step and written back to the agent arrays at the end, so the
sub-steps read memory nearly in order whatever the agents' numbering. Two guards keep the state physical
whatever the parameters: a move that would bring a centre within ``r_core`` of a wall slides along the wall
or is dropped, and moves that would bring two centres closer than ``d_min`` are undone (iterated until none
is left), so "no agent inside a wall" and "no overlap below d_min" hold by construction. Every agent's
update reads only the state at the start of the sub-step, so results do not depend on the thread count.
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np
from numba import njit, prange

__all__ = ["MOVING", "STANDING", "EGRESS", "FREE", "build_cells", "bin_walls", "run_steps", "KernelParams"]

FREE, MOVING, STANDING, EGRESS = 0, 1, 2, 3


class KernelParams(NamedTuple):
    """The kernel's numbers by name (a numba named tuple of floats: attribute access compiles to a constant
    offset, so it costs what the old positional vector did). Lengths m, times s, speeds m/s."""

    l: float  # length an agent takes along its path (2 r)
    T: float  # time gap: speed = gap / T
    a_p: float  # neighbour repulsion strength
    D_p: float  # neighbour repulsion range
    a_w: float  # wall repulsion strength
    D_w: float  # wall repulsion range
    r: float  # radius (wall repulsion offset)
    r_core: float  # no centre nearer a wall than this
    dt: float  # sub-step
    lx: float  # period in x (0: not periodic)
    cutoff: float  # neighbour range
    d_min: float  # no two centres closer than this
    noise: float  # magnitude of the random direction term
    w: float  # body width: a same-way neighbour within this of one's path holds one up
    creep: float  # speed allowed to one held up only by people behind it in its field
    t_ant: float  # anticipation time: an oncoming walker is avoided as if closer by closing speed x t_ant
    a_side: float  # strength of the sideways step away from an oncoming walker (0: off)
    d_side: float  # its range (m of anticipated gap)
    side_bias: float  # pass oncoming walkers on the right unless they are this far to one's right already
    noise_v: float  # the noise fades out as one's last speed rises to this (0: noise at any speed)
    w_onc: float  # an oncoming walker holds one up when its centre is within this of one's path
    onc_lateral: float  # 1: an oncoming walker ahead repels only sideways; 0: radially like everyone else
    w_zip: float  # a same-way neighbour walking at least v_zip holds one up only within this of one's path
    v_zip: float  # (the zipper of a moving queue: staggered lanes closer than the body width); v_zip 0: off
    c_zip: float  # ... and whose desired direction is within acos(c_zip) of one's own (parallel lanes, not a
    # crowd converging on a door)
    t_react: float  # reaction time (s): the walking direction turns towards the computed one at rate 1/t_react
    # (Xu et al. 2021, eq. 7); 0: at once


NOISE_BITS = 12  # the random direction term takes one of 2^12 evenly spaced angles


def noise_dirs():
    """Unit vectors (2^NOISE_BITS, 2) at evenly spaced angles, indexed by :func:`_hash_dir`."""
    a = np.arange(1 << NOISE_BITS) * (2.0 * np.pi / (1 << NOISE_BITS))
    return np.ascontiguousarray(np.stack([np.cos(a), np.sin(a)], axis=1))


@njit(cache=True, inline="always")
def _hash_dir(seed, i, step):
    """A reproducible pseudo-random index into the NOISE_DIRS unit vectors per (seed, agent, step):
    splitmix64 of the three (a table lookup instead of cos and sin: 9% of a step)."""
    z = np.uint64(seed) * np.uint64(0x9E3779B97F4A7C15) + np.uint64(i) * np.uint64(0xBF58476D1CE4E5B9) \
        + np.uint64(step) * np.uint64(0x94D049BB133111EB)
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    z = z ^ (z >> np.uint64(31))
    return np.int64(z >> np.uint64(64 - NOISE_BITS))


@njit(cache=True, inline="always")
def cell_of(x, y, cx0, cy0, cs, ncx, ncy):
    """Index of the square cell (side ``cs`` m, grid ``ncx`` x ``ncy`` from ``cx0, cy0``) holding (x, y), clamped."""
    ix = min(max(int((x - cx0) / cs), 0), ncx - 1)
    iy = min(max(int((y - cy0) / cs), 0), ncy - 1)
    return iy * ncx + ix


@njit(cache=True)
def build_cells(x, y, active, cx0, cy0, cs, ncx, ncy):
    """Counting sort of active agents into square cells.

    Returns (start[ncell+1], order, cell_of_agent, xs, ys): ``order[k]`` is the agent in sorted slot k and
    ``xs[k], ys[k]`` its position, so the neighbour loops read memory in order (cells are contiguous)."""
    n = x.shape[0]
    ncell = ncx * ncy
    start = np.zeros(ncell + 1, np.int64)
    cell = np.full(n, -1, np.int64)
    for i in range(n):
        if active[i]:
            c = cell_of(x[i], y[i], cx0, cy0, cs, ncx, ncy)
            cell[i] = c
            start[c + 1] += 1
    for c in range(ncell):
        start[c + 1] += start[c]
    cur = start[:-1].copy()
    m = start[ncell]
    order = np.empty(m, np.int64)
    xs = np.empty(m)
    ys = np.empty(m)
    for i in range(n):
        c = cell[i]
        if c >= 0:
            k = cur[c]
            order[k] = i
            xs[k] = x[i]
            ys[k] = y[i]
            cur[c] = k + 1
    return start, order, cell, xs, ys


@njit(cache=True)
def seg_point(px, py, x1, y1, x2, y2):
    """Distance from (px, py) to a segment and the closest point on it."""
    dx, dy = x2 - x1, y2 - y1
    L2 = dx * dx + dy * dy
    t = 0.0
    if L2 > 0.0:
        t = ((px - x1) * dx + (py - y1) * dy) / L2
        t = min(max(t, 0.0), 1.0)
    qx, qy = x1 + t * dx, y1 + t * dy
    return np.sqrt((px - qx) ** 2 + (py - qy) ** 2), qx, qy


@njit(cache=True)
def bin_walls(segs, cx0, cy0, cs, ncx, ncy, margin):
    """For each cell, the wall segments within ``margin`` m of it (CSR: start[ncell+1], idx)."""
    ncell = ncx * ncy
    half = 0.5 * cs * np.sqrt(2.0)
    counts = np.zeros(ncell + 1, np.int64)
    tmp = []
    for c in range(ncell):
        px = cx0 + (c % ncx + 0.5) * cs
        py = cy0 + (c // ncx + 0.5) * cs
        for s in range(segs.shape[0]):
            d, _, _ = seg_point(px, py, segs[s, 0], segs[s, 1], segs[s, 2], segs[s, 3])
            if d < half + margin:
                tmp.append(s)
                counts[c + 1] += 1
    for c in range(ncell):
        counts[c + 1] += counts[c]
    idx = np.empty(len(tmp), np.int64)
    for k in range(len(tmp)):
        idx[k] = tmp[k]
    return counts, idx


@njit(cache=True, inline="always")
def _field_dir(fgx, fgy, f, x, y, rx0, ry0, h):
    ny, nx = fgx.shape[1], fgx.shape[2]
    fx = (x - rx0) / h - 0.5
    fy = (y - ry0) / h - 0.5
    i0 = int(np.floor(fx))
    j0 = int(np.floor(fy))
    tx = fx - i0
    ty = fy - j0
    ex = 0.0
    ey = 0.0
    for dj in range(2):
        jj = min(max(j0 + dj, 0), ny - 1)
        wy = ty if dj == 1 else 1.0 - ty
        for di in range(2):
            ii = min(max(i0 + di, 0), nx - 1)
            wx = tx if di == 1 else 1.0 - tx
            ex += wx * wy * fgx[f, jj, ii]
            ey += wx * wy * fgy[f, jj, ii]
    nrm = np.sqrt(ex * ex + ey * ey)
    if nrm < 1e-6:
        ii = min(max(int((x - rx0) / h), 0), nx - 1)
        jj = min(max(int((y - ry0) / h), 0), ny - 1)
        return fgx[f, jj, ii], fgy[f, jj, ii]
    return ex / nrm, ey / nrm


@njit(cache=True, inline="always")
def _row_span(start, cy, cxi, nr, ncx, periodic, seg):
    """Sorted-slot range [k0, k1) of cells cxi-nr..cxi+nr in row cy (cells of a row are contiguous in the
    counting sort). A periodic row wraps round into a second range (seg 1); unused ranges are empty."""
    row = cy * ncx
    lo = cxi - nr
    hi = cxi + nr
    if not periodic:
        if seg == 1:
            return 0, 0
        lo = max(lo, 0)
        hi = min(hi, ncx - 1)
        return start[row + lo], start[row + hi + 1]
    if lo < 0:
        if seg == 0:
            return start[row + lo + ncx], start[row + ncx]
        return start[row], start[row + hi + 1]
    if hi >= ncx:
        if seg == 0:
            return start[row + lo], start[row + ncx]
        return start[row], start[row + hi - ncx + 1]
    if seg == 1:
        return 0, 0
    return start[row + lo], start[row + hi + 1]


@njit(cache=True, inline="always")
def _gap_ahead(dx, dy, d, ex, ey, l, wl):
    """Gap (m) to a neighbour at offset (dx, dy), distance d, if it is ahead along (ex, ey) and within ``wl``
    sideways of the path; else 1e9 (it does not hold one up). Branch-free (a select, not a jump: whether a
    neighbour is ahead is a coin toss the branch predictor loses half the time)."""
    ahead = (dx * ex + dy * ey >= 0.0) & (abs(-ey * dx + ex * dy) <= wl)
    return d - l if ahead else 1e9


@njit(cache=True, inline="always")
def _headway(xs, ys, xi, yi, kk, ex, ey, cxi, cyi, ncx, ncy, nr, start, lx, l, wl, phi, fids, f, e0x, e0y,
             e0xs, e0ys, wlo, vxs, vys, wzip, vzip2, czip):
    """Gaps (m) to the nearest agent ahead along (ex, ey) within ``wl`` sideways, among all neighbours and
    among those not behind in the navigation field: a full scan of the neighbour cells (the fallback when an
    agent has more close neighbours than the kernel's buffer holds)."""
    sp = 1e9
    spp = 1e9
    for cy in range(max(cyi - nr, 0), min(cyi + nr + 1, ncy)):
        for seg in range(2):
            k0, k1 = _row_span(start, cy, cxi, nr, ncx, lx > 0.0, seg)
            for k in range(k0, k1):
                if k == kk:
                    continue
                dx = xs[k] - xi
                if lx > 0.0:
                    dx -= lx * np.floor(dx / lx + 0.5)
                dy = ys[k] - yi
                d = np.sqrt(dx * dx + dy * dy)
                onc = fids[k] != f and e0x * e0xs[k] + e0y * e0ys[k] < 0.0
                zip_ = vzip2 > 0.0 and vxs[k] * vxs[k] + vys[k] * vys[k] >= vzip2 and \
                    e0x * e0xs[k] + e0y * e0ys[k] >= czip
                gap = _gap_ahead(dx, dy, d, ex, ey, l, wlo if onc else (wzip if zip_ else wl))
                sp = min(sp, gap)
                if not (fids[k] == f and phi[k] > phi[kk]):
                    spp = min(spp, gap)
    return sp, spp


WTAB_PER_M = 1000.0  # samples per m of the neighbour repulsion table


@njit(cache=True)
def repulsion_table(l, a_p, D_p, cutoff):
    """a_p exp((l - d) / D_p) at d = k / WTAB_PER_M for d in [0, cutoff + 2 mm]: linear interpolation in it is
    within 1e-5 relative of the exponential (D_p >= 0.05 m) and costs a fraction of an exp per neighbour."""
    k = int(cutoff * WTAB_PER_M) + 3
    t = np.empty(k)
    for j in range(k):
        t[j] = a_p * np.exp((l - j / WTAB_PER_M) / D_p)
    return t


CHUNK = 64  # agents per parallel work item (each item allocates its own neighbour buffer once)


@njit(cache=True, parallel=True, fastmath=True)
def _propose(m, ordw, wx, wy, wv0, wst, wfid, wstop, wvx, wvy, wox, woy, wgid, cellw,
             xs, ys, v0s, sts, fids, stops, vxs, vys, oxs, oys, gids, cellk, start, ncx, ncy, nr,
             fT, fgx, fgy, rx0, ry0, h, walkable, wstart, widx, segs, par, xn, yn, moved, spd, seed, step_id,
             nbuf, phi, wtab, ndir, e0xs, e0ys, nbr, maxcell):
    """Proposed moves of the ``m`` agents in this sub-step's slot order: slot k is the previous sub-step's slot
    ``ordw[k]`` (arrays ``w*``), whose state is first copied into slot order (arrays ``*s``; the previous slot
    order is this one but for the few agents that changed cells, so the copy reads memory nearly in order).

    A first pass over the cells within ``nr`` cells lists the candidates within the cut-off (room for
    (2 nr + 1)² x ``maxcell``, the fullest cell's count); one pass over that list, in the same order, sums the
    repulsion and keeps the neighbours within l + v0 T in a small buffer; the headway gap is then taken over that
    buffer (a farther one never limits the speed, and an agent beyond the cut-off never does either:
    (cutoff - l) / T >= the largest desired speed). State changes (standing, walking direction) are
    written to the slot arrays, moves to ``xn, yn, moved``, speeds (m/s) to ``spd``."""
    l, T, a_w, D_w, r, r_core, dt, lx, cutoff = par.l, par.T, par.a_w, par.D_w, par.r, par.r_core, par.dt, \
        par.lx, par.cutoff
    noise = par.noise
    wl = par.w
    creep = par.creep
    t_ant = par.t_ant
    a_side = par.a_side
    d_side = par.d_side
    side_bias = par.side_bias
    noise_v = par.noise_v
    wzip = par.w_zip
    vzip2 = par.v_zip * par.v_zip
    czip = par.c_zip
    t_react = par.t_react
    wlo = par.w_onc  # oncoming walkers hold one up only when bodies would nearly touch (same-way ones: within
    # the body width, so two do not squeeze through a door side by side)
    ny, nx = walkable.shape
    cut2 = cutoff * cutoff
    cut2s = (cutoff + 1e-6) * (cutoff + 1e-6)
    for kk in prange(m):  # the agents' state in this sub-step's slot order, each one's place in its field (m to
        j = ordw[kk]  # go: who is ahead of whom) and desired direction, read in slot order by the neighbour loops
        xs[kk] = wx[j]
        ys[kk] = wy[j]
        f = wfid[j]
        fids[kk] = f
        v0s[kk] = wv0[j]
        sts[kk] = wst[j]
        stops[kk] = wstop[j]
        vxs[kk] = wvx[j]
        vys[kk] = wvy[j]
        oxs[kk] = wox[j]
        oys[kk] = woy[j]
        gids[kk] = wgid[j]
        cellk[kk] = cellw[j]
        ci = min(max(int((xs[kk] - rx0) / h), 0), nx - 1)
        cj = min(max(int((ys[kk] - ry0) / h), 0), ny - 1)
        phi[kk] = fT[f, cj, ci]
        e0xs[kk], e0ys[kk] = _field_dir(fgx, fgy, f, xs[kk], ys[kk], rx0, ry0, h)
        nbr[kk, 0] = xs[kk]  # what the neighbour loop reads of a neighbour, in one 64-byte row (one cache line,
        nbr[kk, 1] = ys[kk]  # one stream per row of cells for the prefetcher instead of eight)
        nbr[kk, 2] = e0xs[kk]
        nbr[kk, 3] = e0ys[kk]
        nbr[kk, 4] = phi[kk]
        nbr[kk, 5] = vxs[kk]
        nbr[kk, 6] = vys[kk]
        nbr[kk, 7] = f
    nchunk = (m + CHUNK - 1) // CHUNK
    for ch in prange(nchunk):
        bdx = np.empty(nbuf)
        bdy = np.empty(nbuf)
        bd = np.empty(nbuf)
        bbehind = np.empty(nbuf, np.bool_)
        bw = np.empty(nbuf)
        cidx = np.empty((2 * nr + 1) * (2 * nr + 1) * maxcell, np.uint64)  # candidates within the cut-off
        for kk in range(ch * CHUNK, min(m, (ch + 1) * CHUNK)):
            xi, yi = xs[kk], ys[kk]
            xn[kk] = xi
            yn[kk] = yi
            moved[kk] = False
            spd[kk] = 0.0
            if sts[kk] == STANDING:
                continue
            f = fids[kk]
            ci = min(max(int((xi - rx0) / h), 0), nx - 1)
            cj = min(max(int((yi - ry0) / h), 0), ny - 1)
            if sts[kk] == MOVING and fT[f, cj, ci] <= stops[kk]:
                sts[kk] = STANDING
                continue
            e0x, e0y = e0xs[kk], e0ys[kk]
            vix, viy = vxs[kk], vys[kk]
            # a neighbour farther than l + v0 T gives a gap of at least v0 T, which cannot lower the speed
            # v = min(v0, max(0, sp / T, min(spp / T, creep))) (spp >= sp): it is left out of the headway buffer
            # (1 um of slack for rounding; the result is the same bit for bit)
            hcut = l + v0s[kk] * T + 1e-6
            c = cellk[kk]
            cxi = c % ncx
            cyi = c // ncx
            rxs = 0.0
            rys = 0.0
            nb = 0
            overflow = False
            # (speed) first the candidates within the cut-off, picked without jumps (whether one is within is a coin
            # toss for the branch predictor), 1 um generous: the loop below tests each again exactly as before, so
            # the same ones are kept, in the same order (rows of cells in order, each row's slots in order)
            nc = 0
            kku = np.uint64(kk)
            for cy in range(max(cyi - nr, 0), min(cyi + nr + 1, ncy)):
                for seg in range(2):
                    k0, k1 = _row_span(start, cy, cxi, nr, ncx, lx > 0.0, seg)
                    for k in range(np.uint64(k0), np.uint64(k1)):  # (unsigned: no negative-index wrap code)
                        dx = xs[k] - xi
                        if lx > 0.0:
                            dx -= lx * np.floor(dx / lx + 0.5)
                        dy = ys[k] - yi
                        cidx[nc] = k
                        nc += np.int64((dx * dx + dy * dy <= cut2s) & (k != kku))
            for q in range(nc):
                k = cidx[q]
                dx = nbr[k, 0] - xi
                if lx > 0.0:
                    dx -= lx * np.floor(dx / lx + 0.5)
                dy = nbr[k, 1] - yi
                d2 = dx * dx + dy * dy
                if d2 > cut2:
                    continue
                d = np.sqrt(d2)
                # walking the other way to another goal (converging on one door is not counter-flow)
                onc = (nbr[k, 7] != f) & (e0x * nbr[k, 2] + e0y * nbr[k, 3] < 0.0)  # (speed: no jumps)
                near = d <= hcut
                if nb < nbuf:
                    # (speed: written whatever the distance, kept by advancing nb only if near: a jump on
                    # near would be a coin toss for the branch predictor)
                    bdx[nb] = dx
                    bdy[nb] = dy
                    bd[nb] = d
                    bbehind[nb] = (nbr[k, 7] == f) & (nbr[k, 4] > phi[kk])
                    # the width within which this neighbour, if ahead, holds one up: an oncoming walker
                    # only core to core, a same-way one walking on (a moving queue zips into staggered
                    # lanes) within w_zip, anyone else within the body width
                    # (speed: the tests combined without jumps, the values chosen by selects)
                    zip_ = (vzip2 > 0.0) & (nbr[k, 5] * nbr[k, 5] + nbr[k, 6] * nbr[k, 6] >= vzip2) & \
                        (e0x * nbr[k, 2] + e0y * nbr[k, 3] >= czip)
                    bw[nb] = wlo if onc else (wzip if zip_ else wl)
                    nb += np.int64(near)
                else:
                    overflow |= near
                if d2 < 1e-18:
                    continue
                if onc and a_side > 0.0 and dx * e0x + dy * e0y > 0.0:
                    # an oncoming walker ahead (Xu et al. 2021): step sideways, away from where it will
                    # be in t_ant s, passing on the right unless it will be clearly on one's right
                    # already; the nearer the anticipated contact (closing speed x t_ant), the stronger
                    ux = dx / d
                    uy = dy / d
                    close = ((vix - nbr[k, 5]) * ux + (viy - nbr[k, 6]) * uy) * t_ant
                    gap_a = max(d - l - max(close, 0.0), 0.0)
                    lat = -e0y * (dx + nbr[k, 5] * t_ant) + e0x * (dy + nbr[k, 6] * t_ant)  # + = on one's left
                    sgn = 1.0 if lat < -side_bias else -1.0
                    s_ = sgn * a_side * np.exp(-gap_a / d_side) * (dx * e0x + dy * e0y) / d
                    rxs += -e0y * s_
                    rys += e0x * s_
                    if par.onc_lateral > 0.0:
                        # an oncoming walker pushes one sideways, not back (Xu et al. 2021): keep
                        # only the lateral part of its repulsion
                        u = d * WTAB_PER_M
                        iu = int(u)
                        w = (wtab[iu] + (u - iu) * (wtab[iu + 1] - wtab[iu])) / d
                        pl = -e0y * dx + e0x * dy
                        rxs -= w * (-e0y) * pl
                        rys -= w * e0x * pl
                        continue
                u = d * WTAB_PER_M  # a_p exp((l - d) / D_p), interpolated from a 1 mm table
                iu = int(u)
                w = (wtab[iu] + (u - iu) * (wtab[iu + 1] - wtab[iu])) / d
                rxs -= w * dx
                rys -= w * dy
            wxs = 0.0
            wys = 0.0
            for k in range(wstart[c], wstart[c + 1]):
                s = widx[k]
                d, qx, qy = seg_point(xi, yi, segs[s, 0], segs[s, 1], segs[s, 2], segs[s, 3])
                if d < r + 10.0 * D_w and d > 1e-12:
                    w = a_w * np.exp((r - d) / D_w)
                    wxs += w * (xi - qx) / d
                    wys += w * (yi - qy) / d
            ex = e0x + rxs + wxs
            ey = e0y + rys + wys
            if noise > 0.0:  # small reproducible jitter: breaks the symmetric arches that clog a door for good
                q = _hash_dir(seed, gids[kk], step_id)
                nz = noise
                if noise_v > 0.0:  # ... where people are held up; walkers in a lane keep their line
                    nz *= max(0.0, 1.0 - np.sqrt(vix * vix + viy * viy) / noise_v)
                ex += nz * ndir[q, 0]
                ey += nz * ndir[q, 1]
            nrm = np.sqrt(ex * ex + ey * ey)
            if nrm < 1e-9:
                continue
            ex /= nrm
            ey /= nrm
            if t_react > 0.0:
                # turn towards the computed direction with a reaction time (at once when the computed and the
                # present direction lie on opposite sides of the desired one's normal, as in JuPedSim)
                oxi, oyi = oxs[kk], oys[kk]
                if oxi * oxi + oyi * oyi > 0.0 and (e0x * ex + e0y * ey) * (e0x * oxi + e0y * oyi) >= 0.0:
                    ex = oxi + (ex - oxi) * min(dt / t_react, 1.0)
                    ey = oyi + (ey - oyi) * min(dt / t_react, 1.0)
                    nrm = np.sqrt(ex * ex + ey * ey)
                    if nrm < 1e-9:
                        continue
                    ex /= nrm
                    ey /= nrm
                oxs[kk] = ex
                oys[kk] = ey
            # headway gap to the nearest agent ahead along e (within one length sideways)
            if overflow:
                sp, spp = _headway(xs, ys, xi, yi, kk, ex, ey, cxi, cyi, ncx, ncy, nr, start, lx, l, wl, phi, fids,
                                   f, e0x, e0y, e0xs, e0ys, wlo, vxs, vys, wzip, vzip2, czip)
            else:
                sp = 1e9
                spp = 1e9
                for q in range(nb):  # (speed) branch-free: min is exact, so the order and result are unchanged
                    gap = _gap_ahead(bdx[q], bdy[q], bd[q], ex, ey, l, bw[q])
                    sp = min(sp, gap)
                    spp = min(spp, 1e9 if bbehind[q] else gap)
            # speed from the gap; an agent held up only by people behind it in the field (a side-by-side
            # deadlock at a door) may still creep on: the one nearer the exit goes first
            v = min(v0s[kk], max(0.0, sp / T, min(spp / T, creep)))
            if v <= 0.0:
                continue
            mx = v * ex * dt
            my = v * ey * dt
            # wall guard: slide along a wall that would be too close, else stay
            ok = True
            for attempt in range(2):
                px, py = xi + mx, yi + my
                ok = True
                for k in range(wstart[c], wstart[c + 1]):
                    s = widx[k]
                    d, qx, qy = seg_point(px, py, segs[s, 0], segs[s, 1], segs[s, 2], segs[s, 3])
                    if d < r_core:
                        ok = False
                        if attempt == 0:
                            d0, q0x, q0y = seg_point(xi, yi, segs[s, 0], segs[s, 1], segs[s, 2], segs[s, 3])
                            if d0 > 1e-12:
                                nx_ = (xi - q0x) / d0
                                ny_ = (yi - q0y) / d0
                                dot = mx * nx_ + my * ny_
                                if dot < 0.0:
                                    mx -= dot * nx_
                                    my -= dot * ny_
                        break
                if ok:
                    break
            if not ok:
                continue
            px, py = xi + mx, yi + my
            if lx > 0.0:
                px -= lx * np.floor(px / lx)
            gi = min(max(int((px - rx0) / h), 0), nx - 1)
            gj = min(max(int((py - ry0) / h), 0), ny - 1)
            if not walkable[gj, gi]:
                continue
            xn[kk] = px
            yn[kk] = py
            moved[kk] = True
            spd[kk] = np.sqrt(mx * mx + my * my) / dt


@njit(cache=True, parallel=True)
def _conflicts(m, xn, yn, moved, start, cellk, ncx, ncy, nr, lx, dmin, flag):
    """Flag every moved slot (of ``m``) whose proposed centre is within ``dmin`` of another slot's (sorted-slot
    order; ``cellk[k]`` is slot k's cell)."""
    d2min = dmin * dmin
    for kk in prange(m):
        flag[kk] = False
        if not moved[kk]:
            continue
        c = cellk[kk]
        cxi = c % ncx
        cyi = c // ncx
        xi = xn[kk]
        yi = yn[kk]
        hit = False
        kku = np.uint64(kk)
        for cy in range(max(cyi - nr, 0), min(cyi + nr + 1, ncy)):
            for seg in range(2):  # (speed: every candidate tested, without jumps; a hit is rare)
                k0, k1 = _row_span(start, cy, cxi, nr, ncx, lx > 0.0, seg)
                for k in range(np.uint64(k0), np.uint64(k1)):
                    dx = xn[k] - xi
                    if lx > 0.0:
                        dx -= lx * np.floor(dx / lx + 0.5)
                    dy = yn[k] - yi
                    hit |= (dx * dx + dy * dy < d2min) & (k != kku)
        flag[kk] = hit


def neighbour_buffer(cutoff: float, dmin: float) -> int:
    """Slots for the neighbours within ``cutoff`` m of an agent: discs of radius dmin/2 packed into a disc of
    radius cutoff + dmin/2 (at most (2 cutoff/dmin + 1)^2 of them), plus headroom; the kernel falls back
    to a full scan for an agent that has more (possible only before the hard core is established)."""
    return int(min(4096, (2.0 * cutoff / max(dmin, 1e-3) + 1.0) ** 2 + 8))


@njit(cache=True)
def _sort_slots(m, wx, wy, walive, wgid, cx0, cy0, cs, ncx, ncy, start, cellw, ordw):
    """Counting sort of the previous sub-step's ``m`` slots (``walive`` ones only) into square cells, each cell's
    slots by agent id (``wgid``): the order :func:`build_cells` gives from the agent arrays, so the neighbour sums
    run in the same order bit for bit. Fills start[ncell+1], cellw[m] (-1: gone) and ordw (slot k of this
    sub-step is old slot ``ordw[k]``); returns the number of slots. The old slots are nearly in cell order
    already, so this reads and writes memory nearly in order (agent-indexed arrays at 100k agents did not)."""
    ncell = ncx * ncy
    start[:] = 0
    for k in range(m):
        if walive[k]:
            c = cell_of(wx[k], wy[k], cx0, cy0, cs, ncx, ncy)
            cellw[k] = c
            start[c + 1] += 1
        else:
            cellw[k] = -1
    maxcell = 0
    for c in range(ncell):
        maxcell = max(maxcell, start[c + 1])
        start[c + 1] += start[c]
    cur = start[:-1].copy()
    for k in range(m):
        c = cellw[k]
        if c >= 0:
            j = cur[c]
            ordw[j] = k
            cur[c] = j + 1
    for c in range(ncell):  # agents that changed cells may come out of id order in their new cell: insertion sort
        a = start[c]
        for j in range(a + 1, start[c + 1]):
            kj = ordw[j]
            g = wgid[kj]
            q = j - 1
            while q >= a and wgid[ordw[q]] > g:
                ordw[q + 1] = ordw[q]
                q -= 1
            ordw[q + 1] = kj
    return start[ncell], maxcell


@njit(cache=True)
def _undo(m, flag, xn, yn, xs, ys, moved, spd):
    """Undo the flagged moves (slot order); returns how many. (Serial, like the commit: a few ns per agent, and
    every parallel region is a barrier where a thread the OS has parked on a busy machine holds up the step.)"""
    cnt = 0
    for kk in range(m):
        if flag[kk]:
            xn[kk] = xs[kk]
            yn[kk] = ys[kk]
            moved[kk] = False
            spd[kk] = 0.0
            cnt += 1
    return cnt


@njit(cache=True)
def _commit(m, xn, yn, moved, xs, ys, vxs, vys, alive, sts, exk, rx0, ry0, h, exit_id, dt, lx):
    """Apply this sub-step's moves to the slot arrays (velocity over the sub-step, m/s); an egress agent whose new
    cell is an exit apron is marked gone (``alive`` False, ``exk`` its exit, else -1). Returns how many left."""
    ny, nx = exit_id.shape
    nout = 0
    for kk in range(m):
        alive[kk] = True
        exk[kk] = -1
        vxs[kk] = 0.0
        vys[kk] = 0.0
        if moved[kk]:
            mx = xn[kk] - xs[kk]
            if lx > 0.0:
                mx -= lx * np.floor(mx / lx + 0.5)
            vxs[kk] = mx / dt
            vys[kk] = (yn[kk] - ys[kk]) / dt
            xs[kk] = xn[kk]
            ys[kk] = yn[kk]
            if sts[kk] == EGRESS:
                gi = min(max(int((xs[kk] - rx0) / h), 0), nx - 1)
                gj = min(max(int((ys[kk] - ry0) / h), 0), ny - 1)
                k = exit_id[gj, gi]
                if k >= 0:
                    alive[kk] = False
                    sts[kk] = FREE
                    exk[kk] = k
                    nout += 1
    return nout


@njit(cache=True)
def run_steps(nsteps, t0, x, y, v0, state, fid, stop, active, fT, fgx, fgy, rx0, ry0, h, walkable, exit_id,
              cx0, cy0, cs, ncx, ncy, nr, nrc, wstart, widx, segs, par, exit_count, exit_time, exit_of, speed, seed, step0,
              nbuf, ndir, vx, vy, ox, oy):
    """Advance ``nsteps`` sub-steps of ``par.dt`` s from time ``t0``; egress agents reaching an exit apron
    become inactive (``exit_count[k] += 1``, ``exit_time[i]``, ``exit_of[i]``). Returns undone moves.

    The active agents' state is copied once per call into slot arrays kept in cell order (sorted by cell, then
    agent id, every sub-step: the order the neighbour loops read them in) and written back to the agent arrays
    at the end, so the sub-steps read and write memory nearly in order whatever the agents' numbering (at 100k
    agents placed at random, agent-indexed reads missed the cache). Results are the same bit for bit."""
    n = x.shape[0]
    dt = par.dt
    lx = par.lx
    dmin = par.d_min
    ncell = ncx * ncy
    m = 0
    for i in range(n):
        if active[i]:
            m += 1
    # two sets of slot arrays, this sub-step's (s) and the previous one's (w), swapped every sub-step
    wx, xs = np.empty(m), np.empty(m)
    wy, ys = np.empty(m), np.empty(m)
    wv0, v0s = np.empty(m), np.empty(m)
    wst, sts = np.empty(m, state.dtype), np.empty(m, state.dtype)
    wfid, fids = np.empty(m, fid.dtype), np.empty(m, fid.dtype)
    wstop, stops = np.empty(m), np.empty(m)
    wvx, vxs = np.empty(m), np.empty(m)
    wvy, vys = np.empty(m), np.empty(m)
    wox, oxs = np.empty(m), np.empty(m)
    woy, oys = np.empty(m), np.empty(m)
    wgid, gids = np.empty(m, np.int64), np.empty(m, np.int64)
    walive, alive = np.empty(m, np.bool_), np.empty(m, np.bool_)
    k = 0
    for i in range(n):  # the agents in id order: the first sub-step's sort puts each cell's agents in id order
        if active[i]:
            wx[k] = x[i]
            wy[k] = y[i]
            wv0[k] = v0[i]
            wst[k] = state[i]
            wfid[k] = fid[i]
            wstop[k] = stop[i]
            wvx[k] = vx[i]
            wvy[k] = vy[i]
            wox[k] = ox[i]
            woy[k] = oy[i]
            wgid[k] = i
            walive[k] = True
            k += 1
    mw = m
    start = np.empty(ncell + 1, np.int64)
    cellw = np.empty(m, np.int64)
    cellk = np.empty(m, np.int64)
    ordw = np.empty(m, np.int64)
    xn = np.empty(m)
    yn = np.empty(m)
    moved = np.zeros(m, np.bool_)
    flag = np.zeros(m, np.bool_)
    phi = np.empty(m)
    e0xs = np.empty(m)
    e0ys = np.empty(m)
    spd = np.zeros(m)
    exk = np.empty(m, np.int64)
    nbr = np.empty((m, 8))
    wtab = repulsion_table(par.l, par.a_p, par.D_p, par.cutoff)
    undone = 0
    for step in range(nsteps):
        m, maxcell = _sort_slots(mw, wx, wy, walive, wgid, cx0, cy0, cs, ncx, ncy, start, cellw, ordw)
        _propose(m, ordw, wx, wy, wv0, wst, wfid, wstop, wvx, wvy, wox, woy, wgid, cellw,
                 xs, ys, v0s, sts, fids, stops, vxs, vys, oxs, oys, gids, cellk, start, ncx, ncy, nr,
                 fT, fgx, fgy, rx0, ry0, h, walkable, wstart, widx, segs, par, xn, yn, moved, spd, seed, step0 + step,
                 nbuf, phi, wtab, ndir, e0xs, e0ys, nbr, maxcell)
        while True:  # each pass undoes at least one move or ends: terminates
            _conflicts(m, xn, yn, moved, start, cellk, ncx, ncy, nrc, lx, dmin, flag)
            cnt = _undo(m, flag, xn, yn, xs, ys, moved, spd)
            undone += cnt
            if cnt == 0:
                break
        t = t0 + (step + 1) * dt
        if _commit(m, xn, yn, moved, xs, ys, vxs, vys, alive, sts, exk, rx0, ry0, h, exit_id, dt, lx) > 0:
            for kk in range(m):  # who left: written back now (their slots are dropped by the next sort)
                k = exk[kk]
                if k >= 0:
                    i = gids[kk]
                    active[i] = False
                    exit_count[k] += 1
                    exit_time[i] = t
                    exit_of[i] = k
                    x[i] = xs[kk]
                    y[i] = ys[kk]
                    vx[i] = vxs[kk]
                    vy[i] = vys[kk]
                    ox[i] = oxs[kk]
                    oy[i] = oys[kk]
                    state[i] = sts[kk]
                    speed[i] = spd[kk]
        mw = m  # this sub-step's slots are the next one's previous slots
        wx, xs = xs, wx
        wy, ys = ys, wy
        wv0, v0s = v0s, wv0
        wst, sts = sts, wst
        wfid, fids = fids, wfid
        wstop, stops = stops, wstop
        wvx, vxs = vxs, wvx
        wvy, vys = vys, wvy
        wox, oxs = oxs, wox
        woy, oys = oys, woy
        wgid, gids = gids, wgid
        walive, alive = alive, walive
    for kk in range(mw if nsteps > 0 else 0):  # the agents still inside: their state back to the agent arrays
        if walive[kk]:
            i = wgid[kk]
            x[i] = wx[kk]
            y[i] = wy[kk]
            vx[i] = wvx[kk]
            vy[i] = wvy[kk]
            ox[i] = wox[kk]
            oy[i] = woy[kk]
            state[i] = wst[kk]
            speed[i] = spd[kk]
    return undone
