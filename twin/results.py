"""Results: assemble one run's Dataset, stack variants, write netCDF atomically, tabulate KPIs."""
from __future__ import annotations

import json
from importlib import metadata
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

from twin.atomic import write_atomic_with
from twin.domain import KPI

__all__ = ["kpi_variables", "stack_variants", "write_atomic", "kpi_table", "package_versions", "open_results"]

_PACKAGES = ("citytwin", "mesa", "simpy", "numba", "numpy", "networkx", "xarray", "eclipse-sumo")


def package_versions() -> dict[str, str]:
    """Versions of the packages that shape results (recorded in every results file)."""
    out = {}
    for p in _PACKAGES:
        try:
            out[p] = metadata.version(p)
        except metadata.PackageNotFoundError:
            out[p] = "not installed"
    return out


def kpi_variables(kpis: dict[str, dict[str, KPI]]) -> dict[str, xr.DataArray]:
    """KPIs as scalar variables ``kpi_<domain>_<name>`` with units, long_name, better, domain attrs."""
    out = {}
    for dom, ks in kpis.items():
        for name, k in ks.items():
            out[f"kpi_{dom}_{name}"] = xr.DataArray(float(k.value), attrs={
                "units": k.units, "long_name": k.label, "better": k.better, "domain": dom})
    return out


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
        for k, v in list(var.attrs.items()):
            if isinstance(v, (bool, np.bool_)):
                ds[name].attrs[k] = int(v)
    return ds


def write_atomic(ds: xr.Dataset, path: str | Path) -> Path:
    """Write ``ds`` to netCDF at ``path`` atomically: a temp file in the same folder, then rename."""
    enc = _encodable(ds)
    return write_atomic_with(path, lambda tmp: enc.to_netcdf(tmp, engine="netcdf4"))


def open_results(path: str | Path) -> xr.Dataset:
    """Open a results file lazily (netCDF)."""
    return xr.open_dataset(path, engine="netcdf4")


def kpi_table(ds: xr.Dataset) -> pd.DataFrame:
    """KPI rows (domain, label, units) by variant columns, plus Δ% of each variant against the baseline."""
    names = [v for v in ds.data_vars if str(v).startswith("kpi_")]
    variants = [str(v) for v in ds["variant"].values] if "variant" in ds.dims else ["baseline"]
    rows = []
    for n in names:
        da = ds[n]
        vals = np.atleast_1d(da.values).astype(float)
        row = {"domain": da.attrs.get("domain", ""), "kpi": da.attrs.get("long_name", n),
               "units": da.attrs.get("units", ""), "better": da.attrs.get("better", "none")}
        for v, x in zip(variants, vals):
            row[v] = x
        base = vals[0]
        for v, x in list(zip(variants, vals))[1:]:
            row[f"Δ% {v}"] = (x - base) / abs(base) * 100.0 if base and np.isfinite(base) else np.nan
        rows.append(row)
    return pd.DataFrame(rows)
