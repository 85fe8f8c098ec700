"""The one context a domain receives at ``setup``: clock, city, traffic API, event bus, RNG streams, paths, times.

Domains see only this object (never the engine): ``env`` (the simpy clock, seconds from scenario start),
``city``, ``traffic`` (the traffic API, or None), ``bus`` and ``shared`` (how domains talk), ``spawn_rng(name)``
(independent named streams fixed by ``seed``), ``resolve_path`` (scenario data paths, contained),
``duration_s``, ``step_s``, ``record_interval_s``, ``record_times``, ``clock_start``/``start_hour``.
It is a ``mesa.Model`` because the few rich agents (stations, units, drivers) are Mesa agents and need one.
Test stand-ins build the same context (:meth:`DomainContext.for_city`) and run it on the real engine.
"""
from __future__ import annotations

import zlib
from pathlib import Path
from typing import Any

import mesa
import numpy as np
import simpy

from twin.domain import EventBus

__all__ = ["DomainContext", "record_times"]


def record_times(duration_s: float, interval_s: float) -> np.ndarray:
    """Recording times (s): every ``interval_s`` up to ``duration_s``, and always ``duration_s`` itself."""
    n = int(np.floor(duration_s / interval_s + 1e-9))
    times = interval_s * np.arange(1, n + 1, dtype=float)
    if n == 0 or times[-1] < duration_s - 1e-9:
        times = np.append(times, float(duration_s))
    return times


class DomainContext(mesa.Model):
    """What every domain may use of a run (see the module docstring). Attribute names are the contract."""

    def __init__(self, city: Any, *, seed: int = 0, duration_s: float, step_s: float = 1.0,
                 record_interval_s: float = 300.0, clock_start: str = "00:00",
                 scenario_dir: str | Path = ".", traffic: Any = None) -> None:
        super().__init__(seed=int(seed))
        self.seed = int(seed)
        self.env = simpy.Environment()
        self.city = city
        self.traffic = traffic
        self.bus = EventBus()
        self.shared: dict[str, Any] = {}
        self.duration_s = float(duration_s)
        self.step_s = float(step_s)
        self.record_interval_s = float(record_interval_s)
        self.record_times = record_times(self.duration_s, self.record_interval_s)
        self.clock_start = str(clock_start)
        h, m = self.clock_start.split(":")
        self.start_hour = int(h) + int(m) / 60.0  # clock hour of t = 0
        self.scenario_dir = Path(scenario_dir)
        self.data_files: list[Path] = []  # every file resolved through resolve_path (provenance digests them)

    @classmethod
    def from_scenario(cls, scenario: Any, scenario_dir: str | Path, city: Any) -> "DomainContext":
        """The context of one resolved scenario (one variant, one seed) on ``city``."""
        t = scenario.time
        return cls(city, seed=scenario.seed, duration_s=t.duration_s, step_s=t.step_s,
                   record_interval_s=t.record_interval_s, clock_start=t.start, scenario_dir=scenario_dir)

    @classmethod
    def for_city(cls, city: Any, duration_s: float, record_interval_s: float = 900.0, seed: int = 0,
                 scenario_dir: str | Path = ".", clock_start: str = "00:00") -> "DomainContext":
        """A context for running domains on ``city`` without a scenario file (tests, benchmarks)."""
        return cls(city, seed=seed, duration_s=duration_s, record_interval_s=record_interval_s,
                   clock_start=clock_start, scenario_dir=scenario_dir)

    def spawn_rng(self, name: str) -> np.random.Generator:
        """An independent generator for ``name``, fixed by the seed (the order of calls does not matter)."""
        return np.random.default_rng(np.random.SeedSequence([self.seed, zlib.crc32(name.encode())]))

    def resolve_path(self, p: str | Path) -> Path:
        """A data path from the scenario, relative to its folder; refuses paths that leave the scenario's
        folder and the project (ValueError; docs/security.md). Files resolved here are digested into provenance."""
        from twin.scenario import resolve_data_path

        path = resolve_data_path(str(p), self.scenario_dir)
        if path not in self.data_files:
            self.data_files.append(path)
        return path
