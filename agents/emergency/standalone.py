"""A minimal engine stand-in for tests and benchmarks of the emergency domain on its own.

``StandaloneTwin`` offers the slice of the ``CityTwin`` contract the domain uses (env, city, traffic,
bus, shared, spawn_rng, duration/record times); ``FixedTimeTraffic`` is a traffic back-end whose every
drive takes the same time, so queueing can be checked against Erlang C.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Hashable

import mesa
import numpy as np
import simpy

from agents.traffic.backend import TripResult
from twin.domain import EventBus

__all__ = ["FixedTimeTraffic", "FreeFlowTravel", "StandaloneTwin"]


class FixedTimeTraffic:
    """Every drive takes ``travel_s`` seconds (0 allowed); link times are free-flow; nothing congests."""

    def __init__(self, travel_s: float = 0.0) -> None:
        self.travel_s = float(travel_s)
        self.twin: Any = None
        self.trips = 0

    def setup(self, twin: Any) -> None:
        self.twin = twin
        self._tt = np.asarray(twin.city.arrays.fft_s, np.float64).copy()

    def drive(self, origin: Hashable, destination: Hashable, kind: str = "car", speed_factor: float = 1.0,
              priority: bool = False, tag: Any = None) -> simpy.Event:
        env = self.twin.env
        self.trips += 1
        res = TripResult(self.trips, int(origin), int(destination), env.now, env.now + self.travel_s, 0.0, "arrived")
        return env.timeout(self.travel_s, value=res)

    def set_capacity_factor(self, link: Hashable, factor: float) -> None:
        i = self.twin.city.link_index(link)
        self._tt[i] = np.inf if factor <= 0 else self.twin.city.arrays.fft_s[i]

    def link_travel_times_s(self) -> np.ndarray:
        return self._tt

    def route(self, origin: Hashable, destination: Hashable, congested: bool = True) -> list[int]:
        return []


class FreeFlowTravel(FixedTimeTraffic):
    """Drives take the free-flow shortest time (divided by ``speed_factor``); used when traffic is off."""

    def drive(self, origin: Hashable, destination: Hashable, kind: str = "car", speed_factor: float = 1.0,
              priority: bool = False, tag: Any = None) -> simpy.Event:
        from networks.routing import dijkstra_from

        env, city = self.twin.env, self.twin.city
        a = city.arrays
        o, d = city.node_index(origin), city.node_index(destination)
        dist, _ = dijkstra_from(o, self._tt, a.out_indptr, a.out_links, a.link_to, a.n_nodes)
        self.trips += 1
        if not np.isfinite(dist[d]):
            return env.timeout(0.0, value=TripResult(self.trips, o, d, env.now, env.now, 0.0, "unroutable"))
        tt = float(dist[d]) / (speed_factor if priority else 1.0)
        return env.timeout(tt, value=TripResult(self.trips, o, d, env.now, env.now + tt, 0.0, "arrived"))

    def route(self, origin: Hashable, destination: Hashable, congested: bool = True) -> list[int]:
        from networks.routing import dijkstra_from, path_links

        city = self.twin.city
        a = city.arrays
        o, d = city.node_index(origin), city.node_index(destination)
        _, pred = dijkstra_from(o, self._tt, a.out_indptr, a.out_links, a.link_to, a.n_nodes)
        return [int(x) for x in path_links(o, d, pred, a.link_from)]


class StandaloneTwin(mesa.Model):
    """Clock, city, traffic and bus for running domains without ``twin.engine``."""

    def __init__(self, city: Any, traffic: Any, duration_s: float, record_interval_s: float = 900.0,
                 seed: int = 0, step_s: float = 1.0, root: str | Path = ".") -> None:
        super().__init__(seed=seed)
        self.env = simpy.Environment()
        self.city = city
        self.traffic = traffic
        self.bus = EventBus()
        self.shared: dict = {}
        self.duration_s = float(duration_s)
        self.step_s = float(step_s)
        self.record_interval_s = float(record_interval_s)
        self.record_times = np.arange(record_interval_s, duration_s + 1e-9, record_interval_s)
        self.seed_value = int(seed)
        self.root = Path(root).resolve()
        self.domains: list[Any] = []

    def spawn_rng(self, name: str) -> np.random.Generator:
        """An independent generator per name, fixed by the seed."""
        key = int.from_bytes(name.encode()[:8].ljust(8, b"\0"), "little")
        return np.random.default_rng([self.seed_value, key])

    def resolve_path(self, p: str | Path) -> Path:
        path = (self.root / p).resolve()
        if self.root not in path.parents and path != self.root:
            raise ValueError(f"{p}: leaves the project folder")
        return path

    def run(self, *domains: Any) -> list:
        """Set up the traffic back-end and ``domains``, run to the end, return their finalized Datasets."""
        if hasattr(self.traffic, "setup"):
            self.traffic.setup(self)
        for d in domains:
            d.setup(self)
        self.domains = list(domains)
        self.env.process(self._recorder())
        self.env.run(until=self.duration_s + 1e-6)
        return [d.finalize(self.duration_s) for d in domains]

    def _recorder(self):
        for t in self.record_times:
            yield self.env.timeout(float(t) - self.env.now)
            if hasattr(self.traffic, "record"):
                self.traffic.record(float(t))
            for d in self.domains:
                d.record(float(t))
