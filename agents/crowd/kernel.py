"""Collision-free speed model (Tordeux, Chraibi & Seyfried 2016) on flat arrays, numba-compiled.

Each sub-step, for every walking agent i:
  direction  e_i = normalise(e0_i + sum_j a_p exp((l - d_ij)/D_p) n_ji + sum_walls a_w exp((r - d_iw)/D_w) n_wi)
  speed      v_i = min(v0_i, max(0, s_i / T))  with s_i the gap (centre distance - l) to the nearest
             agent ahead (e_i . (x_j - x_i) >= 0 and lateral offset < l)
  move       x_i += dt v_i e_i
e0_i is the unit direction of the agent's navigation field (fast marching, bilinear). Neighbours come
from cell lists (counting sort). Two guards keep the state physical whatever the parameters: a move
that would bring a centre within ``r_core`` of a wall slides along the wall or is dropped, and moves
that would bring two centres closer than ``d_min`` are undone (iterated until none is left), so
"no agent inside a wall" and "no overlap below d_min" hold by construction.
"""
from __future__ import annotations

import numpy as np
from numba import njit, prange

__all__ = ["MOVING", "STANDING", "EGRESS", "FREE", "build_cells", "bin_walls", "run_steps", "PARAMS"]

FREE, MOVING, STANDING, EGRESS = 0, 1, 2, 3
# indices into the float parameter vector passed to the kernel
PARAMS = ("l", "T", "a_p", "D_p", "a_w", "D_w", "r", "r_core", "dt", "lx", "cutoff", "d_min", "noise")


@njit(cache=True, inline="always")
def _hash_angle(seed, i, step):
    """A reproducible pseudo-random angle (rad) per (seed, agent, step): splitmix64 of the three."""
    z = np.uint64(seed) * np.uint64(0x9E3779B97F4A7C15) + np.uint64(i) * np.uint64(0xBF58476D1CE4E5B9) \
        + np.uint64(step) * np.uint64(0x94D049BB133111EB)
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    z = z ^ (z >> np.uint64(31))
    return (z >> np.uint64(11)) * (2.0 * np.pi / 9007199254740992.0)


@njit(cache=True)
def build_cells(x, y, active, cx0, cy0, cs, ncx, ncy):
    """Counting sort of active agents into square cells: (start[ncell+1], order, cell_of_agent)."""
    n = x.shape[0]
    ncell = ncx * ncy
    start = np.zeros(ncell + 1, np.int64)
    cell = np.full(n, -1, np.int64)
    for i in range(n):
        if active[i]:
            ix = int((x[i] - cx0) / cs)
            iy = int((y[i] - cy0) / cs)
            ix = min(max(ix, 0), ncx - 1)
            iy = min(max(iy, 0), ncy - 1)
            c = iy * ncx + ix
            cell[i] = c
            start[c + 1] += 1
    for c in range(ncell):
        start[c + 1] += start[c]
    cur = start[:-1].copy()
    order = np.empty(start[ncell], np.int64)
    for i in range(n):
        c = cell[i]
        if c >= 0:
            order[cur[c]] = i
            cur[c] += 1
    return start, order, cell


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


@njit(cache=True, parallel=True, fastmath=True)
def _propose(x, y, v0, state, fid, stop, active, start, order, cell, ncx, ncy,
             fT, fgx, fgy, rx0, ry0, h, walkable, wstart, widx, segs, par, xn, yn, moved, speed, seed, step_id):
    l, T, a_p, D_p, a_w, D_w, r, r_core, dt, lx, cutoff = (par[0], par[1], par[2], par[3], par[4],
                                                           par[5], par[6], par[7], par[8], par[9], par[10])
    noise = par[12]
    ny, nx = walkable.shape
    cut2 = cutoff * cutoff
    n = x.shape[0]
    for i in prange(n):
        xn[i] = x[i]
        yn[i] = y[i]
        moved[i] = False
        speed[i] = 0.0
    # agents in cell order: neighbours sit next to each other in memory (each agent's update is independent)
    for kk in prange(order.shape[0]):
        i = order[kk]
        if not active[i] or state[i] == STANDING:
            continue
        xi, yi = x[i], y[i]
        f = fid[i]
        ci = min(max(int((xi - rx0) / h), 0), nx - 1)
        cj = min(max(int((yi - ry0) / h), 0), ny - 1)
        if state[i] == MOVING and fT[f, cj, ci] <= stop[i]:
            state[i] = STANDING
            continue
        e0x, e0y = _field_dir(fgx, fgy, f, xi, yi, rx0, ry0, h)
        c = cell[i]
        cxi = c % ncx
        cyi = c // ncx
        rxs = 0.0
        rys = 0.0
        for dcy in range(-1, 2):
            cy = cyi + dcy
            if cy < 0 or cy >= ncy:
                continue
            for dcx in range(-1, 2):
                cx = cxi + dcx
                if lx > 0.0:
                    cx = (cx + ncx) % ncx
                elif cx < 0 or cx >= ncx:
                    continue
                cc = cy * ncx + cx
                for k in range(start[cc], start[cc + 1]):
                    j = order[k]
                    if j == i:
                        continue
                    dx = x[j] - xi
                    if lx > 0.0:
                        dx -= lx * np.floor(dx / lx + 0.5)
                    dy = y[j] - yi
                    d2 = dx * dx + dy * dy
                    if d2 > cut2 or d2 < 1e-18:
                        continue
                    d = np.sqrt(d2)
                    w = a_p * np.exp((l - d) / D_p)
                    rxs -= w * dx / d
                    rys -= w * dy / d
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
            ang = _hash_angle(seed, i, step_id)
            ex += noise * np.cos(ang)
            ey += noise * np.sin(ang)
        nrm = np.sqrt(ex * ex + ey * ey)
        if nrm < 1e-9:
            continue
        ex /= nrm
        ey /= nrm
        # headway gap to the nearest agent ahead along e
        sp = 1e9
        for dcy in range(-1, 2):
            cy = cyi + dcy
            if cy < 0 or cy >= ncy:
                continue
            for dcx in range(-1, 2):
                cx = cxi + dcx
                if lx > 0.0:
                    cx = (cx + ncx) % ncx
                elif cx < 0 or cx >= ncx:
                    continue
                cc = cy * ncx + cx
                for k in range(start[cc], start[cc + 1]):
                    j = order[k]
                    if j == i:
                        continue
                    dx = x[j] - xi
                    if lx > 0.0:
                        dx -= lx * np.floor(dx / lx + 0.5)
                    dy = y[j] - yi
                    along = dx * ex + dy * ey
                    if along < 0.0:
                        continue
                    lat = abs(-ey * dx + ex * dy)
                    if lat > l:
                        continue
                    gap = np.sqrt(dx * dx + dy * dy) - l
                    if gap < sp:
                        sp = gap
        v = min(v0[i], max(0.0, sp / T))
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
        xn[i] = px
        yn[i] = py
        moved[i] = True
        speed[i] = np.sqrt(mx * mx + my * my) / dt


@njit(cache=True, parallel=True)
def _conflicts(xn, yn, moved, start, order, cell, ncx, ncy, lx, dmin, flag):
    n = xn.shape[0]
    d2min = dmin * dmin
    for i in prange(n):
        flag[i] = False
    for kk in prange(order.shape[0]):
        i = order[kk]
        if not moved[i]:
            continue
        c = cell[i]
        cxi = c % ncx
        cyi = c // ncx
        hit = False
        for dcy in range(-1, 2):
            cy = cyi + dcy
            if cy < 0 or cy >= ncy or hit:
                continue
            for dcx in range(-1, 2):
                cx = cxi + dcx
                if lx > 0.0:
                    cx = (cx + ncx) % ncx
                elif cx < 0 or cx >= ncx:
                    continue
                cc = cy * ncx + cx
                for k in range(start[cc], start[cc + 1]):
                    j = order[k]
                    if j == i:
                        continue
                    dx = xn[j] - xn[i]
                    if lx > 0.0:
                        dx -= lx * np.floor(dx / lx + 0.5)
                    dy = yn[j] - yn[i]
                    if dx * dx + dy * dy < d2min:
                        hit = True
                        break
                if hit:
                    break
        flag[i] = hit


@njit(cache=True)
def run_steps(nsteps, t0, x, y, v0, state, fid, stop, active, fT, fgx, fgy, rx0, ry0, h, walkable, exit_id,
              cx0, cy0, cs, ncx, ncy, wstart, widx, segs, par, exit_count, exit_time, exit_of, speed, seed, step0):
    """Advance ``nsteps`` sub-steps of ``par[dt]`` s from time ``t0``; egress agents reaching an exit apron
    become inactive (``exit_count[k] += 1``, ``exit_time[i]``, ``exit_of[i]``). Returns undone moves."""
    n = x.shape[0]
    dt = par[8]
    lx = par[9]
    dmin = par[11]
    ny, nx = walkable.shape
    xn = np.empty(n)
    yn = np.empty(n)
    moved = np.zeros(n, np.bool_)
    flag = np.zeros(n, np.bool_)
    undone = 0
    for step in range(nsteps):
        start, order, cell = build_cells(x, y, active, cx0, cy0, cs, ncx, ncy)
        _propose(x, y, v0, state, fid, stop, active, start, order, cell, ncx, ncy, fT, fgx, fgy, rx0, ry0,
                 h, walkable, wstart, widx, segs, par, xn, yn, moved, speed, seed, step0 + step)
        while True:  # each pass undoes at least one move or ends: terminates
            _conflicts(xn, yn, moved, start, order, cell, ncx, ncy, lx, dmin, flag)
            cnt = 0
            for i in range(n):
                if flag[i]:
                    xn[i] = x[i]
                    yn[i] = y[i]
                    moved[i] = False
                    speed[i] = 0.0
                    cnt += 1
            undone += cnt
            if cnt == 0:
                break
        t = t0 + (step + 1) * dt
        for i in range(n):
            if moved[i]:
                x[i] = xn[i]
                y[i] = yn[i]
                if state[i] == EGRESS:
                    gi = min(max(int((x[i] - rx0) / h), 0), nx - 1)
                    gj = min(max(int((y[i] - ry0) / h), 0), ny - 1)
                    k = exit_id[gj, gi]
                    if k >= 0:
                        active[i] = False
                        state[i] = FREE
                        exit_count[k] += 1
                        exit_time[i] = t
                        exit_of[i] = k
    return undone
