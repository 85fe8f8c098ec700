"""SUMO reference runs for validation: each in its own process (a SUMO crash cannot kill the caller), cached on disk.

A reference run is one scenario variant on SUMO in one *mode*: ``micro`` (SUMO's car-following model) or
``meso_jc`` (SUMO's mesoscopic model with ``--meso-junction-control true``). Its results (link flows, the
trip table, KPIs; attrs ``wall_time_s`` and ``sumo_version``) go to ``<cache_dir>/<key>.nc``. The key is a
SHA-256 over everything the SUMO run depends on: the resolved scenario (every domain's configuration and the
traffic fields SUMO uses, with defaults), the digests of the data files it names, the city's topology (link
ids and end nodes), the SUMO version, the mode's options, and the source of the code on SUMO's side of the
run (SUMO back-end, demand, route files, and those domains of the variant that drive through traffic). The built-in model's
code is not in the key, so the built-in model can be re-run in seconds against cached SUMO runs.

Run one by hand: ``python -m agents.traffic.reference FILE VARIANT MODE OUT.nc``.
"""
from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import xarray as xr

__all__ = ["MODES", "SumoReference", "reference_key", "sumo_reference", "run_reference"]

ROOT = Path(__file__).resolve().parents[2]

# SUMO options per mode (SumoOptions fields; extra_args are SUMO options, not user input)
MODES: dict[str, dict] = {
    "micro": {"mesosim": False},
    "meso_jc": {"mesosim": True, "extra_args": ["--meso-junction-control", "true"]},
}

# the code a SUMO reference run depends on (relative to the project root; globs allowed)
_CODE = ["agents/traffic/sumo.py", "agents/traffic/sumo_setup.py", "agents/traffic/sumo_io.py",
         "agents/traffic/backend.py", "agents/traffic/reference.py", "twin/demand.py", "twin/engine.py",
         "networks/sumo_routes.py"]
# and the code of each domain that drives through traffic, when the variant enables it
_DOMAIN_CODE = {"ev": "agents/ev/*.py", "emergency": "agents/emergency/*.py", "crowd": "agents/crowd/*.py"}
# TrafficConfig fields the SUMO back-end reads (the rest tune the built-in model)
_SUMO_TRAFFIC_FIELDS = ("enabled", "reroute_interval_s", "reroute_share", "sync_interval_s", "closures", "sumo")
_KEEP = ("link_flow", "link_speed", "trip_", "kpi_traffic_")


@dataclass
class SumoReference:
    """One SUMO reference run: its results (None if it failed), wall time (s), whether it came from the cache."""

    ds: xr.Dataset | None
    wall_s: float
    cached: bool
    key: str
    error: str = ""


def _sha_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _code_digest(domains: list[str] | tuple[str, ...] = tuple(_DOMAIN_CODE)) -> str:
    """Digest of the code on SUMO's side of a run with ``domains`` enabled (a domain not in the run is left
    out, so editing the crowd model does not invalidate references of variants without a venue)."""
    h = hashlib.sha256()
    for pattern in _CODE + [_DOMAIN_CODE[d] for d in sorted(domains) if d in _DOMAIN_CODE]:
        for p in sorted(ROOT.glob(pattern)):
            h.update(p.relative_to(ROOT).as_posix().encode())
            h.update(p.read_bytes())
    return h.hexdigest()


def _topology_digest(city) -> str:
    a = city.arrays
    h = hashlib.sha256()
    h.update("\n".join(str(x) for x in city.link_ids).encode())
    h.update("\n".join(str(x) for x in city.node_ids).encode())
    h.update(np.ascontiguousarray(a.link_from, np.int64).tobytes())
    h.update(np.ascontiguousarray(a.link_to, np.int64).tobytes())
    return h.hexdigest()


def _data_files(sc, base: Path) -> list[Path]:
    from twin.scenario import resolve_data_path

    names = [sc.city.path, sc.city.pois, sc.city.buildings, sc.demand.trips_file, sc.demand.od_file]
    tr = sc.domain_configs.get("traffic")
    if tr is not None:
        names += list(tr.sumo.additional_files)
    return [resolve_data_path(n, base) for n in names if n]


def reference_key(path: str | Path, variant: str, mode: str, city=None) -> str:
    """The cache key of a SUMO reference run (see the module docstring)."""
    import sumo  # noqa: F401
    import importlib.metadata as md

    from twin.scenario import load_scenario

    sc = load_scenario(path)[variant]
    base = Path(path).resolve().parent
    confs = {}
    for name, cfg in sc.domain_configs.items():
        d = cfg.model_dump(mode="json")
        confs[name] = {k: d[k] for k in _SUMO_TRAFFIC_FIELDS if k in d} if name == "traffic" else d
    doc = {"scenario": {k: v for k, v in sc.model_dump(mode="json").items()
                        if k in ("name", "seed", "city", "time", "demand")},
           "domains": confs, "mode": mode, "mode_options": MODES[mode],
           "sumo": md.version("eclipse-sumo"),
           "files": {p.name: _sha_file(p) for p in _data_files(sc, base)},
           "topology": _topology_digest(city) if city is not None else None,
           "code": _code_digest(list(sc.domain_configs))}
    return hashlib.sha256(json.dumps(doc, sort_keys=True, default=str).encode()).hexdigest()[:24]


def run_reference(path: str | Path, variant: str, mode: str, out: str | Path) -> float:
    """Run one variant on SUMO in ``mode`` in this process; write the kept results to ``out``; wall time (s)."""
    from agents.traffic.compare import run_backend
    from agents.traffic.config import SumoOptions
    from twin.scenario import load_scenario

    sc = load_scenario(path)[variant]
    base_opts = getattr(sc.domain_configs["traffic"], "sumo").model_dump()
    opts = SumoOptions(**{**base_opts, **MODES[mode],
                          "extra_args": list(base_opts["extra_args"]) + MODES[mode].get("extra_args", [])})
    ds, wall = run_backend(path, variant, "sumo", overrides={"sumo": opts})
    keep = [v for v in ds.data_vars if str(v).startswith(_KEEP)]
    small = ds[keep].assign_attrs(wall_time_s=wall, complete=int(ds.attrs.get("complete", 0)),
                                  sumo_version=ds.attrs.get("sumo_version", ""), mode=mode, variant=variant,
                                  scenario=str(path), created=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))
    out = Path(out)
    tmp = out.with_name(f".{out.name}.{os.getpid()}.tmp")
    small.to_netcdf(tmp)
    os.replace(tmp, out)
    return wall


def sumo_reference(path: str | Path, variant: str, mode: str, city=None, cache_dir: str | Path | None = None,
                   use_cache: bool = True, timeout_s: float = 3600.0) -> SumoReference:
    """The SUMO reference run of a variant in ``mode``: from the cache when valid, else run in a child process.

    A crash, a non-zero exit or a timeout gives ``ds=None`` and the reason in ``error`` (never an exception).
    """
    cache = Path(cache_dir) if cache_dir is not None else ROOT / "results" / ".cache" / "sumo_reference"
    cache.mkdir(parents=True, exist_ok=True)
    key = reference_key(path, variant, mode, city)
    nc = cache / f"{Path(path).stem}.{variant}.{mode}.{key}.nc"
    if use_cache and nc.exists():
        ds = xr.load_dataset(nc)
        return SumoReference(ds, float(ds.attrs["wall_time_s"]), True, key)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep)}
    cmd = [sys.executable, "-m", "agents.traffic.reference", str(Path(path).resolve()), variant, mode, str(nc)]
    try:
        proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout_s)
    except subprocess.TimeoutExpired:
        return SumoReference(None, float("nan"), False, key, f"SUMO {mode} run exceeded {timeout_s:.0f} s")
    if proc.returncode != 0 or not nc.exists():
        how = f"signal {-proc.returncode}" if proc.returncode < 0 else f"exit {proc.returncode}"
        tail = " | ".join(proc.stderr.strip().splitlines()[-3:])
        return SumoReference(None, float("nan"), False, key, f"SUMO {mode} run failed ({how}): {tail}")
    ds = xr.load_dataset(nc)
    return SumoReference(ds, float(ds.attrs["wall_time_s"]), False, key)


if __name__ == "__main__":  # the child process of sumo_reference
    if len(sys.argv) != 5 or sys.argv[3] not in MODES:
        print(f"usage: python -m agents.traffic.reference FILE VARIANT {{{','.join(MODES)}}} OUT.nc", file=sys.stderr)
        sys.exit(2)
    w = run_reference(sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4])
    print(f"{sys.argv[2]} on SUMO {sys.argv[3]}: {w:.1f} s -> {sys.argv[4]}")
