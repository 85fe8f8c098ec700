"""Where the built-in model misses SUMO micro on a fidelity figure: trips, links, junctions and route choices.

The experiments behind docs/traffic_model.md, section "Every figure against SUMO meso-jc: noise and experiments
(session 11)". SUMO side: the SUMO micro replicas with routes of ``validation/closure_routes.py`` (the fidelity
reference run itself with ``--vehroute-output``, cached in ``results/.cache/fixed_routes/``; run that script
first); the built-in model runs here, through ``agents.traffic.compare.run_backend`` with traffic overrides.
Nothing of the model is changed, except by ``options --scale-movements`` (a run-time scaling of the movement
capacities out of named links) and ``--stranded-leftmost-lane`` (before the subcommand: the kernel loaded with a
stranded vehicle standing on its first link's leftmost lane instead of the rightmost), experiments only.

Subcommands (``CITY``: bologna or wildau; ``VARIANT``: baseline or the city's closure variant):
- ``where CITY VARIANT [--sumo-routes] [--override JSON]``: time in system (departure to arrival, or to the end for
  trips still running or waiting) of the built-in model against SUMO micro, trip by trip (aligned by departure,
  origin and destination), per departure bin and per origin; the trips of the p90 tail; the links with the largest
  difference of vehicle-hours estimated alike for both models (exits x length / speed per record interval).
- ``junction CITY VARIANT LINKS [--override JSON]``: per link (comma-separated ids) its exits in both models, the
  built-in model's vehicles and queue, both speeds; the same for the links into its start and out of its end; its
  movements (class, capacity, delay) and how many of SUMO's routes take each.
- ``queue CITY VARIANT LINK [--override JSON] [--every S]``: the built-in model's queue on one link over time
  (vehicles, the first vehicles' next links or "stranded", how long they have been due, all by movement).
- ``options CITY JSON LINKS [--scale-movements LINKS:FACTOR]``: baseline and closure with traffic overrides; the
  fidelity figures, closure deltas and the exits of some links.
- ``detour CITY VARIANT [--override JSON]``: the link-hours with GEH >= 5 (built-in routed against SUMO micro), and
  for each the route pairs (SUMO's, the built-in model's) of the vehicles on it in one model only, with both
  routes' cost at free flow, at the built-in model's and at SUMO's mean link times; the departures of those trips.
- ``growth CITY``: per link, the closure's growth of vehicle-hours (estimated alike) in SUMO micro and in the
  built-in model with fixed-time or actuated signals, routed or on SUMO's routes.

Run: ``.venv/bin/python validation/closure_where.py SUBCOMMAND ...`` (from the project root).
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "validation"))

import closure_routes as cr  # noqa: E402


def patch_stranded_leftmost_lane() -> None:
    """Experiment only (no model change on disk): load the kernel with a stranded vehicle (``stand_unroutable``: its
    route has no passenger path past its first link) standing on its first link's **leftmost** lane instead of the
    rightmost. The patched source goes to a temporary file and is registered as ``agents.traffic.meso_kernel``
    before the model imports it; call it before anything imports ``agents.traffic.meso``."""
    import importlib.util
    import tempfile

    if "agents.traffic.meso" in sys.modules:
        raise RuntimeError("patch_stranded_leftmost_lane: agents.traffic.meso is already imported")
    src = (ROOT / "agents" / "traffic" / "meso_kernel.py").read_text(encoding="utf-8")
    old = "                            mask = full & -full\n"
    if src.count(old) != 1:
        raise RuntimeError("patch_stranded_leftmost_lane: the stranded vehicle's lane rule was not found once")
    src = src.replace(old, "                            mask = full\n                            while mask & (mask - 1):\n"
                           "                                mask &= mask - 1\n")
    d = Path(tempfile.mkdtemp(prefix="citytwin_kernel_"))
    f = d / "meso_kernel_leftmost.py"
    f.write_text(src, encoding="utf-8")
    spec = importlib.util.spec_from_file_location("agents.traffic.meso_kernel", f)
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    sys.modules["agents.traffic.meso_kernel"] = mod
    spec.loader.exec_module(mod)
    import agents.traffic

    agents.traffic.meso_kernel = mod  # type: ignore[attr-defined]


def _replica(name: str, variant: str):
    import xarray as xr

    city = cr._city(name)
    key = cr.replica_key(name, variant, city)
    nc = cr.replica_file(name, variant, key)
    if not nc.exists():
        raise SystemExit(f"{nc.name}: not cached; run validation/closure_routes.py --cities {name} first")
    rou = nc.with_suffix(".rou.xml")
    if not rou.exists():
        cr.write_route_file(xr.load_dataset(nc), city, rou, cr.closed_links(name, variant, city))
    return xr.load_dataset(nc), rou, city


def _run(name: str, variant: str, over: dict, routes: Path | None = None):
    import os

    from agents.traffic.compare import run_backend

    ov = dict(over)
    path = ROOT / cr.CITIES[name][0]
    if routes is not None:
        ov["routes_file"] = os.path.relpath(routes, path.parent)
    return run_backend(path, variant, "meso", overrides=ov)


def link_hours_est(ds, city) -> np.ndarray:
    """[time, link] vehicle-hours estimated from exits x length / speed in each record interval (the same rule for
    both models: SUMO's reference keeps link flows and speeds only)."""
    a = city.arrays
    span = np.diff(np.concatenate([[0.0], ds["time"].values]))[:, None]
    fl = np.nan_to_num(ds["link_flow"].values.astype(float)) * span / 3600.0
    sp = ds["link_speed"].values.astype(float)
    ok = np.isfinite(sp) & (sp > 0.05)
    return np.where(ok, fl * a.length_m[None, :] / np.where(ok, sp, 1.0), 0.0) / 3600.0


def time_in_system(ds) -> tuple[np.ndarray, np.ndarray]:
    """(time in system s, status) per trip: departure to arrival, or to the end of the run; NaN if unroutable."""
    from agents.traffic.schema import UNROUTABLE

    end = float(ds["time"].values[-1])
    dep, arr, st = ds["trip_depart"].values, ds["trip_arrive"].values, ds["trip_status"].values
    t = np.where(np.isfinite(arr), arr, end) - dep
    t[(st == UNROUTABLE) | (dep > end)] = np.nan
    return t, st


def align(b, s) -> np.ndarray:
    """Index into ``b``'s trips for each of ``s``'s trips (the same departure, origin and destination)."""
    kb = np.lexsort((b["trip_destination"].values, b["trip_origin"].values, b["trip_depart"].values))
    ks = np.lexsort((s["trip_destination"].values, s["trip_origin"].values, s["trip_depart"].values))
    if not (np.allclose(b["trip_depart"].values[kb], s["trip_depart"].values[ks])
            and (b["trip_origin"].values[kb] == s["trip_origin"].values[ks]).all()):
        raise SystemExit("the two runs' trips differ")
    out = np.empty(len(ks), np.int64)
    out[ks] = kb
    return out


def cmd_where(name: str, variant: str, over: dict, sumo_routes: bool) -> None:
    from agents.traffic.schema import ARRIVED, PENDING

    s, rou, city = _replica(name, variant)
    b, _ = _run(name, variant, over, rou if sumo_routes else None)
    a, ids = city.arrays, [str(x) for x in city.link_ids]
    idx = align(b, s)
    tb, sb = time_in_system(b)
    tb, sb = tb[idx], sb[idx]
    ts, ss = time_in_system(s)
    ok = np.isfinite(tb) & np.isfinite(ts)
    ex = np.where(ok, tb - ts, 0.0)
    print(f"## {name} {variant}, built-in {'on SUMO micro routes' if sumo_routes else 'routed'} {over or ''}")
    print(f"time in system, built-in minus SUMO micro: {ex.sum() / 3600:+.1f} h over {ok.sum():,} trips; arrived "
          f"{(sb == ARRIVED).sum():,} / {(ss == ARRIVED).sum():,}, waiting to enter at the end {(sb == PENDING).sum():,}"
          f" / {(ss == PENDING).sum():,}")
    dep = s["trip_depart"].values
    print("\n| departure (min) | trips | excess time in system (h) | waiting at the end, built-in / SUMO | arrived, "
          "built-in / SUMO |\n|---|---|---|---|---|")
    end = float(s["time"].values[-1])
    step = 600.0 if end <= 3600 else 1200.0
    for lo in np.arange(0.0, float(dep.max()) + 1, step):
        m = ok & (dep >= lo) & (dep < lo + step)
        print(f"| {lo / 60:.0f}-{(lo + step) / 60:.0f} | {m.sum():,} | {ex[m].sum() / 3600:+.1f} | "
              f"{(sb[m] == PENDING).sum():,} / {(ss[m] == PENDING).sum():,} | {(sb[m] == ARRIVED).sum():,} / "
              f"{(ss[m] == ARRIVED).sum():,} |")
    org = s["trip_origin"].values
    rows = []
    for o in np.unique(org):
        m = org == o
        rows.append((ex[m].sum() / 3600, int(o), int((sb[m] == PENDING).sum()), int((ss[m] == PENDING).sum()),
                     int(m.sum())))
    print("\n| origin (first links) | trips | excess time in system (h) | waiting at the end, built-in / SUMO |"
          "\n|---|---|---|---|")
    for e, o, wb, ws, n in sorted(rows, key=lambda r: -abs(r[0]))[:8]:
        outs = ",".join(ids[k] for k in a.out_links[a.out_indptr[o]:a.out_indptr[o + 1]][:3])
        print(f"| {city.node_ids[o]} ({outs}) | {n:,} | {e:+.1f} | {wb:,} / {ws:,} |")
    p90 = float(np.percentile(ts[ss == ARRIVED], 90))
    tail = (sb == ARRIVED) & (tb > p90)
    u, c = np.unique(org[tail], return_counts=True)
    top = ", ".join(f"{city.node_ids[o]} {n}" for o, n in sorted(zip(u, c), key=lambda x: -x[1])[:6])
    print(f"\np90 tail: {tail.sum():,} arrived trips of the built-in model took longer than SUMO micro's p90 "
          f"({p90:.0f} s; SUMO: {((ss == ARRIVED) & (ts > p90)).sum():,}); median departure "
          f"{np.median(dep[tail]) / 60:.1f} min; by origin: {top}")
    lb, ls = link_hours_est(b, city), link_hours_est(s, city)
    d = lb.sum(0) - ls.sum(0)
    half = slice(len(b["time"]) // 2, None)
    print("\n| link | end junction | exits, built-in / SUMO | est. vehicle-hours, built-in / SUMO | built-in "
          "vehicle-hours (its own count) | speed 2nd half, built-in / SUMO (m/s) |\n|---|---|---|---|---|---|")
    span = float(np.diff(b["time"].values[:2])[0])

    def wsp(ds, ln):
        fl = np.nan_to_num(ds["link_flow"].values[half, ln].astype(float))
        sp = ds["link_speed"].values[half, ln].astype(float)
        return float(np.nansum(sp * fl) / fl.sum()) if fl.sum() > 0 else float("nan")
    for ln in np.argsort(-np.abs(d))[:10]:
        fb = np.nan_to_num(b["link_flow"].values[:, ln]).sum() * span / 3600
        fs = np.nan_to_num(s["link_flow"].values[:, ln]).sum() * span / 3600
        own = float(np.nansum(b["link_vehicles"].values[:, ln]) * span / 3600)
        n = a.link_to[ln]
        print(f"| {ids[ln]} ({a.length_m[ln]:.0f} m, {a.lanes[ln]} lanes) | {city.node_ids[n]}"
              f"{' (signal)' if a.node_signal[n] else ''} | {fb:,.0f} / {fs:,.0f} | {lb[:, ln].sum():.1f} / "
              f"{ls[:, ln].sum():.1f} | {own:.1f} | {wsp(b, ln):.1f} / {wsp(s, ln):.1f} |")



def _twin(name: str, variant: str, over: dict):
    """A CityTwin of ``variant`` of the city's scenario, with traffic options ``over`` laid over its own."""
    from twin.engine import CityTwin
    from twin.scenario import load_scenario

    path = ROOT / cr.CITIES[name][0]
    sc = load_scenario(path)[variant]
    if over:
        sc._domains = dict(sc.domain_configs)
        sc._domains["traffic"] = sc._domains["traffic"].model_copy(update=over)
    return CityTwin(sc, path.parent)

def cmd_junction(name: str, variant: str, links: list[str], over: dict) -> None:

    s, _, city = _replica(name, variant)
    tw = _twin(name, variant, over)
    b = tw.run()
    T = tw.traffic
    a, ids = city.arrays, [str(x) for x in city.link_ids]
    routes = [[int(x) for x in r.split()] for r in s["trip_sumo_route"].values]

    def row(ln: int, tag: str = "") -> str:
        fb, fs = np.nan_to_num(b["link_flow"].values[:, ln]), np.nan_to_num(s["link_flow"].values[:, ln])
        n = a.link_to[ln]
        return (f"| {tag}{ids[ln]} ({a.length_m[ln]:.0f} m, {a.lanes[ln]} lanes) | {city.node_ids[n]}"
                f"{' (signal)' if a.node_signal[n] else ''} | {fb.mean():,.0f} / {fs.mean():,.0f} | "
                f"{np.round(b['link_vehicles'].values[::2, ln]).astype(int).tolist()} | "
                f"{np.round(b['link_queue'].values[::2, ln]).astype(int).tolist()} | "
                f"{[round(float(x), 1) for x in b['link_speed'].values[::2, ln]]} | "
                f"{[round(float(x), 1) for x in s['link_speed'].values[::2, ln]]} |")
    for lk in links:
        ln = ids.index(lk)
        print(f"\n## {lk} ({name} {variant}, built-in routed {over or ''}; series every 2nd record interval)\n")
        print("| link | end junction | exits/h built-in / SUMO | built-in vehicles | built-in queue | built-in speed "
              "m/s | SUMO speed m/s |\n|---|---|---|---|---|---|---|")
        print(row(ln))
        n0, n1 = a.link_from[ln], a.link_to[ln]
        for k in a.in_links[a.in_indptr[n0]:a.in_indptr[n0 + 1]]:
            print(row(int(k), "in: "))
        for k in a.out_links[a.out_indptr[n1]:a.out_indptr[n1 + 1]]:
            print(row(int(k), "out: "))
        fx = sorted(cr.CACHE.glob(f"{name}.baseline.fixed.micro.*.nc"))
        if fx:  # per-lane figures of SUMO micro on the route file's paths (validation/fixed_routes.py's run)
            import xarray as xr

            with cr._LOAD_LOCK:
                d = xr.load_dataset(fx[-1])
            for lane in [x for x in (str(y) for y in d["lane"].values) if x.rsplit("_", 1)[0] == lk]:
                print(f"- SUMO micro on the file's routes (baseline, {fx[-1].name}), lane {lane}: exits per record "
                      f"interval {d['lane_exits'].sel(lane=lane).values.astype(int).tolist()}, speed m/s "
                      f"{[round(float(x), 1) for x in d['lane_speed'].sel(lane=lane).values]}, vehicles "
                      f"{[round(float(x) / float(np.diff(d['time'].values[:2])[0]), 1) for x in d['lane_sampled_s'].sel(lane=lane).values]}")
        nxt: dict[int, int] = {}
        for r in routes:
            for i in range(len(r) - 1):
                if r[i] == ln:
                    nxt[r[i + 1]] = nxt.get(r[i + 1], 0) + 1
        for m in range(T.mv_ptr[ln], T.mv_ptr[ln + 1]):
            o = int(T.mv_out[m])
            print(f"- movement to {ids[o]}: class {int(T.mv_cls[m])}, capacity {T.mv_rate[m] * 3600:,.0f} veh/h, "
                  f"delay {T.mv_delay[m]:.1f} s, lanes {bin(int(T.mv_lanemask[m]))}; SUMO routes taking it: "
                  f"{nxt.get(o, 0):,}")


def cmd_queue(name: str, variant: str, link: str, over: dict, every_s: float = 120.0) -> None:
    """The built-in model's queue on one link every ``every_s``: vehicles, the head vehicles' next links (or
    'stranded' for a route with no path past this link) and how long each has been due."""

    import agents.traffic.meso as meso

    tw = _twin(name, variant, over)
    ids = [str(x) for x in tw.city.link_ids]
    ln = ids.index(link)
    a = tw.city.arrays
    orig = meso.MesoTraffic._catch_up
    rows: list[str] = []
    nxt_t = [every_s]

    def probe(self) -> None:
        orig(self)
        t = float(self.t)
        if t + 1e-9 < nxt_t[0]:
            return
        nxt_t[0] += every_s
        n = int(self.q_count[ln])
        heads = []
        for k in range(min(n, 4)):
            v = int(self.q_buf[self.q_off[ln] + (self.q_head[ln] + k) % self.qcap[ln]])
            p = int(self.v_rpos[v]) + 1
            b = int(self.route_buf[self.v_rstart[v] + p]) if p < self.v_rlen[v] else -1
            what = "arrives" if b < 0 else (ids[b] if a.link_from[b] == a.link_to[ln] else f"stranded ({ids[b]})")
            heads.append(f"{what} due {t - float(self.v_exit[v]):.0f} s")
        tail: dict[str, int] = {}
        for k in range(n):
            v = int(self.q_buf[self.q_off[ln] + (self.q_head[ln] + k) % self.qcap[ln]])
            m = int(self.v_mv[v])
            key = ids[int(self.mv_out[m])] if m >= 0 else "no movement"
            tail[key] = tail.get(key, 0) + 1
        rows.append(f"| {t:.0f} | {n} / {int(self.storage[ln])} | {'; '.join(heads)} | "
                    + ", ".join(f"{k} {c}" for k, c in sorted(tail.items())) + " |")
    meso.MesoTraffic._catch_up = probe  # type: ignore[method-assign]
    try:
        tw.run()
    finally:
        meso.MesoTraffic._catch_up = orig  # type: ignore[method-assign]
    print(f"## queue on {link} ({name} {variant}, built-in routed {over or ''})\n")
    print("| t (s) | vehicles / storage | first vehicles: next link, due since | all vehicles by movement |\n|---|---|---|---|")
    print("\n".join(rows))


def cmd_options(name: str, over: dict, links: list[str], scale: str | None) -> None:
    import traffic_fidelity as tf

    from agents.traffic import meso
    from agents.traffic.compare import flow_agreement, run_figures
    from agents.traffic.reference import sumo_reference

    if scale:
        sl, fac = scale.rsplit(":", 1)
        names, factor = sl.split(","), float(fac)
        orig = meso.MesoTraffic._setup_junctions

        def patched(self, twin, cap):
            orig(self, twin, cap)
            ids = [str(x) for x in twin.city.link_ids]
            for lk in names:
                ln = ids.index(lk)
                sel = slice(self.mv_ptr[ln], self.mv_ptr[ln + 1])
                self.mv_rate[sel] *= factor
                self.mv_prate[sel] *= factor
        meso.MesoTraffic._setup_junctions = patched  # type: ignore[method-assign]
    city = cr._city(name)
    ids = [str(x) for x in city.link_ids]
    closure = cr.CITIES[name][1]
    path = ROOT / cr.CITIES[name][0]
    res = {}
    patched = "leftmost" in str(getattr(sys.modules.get("agents.traffic.meso_kernel"), "__file__", ""))
    print(f"## {name}: built-in with {over or 'defaults'}{f', movements out of {scale}' if scale else ''}"
          f"{', stranded vehicles on the leftmost lane (patched kernel)' if patched else ''}\n")
    print("| run | mean s | p90 s | vehicle-hours | completed | GEH<5 | r | exits/h of " + ", ".join(links)
          + " (built-in / SUMO micro) |\n|---|---|---|---|---|---|---|---|")
    for v in ("baseline", closure):
        b, w = _run(name, v, over)
        m = sumo_reference(path, v, "micro", city=city)
        f = run_figures(b, w)
        r, share, _ = flow_agreement(b, m.ds)
        res[v] = f
        ex = ", ".join(f"{np.nan_to_num(b['link_flow'].values[:, ids.index(lk)]).mean():,.0f} / "
                       f"{np.nan_to_num(m.ds['link_flow'].values[:, ids.index(lk)]).mean():,.0f}" for lk in links)
        print(f"| {v} | {f['mean_travel_time_s']:.1f} | {f['p90_travel_time_s']:.1f} | {f['vehicle_hours']:,.1f} | "
              f"{f['trips_completed']:,} | {share:.1%} | {r:.4f} | {ex} |")
    b, c = res["baseline"], res[closure]
    print(f"\nclosure: Δ vehicle-hours {tf._pct(c['vehicle_hours'], b['vehicle_hours']):+.1f}%, Δ mean travel time "
          f"{tf._pct(c['mean_travel_time_s'], b['mean_travel_time_s']):+.1f}%")


def cmd_detour(name: str, variant: str, over: dict) -> None:

    from agents.traffic.compare import flow_agreement, geh, hourly_link_flows

    s, _, city = _replica(name, variant)
    tw = _twin(name, variant, over)
    b = tw.run()
    T = tw.traffic
    a, ids = city.arrays, [str(x) for x in city.link_ids]
    r, share, n = flow_agreement(b, s)
    print(f"## {name} {variant}, built-in routed {over or ''}: GEH < 5 on {share:.1%} of {n} link-hours, r {r:.4f}")
    fb, fs = hourly_link_flows(b), hourly_link_flows(s)
    h = min(len(fb), len(fs))
    g = geh(fb[:h], fs[:h])
    bad = np.argwhere(g >= 5)
    print("link-hours with GEH >= 5 (link, hour, GEH, built-in / SUMO veh/h): "
          + "; ".join(f"{ids[ln]} h{hr} {g[hr, ln]:.1f} {fb[hr, ln]:.0f} / {fs[hr, ln]:.0f}" for hr, ln in bad))
    if not (np.allclose(b["trip_depart"].values, s["trip_depart"].values)
            and (b["trip_origin"].values == s["trip_origin"].values).all()):
        raise SystemExit("the routed run's trips are not in SUMO's order")
    sroutes = [np.array([int(x) for x in t.split()], np.int64) if t else None for t in s["trip_sumo_route"].values]
    broutes = [T.route_buf[T.v_rstart[v]:T.v_rstart[v] + T.v_rlen[v]].copy() for v in range(T.n_veh)]
    fft = a.length_m / np.maximum(a.speed_mps, 0.1)

    def mean_times(ds):
        fl = np.nan_to_num(ds["link_flow"].values.astype(float))
        sp = np.nan_to_num(ds["link_speed"].values.astype(float))
        with np.errstate(invalid="ignore", divide="ignore"):
            v = (sp * fl).sum(0) / fl.sum(0)
        return np.where(np.isfinite(v) & (v > 0), a.length_m / np.maximum(v, 0.1), fft)
    costs = (("free flow", fft), ("built-in mean link times", mean_times(b)), ("SUMO mean link times", mean_times(s)))
    seen: set[tuple] = set()
    for _, ln in bad:
        use_s = np.array([sr is not None and ln in sr for sr in sroutes])
        use_b = np.array([ln in br for br in broutes] + [False] * (len(sroutes) - len(broutes)))
        pairs: dict[tuple, list[int]] = {}
        for v in np.flatnonzero(use_s ^ use_b):
            sr, br = sroutes[v], broutes[v]
            if sr is None:
                continue
            at = np.flatnonzero(sr == br[0])
            sr2 = sr[at[0]:] if len(at) else sr
            # the part where the two routes differ
            i = 0
            while i < min(len(sr2), len(br)) and sr2[i] == br[i]:
                i += 1
            j = 0
            while j < min(len(sr2), len(br)) - i and sr2[-1 - j] == br[-1 - j]:
                j += 1
            key = (tuple(int(x) for x in sr2[i:len(sr2) - j]), tuple(int(x) for x in br[i:len(br) - j]))
            pairs.setdefault(key, []).append(int(v))
        print(f"\n### {ids[ln]}: SUMO routes over it {use_s.sum()}, built-in {use_b.sum()}")
        for (sp, bp), vs in sorted(pairs.items(), key=lambda x: -len(x[1]))[:3]:
            if (sp, bp) in seen:
                print(f"- {len(vs)} vehicles: the same branches as above")
                continue
            seen.add((sp, bp))
            print(f"- {len(vs)} vehicles; where the routes differ: SUMO {' '.join(ids[k] for k in sp)}; built-in "
                  f"{' '.join(ids[k] for k in bp)}")
            for tag, c in costs:
                cs, cb = c[list(sp)].sum(), c[list(bp)].sum()
                print(f"  - cost at {tag}: SUMO's branch {cs:.1f} s, the built-in model's {cb:.1f} s "
                      f"({cb - cs:+.1f} s)")
            dep = np.sort(s["trip_depart"].values[vs]) / 60
            print(f"  - departures (min): {', '.join(f'{x:.1f}' for x in dep)}")
            tt = b["time"].values
            sb, ss = b["link_speed"].values.astype(float), s["link_speed"].values.astype(float)

            def branch(lst, sp_, k):
                return sum(a.length_m[x] / max(sp_[k, x] if np.isfinite(sp_[k, x]) else a.speed_mps[x], 0.1)
                           for x in lst)
            print("  - per record interval (end min: departures; link-time cost of SUMO's / the built-in model's "
                  "branch in the built-in run, in SUMO's run): " + "; ".join(
                      f"{tt[k] / 60:.0f}: {int(((dep * 60 > tt[k] - (tt[1] - tt[0])) & (dep * 60 <= tt[k])).sum())}, "
                      f"{branch(sp, sb, k):.0f}/{branch(bp, sb, k):.0f} s, {branch(sp, ss, k):.0f}/"
                      f"{branch(bp, ss, k):.0f} s" for k in range(len(tt)) if tt[k] <= float(dep.max()) * 60 + 900))
            for x in sp[:4]:
                for m in range(T.mv_ptr[x], T.mv_ptr[x + 1]):
                    if T.mv_cls[m] == 5:
                        print(f"  - signal movement {ids[x]} -> {ids[T.mv_out[m]]} on SUMO's branch: capacity "
                              f"{T.mv_rate[m] * 3600:,.0f} veh/h, delay {T.mv_delay[m]:.1f} s")


def cmd_growth(name: str) -> None:
    s = {v: _replica(name, v) for v in ("baseline", cr.CITIES[name][1])}
    city = s["baseline"][2]
    a, ids = city.arrays, [str(x) for x in city.link_ids]
    closure = cr.CITIES[name][1]
    gs = link_hours_est(s[closure][0], city).sum(0) - link_hours_est(s["baseline"][0], city).sum(0)
    grow = {}
    for tag, over, on_routes in (("fixed-time, routed", {}, False), ("actuated, routed", {"actuated_signals": True}, False),
                                 ("fixed-time, SUMO routes", {}, True),
                                 ("actuated, SUMO routes", {"actuated_signals": True}, True)):
        r = {v: link_hours_est(_run(name, v, over, s[v][1] if on_routes else None)[0], city).sum(0) for v in s}
        grow[tag] = r[closure] - r["baseline"]
    print(f"## {name}: closure growth of vehicle-hours on links (est. exits x length / speed, both models)\n")
    print(f"total: SUMO micro {gs.sum():+.1f} h; " + "; ".join(f"built-in {k} {g.sum():+.1f} h" for k, g in grow.items()))
    print("\n| link | end junction | SUMO micro | " + " | ".join(f"built-in {k}" for k in grow) + " |\n|"
          + "---|" * (3 + len(grow)))
    worst = np.argsort(-np.max(np.abs(np.stack([g - gs for g in grow.values()])), 0))[:10]
    for ln in worst:
        n = a.link_to[ln]
        print(f"| {ids[ln]} ({a.length_m[ln]:.0f} m, {a.lanes[ln]} lanes) | {city.node_ids[n]}"
              f"{' (signal)' if a.node_signal[n] else ''} | {gs[ln]:+.2f} | "
              + " | ".join(f"{g[ln]:+.2f}" for g in grow.values()) + " |")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--stranded-leftmost-lane", action="store_true",
                    help="experiment: a stranded vehicle stands on its first link's leftmost lane (kernel patched at "
                         "run time, see patch_stranded_leftmost_lane)")
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("where")
    p.add_argument("city", choices=list(cr.CITIES))
    p.add_argument("variant")
    p.add_argument("--sumo-routes", action="store_true")
    p.add_argument("--override", default="{}")
    p = sub.add_parser("junction")
    p.add_argument("city", choices=list(cr.CITIES))
    p.add_argument("variant")
    p.add_argument("links")
    p.add_argument("--override", default="{}")
    p = sub.add_parser("options")
    p.add_argument("city", choices=list(cr.CITIES))
    p.add_argument("override")
    p.add_argument("links")
    p.add_argument("--scale-movements", default=None, help="LINK[,LINK...]:FACTOR")
    p = sub.add_parser("queue")
    p.add_argument("city", choices=list(cr.CITIES))
    p.add_argument("variant")
    p.add_argument("link")
    p.add_argument("--override", default="{}")
    p.add_argument("--every", type=float, default=120.0)
    p = sub.add_parser("detour")
    p.add_argument("city", choices=list(cr.CITIES))
    p.add_argument("variant")
    p.add_argument("--override", default="{}")
    p = sub.add_parser("growth")
    p.add_argument("city", choices=list(cr.CITIES))
    a = ap.parse_args(argv)
    if a.stranded_leftmost_lane:
        patch_stranded_leftmost_lane()
    if a.cmd == "where":
        cmd_where(a.city, a.variant, json.loads(a.override), a.sumo_routes)
    elif a.cmd == "junction":
        cmd_junction(a.city, a.variant, a.links.split(","), json.loads(a.override))
    elif a.cmd == "queue":
        cmd_queue(a.city, a.variant, a.link, json.loads(a.override), a.every)
    elif a.cmd == "options":
        cmd_options(a.city, json.loads(a.override), a.links.split(","), a.scale_movements)
    elif a.cmd == "detour":
        cmd_detour(a.city, a.variant, json.loads(a.override))
    else:
        cmd_growth(a.city)
    return 0


if __name__ == "__main__":
    sys.exit(main())
