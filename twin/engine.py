"""The engine: runs domains on one :class:`~twin.context.DomainContext` clock and merges their results.

:class:`Engine` takes a context and its domains (tests and benchmarks build them directly, with traffic
stand-ins from ``agents/traffic/standins.py``); :class:`CityTwin` is the same engine built from a resolved
scenario (demand, domains from the registry, provenance). Only ``twin.run`` builds cities and runs
``CityTwin`` for the commands; scripts may use either class.
"""
from __future__ import annotations

import json
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Iterable

import numpy as np
import xarray as xr

from networks import CityGraph
from twin.city import build_city
from twin.context import DomainContext
from twin.demand import generate_trips
from twin.domain import KPI, Domain, DomainRunError
from twin.registry import domain_names, get_domain_spec
from twin.results import kpi_variables, merge_domain_results
from twin.scenario import Scenario

__all__ = ["Engine", "CityTwin", "run_scenario", "MissingDomainError", "domain_requires"]


class MissingDomainError(ValueError):
    """A domain needs another that is not in the run (e.g. EV without traffic); ``messages`` name the keys."""

    def __init__(self, messages: list[str]) -> None:
        self.messages = messages
        super().__init__("; ".join(messages))


def domain_requires(name: str, domain: Any = None) -> tuple[str, ...]:
    """What domain ``name`` needs to run (``DomainSpec.requires``; a domain object's ``requires`` too)."""
    need: tuple[str, ...] = tuple(getattr(domain, "requires", ()) or ())
    try:
        need += tuple(getattr(get_domain_spec(name), "requires", ()) or ())
    except (KeyError, ImportError):
        pass
    return tuple(dict.fromkeys(need))


def missing_domains(present: Iterable[str], domains: dict[str, Any] | None = None) -> list[str]:
    """One message per unmet need among the domains ``present`` (names; ``domains`` may give the built
    domain objects, whose own ``requires`` count too), naming the key to change."""
    names = list(present)
    out = []
    for n in names:
        for need in domain_requires(n, (domains or {}).get(n)):
            if need not in names:
                out.append(f"{n}: needs {need}, but {need}.enabled is false" if need == "traffic" else
                           f"{n}: needs {need}, but the scenario has no {need}: section (or it is disabled)")
    return out


class Engine:
    """Domains on one clock: ``setup`` (claims, then each domain's ``setup(context)``), one recorder process,
    ``run`` to the end, ``results`` merged with a conflict check (two domains never share a variable)."""

    def __init__(self, context: DomainContext, domains: dict[str, Domain] | Iterable[Domain]) -> None:
        if not isinstance(domains, dict):
            domains = {d.name: d for d in domains}
        self.context = context
        self.domains: dict[str, Domain] = dict(domains)
        missing = missing_domains(self.domains, self.domains)
        if missing:
            raise MissingDomainError(missing)
        if context.traffic is None:
            context.traffic = self.domains.get("traffic")
        self.wall_time_s = 0.0
        self.complete = False

    # ---- the context, as attributes of the engine (scripts and tests read them here) ------------------
    @property
    def env(self):
        return self.context.env

    @property
    def city(self) -> CityGraph:
        return self.context.city

    @property
    def traffic(self):
        return self.context.traffic

    @property
    def bus(self):
        return self.context.bus

    @property
    def shared(self) -> dict:
        return self.context.shared

    @property
    def duration_s(self) -> float:
        return self.context.duration_s

    @property
    def record_times(self) -> np.ndarray:
        return self.context.record_times

    def spawn_rng(self, name: str) -> np.random.Generator:
        return self.context.spawn_rng(name)

    def resolve_path(self, p: str | Path) -> Path:
        return self.context.resolve_path(p)

    # ---- running ----------------------------------------------------------------------------------------
    def setup(self) -> None:
        """Let domains claim background trips (``shared["demand_trips"]``), then set every domain up."""
        ctx = self.context
        trips = ctx.shared.get("demand_trips")
        if trips is not None:
            claimed = np.zeros(len(trips["origin"]), bool)
            for d in self.domains.values():
                idx = d.claim_trips(ctx, trips)
                if idx is not None and len(idx):
                    claimed[np.asarray(idx)] = True
            ctx.shared["background_trips"] = {k: v[~claimed] for k, v in trips.items()}
        for d in self.domains.values():
            d.setup(ctx)
        ctx.env.process(self._recorder())

    def _recorder(self):
        env = self.context.env
        for t in self.context.record_times:
            yield env.timeout(float(t) - env.now)
            for d in self.domains.values():
                d.record(float(t))

    def run(self, progress: Callable[[float, float], None] | None = None, chunk_s: float = 300.0) -> xr.Dataset:
        """Run to the end; return the results Dataset (docs/results.md). ``progress(t_s, duration_s)`` is
        called after each simulated ``chunk_s``. A :class:`DomainRunError` carries the partial results."""
        t0 = time.perf_counter()
        self.setup()
        env, end = self.context.env, self.context.duration_s
        t = 0.0
        try:
            while t < end:
                t = min(t + chunk_s, end)
                env.run(until=t)
                if progress:
                    progress(t, end)
            env.run(until=end + 1e-6)  # events exactly at the end (records at duration_s)
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
        """The domains' datasets merged (conflicts raise), node coordinates, KPIs, ``wall_time_s``/``complete``."""
        ds = merge_domain_results({n: d.finalize(self.context.duration_s) for n, d in self.domains.items()})
        city = self.context.city
        a, G = city.arrays, city.G
        lon = np.array([float(G.nodes[n].get("lon", np.nan)) for n in city.node_ids])
        lat = np.array([float(G.nodes[n].get("lat", np.nan)) for n in city.node_ids])
        ds = ds.assign(
            node_x=(("node",), a.node_x, {"units": "m", "long_name": "node x (projected)"}),
            node_y=(("node",), a.node_y, {"units": "m", "long_name": "node y (projected)"}),
            node_lon=(("node",), lon, {"units": "degrees_east", "long_name": "node longitude"}),
            node_lat=(("node",), lat, {"units": "degrees_north", "long_name": "node latitude"}),
        )
        ds = ds.assign_coords(node=np.array([str(n) for n in city.node_ids], dtype=object))
        if "link" in ds.coords and [str(x) for x in ds["link"].values] == city.link_ids:  # street names (SUMO edge name / OSM name tag) for the views
            names = [str(city.link_attr(i).get("name") or "") for i in range(len(city.link_ids))]
            if any(names):
                ds = ds.assign(link_name=(("link",), np.array(names, dtype=object), {"long_name": "street name"}))
        ds = ds.assign(kpi_variables(self.kpis()))
        ds.attrs.update({"seed": int(self.context.seed), "clock_start": self.context.clock_start,
                         "city": city.name, "domains": json.dumps(list(self.domains)),
                         "wall_time_s": round(self.wall_time_s, 3), "complete": int(self.complete),
                         "Conventions": "CF-1.10"})
        return ds


class CityTwin(Engine):
    """The engine for one resolved scenario (one variant, one seed): its city, background demand, the
    domains its sections enable (from the registry), and provenance in the results' attrs.

    ``overrides`` records command-line changes already applied to ``scenario`` (e.g. ``{"backend": "sumo"}``).
    """

    def __init__(self, scenario: Scenario, scenario_dir: str | Path = ".", city: CityGraph | None = None,
                 overrides: dict | None = None) -> None:
        self.scenario = scenario
        self.scenario_dir = Path(scenario_dir)
        self.overrides = dict(overrides or {})
        city = city if city is not None else build_city(scenario.city, self.scenario_dir, scenario.name)
        ctx = DomainContext.from_scenario(scenario, self.scenario_dir, city)
        configs = scenario.domain_configs
        domains = {n: get_domain_spec(n).factory(configs[n]) for n in domain_names() if n in configs}
        super().__init__(ctx, domains)

    @property
    def step_s(self) -> float:
        return self.context.step_s

    @property
    def record_interval_s(self) -> float:
        return self.context.record_interval_s

    def setup(self) -> None:
        """Generate the scenario's background demand, then set the domains up."""
        sc, ctx = self.scenario, self.context
        ctx.shared["demand_trips"] = generate_trips(sc.demand, ctx.city, ctx.spawn_rng("demand"), ctx.duration_s,
                                                    sc.time.start_hour, resolve=ctx.resolve_path,
                                                    source=str(self.scenario_dir))
        super().setup()

    def results(self) -> xr.Dataset:
        """The engine's results plus what ran: resolved configuration, overrides, code version, data digests."""
        from twin.provenance import provenance_attrs

        ds = super().results()
        sc = self.scenario
        ds.attrs.update({
            "title": f"CityTwin results: {sc.name} / {sc.variant}",
            "scenario_name": sc.name, "scenario_description": sc.description,
            "variant": sc.variant, "variant_description": sc.variant_description,
            "backend": getattr(sc.domain_configs.get("traffic"), "backend", "none"),
            "scenario_dir": str(self.scenario_dir.resolve()),
            "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        })
        ds.attrs.update(provenance_attrs(sc, self.scenario_dir, self.overrides, self.context.data_files))
        return ds


def run_scenario(scenario: Scenario, scenario_dir: str | Path = ".", progress=None) -> xr.Dataset:
    """Build and run one resolved scenario (one variant); return its results Dataset."""
    return CityTwin(scenario, scenario_dir).run(progress=progress)
