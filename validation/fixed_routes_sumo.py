"""Fixed-route SUMO runs for validation/fixed_routes.py: each trip on its route file's path, no rerouting device.

A run is one city's baseline in one mode (``micro``, or ``meso_jc``: ``--mesosim true --meso-junction-control
true``) with the reference runs' network, signal programs, vType ``car``, ``departLane="best"``, step length,
seed and edgeData period, plus laneData (per-lane speeds for the junction analysis). It runs in a child process
of its own process group (time-limited, killed with SUMO on timeout or interrupt) and is cached in
``results/.cache/fixed_routes/`` under a SHA-256 key over its exact inputs: the scenario, the data files, the
city topology, the SUMO version, the mode, the trips and paths given (their digest), and the code of this module
and of the SUMO input/output helpers. The fidelity references' cache and keys are not touched.

Run one by hand: ``python validation/fixed_routes_sumo.py --child {bologna,wildau} {micro,meso_jc} OUT.nc``.
"""
from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

CITIES = {"bologna": "scenarios/bologna.yaml", "wildau": "scenarios/wildau.yaml"}
# SUMO modes on fixed routes: extra options (no rerouting device in either); "micro_routed" is the routed
# reference set-up again (trips from/to the free-flow path's end links, rerouting device at insertion, a
# reroute_share of car_rr vehicles) with --vehroute-output, to measure how far SUMO's own routes leave the file's
SUMO_MODES = {"micro": [], "meso_jc": ["--mesosim", "true", "--meso-junction-control", "true"],
              "micro_routed": ["--device.rerouting.probability", "1", "--device.rerouting.period", "0"]}
CACHE = ROOT / "results" / ".cache" / "fixed_routes"
TIMEOUT_S = 3600.0
# the code of the SUMO side of a run (the trips and paths it is given are in the key by their digest, not by
# the code that found them)
_CODE = ["validation/fixed_routes_sumo.py", "agents/traffic/sumo_setup.py", "agents/traffic/sumo_io.py",
         "agents/traffic/schema.py"]


# ====================================================================== inputs
def _scenario(name: str):
    """(path, resolved baseline scenario, city graph) of a validation city."""
    from twin.city import build_city
    from twin.scenario import load_scenario

    path = ROOT / CITIES[name]
    sc = load_scenario(path)["baseline"]
    return path, sc, build_city(sc.city, path.parent, sc.name)


def _resolve(path: Path):
    from twin.scenario import resolve_data_path

    return lambda p: resolve_data_path(p, path.parent)


def city_demand_paths(name: str, sc=None, city=None, path=None) -> tuple[dict, list, dict]:
    """(demand trips as the run generates them, their file paths or None, mapping summary) of a city's baseline:
    the same matching as the built-in model's ``traffic.routes_file`` (``file_routes.match_file_paths``)."""
    from agents.traffic.file_routes import match_file_paths
    from twin.demand import generate_trips

    if sc is None:
        path, sc, city = _scenario(name)
    res = _resolve(path)
    dem = generate_trips(sc.demand, city, np.random.default_rng(0), sc.time.duration_s, sc.time.start_hour, res)
    paths, summary = match_file_paths(res(sc.demand.trips_file), city, dem, 3600.0 * sc.time.start_hour)
    return dem, paths, summary


def paths_digest(dem: dict, paths: list) -> str:
    """SHA-256 of the trips and the paths SUMO is given (what the route file of a run holds)."""
    h = hashlib.sha256()
    for k in ("origin", "destination", "depart_s"):
        h.update(np.ascontiguousarray(dem[k]).tobytes())
    for p in paths:
        h.update(b"-" if p is None else np.ascontiguousarray(p, np.int32).tobytes() + b";")
    return h.hexdigest()


def cache_key(name: str, mode: str) -> str:
    """SHA-256 (24 hex) over everything a fixed-route SUMO run depends on."""
    import importlib.metadata as md

    from agents.traffic.reference import _data_files, _sha_file, _topology_digest

    path, sc, city = _scenario(name)
    dem, paths, _ = city_demand_paths(name, sc, city, path)
    tr = sc.domain_configs["traffic"].model_dump(mode="json")
    h = hashlib.sha256()
    for rel in _CODE:
        h.update(rel.encode())
        h.update((ROOT / rel).read_bytes())
    doc = {"scenario": {k: v for k, v in sc.model_dump(mode="json").items()
                        if k in ("name", "seed", "city", "time", "demand")},
           "sumo_options": tr.get("sumo"), "mode": mode, "mode_args": SUMO_MODES[mode],
           "sumo": md.version("eclipse-sumo"), "files": {p.name: _sha_file(p) for p in _data_files(sc, path.parent)},
           "topology": _topology_digest(city), "paths": paths_digest(dem, paths), "code": h.hexdigest()}
    return hashlib.sha256(json.dumps(doc, sort_keys=True, default=str).encode()).hexdigest()[:24]


# ====================================================================== the SUMO run (child process)
def _write_routes(out: Path, edge_ids: list[str], dem: dict, paths: list, first: np.ndarray, last: np.ndarray,
                  reroute_period_s: float, rr: np.ndarray | None = None) -> int:
    """The reference runs' vTypes and one ``<vehicle>`` per trip on its path (``<trip>`` for routed fallbacks);
    with ``rr`` (routed mode) every trip a ``<trip>``, of type ``car_rr`` where ``rr``."""
    from xml.sax.saxutils import quoteattr

    from agents.traffic.sumo_setup import write_vtypes_and_trips

    none = np.zeros(0)
    write_vtypes_and_trips(out, edge_ids, none, none, none, none, none, reroute_period_s)
    head = out.read_text(encoding="utf-8").replace("</routes>\n", "")
    dep = dem["depart_s"]
    n = 0
    with open(out, "w", encoding="utf-8") as f:
        f.write(head)
        for i in np.argsort(dep, kind="stable"):
            p = paths[i] if rr is None else None
            typ = "car_rr" if rr is not None and rr[i] else "car"
            if p is not None:
                edges = " ".join(edge_ids[k] for k in p)
                f.write(f'  <vehicle id="{i}" type="car" depart="{dep[i]:.2f}" departLane="best">'
                        f'<route edges={quoteattr(edges)}/></vehicle>\n')
                n += 1
            elif first[i] >= 0:
                f.write(f'  <trip id="{i}" type="{typ}" depart="{dep[i]:.2f}" departLane="best" '
                        f'from={quoteattr(edge_ids[first[i]])} to={quoteattr(edge_ids[last[i]])}/>\n')
        f.write("</routes>\n")
    return n


def _write_outputs_add(out: Path, edgedata: Path, lanedata: Path, period_s: float) -> Path:
    from xml.sax.saxutils import quoteattr

    with open(out, "w", encoding="utf-8") as f:
        f.write(f'<additional>\n  <edgeData id="citytwin" file={quoteattr(str(edgedata))} period="{period_s:g}" '
                f'excludeEmpty="true"/>\n  <laneData id="citytwin_lanes" file={quoteattr(str(lanedata))} '
                f'period="{period_s:g}" excludeEmpty="true"/>\n</additional>\n')
    return out


def _read_lanedata(path: Path, ends: np.ndarray) -> dict:
    """Per interval and lane: vehicles left (left + arrived), sampled seconds, mean speed (m/s)."""
    import sumolib

    out: dict = {}
    for iv in sumolib.xml.parse(str(path), "interval"):
        k = int(np.argmin(np.abs(ends - float(iv.end))))
        for e in iv.getChild("edge") if iv.hasChild("edge") else []:
            for ln in e.getChild("lane") if e.hasChild("lane") else []:
                d = out.setdefault(ln.id, np.zeros((len(ends), 3)))
                d[k, 0] = float(ln.getAttributeSecure("left", 0) or 0) + float(ln.getAttributeSecure("arrived", 0) or 0)
                d[k, 1] = float(ln.getAttributeSecure("sampledSeconds", 0) or 0)
                d[k, 2] = float(ln.getAttributeSecure("speed", "nan") or "nan")
    return out


def _read_vehroutes(path: Path) -> dict[int, list[str]]:
    """{vehicle id: edges of its last route} from SUMO's vehroute output (the route it finally drove)."""
    import xml.etree.ElementTree as ET

    out: dict[int, list[str]] = {}
    if not path.exists():
        return out
    for _, el in ET.iterparse(path):
        if el.tag == "vehicle":
            rs = el.findall(".//route")
            if rs and el.get("id", "").isdigit():
                out[int(el.get("id"))] = rs[-1].get("edges", "").split()
            el.clear()
    return out


def run_fixed_sumo(name: str, mode: str, out_nc: Path) -> float:
    """One fixed-route SUMO run of a city's baseline in ``mode``; results (the fidelity schema) to ``out_nc``."""
    import tempfile
    import xml.etree.ElementTree as ET

    from agents.traffic.schema import ARRIVED, PENDING, RUNNING, traffic_dataset
    from agents.traffic.sumo_io import read_edgedata, read_tripinfo
    from agents.traffic.sumo_options import checked_additional, normalise_extra_args
    from agents.traffic.sumo_setup import check_sumo, freeflow_od_links, prepare_network, sumo_binary
    from twin.context import record_times

    version = check_sumo("libsumo")
    path, sc, city = _scenario(name)
    tc = sc.domain_configs["traffic"]
    dem, paths, summary = city_demand_paths(name, sc, city, path)
    a = city.arrays
    fft = a.length_m / np.maximum(a.speed_mps, 0.1)
    first, last, nlinks, tff = freeflow_od_links(city, fft, dem["origin"], dem["destination"])
    work = Path(tempfile.mkdtemp(prefix="citytwin_fixed_"))
    net = prepare_network(city, work)
    routes = work / "fixed.rou.xml"
    routed = mode == "micro_routed"
    rr = np.random.default_rng(int(sc.seed) % 2**32).random(len(first)) < tc.reroute_share if routed else None
    n_fixed = _write_routes(routes, net.edge_ids, dem, paths, first, last, tc.reroute_interval_s, rr)
    vehroute = work / "vehroutes.xml"
    edgedata, lanedata, tripinfo, stats = work / "edgedata.xml", work / "lanedata.xml", work / "tripinfo.xml", \
        work / "stats.xml"
    dur, rec = float(sc.time.duration_s), float(sc.time.record_interval_s)
    add = _write_outputs_add(work / "outputs.add.xml", edgedata, lanedata, rec)
    extra = checked_additional([_resolve(path)(p) for p in tc.sumo.additional_files])
    cmd = [sumo_binary(), "-n", str(net.net_file), "-r", str(routes), "-a", ",".join([str(add), *extra]),
           "--step-length", f"{tc.sumo.step_length_s:g}", "--end", f"{dur:g}", "--seed", str(int(sc.seed) % 2**31),
           "--tripinfo-output", str(tripinfo), "--tripinfo-output.write-unfinished", "true",
           "--statistic-output", str(stats), "--ignore-route-errors", "true", "--no-step-log", "true",
           "--no-warnings", "true", "--duration-log.disable", "true", "--verbose", "false",
           *SUMO_MODES[mode],
           *(["--vehroute-output", str(vehroute), "--vehroute-output.write-unfinished", "true"] if routed else []),
           *normalise_extra_args(tc.sumo.extra_args)]
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=TIMEOUT_S)
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise RuntimeError(f"SUMO {mode} exit {proc.returncode}: {proc.stderr[-800:]}")
    ends = record_times(dur, rec)
    edge_index = {e: i for i, e in enumerate(net.edge_ids)}
    ed, _ = read_edgedata(edgedata, edge_index, ends)
    ti, _ = read_tripinfo(tripinfo)
    n = len(dem["origin"])
    arrive = np.full(n, np.nan)
    status = np.full(n, PENDING, np.int8)
    dist = np.zeros(n)
    for v, (d0, arr, rl, done) in ti.items():
        if v >= n:
            continue
        dist[v] = rl
        if done and arr <= dur + 1e-9:
            arrive[v], status[v] = arr, ARRIVED
        elif np.isfinite(d0) and d0 >= 0:
            status[v] = RUNNING
    teleports = 0
    try:
        tel = ET.parse(stats).getroot().find("teleports")
        teleports = int(tel.get("total", 0)) if tel is not None else 0
    except (ET.ParseError, FileNotFoundError):
        pass
    span = np.diff(np.concatenate([[0.0], ends]))[:, None]
    found = ed["found"][:, None]
    ffs = (a.length_m / fft)[None, :]
    with np.errstate(divide="ignore", invalid="ignore"):
        speed = np.where(ed["sampled_s"] > 0, np.minimum(ed["dist_m"] / ed["sampled_s"], ffs), ffs)
    nan = np.float32(np.nan)
    dep = dem["depart_s"]
    series = {"flow": np.where(found, ed["exits"] * 3600.0 / span, nan).astype(np.float32),
              "speed": np.where(found, speed, nan).astype(np.float32),
              "vehicles": np.where(found, ed["sampled_s"] / span, nan).astype(np.float32),
              "queue": np.full((len(ends), a.n_links), nan, np.float32), "capf": np.ones((len(ends), a.n_links),
                                                                                         np.float32),
              "running": [int(((dep <= t) & ~(arrive <= t)).sum()) for t in ends],
              "completed": [int((arrive <= t).sum()) for t in ends], "waiting": [0] * len(ends)}
    trips = {"origin": dem["origin"], "destination": dem["destination"], "depart": dep, "arrive": arrive,
             "status": status, "freeflow_time": tff, "distance": dist, "links": nlinks,
             "kind": np.zeros(n, np.int8)}
    ds = traffic_dataset(city, fft_s=fft, capacity_vph=a.capacity_vph, rec_t=list(ends), series=series, trips=trips)
    done = status == ARRIVED
    ds["kpi_traffic_gridlock_resolutions"] = float(teleports)
    ds["kpi_traffic_vehicle_km"] = float(dist.sum() / 1000.0)
    lanes = _read_lanedata(lanedata, ends)
    if lanes:
        lids = sorted(lanes)
        arr3 = np.stack([lanes[k] for k in lids], axis=1)  # [time, lane, 3]
        ds = ds.assign_coords(lane=np.array(lids, dtype=str))
        ds["lane_exits"] = (("time", "lane"), arr3[:, :, 0].astype(np.float32))
        ds["lane_sampled_s"] = (("time", "lane"), arr3[:, :, 1].astype(np.float32))
        ds["lane_speed"] = (("time", "lane"), arr3[:, :, 2].astype(np.float32))
    if routed:  # SUMO's final route of each vehicle against the file's path
        differs = np.full(n, -1, np.int8)
        driven = np.full(n, "", dtype=object)
        index = {e: i for i, e in enumerate(net.edge_ids)}
        for v, edges in _read_vehroutes(vehroute).items():
            if v >= n:
                continue
            driven[v] = " ".join(str(index.get(e, -1)) for e in edges)  # city link indices
            if paths[v] is not None:
                differs[v] = int(edges != [net.edge_ids[k] for k in paths[v]])
        ds["trip_route_differs"] = (("trip",), differs)
        ds["trip_sumo_route"] = (("trip",), driven.astype(str))
    ds.attrs.update(wall_time_s=wall, sumo_version=version, mode=mode, city=name, fixed_routes=n_fixed,
                    routed_fallback=int(sum(p is None for p in paths)), mapping=json.dumps(summary),
                    teleports=teleports, completed=int(done.sum()),
                    created=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))
    tmp = out_nc.with_name(f".{out_nc.name}.{os.getpid()}.tmp")
    ds.to_netcdf(tmp)
    os.replace(tmp, out_nc)
    return wall


class SumoRun:
    """One fixed-route SUMO run: its results (None if it failed), where from, and why not."""

    def __init__(self, ds, cached: bool, key: str, error: str = "") -> None:
        self.ds, self.cached, self.key, self.error = ds, cached, key, error
        self.wall_s = float(ds.attrs["wall_time_s"]) if ds is not None else float("nan")


_CHILDREN: set[subprocess.Popen] = set()


def _kill_children(*_):
    for p in list(_CHILDREN):
        try:
            os.killpg(p.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass


def fixed_sumo(name: str, mode: str, cached_only: bool = False, timeout_s: float = TIMEOUT_S) -> SumoRun:
    """The cached fixed-route run, or (unless ``cached_only``) a new one in a child process of its own group."""
    import xarray as xr

    CACHE.mkdir(parents=True, exist_ok=True)
    key = cache_key(name, mode)
    nc = CACHE / f"{name}.baseline.fixed.{mode}.{key}.nc"
    if nc.exists():
        return SumoRun(xr.load_dataset(nc), True, key)
    if cached_only:
        return SumoRun(None, False, key, "not in the cache (--cached-only)")
    cmd = [sys.executable, str(Path(__file__).resolve()), "--child", name, mode, str(nc)]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    _CHILDREN.add(proc)
    try:
        _, err = proc.communicate(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        return SumoRun(None, False, key, f"SUMO {mode} exceeded {timeout_s:.0f} s (killed)")
    finally:
        _CHILDREN.discard(proc)
    if proc.returncode != 0 or not nc.exists():
        return SumoRun(None, False, key, f"SUMO {mode} child failed (exit {proc.returncode}): "
                                         + " | ".join(err.strip().splitlines()[-3:]))
    return SumoRun(xr.load_dataset(nc), False, key)


if __name__ == "__main__" and len(sys.argv) == 5 and sys.argv[1] == "--child":
    if sys.argv[2] not in CITIES or sys.argv[3] not in SUMO_MODES:
        print(f"usage: fixed_routes_sumo.py --child {{{','.join(CITIES)}}} {{{','.join(SUMO_MODES)}}} OUT.nc",
              file=sys.stderr)
        sys.exit(2)
    w = run_fixed_sumo(sys.argv[2], sys.argv[3], Path(sys.argv[4]))
    print(f"{sys.argv[2]} fixed routes on SUMO {sys.argv[3]}: {w:.1f} s")
    sys.exit(0)
