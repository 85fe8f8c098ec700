"""Emergency: incidents coloured by response time, response times against the target, coverage, utilisation."""
import dash
import dash_bootstrap_components as dbc
from dash import Input, Output, callback, dcc, html

from dashboards import data as D
from dashboards import figures as F
from dashboards import ui

dash.register_page(__name__, path="/emergency", name="Emergency", title="CityTwin — emergency", order=4)

layout = html.Div([html.H2("Emergency response", className="h4"), html.Div(id="emergency-content")])


@callback(Output("emergency-content", "children"), Input("variant", "value"))
def show(key):
    sel, err = ui.load_selection(key)
    if err is not None:
        return err
    if "emergency" not in sel.domains:
        return ui.not_simulated("emergency")
    net = D.network(sel.path, sel.ds)
    origin = D.network_origin(sel.ds) if "node_x" in sel.ds else (0.0, 0.0)
    sc = D.scenario_doc(sel.ds, sel.variant) or {}
    cell = float((sc.get("city") or {}).get("zone_cell_m", 1000.0))
    g = lambda fig, i: dcc.Graph(figure=fig, id=i, config={"displaylogo": False})  # noqa: E731
    rows = [dbc.Row([dbc.Col(ui.card("Incidents (colour: response time)", g(F.em_incident_map(net, sel.vv, origin, f"{sel.variant}: incidents", sel.base_vv),
                                                                            "em-map")), lg=6),
                     dbc.Col(ui.card("Response times", g(F.em_response_hist(sel.pair, sel.variants), "em-hist")),
                             lg=6)])]
    row2 = []
    if "em_zone_coverage" in sel.ds:
        row2.append(dbc.Col(ui.card("Coverage", g(F.em_coverage_map(net, sel.vv, sel.ds, cell, origin), "em-coverage")),
                            lg=6))
    right = []
    if "em_unit_utilisation" in sel.ds:
        right.append(g(F.em_utilisation(sel.pair, sel.variants), "em-utilisation"))
    if "em_coverage" in sel.ds:
        right.append(g(F.em_coverage_series(sel.pair, sel.variants), "em-coverage-series"))
    if right:
        row2.append(dbc.Col(ui.card("Units and coverage over time", right), lg=6))
    rows.append(dbc.Row(row2))
    return rows
