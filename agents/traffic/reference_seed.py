"""SUMO reference runs with another scenario seed: the noise floor of a validation figure (SUMO against itself).

A seeded reference is the run of ``agents/traffic/reference.py`` with the scenario seed replaced (as
``run --seed``: SUMO's ``--seed`` and the demand's sampling both change). Its cache key is the default key
(``reference_key``) extended by the seed and this module's source, and its file name carries
``seed<N>``: the default references' keys and files stay exactly as they are (this module is not part of
their key, and ``reference.py`` is unchanged), so seeded runs can be added next to references already computed.

Run one by hand: ``python -m agents.traffic.reference_seed FILE VARIANT MODE SEED OUT.nc``.
"""
from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import xarray as xr

from agents.traffic.reference import MODES, ROOT, SumoReference, reference_key

__all__ = ["seeded_key", "seeded_reference", "run_seeded"]

# the result variables a reference keeps (as reference.py's own list: that file stays untouched, see above)
_KEEP = ("link_flow", "link_speed", "trip_", "kpi_traffic_")


def seeded_key(path: str | Path, variant: str, mode: str, seed: int, city=None) -> str:
    """Cache key of the run of ``variant`` on SUMO ``mode`` with scenario seed ``seed``."""
    doc = {"reference_key": reference_key(path, variant, mode, city), "seed": int(seed),
           "code": hashlib.sha256(Path(__file__).read_bytes()).hexdigest()}
    return hashlib.sha256(json.dumps(doc, sort_keys=True).encode()).hexdigest()[:24]


def seeded_file(cache: Path, path: str | Path, variant: str, mode: str, seed: int, key: str) -> Path:
    return cache / f"{Path(path).stem}.{variant}.{mode}.seed{int(seed)}.{key}.nc"


def run_seeded(path: str | Path, variant: str, mode: str, seed: int, out: str | Path) -> float:
    """Run ``variant`` on SUMO ``mode`` with scenario seed ``seed`` in this process; write the kept results."""
    from agents.traffic.compare import run_backend
    from agents.traffic.config import SumoOptions
    from twin.scenario import load_scenario

    sc = load_scenario(path)[variant]
    base_opts = getattr(sc.domain_configs["traffic"], "sumo").model_dump()
    opts = SumoOptions(**{**base_opts, **MODES[mode],
                          "extra_args": list(base_opts["extra_args"]) + MODES[mode].get("extra_args", [])})
    ds, wall = run_backend(path, variant, "sumo", overrides={"sumo": opts}, seed=int(seed))
    keep = [v for v in ds.data_vars if str(v).startswith(_KEEP)]
    small = ds[keep].assign_attrs(wall_time_s=wall, complete=int(ds.attrs.get("complete", 0)),
                                  sumo_version=ds.attrs.get("sumo_version", ""), mode=mode, variant=variant,
                                  seed=int(seed), scenario=str(path),
                                  created=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))
    out = Path(out)
    tmp = out.with_name(f".{out.name}.{os.getpid()}.tmp")
    small.to_netcdf(tmp)
    os.replace(tmp, out)
    return wall


def seeded_reference(path: str | Path, variant: str, mode: str, seed: int, city=None,
                     cache_dir: str | Path | None = None, use_cache: bool = True, cached_only: bool = False,
                     timeout_s: float = 3600.0) -> SumoReference:
    """The seeded SUMO run: from the cache when valid, else (unless ``cached_only``) in a child process.

    Failures give ``ds=None`` and the reason in ``error`` (never an exception)."""
    cache = Path(cache_dir) if cache_dir is not None else ROOT / "results" / ".cache" / "sumo_reference"
    cache.mkdir(parents=True, exist_ok=True)
    key = seeded_key(path, variant, mode, seed, city)
    nc = seeded_file(cache, path, variant, mode, seed, key)
    if use_cache and nc.exists():
        ds = xr.load_dataset(nc)
        return SumoReference(ds, float(ds.attrs["wall_time_s"]), True, key)
    if cached_only:
        return SumoReference(None, float("nan"), False, key, "not in the cache (--cached-only)")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep)}
    cmd = [sys.executable, "-m", "agents.traffic.reference_seed", str(Path(path).resolve()), variant, mode,
           str(int(seed)), str(nc)]
    try:
        proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout_s)
    except subprocess.TimeoutExpired:
        return SumoReference(None, float("nan"), False, key, f"SUMO {mode} seed {seed} run exceeded {timeout_s:.0f} s")
    if proc.returncode != 0 or not nc.exists():
        how = f"signal {-proc.returncode}" if proc.returncode < 0 else f"exit {proc.returncode}"
        tail = " | ".join(proc.stderr.strip().splitlines()[-3:])
        return SumoReference(None, float("nan"), False, key, f"SUMO {mode} seed {seed} run failed ({how}): {tail}")
    ds = xr.load_dataset(nc)
    return SumoReference(ds, float(ds.attrs["wall_time_s"]), False, key)


if __name__ == "__main__":  # the child process of seeded_reference
    if len(sys.argv) != 6 or sys.argv[3] not in MODES or not sys.argv[4].isdigit():
        print(f"usage: python -m agents.traffic.reference_seed FILE VARIANT {{{','.join(MODES)}}} SEED OUT.nc",
              file=sys.stderr)
        sys.exit(2)
    w = run_seeded(sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), sys.argv[5])
    print(f"{sys.argv[2]} on SUMO {sys.argv[3]} seed {sys.argv[4]}: {w:.1f} s -> {sys.argv[5]}")
