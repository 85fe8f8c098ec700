"""Crowd: a venue's density heatmap over time (animated), warnings on a timeline with their level."""
import dash
import dash_bootstrap_components as dbc
from dash import Input, Output, callback, dcc, html

from dashboards import data as D
from dashboards import figures as F
from dashboards import ui

dash.register_page(__name__, path="/crowd", name="Crowd", title="CityTwin — crowd", order=3)

layout = html.Div([
    html.H2("Crowd", className="h4"),
    html.Div(id="crowd-missing"),
    html.Div(id="crowd-body", children=[
        dbc.Row([dbc.Col(html.Label("venue"), width="auto"),
                 dbc.Col(dcc.Dropdown(id="crowd-venue", clearable=False), md=4)], align="center", className="mb-2"),
        html.Div(id="crowd-content"),
    ]),
])


@callback(Output("crowd-missing", "children"), Output("crowd-body", "style"), Output("crowd-venue", "options"),
          Output("crowd-venue", "value"), Input("variant", "value"))
def setup(key):
    sel, err = ui.load_selection(key)
    if err is not None:
        return err, {"display": "none"}, [], None
    if "crowd" not in sel.domains:
        return ui.not_simulated("crowd"), {"display": "none"}, [], None
    names = [str(v) for v in sel.ds["venue"].values]
    have = D.venue_present(sel.vv)  # stacked variants with other venues leave this one's rows empty
    opts = [{"label": n, "value": i} for i, n in enumerate(names) if have[i]]
    return None, {}, opts, (opts[0]["value"] if opts else None)


@callback(Output("crowd-content", "children"), Input("variant", "value"), Input("crowd-venue", "value"))
def show(key, venue):
    sel, err = ui.load_selection(key)
    if err is not None or "crowd" not in sel.domains or venue is None:
        return None
    if not (0 <= int(venue) < sel.ds.sizes.get("venue", 0)) or not D.venue_present(sel.vv)[int(venue)]:
        return None  # a venue of the previous variant: the picker is about to change
    clock = D.clock_labels(sel.ds)
    g = lambda fig, i: dcc.Graph(figure=fig, id=i, config={"displaylogo": False})  # noqa: E731
    return [
        dbc.Row([dbc.Col(ui.card("Density over time (press play)", g(F.crowd_heatmap(sel.vv, int(venue), clock),
                                                                      "crowd-heatmap")), lg=7),
                 dbc.Col(ui.card("Peak density", g(F.crowd_peak(sel.pair, sel.variants, int(venue)), "crowd-peak")),
                         lg=5)]),
        ui.card("Warnings", g(F.crowd_warnings(sel.vv, start=str(sel.ds.attrs.get("clock_start", "00:00"))),
                              "crowd-warnings")),
    ]
