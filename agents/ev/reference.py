"""Real public-charging figures beside a run's: plug-ins per plug and plug occupancy, AC and DC, over the run's
clock window, from the fitted session classes (``data/ev/session_params.json``) and the German register.

The fitted reference for a window is exact for the fit: plug-ins per plug = arrivals per charger-day x the
window's share of daily arrivals; occupancy = the time mean of the M(t)/G/inf occupancy of ``agents.ev.warm``.
"""
from __future__ import annotations

import math

import numpy as np
import xarray as xr

from agents.ev.warm import occupancy_at

__all__ = ["GERMANY", "class_window", "model_window", "comparison_rows"]

# Bundesnetzagentur, Ladesaeulenregister, 1 Feb 2025: 125,408 public AC (normal) and 36,278 fast (DC) charging
# points; Destatis: 83.6 M inhabitants; KBA, 1 Jan 2025: 1.65 M battery-electric cars. The national charging
# office (Nationale Leitstelle Ladeinfrastruktur) reports about 10% mean occupancy of public points.
GERMANY = {"ac_points": 125_408, "dc_points": 36_278, "inhabitants": 83.6e6, "bevs": 1.65e6,
           "mean_occupancy": 0.10}


def class_window(cls: dict, h0: float, h1: float) -> dict[str, float]:
    """Plug-ins per plug and time-mean occupancy of fitted class ``cls`` between clock hours ``h0`` and ``h1``."""
    share = np.asarray(cls["hourly_share"], float)
    share = share / share.sum()
    hours = np.arange(h0, h1, 0.05) + 0.025
    arr = cls["arrivals_per_charger_day"] * float(sum(share[int(h) % 24] * 0.05 for h in hours))
    return {"plug_ins_per_plug": arr, "occupancy": float(np.mean([occupancy_at(cls, h % 24) for h in hours]))}


def model_window(ds: xr.Dataset, duration_s: float) -> dict[str, dict[str, float]]:
    """A run's EV plug-ins per plug, occupancy (busy plug-hours / plug-hours, warm-start sessions included) and
    median time plugged (h), separately for AC (<= 22 kW) and DC plugs. ``ds``: one variant's results."""
    power = np.asarray(ds["station_plug_power"].values, float)
    plugs = np.asarray(ds["station_plugs"].values, float)
    kind = np.asarray(ds["ev_attempt_kind"].values)
    ok = np.array([isinstance(k, str) and k in ("en_route", "destination", "warm") for k in kind])
    st = np.asarray(ds["ev_attempt_station"].values)[ok].astype(int)
    ev = np.asarray(ds["ev_attempt_ev"].values)[ok].astype(int)
    t_plug = np.asarray(ds["ev_attempt_plug_time"].values, float)[ok]
    t_end = np.asarray(ds["ev_attempt_end_time"].values, float)[ok]
    held = np.where(np.isnan(t_end), duration_s, t_end) - t_plug
    out = {}
    for name, sel in (("AC", power <= 22.0), ("DC", power > 22.0)):
        n_plugs = float(plugs[sel].sum())
        on = sel[st] & ~np.isnan(t_plug)
        out[name] = {"plugs": n_plugs,
                     "plug_ins_per_plug": float((on & (ev >= 0)).sum()) / n_plugs if n_plugs else math.nan,
                     "occupancy": float(held[on].sum()) / 3600.0 / (n_plugs * duration_s / 3600.0) if n_plugs else math.nan,
                     "median_plugged_h": float(np.median(held[on])) / 3600.0 if on.any() else math.nan}
    return out


def comparison_rows(ds: xr.Dataset, params: dict, start_h: float, duration_s: float,
                    population: float | None = None) -> list[tuple[str, str, str, str]]:
    """(figure, model, reference, source) rows: the run beside the fitted classes and the German register."""
    m = model_window(ds, duration_s)
    h0, h1 = start_h, start_h + duration_s / 3600.0
    cl = params["classes"]
    ref = {k: class_window(cl[k], h0, h1) for k in cl}
    ac_keys = [k for k in cl if not k.endswith("50kW")]
    win = f"{h0:g}-{h1:g} h"

    def rng(keys, what):
        vals = [ref[k][what] for k in keys]
        return f"{min(vals):.3f}-{max(vals):.3f}"

    rows = [
        ("AC plug-ins per plug, " + win, f"{m['AC']['plug_ins_per_plug']:.3f}", rng(ac_keys, "plug_ins_per_plug"),
         "fitted public AC sessions: " + ", ".join(f"{k} {ref[k]['plug_ins_per_plug']:.3f}" for k in ac_keys)),
        ("AC plug occupancy, " + win, f"{m['AC']['occupancy']:.3f}", rng(ac_keys, "occupancy"),
         "fitted M(t)/G/inf: " + ", ".join(f"{k} {ref[k]['occupancy']:.3f}" for k in ac_keys)
         + f"; Germany ~{GERMANY['mean_occupancy']:.2f} daily mean (Nationale Leitstelle)"),
        ("DC plug-ins per plug, " + win, f"{m['DC']['plug_ins_per_plug']:.3f}",
         f"{ref['dundee_50kW']['plug_ins_per_plug']:.3f}", "fitted Dundee 50 kW rapid chargers"),
        ("DC plug occupancy, " + win, f"{m['DC']['occupancy']:.3f}", f"{ref['dundee_50kW']['occupancy']:.3f}",
         "fitted Dundee 50 kW rapid chargers"),
        ("AC median time plugged (h)", f"{m['AC']['median_plugged_h']:.2f}",
         f"{math.exp(cl['boulder_7kW']['dwell_h']['mu']):.2f}", "Boulder L2 dwell median (sessions cut at the run's end "
         "in the model)"),
    ]
    if population:
        for kind, key in (("AC", "ac_points"), ("DC", "dc_points")):
            dens = GERMANY[key] / GERMANY["inhabitants"] * population
            rows.append((f"public {kind} plugs", f"{m[kind]['plugs']:.0f}", f"{dens:.0f}",
                         f"Bundesnetzagentur register density x {population:,.0f} inhabitants"))
    return rows
