"""The EV domain's results Dataset and KPIs (see ``agents.ev.domain`` for the variable list)."""
from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import xarray as xr

from agents.ev.attempts import (OUTCOMES, demand_met, outcome, outcome_counts, plug_occupancy, receivable_kwh,
                                unserved_evs, wait_s)
from twin.domain import KPI

if TYPE_CHECKING:  # pragma: no cover
    from agents.ev.domain import EVDomain

__all__ = ["ev_dataset", "ev_kpis"]


def _v(dims, data, units, long_name, **extra):
    return (dims, np.asarray(data), {"units": units, "long_name": long_name, **extra})


def settle_open_sessions(dom: "EVDomain") -> None:
    """Credit EVs still plugged in at the end with the energy charged so far (once)."""
    if getattr(dom, "_settled", False):
        return
    dom._settled = True
    ctrl, tl = dom.ctrl, dom.fleet.tallies
    ctrl.advance()
    for st in dom.stations:
        for j, rec in st.open_recs.items():
            rec.stored_kwh = float(ctrl.stored[j])
    for j in np.flatnonzero(ctrl.busy & (ctrl.tag >= 0)):
        i = int(ctrl.tag[j])
        tl["stored_kwh"][i] += ctrl.stored[j]
        tl["delivered_kwh"][i] += ctrl.delivered[j]
        tl["charge_s"][i] += dom.env.now - ctrl.arrival[j]
        dom.fleet.soc[i] = ctrl.soc[j]


def ev_dataset(dom: "EVDomain") -> xr.Dataset:
    """Per station and interval, per EV, and city load curve; every variable with units and long_name."""
    settle_open_sessions(dom)
    r = dom._rec
    S = len(dom.stations)
    T = len(r["t"])
    t = np.asarray(r["t"], float)
    interval_h = np.diff(np.concatenate([[0.0], t])) / 3600.0 if T else np.zeros(0)
    busy = np.asarray(r["busy"]).reshape(T, S)
    queue = np.asarray(r["queue"]).reshape(T, S)
    energy = np.asarray(r["energy"]).reshape(T, S)
    power = energy / np.maximum(interval_h, 1e-9)[:, None] if T else energy
    f, tl = dom.fleet, dom.fleet.tallies
    got_plug = np.zeros(f.n, bool)
    fleet_att = [a for a in dom.attempts if a.ev >= 0]
    for a in fleet_att:
        if not np.isnan(a.t_plug_s):
            got_plug[a.ev] = True
    unserved = ((tl["need_node"] >= 0) & ~got_plug).astype(np.int8)
    att = dom.attempts
    t_end = float(dom.env.now)
    st = dom.stations
    ds = xr.Dataset(
        {
            "station_node": _v(("station",), [s.node for s in st], "1", "city node index of the station"),
            "station_x": _v(("station",), [s.x for s in st], "m", "station x (projected)"),
            "station_y": _v(("station",), [s.y for s in st], "m", "station y (projected)"),
            "station_plugs": _v(("station",), [s.plugs for s in st], "1", "number of plugs"),
            "station_plug_power": _v(("station",), [s.power_kw for s in st], "kW", "rated power per plug"),
            "station_limit": _v(("station",), [s.limit_kw for s in st], "kW", "station grid limit (inf = none)"),
            "station_requests": _v(("station",), [s.n_requests for s in st], "1",
                                   "attempts that joined the queue (EVs and warm-start sessions)"),
            "station_abandoned": _v(("station",), [s.n_abandoned for s in st], "1", "EVs that gave up waiting"),
            "station_busy": _v(("time", "station"), busy, "1", "time-mean plugs busy over the interval"),
            "station_queue": _v(("time", "station"), queue, "1", "time-mean EVs waiting over the interval"),
            "station_power": _v(("time", "station"), power, "kW", "mean charging power over the interval (grid side)"),
            "station_energy": _v(("time", "station"), energy, "kWh", "energy delivered in the interval (grid side)"),
            "ev_load": _v(("time",), power.sum(axis=1) if T else np.zeros(0), "kW", "city EV charging load (interval mean)"),
            "ev_grid_limit": _v(("time",), r["limit"], "kW", "grid limit on the city charging load (inf = none)"),
            "ev_overload_energy": _v(("time",), r["overload"], "kWh", "energy drawn above the grid limit in the interval"),
            "ev_type": _v(("ev",), f.vtype, "1", "vehicle type index",
                          types=",".join(v.name for v in dom.config.vehicle_types)),
            "ev_soc_start": _v(("ev",), f.soc_start, "1", "state of charge before the first trip"),
            "ev_soc_end": _v(("ev",), f.soc, "1", "state of charge at the end"),
            "ev_depart": _v(("ev",), f.depart_s, "s", "departure of the first trip"),
            "ev_wait": _v(("ev",), tl["wait_s"], "s", "total time waiting for a plug"),
            "ev_charge_time": _v(("ev",), tl["charge_s"], "s", "total time plugged in"),
            "ev_energy": _v(("ev",), tl["stored_kwh"], "kWh", "energy into the battery"),
            "ev_delivered": _v(("ev",), tl["delivered_kwh"], "kWh", "energy through the plug (grid side)"),
            "ev_requested": _v(("ev",), tl["requested_kwh"], "kWh", "energy asked for when queuing"),
            "ev_charges": _v(("ev",), tl["charges"].astype(np.int32), "1", "charging sessions"),
            "ev_abandoned": _v(("ev",), tl["abandoned"].astype(np.int32), "1", "times the EV gave up waiting"),
            "ev_ran_flat": _v(("ev",), tl["ran_flat"].astype(np.int8), "1", "1 if the battery ran empty"),
            "ev_unserved": _v(("ev",), unserved, "1", "1 if it needed a charge (below charge_below_soc before a trip) and never got a plug"),
            "ev_home_charging": _v(("ev",), f.home.astype(np.int8), "1", "1 if the driver charges at home"),
            "ev_declined_full": _v(("ev",), tl["declined_full"].astype(np.int32), "1",
                                   "times it wanted to plug in near its destination but guidance showed no free plug"),
            "ev_attempt_ev": _v(("ev_attempt",), np.array([a.ev for a in att], np.int64), "1",
                                "EV index of the charging attempt (-1: session in progress at the start)"),
            "ev_attempt_station": _v(("ev_attempt",), np.array([a.station for a in att], np.int64), "1", "station index"),
            "ev_attempt_kind": _v(("ev_attempt",), np.array([a.kind for a in att], dtype=object), "1",
                                  "en_route, destination or warm (in progress at the start)"),
            "ev_attempt_outcome": _v(("ev_attempt",), np.array([outcome(a) for a in att], dtype=object), "1",
                                     "outcome at the end: " + ", ".join(OUTCOMES)),
            "ev_attempt_request_time": _v(("ev_attempt",), np.array([a.t_request_s for a in att], float), "s",
                                          "time it joined the queue"),
            "ev_attempt_plug_time": _v(("ev_attempt",), np.array([a.t_plug_s for a in att], float), "s",
                                       "time it plugged in (NaN never)"),
            "ev_attempt_end_time": _v(("ev_attempt",), np.array([a.t_end_s for a in att], float), "s",
                                      "time it unplugged or gave up (NaN: still there at the end)"),
            "ev_attempt_need": _v(("ev_attempt",), np.array([a.need_kwh for a in att], float), "kWh",
                                  "energy asked for (battery side)"),
            "ev_attempt_receivable": _v(("ev_attempt",), np.array([receivable_kwh(a, t_end) for a in att], float),
                                        "kWh", "energy it could physically receive while plugged in (battery side)"),
            "ev_attempt_stored": _v(("ev_attempt",), np.array([a.stored_kwh for a in att], float), "kWh",
                                    "energy charged (battery side)"),
            "ev_distance": _v(("ev",), tl["distance_m"], "m", "distance driven"),
            "ev_need_node": _v(("ev",), tl["need_node"].astype(np.int64), "1", "node where it first needed a charge (-1 never)"),
            "ev_wish_node": _v(("ev",), tl["wish_node"].astype(np.int64), "1", "destination without a nearby charger where it wanted one (-1 none)"),
            "ev_wish_energy": _v(("ev",), tl["wish_kwh"], "kWh", "energy it would have charged there"),
        },
        coords={"time": ("time", t, {"units": "s", "long_name": "record time (interval end)"}),
                "station": ("station", np.array([s.sid for s in st], dtype=object)),
                "ev": ("ev", np.arange(f.n)), "ev_attempt": ("ev_attempt", np.arange(len(att)))},
    )
    ds["station_name"] = ("station", np.array([s.name for s in st], dtype=object))
    ds["station_name"].attrs.update(units="1", long_name="station name")
    return ds


def ev_kpis(dom: "EVDomain") -> dict[str, KPI]:
    """Headline figures; each label names its unit and population (see ``agents.ev.attempts`` for definitions)."""
    settle_open_sessions(dom)
    ctrl, f, tl = dom.ctrl, dom.fleet, dom.fleet.tallies
    t_end = float(dom.env.now)
    fleet_att = [a for a in dom.attempts if a.ev >= 0]
    cnt = outcome_counts(fleet_att)
    n_att = len(fleet_att)
    waits = np.array([wait_s(a, t_end) for a in fleet_att], float)
    plugs = sum(s.plugs for s in dom.stations)
    busy_h = float(ctrl.st_busy_h.sum())
    started = cnt["charged"] + cnt["plugged"]
    lim = dom.config.grid_limit_kw
    out = {
        "evs": KPI(float(f.n), "1", "EVs simulated (one per EV trip)", "none"),
        "home_charging_share": KPI(float(f.home.mean()) if f.n else 0.0, "1", "share of EVs whose drivers charge at home",
                                   "none"),
        "attempts": KPI(float(n_att), "1", "public charging attempts of EVs (joined a queue)", "none"),
        "sessions_started": KPI(float(started), "1", "plug-ins of EVs (attempts charged + still plugged)", "none"),
        "sessions_finished": KPI(float(cnt["charged"]), "1", "EV sessions unplugged before the end (attempts charged)",
                                 "none"),
        "attempts_abandoned": KPI(float(cnt["abandoned"]), "1", "attempts given up waiting", "lower"),
        "attempts_plugged_at_end": KPI(float(cnt["plugged"]), "1", "attempts still plugged in at the end", "none"),
        "attempts_queued_at_end": KPI(float(cnt["queued"]), "1", "attempts still waiting for a plug at the end", "lower"),
        "declined_full": KPI(float(tl["declined_full"].sum()), "1",
                             "destination charges skipped: guidance showed no free plug within walking distance", "lower"),
        "warm_sessions": KPI(float(sum(a.kind == "warm" for a in dom.attempts)), "1",
                             "sessions already in progress at the start (fitted occupancy)", "none"),
        "plug_occupancy": KPI(plug_occupancy(busy_h, plugs, t_end), "1",
                              f"time-mean share of the {plugs} public plugs occupied (all sessions)", "none"),
        "plug_ins_per_plug": KPI(started / plugs if plugs else float("nan"), "1",
                                 f"EV plug-ins per public plug over the run ({plugs} plugs, {t_end / 3600:.1f} h)", "none"),
        "attempts_per_ev": KPI(n_att / f.n if f.n else 0.0, "1", "public charging attempts per EV over the run", "none"),
        "peak_load_kw": KPI(float(ctrl.peak_kw), "kW", "peak city charging load (all sessions)", "lower"),
        "energy_delivered_kwh": KPI(float(ctrl.energy_kwh), "kWh", "energy delivered, grid side (all sessions)", "higher"),
        "demand_met": KPI(demand_met(fleet_att, t_end), "1",
                          f"energy charged / energy receivable while plugged in ({started} EV plug-ins)", "higher"),
        "wait_median_s": KPI(float(np.median(waits)) if waits.size else 0.0, "s",
                             f"median wait for a plug ({waits.size} attempts; given up: to giving up, still queued: "
                             "to the end)", "lower"),
        "wait_p90_s": KPI(float(np.quantile(waits, 0.9)) if waits.size else 0.0, "s",
                          f"90th percentile wait for a plug ({waits.size} attempts, as the median)", "lower"),
        "ran_flat": KPI(float(tl["ran_flat"].sum()), "1", "EVs that ran out of charge", "lower"),
        "unserved": KPI(float(unserved_evs(tl["need_node"] >= 0, fleet_att)), "1",
                        f"EVs that needed a charge and never got a plug (of {int((tl['need_node'] >= 0).sum())} that needed one)",
                        "lower"),
        "overload_kwh": KPI(float(ctrl.overload_kwh), "kWh", "energy drawn above the grid limit", "lower"),
    }
    if lim:
        out["peak_over_limit"] = KPI(float(ctrl.peak_kw) / lim, "1", "peak load / grid limit", "lower")
    return out
