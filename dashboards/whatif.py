"""What-if runs from the dashboard: templates, validation through twin.scenario, a background thread per run.

A run loads the baseline scenario recorded in the results file (``run_scenario_json``), deep-merges the
template's override as a new variant, validates it with ``twin.scenario.resolve_variants`` (and the domains'
city checks), runs ``twin.engine.CityTwin(...).run(progress=cb)`` in a thread, and writes
``<scenario>__<variant>.nc`` next to the source file with ``twin.results.write_atomic``. The page polls the
job with a ``dcc.Interval`` (no diskcache or celery needed).
"""
from __future__ import annotations

import re
import threading
import time
import traceback
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from dashboards import data as D

__all__ = ["TEMPLATES", "build_override", "prepare", "start", "job", "FIELD_KEYS", "Invalid"]

TEMPLATES = {
    "closure": "Close or narrow a road (traffic)",
    "demand": "More (or less) traffic demand",
    "chargers": "More chargers (EV)",
    "station": "Another emergency station",
    "custom": "Any override (YAML)",
}

# message key fragments -> form field id (first match wins)
FIELD_KEYS = [
    ("closures", "capacity_factor", "wi-closure-factor"), ("closures", "start_s", "wi-closure-start"),
    ("closures", "link", "wi-closure-link"), ("closures", "", "wi-closure-link"),
    ("demand.scale", "", "wi-demand-scale"), ("demand", "", "wi-demand-scale"),
    ("ev.min_plugs", "", "wi-ev-min-plugs"), ("ev.extra_stations", "plugs", "wi-ev-plugs"),
    ("ev.extra_stations", "power_kw", "wi-ev-power"), ("ev.extra_stations", "", "wi-ev-node"),
    ("emergency.extra_stations", "units", "wi-em-units"), ("emergency.extra_stations", "", "wi-em-node"),
    ("invalid variant name", "", "wi-name"),
]


class Invalid(Exception):
    """Validation failed: ``errors`` maps a form field id (or "general") to its messages."""

    def __init__(self, errors: dict[str, list[str]]) -> None:
        self.errors = errors
        super().__init__("; ".join(m for ms in errors.values() for m in ms))


def _num(errors, fid, value, label, lo=None, hi=None, integer=False):
    try:
        x = float(value)
    except (TypeError, ValueError):
        errors.setdefault(fid, []).append(f"{label}: enter a number")
        return None
    if integer and x != int(x):
        errors.setdefault(fid, []).append(f"{label}: enter a whole number")
        return None
    if (lo is not None and x < lo) or (hi is not None and x > hi):
        errors.setdefault(fid, []).append(f"{label}: must be between {lo} and {hi}")
        return None
    return int(x) if integer else x


def build_override(template: str, p: dict, base: dict) -> dict:
    """The scenario override of a template from form values ``p``; raise :class:`Invalid` per field."""
    errors: dict[str, list[str]] = {}
    over: dict = {}
    if template == "closure":
        link = str(p.get("link") or "").strip()
        if not link:
            errors.setdefault("wi-closure-link", []).append("choose a link (click one on the Traffic map to see ids)")
        start_min = _num(errors, "wi-closure-start", p.get("start_min", 0), "start (minutes after the start)", 0, 10080)
        # capacity factor range is left to the scenario schema (its message is shown beside the field)
        factor = _num(errors, "wi-closure-factor", p.get("factor", 0), "capacity factor")
        if not errors:
            old = list(((base.get("traffic") or {}).get("closures")) or [])
            over = {"traffic": {"closures": old + [{"link": link, "start_s": start_min * 60.0,
                                                    "capacity_factor": factor}]}}
    elif template == "demand":
        scale = _num(errors, "wi-demand-scale", p.get("scale"), "demand factor")
        if scale is not None:
            over = {"demand": {"scale": scale * float((base.get("demand") or {}).get("scale", 1.0))}}
    elif template == "chargers":
        if not base.get("ev"):
            errors.setdefault("wi-ev-node", []).append("EV charging was not simulated in this scenario")
        mp = _num(errors, "wi-ev-min-plugs", p.get("min_plugs", 1), "minimum plugs per station", integer=True)
        ev: dict = {}
        if mp is not None:
            ev["min_plugs"] = mp
        node = str(p.get("node") or "").strip()
        if node:
            plugs = _num(errors, "wi-ev-plugs", p.get("plugs", 2), "plugs", integer=True)
            power = _num(errors, "wi-ev-power", p.get("power_kw", 50), "power per plug (kW)")
            old = list((base.get("ev") or {}).get("extra_stations") or [])
            ev["extra_stations"] = old + [{"node": node, "plugs": plugs, "power_kw": power}]
        if not errors:
            over = {"ev": ev}
    elif template == "station":
        if not base.get("emergency"):
            errors.setdefault("wi-em-node", []).append("emergency response was not simulated in this scenario")
        node = str(p.get("node") or "").strip()
        if not node:
            errors.setdefault("wi-em-node", []).append("enter the node id of the new station")
        units = _num(errors, "wi-em-units", p.get("units", 1), "units", integer=True)
        kind = p.get("kind") or "ambulance"
        if not errors:
            old = list((base.get("emergency") or {}).get("extra_stations") or [])
            over = {"emergency": {"extra_stations": old + [{"name": f"new {kind} station", "node": node, "kind": kind,
                                                             "units": [{"type": kind, "count": units}]}]}}
    elif template == "custom":
        try:
            over = yaml.safe_load(p.get("yaml") or "") or {}
        except yaml.YAMLError as exc:
            errors.setdefault("wi-custom", []).append(f"not valid YAML: {exc}")
        if not errors and not isinstance(over, dict):
            errors.setdefault("wi-custom", []).append("the override must be a mapping, e.g. demand: {scale: 1.1}")
    else:
        errors.setdefault("general", []).append(f"unknown template {template!r}")
    if errors:
        raise Invalid(errors)
    return over


def _field_for(message: str, template: str) -> str:
    for a, b, fid in FIELD_KEYS:
        if a in message and b in message:
            return fid
    return "wi-custom" if template == "custom" else "general"


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

    name = (variant_name or "").strip()
    errors: dict[str, list[str]] = {}
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
    doc["variants"] = {name: {"description": f"what-if from the dashboard: {TEMPLATES.get(template, template)}",
                              **over}}
    try:
        sc = resolve_variants(doc, scen_dir / f"{base.get('name', 'scenario')}.yaml")[name]
    except ScenarioError as exc:
        for m in exc.messages:
            errors.setdefault(_field_for(m, template), []).append(m.replace(f"variants.{name}.", ""))
        raise Invalid(errors) from None
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


@dataclass
class Job:
    id: str
    variant: str
    out_path: Path
    status: str = "queued"  # queued, running, done, failed
    progress: float = 0.0
    message: str = ""
    started: float = field(default_factory=time.time)
    finished: float | None = None


_jobs: dict[str, Job] = {}
_run_lock = threading.Lock()  # one engine run at a time (2 cores are shared)


def job(job_id: str | None) -> Job | None:
    return _jobs.get(job_id or "")


def start(sc, scen_dir: Path, city, out_path: Path) -> Job:
    """Run a prepared what-if in a daemon thread; returns its :class:`Job` (poll ``job(id)``)."""
    j = Job(uuid.uuid4().hex[:12], sc.variant, out_path)
    _jobs[j.id] = j

    def work():
        from twin.engine import CityTwin
        from twin.results import stack_variants, write_atomic

        with _run_lock:
            j.status = "running"
            try:
                def cb(t, total):
                    j.progress = min(0.99, t / max(total, 1e-9))
                ds = CityTwin(sc, scen_dir, city=city).run(progress=cb)
                write_atomic(stack_variants({sc.variant: ds}), out_path)
                j.progress, j.status = 1.0, "done"
                j.message = f"{out_path.name} written"
            except Exception as exc:  # shown on the page
                j.status = "failed"
                j.message = f"{type(exc).__name__}: {exc}"
                traceback.print_exc()
            finally:
                j.finished = time.time()

    threading.Thread(target=work, daemon=True, name=f"whatif-{j.id}").start()
    return j
