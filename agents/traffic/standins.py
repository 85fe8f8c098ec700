"""Traffic stand-ins for tests and benchmarks of other domains: no congestion, known travel times.

They implement the same traffic API as the real back-ends (``agents/traffic/backend.py``) and pass the same
contract suite (``tests/test_traffic_contract.py``), so a domain tested on a stand-in sees the calls, events
and results schema it will see on ``meso`` or ``sumo``:

- :class:`FixedTimeTraffic`: every reachable drive takes the same ``travel_s`` (queueing checks against
  Erlang C);
- :class:`FreeFlowTravel`: drives take the free-flow shortest time (priority vehicles divided by
  ``speed_factor``); what emergency response uses when a scenario has no traffic;
- :class:`PrecomputedTraffic`: free-flow times and distances between all node pairs, computed once with scipy
  (recomputed when a link closes or opens): drives are table look-ups, for benchmarks of other domains.

Link times are the city's free-flow times (``inf`` when closed). A capacity factor only matters at 0 (closed):
nothing congests. Every trip (driven or added) goes into one trip table, written with the traffic schema.
"""
from __future__ import annotations

from typing import Any, Hashable

import numpy as np
import simpy
import xarray as xr
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import dijkstra

from agents.traffic.backend import VEHICLE_KINDS, TrafficBackend, TripResult
from agents.traffic.config import TrafficConfig
from agents.traffic.schema import ARRIVED, PENDING, RUNNING, UNROUTABLE, traffic_dataset, traffic_kpis
from twin.domain import KPI, Domain

__all__ = ["StandinTraffic", "FixedTimeTraffic", "FreeFlowTravel", "PrecomputedTraffic"]

_TRIP_FIELDS = ("origin", "destination", "depart", "arrive", "status", "freeflow_time", "distance", "links", "kind")


class StandinTraffic(Domain, TrafficBackend):
    """Common part of the stand-ins: free-flow link times, closures, the trip table, results and KPIs.

    Subclasses implement :meth:`_travel` (how long a drive takes). ``twin`` (or a domain context) needs
    ``env``, ``city``, ``duration_s`` and, optionally, ``shared["background_trips"]``.
    """

    name = "traffic"

    def __init__(self, config: TrafficConfig | None = None) -> None:
        super().__init__(config if config is not None else TrafficConfig())
        self._trips: dict[str, list] = {k: [] for k in _TRIP_FIELDS}

    # ---------------------------------------------------------------- setup
    def setup(self, twin: Any) -> None:
        """Take the city's free-flow link times, the background trips and the scenario's closures."""
        super().setup(twin)
        self.city = twin.city
        self.env: simpy.Environment = twin.env
        self.duration = float(twin.duration_s)
        a = self.city.arrays
        self.fft = np.asarray(a.fft_s, np.float64).copy()
        self.cap_factor = np.ones(a.n_links, np.float64)
        shared = getattr(twin, "shared", {}) or {}
        demand = shared.get("background_trips", shared.get("demand_trips"))
        if demand is not None and len(demand["origin"]):
            self.add_trips(demand["origin"], demand["destination"], demand["depart_s"], kind="car")
        for cl in getattr(self.config, "closures", []):
            self.env.process(self._closure(cl))

    # ---------------------------------------------------------------- what a subclass decides
    def _travel(self, o: int, d: int, speed_factor: float, priority: bool) -> tuple[float, float, int] | None:
        """(travel time s, distance m, links) of a drive from node ``o`` to ``d`` starting now; None if unroutable."""
        raise NotImplementedError

    def _path(self, o: int, d: int) -> tuple[float, float, int] | None:
        """Free-flow shortest path now: (time s, length m, links), or None if unroutable."""
        if o == d:
            return 0.0, 0.0, 0
        links = self.route(o, d)
        if not links:
            return None
        idx = np.asarray(links)
        return float(self.fft[idx].sum()), float(self.city.arrays.length_m[idx].sum()), len(links)

    # ---------------------------------------------------------------- the traffic API
    def _new_trip(self, o: int, d: int, depart: float, kind: str) -> int:
        i = len(self._trips["origin"])
        row = {"origin": o, "destination": d, "depart": depart, "arrive": np.nan, "status": PENDING,
               "freeflow_time": np.nan, "distance": 0.0, "links": 0,
               "kind": VEHICLE_KINDS.index(kind) if kind in VEHICLE_KINDS else 0}
        for k, v in row.items():
            self._trips[k].append(v)
        return i

    def _start(self, i: int, speed_factor: float = 1.0, priority: bool = False) -> float | None:
        """Start trip ``i`` now; return its travel time (s), or None if unroutable (recorded as such)."""
        o, d = self._trips["origin"][i], self._trips["destination"][i]
        got = self._travel(o, d, speed_factor, priority)
        if got is None:
            self._trips["status"][i] = UNROUTABLE
            return None
        tt, dist, n_links = got
        ff = self._path(o, d)
        self._trips["status"][i] = RUNNING
        self._trips["arrive"][i] = self.env.now + tt
        self._trips["freeflow_time"][i] = ff[0] if ff is not None else tt
        self._trips["distance"][i] = dist
        self._trips["links"][i] = n_links
        return tt

    def _background(self, i: int, depart: float):
        if depart > self.env.now:
            yield self.env.timeout(depart - self.env.now)
        tt = self._start(i)
        if tt is not None:
            yield self.env.timeout(tt)
            self._trips["status"][i] = ARRIVED

    def add_trips(self, origins: Any, destinations: Any, depart_s: Any, kind: str = "car") -> np.ndarray:
        """Add background trips (node indices or ids; departures in s, clamped to now); return their ids."""
        deps = np.maximum(np.asarray(depart_s, np.float64), self.env.now)
        ids = []
        for o, d, t in zip(origins, destinations, deps):
            i = self._new_trip(self._node(o), self._node(d), float(t), kind)
            self.env.process(self._background(i, float(t)))
            ids.append(i)
        return np.asarray(ids, np.int64)

    def drive(self, origin: Hashable, destination: Hashable, kind: str = "car", speed_factor: float = 1.0,
              priority: bool = False, tag: Any = None) -> simpy.Event:
        """Start a vehicle now; the event fires on arrival (at once if unroutable) with a TripResult."""
        now = self.env.now
        o, d = self._node(origin), self._node(destination)
        i = self._new_trip(o, d, now, kind)
        tt = self._start(i, speed_factor, priority)
        if tt is None:
            return self.env.timeout(0.0, TripResult(i, o, d, now, float("nan"), 0.0, "unroutable"))
        ev = self.env.event()

        def arrive(_):
            self._trips["status"][i] = ARRIVED
            ev.succeed(TripResult(i, o, d, now, now + tt, float(self._trips["distance"][i]), "arrived"))

        self.env.timeout(tt).callbacks.append(arrive)
        return ev

    def set_capacity_factor(self, link: Hashable, factor: float) -> None:
        """Close (0) or reopen (> 0) a link; partial factors change nothing: stand-ins do not congest."""
        self.cap_factor[self.city.link_index(link)] = max(0.0, float(factor))

    def link_travel_times_s(self) -> np.ndarray:
        """Free-flow link times (s), inf when closed."""
        return np.where(self.cap_factor > 0, self.fft, np.inf)

    def _costs(self, congested: bool) -> np.ndarray:
        return self.link_travel_times_s()

    # ---------------------------------------------------------------- results
    def trip_table(self) -> dict[str, np.ndarray]:
        """Every trip so far as arrays (schema field names; status codes of ``agents.traffic.schema``)."""
        dtypes = {"origin": np.int32, "destination": np.int32, "status": np.int8, "links": np.int32,
                  "kind": np.int8}
        return {k: np.asarray(v, dtypes.get(k, np.float64)) for k, v in self._trips.items()}

    def finalize(self, t_end_s: float) -> xr.Dataset:
        """The trip table and link attributes in the traffic schema (no time series: nothing congests)."""
        trips = self.trip_table()
        trips["links_long_name"] = "links in the route"  # type: ignore[assignment]
        return traffic_dataset(self.city, fft_s=self.fft, capacity_vph=self.city.arrays.capacity_vph,
                               rec_t=[], series={}, trips=trips)

    def kpis(self) -> dict[str, KPI]:
        t = self.trip_table()
        due = (t["status"] == PENDING) & (t["depart"] <= self.env.now)
        return traffic_kpis(status=t["status"], depart=t["depart"], arrive=t["arrive"],
                            freeflow_time=t["freeflow_time"], distance_m=t["distance"], now_s=self.env.now,
                            pending_due=int(due.sum()), teleports=0)


class FixedTimeTraffic(StandinTraffic):
    """Every reachable drive takes ``travel_s`` seconds (0 allowed); unreachable ones are unroutable at once."""

    def __init__(self, travel_s: float = 0.0, config: TrafficConfig | None = None) -> None:
        super().__init__(config)
        self.travel_s = float(travel_s)

    def _travel(self, o: int, d: int, speed_factor: float, priority: bool) -> tuple[float, float, int] | None:
        p = self._path(o, d)
        return None if p is None else (self.travel_s, p[1], p[2])


class FreeFlowTravel(StandinTraffic):
    """Drives take the free-flow shortest time; priority vehicles that time divided by ``speed_factor``."""

    def _travel(self, o: int, d: int, speed_factor: float, priority: bool) -> tuple[float, float, int] | None:
        p = self._path(o, d)
        if p is None:
            return None
        return p[0] / (speed_factor if priority and speed_factor > 0 else 1.0), p[1], p[2]


class PrecomputedTraffic(StandinTraffic):
    """Free-flow times and distances between all node pairs (scipy, once; again when a link opens or closes)."""

    def setup(self, twin: Any) -> None:
        self._tables: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None
        super().setup(twin)

    def _all_pairs(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(time s, distance m along the fastest path, links) for every (origin, destination) pair."""
        if self._tables is None:
            a = self.city.arrays
            tt = self.link_travel_times_s()
            ok = np.isfinite(tt)
            n = a.n_nodes
            # parallel links: keep the fastest one (csr_matrix would add them up)
            order = np.lexsort((tt[ok], a.link_to[ok], a.link_from[ok]))
            f, t, w = a.link_from[ok][order], a.link_to[ok][order], tt[ok][order]
            first = np.ones(len(f), bool)
            first[1:] = (f[1:] != f[:-1]) | (t[1:] != t[:-1])
            length = a.length_m[ok][order]
            g = csr_matrix((w[first], (f[first], t[first])), shape=(n, n))
            times, pred = dijkstra(g, directed=True, return_predecessors=True)
            lmat = csr_matrix((length[first], (f[first], t[first])), shape=(n, n)).toarray()
            dist = np.zeros((n, n))
            hops = np.zeros((n, n), np.int32)
            # walk every shortest-path tree from its root outwards (by time), all origins at once: the k-th
            # closest node's predecessor is closer, so its distance and hop count are already known
            rank = np.argsort(times, axis=1, kind="stable")
            rows = np.arange(n)
            for k in range(n):
                v = rank[:, k]
                p = pred[rows, v]
                has = p >= 0
                o, v, p = rows[has], v[has], p[has]
                dist[o, v] = dist[o, p] + lmat[p, v]
                hops[o, v] = hops[o, p] + 1
            self._tables = (times, dist, hops)
        return self._tables

    def set_capacity_factor(self, link: Hashable, factor: float) -> None:
        was_open = self.cap_factor[self.city.link_index(link)] > 0
        super().set_capacity_factor(link, factor)
        if was_open != (factor > 0):
            self._tables = None

    def _travel(self, o: int, d: int, speed_factor: float, priority: bool) -> tuple[float, float, int] | None:
        times, dist, hops = self._all_pairs()
        if not np.isfinite(times[o, d]):
            return None
        return float(times[o, d]), float(dist[o, d]), int(hops[o, d])

    def _path(self, o: int, d: int) -> tuple[float, float, int] | None:
        times, dist, hops = self._all_pairs()
        return None if not np.isfinite(times[o, d]) else (float(times[o, d]), float(dist[o, d]), int(hops[o, d]))

    def travel_time_s(self, origin: Hashable, destination: Hashable, congested: bool = True) -> float:
        """Table look-up (s): the same figure the numba Dijkstra gives."""
        return float(self._all_pairs()[0][self._node(origin), self._node(destination)])

