"""EV charging: stations on the map sized by load, load against the grid limit, waits, occupancy."""
import dash
import dash_bootstrap_components as dbc
from dash import Input, Output, callback, dcc, html

from dashboards import data as D
from dashboards import figures as F
from dashboards import ui

dash.register_page(__name__, path="/ev", name="EV charging", title="CityTwin — EV charging", order=2)

layout = html.Div([html.H2("EV charging", className="h4"), html.Div(id="ev-content")])


@callback(Output("ev-content", "children"), Input("variant", "value"))
def show(key):
    sel, err = ui.load_selection(key)
    if err is not None:
        return err
    if "ev" not in sel.domains:
        return ui.not_simulated("ev")
    net = D.network(sel.path, sel.ds)
    origin = D.network_origin(sel.ds) if "node_x" in sel.ds else (0.0, 0.0)
    new = None
    if sel.base_vv is not None and sel.variant != "baseline":
        have = lambda vv: {str(s) for s, ok in zip(vv["station"].values, D.station_present(vv)) if ok}  # noqa: E731
        new = have(sel.vv) - have(sel.base_vv)
    g = lambda fig, i: dcc.Graph(figure=fig, id=i, config={"displaylogo": False})  # noqa: E731
    return [
        dbc.Row([dbc.Col(ui.card("Stations (size: mean load, colour: plugs busy)",
                                 g(F.ev_station_map(net, sel.vv, origin, f"{sel.variant}: stations", new), "ev-map")), lg=6),
                 dbc.Col(ui.card("Load against the grid limit", g(F.ev_load(sel.pair, sel.variants), "ev-load")), lg=6)]),
        dbc.Row([dbc.Col(ui.card("Waiting times", g(F.ev_waits(sel.pair, sel.variants), "ev-waits")), lg=6),
                 dbc.Col(ui.card("Occupancy", g(F.ev_occupancy(sel.ds, sel.variant), "ev-occupancy")), lg=6)]),
    ]
