"""Read results files for the views: a catalogue of a results folder, safe paths, per-variant arrays.

Everything here reads files only (never a live engine). Loaded files are cached by (path, mtime, size);
per-variant derived arrays (speed ratio classes, segment coordinates) are computed once per file.
"""
from __future__ import annotations

import json
import threading
import weakref
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import xarray as xr

from twin import kpi_format as KF
from twin.results import NETCDF_LOCK

__all__ = ["ResultsError", "safe_path", "Catalog", "FileEntry", "load", "variant_view", "kpi_list",
           "simulated_domains", "DOMAINS", "DOMAIN_LABELS", "scenario_doc", "Network", "network",
           "SPEED_BINS", "SPEED_LABELS", "VOLUME_BINS", "VOLUME_LABELS", "link_classes", "clock_labels",
           "variant_key", "split_key", "capacity_factor", "station_present", "N_MAP_CLASSES", "link_names", "venue_present"]

DOMAINS = ("traffic", "ev", "crowd", "emergency")
DOMAIN_LABELS = {"traffic": "Traffic", "ev": "EV charging", "crowd": "Crowd", "emergency": "Emergency"}
# speed ratio (speed / free-flow speed) classes, worst first
SPEED_BINS = np.array([0.25, 0.5, 0.75, 0.9])
SPEED_LABELS = ["< 25% (jammed)", "25–50%", "50–75%", "75–90%", "≥ 90% (free)"]
# traffic maps: 5 colour classes + "closed" + "reduced capacity" overlay, then the clickable midpoint layer
N_MAP_CLASSES = 7
VOLUME_BINS = np.array([1.0, 100.0, 300.0, 600.0])
VOLUME_LABELS = ["no traffic", "1–100 veh/h", "100–300 veh/h", "300–600 veh/h", "≥ 600 veh/h"]


class ResultsError(Exception):
    """A results file is missing, unreadable or not a CityTwin results file (``path`` names it)."""

    def __init__(self, path: str | Path, message: str) -> None:
        self.path = str(path)
        self.message = message
        super().__init__(f"{Path(path).name}: {message}")


def safe_path(root: str | Path, rel: str | Path) -> Path:
    """``rel`` resolved inside ``root``; raise ValueError if it leaves the folder (.., absolute, symlink)."""
    root_r = Path(root).resolve()
    p = (root_r / Path(rel)).resolve()
    if p != root_r and root_r not in p.parents:
        raise ValueError(f"{rel!s}: outside the results folder")
    return p


def variant_key(rel: str, variant: str) -> str:
    """The picker value of one variant of one file: ``<relative path>::<variant>``."""
    return f"{rel}::{variant}"


def split_key(key: str) -> tuple[str, str]:
    rel, _, var = str(key).rpartition("::")
    return rel, var


# ------------------------------------------------------------------------------------------ loading
_cache: dict[str, tuple[tuple, xr.Dataset]] = {}
_derived: dict[tuple, object] = {}
_lock = threading.RLock()
_io_lock = NETCDF_LOCK  # one netCDF call at a time in the process: warm-up thread, requests, what-if worker, runs


def _stamp(p: Path) -> tuple:
    st = p.stat()
    return (st.st_mtime_ns, st.st_size)


def load(path: str | Path) -> xr.Dataset:
    """Open and load a results file (cached); raise :class:`ResultsError` naming it when it is bad."""
    p = Path(path)
    if not p.is_file():
        raise ResultsError(p, "file not found")
    key = str(p)
    stamp = _stamp(p)
    with _lock:
        hit = _cache.get(key)
        if hit and hit[0] == stamp:
            return hit[1]
    with _io_lock:  # netCDF-C/HDF5 are not thread-safe: one read at a time
        with _lock:
            hit = _cache.get(key)  # another thread may have read it while this one waited
            if hit and hit[0] == stamp:
                return hit[1]
        try:
            with xr.open_dataset(p, engine="netcdf4") as ds0:
                ds = ds0.load()
        except Exception as exc:  # corrupt, truncated, not netCDF
            raise ResultsError(p, f"cannot be read as a netCDF results file ({type(exc).__name__}: "
                                  f"{str(exc)[:160]})") from None
    return _finish_load(p, key, stamp, ds)


def _finish_load(p: Path, key: str, stamp: tuple, ds: xr.Dataset) -> xr.Dataset:
    """Check a freshly read results file, give it a ``variant`` dimension, cache it."""
    if "scenario_name" not in ds.attrs or not any(str(v).startswith("kpi_") for v in ds.data_vars):
        raise ResultsError(p, "not a CityTwin results file (no scenario_name attribute or kpi_ variables)")
    if "variant" not in ds.dims:
        ds = ds.expand_dims(variant=[str(ds.attrs.get("variant", "baseline"))])
        for k in ds.data_vars:
            if str(k).startswith(("link_from", "link_to", "link_length", "link_freeflow", "link_capacity",
                                  "link_lanes", "node_")) and "variant" in ds[k].dims:
                ds[k] = ds[k].isel(variant=0)
    ds = ds.assign_coords(variant=[str(v) for v in ds["variant"].values])
    with _lock:
        _cache[key] = (stamp, ds)
        for k in [k for k in _derived if k[0] == key and k[1] != stamp]:
            del _derived[k]
    return ds


def derived(path: str | Path, name: str, fn):
    """Memoise ``fn()`` for the current version of ``path`` (derived arrays for fast views)."""
    p = Path(path)
    key = (str(p), _stamp(p), name)
    with _lock:
        if key in _derived:
            return _derived[key]
    val = fn()
    with _lock:
        _derived[key] = val
    return val


_views: dict[tuple[int, str], tuple[weakref.ref, xr.Dataset]] = {}
MAX_VIEWS = 64


def variant_view(ds: xr.Dataset, variant: str) -> xr.Dataset:
    """One variant's data (no ``variant`` dim); padding from stacking (NaN rows) is left in place.

    Memoised per dataset object and variant: ``ds.sel`` indexes every variable (a results file has ~200), 0.3 s
    a call on the busy box, and one page's callbacks ask for the same view several times. Views share memory
    with ``ds`` (read-only use)."""
    if "variant" not in ds.dims:
        return ds
    key = (id(ds), str(variant))
    with _lock:
        hit = _views.get(key)
        if hit is not None and hit[0]() is ds:
            return hit[1]
    view = ds.sel(variant=variant)
    with _lock:
        for k in [k for k, (ref, _v) in _views.items() if ref() is None]:
            del _views[k]
        while len(_views) >= MAX_VIEWS:
            del _views[next(iter(_views))]
        _views[key] = (weakref.ref(ds), view)
    return view


# ------------------------------------------------------------------------------------------ catalogue
@dataclass
class FileEntry:
    rel: str
    path: Path
    scenario: str = ""
    variants: list[str] = field(default_factory=list)
    error: str | None = None
    created: str = ""


class Catalog:
    """The results files of one folder (recursively), scanned on demand and cached by modification time."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root).resolve()

    def files(self) -> list[Path]:
        if not self.root.is_dir():
            return []
        out = [p for p in sorted(self.root.rglob("*.nc")) if not p.name.startswith(".")]
        return [p for p in out if p.resolve() == p or self.root in p.resolve().parents]

    def entries(self) -> list[FileEntry]:
        out = []
        for p in self.files():
            rel = str(p.relative_to(self.root))
            try:
                ds = load(p)
            except ResultsError as exc:
                out.append(FileEntry(rel, p, error=exc.message))
                continue
            out.append(FileEntry(rel, p, str(ds.attrs.get("scenario_name", "")),
                                 [str(v) for v in ds["variant"].values], created=str(ds.attrs.get("created", ""))))
        # a scenario's main file (with the baseline) first, what-if files after it
        out.sort(key=lambda e: (e.error is not None, e.scenario, "baseline" not in e.variants, e.rel))
        return out

    def options(self) -> list[dict]:
        """Dropdown options of every variant of every readable file (``<rel>::<variant>``)."""
        opts = []
        entries = [e for e in self.entries() if e.error is None]
        multi = len({e.scenario for e in entries}) > 1
        for e in entries:
            for v in e.variants:
                label = f"{e.scenario} / {v}" if multi else v
                if "__" in Path(e.rel).stem and v != "baseline":
                    label += " (what-if)"
                opts.append({"label": label, "value": variant_key(e.rel, v)})
        return opts

    def resolve(self, key: str | None) -> tuple[Path, str]:
        """Path and variant of a picker value; ValueError if the path leaves the folder."""
        if not key:
            raise ValueError("no variant chosen")
        rel, var = split_key(key)
        return safe_path(self.root, rel), var

    def baseline_of(self, key: str) -> tuple[Path, str] | None:
        """Where the baseline of the key's scenario lives (its own file first, then any file of that scenario)."""
        path, _ = self.resolve(key)
        ds = load(path)
        if "baseline" in ds["variant"].values:
            return path, "baseline"
        scen = ds.attrs.get("scenario_name")
        for e in self.entries():
            if e.error is None and e.scenario == scen and "baseline" in e.variants:
                return e.path, "baseline"
        return None


# ------------------------------------------------------------------------------------------ reading
def simulated_domains(ds: xr.Dataset) -> list[str]:
    """Domains with data in the file (by their variables, not by the attrs alone)."""
    have = []
    if "link_speed" in ds or "link_flow" in ds:
        have.append("traffic")
    if "ev_load" in ds or "station_power" in ds:
        have.append("ev")
    if "crowd_density" in ds or "crowd_peak_density" in ds:
        have.append("crowd")
    if "em_response_time" in ds or "em_unit_utilisation" in ds:
        have.append("emergency")
    return have


KPI_SUFFIXES = ("_mean", "_std", "_ci95", "_delta_mean", "_delta_ci95")


def _scalar(ds_var: xr.Dataset, name: str) -> float:
    if name not in ds_var:
        return float("nan")
    a = np.asarray(ds_var[name].values, float).ravel()
    return float(a[0]) if a.size == 1 else float("nan")


def kpi_list(ds_var: xr.Dataset) -> list[dict]:
    """KPIs of one variant: name, domain, label, units, better, value; with replications (``kpi_<n>_mean`` ...)
    value is the mean, ``ci`` its 95% half-width, ``delta_mean``/``delta_ci`` the paired change to the baseline and
    ``n`` the number of runs; a batch sweep's ``seed`` dim gives mean and ci the same way."""
    out = []
    for n in ds_var.data_vars:
        n = str(n)
        if not n.startswith("kpi_") or any(n.endswith(sfx) and n[: -len(sfx)] in ds_var for sfx in KPI_SUFFIXES):
            continue
        da = ds_var[n]
        dom = da.attrs.get("domain") or n.split("_")[1]
        rep_dim = next((d for d in ("replication", "seed") if d in da.dims), None)
        k = {"name": n, "domain": dom, "label": da.attrs.get("long_name", n),
             "units": da.attrs.get("units", ""), "better": da.attrs.get("better", "none"),
             "ci": float("nan"), "delta_mean": float("nan"), "delta_ci": float("nan"), "n": 1}
        if rep_dim:
            vals = np.asarray(da.values, float).ravel()
            vals = vals[np.isfinite(vals)]
            k["n"] = int(vals.size)
            k["value"] = _scalar(ds_var, f"{n}_mean") if f"{n}_mean" in ds_var else \
                (float(vals.mean()) if vals.size else float("nan"))
            k["ci"] = _scalar(ds_var, f"{n}_ci95")
            k["delta_mean"] = _scalar(ds_var, f"{n}_delta_mean")
            k["delta_ci"] = _scalar(ds_var, f"{n}_delta_ci95")
        else:
            k["value"] = float(np.asarray(da.values).ravel()[0]) if da.size else float("nan")
        out.append(k)
    return out


def scenario_doc(ds: xr.Dataset, variant: str = "baseline") -> dict | None:
    """The resolved scenario (as a dict) of one variant, from ``run_scenario_json`` / attrs."""
    raw = None
    if "run_scenario_json" in ds and "variant" in ds["run_scenario_json"].dims:
        vals = [str(v) for v in ds["variant"].values]
        if variant in vals:
            raw = str(ds["run_scenario_json"].sel(variant=variant).values)
    if not raw and ds.attrs.get("scenario_json"):
        raw = ds.attrs["scenario_json"]
    if not raw and ds.attrs.get("runs"):
        try:
            raw = json.loads(ds.attrs["runs"]).get(variant, {}).get("scenario_json")
        except (ValueError, AttributeError):
            raw = None
    if not raw:
        return None
    try:
        return json.loads(raw)
    except ValueError:
        return None


def clock_labels(ds: xr.Dataset) -> list[str]:
    """HH:MM labels of the record times (clock start from attrs ``clock_start``)."""
    start = str(ds.attrs.get("clock_start", "00:00"))
    try:
        h, m = (int(x) for x in start.split(":"))
    except ValueError:
        h, m = 0, 0
    t = np.asarray(ds["time"].values, float) if "time" in ds.coords else np.zeros(0)
    mins = (h * 60 + m + np.round(t / 60.0)).astype(int) % (24 * 60)
    return [f"{x // 60:02d}:{x % 60:02d}" for x in mins]


# ------------------------------------------------------------------------------------------ network
@dataclass
class Network:
    """Link geometry as float32 arrays (straight from node to node); ``twin`` is the reverse link of each link
    (-1 when it is one-way), so a map can draw a two-way street once."""

    x0: np.ndarray
    y0: np.ndarray
    x1: np.ndarray
    y1: np.ndarray
    ids: np.ndarray
    twin: np.ndarray | None = None

    @property
    def n(self) -> int:
        return len(self.x0)

    def segments(self, idx: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """None-separated (NaN) polyline arrays of the links ``idx`` for one scattergl trace."""
        if idx is None:
            idx = np.arange(self.n)
        k = len(idx)
        x = np.empty(3 * k, np.float32)
        y = np.empty(3 * k, np.float32)
        x[0::3], x[1::3], x[2::3] = self.x0[idx], self.x1[idx], np.nan
        y[0::3], y[1::3], y[2::3] = self.y0[idx], self.y1[idx], np.nan
        return x, y

    def midpoints(self, offset_m: float = 3.0) -> tuple[np.ndarray, np.ndarray]:
        """Link midpoints moved ``offset_m`` (at most 10% of the link) to the right of the direction of travel, so
        the two directions of a street are two click targets when zoomed in."""
        dx, dy = self.x1 - self.x0, self.y1 - self.y0
        ln = np.hypot(dx, dy)
        with np.errstate(invalid="ignore", divide="ignore"):
            k = np.where(ln > 0, np.minimum(offset_m, 0.1 * ln) / ln, 0.0)
        return ((self.x0 + self.x1) / 2 + k * dy).astype(np.float32), ((self.y0 + self.y1) / 2 - k * dx).astype(np.float32)


def reverse_links(frm: np.ndarray, to: np.ndarray) -> np.ndarray:
    """Index of the link from ``to`` to ``frm`` of each link (-1 if none; the first one of parallel links)."""
    frm, to = np.asarray(frm, np.int64), np.asarray(to, np.int64)
    if frm.size == 0:
        return np.zeros(0, np.int64)
    m = int(max(frm.max(), to.max())) + 1
    code = frm * m + to
    order = np.argsort(code, kind="stable")
    rev = to * m + frm
    pos = np.clip(np.searchsorted(code[order], rev), 0, len(code) - 1)
    twin = order[pos]
    return np.where((code[twin] == rev) & (frm != to), twin, -1)


def network(path: str | Path, ds: xr.Dataset) -> Network | None:
    """The drawable network of a results file (None when it has no links)."""
    if "link_from" not in ds or "node_x" not in ds:
        return None

    def build():
        def first(name):
            da = ds[name]
            if "variant" in da.dims:
                da = da.isel(variant=0)
            return np.asarray(da.values)

        nx_, ny_ = first("node_x").astype(np.float64), first("node_y").astype(np.float64)
        f = first("link_from").astype(np.int64)
        t = first("link_to").astype(np.int64)
        # offset by the minimum so float32 keeps centimetres even in projected UTM metres
        ox, oy = np.nanmin(nx_), np.nanmin(ny_)
        return Network((nx_[f] - ox).astype(np.float32), (ny_[f] - oy).astype(np.float32),
                       (nx_[t] - ox).astype(np.float32), (ny_[t] - oy).astype(np.float32),
                       np.asarray([str(x) for x in ds["link"].values]), reverse_links(f, t))

    return derived(path, "network", build)


def network_origin(ds: xr.Dataset) -> tuple[float, float]:
    """The offset subtracted from node coordinates for drawing (so other layers can be shifted to match)."""
    nx_ = ds["node_x"]
    ny_ = ds["node_y"]
    if "variant" in nx_.dims:
        nx_, ny_ = nx_.isel(variant=0), ny_.isel(variant=0)
    return float(np.nanmin(nx_.values)), float(np.nanmin(ny_.values))


def link_classes(values: np.ndarray, bins: np.ndarray) -> np.ndarray:
    """Class index (0..len(bins)) of each value; NaN goes to the last (free / none) class for speed."""
    v = np.where(np.isfinite(values), values, np.inf)
    return np.digitize(v, bins).astype(np.int8)


def speed_ratio(path: str | Path, ds: xr.Dataset, variant: str) -> np.ndarray:
    """(time, link) float32 speed / free-flow speed of one variant (cached)."""
    def build():
        v = variant_view(ds, variant)
        ff = np.asarray(v["link_freeflow_speed"].values, np.float32)
        sp = np.asarray(v["link_speed"].values, np.float32)
        with np.errstate(invalid="ignore", divide="ignore"):
            r = sp / ff[None, :]
        return np.clip(np.nan_to_num(r, nan=1.0), 0, 1.5).astype(np.float32)
    return derived(path, f"ratio:{variant}", build)


def capacity_factor(path: str | Path, ds: xr.Dataset, variant: str) -> np.ndarray:
    """(time, link) float32 capacity factor in force (1 = full, 0 = closed) of one variant; ones when not recorded.

    The views draw a link as closed from this, whatever its recorded speed says."""
    def build():
        v = variant_view(ds, variant)
        shape = (ds.sizes.get("time", 0), ds.sizes.get("link", 0))
        if "link_capacity_factor" not in v:
            return np.ones(shape, np.float32)
        c = np.asarray(v["link_capacity_factor"].values, np.float32)
        if c.ndim == 1:
            c = np.broadcast_to(c, shape)
        return np.nan_to_num(c, nan=1.0).astype(np.float32)
    return derived(path, f"capf:{variant}", build)


def link_names(ds: xr.Dataset) -> np.ndarray | None:
    """Street names of the links (``link_name`` variable/coordinate) where the results carry them."""
    if "link_name" not in ds:
        return None
    da = ds["link_name"]
    if "variant" in da.dims:
        da = da.isel(variant=0)
    return np.asarray(["" if str(x) in ("nan", "None") else str(x) for x in da.values])


def venue_present(vv: xr.Dataset) -> np.ndarray:
    """Boolean mask of the venues one variant really simulated (any finite peak density)."""
    if "crowd_peak_density" not in vv:
        return np.ones(vv.sizes.get("venue", 0), bool)
    a = np.asarray(vv["crowd_peak_density"].transpose("venue", ...).values, float)
    return np.isfinite(a.reshape(len(a), -1)).any(1)


def station_present(vv: xr.Dataset, prefix: str = "station") -> np.ndarray:
    """Boolean mask of the ``station`` (or ``venue``...) entries one variant really has.

    Stacking variants with different stations pads the others with NaN: those rows are not this variant's."""
    for name in (f"{prefix}_plugs", f"{prefix}_x"):
        if name in vv:
            return np.isfinite(np.asarray(vv[name].values, float))
    return np.ones(vv.sizes.get(prefix, 0), bool)


def flow(path: str | Path, ds: xr.Dataset, variant: str) -> np.ndarray:
    """(time, link) float32 flow (veh/h) of one variant (cached)."""
    return derived(path, f"flow:{variant}",
                   lambda: np.nan_to_num(np.asarray(variant_view(ds, variant)["link_flow"].values, np.float32)))


def judge(better: str, base: float, value: float, name: str = "", units: str = "", ci=None) -> str:
    """'better', 'worse', 'same' or 'unclear' (see :func:`twin.kpi_format.judge`: the one rule for every view)."""
    return KF.judge(better, base, value, name, units, ci)


def fmt_value(x: float, units: str = "", name: str = "", ref: float | None = None) -> str:
    """A KPI value for people (:func:`twin.kpi_format.fmt_value`)."""
    return KF.fmt_value(x, name, units, ref=ref)


def fmt_delta(base: float, value: float, units: str = "", name: str = "", ci=None, n: int | None = None) -> str:
    """A KPI change in the value's own unit (:func:`twin.kpi_format.fmt_delta`)."""
    return KF.fmt_delta(base, value, name, units, ci, n)


def kpi_change(k: dict, base: dict | None) -> KF.KpiText | None:
    """Value, change, verdict of KPI ``k`` (from :func:`kpi_list`) against ``base``; with replications the change
    is the mean paired difference ± its 95% interval (n runs), else a single-run difference."""
    if base is None:
        return None
    if np.isfinite(k.get("delta_mean", np.nan)):
        return KF.kpi_text(k["name"], k["units"], k["better"], base["value"], base["value"] + k["delta_mean"],
                           k.get("delta_ci"), k.get("n"))
    return KF.kpi_text(k["name"], k["units"], k["better"], base["value"], k["value"])


def run_attr(ds: xr.Dataset, variant: str, key: str, default=""):
    """A per-run attribute (``run_<key>`` variable, the file attrs, or the ``runs`` JSON)."""
    name = f"run_{key}"
    if name in ds and "variant" in ds[name].dims and variant in [str(v) for v in ds["variant"].values]:
        val = ds[name].sel(variant=variant).values
        val = val.item() if hasattr(val, "item") else val
        if val not in ("", None) and not (isinstance(val, float) and not np.isfinite(val)):
            return val
    if ds.attrs.get("runs"):
        try:
            val = json.loads(ds.attrs["runs"]).get(variant, {}).get(key)
            if val not in ("", None):
                return val
        except (ValueError, AttributeError):
            pass
    if key in ds.attrs and (str(ds.attrs.get("variant", variant)) == variant or key not in ("variant_description",)):
        return ds.attrs[key]
    return default
