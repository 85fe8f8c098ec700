"""The emergency domain's results Dataset and KPIs.

Dims: ``incident``, ``unit``, ``em_station``, ``em_hospital``, ``zone``, ``time``. Variables (all with
``units`` and ``long_name``):

- incident: ``em_incident_type``, ``em_incident_source``, ``em_incident_status`` (served, unreachable,
  waiting, open), ``em_incident_node``, ``em_incident_x``/``_y`` (m), ``em_incident_zone``,
  ``em_incident_priority``, ``em_call_time``, ``em_dispatch_time``, ``em_arrival_time``,
  ``em_clear_time`` (s, NaN if it did not happen), ``em_response_time`` (call to first arrival, s),
  ``em_wait_time`` (waiting for a free unit after call handling, s), ``em_target`` (s),
  ``em_within_target`` (1/0; NaN while still inside its target window at the end),
  ``em_units_sent``, ``em_incident_hospital`` (index, -1 none).
- unit: ``em_unit_type``, ``em_unit_station``, ``em_unit_missions``, ``em_unit_busy_time``,
  ``em_unit_duty_time`` (s), ``em_unit_utilisation`` (busy / on duty), ``em_unit_shift_start``/``_end`` (h).
- em_station: ``em_station_kind``, ``em_station_source``, ``em_station_node``, ``em_station_x``/``_y``,
  ``em_station_units``; em_hospital: ``em_hospital_node``, ``em_hospital_x``/``_y``.
- zone: ``em_zone_weight``; time: ``em_calls`` (calls in the interval), ``em_calls_waiting``,
  ``em_units_busy``, ``em_units_on_duty``, ``em_coverage``; (time, zone): ``em_zone_coverage``.
"""
from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np
import xarray as xr

from agents.emergency.censored import censored_responses, km_quantile, waited
from twin.domain import KPI

if TYPE_CHECKING:  # pragma: no cover
    from agents.emergency.domain import EmergencyDomain

__all__ = ["build_dataset", "build_kpis", "within_target"]


def _v(dims, data, units: str, long_name: str, **attrs) -> xr.Variable:
    return xr.Variable(dims, data, attrs={"units": units, "long_name": long_name, **attrs})


def within_target(response_s: np.ndarray, call_s: np.ndarray, target_s: np.ndarray, status: np.ndarray,
                  t_end_s: float) -> np.ndarray:
    """1 if reached within target, 0 if late, unreachable or not reached by the end past its target (censored:
    certainly late), NaN if undecided (not reached, still inside its target window at the end) or without target."""
    out = np.where(response_s <= target_s, 1.0, 0.0)
    pending = np.isnan(response_s) & (status != "unreachable") & (call_s + target_s > t_end_s)
    out[pending] = np.nan
    out[np.isnan(target_s)] = np.nan
    return out


def build_dataset(dom: "EmergencyDomain", t_end_s: float) -> xr.Dataset:
    """Collect incidents, units, stations, hospitals, zones and the time series into one Dataset."""
    c = dom.centre
    assert c is not None
    a = dom.city.arrays
    incs = c.incidents
    n = len(incs)
    f = lambda attr: np.array([getattr(i, attr) for i in incs], np.float64) if n else np.empty(0)  # noqa: E731
    call, disp, arr, clr, target = f("call_s"), f("dispatch_s"), f("arrival_s"), f("clear_s"), f("target_s")
    status = np.array([i.status for i in incs], dtype=object) if n else np.empty(0, object)
    node = np.array([i.node for i in incs], np.int32)
    resp = arr - call
    wait = disp - (call + dom.config.call_handling_s)
    wait = np.where(wait < 1e-6, np.where(np.isnan(wait), np.nan, 0.0), wait)  # float noise, never negative
    rec = dom._rec
    T = np.asarray(rec["t"], np.float64)
    Z = len(dom.dp.zone_ids)
    zc = np.asarray(rec["zone_coverage"], np.float64).reshape(len(T), Z)
    units = dom.units
    busy = np.array([u.busy_time_s(t_end_s) for u in units], np.float64)
    duty = np.array([u.duty_time_s(t_end_s) for u in units], np.float64)
    ds = xr.Dataset(
        {
            "em_incident_type": _v("incident", np.array([i.type for i in incs], object), "1", "incident type"),
            "em_incident_source": _v("incident", np.array([i.source for i in incs], object), "1",
                                     "where the call came from (generated, file, bus:<kind>)"),
            "em_incident_status": _v("incident", status, "1", "served, unreachable, waiting or open at the end"),
            "em_incident_node": _v("incident", node, "1", "node index of the incident"),
            "em_incident_x": _v("incident", a.node_x[node], "m", "incident x (projected)"),
            "em_incident_y": _v("incident", a.node_y[node], "m", "incident y (projected)"),
            "em_incident_zone": _v("incident", np.array([i.zone for i in incs], np.int32), "1",
                                   "zone index of the incident (-1 outside every zone)"),
            "em_incident_priority": _v("incident", np.array([i.priority for i in incs], np.int8), "1",
                                       "priority (1 most urgent)"),
            "em_call_time": _v("incident", call, "s", "time of call"),
            "em_dispatch_time": _v("incident", disp, "s", "time the first unit was dispatched"),
            "em_arrival_time": _v("incident", arr, "s", "time the first unit arrived on scene"),
            "em_clear_time": _v("incident", clr, "s", "time the last unit cleared the scene"),
            "em_response_time": _v("incident", resp, "s", "response time: call to first arrival"),
            "em_wait_time": _v("incident", wait, "s", "wait for a free unit after call handling"),
            "em_target": _v("incident", target, "s", "response-time target of the incident type (NaN: none)"),
            "em_within_target": _v("incident", within_target(resp, call, target, status, t_end_s), "1",
                                   "1 if reached within target, 0 if not (late, unreachable, not reached past target), "
                                   "NaN if undecided at the end or no target"),
            "em_units_sent": _v("incident", np.array([len(i.units) for i in incs], np.int16), "1",
                                "units dispatched"),
            "em_incident_hospital": _v("incident", np.array([i.hospital for i in incs], np.int32), "1",
                                       "index of the hospital the patient was taken to (-1 none)"),
            "em_unit_type": _v("unit", np.array([u.type for u in units], object), "1", "unit type"),
            "em_unit_station": _v("unit", np.array([u.station.index for u in units], np.int32), "1",
                                  "index of the home station"),
            "em_unit_missions": _v("unit", np.array([u.missions for u in units], np.int32), "1", "missions"),
            "em_unit_busy_time": _v("unit", busy, "s", "time committed to incidents (dispatch to free)"),
            "em_unit_duty_time": _v("unit", duty, "s", "time on duty"),
            "em_unit_utilisation": _v("unit", np.divide(busy, duty, out=np.zeros_like(busy), where=duty > 0),
                                      "1", "utilisation: busy time / on-duty time"),
            "em_unit_shift_start": _v("unit", np.array([u.shift[0] for u in units], np.float64), "h",
                                      "shift start, hour of day"),
            "em_unit_shift_end": _v("unit", np.array([u.shift[1] for u in units], np.float64), "h",
                                    "shift end, hour of day"),
            "em_station_kind": _v("em_station", np.array([s.kind for s in dom.stations], object), "1",
                                  "station kind"),
            "em_station_source": _v("em_station", np.array([s.source for s in dom.stations], object), "1",
                                    "where the station came from (osm, scenario, variant)"),
            "em_station_node": _v("em_station", np.array([s.node for s in dom.stations], np.int32), "1",
                                  "node index of the station"),
            "em_station_x": _v("em_station", np.array([s.x for s in dom.stations], np.float64), "m", "station x"),
            "em_station_y": _v("em_station", np.array([s.y for s in dom.stations], np.float64), "m", "station y"),
            "em_station_units": _v("em_station", np.array([len(s.units) for s in dom.stations], np.int32), "1",
                                   "units based at the station"),
            "em_hospital_node": _v("em_hospital", np.array([h.node for h in dom.hospital_sites], np.int32), "1",
                                   "node index of the hospital"),
            "em_hospital_x": _v("em_hospital", np.array([h.x for h in dom.hospital_sites], np.float64), "m",
                                "hospital x"),
            "em_hospital_y": _v("em_hospital", np.array([h.y for h in dom.hospital_sites], np.float64), "m",
                                "hospital y"),
            "em_zone_weight": _v("zone", dom.dp.zone_weight, "1", "zone's share of population (coverage weight)"),
            "em_calls": _v("time", np.asarray(rec["calls"], np.int32), "1", "calls in the interval"),
            "em_calls_waiting": _v("time", np.asarray(rec["waiting"], np.int32), "1",
                                   "calls waiting for a free unit"),
            "em_units_busy": _v("time", np.asarray(rec["busy"], np.int32), "1", "units committed to incidents"),
            "em_units_on_duty": _v("time", np.asarray(rec["on_duty"], np.int32), "1", "units on duty"),
            "em_coverage": _v("time", np.asarray(rec["coverage"], np.float64), "1",
                              f"population share reachable within {dom._budget_s:.0f} s travel from a station"),
            "em_zone_coverage": _v(("time", "zone"), zc, "1", "zone share reachable within the target"),
        },
        coords={
            "incident": _v("incident", np.array([i.id for i in incs], np.int32), "1", "incident number"),
            "unit": _v("unit", np.array([u.name for u in units], object), "1", "unit name"),
            "em_station": _v("em_station", np.array([s.name for s in dom.stations], object), "1", "station name"),
            "em_hospital": _v("em_hospital", np.array([h.name for h in dom.hospital_sites], object), "1",
                              "hospital name"),
            "zone": _v("zone", np.array(dom.dp.zone_ids, object), "1", "zone id"),
            "time": _v("time", T, "s", "record time, seconds from scenario start"),
        },
        attrs={"em_policy": dom.config.policy, "em_coverage_budget_s": dom._budget_s,
               "em_population": float(dom.population) if dom.population is not None else float("nan"),
               "em_incident_types": ",".join(dom.config.incident_types)},
    )
    return ds


def _share(x: np.ndarray) -> float:
    x = x[np.isfinite(x)]
    return float(x.mean()) if x.size else math.nan


def build_kpis(dom: "EmergencyDomain", ds: xr.Dataset, t_end_s: float) -> dict[str, KPI]:
    """Headline figures. Response KPIs cover calls of types with a target and keep calls not reached by the end
    (censored, Kaplan-Meier); every response label states its number of calls. Utilisation is per unit type."""
    call = ds["em_call_time"].values
    arr = ds["em_arrival_time"].values
    disp = ds["em_dispatch_time"].values
    target = ds["em_target"].values
    status = ds["em_incident_status"].values
    types = ds["em_incident_type"].values
    wt = ds["em_within_target"].values
    unreach = status == "unreachable"
    n = call.size
    reached = np.isfinite(arr)
    k = {
        "incidents": KPI(float(n), "1", "calls (all types) = reached + censored + unreachable", "none"),
        "calls_reached": KPI(float(reached.sum()), "1", "calls reached by a unit before the end", "none"),
        "calls_censored": KPI(float((~reached & ~unreach).sum()), "1",
                              "calls not reached by the end (still waiting or on the way; censored)", "lower"),
        "unreachable": KPI(float(unreach.sum()), "1", "calls no unit could reach", "lower"),
    }
    pop = getattr(dom, "population", None)
    if pop:
        k["population"] = KPI(float(pop), "1", "inhabitants the call rates are based on", "none")
        amb = np.array([dom.config.incident_types[t].units.get("ambulance", 0) > 0 for t in types], bool)
        per = 1000.0 / pop * 365.0 * 86400.0 / t_end_s
        k["ambulance_calls_per_1000_year"] = KPI(float(amb.sum()) * per, "1/a",
                                                 f"ambulance calls per 1,000 inhabitants a year, at this run's rate "
                                                 f"({int(amb.sum())} calls in {t_end_s / 3600:.1f} h)", "none")
    urgent = np.isfinite(target)
    t, got = censored_responses(call[urgent], arr[urgent], unreach[urgent], t_end_s)
    nu, nc = int(urgent.sum()), int((~got).sum())
    pop = f"{nu} calls with a target, {nc} not reached by the end counted as censored"
    k["response_median_s"] = KPI(km_quantile(t, got, 0.5), "s",
                                 f"median response, call to first arrival (Kaplan-Meier; {pop})")
    k["response_p90_s"] = KPI(km_quantile(t, got, 0.9), "s",
                              f"90th percentile response (Kaplan-Meier; {pop}; NaN = unknown, too many not reached)")
    dec = np.isfinite(wt)
    k["within_target"] = KPI(_share(wt), "1", f"share of calls with a target reached within it ({int(dec.sum())} "
                             f"decided calls; not reached past the target count as late)", "higher")
    for name, it in dom.config.incident_types.items():
        sel = (types == name) & dec
        if it.target_s is not None and sel.any():
            k[f"within_target_{name}"] = KPI(float(wt[sel].mean()), "1",
                                             f"{name} calls reached within {it.target_s:.0f} s ({int(sel.sum())} calls)",
                                             "higher")
    req_s = call + dom.config.call_handling_s
    asked = (req_s <= t_end_s) & ~unreach
    w = waited(disp[asked], req_s[asked])
    still = int((~np.isfinite(disp[asked])).sum())
    k["waited_share"] = KPI(_share(w), "1", f"share of calls that waited for a free unit ({int(asked.sum())} calls, "
                            f"{still} still waiting at the end count as waited)")
    wait = ds["em_wait_time"].values
    k["wait_mean_s"] = KPI(float(np.nanmean(wait)) if np.isfinite(wait).any() else math.nan, "s",
                           f"mean wait for a free unit over dispatched calls ({int(np.isfinite(wait).sum())} calls; "
                           "a lower bound when calls are still waiting)")
    utype = ds["em_unit_type"].values
    busy, duty = ds["em_unit_busy_time"].values, ds["em_unit_duty_time"].values
    for ut in sorted(set(utype.tolist())):
        sel = utype == ut
        d = float(duty[sel].sum())
        k[f"utilisation_{ut}"] = KPI(float(busy[sel].sum()) / d if d > 0 else math.nan, "1",
                                     f"{ut} utilisation: busy / on-duty time ({int(sel.sum())} units)", "none")
    k["coverage"] = KPI(float(ds["em_coverage"].mean()) if ds.sizes["time"] else math.nan, "1",
                        "population share reachable from a station within target", "higher")
    return k
