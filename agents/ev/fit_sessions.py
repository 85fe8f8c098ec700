"""Fit charging demand to real public sessions (Dundee, Boulder): arrivals by hour, dwell and energy.

Run ``python -m agents.ev.fit_sessions`` to rewrite ``data/ev/session_params.json`` and the shipped replay
log ``data/ev/boulder_2019-08_sessions.csv.gz``. Per power class (7, 22, 50 kW) it fits: arrivals per
charger per day, the share of arrivals in each hour of the day, lognormal dwell (h) and lognormal energy
per session (kWh) by maximum likelihood (mean and sd of the logs).
"""
from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pandas as pd

__all__ = ["load_dundee", "load_boulder", "fit_sessions", "power_class_kw", "main"]

SRC = Path("/work/shared/data/ev_sessions")
OUT = Path(__file__).resolve().parents[2] / "data" / "ev"
DWELL_H = (2 / 60, 48.0)  # plausible plug-in durations (h); outside = logging errors
ENERGY_KWH = (0.1, 150.0)


def power_class_kw(model: str) -> float:
    """Charger class (7, 22 or 50 kW) from a Dundee charger model name such as 'APT 22kW Dual Outlet'."""
    m = re.search(r"(\d+)\s*kW", model)
    if m:
        return 50.0 if float(m.group(1)) >= 40 else float(m.group(1))
    return 50.0 if "Rapid" in model else 7.0


def load_dundee(paths: list[Path]) -> pd.DataFrame:
    """Dundee City Council sessions (OGL v3.0) as columns station, start, end, energy_kwh, power_kw."""
    frames = []
    for p in paths:
        d = pd.read_csv(p)
        d = d.dropna(subset=["End Date", "End Time", "Total kWh"])
        frames.append(pd.DataFrame({
            "station": d["CP ID"].astype(str) + ":" + d["Connector"].astype(str),
            "site": d["Site"].astype(str),
            "start": pd.to_datetime(d["Start Date"] + " " + d["Start Time"], dayfirst=True),
            "end": pd.to_datetime(d["End Date"] + " " + d["End Time"], dayfirst=True),
            "energy_kwh": d["Total kWh"].astype(float),
            "power_kw": d["Model"].astype(str).map(power_class_kw),
        }))
    return pd.concat(frames, ignore_index=True).drop_duplicates()


def _hms_s(col: pd.Series) -> pd.Series:
    parts = col.astype(str).str.split(":", expand=True).astype(float)
    return parts[0] * 3600 + parts[1] * 60 + parts[2]


def load_boulder(path: Path) -> pd.DataFrame:
    """City of Boulder sessions (open data, all Level 2 = 7 kW class) in the same columns plus charging_s."""
    b = pd.read_csv(path, encoding="utf-8-sig")
    return pd.DataFrame({
        "station": b["Station_Name"].astype(str),
        "site": b["Address"].astype(str),
        "start": pd.to_datetime(b["Start_Date___Time"]),
        "end": pd.to_datetime(b["End_Date___Time"]),
        "energy_kwh": b["Energy__kWh_"].astype(float),
        "power_kw": 7.0,
        "charging_s": _hms_s(b["Charging_Time__hh_mm_ss_"]),
    })


def clean(df: pd.DataFrame) -> pd.DataFrame:
    """Drop sessions with implausible dwell or energy (logging errors)."""
    dwell_h = (df["end"] - df["start"]).dt.total_seconds() / 3600.0
    ok = dwell_h.between(*DWELL_H) & df["energy_kwh"].between(*ENERGY_KWH)
    return df[ok].copy()


def _lognormal(x: np.ndarray) -> dict:
    lx = np.log(x)
    mu, sigma = float(lx.mean()), float(lx.std(ddof=1))
    return {"mu": mu, "sigma": sigma, "median": float(np.exp(mu)), "mean": float(np.exp(mu + sigma**2 / 2)),
            "p10": float(np.quantile(x, 0.1)), "p90": float(np.quantile(x, 0.9))}


def fit_sessions(df: pd.DataFrame) -> dict:
    """Fit one power class: arrivals/charger/day, hourly arrival shares, lognormal dwell (h) and energy (kWh)."""
    df = clean(df)
    days = max((df["start"].max() - df["start"].min()).total_seconds() / 86400.0, 1.0)
    n_chargers = int(df["station"].nunique())
    hours = np.bincount(df["start"].dt.hour.to_numpy(), minlength=24).astype(float)
    dwell_h = (df["end"] - df["start"]).dt.total_seconds().to_numpy() / 3600.0
    out = {
        "n_sessions": int(len(df)),
        "n_chargers": n_chargers,
        "days": round(days, 2),
        "arrivals_per_charger_day": len(df) / n_chargers / days,
        "hourly_share": (hours / hours.sum()).round(5).tolist(),
        "dwell_h": _lognormal(dwell_h),
        "energy_kwh": _lognormal(df["energy_kwh"].to_numpy()),
    }
    if "charging_s" in df and df["charging_s"].notna().any():
        frac = np.clip(df["charging_s"].to_numpy() / 3600.0 / dwell_h, 0, 1)
        out["charging_share_of_dwell_mean"] = float(np.nanmean(frac))
    return out


def main() -> None:
    """Fit every class and dataset, write the JSON and the shipped one-month replay log."""
    dundee = load_dundee(sorted(SRC.glob("dundee_sessions_*.csv.gz")))
    boulder = load_boulder(SRC / "boulder_sessions_2018.csv.gz")
    params: dict = {"source": {
        "dundee": "Dundee City Council public charge points, 2018-03..09; Open Government Licence v3.0",
        "boulder": "City of Boulder (Colorado) public stations, 2018-01..2021-03; City of Boulder open data"},
        "fitted_by": "python -m agents.ev.fit_sessions", "classes": {}}
    for kw in (7.0, 22.0, 50.0):
        params["classes"][f"dundee_{kw:g}kW"] = fit_sessions(dundee[dundee["power_kw"] == kw])
    params["classes"]["boulder_7kW"] = fit_sessions(boulder)
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "session_params.json").write_text(json.dumps(params, indent=1) + "\n")
    month = clean(boulder[(boulder["start"] >= "2019-08-01") & (boulder["start"] < "2019-09-01")])
    month = month.sort_values("start")[["station", "start", "end", "energy_kwh", "charging_s"]]
    month.to_csv(OUT / "boulder_2019-08_sessions.csv.gz", index=False, float_format="%.3f",
                 date_format="%Y-%m-%d %H:%M:%S", compression={"method": "gzip", "mtime": 0})
    for k, v in params["classes"].items():
        print(f"{k:14s} sessions {v['n_sessions']:6d} chargers {v['n_chargers']:3d} arr/charger/day "
              f"{v['arrivals_per_charger_day']:.2f} dwell median {v['dwell_h']['median']:.2f} h "
              f"energy median {v['energy_kwh']['median']:.1f} kWh")
    print(f"replay log: {len(month)} sessions")


if __name__ == "__main__":
    main()
