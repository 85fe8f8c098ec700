"""Results: assemble one run's Dataset, stack variants, write netCDF atomically, tabulate KPIs."""
from __future__ import annotations

import json
import re
import threading
from typing import Any
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

from twin.atomic import write_atomic_with
from twin.domain import KPI
from twin.provenance import package_versions

__all__ = ["kpi_variables", "stack_variants", "write_atomic", "kpi_table", "package_versions", "open_results", "read_netcdf", "NETCDF_LOCK",
           "merge_domain_results", "ResultsConflictError", "t_ci95", "add_replications", "KPI_SUFFIXES"]

# derived KPI variables (not KPIs of their own): replication statistics
KPI_SUFFIXES = ("_mean", "_std", "_ci95", "_delta_mean", "_delta_ci95")

def kpi_variables(kpis: dict[str, dict[str, KPI]]) -> dict[str, xr.DataArray]:
    """KPIs as scalar variables ``kpi_<domain>_<name>`` with units, long_name, better, domain attrs."""
    out = {}
    for dom, ks in kpis.items():
        for name, k in ks.items():
            out[f"kpi_{dom}_{name}"] = xr.DataArray(float(k.value), attrs={
                "units": k.units, "long_name": k.label, "better": k.better, "domain": dom})
    return out


class ResultsConflictError(ValueError):
    """Two domains produced the same variable, or disagreeing coordinates: nothing is silently overwritten."""


def merge_domain_results(parts: dict[str, xr.Dataset]) -> xr.Dataset:
    """Merge the domains' datasets (``{domain: Dataset}``). A data variable may come from one domain only,
    and shared coordinates must agree; otherwise :class:`ResultsConflictError` names both domains."""
    owner: dict[str, str] = {}
    for dom, ds in parts.items():
        for name in ds.data_vars:
            if name in owner:
                raise ResultsConflictError(f"results variable {name!r} comes from both {owner[name]!r} and "
                                           f"{dom!r}; a domain prefixes its variables (docs/results.md)")
            owner[str(name)] = dom
    if not parts:
        return xr.Dataset()
    try:
        return xr.merge(list(parts.values()), compat="no_conflicts", join="outer", combine_attrs="drop_conflicts")
    except xr.MergeError as exc:
        raise ResultsConflictError(f"domains {', '.join(parts)} disagree on a shared coordinate: {exc}") from None


def stack_variants(runs: dict[str, xr.Dataset]) -> xr.Dataset:
    """Stack runs along a ``variant`` dimension (outer join on trips, incidents...), baseline first."""
    names = list(runs)
    per_attrs = {n: dict(ds.attrs) for n, ds in runs.items()}
    ds = xr.concat([runs[n].assign_attrs({}) for n in names], dim=pd.Index(names, name="variant"),
                   join="outer", data_vars="all", coords="minimal", compat="override", combine_attrs="override")
    ds.attrs = {}
    first = per_attrs[names[0]]
    common = {k: v for k, v in first.items() if all(per_attrs[n].get(k) == v for n in names)}
    ds.attrs.update(common)
    for key in ("scenario_hash", "variant_description", "wall_time_s", "complete", "scenario_json"):
        vals = [per_attrs[n].get(key, "") for n in names]
        ds[f"run_{key}"] = xr.DataArray(np.array(vals, dtype=object if isinstance(vals[0], str) else float),
                                        dims="variant", attrs={"units": "1", "long_name": f"{key} of each run"})
    ds.attrs["scenario_hash"] = first.get("scenario_hash", "")  # the baseline's; each run's is run_scenario_hash
    ds.attrs["complete"] = int(all(int(per_attrs[n].get("complete", 1)) for n in names))
    ds.attrs["variants"] = json.dumps(names)
    ds.attrs["runs"] = json.dumps(per_attrs, default=str)
    return ds


def t_ci95(x: np.ndarray, axis: int = -1) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Mean, sample std, 95% half-width (Student t, n-1 dof) and n over ``axis``, ignoring NaN."""
    from scipy import stats

    x = np.asarray(x, float)
    n = np.sum(np.isfinite(x), axis=axis)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.where(n > 0, np.nansum(x, axis=axis) / np.maximum(n, 1), np.nan)
        dev = np.where(np.isfinite(x), x - np.expand_dims(mean, axis), 0.0)
        std = np.where(n > 1, np.sqrt(np.sum(dev**2, axis=axis) / np.maximum(n - 1, 1)), np.nan)
        tq = np.where(n > 1, stats.t.ppf(0.975, np.maximum(n - 1, 1)), np.nan)
        half = tq * std / np.sqrt(np.maximum(n, 1))
    return mean, std, half, n


_NUMBER = re.compile(r"\d[\d,]*(?:\.\d+)?")


def label_over_runs(labels: list[str]) -> str:
    """One KPI label for several runs whose labels carry their own counts ("12 calls with a target"): each
    number that differs between runs becomes its range ("8–14 calls"), so a replicated KPI never shows one
    run's population as if it were all runs'. Labels of different shape: the first, marked as such."""
    first = labels[0]
    def shape(lab: str) -> str:
        return _NUMBER.sub("{}", lab.replace("{", "{{").replace("}", "}}"))
    template = shape(first)
    if any(shape(lab) != template for lab in labels[1:]):
        return f"{first} [counts of the first run; they vary by run]"
    slots = [[m.group(0) for m in _NUMBER.finditer(lab)] for lab in labels]
    parts = []
    for col in zip(*slots):
        if len(set(col)) == 1:
            parts.append(col[0])
            continue
        vals = [float(c.replace(",", "")) for c in col]
        lo, hi = min(vals), max(vals)
        fmt = (lambda x: f"{x:,.0f}") if all("." not in c for c in col) else (lambda x: f"{x:g}")
        parts.append(f"{fmt(lo)}–{fmt(hi)}")
    out = template.format(*parts)
    return out if all(len(set(c)) == 1 for c in zip(*slots)) else f"{out} [ranges over the {len(labels)} runs]"


def add_replications(ds: xr.Dataset, runs: dict[str, list[xr.Dataset | None]],
                     seeds: dict[str, list[int]]) -> xr.Dataset:
    """Add replication statistics to a stacked file (``ds``: one full run per variant, baseline first).

    ``runs[variant][r]`` is replication ``r``'s Dataset (None if it failed). With one replication only the
    ``replications`` attr is added. Otherwise every ``kpi_<name>`` becomes (variant, replication), and
    ``kpi_<name>_mean``/``_ci95`` (95% Student-t half-width over replications) and ``_delta_mean``/
    ``_delta_ci95`` (paired differences to the baseline's replication with the same seeds) are added along
    ``variant``; coordinate ``replication``, variable ``replication_seed`` (variant, replication).
    """
    variants = [str(v) for v in ds["variant"].values]
    n = max(len(r) for r in runs.values())
    ds = ds.copy()
    ds.attrs["replications"] = int(n)
    if n <= 1:
        return ds
    names = [str(k) for k, v in ds.data_vars.items() if str(k).startswith("kpi_") and "variant" in v.dims
             and v.ndim == 1]
    V = len(variants)
    seed_arr = np.array([[int(s) for s in seeds[v]] for v in variants], dtype=np.int64)
    data: dict[str, Any] = {}
    for name in names:
        vals = np.full((V, n), np.nan)
        for i, v in enumerate(variants):
            for r, run in enumerate(runs.get(v, [])):
                if run is not None and name in run:
                    vals[i, r] = float(run[name].values)
        attrs = dict(ds[name].attrs)
        labels = [str(run[name].attrs.get("long_name", name)) for v in variants for run in runs.get(v, [])
                  if run is not None and name in run]
        label = label_over_runs(labels) if labels else attrs.get("long_name", name)
        attrs["long_name"] = label
        mean, _, half, _ = t_ci95(vals, axis=1)
        dmean, _, dhalf, _ = t_ci95(vals - vals[0:1, :], axis=1)  # paired: replication r shares its seeds
        data[name] = (("variant", "replication"), vals, attrs)
        data[f"{name}_mean"] = (("variant",), mean, {**attrs, "long_name": f"{label} (mean over replications)"})
        data[f"{name}_ci95"] = (("variant",), half, {**attrs, "better": "none",
                                                     "long_name": f"{label} (95% interval half-width, Student t)"})
        data[f"{name}_delta_mean"] = (("variant",), dmean, {**attrs, "long_name": f"{label}: mean paired "
                                                            "difference to the baseline"})
        data[f"{name}_delta_ci95"] = (("variant",), dhalf, {**attrs, "better": "none", "long_name": f"{label}: "
                                                            "95% half-width of the paired difference (Student t)"})
    ds = ds.drop_vars(names)
    ds = ds.assign({k: xr.Variable(*v) for k, v in data.items()})
    ds = ds.assign_coords(replication=np.arange(n))
    ds["replication_seed"] = (("variant", "replication"), seed_arr,
                              {"units": "1", "long_name": "scenario seed of each replication (same across variants)"})
    ds.attrs["confidence"] = ("95% Student t interval over replications: kpi_<name>_mean +/- kpi_<name>_ci95; "
                              "differences to the baseline paired by replication (common random numbers)")
    return ds


def _encodable(ds: xr.Dataset) -> xr.Dataset:
    """Make object/str coordinates netCDF-friendly and attrs plain (str/number)."""
    ds = ds.copy()
    for k, v in list(ds.attrs.items()):
        if isinstance(v, (dict, list, tuple)):
            ds.attrs[k] = json.dumps(v, default=str)
        elif isinstance(v, (bool, np.bool_)):
            ds.attrs[k] = int(v)
        elif v is None:
            ds.attrs[k] = ""
    for name in list(ds.variables):
        var = ds[name]
        if var.dtype == object:
            ds[name] = var.astype(str)
        enc = ds[name].encoding.get("dtype")
        if (enc is not None and np.dtype(enc).kind in "iub" and var.dtype.kind == "f"
                and bool(np.isnan(var.values).any())):
            # an integer variable read back from a file, then padded with NaN when variants of different sizes
            # were stacked: written as integers, the NaNs would become arbitrary numbers
            del ds[name].encoding["dtype"]
        for k, v in list(var.attrs.items()):
            if isinstance(v, (bool, np.bool_)):
                ds[name].attrs[k] = int(v)
    return ds


NETCDF_LOCK = threading.RLock()
"""One netCDF call at a time in this process, for every read and write of ours: netCDF-C and HDF5 are not
thread-safe, and xarray's own locks let a file being opened in one thread (the dashboard's warm-up reader) race
one being written in another (a run): a segfault in CI (session 9). Re-entrant: a writer may hold it around a
whole write (dashboards/whatif.py)."""


def write_atomic(ds: xr.Dataset, path: str | Path) -> Path:
    """Write ``ds`` to netCDF at ``path`` atomically: a temp file in the same folder, then rename."""
    enc = _encodable(ds)

    def write(tmp: str) -> None:
        with NETCDF_LOCK:
            enc.to_netcdf(tmp, engine="netcdf4")

    return write_atomic_with(path, write)


def read_netcdf(path: str | Path) -> xr.Dataset:
    """Read a netCDF file whole into memory under :data:`NETCDF_LOCK`, and close it."""
    with NETCDF_LOCK:
        with xr.open_dataset(path, engine="netcdf4") as ds:
            return ds.load()


open_results = read_netcdf  # the name docs/batch.md gives (nothing is left open for another thread to read)


def kpi_table(ds: xr.Dataset) -> pd.DataFrame:
    """KPI rows (domain, label, units) by variant columns, plus Δ% of each variant against the baseline.

    With replications the variant columns are means over replications, ``± <variant>`` their 95% half-widths,
    and ``clear <variant>`` says whether the paired difference to the baseline is clear (its 95% interval
    excludes 0; False = "no clear change"). With one run per variant ``clear`` columns are absent."""
    names = [str(v) for v in ds.data_vars if str(v).startswith("kpi_") and not str(v).endswith(KPI_SUFFIXES)]
    variants = [str(v) for v in ds["variant"].values] if "variant" in ds.dims else ["baseline"]
    rows = []
    for n in names:
        da = ds[n]
        reps = "replication" in da.dims and f"{n}_mean" in ds
        vals = np.atleast_1d((ds[f"{n}_mean"] if reps else da).values).astype(float)
        row: dict[str, Any] = {"domain": da.attrs.get("domain", ""), "kpi": da.attrs.get("long_name", n),
                               "units": da.attrs.get("units", ""), "better": da.attrs.get("better", "none")}
        for v, x in zip(variants, vals):
            row[v] = x
        if reps:
            for v, h in zip(variants, np.atleast_1d(ds[f"{n}_ci95"].values).astype(float)):
                row[f"± {v}"] = h
        base = vals[0]
        for i, (v, x) in enumerate(list(zip(variants, vals))[1:], start=1):
            ok = bool(base) and np.isfinite(base)
            if reps:
                dm, dh = float(ds[f"{n}_delta_mean"].values[i]), float(ds[f"{n}_delta_ci95"].values[i])
                row[f"Δ% {v}"] = dm / abs(base) * 100.0 if ok else np.nan
                row[f"clear {v}"] = bool(np.isfinite(dm) and np.isfinite(dh) and abs(dm) > dh)
            else:
                row[f"Δ% {v}"] = (x - base) / abs(base) * 100.0 if ok else np.nan
        rows.append(row)
    return pd.DataFrame(rows)
