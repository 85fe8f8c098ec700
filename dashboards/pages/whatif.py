"""What-if: pick a template, set its bounded parameters, queue the run; the new variant joins the picker.

The page sends named parameters only (no documents, back-ends or paths: dashboards.whatif checks every one).
Runs wait in a short queue and run one at a time in a worker thread of the server, polled by a dcc.Interval
with a progress bar; a cancel button stops the run. ``dashboard --no-whatif`` turns the page off.
"""
import time

import dash
import dash_bootstrap_components as dbc
import numpy as np
from dash import Input, Output, State, callback, dcc, html, no_update

from dashboards import data as D
from dashboards import ui
from dashboards import whatif as W

dash.register_page(__name__, path="/whatif", name="What-if", title="CityTwin — what-if", order=6)

FIELDS = ["wi-name", "wi-closure-link", "wi-closure-start", "wi-closure-factor", "wi-demand-scale",
          "wi-ev-min-plugs", "wi-ev-node", "wi-ev-plugs", "wi-ev-power", "wi-ev-share", "wi-ev-policy", "wi-ev-grid",
          "wi-em-node", "wi-em-units"]


def _bounds(template, key):
    _label, lo, hi, _ = W.LIMITS[(template, key)]
    return f"{lo:g} to {hi:g}"


def _field(label, fid, component, help_=None):
    return dbc.Row([dbc.Label(label, html_for=fid, width=4),
                    dbc.Col([component, dbc.FormFeedback(id=f"{fid}-feedback", type="invalid"),
                             dbc.FormText(help_) if help_ else None], width=8)], className="mb-2")


def _inp(fid, value=None, type_="text", **kw):
    return dbc.Input(id=fid, value=value, type=type_, debounce=False, **kw)


forms = {
    "closure": [_field("link id", "wi-closure-link", _inp("wi-closure-link", list="wi-link-list"),
                       "suggested: the busiest links of the chosen variant"),
                html.Datalist(id="wi-link-list"),
                _field("from (minutes after start)", "wi-closure-start", _inp("wi-closure-start", 30, "number"),
                       "within the loaded run's duration"),
                _field("capacity factor", "wi-closure-factor", _inp("wi-closure-factor", 0, "number", step=0.1),
                       "0 closes the road, 0.5 shuts one of two lanes (0 to 1)")],
    "demand": [_field("demand factor", "wi-demand-scale", _inp("wi-demand-scale", 1.2, "number", step=0.05),
                      f"1.2 = 20% more trips than the baseline ({_bounds('demand', 'scale')})")],
    "chargers": [_field("at least … plugs per station", "wi-ev-min-plugs", _inp("wi-ev-min-plugs", 2, "number"),
                        _bounds("chargers", "min_plugs")),
                 _field("new station at node (optional)", "wi-ev-node", _inp("wi-ev-node")),
                 _field("plugs at the new station", "wi-ev-plugs", _inp("wi-ev-plugs", 4, "number"),
                        _bounds("chargers", "plugs")),
                 _field("kW per plug", "wi-ev-power", _inp("wi-ev-power", 50, "number"), _bounds("chargers", "power_kw")),
                 _field("EV share of car trips (optional)", "wi-ev-share", _inp("wi-ev-share", None, "number", step=0.05),
                        f"{_bounds('chargers', 'share')}; empty keeps the baseline's"),
                 _field("charging policy", "wi-ev-policy", dbc.Select(id="wi-ev-policy", value="", options=[
                     {"label": "as in the baseline", "value": ""}] + [{"label": x, "value": x} for x in W.EV_POLICIES])),
                 _field("grid limit, kW (optional)", "wi-ev-grid", _inp("wi-ev-grid", None, "number"),
                        f"{_bounds('chargers', 'grid_limit_kw')}; empty keeps the baseline's")],
    "station": [_field("node of the new station", "wi-em-node", _inp("wi-em-node")),
                _field("kind", "wi-em-kind", dbc.Select(id="wi-em-kind", value="ambulance", options=[
                    {"label": k, "value": k} for k in W.EM_KINDS])),
                _field("units", "wi-em-units", _inp("wi-em-units", 1, "number"), _bounds("station", "units"))],
}

def layout(**_kw):
    """The page; a notice only when what-if runs are turned off on this server."""
    if not W.enabled():
        return html.Div([html.H2("What-if", className="h4"),
                         dbc.Alert("What-if runs are turned off on this server (started with --no-whatif).",
                                   color="secondary", id="wi-off")])
    return _LAYOUT


_LAYOUT = html.Div([
    html.H2("What-if", className="h4"),
    html.P("Start from the scenario of the chosen results file, change one thing, and run it. The run happens on "
           "this server in the background; the new variant appears in the variant picker when it is done.",
           className="text-muted"),
    dbc.Row([
        dbc.Col(ui.card("Set up", [
            html.Div(id="wi-source", className="mb-2 small"),
            _field("template", "wi-template", dbc.Select(id="wi-template", value="demand", options=[
                {"label": v, "value": k} for k, v in W.TEMPLATES.items()])),
            _field("new variant name", "wi-name", _inp("wi-name", "what_if_1")),
            *[html.Div(f, id=f"wi-form-{k}", style={"display": "none"}) for k, f in forms.items()],
            html.Div(id="wi-general"),
            dbc.Button("Run what-if", id="wi-run", color="primary", className="mt-2 me-2"),
            dbc.Button("Cancel", id="wi-cancel", color="secondary", outline=True, className="mt-2"),
            html.Div(f"Runs keep the loaded results' city, duration and back-end, at most {W.MAX_DEMAND_FACTOR:g}× "
                     f"their demand; {W.MAX_QUEUED} runs may wait, one runs at a time.",
                     className="form-text mt-2"),
        ]), lg=6),
        dbc.Col(ui.card("Progress", [
            dbc.Progress(id="wi-progress", value=0, label="", striped=True, animated=False, style={"height": "24px"}),
            html.Div(id="wi-status", className="mt-2"),
        ]), lg=6),
    ]),
    dcc.Store(id="wi-job"),
    dcc.Interval(id="wi-poll", interval=500, disabled=True),
])


@callback([Output(f"wi-form-{k}", "style") for k in forms], Input("wi-template", "value"))
def toggle(template):
    return [{} if k == template else {"display": "none"} for k in forms]


@callback(Output("wi-source", "children"), Output("wi-link-list", "children"), Output("wi-closure-link", "value"),
          Input("variant", "value"), State("wi-closure-link", "value"))
def source(key, link):
    sel, err = ui.load_selection(key)
    if err is not None:
        return err, [], link
    base = sel.base_path or sel.path
    opts, first = [], link
    if "link_flow" in sel.ds:
        f = D.flow(sel.path, sel.ds, sel.variant).mean(0)
        top = np.argsort(-f)[:50]
        ids = [str(x) for x in sel.ds["link"].values]
        opts = [html.Option(value=ids[i], label=f"{ids[i]} ({f[i]:,.0f} veh/h)") for i in top]
        first = link or (ids[top[0]] if len(top) else None)
    return [html.Span("Based on the baseline of "), html.Code(str(base.relative_to(ui.catalog().root)))], opts, first


def _params(template, vals):
    v = dict(zip(FIELDS, vals))
    return {"closure": {"link": v["wi-closure-link"], "start_min": v["wi-closure-start"],
                        "factor": v["wi-closure-factor"]},
            "demand": {"scale": v["wi-demand-scale"]},
            "chargers": {"min_plugs": v["wi-ev-min-plugs"], "node": v["wi-ev-node"], "plugs": v["wi-ev-plugs"],
                         "power_kw": v["wi-ev-power"], "share": v["wi-ev-share"], "policy": v["wi-ev-policy"],
                         "grid_limit_kw": v["wi-ev-grid"]},
            "station": {"node": v["wi-em-node"], "units": v["wi-em-units"]}}.get(template, {})


@callback([Output(f, "invalid") for f in FIELDS] + [Output(f"{f}-feedback", "children") for f in FIELDS] +
          [Output("wi-general", "children"), Output("wi-job", "data"), Output("wi-poll", "disabled"),
           Output("wi-status", "children", allow_duplicate=True)],
          Input("wi-run", "n_clicks"), State("variant", "value"), State("wi-template", "value"),
          State("wi-em-kind", "value"), [State(f, "value") for f in FIELDS], prevent_initial_call=True)
def run(_n, key, template, kind, *vals):
    n = len(FIELDS)
    if not isinstance(key, (str, type(None))) or not isinstance(template, str):
        return [False] * n + [None] * n + [dbc.Alert("Cannot run: malformed request", color="danger", id="wi-error"),
                                           no_update, True, no_update]
    sel, err = ui.load_selection(key)
    if err is not None:
        return [False] * n + [None] * n + [err, no_update, True, no_update]
    params = _params(template, vals)
    if template == "station":
        params["kind"] = kind
    src = sel.base_path or sel.path
    try:
        sc, scen_dir, city, out = W.prepare(src, dict(zip(FIELDS, vals))["wi-name"], template, params)
        job = W.submit(sc, scen_dir, city, out)
    except W.Invalid as exc:
        inv = [f in exc.errors for f in FIELDS]
        fb = ["; ".join(exc.errors.get(f, [])) or None for f in FIELDS]
        gen = exc.errors.get("general")
        general = dbc.Alert(["Cannot run: ", "; ".join(gen)], color="danger", id="wi-error") if gen else \
            dbc.Alert("Please correct the fields marked in red.", color="danger", id="wi-error")
        return inv + fb + [general, no_update, True, None]
    return [False] * n + [None] * n + [None, job.id, False, html.Span(f"queued {sc.variant} …")]


@callback(Output("wi-status", "children", allow_duplicate=True), Input("wi-cancel", "n_clicks"),
          State("wi-job", "data"), prevent_initial_call=True)
def cancel(_n, job_id):
    if not isinstance(job_id, str) or not W.cancel(job_id):
        return html.Span("nothing to cancel", id="wi-cancel-none")
    return html.Span("cancelling …", id="wi-cancelling")


@callback(Output("wi-progress", "value"), Output("wi-progress", "label"), Output("wi-status", "children"),
          Output("wi-poll", "disabled", allow_duplicate=True), Output("catalog-version", "data"),
          Input("wi-poll", "n_intervals"), State("wi-job", "data"), State("catalog-version", "data"),
          prevent_initial_call=True)
def poll(_n, job_id, version):
    j = W.job(job_id)
    if j is None:
        return 0, "", None, True, no_update
    pct = round(100 * j.progress)
    if j.status == "done":
        msg = dbc.Alert([html.B(f"Done: {j.variant}"), f" — {j.message}; it is now in the variant picker."],
                        color="success", id="wi-done")
        return 100, "100%", msg, True, (version or 0) + 1
    if j.status == "failed":
        return pct, f"{pct}%", dbc.Alert(f"The run failed: {j.message}", color="danger", id="wi-failed"), True, no_update
    if j.status == "cancelled":
        return pct, f"{pct}%", dbc.Alert(f"Cancelled: {j.variant} ({j.message})", color="secondary",
                                         id="wi-cancelled"), True, no_update
    if j.status == "queued":
        return 0, "queued", html.Span(f"{j.variant} is queued: it waits for the run before it (place "
                                      f"{W.queue_position(j)} in the queue)", id="wi-queued"), False, no_update
    waited = f" ({time.time() - j.running_since:.0f} s)" if j.running_since else ""
    if j.phase == "simulating" and j.sim_total > 0:
        what = f"simulating {_hm(j.sim_t)} of {_hm(j.sim_total)} ({pct}% of simulated time){waited}"
    else:
        what = f"{j.phase or 'starting'} …{waited}"
    return pct, f"{pct}%" if pct else "", html.Span(f"{j.variant}: {what}", id="wi-running"), False, no_update


def _hm(seconds: float) -> str:
    """Simulated time as h:mm (a run's own clock, from 0)."""
    m = int(seconds // 60)
    return f"{m // 60}:{m % 60:02d} h"
