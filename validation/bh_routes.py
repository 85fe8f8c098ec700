"""Bad Hersfeld: are the baseline's GEH / r / completed-trip misses against SUMO meso-jc route choice?

Bad Hersfeld has no route file: its demand comes from ``twin/demand.py`` and the SUMO reference routes every
trip itself (rerouting device at insertion, a ``reroute_share`` of ``car_rr`` vehicles en route). So the
experiment is:

1. **Replica.** The reference SUMO micro run (``agents/traffic/reference.py``: the same scenario, trips, EV and
   emergency domains, options and seed, through the same SUMO back-end) run again with three outputs added on
   SUMO's command line: ``--vehroute-output`` (+ ``write-unfinished``, ``exit-times``) and ``--error-log`` with
   warnings on (each teleport: vehicle, lane, time). Outputs only: the simulation is the reference's, which the
   agreement with the cached reference (GEH, r, mean) checks. Cached in ``results/.cache/bh_routes/`` under a
   key over the reference's own key (``reference_key``: scenario, data, topology, SUMO version, SUMO-side
   code) and the added options; the reference cache is read, never written.
2. **Fixed routes.** SUMO's driven routes (the last route of each background vehicle, unfinished ones
   included) go to the built-in model through ``traffic.routes_file`` (matched by departure, origin and
   destination, ``agents/traffic/file_routes.py``; fallbacks counted). Figures against the replica and the
   cached reference, beside the routed built-in model and SUMO meso-jc.
3. **Completed trips.** Which trips do not finish in each model, where they are at the end, the link of each slow
   vehicle's longest stay, where the built-in's gridlock rule fires, and SUMO's teleports.
4. **What-ifs** (each by wrapping a function in this process only; no model change): the signalised movements
   SUMO drives above the built-in's capacity at 1.1 x SUMO's busiest hour, ``actuated_signals: true`` (SUMO's
   programs are all actuated), the signal delay left out of the route costs, the lock's merge as a priority
   stream. docs/traffic_model.md, "Bad Hersfeld: route choice against meso-jc (session 11)".

Run: ``.venv/bin/python validation/bh_routes.py [--variant baseline|main_road_closed] [--cached-only]``;
the routing what-ifs on all cities (cached references only): ``validation/bh_routes.py --routing-sweep
bad_hersfeld,bologna,wildau [--ks 1,0.5,0]``; one SUMO replica by hand: ``python validation/bh_routes.py --child
VARIANT OUT.nc``.
"""
from __future__ import annotations

import argparse
import gzip
import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

SCENARIO = ROOT / "scenarios" / "bad_hersfeld.yaml"
CACHE = ROOT / "results" / ".cache" / "bh_routes"
REF_CACHE = ROOT / "results" / ".cache" / "sumo_reference"
TIMEOUT_S = 5400.0
CAP_MARGIN = 1.1  # the capacity experiment: a movement SUMO drives above the built-in's capacity gets 1.1 x its hour
# what the replica adds to the reference's SUMO command line (outputs only); part of its cache key
_ADDED = ["--vehroute-output", "{vehroutes}", "--vehroute-output.write-unfinished", "true",
          "--vehroute-output.exit-times", "true", "--error-log", "{log}"]


# ====================================================================== the replica (child process)
def _city():
    from twin.city import build_city
    from twin.scenario import load_scenario

    sc = load_scenario(SCENARIO)["baseline"]
    return build_city(sc.city, SCENARIO.parent, sc.name)


def replica_key(variant: str, city=None) -> str:
    """SHA-256 (24 hex) over the reference run's key and the options the replica adds."""
    from agents.traffic.reference import reference_key

    ref = reference_key(SCENARIO, variant, "micro", city if city is not None else _city())
    doc = {"reference_key": ref, "added": _ADDED, "warnings": True}
    return hashlib.sha256(json.dumps(doc, sort_keys=True).encode()).hexdigest()[:24]


def run_replica(variant: str, out_nc: Path) -> float:
    """The reference SUMO micro run of ``variant`` with vehroute output and the warning log (this process)."""
    import agents.traffic.sumo as sumo_backend
    from agents.traffic.reference import run_reference

    vehroutes = out_nc.with_name(out_nc.name.replace(".nc", ".vehroutes.xml.gz"))
    log = out_nc.with_name(out_nc.name.replace(".nc", ".warnings.log"))
    orig = sumo_backend.sumo_command

    def command(*a, **k):
        cmd = orig(*a, **k)
        i = cmd.index("--no-warnings")
        cmd[i + 1] = "false"  # the teleport warnings go to the log (vehicle, lane, time)
        return cmd + [x.format(vehroutes=vehroutes, log=log) for x in _ADDED]

    sumo_backend.sumo_command = command  # type: ignore[assignment]
    return run_reference(SCENARIO, variant, "micro", out_nc)


def replica(variant: str, cached_only: bool = False) -> tuple[Path | None, str]:
    """(the replica's results file, "" ) from the cache, or run it in a child process of its own group."""
    CACHE.mkdir(parents=True, exist_ok=True)
    key = replica_key(variant)
    nc = CACHE / f"bad_hersfeld.{variant}.replica.{key}.nc"
    if nc.exists():
        return nc, ""
    if cached_only:
        return None, f"replica not in the cache ({nc.name}; --cached-only)"
    cmd = [sys.executable, str(Path(__file__).resolve()), "--child", variant, str(nc)]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    with open(nc.with_name(nc.name + ".stderr"), "w") as err:
        proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=err, start_new_session=True)
        try:
            proc.wait(timeout=TIMEOUT_S)
        except (subprocess.TimeoutExpired, KeyboardInterrupt):
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            return None, "replica exceeded its time limit or was interrupted (killed)"
    if proc.returncode != 0 or not nc.exists():
        return None, f"replica child failed (exit {proc.returncode}), see {nc.name}.stderr"
    return nc, ""



# ====================================================================== reading the replica's outputs
def read_vehroutes(path: Path, edge_index: dict[str, int]) -> dict[int, tuple[np.ndarray, int, float]]:
    """{vehicle id: (city links of its last route, edges it has left, arrival s or NaN)} from the vehroute
    output (exit times on): a vehicle still on the road at the end is on ``route[edges left]``. The exit times
    themselves go to ``EXIT_TIMES`` (vehicle id -> array, s)."""
    import xml.etree.ElementTree as ET

    out: dict[int, tuple[np.ndarray, int, float]] = {}
    opener = gzip.open if str(path).endswith(".gz") else open
    with opener(path, "rb") as f:
        for _, el in ET.iterparse(f):
            if el.tag != "vehicle":
                continue
            vid = el.get("id", "")
            rs = el.findall(".//route")
            if rs and vid.isdigit():
                r = rs[-1]
                links = np.array([edge_index.get(e, -1) for e in r.get("edges", "").split()], np.int64)
                ex = r.get("exitTimes", "").split()
                EXIT_TIMES[int(vid)] = np.array([float(x) for x in ex])
                arr = float(el.get("arrival", "nan"))
                out[int(vid)] = (links, len(ex), arr if arr >= 0 else float("nan"))
            el.clear()
    return out


EXIT_TIMES: dict[int, np.ndarray] = {}


def teleport_windows(log: Path) -> dict[int, list[tuple[float, float]]]:
    """{vehicle: [(teleport start s, end s)]} from SUMO's warning log (a teleport not ended: to the end)."""
    import re

    start = re.compile(r"Teleporting vehicle '(\d+)';.*? time=([0-9]+(?:\.[0-9]+)?)")
    end = re.compile(r"Vehicle '(\d+)' ends teleporting .*? time=([0-9]+(?:\.[0-9]+)?)")
    open_: dict[int, float] = {}
    out: dict[int, list[tuple[float, float]]] = {}
    for f in (log, log.with_name(log.name.replace(".warnings.log", ".nc.stderr"))):
        if not f.exists():
            continue
        for line in f.read_text(errors="replace").splitlines():
            m = start.search(line)
            if m:
                open_[int(m.group(1))] = float(m.group(2))
                continue
            m = end.search(line)
            if m and int(m.group(1)) in open_:
                v = int(m.group(1))
                out.setdefault(v, []).append((open_.pop(v), float(m.group(2))))
        if out or open_:
            break
    for v, t0 in open_.items():
        out.setdefault(v, []).append((t0, np.inf))
    return out


def movement_gaps(T, routes: dict, city, n_hours: int, k: int = 12,
                  teleports: dict[int, list[tuple[float, float]]] | None = None) -> list[dict]:
    """Signalised movements (in-link -> out-link) where SUMO micro passed more vehicles in an hour than the
    built-in model's capacity for them (green share x saturation flow x lanes, permissive part included): SUMO's
    hourly counts from the vehroute exit times, without the exits of a vehicle while it teleports (a teleport
    jumps it along its route: those exits are not driven), against the built-in's routed vehicles through the
    movement over the run (each vehicle's last route in the buffer). Largest excess first."""
    flows: dict[tuple[int, int], np.ndarray] = {}
    tel = teleports or {}
    for v, (links, _, _) in routes.items():
        ex = EXIT_TIMES.get(v)
        if ex is None:
            continue
        win = tel.get(v, [])
        for i in range(min(len(links) - 1, len(ex))):
            if any(t0 <= ex[i] <= t1 + 1.0 for t0, t1 in win):
                continue
            key = (int(links[i]), int(links[i + 1]))
            h = min(int(ex[i] // 3600.0), n_hours - 1)
            flows.setdefault(key, np.zeros(n_hours))[h] += 1
    mv = {}
    for ln in range(len(T.mv_ptr) - 1):
        for m in range(T.mv_ptr[ln], T.mv_ptr[ln + 1]):
            mv[(ln, int(T.mv_out[m]))] = m
    bcount: dict[tuple[int, int], int] = {}
    for v in range(T.n_veh):
        r = T.route_buf[T.v_rstart[v]:T.v_rstart[v] + T.v_rlen[v]]
        for i in range(len(r) - 1):
            key = (int(r[i]), int(r[i + 1]))
            bcount[key] = bcount.get(key, 0) + 1
    out: list[dict[str, Any]] = []
    for key, f in flows.items():
        j = mv.get(key)
        if j is None or int(T.mv_cls[j]) != 5:
            continue
        cap = float(T.mv_rate[j] + T.mv_prate[j]) * 3600.0
        if f.max() > cap:
            out.append({"from": str(city.link_ids[key[0]]), "to": str(city.link_ids[key[1]]),
                        "builtin_capacity_vph": cap, "sumo_max_hour_vph": float(f.max()),
                        "sumo_vehicles": int(f.sum()), "builtin_routed_vehicles": bcount.get(key, 0)})
    return sorted(out, key=lambda e: -(float(e["sumo_max_hour_vph"]) - float(e["builtin_capacity_vph"])))[:k]


def read_teleports(log: Path) -> list[tuple[str, str, str, float]]:
    """(vehicle, reason, lane, time s) of each teleport start in SUMO's warning log."""
    import re

    pat = re.compile(r"Teleporting vehicle '([^']+)'; ([^,']+)[^,]*, lane='([^']*)'.*? time=([0-9]+(?:\.[0-9]+)?)")
    out: list[tuple[str, str, str, float]] = []
    # libsumo also prints the warnings on stderr (kept next to the results): the log, else that
    for f in (log, log.with_name(log.name.replace(".warnings.log", ".nc.stderr"))):
        if f.exists():
            for line in f.read_text(errors="replace").splitlines():
                m = pat.search(line)
                if m:
                    out.append((m.group(1), m.group(2), m.group(3), float(m.group(4))))
        if out:
            break
    return out


def routes_file(nc: Path, routes: dict, ds, city) -> Path:
    """SUMO's driven routes of the background trips (kind car) as a route file for ``traffic.routes_file``:
    one ``<vehicle>`` per trip with its demand departure (exact repr) and its last route."""
    f = nc.with_name(nc.name.replace(".nc", ".rou.xml"))
    if f.exists():
        return f
    dep = ds["trip_depart"].values
    kind = ds["trip_kind"].values
    tmp = f.with_name(f".{f.name}.tmp")
    with open(tmp, "w", encoding="utf-8") as fh:
        fh.write("<routes>\n")
        for v in np.argsort(dep, kind="stable"):
            if kind[v] != 0 or int(v) not in routes:
                continue
            links = routes[int(v)][0]
            if len(links) and links.min() >= 0:
                edges = " ".join(str(city.link_ids[i]) for i in links)
                fh.write(f'  <vehicle id="{v}" depart="{float(dep[v])!r}"><route edges="{edges}"/></vehicle>\n')
        fh.write("</routes>\n")
    tmp.replace(f)
    return f


# ====================================================================== the built-in runs
class GridlockTrace:
    """Where the built-in model's gridlock rule fires: ``agents.traffic.meso_kernel.advance`` wrapped (in this
    process only) to run one step per call; after a step that raised the kernel's gridlock count, the vehicles
    that left a link and entered the next one (or arrived) at a time past the step's end are those the rule
    moved (it enters them after the free-flow time of the links it skips). Same steps, same order: the results
    are the untraced run's (checked by the caller)."""

    def __init__(self) -> None:
        self.events: list[tuple[float, int, int, int]] = []  # (step end s, vehicle, link stood on, link after)
        self.count = 0
        self.snaps: list[tuple[float, np.ndarray]] = []  # every SNAP_S: each vehicle's link (-1 when not running)

    def __enter__(self):
        import agents.traffic.meso_kernel as K

        self._K, self._orig = K, K.advance
        orig, ev = K.advance, self

        def advance(t0, n_steps, dt, step_counter, L, M, V, T, *rest):
            done = 0
            flags = 0
            while done < n_steps:
                g0 = int(T.gridlocks[0])
                link0 = V.link.copy()
                d, flags = orig(t0 + done * dt, 1, dt, step_counter + done, L, M, V, T, *rest)
                done += d
                g1 = int(T.gridlocks[0])
                if g1 > g0:
                    te = t0 + done * dt + 1e-6
                    late = ((V.status == 1) & (V.enter > te)) | ((V.status == 0) & (V.arrive > te))
                    vs = np.flatnonzero(late & (link0 != V.link) & (link0 >= 0))
                    ev.count += g1 - g0
                    ev.events += [(te, int(v), int(link0[v]), int(V.link[v])) for v in vs]
                tn = t0 + done * dt
                if not ev.snaps or tn - ev.snaps[-1][0] >= SNAP_S - 1e-9:
                    ev.snaps.append((tn, np.where(V.status == 1, V.link, -1).astype(np.int32)))
                if flags or d == 0:
                    break
            return done, flags

        K.advance = advance
        return self

    def __exit__(self, *exc) -> None:
        self._K.advance = self._orig


class MovementCapacity:
    """Set the built-in model's protected rate of chosen movements ((in-link id, out-link id) -> veh/h) for one
    run: ``agents.traffic.meso._signal_service`` wrapped in this process only (an experiment, no model change)."""

    def __init__(self, city, vph: dict[tuple[str, str], float]) -> None:
        j = city.junctions()
        self.set: dict[int, float] = {}
        for (a, b), q in vph.items():
            la, lb = city.link_index(a), city.link_index(b)
            for m in range(int(j.mv_ptr[la]), int(j.mv_ptr[la + 1])):
                if int(j.mv_out[m]) == lb:
                    self.set[m] = q / 3600.0

    def __enter__(self):
        import agents.traffic.meso as meso

        self._meso, self._orig = meso, meso._signal_service
        orig, want = meso._signal_service, self.set

        def service(*a, **k):
            perm, rate, prate, webster = orig(*a, **k)
            rate = rate.copy()
            for m, q in want.items():
                rate[m] = max(q - prate[m], 0.0)
            return perm, rate, prate, webster

        meso._signal_service = service
        return self

    def __exit__(self, *exc) -> None:
        self._meso._signal_service = self._orig


SNAP_S = 60.0


def long_stays(tr: GridlockTrace, T, tid: np.ndarray, city, slow_s: float = 3000.0) -> dict:
    """Background vehicles unfinished at the end or slower than ``slow_s``: the link of each one's longest stay
    (from the trace's snapshots every SNAP_S), counted, with the median stay."""
    from agents.traffic.schema import ARRIVED, RUNNING

    u = tid[tid >= 0]
    st = T.v_status[u]
    tt = T.v_arrive[u] - T.v_depart[u]
    sel = u[(st == RUNNING) | ((st == ARRIVED) & (tt > slow_s))]
    if not len(sel) or not tr.snaps:
        return {"vehicles": int(len(sel)), "links": [], "median_stay_s": float("nan")}
    ts = np.array([t for t, _ in tr.snaps])
    m = len(T.v_status)
    grid = np.stack([np.pad(x, (0, max(m - len(x), 0)), constant_values=-1)[:m] for _, x in tr.snaps])[:, sel]
    stays: dict[str, list[float]] = {}
    for j in range(len(sel)):
        col = grid[:, j]
        best, bl, k0 = 0.0, -1, 0
        for k in range(1, len(col) + 1):
            if k == len(col) or col[k] != col[k0]:
                if col[k0] >= 0 and ts[k - 1] - ts[k0] > best:
                    best, bl = ts[k - 1] - ts[k0], int(col[k0])
                k0 = k
        if bl >= 0:
            stays.setdefault(str(city.link_ids[bl]), []).append(best)
    top = sorted(stays.items(), key=lambda kv: -len(kv[1]))[:6]
    return {"vehicles": int(len(sel)), "unfinished": int((st == RUNNING).sum()),
            "links": [(k, len(v), float(np.median(v))) for k, v in top],
            "median_stay_s": float(np.median([x for v in stays.values() for x in v])) if stays else float("nan")}


# the baseline's lock (validation run 2026-12-02): a yield merge from a 15 m link into a 42 m link its priority
# stream keeps full; the gridlock rule moves the first vehicle of its queue every 300 s
LOCK_MOVEMENT = ("51678656", "104494836#3")


class PriorityMovement:
    """Make chosen movements (in-link id, out-link id) priority streams (no giving way) for one run: the city's
    junction model is edited as it is built (``CityGraph.junctions`` wrapped in this process only)."""

    def __init__(self, pairs: list[tuple[str, str]]) -> None:
        self.pairs = pairs

    def __enter__(self):
        from networks.graph import CityGraph

        self._orig = CityGraph.junctions
        orig, pairs = CityGraph.junctions, self.pairs
        self._edits: list[tuple[object, int, int]] = []  # the city (and its junctions) are cached per process
        edits = self._edits

        def junctions(g):
            j = orig(g)
            for a, b in pairs:
                la, lb = g.link_index(a), g.link_index(b)
                for m in range(int(j.mv_ptr[la]), int(j.mv_ptr[la + 1])):
                    if int(j.mv_out[m]) == lb and int(j.mv_class[m]) != 0:
                        edits.append((j, m, int(j.mv_class[m])))
                        j.mv_class[m] = 0
            return j

        CityGraph.junctions = junctions  # type: ignore[method-assign]
        return self

    def __exit__(self, *exc) -> None:
        from networks.graph import CityGraph

        CityGraph.junctions = self._orig  # type: ignore[method-assign]
        for j, m, cls in self._edits:  # undo: later runs in this process get the junction model as it is
            j.mv_class[m] = cls  # type: ignore[attr-defined]


class SignalDelayInRouting:
    """Scale the signal (Webster uniform) delay in the built-in model's movement routing costs by ``k`` for one
    run, keeping the turn time and the live queue terms: ``MesoTraffic.setup`` and ``_raw_costs`` wrapped in
    this process only (an experiment, no model change). k = 1 is the model as it is."""

    def __init__(self, k: float) -> None:
        self.k = k

    def __enter__(self):
        import agents.traffic.meso as meso

        M = meso.MesoTraffic
        self._M, self._setup, self._raw = M, M.setup, M._raw_costs
        setup0, raw0, k = M.setup, M._raw_costs, self.k

        def setup(tr, twin):
            setup0(tr, twin)
            if tr.turn:
                tr._route_mv_cost = tr.mv_turn + k * (tr.mv_delay - tr.mv_turn)
                tr._ema_mv = tr._route_mv_cost.copy()

        def raw(tr):
            link, mv = raw0(tr)
            if mv is not None:
                mv = mv - (1.0 - k) * (tr.mv_delay - tr.mv_turn)
            return link, mv

        M.setup, M._raw_costs = setup, raw  # type: ignore[method-assign]
        return self

    def __exit__(self, *exc) -> None:
        self._M.setup, self._M._raw_costs = self._setup, self._raw  # type: ignore[method-assign]


def builtin_run(variant: str, routes: Path | None = None, trace: GridlockTrace | None = None,
                overrides: dict | None = None):
    """(results, wall s, traffic model) of the built-in model on ``variant``, routed or on ``routes``; with
    ``trace``, the gridlock rule's events recorded into it; ``overrides``: TrafficConfig fields."""
    import contextlib

    from twin.engine import CityTwin
    from twin.scenario import load_scenario

    sc = load_scenario(SCENARIO)[variant]
    upd = dict(overrides or {})
    if routes is not None:
        upd["routes_file"] = os.path.relpath(routes, SCENARIO.parent)
    if upd:
        sc = sc.model_copy()
        sc._domains = dict(sc.domain_configs)
        sc._domains["traffic"] = sc._domains["traffic"].model_copy(update=upd)
    t = time.perf_counter()
    tw = CityTwin(sc, SCENARIO.parent)
    with trace if trace is not None else contextlib.nullcontext():
        ds = tw.run()
    return ds, time.perf_counter() - t, tw.traffic


def align(ds, rep, n_bg: int) -> np.ndarray:
    """Per background trip of the SUMO run (its demand index): the built-in run's vehicle with the same departure,
    origin and destination (the built-in model numbers vehicles on given paths after its routed fallbacks), -1
    when none."""
    keys: dict[tuple[float, int, int], list[int]] = {}
    for u, k in enumerate(zip(ds["trip_depart"].values.tolist(), ds["trip_origin"].values.tolist(),
                              ds["trip_destination"].values.tolist())):
        keys.setdefault(k, []).append(u)
    tid = np.full(n_bg, -1, np.int64)
    for v, k in enumerate(zip(rep["trip_depart"].values[:n_bg].tolist(), rep["trip_origin"].values[:n_bg].tolist(),
                              rep["trip_destination"].values[:n_bg].tolist())):
        us = keys.get(k)
        if us:
            tid[v] = us.pop(0)
    return tid


def _ends_with(full: np.ndarray, part: np.ndarray) -> bool:
    """True when ``part`` is ``full`` from the first link of ``part`` on."""
    at = np.flatnonzero(full == part[0]) if len(part) else np.zeros(0, int)
    return len(at) > 0 and np.array_equal(full[at[0]:], part)


def route_differs(T, routes: dict, tid: np.ndarray, sumo_status: np.ndarray) -> dict:
    """Share of background vehicles arrived in both runs whose built-in route (its last one, from where it last
    routed) is not SUMO's final route from that link on; and whose first link differs."""
    from agents.traffic.schema import ARRIVED

    same = other = first_diff = 0
    for v, u in enumerate(tid):
        if u < 0 or T.v_status[u] != ARRIVED or sumo_status[v] != ARRIVED or v not in routes:
            continue
        s = routes[v][0]
        r = T.route_buf[T.v_rstart[u]:T.v_rstart[u] + T.v_rlen[u]]
        ok = _ends_with(s, r)
        same += ok
        other += not ok
        first_diff += int(T.v_first[u] != s[0]) if T.v_first[u] >= 0 else 0
    n = same + other
    return {"vehicles_compared": n, "route_differs_share": other / max(n, 1),
            "first_link_differs_share": first_diff / max(n, 1)}


# ====================================================================== unfinished trips
def unfinished(ds, where: np.ndarray, tid: np.ndarray, city, end: float) -> dict:
    """Trips due but not completed by the end: by status, background or EV / emergency, by departure, and where
    the background ones are (``where``: link index per trip, -1 unknown), top links. EV and emergency trips are
    made by those domains during the run (an EV's return trip follows its arrival), so their count and ids differ
    between back-ends; background trips are the first ``n_bg`` in every run, with the same ids."""
    from agents.traffic.schema import ARRIVED, PENDING, RUNNING

    st = ds["trip_status"].values
    dep = ds["trip_depart"].values
    due = dep < end
    un = due & (st != ARRIVED) & np.isin(st, (RUNNING, PENDING))
    bg = np.zeros(len(st), bool)
    bg[tid[tid >= 0]] = True
    back = np.full(len(st), -1, np.int64)  # built-in vehicle -> demand index
    back[tid[tid >= 0]] = np.flatnonzero(tid >= 0)
    a = city.arrays
    idx = np.flatnonzero(un & bg)
    locs: dict[str, int] = {}
    for i in idx:
        ln = int(where[i]) if i < len(where) else -1
        key = str(city.link_ids[ln]) if ln >= 0 else "?"
        locs[key] = locs.get(key, 0) + 1
    top = sorted(locs.items(), key=lambda kv: -kv[1])[:8]
    return {"due": int(due.sum()), "completed": int((st == ARRIVED).sum()), "unfinished": int(un.sum()),
            "running": int((un & (st == RUNNING)).sum()), "waiting_to_enter": int((un & (st == PENDING)).sum()),
            "background_due": int((due & bg).sum()), "background_unfinished": int(len(idx)),
            "ev_emergency_due": int((due & ~bg).sum()), "ev_emergency_unfinished": int((un & ~bg).sum()),
            "ev_emergency_unfinished_departed_last_10_min": int((un & ~bg & (dep >= end - 600)).sum()),
            "background_unfinished_depart_s": [round(float(x)) for x in np.sort(dep[idx])],
            "top_links": [{"link": k, "vehicles": v,
                           "end_node": (str(city.node_ids[a.link_to[city.link_index(k)]]) if k != "?" else "?"),
                           "length_m": (float(a.length_m[city.link_index(k)]) if k != "?" else float("nan"))}
                          for k, v in top],
            "_ids": back[idx]}


def builtin_where(T) -> np.ndarray:
    """Per built-in vehicle: its link at the end (running), its first link (waiting to enter), -1 otherwise."""
    from agents.traffic.schema import PENDING, RUNNING

    n = T.n_veh
    w = np.full(n, -1, np.int64)
    st = T.v_status[:n]
    w[st == RUNNING] = T.v_link[:n][st == RUNNING]
    w[st == PENDING] = T.v_first[:n][st == PENDING]
    return w


def sumo_where(routes: dict, n: int) -> np.ndarray:
    """Per SUMO vehicle: the edge it is on at the end (its route's first edge not yet left), -1 unknown."""
    w = np.full(n, -1, np.int64)
    for v, (links, left, arr) in routes.items():
        if v < n and not np.isfinite(arr) and len(links):
            w[v] = links[min(left, len(links) - 1)]
    return w


# ====================================================================== the experiment
def _gridlock_summary(tr: GridlockTrace, ds, city) -> dict:
    """Where the gridlock rule fired: (link stood on -> link after) pairs, most first."""
    pairs: dict[str, int] = {}
    for _, _, a, b in tr.events:
        k = f"{city.link_ids[a]} -> {city.link_ids[b] if b >= 0 else 'arrived'}"
        pairs[k] = pairs.get(k, 0) + 1
    return {"count": tr.count, "kpi": float(ds["kpi_traffic_gridlock_resolutions"].values), "traced": len(tr.events),
            "pairs": sorted(pairs.items(), key=lambda kv: -kv[1])[:6],
            "first_s": min((e[0] for e in tr.events), default=float("nan"))}


def _figs(ds, wall, ref=None, rep=None) -> dict:
    from agents.traffic.compare import flow_agreement, run_figures

    f = run_figures(ds, wall)
    for tag, other in (("ref", ref), ("rep", rep)):
        if other is not None and other is not ds:
            r, share, pairs = flow_agreement(ds, other)
            f.update({f"geh5_vs_{tag}": share, f"r_vs_{tag}": r, f"pairs_vs_{tag}": pairs})
    return f


def _ref(variant: str, mode: str, city, seeded: bool = False):
    import xarray as xr

    from agents.traffic.reference import reference_key

    if seeded:
        hits = sorted(REF_CACHE.glob(f"bad_hersfeld.{variant}.{mode}.seed*.nc"))
        return xr.load_dataset(hits[0]) if hits else None
    nc = REF_CACHE / f"bad_hersfeld.{variant}.{mode}.{reference_key(SCENARIO, variant, mode, city)}.nc"
    return xr.load_dataset(nc) if nc.exists() else None


def experiment(variant: str, cached_only: bool) -> dict:
    import xarray as xr

    from agents.traffic.schema import ARRIVED

    city = _city()
    nc, err = replica(variant, cached_only)
    if nc is None:
        return {"variant": variant, "error": err}
    rep = xr.load_dataset(nc)
    ref = _ref(variant, "micro", city)
    mjc = _ref(variant, "meso_jc", city)
    seed2 = _ref(variant, "micro", city, seeded=True)
    edge_index = {str(e): i for i, e in enumerate(city.link_ids)}
    routes = read_vehroutes(nc.with_name(nc.name.replace(".nc", ".vehroutes.xml.gz")), edge_index)
    n = rep.sizes["trip"]
    kind = rep["trip_kind"].values
    n_bg = int((kind == 0).sum())
    assert (kind[:n_bg] == 0).all(), "background trips are expected first"
    out: dict = {"variant": variant, "replica": nc.name, "trips": n, "background_trips": n_bg,
                 "routes_read": len(routes)}
    # 1. the replica against the cached reference
    if ref is not None:
        from agents.traffic.compare import flow_agreement

        r, share, pairs = flow_agreement(rep, ref)
        a1, a0 = rep["trip_arrive"].values, ref["trip_arrive"].values
        m = min(len(a1), len(a0))
        same = np.isclose(a1[:m], a0[:m], atol=1e-6) | (np.isnan(a1[:m]) & np.isnan(a0[:m]))
        out["replica_vs_reference"] = {"geh5": share, "r": r, "pairs": pairs, "trips_same_arrival": float(same.mean()),
                                       "trip_count_equal": bool(len(a1) == len(a0))}
    # 2. the built-in model routed, and on SUMO's routes
    rf = routes_file(nc, routes, rep, city)
    tr_rt, tr_fx = GridlockTrace(), GridlockTrace()
    b_rt, w_rt, T_rt = builtin_run(variant, trace=tr_rt)
    b_fx, w_fx, T_fx = builtin_run(variant, rf, trace=tr_fx)
    out["builtin_gridlocks"] = {k: _gridlock_summary(tr, ds, city)
                                for k, tr, ds in (("builtin_routed", tr_rt, b_rt), ("builtin_sumo_routes", tr_fx, b_fx))}
    runs = {"builtin_routed": _figs(b_rt, w_rt, ref, rep), "builtin_sumo_routes": _figs(b_fx, w_fx, ref, rep),
            "sumo_micro_replica": _figs(rep, float(rep.attrs["wall_time_s"]), ref, None)}
    if ref is not None:
        runs["sumo_micro_reference"] = _figs(ref, float(ref.attrs["wall_time_s"]), None, rep)
    if mjc is not None:
        runs["sumo_meso_jc"] = _figs(mjc, float(mjc.attrs["wall_time_s"]), ref, rep)
    if seed2 is not None:
        runs["sumo_micro_other_seed"] = _figs(seed2, float(seed2.attrs["wall_time_s"]), ref, rep)
    out["runs"] = runs
    out["mapping"] = json.loads(b_fx.attrs.get("traffic_routes_file", "{}"))
    sst = rep["trip_status"].values
    out["movement_gaps"] = movement_gaps(T_rt, routes, city, int(np.ceil(float(rep["time"].values[-1]) / 3600.0)),
                                         teleports=teleport_windows(nc.with_name(nc.name.replace(".nc",
                                                                                                 ".warnings.log"))))
    # the same two runs with those movements' capacity at 1.1 x SUMO's busiest hour through them
    boost = {(e["from"], e["to"]): CAP_MARGIN * e["sumo_max_hour_vph"] for e in out["movement_gaps"]}
    out["capacity_set_vph"] = {f"{a} -> {b}": q for (a, b), q in boost.items()}
    tr_fc, tr_rc = GridlockTrace(), GridlockTrace()
    with MovementCapacity(city, boost):
        b_fc, w_fc, T_fc = builtin_run(variant, rf, trace=tr_fc)
        b_rc, w_rc, T_rc = builtin_run(variant, trace=tr_rc)
    sys.path.insert(0, str(ROOT / "validation"))
    from fixed_routes import worst_links

    out["worst_links"] = {"builtin_routed": worst_links(b_rt, rep, city, k=8),
                          "builtin_sumo_routes_cap": worst_links(b_fc, rep, city, k=5)}
    runs["builtin_sumo_routes_cap"] = _figs(b_fc, w_fc, ref, rep)
    runs["builtin_routed_cap"] = _figs(b_rc, w_rc, ref, rep)
    # routing without the signal's uniform delay in the movement costs (SUMO's router sees a signal only through
    # the speeds of the vehicles on the approach)
    tr_nw = GridlockTrace()
    with SignalDelayInRouting(0.0):
        b_nw, w_nw, T_nw = builtin_run(variant, trace=tr_nw)
    runs["builtin_routed_no_signal_delay_cost"] = _figs(b_nw, w_nw, ref, rep)
    # SUMO's signals are all type="actuated" (phases between minDur and maxDur); the built-in model runs them as
    # written unless traffic.actuated_signals (networks/actuated.py)
    act = {"actuated_signals": True}
    b_fa, w_fa, _ = builtin_run(variant, rf, overrides=act)
    runs["builtin_sumo_routes_actuated"] = _figs(b_fa, w_fa, ref, rep)
    tr_ra = GridlockTrace()
    b_ra, w_ra, _ = builtin_run(variant, trace=tr_ra, overrides=act)
    runs["builtin_routed_actuated"] = _figs(b_ra, w_ra, ref, rep)
    out["builtin_gridlocks"]["builtin_routed_actuated"] = _gridlock_summary(tr_ra, b_ra, city)
    tr_an = GridlockTrace()
    with SignalDelayInRouting(0.0):
        b_an, w_an, T_an = builtin_run(variant, trace=tr_an, overrides=act)
    runs["builtin_routed_actuated_no_signal_delay_cost"] = _figs(b_an, w_an, ref, rep)
    out["builtin_gridlocks"]["builtin_routed_actuated_no_signal_delay_cost"] = _gridlock_summary(tr_an, b_an, city)
    out["routes_actuated_no_signal_delay_cost_vs_sumo"] = route_differs(T_an, routes, align(b_an, rep, n_bg),
                                                                        rep["trip_status"].values)
    # the lock of the completed-trips gap: its yield merge made a priority stream
    tr_pr = GridlockTrace()
    with PriorityMovement([LOCK_MOVEMENT]):
        b_pr, w_pr, _ = builtin_run(variant, trace=tr_pr)
    runs["builtin_routed_lock_merge_priority"] = _figs(b_pr, w_pr, ref, rep)
    out["builtin_gridlocks"]["builtin_routed_lock_merge_priority"] = _gridlock_summary(tr_pr, b_pr, city)
    out["builtin_gridlocks"].update(builtin_sumo_routes_cap=_gridlock_summary(tr_fc, b_fc, city),
                                    builtin_routed_cap=_gridlock_summary(tr_rc, b_rc, city))
    tids = {"sumo_micro_replica": np.arange(n_bg), "builtin_routed": align(b_rt, rep, n_bg),
            "builtin_sumo_routes": align(b_fx, rep, n_bg), "builtin_routed_cap": align(b_rc, rep, n_bg),
            "builtin_sumo_routes_cap": align(b_fc, rep, n_bg)}
    out["background_trips_aligned"] = {k: int((v >= 0).sum()) for k, v in tids.items()}
    out["long_stays"] = {k: long_stays(tr, TT, tids[k], city) for k, tr, TT in
                         (("builtin_routed", tr_rt, T_rt), ("builtin_sumo_routes", tr_fx, T_fx),
                          ("builtin_routed_cap", tr_rc, T_rc), ("builtin_sumo_routes_cap", tr_fc, T_fc))}
    stt = rep["trip_arrive"].values[:n_bg] - rep["trip_depart"].values[:n_bg]
    out["sumo_background_slower_than_3000_s"] = int((stt > 3000.0).sum())
    out["routes_routed_builtin_vs_sumo"] = route_differs(T_rt, routes, tids["builtin_routed"], sst)
    out["routes_fixed_builtin_vs_sumo"] = route_differs(T_fx, routes, tids["builtin_sumo_routes"], sst)
    out["routes_no_signal_delay_cost_vs_sumo"] = route_differs(T_nw, routes, align(b_nw, rep, n_bg), sst)
    out["builtin_gridlocks"]["builtin_routed_no_signal_delay_cost"] = _gridlock_summary(tr_nw, b_nw, city)
    # 3. the unfinished trips and the teleports
    end = float(rep["time"].values[-1])
    un = {"sumo_micro_replica": unfinished(rep, sumo_where(routes, n), tids["sumo_micro_replica"], city, end),
          "builtin_routed": unfinished(b_rt, builtin_where(T_rt), tids["builtin_routed"], city, end),
          "builtin_sumo_routes": unfinished(b_fx, builtin_where(T_fx), tids["builtin_sumo_routes"], city, end),
          "builtin_routed_cap": unfinished(b_rc, builtin_where(T_rc), tids["builtin_routed_cap"], city, end),
          "builtin_sumo_routes_cap": unfinished(b_fc, builtin_where(T_fc), tids["builtin_sumo_routes_cap"], city,
                                                end)}
    ids = {k: set(v.pop("_ids").tolist()) for k, v in un.items()}  # background trips only
    s_ids = ids["sumo_micro_replica"]
    for k in ("builtin_routed", "builtin_sumo_routes", "builtin_routed_cap", "builtin_sumo_routes_cap"):
        b = ids[k]
        un[k]["background_also_unfinished_in_sumo"] = len(b & s_ids)
        only = sorted(b - s_ids)
        tt = (rep["trip_arrive"].values - rep["trip_depart"].values)[only] if only else np.zeros(0)
        un[k]["background_only_here"] = len(only)
        un[k]["background_only_here_sumo_travel_time_median_s"] = float(np.nanmedian(tt)) if len(tt) else float("nan")
    common = ids["builtin_routed"] & ids["builtin_sumo_routes"]
    out["background_unfinished_in_both_builtin_runs"] = len(common)
    out["unfinished"] = un
    tel = read_teleports(nc.with_name(nc.name.replace(".nc", ".warnings.log")))
    lanes: dict[str, int] = {}
    reasons: dict[str, int] = {}
    for _, why, lane, _t in tel:
        e = lane.rsplit("_", 1)[0]
        lanes[e] = lanes.get(e, 0) + 1
        reasons[why] = reasons.get(why, 0) + 1
    tv = {int(v) for v, *_ in tel if v.isdigit()}
    out["sumo_teleports"] = {"count": len(tel), "reasons": reasons,
                             "edges": sorted(lanes.items(), key=lambda kv: -kv[1])[:8],
                             "teleported_and_unfinished": len(tv & s_ids),
                             "teleported_vehicles_unfinished_in_builtin": len(tv & ids["builtin_routed"])}
    t_rt = tids["builtin_routed"]
    ok = t_rt >= 0
    out["arrived_both_routed"] = int(((b_rt["trip_status"].values[t_rt[ok]] == ARRIVED) & (sst[:n_bg][ok] == ARRIVED)).sum())
    return out


_ROWS = [("mean_travel_time_s", "mean travel time (s)", "{:,.1f}"), ("p90_travel_time_s", "p90 travel time (s)", "{:,.1f}"),
         ("vehicle_hours", "vehicle-hours incl. unfinished (h)", "{:,.1f}"), ("trips", "trips due", "{:,.0f}"),
         ("trips_completed", "completed trips", "{:,.0f}"),
         ("gridlock_resolutions", "gridlock resolutions / teleports", "{:,.0f}"),
         ("geh5_vs_ref", "GEH<5 vs cached reference", "{:.1%}"), ("r_vs_ref", "r vs cached reference", "{:.3f}"),
         ("geh5_vs_rep", "GEH<5 vs replica", "{:.1%}"), ("r_vs_rep", "r vs replica", "{:.3f}"),
         ("wall_time_s", "wall time (s)", "{:,.1f}")]
_COLS = [("builtin_routed", "built-in routed"), ("builtin_sumo_routes", "built-in on SUMO's routes"),
         ("builtin_routed_cap", "built-in routed, movement cap."),
         ("builtin_sumo_routes_cap", "built-in on SUMO's routes, movement cap."),
         ("builtin_routed_no_signal_delay_cost", "built-in routed, no signal delay in route costs"),
         ("builtin_routed_lock_merge_priority", "built-in routed, lock merge priority"),
         ("builtin_sumo_routes_actuated", "built-in on SUMO's routes, actuated signals"),
         ("builtin_routed_actuated", "built-in routed, actuated signals"),
         ("builtin_routed_actuated_no_signal_delay_cost", "built-in routed, actuated, no signal delay in route costs"),
         ("sumo_meso_jc", "SUMO meso-jc"), ("sumo_micro_reference", "SUMO micro (reference)"),
         ("sumo_micro_replica", "SUMO micro (replica)"), ("sumo_micro_other_seed", "SUMO micro (other seed)")]


def _cell(fmt: str, v) -> str:
    if v is None or (isinstance(v, float) and not np.isfinite(v)):
        return "—"
    return fmt.format(v)


def format_result(res: dict) -> str:
    if "error" in res:
        return f"{res['variant']}: {res['error']}"
    runs = res["runs"]
    cols = [(k, lab) for k, lab in _COLS if k in runs]
    lines = [f"### Bad Hersfeld `{res['variant']}`: built-in on SUMO micro's own routes", "",
             "| measure | " + " | ".join(lab for _, lab in cols) + " |", "|---|" + "---|" * len(cols)]
    for key, label, fmt in _ROWS:
        lines.append(f"| {label} | " + " | ".join(_cell(fmt, runs[k].get(key)) for k, _ in cols) + " |")
    lines += ["", f"background trips matched in each run (departure, origin, destination): "
                  f"{json.dumps(res.get('background_trips_aligned'))}"]
    rr = res.get("replica_vs_reference")
    if rr:
        lines += ["", f"replica vs cached reference: GEH<5 {rr['geh5']:.1%}, r {rr['r']:.4f}, "
                      f"{rr['trips_same_arrival']:.1%} of trips with the same arrival time"]
    mp = {k: v for k, v in res["mapping"].items() if k != "routed_fallback_examples"}
    lines += ["", f"route mapping (built-in on SUMO's routes): {json.dumps(mp)}"]
    lines.append(f"movement capacity experiment (\"movement cap.\" columns): {json.dumps(res['capacity_set_vph'])} veh/h")
    for k in ("routes_routed_builtin_vs_sumo", "routes_fixed_builtin_vs_sumo", "routes_no_signal_delay_cost_vs_sumo",
              "routes_actuated_no_signal_delay_cost_vs_sumo"):
        e = res[k]
        lines.append(f"{k}: {e['route_differs_share']:.1%} of {e['vehicles_compared']:,} vehicles arrived in both "
                     f"drive another route than SUMO's (first link differs: {e['first_link_differs_share']:.1%})")
    lines += ["", "| signalised movement (SUMO passed more in an hour than the built-in's capacity) | built-in capacity "
                  "veh/h | SUMO max hour veh/h | SUMO vehicles (run) | built-in routed vehicles (run) |",
              "|---|---|---|---|---|"]
    for e in res.get("movement_gaps", []):
        lines.append(f"| {e['from']} -> {e['to']} | {e['builtin_capacity_vph']:.0f} | {e['sumo_max_hour_vph']:.0f} | "
                     f"{e['sumo_vehicles']} | {e['builtin_routed_vehicles']} |")
    lines += ["", "| unfinished at the end | " + " | ".join(res["unfinished"]) + " |", "|---|" + "---|" * len(res["unfinished"])]
    u = res["unfinished"]
    for key in ("due", "completed", "unfinished", "running", "waiting_to_enter", "background_due",
                "background_unfinished", "ev_emergency_due", "ev_emergency_unfinished",
                "ev_emergency_unfinished_departed_last_10_min", "background_also_unfinished_in_sumo",
                "background_only_here", "background_only_here_sumo_travel_time_median_s"):
        lines.append(f"| {key} | " + " | ".join(_cell("{:,.0f}", u[m].get(key)) for m in u) + " |")
    for m, e in u.items():
        lines.append(f"\n{m}: background unfinished departed at {e['background_unfinished_depart_s']} s; "
                     f"where they are (link: vehicles, end node, length m): "
                     + "; ".join(f"{t['link']}: {t['vehicles']}, {t['end_node']}, {_cell('{:.0f}', t['length_m'])}"
                                 for t in e["top_links"]))
    for k, wl in res.get("worst_links", {}).items():
        lines += ["", f"| worst links, {k} vs the replica | hour | GEH | built-in veh/h | SUMO micro veh/h | length m | "
                      f"lanes | end junction |", "|---|---|---|---|---|---|---|---|"]
        for e in wl:
            lines.append(f"| {e['link']} | {e['hour']} | {e['geh']:.1f} | {e['builtin_vph']:.0f} | {e['sumo_micro_vph']:.0f} | "
                         f"{e['length_m']:.0f} | {e['lanes']} | {e['end_node'][:40]}{' (signal)' if e['end_signal'] else ''} |")
    lines.append("")
    for k, e in res.get("long_stays", {}).items():
        lines.append(f"{k}: {e['vehicles']} background vehicles unfinished or slower than 3,000 s; longest stay "
                     f"(link: vehicles, median s): " + "; ".join(f"{a}: {n}, {m:.0f}" for a, n, m in e["links"]))
    lines.append(f"SUMO micro: {res.get('sumo_background_slower_than_3000_s')} background trips slower than 3,000 s")
    for k, g in res.get("builtin_gridlocks", {}).items():
        lines.append(f"{k} gridlock rule: {g['count']} (KPI {g['kpi']:.0f}, {g['traced']} traced), stood on -> moved "
                     f"to: " + "; ".join(f"{p}: {n}" for p, n in g["pairs"]))
    t = res["sumo_teleports"]
    lines += ["", f"SUMO teleports: {t['count']} ({json.dumps(t['reasons'])}); edges: {t['edges']}; teleported "
                  f"and unfinished: {t['teleported_and_unfinished']}; teleported in SUMO and unfinished in the "
                  f"built-in: {t['teleported_vehicles_unfinished_in_builtin']}",
              f"background trips unfinished in both built-in runs: {res['background_unfinished_in_both_builtin_runs']}"]
    return "\n".join(lines)


SWEEP_CITIES = {"bad_hersfeld": "main_road_closed", "bologna": "arterial_closed", "wildau": "arterial_closed"}


def routing_sweep(cities: list[str], ks: list[float]) -> list[dict]:
    """The routed built-in model of each city's baseline and closure, on the scenario's seed and on the other seed
    of the cached seeded SUMO micro references, with ``actuated_signals`` off / on and the signal delay in route
    costs scaled by each of ``ks``: GEH, r, mean, completed and gridlocks against SUMO micro of the same seed
    (cached references only), and the closure's change in vehicle-hours."""
    import xarray as xr

    from agents.traffic.compare import flow_agreement, run_figures
    from agents.traffic.reference import reference_key
    from twin.city import build_city
    from twin.engine import CityTwin
    from twin.scenario import load_scenario

    rows: list[dict[str, Any]] = []
    for name in cities:
        path = ROOT / "scenarios" / f"{name}.yaml"
        base = load_scenario(path)["baseline"]
        city = build_city(base.city, path.parent, base.name)
        for variant in ("baseline", SWEEP_CITIES[name]):
            refs: dict[int | None, Any] = {}
            ref_nc = REF_CACHE / f"{name}.{variant}.micro.{reference_key(path, variant, 'micro', city)}.nc"
            if ref_nc.exists():
                refs[None] = xr.load_dataset(ref_nc)
            for seeded in sorted(REF_CACHE.glob(f"{name}.{variant}.micro.seed*.nc"))[:1]:
                refs[int(seeded.name.split(".seed")[1].split(".")[0])] = xr.load_dataset(seeded)
            for seed, ref in refs.items():
                fm = run_figures(ref, 0.0)
                for act in (False, True):
                    for k in ks:
                        sc = load_scenario(path)[variant]
                        if seed is not None:
                            sc = sc.model_copy(update={"seed": seed})
                        sc = sc.model_copy()
                        sc._domains = dict(sc.domain_configs)
                        sc._domains["traffic"] = sc._domains["traffic"].model_copy(update={"actuated_signals": act})
                        with SignalDelayInRouting(k):
                            ds = CityTwin(sc, path.parent).run()
                        r, g, _ = flow_agreement(ds, ref)
                        f = run_figures(ds, 0.0)
                        rows.append({"city": name, "variant": variant, "seed": "scenario" if seed is None else seed,
                                     "actuated": act, "signal_delay_cost": k, "geh5": g, "r": r,
                                     "mean_pct": 100.0 * (f["mean_travel_time_s"] / fm["mean_travel_time_s"] - 1.0),
                                     "vehicle_hours": f["vehicle_hours"], "sumo_vehicle_hours": fm["vehicle_hours"],
                                     "completed": f["trips_completed"], "sumo_completed": fm["trips_completed"],
                                     "gridlocks": f["gridlock_resolutions"]})
    by = {(e["city"], e["seed"], e["actuated"], e["signal_delay_cost"], e["variant"] == "baseline"): e for e in rows}
    for e in rows:
        b = by.get((e["city"], e["seed"], e["actuated"], e["signal_delay_cost"], True))
        if e["variant"] != "baseline" and b is not None:
            e["closure_dvh_pct"] = 100.0 * (e["vehicle_hours"] / b["vehicle_hours"] - 1.0)
            e["sumo_closure_dvh_pct"] = 100.0 * (e["sumo_vehicle_hours"] / b["sumo_vehicle_hours"] - 1.0)
    return rows


def format_sweep(rows: list[dict]) -> str:
    lines = ["| city | variant | seed | actuated_signals | signal delay in route costs | GEH < 5 | r | mean vs SUMO | "
             "completed (SUMO) | gridlock res. | closure Δ vehicle-hours (SUMO) |", "|---|---|---|---|---|---|---|---|---|---|---|"]
    for e in rows:
        clo = (f"{e['closure_dvh_pct']:+.0f}% ({e['sumo_closure_dvh_pct']:+.0f}%)" if "closure_dvh_pct" in e else "")
        lines.append(f"| {e['city']} | {e['variant']} | {e['seed']} | {e['actuated']} | x{e['signal_delay_cost']:g} | "
                     f"{e['geh5']:.1%} | {e['r']:.3f} | {e['mean_pct']:+.1f}% | {e['completed']:,} ({e['sumo_completed']:,}) | "
                     f"{e['gridlocks']:,.0f} | {clo} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--variant", default="baseline", choices=("baseline", "main_road_closed"))
    ap.add_argument("--cached-only", action="store_true", help="run no SUMO: the replica must be cached")
    ap.add_argument("--routing-sweep", default=None, metavar="CITIES",
                    help="instead: the routed built-in model with actuated_signals off/on and the signal delay in "
                         "route costs scaled, on comma-separated cities (bad_hersfeld,bologna,wildau), both seeds, "
                         "against the cached SUMO micro references")
    ap.add_argument("--ks", default="1,0.5,0", help="signal delay scales for --routing-sweep")
    args = ap.parse_args(argv)
    if args.routing_sweep:
        names = [c.strip() for c in args.routing_sweep.split(",") if c.strip()]
        bad = [c for c in names if c not in SWEEP_CITIES]
        if bad:
            print(f"--routing-sweep: {', '.join(bad)} — choose from {', '.join(SWEEP_CITIES)}", file=sys.stderr)
            return 2
        rows = routing_sweep(names, [float(x) for x in args.ks.split(",")])
        print(format_sweep(rows))
        from agents.traffic.compare import _json_safe

        print(json.dumps(_json_safe({"validation": "bh_routes_routing_sweep", "rows": rows})))
        return 0
    res = experiment(args.variant, args.cached_only)
    print(format_result(res))
    from agents.traffic.compare import _json_safe

    print(json.dumps(_json_safe({"validation": "bh_routes", **res}), default=str))
    return 0 if "error" not in res else 1


if __name__ == "__main__" and len(sys.argv) == 4 and sys.argv[1] == "--child":
    w = run_replica(sys.argv[2], Path(sys.argv[3]))
    print(f"bad_hersfeld {sys.argv[2]} replica on SUMO micro: {w:.1f} s")
    sys.exit(0)


if __name__ == "__main__" and not (len(sys.argv) == 4 and sys.argv[1] == "--child"):
    sys.exit(main())
