"""Provenance = what ran: the resolved configuration, command-line overrides, code version, data digests.

``scenario_hash`` and the batch cache key both come from :func:`run_fingerprint`, so two files that resolve
to the same configuration (``traffic: {}`` and ``traffic: {speed_scale: <its default>}``) hash the same, and a
change of code version, data file or any setting gives a new hash (a batch then re-runs that run).
"""
from __future__ import annotations

import hashlib
import json
import subprocess
from functools import lru_cache
from importlib import metadata
from pathlib import Path
from typing import Any, Iterable

__all__ = ["resolved_config", "code_version", "file_digest", "referenced_files", "data_digests",
           "run_fingerprint", "provenance_attrs", "package_versions", "HASH_EXCLUDE"]

# keys that name or describe a run but do not change what it computes
HASH_EXCLUDE = ("description", "variant", "variant_description", "outputs", "batch", "replications")
_PACKAGES = ("citytwin", "mesa", "simpy", "numba", "numpy", "networkx", "xarray", "eclipse-sumo")


def package_versions() -> dict[str, str]:
    """Versions of the packages that shape results (recorded in every results file)."""
    out = {}
    for p in _PACKAGES:
        try:
            out[p] = metadata.version(p)
        except metadata.PackageNotFoundError:
            out[p] = "not installed"
    return out


def resolved_config(sc: Any) -> dict:
    """The configuration that runs, as plain JSON data: every section with every default in force, domain
    sections as their validated configs (a disabled domain as ``{"enabled": false}``). It is itself a valid
    scenario document: validating it again gives the same configuration."""
    from twin.registry import domain_names

    doc = sc.model_dump(mode="json")
    configs = sc.domain_configs
    for name in domain_names():
        if name in configs:
            doc[name] = configs[name].model_dump(mode="json")
        elif name == "traffic" or doc.get(name) is not None:
            doc[name] = {"enabled": False}
        else:
            doc.pop(name, None)
    return doc


@lru_cache(maxsize=1)
def code_version() -> dict[str, str]:
    """CityTwin's version, and the git commit of the checkout when there is one (``dirty`` if tracked files
    changed). Never fails: without git (an installed package, a tarball) the commit is ``""``."""
    from twin.scenario import PROJECT_ROOT

    try:
        version = metadata.version("citytwin")
    except metadata.PackageNotFoundError:
        version = "dev"
    commit, dirty = "", ""
    if (PROJECT_ROOT / ".git").exists():
        try:
            git = dict(cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=10, check=False)
            r = subprocess.run(["git", "rev-parse", "HEAD"], **git)  # fixed arguments, no user input
            if r.returncode == 0:
                commit = r.stdout.strip()
                s = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], **git)
                dirty = "dirty" if s.returncode == 0 and s.stdout.strip() else ""
        except (OSError, subprocess.SubprocessError):
            commit = ""
    return {"citytwin": version, "git_commit": commit, "git_dirty": dirty}


_DIGESTS: dict[tuple[str, int, int], str] = {}


def file_digest(path: str | Path) -> str:
    """sha256 of a file's bytes (cached per process by path, size and modification time)."""
    p = Path(path)
    st = p.stat()
    key = (str(p.resolve()), st.st_size, st.st_mtime_ns)
    if key not in _DIGESTS:
        h = hashlib.sha256()
        with open(p, "rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                h.update(block)
        _DIGESTS[key] = h.hexdigest()
    return _DIGESTS[key]


def referenced_files(config: dict, scenario_dir: Path) -> list[Path]:
    """Data files a resolved configuration names: every string value that resolves (inside the allowed
    folders) to an existing file."""
    from twin.scenario import resolve_data_path

    found: list[Path] = []

    def walk(v: Any) -> None:
        if isinstance(v, dict):
            for x in v.values():
                walk(x)
        elif isinstance(v, list):
            for x in v:
                walk(x)
        elif isinstance(v, str) and ("." in v or "/" in v) and len(v) < 1024 and "\n" not in v:
            try:
                p = resolve_data_path(v, scenario_dir)
            except (ValueError, OSError):
                return
            if p.is_file() and p not in found:
                found.append(p)

    walk(config)
    return found


def _label(p: Path, scenario_dir: Path) -> str:
    from twin.scenario import PROJECT_ROOT

    for root in (PROJECT_ROOT, scenario_dir.resolve()):
        try:
            return str(p.resolve().relative_to(root))
        except ValueError:
            continue
    return str(p)


def data_digests(files: Iterable[Path], scenario_dir: Path) -> dict[str, str]:
    """``{path relative to the project: sha256}`` for each file (sorted by path)."""
    out = {_label(Path(f), scenario_dir): file_digest(f) for f in files if Path(f).is_file()}
    return dict(sorted(out.items()))


def run_fingerprint(sc: Any, scenario_dir: str | Path) -> tuple[str, dict, dict, dict]:
    """``(hash, resolved config, code version, data digests)`` of one resolved run, computed before it runs.

    The hash is sha256 over the resolved configuration (minus :data:`HASH_EXCLUDE`), the code version and the
    digests of the data files the configuration names."""
    scenario_dir = Path(scenario_dir)
    cfg = resolved_config(sc)
    digests = data_digests(referenced_files(cfg, scenario_dir), scenario_dir)
    code = code_version()
    blob = json.dumps({"config": {k: v for k, v in cfg.items() if k not in HASH_EXCLUDE}, "code": code,
                       "data": digests}, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest(), cfg, code, digests


def provenance_attrs(sc: Any, scenario_dir: str | Path, overrides: dict | None = None,
                     used_files: Iterable[Path] = ()) -> dict[str, Any]:
    """The run-metadata attrs of docs/results.md: ``scenario_hash``, ``scenario_json`` (the resolved
    configuration), ``overrides``, ``citytwin_version``, ``git_commit``, ``data_digests``, ``versions``."""
    scenario_dir = Path(scenario_dir)
    h, cfg, code, digests = run_fingerprint(sc, scenario_dir)
    used = data_digests(used_files, scenario_dir)
    return {
        "scenario_hash": h,
        "scenario_json": json.dumps(cfg, sort_keys=True),
        "overrides": json.dumps(dict(overrides or {}), sort_keys=True),
        "citytwin_version": code["citytwin"],
        "git_commit": code["git_commit"] + ("-dirty" if code["git_dirty"] and code["git_commit"] else ""),
        "data_digests": json.dumps({**digests, **used}, sort_keys=True),
        "versions": json.dumps(package_versions()),
    }
