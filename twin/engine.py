"""CityTwin: one Mesa model holding one simpy clock, the city graph and the domains that run on it."""
from __future__ import annotations

import json
import time
import zlib
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable

import mesa
import numpy as np
import simpy
import xarray as xr

from networks import CityGraph
from twin.city import build_city
from twin.demand import generate_trips
from twin.domain import KPI, Domain, DomainRunError, EventBus
from twin.registry import domain_names, get_domain_spec
from twin.results import kpi_variables, package_versions
from twin.scenario import Scenario, resolve_data_path, scenario_hash

__all__ = ["CityTwin", "run_scenario"]


class CityTwin(mesa.Model):
    """The coupled engine: ``env`` (simpy, the single clock, seconds from scenario start), ``rng`` (seeded),
    ``city`` (the road network), ``traffic`` (the traffic back-end's API), ``bus`` and ``shared`` (how domains
    talk), and the domains themselves in ``domains``.
    """

    def __init__(self, scenario: Scenario, scenario_dir: str | Path = ".", city: CityGraph | None = None) -> None:
        super().__init__(seed=scenario.seed)
        self.scenario = scenario
        self.scenario_dir = Path(scenario_dir)
        self.env = simpy.Environment()
        self.bus = EventBus()
        self.shared: dict[str, Any] = {}
        t = scenario.time
        self.duration_s = float(t.duration_s)
        self.step_s = float(t.step_s)
        self.record_interval_s = float(t.record_interval_s)
        n_rec = int(np.floor(self.duration_s / self.record_interval_s + 1e-9))
        self.record_times = self.record_interval_s * np.arange(1, n_rec + 1)
        if n_rec == 0 or self.record_times[-1] < self.duration_s - 1e-9:
            self.record_times = np.append(self.record_times, self.duration_s)
        self.city = city if city is not None else build_city(scenario.city, self.scenario_dir, scenario.name)
        self.domains: dict[str, Domain] = {}
        configs = scenario.domain_configs
        for name in domain_names():
            if name in configs:
                self.domains[name] = get_domain_spec(name).factory(configs[name])
        self.traffic = self.domains.get("traffic")
        self.wall_time_s = 0.0
        self.complete = False

    # ------------------------------------------------------------------ helpers for domains
    def spawn_rng(self, name: str) -> np.random.Generator:
        """An independent generator for ``name``, fixed by the scenario seed (order of calls does not matter)."""
        return np.random.default_rng(np.random.SeedSequence([self.scenario.seed, zlib.crc32(name.encode())]))

    def resolve_path(self, p: str | Path) -> Path:
        """A data path from the scenario, relative to its file; refuses paths that leave the project."""
        return resolve_data_path(str(p), self.scenario_dir)

    # ------------------------------------------------------------------ running
    def setup(self) -> None:
        """Generate background demand and set every domain up (traffic first)."""
        sc = self.scenario
        trips = generate_trips(sc.demand, self.city, self.spawn_rng("demand"), self.duration_s,
                               sc.time.start_hour, resolve=self.resolve_path, source=str(self.scenario_dir))
        self.shared["demand_trips"] = trips
        claimed = np.zeros(len(trips["origin"]), bool)
        for d in self.domains.values():
            idx = d.claim_trips(self, trips)
            if idx is not None and len(idx):
                claimed[np.asarray(idx)] = True
        self.shared["background_trips"] = {k: v[~claimed] for k, v in trips.items()}
        for d in self.domains.values():
            d.setup(self)
        self.env.process(self._recorder())

    def _recorder(self):
        for t in self.record_times:
            yield self.env.timeout(float(t) - self.env.now)
            for d in self.domains.values():
                d.record(float(t))

    def run(self, progress: Callable[[float, float], None] | None = None, chunk_s: float = 300.0) -> xr.Dataset:
        """Run to the end of the scenario; return the results Dataset (see docs/results.md).

        ``progress(t_s, duration_s)`` is called after each simulated ``chunk_s``.
        """
        t0 = time.perf_counter()
        self.setup()
        t = 0.0
        try:
            while t < self.duration_s:
                t = min(t + chunk_s, self.duration_s)
                self.env.run(until=t)
                if progress:
                    progress(t, self.duration_s)
            # events exactly at the end (records at duration_s): env.run(until) is exclusive
            self.env.run(until=self.duration_s + 1e-6)
        except DomainRunError as exc:  # keep what was simulated, marked incomplete
            self.wall_time_s = time.perf_counter() - t0
            exc.dataset = self.results()
            raise
        self.complete = True
        self.wall_time_s = time.perf_counter() - t0
        return self.results()

    def kpis(self) -> dict[str, dict[str, KPI]]:
        """Every domain's KPIs, by domain name."""
        return {name: d.kpis() for name, d in self.domains.items()}

    def results(self) -> xr.Dataset:
        """Merge the domains' datasets, add node coordinates, KPIs and run metadata."""
        parts = [d.finalize(self.duration_s) for d in self.domains.values()]
        ds = xr.merge(parts, compat="override", join="outer") if parts else xr.Dataset()
        a = self.city.arrays
        G = self.city.G
        lon = np.array([float(G.nodes[n].get("lon", np.nan)) for n in self.city.node_ids])
        lat = np.array([float(G.nodes[n].get("lat", np.nan)) for n in self.city.node_ids])
        ds = ds.assign(
            node_x=(("node",), a.node_x, {"units": "m", "long_name": "node x (projected)"}),
            node_y=(("node",), a.node_y, {"units": "m", "long_name": "node y (projected)"}),
            node_lon=(("node",), lon, {"units": "degrees_east", "long_name": "node longitude"}),
            node_lat=(("node",), lat, {"units": "degrees_north", "long_name": "node latitude"}),
        )
        ds = ds.assign_coords(node=np.array([str(n) for n in self.city.node_ids], dtype=object))
        ds = ds.assign(kpi_variables(self.kpis()))
        sc = self.scenario
        ds.attrs.update({
            "title": f"CityTwin results: {sc.name} / {sc.variant}",
            "scenario_name": sc.name, "scenario_description": sc.description,
            "variant": sc.variant, "variant_description": sc.variant_description,
            "scenario_hash": scenario_hash(sc), "seed": int(sc.seed),
            "backend": getattr(sc.domain_configs.get("traffic"), "backend", "none"),
            "city": self.city.name, "clock_start": sc.time.start,
            "scenario_dir": str(self.scenario_dir.resolve()),
            "domains": json.dumps(list(self.domains)),
            "citytwin_version": package_versions().get("citytwin", "dev"),
            "versions": json.dumps(package_versions()),
            "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "wall_time_s": round(self.wall_time_s, 3), "complete": int(self.complete),
            "scenario_json": json.dumps(sc.model_dump(mode="json"), sort_keys=True),
            "Conventions": "CF-1.10",
        })
        return ds


def run_scenario(scenario: Scenario, scenario_dir: str | Path = ".", progress=None) -> xr.Dataset:
    """Build and run one resolved scenario (one variant); return its results Dataset."""
    return CityTwin(scenario, scenario_dir).run(progress=progress)
