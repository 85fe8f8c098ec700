"""Scenario files: YAML validated by pydantic, with named variants deep-merged onto the baseline.

A scenario is data, never code: it is read with a bounded ``yaml.SafeLoader`` only (twin.safe_yaml: alias
expansion, nesting and size are limited while loading). Every problem is reported as
one line naming the file, the key path, the value and what is allowed (:class:`ScenarioError`).
"""
from __future__ import annotations

import copy
import re
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from twin.batch_config import BatchConfig
from twin.registry import domain_names, get_domain_spec
from twin.safe_yaml import MAX_BYTES, YAMLLimitError, safe_load_bounded, short_repr

__all__ = ["Scenario", "ScenarioError", "CityConfig", "TimeConfig", "DemandConfig", "OutputsConfig",
           "load_scenario", "load_document", "resolve_variants", "scenario_hash", "scenario_keys", "PROJECT_ROOT"]

PROJECT_ROOT = Path(__file__).resolve().parent.parent
BASELINE = "baseline"
MAX_VARIANTS = 200  # each variant deep-copies the baseline: bounded work per file
MAX_SEED = 2**63 - 1  # int64: written to netCDF as is (derived replication seeds use the whole range)


class ScenarioError(Exception):
    """A scenario file is malformed; ``messages`` holds one line per problem."""

    def __init__(self, path: str | Path, messages: list[str]) -> None:
        self.path = str(path)
        self.messages = messages
        super().__init__("\n".join(f"{self.path}: {m}" for m in messages))


# ----------------------------------------------------------------------------------- sections
class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class GridSpec(_Strict):
    nx: int = Field(10, ge=2, le=500, description="Nodes along x (500x500: 1 M links, ~1.4 GB).")
    ny: int = Field(10, ge=2, le=500, description="Nodes along y.")
    spacing_m: float = Field(200.0, gt=10, le=5000, description="Distance between neighbouring nodes (m).")
    lanes: int = Field(1, ge=1, le=8)
    speed_mps: float = Field(13.89, gt=0, le=50)


class RadialSpec(_Strict):
    rings: int = Field(4, ge=1, le=100)
    spokes: int = Field(8, ge=3, le=100)
    ring_spacing_m: float = Field(500.0, gt=10, le=10000)


class LineSpec(_Strict):
    n_links: int = Field(10, ge=1, le=10000)
    length_m: float = Field(500.0, gt=1, le=100000)
    lanes: int = Field(1, ge=1, le=8)
    speed_mps: float = Field(13.89, gt=0, le=50)


class CityConfig(_Strict):
    """Where the road network comes from, and what is attached to it."""

    source: Literal["sumo", "osm", "grid", "radial", "line"] = Field(
        description="sumo: a .net.xml(.gz); osm: an OpenStreetMap XML file; grid/radial/line: synthetic.")
    name: str | None = Field(None, description="Display name (default: the scenario name).")
    path: str | None = Field(None, description="Network file for sumo/osm, relative to the scenario file.")
    pois: str | None = Field(None, description="OpenStreetMap extract to take stations, hospitals and venues from.")
    buildings: str | None = Field(None, description="Buildings CSV (SUMO generateTAZBuildingsFromOSM format) to weight zones.")
    zone_cell_m: float = Field(1000.0, ge=50, le=20000, description="Side of the square zones (m).")
    capacity_per_lane_vph: float = Field(1800.0, ge=200, le=3000, description="Reference saturation flow per lane (veh/h).")
    grid: GridSpec = Field(default_factory=GridSpec)
    radial: RadialSpec = Field(default_factory=RadialSpec)
    line: LineSpec = Field(default_factory=LineSpec)

    @model_validator(mode="after")
    def _needs_path(self) -> "CityConfig":
        if self.source in ("sumo", "osm") and not self.path:
            raise ValueError(f"source {self.source!r} needs a 'path' to the network file")
        return self


class TimeConfig(_Strict):
    """The simulated span: clock time of t=0, duration, kernel step, recording interval."""

    start: str = Field("00:00", description="Clock time of t=0, HH:MM (labels and time-of-day profiles).")
    duration_s: float = Field(3600.0, gt=0, le=7 * 86400, description="Simulated time (s).")
    step_s: float = Field(1.0, gt=0, le=60, description="Step of time-stepped kernels (s).")
    record_interval_s: float = Field(300.0, ge=1, le=86400, description="Interval of recorded time series (s).")

    @field_validator("start")
    @classmethod
    def _hhmm(cls, v: str) -> str:
        if not re.fullmatch(r"([01]\d|2[0-3]):[0-5]\d", v):
            raise ValueError("use HH:MM, 00:00 to 23:59")
        return v

    @model_validator(mode="after")
    def _fits(self) -> "TimeConfig":
        if self.record_interval_s > self.duration_s:
            raise ValueError(f"record_interval_s ({self.record_interval_s}) exceeds duration_s ({self.duration_s})")
        if self.record_interval_s < self.step_s:
            raise ValueError(f"record_interval_s ({self.record_interval_s}) is shorter than step_s ({self.step_s})")
        return self

    @property
    def start_hour(self) -> float:
        h, m = self.start.split(":")
        return int(h) + int(m) / 60.0


NAMED_PROFILES = ("flat", "evening_peak", "morning_peak", "weekday")


class DemandConfig(_Strict):
    """Background car trips: generated zone to zone, from an OD matrix, or an explicit trip list."""

    trips: int = Field(0, ge=0, le=20_000_000, description="Trips to generate over the demand window.")
    model: Literal["gravity", "uniform"] = Field("gravity", description="How destinations are chosen.")
    distance_decay_per_km: float = Field(0.3, ge=0, le=10, description="Gravity model: weight exp(-decay*km).")
    profile: str | list[tuple[float, float]] = Field(
        "flat", description=f"Departure-time profile: one of {', '.join(NAMED_PROFILES)}, or [[clock_hour, weight], ...].")
    start_s: float = Field(0.0, ge=0, description="Demand window start (s from t=0).")
    end_s: float | None = Field(None, ge=0, description="Demand window end (s); default: the run's end.")
    od_file: str | None = Field(None, description="CSV origin_zone,destination_zone,trips (zone ids of the city).")
    trips_file: str | None = Field(None, description="Trip list: CSV depart_s,origin,destination (node ids) or a SUMO .rou.xml.")
    scale: float = Field(1.0, ge=0, le=20, description="Multiplies the demand (what-if growth).")

    @field_validator("profile")
    @classmethod
    def _profile(cls, v):
        if isinstance(v, str) and v not in NAMED_PROFILES:
            raise ValueError(f"unknown profile {v!r}; use one of {', '.join(NAMED_PROFILES)} or [[hour, weight], ...]")
        if isinstance(v, list):
            if not v:
                raise ValueError("an explicit profile needs at least one [hour, weight] pair")
            for h, w in v:
                if not (0 <= h < 24) or w < 0:
                    raise ValueError(f"profile entry [{h}, {w}]: hour must be in [0, 24) and weight >= 0")
        return v


class OutputsConfig(_Strict):
    dir: str = Field("results", description="Results folder, relative to the project (run_scenario.py run --out "
                                            "chooses any other folder).")
    report: bool = Field(True, description="Write the static HTML report next to the results.")

    @field_validator("dir")
    @classmethod
    def _inside_project(cls, v: str) -> str:
        return relative_folder(v, "run_scenario.py run --out")


def relative_folder(v: str, cli: str) -> str:
    """A results folder named in a scenario file: relative and without '..' (the user's ``cli`` option may
    choose any folder; a file received from someone else may not)."""
    if any(ord(c) < 32 or ord(c) == 127 for c in v):
        raise ValueError("control characters (NUL, newline, ...) are not allowed in a folder name")
    p = Path(v)
    if p.is_absolute() or ".." in p.parts or v.startswith("~"):
        raise ValueError(f"use a relative folder without '..' (a scenario file may not choose "
                         f"where on the machine it writes; use {cli})")
    return v


class Scenario(_Strict):
    """A whole scenario (one variant, resolved). Domain sections are validated by their domains."""

    name: str = Field(description="Scenario id: letters, digits, - and _.")
    description: str = ""
    seed: int = Field(0, ge=0, le=MAX_SEED, description="Seed of every random stream (0 to 2**63-1).")
    city: CityConfig
    time: TimeConfig = Field(default_factory=TimeConfig)
    demand: DemandConfig = Field(default_factory=DemandConfig)
    # One optional section per registered domain (twin.registry: traffic, crowd, ev, emergency and plug-ins),
    # kept as extra fields and validated by the domain's own config model in the loader.
    model_config = ConfigDict(extra="allow")
    outputs: OutputsConfig = Field(default_factory=OutputsConfig)
    batch: BatchConfig | None = Field(None, description="Sweep/replication settings (docs/batch.md).")
    replications: int = Field(1, ge=1, le=1000, description=(
        "Runs per variant with seeds derived from `seed`; replication r of every variant uses the same seeds "
        "(common random numbers). Results carry per-replication KPIs, means and 95% intervals (docs/results.md)."))
    variant: str = Field(BASELINE, description="Set by the loader: which variant this is.")
    variant_description: str = ""

    @field_validator("batch")
    @classmethod
    def _batch_out(cls, v: BatchConfig | None) -> BatchConfig | None:
        if v is not None and v.out:
            try:
                relative_folder(v.out, "run_scenario.py sweep --out")
            except ValueError as exc:
                raise ValueError(f"batch.out {v.out[:80]!r}: {exc}") from None
        return v

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        if not re.fullmatch(r"[A-Za-z0-9_-]{1,80}", v):
            raise ValueError("use 1-80 letters, digits, '-' or '_'")
        return v

    @model_validator(mode="before")
    @classmethod
    def _only_domain_sections(cls, data: Any) -> Any:
        """Keys beyond the fields above must be registered domains, each a mapping (or null)."""
        if isinstance(data, dict):
            for k, v in data.items():
                if k not in cls.model_fields and k not in domain_names():
                    raise ValueError(f"{k}: unknown key; allowed keys: {', '.join(scenario_keys())}")
                if k not in cls.model_fields and v is not None and not isinstance(v, dict):
                    raise ValueError(f"{k}: {type(v).__name__} — a domain section is a mapping of keys")
        return data

    def section(self, name: str) -> dict | None:
        """The raw scenario section of domain ``name`` (None when absent)."""
        return (self.model_extra or {}).get(name)

    # validated domain configs, filled by the loader
    _domains: dict[str, BaseModel] = {}

    @property
    def domain_configs(self) -> dict[str, BaseModel]:
        return self._domains


# ----------------------------------------------------------------------------------- loading
def _fmt_loc(loc: tuple) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out or "(top level)"


def _allowed_keys(model: type[BaseModel], loc: tuple) -> list[str] | None:
    """Field names of the sub-model that ``loc`` (minus its last part) points into, when it is a model."""
    m: Any = model
    for part in loc[:-1]:
        if isinstance(part, int) or m is None:
            continue
        f = getattr(m, "model_fields", {}).get(part)
        if f is None:
            return None
        ann = f.annotation
        args = getattr(ann, "__args__", ()) or ()
        cand = [a for a in (ann, *args) if isinstance(a, type) and issubclass(a, BaseModel)]
        for a in args:  # list[Model]
            cand += [b for b in getattr(a, "__args__", ()) if isinstance(b, type) and issubclass(b, BaseModel)]
        m = cand[0] if cand else None
    return list(m.model_fields) if m is not None and hasattr(m, "model_fields") else None


def pydantic_messages(err: ValidationError, model: type[BaseModel], prefix: str) -> list[str]:
    msgs = []
    for e in err.errors():
        loc = tuple(e["loc"])
        key = _fmt_loc(loc)
        key = f"{prefix}.{key}" if prefix and key != "(top level)" else (prefix or key)
        if e["type"] == "extra_forbidden":
            allowed = _allowed_keys(model, loc)
            hint = f"; allowed keys: {', '.join(a for a in allowed if a not in ('variant', 'variant_description'))}" if allowed else ""
            msgs.append(f"{key}: unknown key{hint}")
        elif e["type"] == "missing":
            msgs.append(f"{key}: required key is missing")
        else:
            val = e.get("input")
            sval = short_repr(val) if not isinstance(val, dict) else "{...}"
            msg = e["msg"].removeprefix("Value error, ")
            msgs.append(f"{key}: {sval} — {msg}")
    return msgs


def deep_merge(base: dict, override: dict) -> dict:
    """Merge ``override`` onto ``base``: dicts merge recursively, everything else (lists too) replaces."""
    out = copy.deepcopy(base)
    for k, v in override.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = deep_merge(out[k], v)
        else:
            out[k] = copy.deepcopy(v)
    return out


def load_document(path: str | Path) -> dict:
    """Read a scenario YAML file as plain data (safe_load), or raise :class:`ScenarioError`."""
    p = Path(path)
    if not p.is_file():
        raise ScenarioError(path, ["file not found"])
    if p.stat().st_size > MAX_BYTES:
        raise ScenarioError(path, [f"(file) {p.stat().st_size / 1e6:.1f} MB — scenario files are limited to "
                                   f"{MAX_BYTES // 1_000_000} MB; put large inputs in data files"])
    try:
        doc = safe_load_bounded(p.read_text(encoding="utf-8"))
    except YAMLLimitError as exc:
        mark = exc.problem_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        raise ScenarioError(path, [f"(YAML) {where}{exc.problem}"]) from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        what = " ".join(str(getattr(exc, "problem", None) or exc).split())  # one line, whatever the parser says
        raise ScenarioError(path, [f"(YAML) {where}{what} — not valid YAML"]) from None
    except UnicodeDecodeError:
        raise ScenarioError(path, ["(file) not UTF-8 text — a scenario is a YAML text file"]) from None
    if not isinstance(doc, dict):
        raise ScenarioError(path, [f"(top level): {type(doc).__name__} — a scenario is a mapping of keys (name, city, ...)"])
    return doc


def _check_paths(sc: Scenario, base_dir: Path, prefix: str) -> list[str]:
    """Every data file the variant names (city, demand and the domains' files: emergency calls, EV session
    parameters, crowd venues) must resolve inside the scenario's folder or the project and exist."""
    from twin.data_checks import domain_files

    msgs = []
    checks = [("city.path", sc.city.path), ("city.pois", sc.city.pois), ("city.buildings", sc.city.buildings),
              ("demand.od_file", sc.demand.od_file), ("demand.trips_file", sc.demand.trips_file)]
    checks += [(key, val) for key, val, _ in domain_files(sc.domain_configs)]
    for key, val in checks:
        if val is None:
            continue
        try:
            p = resolve_data_path(val, base_dir)
        except ValueError as exc:
            msgs.append(f"{prefix}{key}: {short_repr(val)} — {exc}")
            continue
        if not p.is_file():
            msgs.append(f"{prefix}{key}: {short_repr(val)} — file not found (looked at {_shown(p, base_dir)})")
    return msgs


def _shown(p: Path, base_dir: Path) -> str:
    """``p`` relative to the scenario's folder or the project when inside them (messages name no server paths)."""
    for root in (base_dir.resolve(), PROJECT_ROOT):
        if p == root or root in p.parents:
            return str(p.relative_to(root))
    return p.name


def resolve_data_path(value: str, base_dir: Path) -> Path:
    """Resolve a path from a scenario; it must stay inside the scenario's own folder or the project.

    (Not the scenario folder's parent: a scenario saved in a downloads folder must not read files beside it.)
    Symlinks are resolved first, so a link cannot lead out either."""
    p = Path(value)
    p = (base_dir / p).resolve() if not p.is_absolute() else p.resolve()
    roots = [base_dir.resolve(), PROJECT_ROOT]
    if not any(p == r or r in p.parents for r in roots):
        raise ValueError("path leaves the scenario's folder and the project; keep data in the scenario's "
                         "folder (or below it)")
    return p


def scenario_keys() -> list[str]:
    """Every top-level key a scenario may have: the fixed sections, then one per registered domain."""
    fixed = [k for k in Scenario.model_fields if k not in ("variant", "variant_description")]
    return fixed + domain_names()


def _section_errors(doc: dict, prefix: str) -> list[str]:
    """Unknown top-level keys and domain sections that are not mappings, named like pydantic's messages."""
    msgs = []
    names = domain_names()
    for k, v in doc.items():
        if k in Scenario.model_fields:
            continue
        if k not in names:
            msgs.append(f"{prefix}{k}: unknown key; allowed keys: {', '.join(scenario_keys())}")
        elif v is not None and not isinstance(v, dict):
            sval = repr(v) if len(repr(v)) <= 80 else repr(v)[:77] + "..."
            msgs.append(f"{prefix}{k}: {sval} — a domain section is a mapping of keys")
    return msgs


def _validate_one(doc: dict, path: Path, prefix: str) -> tuple[Scenario | None, list[str]]:
    bad = _section_errors(doc, prefix)
    if bad:  # report them, and everything else wrong with the rest of the document
        names = domain_names()
        doc = {k: v for k, v in doc.items() if k in Scenario.model_fields or (k in names and
                                                                            (v is None or isinstance(v, dict)))}
    try:
        sc = Scenario.model_validate(doc)
    except ValidationError as err:
        return None, bad + pydantic_messages(err, Scenario, prefix.rstrip("."))
    msgs = list(bad)
    domains: dict[str, BaseModel] = {}
    for name in domain_names():
        section = sc.section(name)
        if section is None and name != "traffic":
            continue
        section = section or {}
        if section.get("enabled", True) is False:
            continue
        try:
            spec = get_domain_spec(name)
        except ImportError as exc:
            msgs.append(f"{prefix}{name}: domain not available in this installation ({exc})")
            continue
        try:
            domains[name] = spec.config_model.model_validate(section)
        except ValidationError as err:
            msgs += pydantic_messages(err, spec.config_model, f"{prefix}{name}")
            continue
        files = getattr(domains[name], "path_errors", None)  # files a domain names obey the same path rule
        if files is not None:
            msgs += [f"{prefix}{name}.{m}" for m in files(lambda v: resolve_data_path(v, path.parent))]
    sc._domains = domains
    msgs += _check_paths(sc, path.parent, prefix)
    msgs += [f"{prefix}{m}" for m in nonfinite_fields(sc)]
    for name, cfg in domains.items():
        msgs += [f"{prefix}{name}.{m}" for m in nonfinite_fields(cfg)]
    return sc, msgs


def nonfinite_fields(model: Any, path: str = "") -> list[str]:
    """``key: value — must be a finite number`` for every NaN or infinite float in a validated model (pydantic
    turns "1e400", "nan" and "inf" into floats; no weight, time or count of a scenario may be one)."""
    import math

    out: list[str] = []
    if isinstance(model, BaseModel):
        items: Any = ((k, getattr(model, k, None)) for k in type(model).model_fields)
    elif isinstance(model, dict):
        items = model.items()
    elif isinstance(model, (list, tuple)):
        items = ((f"[{i}]", v) for i, v in enumerate(model))
    elif isinstance(model, float) and not math.isfinite(model):
        return [f"{path}: {model} — must be a finite number"]
    else:
        return []
    for k, v in items:
        sub = f"{path}{k}" if str(k).startswith("[") else (f"{path}.{k}" if path else str(k))
        out += nonfinite_fields(v, sub)
    return out


def resolve_variants(doc: dict, path: str | Path) -> dict[str, Scenario]:
    """Validate the baseline and every variant of a scenario document; raise one error listing all problems."""
    path = Path(path)
    doc = dict(doc)
    variants = doc.pop("variants", None) or {}
    msgs: list[str] = []
    if not isinstance(variants, dict):
        raise ScenarioError(path, [f"variants: {type(variants).__name__} — a mapping of variant name to overrides"])
    if len(variants) > MAX_VARIANTS:
        raise ScenarioError(path, [f"variants: {len(variants)} variants — at most {MAX_VARIANTS} per file "
                                   "(use run_scenario.py sweep for parameter studies)"])
    out: dict[str, Scenario] = {}
    base, m = _validate_one(doc, path, "")
    msgs += m
    if base is not None:
        out[BASELINE] = base
    for vname, over in variants.items():
        pre = f"variants.{vname}."
        if not re.fullmatch(r"[A-Za-z0-9_-]{1,80}", str(vname)) or vname == BASELINE:
            msgs.append(f"variants.{vname}: invalid variant name — use letters, digits, '-' or '_' (not 'baseline')")
            continue
        if not isinstance(over, dict):
            msgs.append(f"{pre.rstrip('.')}: {over!r} — a variant is a mapping of overrides")
            continue
        over = dict(over)
        desc = over.pop("description", "")
        bad = [k for k in over if k in ("name", "variants", "variant", "variant_description")]
        for k in bad:
            msgs.append(f"{pre}{k}: a variant cannot override {k!r}")
        if bad:
            continue
        merged = deep_merge(doc, over)
        merged["variant"] = str(vname)
        merged["variant_description"] = str(desc)
        sc, m = _validate_one(merged, path, pre)
        base_msgs = set(msgs)
        msgs += [x for x in m if x.removeprefix(pre) not in base_msgs]  # inherited problems: say them once
        if sc is not None:
            out[str(vname)] = sc
    if msgs:
        raise ScenarioError(path, msgs)
    return out


def load_scenario(path: str | Path) -> dict[str, Scenario]:
    """Load, validate and resolve a scenario file: ``{"baseline": Scenario, "<variant>": Scenario, ...}``."""
    return resolve_variants(load_document(path), path)


def scenario_hash(sc: Scenario, scenario_dir: str | Path | None = None) -> str:
    """sha256 of what runs: the resolved configuration (every default), code version and data digests
    (``twin.provenance.run_fingerprint``); ``scenario_dir`` resolves data paths (default: scenarios/)."""
    from twin.provenance import run_fingerprint

    return run_fingerprint(sc, scenario_dir if scenario_dir is not None else PROJECT_ROOT / "scenarios")[0]
