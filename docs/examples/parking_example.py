"""A fifth domain, parking, and a third traffic back-end, as docs/extending.md walks through them.

Parking: cars bound for car parks arrive as a Poisson stream, drive there through ``twin.traffic`` (so they
feel closures and congestion), take a space for a random stay or are turned away when the car park is full.
Results: ``parking_occupied(time, lot)`` and ``parking_turned_away(lot)``; KPIs: share turned away, mean drive.

Back-end ``scaled_freeflow``: no congestion, every drive and link takes free-flow time / ``speed_scale``.

Register both (no reinstall needed)::

    from twin.registry import register_domain, register_traffic_backend
    register_domain("parking_example:DOMAIN", name="parking")
    register_traffic_backend("scaled_freeflow", "parking_example:ScaledFreeFlow")

or, in an installed package's pyproject.toml::

    [project.entry-points."citytwin.domains"]
    parking = "parking_example:DOMAIN"
    [project.entry-points."citytwin.traffic_backends"]
    scaled_freeflow = "parking_example:ScaledFreeFlow"
"""
from __future__ import annotations

from typing import Any

import numpy as np
import simpy
import xarray as xr
from pydantic import BaseModel, ConfigDict, Field

from agents.traffic.standins import StandinTraffic
from twin.domain import KPI, Domain
from twin.registry import DomainSpec


# ------------------------------------------------------------------------------------------- 1. the config
class Lot(BaseModel):
    """One car park: where it is and how many spaces it has."""

    model_config = ConfigDict(extra="forbid")
    name: str
    node: str = Field(description="Node id of the city where the car park's entrance is.")
    spaces: int = Field(ge=1, le=100_000)


class ParkingConfig(BaseModel):
    """The scenario's ``parking:`` section (validated by pydantic: unknown keys and bad values are errors)."""

    model_config = ConfigDict(extra="forbid")
    lots: list[Lot] = Field(min_length=1)
    arrivals_per_hour: float = Field(60.0, gt=0, le=100_000, description="Cars bound for each car park per hour.")
    mean_stay_s: float = Field(3600.0, gt=0, description="Mean parking time (s), exponential.")

    def city_errors(self, city: Any) -> list[str]:
        """Car parks must sit on nodes of the city (the CLI reports these as validation errors, exit 2)."""
        return [f"lots[{i}].node: {lot.node!r} — not a node of city {city.name!r}"
                for i, lot in enumerate(self.lots) if not city.has_node(lot.node)]


# ------------------------------------------------------------------------------------------- 2. the domain
class ParkingDomain(Domain):
    """Cars drive to car parks through the traffic API and park (simpy Resource per car park)."""

    name = "parking"

    def setup(self, twin: Any) -> None:
        super().setup(twin)
        self.env: simpy.Environment = twin.env
        self.traffic = twin.traffic
        self.city = twin.city
        self.rng = twin.spawn_rng("parking")  # its own stream: adding parking changes no other domain's draws
        self.lots = [simpy.Resource(self.env, capacity=lot.spaces) for lot in self.config.lots]
        self.nodes = [self.city.node_index(lot.node) for lot in self.config.lots]
        self.turned_away = np.zeros(len(self.lots), np.int64)
        self.parked = np.zeros(len(self.lots), np.int64)
        self.drive_s: list[float] = []
        self._occ: list[list[int]] = []
        self._t: list[float] = []
        for k in range(len(self.lots)):
            self.env.process(self._arrivals(k))

    def _arrivals(self, k: int):
        rate = self.config.arrivals_per_hour / 3600.0
        while True:
            yield self.env.timeout(self.rng.exponential(1.0 / rate))
            self.env.process(self._car(k, int(self.rng.integers(self.city.arrays.n_nodes))))

    def _car(self, k: int, origin: int):
        trip = yield self.traffic.drive(origin, self.nodes[k], kind="car")
        if trip.status != "arrived":
            return
        self.drive_s.append(trip.travel_time_s)
        lot = self.lots[k]
        if lot.count >= lot.capacity:
            self.turned_away[k] += 1
            return
        with lot.request() as req:
            yield req
            self.parked[k] += 1
            yield self.env.timeout(self.rng.exponential(self.config.mean_stay_s))

    def record(self, t_s: float) -> None:
        self._t.append(t_s)
        self._occ.append([lot.count for lot in self.lots])

    def finalize(self, t_end_s: float) -> xr.Dataset:
        """Variables carry the domain's prefix (``parking_``), units and long names (docs/results.md)."""
        names = [lot.name for lot in self.config.lots]
        occ = np.asarray(self._occ, np.int64).reshape(len(self._t), len(names))
        return xr.Dataset(
            {"parking_occupied": (("time", "lot"), occ, {"units": "1", "long_name": "occupied spaces"}),
             "parking_spaces": (("lot",), np.array([lot.spaces for lot in self.config.lots]),
                                {"units": "1", "long_name": "spaces"}),
             "parking_turned_away": (("lot",), self.turned_away, {"units": "1", "long_name": "cars turned away"}),
             "parking_parked": (("lot",), self.parked, {"units": "1", "long_name": "cars parked"})},
            coords={"time": np.asarray(self._t, np.float64), "lot": np.array(names, dtype=object)})

    def kpis(self) -> dict[str, KPI]:
        came = float(self.turned_away.sum() + self.parked.sum())
        return {
            "turned_away_share": KPI(float(self.turned_away.sum()) / came if came else float("nan"), "1",
                                     "share of cars (that reached a car park) turned away", "lower"),
            "mean_drive_time": KPI(float(np.mean(self.drive_s)) if self.drive_s else float("nan"), "s",
                                   "mean drive to the car park, per car that arrived", "lower"),
        }


# ------------------------------------------------------------------------------------------- 3. the registration
DOMAIN = DomainSpec("parking", ParkingConfig, ParkingDomain, requires=("traffic",))


# ------------------------------------------------------------------------------------------- 4. a third back-end
class ScaledFreeFlow(StandinTraffic):
    """Traffic back-end ``scaled_freeflow``: links and drives take free-flow time / ``traffic.speed_scale``.

    Built from the scenario's ``traffic:`` config (the registry calls ``ScaledFreeFlow(config)``). It inherits
    the trip table, closures, routing queries and results schema from ``StandinTraffic``; a back-end with a
    model of its own implements ``drive``, ``add_trips``, ``set_capacity_factor``, ``link_travel_times_s``
    and ``_costs`` of ``agents.traffic.backend.TrafficBackend`` instead.
    """

    def setup(self, twin: Any) -> None:
        super().setup(twin)
        self.fft = self.fft / self.config.speed_scale  # slower drivers (speed_scale < 1): longer link times

    def _travel(self, o: int, d: int, speed_factor: float, priority: bool) -> tuple[float, float, int] | None:
        return self._path(o, d)  # free-flow time on this back-end's link times, path length, links
