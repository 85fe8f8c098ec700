"""Overview: KPI cards per domain for the chosen variant, deltas against the baseline, scenario and run metadata."""
import dash
import dash_bootstrap_components as dbc
import numpy as np
from dash import Input, Output, callback, html

from dashboards import data as D
from dashboards import ui

dash.register_page(__name__, path="/", name="Overview", title="CityTwin — overview", order=0)

layout = html.Div([html.H2("Overview", className="h4"), html.Div(id="overview-content")])


def _kpi_card(k: dict, base: dict | None, variant: str):
    delta = html.Span("baseline" if variant == "baseline" else "no baseline to compare with",
                      className="kpi-delta same")
    ref = base["value"] if base is not None else None
    if base is not None and variant != "baseline":
        t = D.kpi_change(k, base)
        single = "" if k.get("n", 1) > 1 else " (single run: changes under 2% / 1 pt are grey)"
        delta = html.Span([t.delta, " ", html.Small(t.marker)], className=f"kpi-delta {t.verdict}",
                          title=f"baseline {D.fmt_value(base['value'], k['units'], k['name'])}; "
                                f"{k['better']} is better{single}")
    value = D.fmt_value(k["value"], k["units"], k["name"], ref=ref)
    if k.get("n", 1) > 1 and np.isfinite(k.get("ci", np.nan)):
        value = [value, html.Small(f" ± {D.fmt_value(k['ci'], k['units'], k['name'], ref=ref)} (n={k['n']})",
                                   className="text-muted")]
    return dbc.Col(dbc.Card(dbc.CardBody([
        html.Div(k["label"], className="kpi-label"),
        html.Div(value, className="kpi-value"),
        delta]), className="kpi-card h-100", id=f"kpi-{k['name']}"), xs=12, sm=6, md=4, xl=3, className="mb-2")


@callback(Output("overview-content", "children"), Input("variant", "value"))
def show(key):
    sel, err = ui.load_selection(key)
    if err is not None:
        return err
    ds, a = sel.ds, sel.ds.attrs
    kp = D.kpi_list(sel.vv)
    base = {k["name"]: k for k in D.kpi_list(sel.base_vv)} if sel.base_vv is not None else {}
    blocks = []
    if sel.incomparable:  # another duration/back-end than its baseline: no change is an effect
        base = {}
        blocks.append(dbc.Alert([html.B("Not comparable with the baseline: "),
                                 f"{sel.incomparable}. The values are shown without changes; run the what-if "
                                 "with the baseline's duration and back-end to compare."], color="warning",
                                id="overview-incomparable"))
    desc = str(D.run_attr(sel.ds, sel.variant, "variant_description", "")) or \
        ("the scenario as written" if sel.variant == "baseline" else "")
    head = ui.card(f"{a.get('scenario_name', '')} — {sel.variant}", [
        html.P(str(a.get("scenario_description", "")), className="mb-1"),
        html.P([html.B("This variant: "), desc], className="mb-1", id="variant-description"),
        html.P(f"Deltas are against the baseline{'' if sel.base_vv is not None else ' (no baseline found)'}; "
               "green is better, red is worse (by each figure's own direction); grey is no clear change "
               "(a 95% interval that includes 0, or, for a single run, a change under 2% or 1 point).", className="text-muted small mb-0")])
    blocks.insert(0, head)
    for dom in D.DOMAINS:
        label = D.DOMAIN_LABELS[dom]
        # a batch sweep kept as KPIs only (keep: kpis) has no maps' variables, but its KPIs are the results
        if dom not in sel.domains and not any(k["domain"] == dom for k in kp):
            blocks.append(dbc.Alert(f"{label}: not simulated in this scenario.", color="warning",
                                    className="py-2 not-simulated", id=f"not-simulated-{dom}"))
            continue
        cards = [_kpi_card(k, base.get(k["name"]), sel.variant) for k in kp if k["domain"] == dom]
        blocks.append(ui.card(label, dbc.Row(cards), id=f"kpis-{dom}"))
    wall = D.run_attr(ds, sel.variant, "wall_time_s", "")
    try:
        wall = f"{float(wall):,.1f} s"
    except (TypeError, ValueError):
        pass
    meta = [("results file", sel.rel), ("city", a.get("city", "")), ("clock start", a.get("clock_start", "")),
            ("record interval", f"{float(np.diff(ds['time'].values[:2])[0]):.0f} s" if ds.sizes.get("time", 0) > 1 else ""),
            ("seed", a.get("seed", "")), ("traffic back-end", a.get("backend", "")),
            ("created", D.run_attr(ds, sel.variant, "created", a.get("created", ""))), ("wall time", wall),
            ("complete", "yes" if int(a.get("complete", 1)) else "NO — a run stopped early"),
            ("scenario hash", str(D.run_attr(ds, sel.variant, "scenario_hash", ""))[:16]),
            ("CityTwin", a.get("citytwin_version", "")), ("variants in file", ", ".join(map(str, ds["variant"].values)))]
    dl = []
    for k, v in meta:
        dl += [html.Dt(k, className="col-sm-3"), html.Dd(str(v), className="col-sm-9 mb-0")]
    blocks.append(ui.card("Run metadata", html.Dl(dl, className="row run-meta mb-0")))
    return blocks
