"""The assignment behind ODME: which counts each trip passes, and the one place the engine is run.

``simulate`` runs the built-in traffic model (the public engine, traffic only) on a trip list and returns
its results. ``count_incidence`` routes trips on link travel times from such a run (shortest paths on the
congested times of the trip's departure slice, as the model's drivers choose them) and walks each route in a
numba kernel, recording which count (link or turn, time interval) it passes at its exit time from the link.
"""
from __future__ import annotations

import tempfile
from pathlib import Path

import warnings

import numpy as np
import xarray as xr
from numba import njit

from networks.routing import next_hop_tables

__all__ = ["count_incidence", "link_times_by_slice", "pinned_ends", "simulate", "simulated_counts", "write_trips_csv"]


def write_trips_csv(path: str | Path, city, trips: dict[str, np.ndarray]) -> Path:
    """Write trips as the CSV ``demand.trips_file`` reads: depart_s, origin, destination (node ids)."""
    path = Path(path)
    ids = city.node_ids
    order = np.argsort(trips["depart_s"], kind="stable")
    lines = ["depart_s,origin,destination"]
    lines += [f"{trips['depart_s'][i]:.2f},{ids[trips['origin'][i]]},{ids[trips['destination'][i]]}" for i in order]
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text("\n".join(lines) + "\n", encoding="utf-8")
    tmp.replace(path)
    return path


def simulate(scenario, city, trips: dict[str, np.ndarray]) -> xr.Dataset:
    """Run the scenario's traffic (built-in model, no other domains) on exactly ``trips``; return results.

    The single engine call of calibration, through the run service (``twin.run.run_one``) on the city already
    built for the variant (the trips file lives in a temp folder).
    """
    from twin.run import run_one

    traffic = scenario.domain_configs["traffic"]
    if traffic.backend != "meso":
        traffic = traffic.model_copy(update={"backend": "meso"})
    with tempfile.TemporaryDirectory(prefix="citytwin_calib_") as tmp:
        write_trips_csv(Path(tmp) / "trips.csv", city, trips)
        demand = scenario.demand.model_copy(update={"trips_file": "trips.csv", "od_file": None, "scale": 1.0})
        sc = scenario.model_copy(update={"demand": demand})
        sc._domains = {"traffic": traffic}
        return run_one(sc, tmp, city=city)


def simulated_counts(ds: xr.Dataset, links: np.ndarray, start_s: np.ndarray, end_s: np.ndarray) -> np.ndarray:
    """Vehicles leaving ``links`` in [start_s, end_s) (scenario seconds), from a run's ``link_flow`` (veh/h).

    Record intervals partly inside a count interval count by the overlapping share.
    """
    t_end = ds["time"].values.astype(float)
    t_beg = np.concatenate([[0.0], t_end[:-1]])
    flow = ds["link_flow"].values[:, links].astype(float)  # (time, count)
    veh = flow * (t_end - t_beg)[:, None] / 3600.0
    ov = np.clip(np.minimum(t_end[:, None], end_s[None, :]) - np.maximum(t_beg[:, None], start_s[None, :]), 0, None)
    share = ov / (t_end - t_beg)[:, None]
    return (veh * share).sum(0)


def link_times_by_slice(ds: xr.Dataset, bounds: np.ndarray) -> np.ndarray:
    """Mean congested link travel time (s) in each slice [bounds[k], bounds[k+1]) of a run: (K, L)."""
    length = ds["link_length"].values.astype(float)
    fft = length / ds["link_freeflow_speed"].values.astype(float)
    t = ds["time"].values.astype(float)
    sp = ds["link_speed"].values.astype(float)
    with np.errstate(divide="ignore", invalid="ignore"):
        tt = np.where(sp > 0.01, length[None, :] / sp, np.nan)
    if "link_junction_delay" in ds:
        # routing sees no turn time (agents/traffic/meso.py): take the fixed part of each link's junction delay, its
        # least recorded value, off the observed time so trips are assigned on the costs the simulator routes on
        jd = ds["link_junction_delay"].values.astype(float)
        with np.errstate(invalid="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            fixed = np.nanmin(jd, axis=0)
        tt = tt - np.where(np.isfinite(fixed), np.maximum(fixed, 0.0), 0.0)[None, :]
    tt = np.fmax(tt, fft[None, :])  # nan (no vehicle) -> free flow
    out = np.empty((len(bounds) - 1, len(length)))
    for k in range(len(bounds) - 1):
        sel = (t > bounds[k]) & (t <= bounds[k + 1] + 1e-9)
        out[k] = np.nanmean(tt[sel], axis=0) if sel.any() else fft
    return np.where(np.isfinite(out), out, fft[None, :])


@njit(cache=True)
def _pass(ln, prev, t, c, obs_ptr, obs_ids, obs_prev, obs_s, obs_e, out_obs, out_cell, n, n_out):
    """Record the counts on link ``ln`` (entered from ``prev``) passed at exit time ``t`` by a trip of cell ``c``."""
    for j in range(obs_ptr[ln], obs_ptr[ln + 1]):
        a = obs_ids[j]
        if (obs_prev[a] < 0 or obs_prev[a] == prev) and obs_s[a] <= t and t < obs_e[a]:
            if n < n_out:
                out_obs[n] = a
                out_cell[n] = c
            n += 1
    return n


@njit(cache=True)
def _walk(orig, dest, depart, cell, slot, nh_rows, cost, link_to, first, last, obs_ptr, obs_ids, obs_prev, obs_s,
          obs_e, max_links, out_obs, out_cell, n_out):
    """Walk every trip's route; append (count, cell) for each count it passes. Return hits written.

    A pinned trip (``first[i]``, ``last[i]`` >= 0) drives its first link, the next-hop route from that link's end
    to node ``dest[i]`` (the tail of its last link), then its last link, as the built-in model's pinned trips do;
    an unpinned one the next-hop route from ``orig[i]`` to ``dest[i]``."""
    n = 0
    for i in range(len(orig)):
        v, d, t, prev = orig[i], dest[i], depart[i], -1
        row = slot[i]
        f, e = first[i], last[i]
        if f >= 0:
            t += cost[f]
            n = _pass(f, prev, t, cell[i], obs_ptr, obs_ids, obs_prev, obs_s, obs_e, out_obs, out_cell, n, n_out)
            prev = f
            if f == e:
                continue
            v = link_to[f]
        reached = False
        for _ in range(max_links):
            if v == d:
                reached = True
                break
            ln = nh_rows[row, v]
            if ln < 0:
                break
            t += cost[ln]
            n = _pass(ln, prev, t, cell[i], obs_ptr, obs_ids, obs_prev, obs_s, obs_e, out_obs, out_cell, n, n_out)
            prev = ln
            v = link_to[ln]
        if reached and e >= 0:
            t += cost[e]
            n = _pass(e, prev, t, cell[i], obs_ptr, obs_ids, obs_prev, obs_s, obs_e, out_obs, out_cell, n, n_out)
    return n


def pinned_ends(city, origins: np.ndarray, destinations: np.ndarray, speed_scale: float = 1.0
                ) -> tuple[np.ndarray, np.ndarray]:
    """(first link, last link) of each trip as the built-in model pins them (``pin_end_links``): the ends of its
    free-flow shortest path on length / (speed limit x speed_scale); -1 where unroutable or origin == destination."""
    from agents.traffic.sumo_setup import freeflow_od_links

    a = city.arrays
    fft = a.length_m.astype(np.float64) / np.maximum(a.speed_mps * speed_scale, 0.1)
    f, e, _, _ = freeflow_od_links(city, fft, np.asarray(origins, np.int32), np.asarray(destinations, np.int32))
    return f.astype(np.int64), e.astype(np.int64)


def count_incidence(city, trips: dict[str, np.ndarray], trip_cell: np.ndarray, times_by_slice: np.ndarray,
                    bounds: np.ndarray, obs_link: np.ndarray, obs_prev: np.ndarray, obs_start_s: np.ndarray,
                    obs_end_s: np.ndarray, pin_end_links: bool = True, speed_scale: float = 1.0,
                    ) -> tuple[np.ndarray, np.ndarray]:
    """(count index, cell index) of every pass of a trip over a count location inside its interval.

    Trips depart in slice k = the one holding ``depart_s`` and follow shortest paths on ``times_by_slice[k]``;
    times are scenario seconds. ``np.bincount`` over the pairs gives hits per (count, cell). With
    ``pin_end_links`` (the traffic option of the same name, default true) a trip drives the first and last link
    of its free-flow path (``pinned_ends``) and routes only in between, as the simulator's trips do.
    """
    a = city.arrays
    L = a.n_links
    order = np.argsort(obs_link, kind="stable")
    obs_ptr = np.zeros(L + 1, np.int64)
    np.cumsum(np.bincount(obs_link, minlength=L), out=obs_ptr[1:])
    obs_ids = order.astype(np.int64)
    o_all, d_all, t_all = trips["origin"], trips["destination"], trips["depart_s"]
    if pin_end_links:
        f_all, e_all = pinned_ends(city, o_all, d_all, speed_scale)
    else:
        f_all = e_all = np.full(len(o_all), -1, np.int64)
    # a pinned trip routes to the tail of its last link
    tgt_all = np.where(e_all >= 0, a.link_from[np.maximum(e_all, 0)], d_all).astype(np.int64)
    k_of = np.clip(np.searchsorted(bounds, t_all, side="right") - 1, 0, len(bounds) - 2)
    obs_out, cell_out = [], []
    for k in range(len(bounds) - 1):
        sel = np.flatnonzero(k_of == k)
        if len(sel) == 0:
            continue
        dests, slot = np.unique(tgt_all[sel], return_inverse=True)
        cost = times_by_slice[k].astype(np.float64)
        _, nh = next_hop_tables(dests.astype(np.int32), cost, a.in_indptr, a.in_links, a.link_from, a.n_nodes)
        args = (o_all[sel].astype(np.int64), tgt_all[sel], t_all[sel].astype(np.float64),
                trip_cell[sel].astype(np.int64), slot.astype(np.int64), nh, cost, a.link_to, f_all[sel],
                e_all[sel], obs_ptr, obs_ids,
                obs_prev.astype(np.int64), obs_start_s.astype(np.float64), obs_end_s.astype(np.float64), a.n_nodes)
        cap = 4 * len(sel) + 16
        while True:
            oo, cc = np.empty(cap, np.int64), np.empty(cap, np.int64)
            n = _walk(*args, oo, cc, cap)
            if n <= cap:
                break
            cap = n
        obs_out.append(oo[:n])
        cell_out.append(cc[:n])
    if not obs_out:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    return np.concatenate(obs_out), np.concatenate(cell_out)
