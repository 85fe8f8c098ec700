"""What-if runs from the dashboard: bounded named parameters per template, a bounded queue, one run at a time.

The page sends *parameters*, never documents: each template has named fields with bounds (:data:`LIMITS`),
and the override built from them may only touch that template's keys (:data:`TEMPLATE_KEYS`). No
``backend``, no ``sumo.*``, no file paths and no free YAML come from the web. A run keeps the loaded
results' city, duration and back-end, and at most doubles their demand (:func:`check_limits`).

A run loads the baseline scenario recorded in the results file (``run_scenario_json``), deep-merges the
override as a new variant, validates it with ``twin.scenario.resolve_variants`` (and the domains' city
checks), and queues it (:func:`submit`). One worker thread runs one job at a time
(the run service, ``twin.run.run_one(..., progress=cb)``), writes ``<scenario>__<variant>.nc`` next to the source file
with ``twin.results.write_atomic``, and stops a job at its next progress call when it is cancelled or runs
longer than :data:`MAX_RUN_WALL_S`. The page polls the job with a ``dcc.Interval``.
"""
from __future__ import annotations

import collections
import math
import re
import threading
import time
import traceback
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from dashboards import data as D
from dashboards.safety import public_text

__all__ = ["TEMPLATES", "LIMITS", "TEMPLATE_KEYS", "build_override", "check_limits", "prepare", "submit", "start",
           "cancel", "job", "FIELD_KEYS", "Invalid", "set_enabled", "enabled", "public_text", "MAX_QUEUED",
           "MAX_DEMAND_FACTOR"]

TEMPLATES = {
    "closure": "Close or narrow a road (traffic)",
    "demand": "More (or less) traffic demand",
    "chargers": "Chargers, EV share, load management (EV)",
    "station": "Another emergency station",
}

MAX_DEMAND_FACTOR = 2.0  # a what-if from the page at most doubles the loaded results' demand
MAX_QUEUED = 3           # jobs waiting behind the running one; more are refused
MAX_RUN_WALL_S = 1800.0  # a run from the page is stopped after 30 min of wall time
EV_POLICIES = ("uncontrolled", "fcfs", "equal", "edf", "llf")
EM_KINDS = ("ambulance", "fire")

# (template, parameter) -> (label, lo, hi, whole number?) ; the page shows these bounds
LIMITS: dict[tuple[str, str], tuple[str, float, float, bool]] = {
    ("closure", "start_min"): ("start (minutes after the start)", 0, 7 * 1440, False),  # and < the run's duration
    ("closure", "factor"): ("capacity factor", 0.0, 1.0, False),
    ("demand", "scale"): ("demand factor", 0.0, MAX_DEMAND_FACTOR, False),
    ("chargers", "min_plugs"): ("minimum plugs per station", 1, 20, True),
    ("chargers", "plugs"): ("plugs", 1, 20, True),
    ("chargers", "power_kw"): ("power per plug (kW)", 3.0, 350.0, False),
    ("chargers", "share"): ("EV share of car trips", 0.0, 1.0, False),
    ("chargers", "grid_limit_kw"): ("grid limit (kW)", 10.0, 100_000.0, False),
    ("station", "units"): ("units", 1, 10, True),
}

# the only scenario keys a template's override may set (dotted paths)
TEMPLATE_KEYS = {
    "closure": {"traffic.closures"},
    "demand": {"demand.scale"},
    "chargers": {"ev.min_plugs", "ev.extra_stations", "ev.share", "ev.policy", "ev.grid_limit_kw"},
    "station": {"emergency.extra_stations"},
}
_ID = re.compile(r"[A-Za-z0-9_.:#>/+-]{1,120}")  # link and node ids of city graphs (SUMO and OSM ids included)

# message key fragments -> form field id (first match wins)
FIELD_KEYS = [
    ("closures", "capacity_factor", "wi-closure-factor"), ("closures", "start_s", "wi-closure-start"),
    ("closures", "link", "wi-closure-link"), ("closures", "", "wi-closure-link"),
    ("demand.scale", "", "wi-demand-scale"), ("demand", "", "wi-demand-scale"),
    ("ev.min_plugs", "", "wi-ev-min-plugs"), ("ev.extra_stations", "plugs", "wi-ev-plugs"),
    ("ev.extra_stations", "power_kw", "wi-ev-power"), ("ev.extra_stations", "", "wi-ev-node"),
    ("ev.share", "", "wi-ev-share"), ("ev.policy", "", "wi-ev-policy"), ("ev.grid_limit_kw", "", "wi-ev-grid"),
    ("emergency.extra_stations", "units", "wi-em-units"), ("emergency.extra_stations", "", "wi-em-node"),
    ("invalid variant name", "", "wi-name"),
]

_state = {"enabled": True}


def set_enabled(on: bool) -> None:
    """Turn what-if runs on or off for this server process (``run_scenario.py dashboard --no-whatif``)."""
    _state["enabled"] = bool(on)


def enabled() -> bool:
    return bool(_state["enabled"])


class Invalid(Exception):
    """Validation failed: ``errors`` maps a form field id (or "general") to its messages."""

    def __init__(self, errors: dict[str, list[str]]) -> None:
        self.errors = errors
        super().__init__("; ".join(m for ms in errors.values() for m in ms))


def _num(errors, fid, value, template, key, hi=None):
    """A bounded number from a form value (bounds from :data:`LIMITS`, ``hi`` tightens the upper one)."""
    label, lo, top, integer = LIMITS[(template, key)]
    top = top if hi is None else min(top, hi)
    if isinstance(value, bool) or not isinstance(value, (int, float, str)) or (isinstance(value, str) and len(value) > 40):
        errors.setdefault(fid, []).append(f"{label}: enter a number")
        return None
    try:
        x = float(value)
    except (TypeError, ValueError):
        errors.setdefault(fid, []).append(f"{label}: enter a number")
        return None
    if not math.isfinite(x):
        errors.setdefault(fid, []).append(f"{label}: enter a number")
        return None
    if integer and x != int(x):
        errors.setdefault(fid, []).append(f"{label}: enter a whole number")
        return None
    if x < lo or x > top:
        errors.setdefault(fid, []).append(f"{label}: must be between {lo:g} and {top:g}")
        return None
    return int(x) if integer else x


def _ident(errors, fid, value, what, required=True) -> str | None:
    """A link or node id from a form value: a short string of id characters (checked against the city later)."""
    v = value.strip() if isinstance(value, str) else ("" if value is None else None)
    if v is None or (v and not _ID.fullmatch(v)):
        errors.setdefault(fid, []).append(f"{what}: use an id of the city (letters, digits and _ . : # > / + -, "
                                          "at most 120 characters)")
        return None
    if not v and required:
        errors.setdefault(fid, []).append(f"enter the {what}")
        return None
    return v or None


def _choice(errors, fid, value, allowed, what, default=None):
    if value in (None, "") and default is not None:
        return default
    if value not in allowed:
        errors.setdefault(fid, []).append(f"{what}: choose one of {', '.join(allowed)}")
        return None
    return value


def build_override(template: str, p: dict, base: dict) -> dict:
    """The scenario override of a template from form values ``p``; raise :class:`Invalid` per field.

    Only the parameters of :data:`LIMITS` are read; anything else in ``p`` is ignored.
    """
    errors: dict[str, list[str]] = {}
    over: dict = {}
    if not isinstance(p, dict):
        p = {}
    duration_min = float((base.get("time") or {}).get("duration_s", 3600.0)) / 60.0
    if template == "closure":
        link = _ident(errors, "wi-closure-link", p.get("link"), "link id (click one on the Traffic map to see ids)")
        start_min = _num(errors, "wi-closure-start", p.get("start_min", 0), "closure", "start_min",
                         hi=max(duration_min - 1.0, 0.0))
        factor = _num(errors, "wi-closure-factor", p.get("factor", 0), "closure", "factor")
        if not errors:
            old = list(((base.get("traffic") or {}).get("closures")) or [])
            over = {"traffic": {"closures": old + [{"link": link, "start_s": start_min * 60.0,
                                                    "capacity_factor": factor}]}}
    elif template == "demand":
        scale = _num(errors, "wi-demand-scale", p.get("scale"), "demand", "scale")
        if scale is not None:
            over = {"demand": {"scale": scale * float((base.get("demand") or {}).get("scale", 1.0))}}
    elif template == "chargers":
        if not base.get("ev"):
            errors.setdefault("wi-ev-node", []).append("EV charging was not simulated in this scenario")
        ev: dict = {}
        mp = _num(errors, "wi-ev-min-plugs", p.get("min_plugs", 1), "chargers", "min_plugs")
        if mp is not None:
            ev["min_plugs"] = mp
        node = _ident(errors, "wi-ev-node", p.get("node"), "node of the new station", required=False)
        if node:
            plugs = _num(errors, "wi-ev-plugs", p.get("plugs", 2), "chargers", "plugs")
            power = _num(errors, "wi-ev-power", p.get("power_kw", 50), "chargers", "power_kw")
            old = list((base.get("ev") or {}).get("extra_stations") or [])
            ev["extra_stations"] = old + [{"node": node, "plugs": plugs, "power_kw": power}]
        if p.get("share") not in (None, ""):
            ev["share"] = _num(errors, "wi-ev-share", p.get("share"), "chargers", "share")
        if p.get("policy") not in (None, ""):
            ev["policy"] = _choice(errors, "wi-ev-policy", p.get("policy"), EV_POLICIES, "charging policy")
        if p.get("grid_limit_kw") not in (None, ""):
            ev["grid_limit_kw"] = _num(errors, "wi-ev-grid", p.get("grid_limit_kw"), "chargers", "grid_limit_kw")
        if not errors:
            over = {"ev": ev}
    elif template == "station":
        if not base.get("emergency"):
            errors.setdefault("wi-em-node", []).append("emergency response was not simulated in this scenario")
        node = _ident(errors, "wi-em-node", p.get("node"), "node id of the new station")
        units = _num(errors, "wi-em-units", p.get("units", 1), "station", "units")
        kind = _choice(errors, "general", p.get("kind"), EM_KINDS, "kind", default="ambulance")
        if not errors:
            old = list((base.get("emergency") or {}).get("extra_stations") or [])
            over = {"emergency": {"extra_stations": old + [{"name": f"new {kind} station", "node": node, "kind": kind,
                                                             "units": [{"type": kind, "count": units}]}]}}
    else:  # (a str not in TEMPLATES; prepare refuses other types first)
        errors.setdefault("general", []).append(
            f"unknown template {str(template)[:40]!r}; choose one of {', '.join(TEMPLATES)}")
    if errors:
        raise Invalid(errors)
    _keys_allowed(template, over)
    return over


def _leaf_keys(d: dict, pre: str = "") -> list[str]:
    out = []
    for k, v in d.items():
        key = f"{pre}{k}"
        out += _leaf_keys(v, key + ".") if isinstance(v, dict) else [key]
    return out


def _keys_allowed(template: str, over: dict) -> None:
    """Refuse an override touching keys outside its template's list (a second line behind the form code)."""
    bad = [k for k in _leaf_keys(over) if k not in TEMPLATE_KEYS.get(template, set())]
    if bad:
        raise Invalid({"general": [f"template {template!r} may not set {', '.join(bad)}"]})


def check_limits(base_sc, sc) -> list[str]:
    """What a run from the page may not change against its baseline: city, time, back-end, files, outputs,
    and demand above ×:data:`MAX_DEMAND_FACTOR`. Returns the violations (empty when within limits)."""
    errs = []
    for key in ("city", "time", "outputs", "seed"):
        if getattr(sc, key) != getattr(base_sc, key):
            errs.append(f"{key}: a what-if from the dashboard keeps the loaded results' {key}")
    d0, d1 = base_sc.demand, sc.demand
    if (d1.trips, d1.od_file, d1.trips_file, d1.start_s, d1.end_s) != (d0.trips, d0.od_file, d0.trips_file,
                                                                        d0.start_s, d0.end_s):
        errs.append("demand: only demand.scale may change from the dashboard")
    if d1.scale > MAX_DEMAND_FACTOR * d0.scale + 1e-12:
        errs.append(f"demand.scale: at most {MAX_DEMAND_FACTOR:g} × the loaded results' demand")
    t0, t1 = base_sc.domain_configs.get("traffic"), sc.domain_configs.get("traffic")
    if t0 is not None and t1 is not None and (t1.backend != t0.backend or t1.sumo != t0.sumo):
        errs.append("traffic: a what-if from the dashboard keeps the loaded results' back-end and SUMO options")
    if set(sc.domain_configs) - set(base_sc.domain_configs):
        errs.append("a what-if from the dashboard cannot add domains")
    return errs


def _field_for(message: str, template: str) -> str:
    for a, b, fid in FIELD_KEYS:
        if a in message and b in message:
            return fid
    return "general"


def scenario_dir_for(name: str, fallback: Path, recorded: str | None = None) -> Path:
    """The folder of the scenario file called ``name`` (its data paths are relative to it): the one the results
    recorded (attr ``scenario_dir``) when it lies inside the project, else found by the scenario's name."""
    from twin.scenario import PROJECT_ROOT

    if recorded:
        rec = Path(recorded).resolve()
        if rec.is_dir() and (rec == PROJECT_ROOT or PROJECT_ROOT in rec.parents):
            return rec
    for p in sorted((PROJECT_ROOT / "scenarios").rglob("*.y*ml")):
        try:
            head = p.read_text(encoding="utf-8", errors="ignore")[:4000]
        except OSError:
            continue
        if re.search(rf"^name:\s*['\"]?{re.escape(name)}['\"]?\s*$", head, re.M):
            return p.parent
    return fallback


def prepare(results_path: Path, variant_name: str, template: str, params: dict):
    """Validate a what-if: return (Scenario, scenario_dir, city, out_path); raise :class:`Invalid`."""
    from twin.scenario import ScenarioError, resolve_variants

    name = variant_name.strip() if isinstance(variant_name, str) else ""
    errors: dict[str, list[str]] = {}
    if not enabled():
        raise Invalid({"general": ["what-if runs are turned off on this server (dashboard --no-whatif)"]})
    if not isinstance(template, str) or template not in TEMPLATES:
        raise Invalid({"general": [f"unknown template {str(template)[:40]!r}; choose one of {', '.join(TEMPLATES)}"]})
    if not re.fullmatch(r"[A-Za-z0-9_-]{1,60}", name) or name == "baseline":
        errors["wi-name"] = ["use 1-60 letters, digits, '-' or '_' (not 'baseline')"]
    ds = D.load(results_path)
    base = D.scenario_doc(ds, "baseline")
    if base is None:
        raise Invalid({"general": [f"{results_path.name} does not record its baseline scenario; "
                                   "re-run it with this CityTwin version"]})
    base = {k: v for k, v in base.items() if k not in ("variant", "variant_description")}
    if name in [str(v) for v in ds["variant"].values]:
        errors.setdefault("wi-name", []).append(f"{name!r} already exists in {results_path.name}")
    try:
        over = build_override(template, params, base)
    except Invalid as exc:
        for k, v in exc.errors.items():
            errors.setdefault(k, []).extend(v)
        over = {}
    if errors:
        raise Invalid(errors)
    scen_dir = scenario_dir_for(str(base.get("name", "")), results_path.parent, ds.attrs.get("scenario_dir"))
    doc = dict(base)
    doc["variants"] = {name: {"description": f"what-if from the dashboard: {TEMPLATES[template]}", **over}}
    roots = (results_path.parent, scen_dir)
    try:
        both = resolve_variants(doc, scen_dir / f"{base.get('name', 'scenario')}.yaml")
    except ScenarioError as exc:
        for m in exc.messages:
            errors.setdefault(_field_for(m, template), []).append(public_text(m.replace(f"variants.{name}.", ""), roots))
        raise Invalid(errors) from None
    sc = both[name]
    limits = check_limits(both["baseline"], sc)
    if limits:
        raise Invalid({"general": limits})
    from twin.city import build_city

    city = build_city(sc.city, scen_dir, sc.name)
    for dname, cfg in sc.domain_configs.items():
        check = getattr(cfg, "city_errors", None)
        if check is not None:
            for m in check(city):
                errors.setdefault(_field_for(f"{dname}.{m}", template), []).append(f"{dname}.{m}")
    if errors:
        raise Invalid(errors)
    stem = str(base.get("name", results_path.stem))
    return sc, scen_dir, city, results_path.parent / f"{stem}__{name}.nc"


class Cancelled(Exception):
    """A what-if run was cancelled from the page, or ran longer than :data:`MAX_RUN_WALL_S`."""


@dataclass
class Job:
    id: str
    variant: str
    out_path: Path
    status: str = "queued"  # queued, running, done, failed, cancelled
    progress: float = 0.0
    message: str = ""
    phase: str = ""  # what a running job does now, for the page: "building the city", "simulating", "writing"
    sim_t: float = 0.0  # simulated seconds so far, of sim_total
    sim_total: float = 0.0
    running_since: float | None = None
    started: float = field(default_factory=time.time)
    finished: float | None = None
    cancel: threading.Event = field(default_factory=threading.Event)
    work: tuple = ()


_jobs: dict[str, Job] = {}
_queue: collections.deque[Job] = collections.deque()
_lock = threading.Lock()
_wake = threading.Condition(_lock)
_worker: dict = {"thread": None}
_KEEP_FINISHED = 50


def job(job_id: str | None) -> Job | None:
    return _jobs.get(job_id or "") if isinstance(job_id, str) else None


def queue_position(j: Job) -> int:
    """1 for the next job to run, 0 when not waiting."""
    with _lock:
        return next((i + 1 for i, q in enumerate(_queue) if q is j), 0)


def submit(sc, scen_dir: Path, city, out_path: Path) -> Job:
    """Queue a prepared what-if; one worker thread runs one job at a time. Raise :class:`Invalid` when
    what-if runs are off, the queue is full, or the same output is already queued or running."""
    if not enabled():
        raise Invalid({"general": ["what-if runs are turned off on this server (dashboard --no-whatif)"]})
    with _lock:
        waiting = sum(1 for x in _jobs.values() if x.status in ("queued", "running")) - 1  # one of them runs
        if waiting >= MAX_QUEUED:
            raise Invalid({"general": [f"{waiting} what-if runs are already waiting behind the running one (at most "
                                       f"{MAX_QUEUED}); try again when one has finished"]})
        if any(j.out_path == out_path and j.status in ("queued", "running") for j in _jobs.values()):
            raise Invalid({"wi-name": [f"a run of {sc.variant!r} is already queued or running"]})
        j = Job(uuid.uuid4().hex[:12], sc.variant, out_path, work=(sc, scen_dir, city))
        _jobs[j.id] = j
        _queue.append(j)
        done = [k for k, x in _jobs.items() if x.finished is not None]
        for k in done[:max(0, len(done) - _KEEP_FINISHED)]:
            del _jobs[k]
        t = _worker["thread"]
        if t is None or not t.is_alive():
            t = threading.Thread(target=_work_loop, daemon=True, name="whatif-worker")
            _worker["thread"] = t
            t.start()
        _wake.notify()
    return j


start = submit  # the earlier name


def cancel(job_id: str | None) -> bool:
    """Cancel a queued job (it never runs) or a running one (stopped at its next progress call)."""
    j = job(job_id)
    if j is None or j.status not in ("queued", "running"):
        return False
    j.cancel.set()
    with _lock:
        if j in _queue:
            _queue.remove(j)
            j.status, j.message, j.finished = "cancelled", "cancelled before it started", time.time()
    return True


def _work_loop() -> None:
    while True:
        with _lock:
            while not _queue:
                if not _wake.wait(timeout=60.0):
                    if not _queue:
                        _worker["thread"] = None
                        return
            j = _queue.popleft()
            j.status = "running"
        _run(j)


def _run(j: Job) -> None:
    from twin.results import stack_variants, write_atomic
    from twin.run import run_one

    sc, scen_dir, _city = j.work
    j.work = ()
    t_start = time.monotonic()
    try:
        def cb(t, total):
            if j.cancel.is_set():
                raise Cancelled("cancelled from the page")
            if time.monotonic() - t_start > MAX_RUN_WALL_S:
                raise Cancelled(f"stopped after {MAX_RUN_WALL_S / 60:.0f} min of wall time (the dashboard's limit)")
            j.progress = min(0.99, t / max(total, 1e-9))
            j.sim_t, j.sim_total, j.phase = float(t), float(total), "simulating"
        if j.cancel.is_set():
            raise Cancelled("cancelled from the page")
        j.running_since, j.phase = time.time(), "building the city, demand and routes"
        ds = run_one(sc, scen_dir, progress=cb)  # the run service: the variant on its own city
        if j.cancel.is_set():
            raise Cancelled("cancelled from the page")
        j.phase = "writing the results file"
        with D._io_lock:  # netCDF-C is not thread-safe: no page reads a file while this one is written
            write_atomic(stack_variants({sc.variant: ds}), j.out_path)
        j.progress, j.status = 1.0, "done"
        j.message = f"{j.out_path.name} written"
    except Cancelled as exc:
        j.status, j.message = "cancelled", str(exc)
    except Exception as exc:  # shown on the page, without server paths
        j.status = "failed"
        j.message = public_text(f"{type(exc).__name__}: {exc}", (j.out_path.parent, scen_dir))
        traceback.print_exc()
    finally:
        j.finished = time.time()
