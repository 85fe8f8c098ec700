"""Shared pieces of the Dash pages: the results catalogue of the running app, cards, variant pairs."""
from __future__ import annotations

import html as _html
from pathlib import Path

import dash_bootstrap_components as dbc
import numpy as np
import xarray as xr
from dash import html

from dashboards import data as D
from dashboards.safety import public_text

_state: dict = {"catalog": None}


def set_root(root: str | Path) -> D.Catalog:
    _state["catalog"] = D.Catalog(root)
    return _state["catalog"]


def catalog() -> D.Catalog:
    cat = _state["catalog"]
    if cat is None:
        raise RuntimeError("the dashboard has no results folder (create_app sets it)")
    return cat


class Selection:
    """One chosen variant (``ds``/``variant``/``path``), its baseline and the pair dataset for figures."""

    def __init__(self, key: str) -> None:
        cat = catalog()
        self.key = key
        self.path, self.variant = cat.resolve(key)
        self.rel = D.split_key(key)[0]
        self.ds = D.load(self.path)
        if self.variant not in [str(v) for v in self.ds["variant"].values]:
            raise D.ResultsError(self.path, f"has no variant {self.variant!r}")
        self.vv = D.variant_view(self.ds, self.variant)
        self.domains = D.simulated_domains(self.ds)
        base = cat.baseline_of(key)
        self.base_path, self.base_variant = base if base else (None, None)
        # figures draw [baseline, variant] from one dataset: join files when the baseline lives elsewhere
        if self.variant == "baseline" or base is None:
            self.pair, self.variants = self.ds, [self.variant]
        elif self.base_path == self.path:
            self.pair, self.variants = self.ds, ["baseline", self.variant]
        else:
            self.pair = pair_dataset(self.base_path, "baseline", self.path, self.variant)
            self.variants = ["baseline", self.variant]
        self.base_vv = D.variant_view(self.pair, "baseline") if "baseline" in self.variants else None
        # a variant from another file (a what-if) that did not run like its baseline: no deltas as effects
        self.incomparable = incomparable(D.load(self.base_path), self.ds) \
            if self.base_path is not None and self.base_path != self.path else None


def incomparable(ds_a: xr.Dataset, ds_b: xr.Dataset) -> str | None:
    """Why two results files' KPIs cannot be compared as an effect (other duration, clock start or traffic
    back-end), or None. A what-if run from this page keeps them; files made elsewhere may not."""
    def span(ds):
        t = np.asarray(ds["time"].values, float) if "time" in ds.coords and ds.sizes.get("time") else np.zeros(1)
        return float(t.max())

    why = []
    if span(ds_a) != span(ds_b):
        why.append(f"duration {span(ds_a) / 3600:.2g} h against {span(ds_b) / 3600:.2g} h")
    for key, label in (("backend", "traffic back-end"), ("clock_start", "start time")):
        a, b = str(ds_a.attrs.get(key, "")), str(ds_b.attrs.get(key, ""))
        if a != b:
            why.append(f"{label} {a or '?'} against {b or '?'}")
    return "; ".join(why) or None


def pair_dataset(path_a: Path, var_a: str, path_b: Path, var_b: str) -> xr.Dataset:
    """Two variants of (possibly) two files as one dataset along ``variant`` (cached by both files' versions)."""
    def build():
        a = D.load(path_a).sel(variant=[var_a])
        b = D.load(path_b).sel(variant=[var_b])
        if var_a == var_b:
            b = b.assign_coords(variant=[f"{var_b} ({Path(path_b).stem})"])
        ds = xr.concat([a, b], dim="variant", join="outer", data_vars="minimal", coords="minimal",
                       compat="override", combine_attrs="override")
        return ds
    return D.derived(path_b, f"pair:{path_a}:{D._stamp(Path(path_a))}:{var_a}:{var_b}", build)


def card(title: str, body, cls: str = "", **kw) -> dbc.Card:
    return dbc.Card([dbc.CardHeader(title), dbc.CardBody(body)], className=f"section-card {cls}", **kw)


def error_card(title: str, message: str, id_: str | None = None) -> dbc.Card:
    kw = {"id": id_} if id_ else {}
    return dbc.Card([dbc.CardHeader(["⚠ ", title]), dbc.CardBody(html.P(message, className="mb-0"))],
                    color="danger", outline=True, className="section-card error-card", **kw)


def not_simulated(domain: str) -> dbc.Alert:
    label = D.DOMAIN_LABELS.get(domain, domain)
    return dbc.Alert([html.H5(f"{label} was not simulated in this scenario", className="alert-heading"),
                      html.P(f"The results file has no {label.lower()} data. Add a `{domain}:` section to the "
                             "scenario and run it again to see this page.", className="mb-0")],
                     color="warning", className="not-simulated", id=f"not-simulated-{domain}")


def load_selection(key: str | None):
    """(Selection, None) or (None, error card) for a picker value."""
    if not key:
        return None, dbc.Alert("No results to show: the results folder has no readable results file yet. "
                               "Run a scenario (run_scenario.py run ...) or a what-if.", color="info", id="no-results")
    try:
        return Selection(key), None
    except ValueError as exc:
        return None, error_card("Refused path", public_text(str(exc), (catalog().root,)), "error-card")
    except D.ResultsError as exc:
        return None, error_card(f"Cannot read {Path(exc.path).name}", public_text(exc.message, (catalog().root,)),
                                "error-card")


def kpi_table(sel_a: "Selection | xr.Dataset", var_a: str, ds_b: xr.Dataset, var_b: str,
              neutral: bool = False) -> dbc.Table:
    """KPIs of A and B side by side with Δ (B − A) coloured by each KPI's ``better`` (grey, no marker, when
    ``neutral``: the two runs are not comparable)."""
    ka = {k["name"]: k for k in D.kpi_list(D.variant_view(sel_a, var_a))}
    kb = {k["name"]: k for k in D.kpi_list(D.variant_view(ds_b, var_b))}
    rows = []
    last = None
    for n, a in ka.items():
        if a["domain"] != last:
            last = a["domain"]
            rows.append(html.Tr(html.Td(D.DOMAIN_LABELS.get(last, last), colSpan=4, className="table-light fw-bold")))
        b = kb.get(n)
        bv = b["value"] if b else float("nan")
        if b and var_a != "baseline":  # paired intervals are against the baseline only
            b = {**b, "delta_mean": float("nan")}
        t = D.kpi_change(b, a) if b else None
        rows.append(html.Tr([html.Td(a["label"]),
                             html.Td(D.fmt_value(a["value"], a["units"], n, ref=a["value"]), className="text-end"),
                             html.Td(D.fmt_value(bv, a["units"], n, ref=a["value"]), className="text-end"),
                             html.Td([t.delta, " ", html.Small("" if neutral else t.marker)] if t else "—",
                                     className=f"text-end {t.verdict if t and not neutral else 'same'}")]))
    head = html.Thead(html.Tr([html.Th("KPI"), html.Th(var_a, className="text-end"), html.Th(var_b, className="text-end"),
                               html.Th("Δ (B − A)", className="text-end")]))
    return dbc.Table([head, html.Tbody(rows)], bordered=False, hover=True, size="sm", className="mb-0")


def esc(s) -> str:
    return _html.escape(str(s))


def finite(a) -> np.ndarray:
    a = np.asarray(a, float)
    return a[np.isfinite(a)]
