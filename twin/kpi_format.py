"""One way to write a KPI for people: used by the terminal table (twin/cli.py), the report and the dashboard.

A KPI's change is written in the KPI's own unit (the unit its value is shown in), shares as percentages with
changes in percentage points, counts as integers, densities per m², times of day as clock times. Missing values
read "—", never "nan". ``judge`` says whether a change is better, worse, within noise ("same") or unclear.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

__all__ = ["Kind", "kind", "fmt_value", "fmt_delta", "judge", "clock_time", "unit_label", "NOISE_REL",
           "NOISE_PTS", "KpiText", "kpi_text", "kpi_rows"]

# A single run has no interval: changes smaller than this are shown grey ("within noise"). 2% relative / 1 point
# is the typical seed-to-seed spread of the mean KPIs of the small default runs (tens to hundreds of trips/calls);
# smaller changes need replications to be told from noise.
NOISE_REL = 0.02
NOISE_PTS = 1.0
MISSING = "—"

_SHARE_WORDS = ("share", "occupancy", "within_target", "demand_met", "coverage", "utilisation", "utilization",
                "_rate", "fraction")


@dataclass(frozen=True)
class Kind:
    """How a KPI is written: ``what`` in share/count/duration/person_time/density/number, and its display unit."""

    what: str
    unit: str


def kind(name: str, units: str) -> Kind:
    """The kind of a KPI from its variable name and ``units`` attribute (units '1' covers shares, counts, ratios)."""
    n = name.lower()
    u = (units or "").strip()
    if "person_seconds" in n or "person-s" in u:
        return Kind("person_time", "person-h")
    if u in ("1", ""):
        if any(w in n for w in _SHARE_WORDS):
            return Kind("share", "%")
        if any(w in n for w in ("_per_", "ratio", "over_limit", "factor")):
            return Kind("number", "")
        return Kind("count", "")
    if u == "s":
        return Kind("duration", "s")
    if u in ("m-2", "1/m2", "m^-2"):
        return Kind("density", "persons/m²")
    return Kind("number", u)


def _fin(x) -> bool:
    try:
        return x is not None and math.isfinite(float(x))
    except (TypeError, ValueError):
        return False


def _duration_unit(ref: float) -> tuple[float, str]:
    """Seconds, minutes or hours chosen by the size of the reference value (the baseline's)."""
    a = abs(ref) if _fin(ref) else 0.0
    if a >= 2 * 3600:
        return 3600.0, "h"
    if a >= 120:
        return 60.0, "min"
    return 1.0, "s"


def unit_label(name: str, units: str, ref: float = float("nan")) -> str:
    """The unit a KPI is shown in (for table headers): e.g. 'min', '%', 'persons/m²', '' for counts."""
    k = kind(name, units)
    if k.what == "duration":
        return _duration_unit(ref)[1]
    return k.unit


def _num(x: float, decimals: int | None = None) -> str:
    if decimals is None:
        a = abs(x)
        decimals = 0 if a >= 100 else (1 if a >= 10 else 2)
    return f"{x:,.{decimals}f}"


def fmt_value(x, name: str, units: str, ref: float | None = None, unit: bool = True) -> str:
    """A KPI value with its unit; ``ref`` (the baseline value) fixes the time unit so a row uses one unit."""
    if not _fin(x):
        return MISSING
    x = float(x)
    k = kind(name, units)
    sfx = lambda s: f" {s}" if unit and s else ""  # noqa: E731
    if k.what == "share":
        return f"{x * 100:.1f}" + ("%" if unit else "")
    if k.what == "count":  # a mean of replications keeps a decimal only below 100 (20,307, not 20,307.3; 45.7)
        return f"{x:,.0f}" if x == round(x) or abs(x) >= 100 else f"{x:,.1f}"
    if k.what == "person_time":
        return f"{x / 3600:,.1f}" + sfx("person-h")
    if k.what == "duration":
        div, u = _duration_unit(x if ref is None else ref)
        return _num(x / div, 1 if div > 1 else None) + sfx(u)
    if k.what == "density":
        return f"{x:.2f}" + sfx("persons/m²")
    return _num(x) + sfx(k.unit)


def fmt_delta(base, value, name: str, units: str, ci=None, n: int | None = None, pct: bool = True,
              unit: bool = True) -> str:
    """The change ``value − base`` in the KPI's own display unit (points for shares), ± its 95% interval and n
    when given, and the relative change in brackets for non-shares."""
    if not (_fin(base) and _fin(value)):
        return MISSING
    base, value = float(base), float(value)
    d = value - base
    k = kind(name, units)
    if k.what == "share":
        s = f"{d * 100:+.1f} pts"
        if _fin(ci):
            s = f"{d * 100:+.1f} ± {float(ci) * 100:.1f} pts"
    elif k.what == "count":  # whole numbers when both are whole or the larger is at least 100
        c = float(ci) if _fin(ci) else 0.0
        whole = (d == round(d) and c == round(c)) or max(abs(d), c) >= 100
        s = f"{d:+,.0f}" if whole else f"{d:+,.1f}"
        if _fin(ci):
            s += f" ± {c:,.0f}" if whole else f" ± {c:,.1f}"
    else:
        if k.what == "duration":
            div, u = _duration_unit(base)
        elif k.what == "person_time":
            div, u = 3600.0, "person-h"
        else:
            div, u = 1.0, k.unit
        dec = 1 if div > 1 else None
        if div > 1:  # a change far below the display unit keeps 2 significant digits (+0.017 min, not +0.0 min)
            big = max(abs(d), float(ci) if _fin(ci) else 0.0) / div
            if 0 < big < 1:
                dec = min(3, max(1, 1 - math.floor(math.log10(big))))
        s = f"{'+' if d >= 0 else '-'}{_num(abs(d) / div, dec)}"
        if _fin(ci):
            s += f" ± {_num(float(ci) / div, dec)}"
        if u and unit:
            s += f" {u}"
    if pct and k.what != "share" and base:
        s += f" ({d / abs(base) * 100:+.1f}%)"
    if n:
        s += f", n={int(n)}"
    return s


def judge(better: str, base, value, name: str = "", units: str = "", ci=None) -> str:
    """'better', 'worse', 'same' (no change or within single-run noise) or 'unclear' (interval includes 0)."""
    if not (_fin(base) and _fin(value)):
        return "same"
    base, value = float(base), float(value)
    d = value - base
    if _fin(ci):
        if abs(d) <= float(ci):
            return "unclear"
    elif abs(d) <= 1e-9 * max(1.0, abs(base)):
        return "same"
    else:  # single run: no interval, a small change is noise
        k = kind(name, units)
        if k.what == "share" and abs(d) * 100 < NOISE_PTS:
            return "same"
        if k.what != "share" and abs(d) < NOISE_REL * max(abs(base), 1e-12):
            return "same"
        if k.what == "count" and abs(d) < 1:
            return "same"
    if better not in ("lower", "higher"):
        return "same"
    return "better" if (d > 0) == (better == "higher") else "worse"


def clock_time(start: str, t_s: float) -> str:
    """The clock time 'HH:MM' of ``t_s`` seconds after the scenario start 'HH:MM' (wraps at midnight)."""
    try:
        h, m = (int(x) for x in str(start).split(":")[:2])
    except ValueError:
        h, m = 0, 0
    if not _fin(t_s):
        return MISSING
    s = int(round(h * 3600 + m * 60 + float(t_s))) % 86400
    return f"{s // 3600:02d}:{(s % 3600) // 60:02d}"


@dataclass(frozen=True)
class KpiText:
    """A KPI written for people: value, change against the baseline and its verdict (see :func:`judge`)."""

    value: str
    delta: str
    verdict: str
    marker: str


def kpi_text(name: str, units: str, better: str, base, value, ci=None, n: int | None = None) -> KpiText:
    """Value (in the baseline's unit), change and verdict of one KPI; marker ▲/▼ with better/worse words."""
    v = judge(better, base, value, name, units, ci)
    delta = fmt_delta(base, value, name, units, ci, n)
    marker = {"better": "better", "worse": "worse", "unclear": "no clear change"}.get(v, "")
    if v in ("better", "worse") and _fin(base) and _fin(value):
        marker = ("▲ " if float(value) > float(base) else "▼ ") + marker
    return KpiText(fmt_value(value, name, units, ref=base), delta, v, marker)


SUFFIXES = ("_mean", "_std", "_ci95", "_delta_mean", "_delta_ci95")


def kpi_rows(ds) -> list[dict]:
    """One dict per (KPI, variant) of a results dataset, in the file's order, raw numbers in the KPI's units:
    domain, kpi, label, units, better, variant, value, ci95, delta, delta_ci95, n, verdict (against the baseline,
    the first variant). With replications values are means and deltas mean paired differences."""
    import numpy as np

    variants = [str(v) for v in ds["variant"].values] if "variant" in ds.dims else ["baseline"]
    names = [str(v) for v in ds.data_vars if str(v).startswith("kpi_")
             and not any(str(v).endswith(x) and str(v)[: -len(x)] in ds for x in SUFFIXES)]
    n_rep = int(ds.attrs.get("replications", 1) or 1)
    out = []

    def col(name):
        if name not in ds:
            return np.full(len(variants), np.nan)
        da = ds[name]
        a = np.asarray(da.values, float)
        if "variant" not in da.dims:
            a = np.atleast_1d(a)
            return np.resize(a.ravel()[:1] if a.size == 1 else a, len(variants))
        if da.ndim > 1:  # (variant, replication) without _mean: average the runs
            with np.errstate(all="ignore"):
                a = np.nanmean(a.reshape(len(variants), -1), 1)
        return a

    for name in names:
        da = ds[name]
        reps = n_rep > 1 and f"{name}_mean" in ds
        vals = col(f"{name}_mean") if reps else col(name)
        ci = col(f"{name}_ci95") if reps else np.full(len(variants), np.nan)
        dmean = col(f"{name}_delta_mean") if reps else vals - vals[0]
        dci = col(f"{name}_delta_ci95") if reps else np.full(len(variants), np.nan)
        meta = {"domain": str(da.attrs.get("domain") or name.split("_")[1]), "kpi": name,
                "label": str(da.attrs.get("long_name", name)), "units": str(da.attrs.get("units", "")),
                "better": str(da.attrs.get("better", "none"))}
        pairs = np.full(len(variants), n_rep)
        if reps and da.ndim == 2 and da.shape[0] == len(variants):  # (variant, replication)
            fin = np.isfinite(np.asarray(da.values, float))
            pairs = (fin & fin[0:1]).sum(axis=1)  # replications where both the variant and the baseline have a value
        for i, v in enumerate(variants):
            base, val = float(vals[0]), float(vals[i])
            verdict = "baseline" if i == 0 else judge(meta["better"], base, base + float(dmean[i]), name,
                                                     meta["units"], float(dci[i]) if reps else None)
            out.append({**meta, "variant": v, "value": None if not _fin(val) else val,
                        "ci95": float(ci[i]) if _fin(ci[i]) else None,
                        "delta": None if i == 0 or not _fin(dmean[i]) else float(dmean[i]),
                        "delta_ci95": float(dci[i]) if i and _fin(dci[i]) else None,
                        "n": n_rep, "n_pairs": int(pairs[i]), "verdict": verdict})
    return out
