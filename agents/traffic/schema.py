"""The traffic results schema, shared by every back-end so they give the same variables, units and KPIs.

Back-ends collect arrays; these functions name them, attach units and long names, and compute the KPIs.
"""
from __future__ import annotations

from typing import Any

import numpy as np
import xarray as xr

from agents.traffic.backend import VEHICLE_KINDS
from twin.domain import KPI

__all__ = ["ARRIVED", "RUNNING", "PENDING", "UNROUTABLE", "STRANDED", "traffic_dataset", "traffic_kpis"]

# trip status codes, as stored in ``trip_status``
ARRIVED, RUNNING, PENDING, UNROUTABLE, STRANDED = 0, 1, 2, 3, 4


def _a(units: str, long_name: str, **extra) -> dict:
    return {"units": units, "long_name": long_name, **extra}


def traffic_dataset(city, *, fft_s: np.ndarray, capacity_vph: np.ndarray, rec_t: list[float],
                    series: dict[str, Any], trips: dict[str, Any]) -> xr.Dataset:
    """Assemble the traffic Dataset.

    ``series`` (one row per record time): flow (veh/h), speed (m/s, NaN while closed), vehicles, queue, capf,
    optional junction_delay (s) as (time, link) arrays, and running, completed, waiting as (time,) arrays; ``queue_long_name`` may describe the queue.
    ``trips``: origin, destination, depart, arrive (NaN unless arrived), status, freeflow_time, distance,
    links, kind; optional ``*_long_name`` overrides for freeflow_time, distance, links.
    """
    a = city.arrays
    data: dict[str, Any] = {}
    if len(rec_t):
        data.update({
            "link_flow": (("time", "link"), series["flow"], _a("h-1", "vehicles leaving the link per hour")),
            "link_speed": (("time", "link"), series["speed"],
                           _a("m s-1", "space-mean speed of the vehicles that left the link (NaN while closed)")),
            "link_vehicles": (("time", "link"), series["vehicles"], _a("1", "mean vehicles on the link")),
            "link_queue": (("time", "link"), series["queue"],
                           _a("1", series.get("queue_long_name", "vehicles queued at the link end"))),
            "link_capacity_factor": (("time", "link"), series["capf"], _a("1", "capacity factor in force")),
            **({"link_junction_delay": (("time", "link"), series["junction_delay"],
                                        _a("s", "mean delay at the link's end junction per vehicle leaving: turn, "
                                                "signal, give-way and queue (NaN if none left)"))}
               if "junction_delay" in series else {}),
            "net_running": (("time",), np.asarray(series["running"], np.int64), _a("1", "vehicles on the network")),
            "net_completed": (("time",), np.asarray(series["completed"], np.int64), _a("1", "trips completed so far")),
            "net_waiting": (("time",), np.asarray(series["waiting"], np.int64),
                            _a("1", "vehicles waiting to enter the network")),
        })
    st = trips["status"]
    arrive = np.where(st == ARRIVED, trips["arrive"], np.nan)
    data.update({
        "link_from": (("link",), a.link_from, _a("1", "index of the link's start node")),
        "link_to": (("link",), a.link_to, _a("1", "index of the link's end node")),
        "link_length": (("link",), a.length_m.astype(np.float64), _a("m", "link length")),
        "link_freeflow_speed": (("link",), a.length_m / fft_s, _a("m s-1", "free-flow speed")),
        "link_capacity": (("link",), np.asarray(capacity_vph, np.float64), _a("h-1", "outflow capacity (veh/h)")),
        "link_lanes": (("link",), a.lanes, _a("1", "lanes")),
        "trip_origin": (("trip",), trips["origin"], _a("1", "origin node index")),
        "trip_destination": (("trip",), trips["destination"], _a("1", "destination node index")),
        "trip_depart": (("trip",), trips["depart"], _a("s", "departure time")),
        "trip_arrive": (("trip",), arrive, _a("s", "arrival time (NaN if not arrived)")),
        "trip_travel_time": (("trip",), arrive - trips["depart"], _a("s", "travel time")),
        "trip_freeflow_time": (("trip",), np.where(st == ARRIVED, trips["freeflow_time"], np.nan),
                               _a("s", trips.get("freeflow_time_long_name", "free-flow time of the links driven"))),
        "trip_distance": (("trip",), trips["distance"], _a("m", trips.get("distance_long_name", "distance driven"))),
        "trip_links": (("trip",), trips["links"], _a("1", trips.get("links_long_name", "links in the (last) route"))),
        "trip_status": (("trip",), st, _a("1", "trip status", flag_values="0 1 2 3 4",
                                          flag_meanings="arrived running pending unroutable stranded")),
        "trip_kind": (("trip",), trips["kind"], _a("1", "vehicle kind", kinds=" ".join(VEHICLE_KINDS))),
    })
    coords = {"link": np.array(city.link_ids, dtype=object), "trip": np.arange(len(st), dtype=np.int64)}
    if len(rec_t):
        coords["time"] = np.asarray(rec_t, np.float64)
    return xr.Dataset(data, coords=coords)


def traffic_kpis(*, status: np.ndarray, depart: np.ndarray, arrive: np.ndarray, freeflow_time: np.ndarray,
                 distance_m: np.ndarray, now_s: float, pending_due: int, gridlock_resolutions: int | None = None,
                 teleports: int | None = None) -> dict[str, KPI]:
    """The traffic KPIs from the trip table (times s, distances m) at the end of a run.

    ``gridlock_resolutions``: vehicles moved on by the gridlock rule (SUMO: its teleports; ``teleports`` is
    accepted as the same count).
    """
    gridlocks = gridlock_resolutions if gridlock_resolutions is not None else (teleports or 0)
    arrived = status == ARRIVED
    started = np.isin(status, (ARRIVED, RUNNING, STRANDED))
    end = np.where(np.isnan(arrive), now_s, arrive)
    tt = (arrive - depart)[arrived]
    delay = tt - freeflow_time[arrived]
    running = int((status == RUNNING).sum())
    nan = float("nan")
    return {
        "trips": KPI(float(len(status)), "1", "trips in the demand", "none"),
        "trips_completed": KPI(float(arrived.sum()), "1", "trips completed", "higher"),
        "trips_running": KPI(float(running + pending_due), "1", "trips still running at the end", "lower"),
        "trips_unroutable": KPI(float(np.isin(status, (UNROUTABLE, STRANDED)).sum()), "1",
                                "trips unroutable or stranded", "lower"),
        # trips = completed + running + unroutable + this (e.g. crowd leavers departing after the end)
        "trips_after_end": KPI(float(int((status == PENDING).sum()) - pending_due), "1",
                               "trips departing after the end of the run", "none"),
        "vehicle_km": KPI(float(distance_m.sum() / 1000.0), "km", "vehicle-kilometres driven", "none"),
        "vehicle_hours": KPI(float((end - depart)[started].sum() / 3600.0), "h", "vehicle-hours on the road", "lower"),
        "mean_travel_time": KPI(float(tt.mean()) if len(tt) else nan, "s", "mean trip travel time", "lower"),
        "p90_travel_time": KPI(float(np.percentile(tt, 90)) if len(tt) else nan, "s",
                               "90th-percentile travel time", "lower"),
        "gridlock_resolutions": KPI(float(gridlocks), "1", "vehicles moved on after standing first in a queue "
                                    "for the gridlock time (SUMO: teleports)", "lower"),
        "mean_delay": KPI(float(delay.mean()) if len(delay) else nan, "s", "mean delay over free-flow time", "lower"),
    }
