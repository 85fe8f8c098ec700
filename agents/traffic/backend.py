"""The traffic API every back-end and test stand-in implements (built-in meso model, SUMO, stand-ins).

Other domains use only this API, through ``twin.traffic`` (:class:`TrafficAPI`, a runtime-checkable Protocol):

- ``drive(origin, destination, ...)`` returns a simpy event that fires when the vehicle arrives;
  its value is a :class:`TripResult` (status ``"arrived"``, ``"unroutable"`` or ``"stranded"``, never an
  exception); ``depart_s`` is the time of the call and ``arrive_s`` the arrival time: the event fires then,
  or, on a time-stepped back-end, at the end of the step in which the vehicle arrived.
- ``add_trips(...)`` adds background demand (no events), e.g. people leaving a venue by car; it returns one
  distinct trip id per trip, and those trips appear in the results' trip table.
- ``set_capacity_factor(link, f)`` scales a link's capacity while the run goes on (0 closes it: its link time
  becomes ``inf`` and routing avoids it at once; 1 restores it).
- ``link_travel_times_s()`` gives the current congested travel time of every link (s; inf if closed).
- ``route(o, d)`` / ``travel_time_s(o, d)`` / ``times_to(d)`` answer routing questions on the live link
  times (``congested=False``: free-flow times, closures still apply); the three agree with each other and
  with ``link_travel_times_s()``.

A back-end is also a ``twin.domain.Domain``: at setup it takes the engine's background trips
(``shared["background_trips"]``, i.e. without the trips other domains claimed through ``claim_trips``), and
``finalize`` returns the variables of ``agents/traffic/schema.py`` (same names, dims and units on every
back-end). ``tests/test_traffic_contract.py`` checks all of this on every back-end and stand-in.

Nodes are node indices of ``twin.city`` (ints) or node ids; links are link indices or link ids.
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any, Hashable, Protocol, runtime_checkable

import numpy as np

from networks.routing import dijkstra_from, dijkstra_to, path_links

__all__ = ["TripResult", "TrafficAPI", "TrafficBackend", "VEHICLE_KINDS", "TRIP_STATUSES"]

# Vehicle kinds recorded in the trip table (index stored as int8 in results).
VEHICLE_KINDS = ("car", "ev", "emergency", "bus", "truck")
# What a ``drive`` event may report.
TRIP_STATUSES = ("arrived", "unroutable", "stranded")


@dataclass(frozen=True)
class TripResult:
    """What a ``drive`` event yields on arrival (times in seconds from scenario start, metres)."""

    trip: int
    origin: int
    destination: int
    depart_s: float
    arrive_s: float
    distance_m: float
    status: str  # "arrived" | "unroutable" | "stranded"

    @property
    def travel_time_s(self) -> float:
        return self.arrive_s - self.depart_s


@runtime_checkable
class TrafficAPI(Protocol):
    """The calls other domains may make on ``twin.traffic`` (see the module docstring for the contract)."""

    def drive(self, origin: Hashable, destination: Hashable, kind: str = "car", speed_factor: float = 1.0,
              priority: bool = False, tag: Any = None) -> Any:
        """Start a vehicle now; return a simpy event whose value is a :class:`TripResult`."""
        ...

    def add_trips(self, origins: Any, destinations: Any, depart_s: Any, kind: str = "car") -> np.ndarray:
        """Add background trips (departure times s >= now); return their trip ids."""
        ...

    def route(self, origin: Hashable, destination: Hashable, congested: bool = True) -> list[int]:
        """Link indices of the current shortest path (empty if unroutable or origin == destination)."""
        ...

    def travel_time_s(self, origin: Hashable, destination: Hashable, congested: bool = True) -> float:
        """Shortest travel time (s) between two nodes; inf if unroutable."""
        ...

    def times_to(self, destination: Hashable, congested: bool = True) -> np.ndarray:
        """Shortest travel time (s) from every node to ``destination``."""
        ...

    def link_travel_times_s(self) -> np.ndarray:
        """Current travel time (s) of every link; inf for a closed link."""
        ...

    def set_capacity_factor(self, link: Hashable, factor: float) -> None:
        """Scale a link's capacity from now on (1 normal, 0 closed)."""
        ...


class TrafficBackend(ABC):
    """Base of the traffic back-ends: the abstract calls plus routing queries shared by all of them.

    Subclasses (also ``twin.domain.Domain`` subclasses) set ``self.city`` in ``setup`` and implement the
    abstract methods; ``route``, ``travel_time_s`` and ``times_to`` then run numba Dijkstra on ``_costs``.
    """

    city: Any
    twin: Any
    duration: float

    @abstractmethod
    def drive(self, origin: Hashable, destination: Hashable, kind: str = "car",
              speed_factor: float = 1.0, priority: bool = False, tag: Any = None) -> Any:
        """Start a vehicle now from ``origin`` to ``destination``; return a simpy event fired on arrival.

        ``priority`` vehicles (emergency units) pass queues: they travel at ``speed_factor`` times
        free-flow speed plus a share of the queue delay, and do not take road capacity.
        """

    @abstractmethod
    def add_trips(self, origins: np.ndarray, destinations: np.ndarray, depart_s: np.ndarray,
                  kind: str = "car") -> np.ndarray:
        """Add background trips (node indices, departure times >= now); return their trip ids."""

    @abstractmethod
    def set_capacity_factor(self, link: Hashable, factor: float) -> None:
        """Scale a link's capacity from now on (1 = normal, 0 = closed: nobody enters)."""

    @abstractmethod
    def link_travel_times_s(self) -> np.ndarray:
        """Current congested travel time of each link in seconds (``inf`` for a closed link)."""

    @abstractmethod
    def _costs(self, congested: bool) -> np.ndarray:
        """Link costs (s) for routing queries: live congested times, or free-flow times (inf when closed)."""

    # ---- routing queries, the same for every back-end (numba Dijkstra on ``self.city``) ----------------
    def _node(self, node: Hashable) -> int:
        return self.city.node_index(node)

    def travel_time_s(self, origin: Hashable, destination: Hashable, congested: bool = True) -> float:
        """Shortest travel time between two nodes on current (or free-flow) link times; inf if none."""
        a = self.city.arrays
        dist, _ = dijkstra_from(self._node(origin), self._costs(congested), a.out_indptr, a.out_links,
                                a.link_to, a.n_nodes)
        return float(dist[self._node(destination)])

    def route(self, origin: Hashable, destination: Hashable, congested: bool = True) -> list[int]:
        """Link indices of the current shortest path (empty if unroutable or origin == destination)."""
        a = self.city.arrays
        o, d = self._node(origin), self._node(destination)
        dist, pred = dijkstra_from(o, self._costs(congested), a.out_indptr, a.out_links, a.link_to, a.n_nodes)
        if not np.isfinite(dist[d]) or o == d:
            return []
        return [int(x) for x in path_links(o, d, pred, a.link_from)]

    def times_to(self, destination: Hashable, congested: bool = True) -> np.ndarray:
        """Travel time (s) from every node to ``destination`` (one reverse Dijkstra)."""
        a = self.city.arrays
        dist, _ = dijkstra_to(self._node(destination), self._costs(congested), a.in_indptr, a.in_links,
                              a.link_from, a.n_nodes)
        return dist

    def _closure(self, cl):
        """simpy process applying one scenario closure (traffic.closures[i]) over its time window."""
        env = self.twin.env
        if cl.start_s > env.now:
            yield env.timeout(cl.start_s - env.now)
        self.set_capacity_factor(cl.link, cl.capacity_factor)
        if cl.end_s is not None and cl.end_s < self.duration:
            yield env.timeout(cl.end_s - env.now)
            self.set_capacity_factor(cl.link, 1.0)
