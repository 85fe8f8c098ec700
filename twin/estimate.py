"""Estimate a scenario's memory and time from its keys, before any city is built or run.

The figures are per-unit costs measured on the 2-core development machine (under load; docs/reliability.md):

* city graph: 1.33 kB per directed link (a 200x200 grid, 159,200 links, took 212 MB and 17 s to build);
* car trips: 300 B per trip (400,000 trips on a 20x20 grid grew the process by 90 MB: 225 B, plus margin);
* recorded series: 6 float64 per link and record, per variant (results are stacked in memory);
* crowd: 2.2 M person-steps per second (5,000 persons, 6,000 kernel steps in 13.5 s), 200 B per person.

A run whose estimate exceeds the memory the machine has free is refused with the figure and the key to change,
unless the user passes ``--force``; a run estimated to take more than :data:`WARN_TIME_S` is announced.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["Estimate", "estimate", "available_memory_bytes", "estimate_errors", "WARN_TIME_S"]

BYTES_PER_LINK = 1400.0
BUILD_S_PER_LINK = 0.11e-3
BYTES_PER_TRIP = 300.0
BYTES_PER_PERSON = 200.0
PERSON_STEPS_PER_S = 2.2e6
WARN_TIME_S = 600.0


@dataclass
class Estimate:
    """Peak memory (bytes) and wall time (s) of the heaviest parts, each with the key that sets it."""

    memory_bytes: float = 0.0
    time_s: float = 0.0
    parts: list[tuple[str, float, float, str]] = field(default_factory=list)  # (what, bytes, seconds, key)

    def add(self, what: str, nbytes: float, seconds: float, key: str) -> None:
        self.memory_bytes += nbytes
        self.time_s += seconds
        self.parts.append((what, nbytes, seconds, key))

    def heaviest(self, by: str = "memory") -> tuple[str, float, float, str]:
        return max(self.parts, key=lambda p: p[1] if by == "memory" else p[2])


def available_memory_bytes() -> float:
    """MemAvailable from /proc/meminfo (Linux); +inf when unknown (no refusal then)."""
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return float(line.split()[1]) * 1024.0
    except OSError:
        pass
    return math.inf


def _city_links(city: Any, base_dir: Path) -> tuple[float, str, str]:
    """(directed links, description, key) of a city section, from its keys or its file's size."""
    src = city.source
    if src == "grid":
        g = city.grid
        return 2.0 * (2 * g.nx * g.ny - g.nx - g.ny), f"{g.nx}x{g.ny} grid", "city.grid.nx/ny"
    if src == "radial":
        r = city.radial
        return 4.0 * r.rings * r.spokes, f"{r.rings} rings x {r.spokes} spokes", "city.radial"
    if src == "line":
        return float(city.line.n_links), f"{city.line.n_links} links", "city.line.n_links"
    from twin.scenario import resolve_data_path

    try:
        p = resolve_data_path(city.path, base_dir)
        size = p.stat().st_size
        with open(p, "rb") as f:
            gz = f.read(2) == b"\x1f\x8b"
    except (OSError, ValueError, TypeError):
        return 0.0, "network file", "city.path"
    # about 600 bytes of (uncompressed) XML per link in SUMO and OSM files; gzip packs them about 8x
    return size * (8.0 if gz else 1.0) / 600.0, f"{Path(city.path).name} ({size / 1e6:.1f} MB)", "city.path"


def _trips(sc: Any) -> tuple[float, str]:
    d = sc.demand
    if d.trips_file or d.od_file:
        return 0.0, "demand file"  # counted and bounded by twin.data_checks
    return float(d.trips) * float(d.scale), "demand.trips"


def estimate(sc: Any, base_dir: Path, n_runs: int = 1) -> Estimate:
    """Memory and time of running one resolved variant ``n_runs`` times (variants x replications)."""
    est = Estimate()
    links, what, key = _city_links(sc.city, Path(base_dir))
    est.add(f"city ({what}: {links:,.0f} links)", links * BYTES_PER_LINK, links * BUILD_S_PER_LINK, key)
    n_trips, tkey = _trips(sc)
    if n_trips:
        est.add(f"{n_trips:,.0f} car trips", n_trips * BYTES_PER_TRIP, 0.0, tkey)
    records = max(1.0, sc.time.duration_s / sc.time.record_interval_s)
    est.add(f"recorded series ({records:,.0f} records x {links:,.0f} links x {n_runs} runs)",
            links * records * 6 * 8.0 * n_runs, 0.0, "time.record_interval_s")
    crowd = sc.domain_configs.get("crowd")
    if crowd is not None:
        dt = float(getattr(crowd, "dt_s", 0.05))
        for i, v in enumerate(getattr(crowd, "venues", [])):
            persons = float(getattr(v, "initial_persons", 0) or 0)
            arr = getattr(v, "arrivals", None)
            persons += float(getattr(arr, "persons", 0) or 0) if arr is not None else 0.0
            steps = sc.time.duration_s / dt
            est.add(f"crowd venue {v.name!r} ({persons:,.0f} persons x {steps:,.0f} steps)",
                    persons * BYTES_PER_PERSON, persons * steps / PERSON_STEPS_PER_S * n_runs,
                    f"crowd.venues[{i}].initial_persons/arrivals.persons")
    return est


def _gb(x: float) -> str:
    return f"{x / 1e9:.1f} GB" if x >= 1e8 else f"{x / 1e6:.0f} MB"


def estimate_errors(variants: dict[str, Any], base_dir: Path, runs_per_variant: int = 1,
                    free_bytes: float | None = None) -> tuple[list[str], list[str]]:
    """(errors, notes): an error per variant whose memory estimate exceeds the free memory (naming the figure
    and the key to change); a note when the whole run is estimated to take longer than WARN_TIME_S."""
    free = available_memory_bytes() if free_bytes is None else free_bytes
    errs: list[str] = []
    total_s = 0.0
    for vname, sc in variants.items():
        est = estimate(sc, base_dir, runs_per_variant)
        total_s += est.time_s
        pre = "" if vname == "baseline" else f"variants.{vname}."
        if est.memory_bytes > free:
            what, nbytes, _, key = est.heaviest()
            errs.append(f"{pre}{key}: needs about {_gb(est.memory_bytes)} of memory ({what}: {_gb(nbytes)}), more "
                        f"than the {_gb(free)} free on this machine — lower {key}, or pass --force to try anyway")
    notes = []
    if total_s > WARN_TIME_S:
        heavy = max((estimate(sc, base_dir, runs_per_variant).heaviest("time") for sc in variants.values()),
                    key=lambda p: p[2])
        notes.append(f"estimated run time about {total_s / 60:,.0f} min (mostly {heavy[0]}; key {heavy[3]})")
    return list(dict.fromkeys(errs)), notes
