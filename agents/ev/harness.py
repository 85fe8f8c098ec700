"""A minimal stand-in for the engine (simpy clock + Mesa model + precomputed free-flow trips), for the
benchmark and for unit tests that must not depend on a traffic back-end's speed.

``PrecomputedTraffic.drive`` fires after the free-flow shortest-path time (all pairs computed once with
scipy): no congestion, so it measures the EV domain alone.
"""
from __future__ import annotations

import zlib
from pathlib import Path

import mesa
import numpy as np
import simpy
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import dijkstra

from agents.traffic.backend import TripResult
from twin.domain import EventBus

__all__ = ["PrecomputedTraffic", "MiniTwin"]


class PrecomputedTraffic:
    """Free-flow travel times and distances between all node pairs; ``drive`` is a timeout."""

    def __init__(self, env: simpy.Environment, city) -> None:
        a = city.arrays
        self.env, self.city = env, city
        g = csr_matrix((a.fft_s, (a.link_from, a.link_to)), shape=(a.n_nodes, a.n_nodes))
        self.tt, pred = dijkstra(g, directed=True, return_predecessors=True)
        gl = csr_matrix((a.length_m, (a.link_from, a.link_to)), shape=(a.n_nodes, a.n_nodes))
        self.dist = dijkstra(gl, directed=True)  # shortest distance (equals the fastest path on uniform speeds)
        self.n_trips = 0

    def drive(self, origin, destination, kind: str = "car", speed_factor: float = 1.0, priority: bool = False, tag=None):
        o, d = int(origin), int(destination)
        tt = self.tt[o, d]
        self.n_trips += 1
        now = self.env.now
        if not np.isfinite(tt):
            return self.env.timeout(0.0, TripResult(self.n_trips, o, d, now, now, 0.0, "unroutable"))
        return self.env.timeout(tt, TripResult(self.n_trips, o, d, now, now + tt, float(self.dist[o, d]), "arrived"))

    def link_travel_times_s(self) -> np.ndarray:
        return self.city.arrays.fft_s.copy()

    def travel_time_s(self, origin, destination, congested: bool = True) -> float:
        return float(self.tt[int(origin), int(destination)])


class MiniTwin(mesa.Model):
    """What the EV domain sees of ``CityTwin``: env, spawn_rng, city, traffic, bus, shared, times, resolve_path."""

    def __init__(self, city, duration_s: float, seed: int = 0, record_interval_s: float = 900.0,
                 demand_trips: dict | None = None) -> None:
        super().__init__(seed=seed)
        self.seed_ = seed
        self.env = simpy.Environment()
        self.city = city
        self.traffic = PrecomputedTraffic(self.env, city)
        self.bus, self.shared = EventBus(), {}
        if demand_trips is not None:
            self.shared["demand_trips"] = demand_trips
        self.duration_s, self.step_s, self.record_interval_s = float(duration_s), 1.0, float(record_interval_s)
        self.record_times = np.arange(1, int(duration_s // record_interval_s) + 1) * record_interval_s

    def spawn_rng(self, name: str) -> np.random.Generator:
        return np.random.default_rng(np.random.SeedSequence([self.seed_, zlib.crc32(name.encode())]))

    def resolve_path(self, p) -> Path:
        return Path(p).resolve()

    def run_domain(self, domain) -> None:
        """Set the domain up, record at every record time, run to the end."""
        domain.setup(self)

        def recorder():
            for t in self.record_times:
                yield self.env.timeout(float(t) - self.env.now)
                domain.record(float(t))

        self.env.process(recorder())
        self.env.run(until=self.duration_s + 1e-6)
