"""Traffic: the network from its own geometry coloured by speed ratio or volume, time slider and play,
network KPIs over time, a link's detail on click."""
import dash
import dash_bootstrap_components as dbc
import numpy as np
from dash import Input, Output, Patch, State, callback, ctx, dcc, html, no_update

from dashboards import data as D
from dashboards import figures as F
from dashboards import ui

dash.register_page(__name__, path="/traffic", name="Traffic", title="CityTwin — traffic", order=1)

controls = dbc.Row([
    dbc.Col(dbc.RadioItems(id="traffic-mode", value="speed", inline=True, options=[
        {"label": "speed (% of free flow)", "value": "speed"}, {"label": "volume (veh/h)", "value": "volume"}]),
        md="auto"),
    dbc.Col([dbc.Button("▶ play", id="traffic-play", size="sm", color="primary", className="me-1"),
             dbc.Button("step ▸", id="traffic-step", size="sm", color="secondary", outline=True, className="me-2"),
             html.Span(id="traffic-time-label", className="fw-bold")], md="auto"),
    # value None until `setup` picks the slowest interval: the map is drawn once, not at 0 and then at the peak
    dbc.Col(dcc.Slider(id="traffic-time", min=0, max=1, step=1, value=None, updatemode="mouseup",
                       allow_direct_input=False), md=True),  # no raw index box: the clock label says the time
], align="center", className="g-2 mb-2")

layout = html.Div([
    html.H2("Traffic", className="h4"),
    html.Div(id="traffic-missing"),
    html.Div(id="traffic-body", children=[
        ui.card("Network", [controls, dcc.Graph(id="traffic-map", config={"scrollZoom": True, "displaylogo": False},
                                                style={"height": "600px"}),
                            html.Small("Click a link (its middle) for its detail below. Drag to pan, scroll to zoom.",
                                       className="text-muted")]),
        dbc.Row([dbc.Col(ui.card("Selected link", dcc.Graph(id="traffic-detail")), lg=6),
                 dbc.Col(ui.card("Network over time", html.Div(id="traffic-series")), lg=6)]),
    ]),
    dcc.Store(id="traffic-link"),
    dcc.Store(id="traffic-drawn"),
    dcc.Store(id="traffic-series-for"),
    dcc.Interval(id="traffic-interval", interval=1200, disabled=True),
])


@callback(Output("traffic-missing", "children"), Output("traffic-body", "style"), Output("traffic-time", "max"),
          Output("traffic-time", "marks"), Output("traffic-time", "value"), Input("variant", "value"))
def setup(key):
    sel, err = ui.load_selection(key)
    if err is not None:
        return err, {"display": "none"}, 1, {}, 0
    if "traffic" not in sel.domains:
        return ui.not_simulated("traffic"), {"display": "none"}, 1, {}, 0
    clock = D.clock_labels(sel.ds)
    n = len(clock)
    every = max(1, n // 8)
    marks = {i: clock[i] for i in range(0, n, every)}
    r = D.speed_ratio(sel.path, sel.ds, sel.variant)
    peak = int(np.argmin(r.mean(1))) if r.size else 0
    return None, {}, max(n - 1, 0), marks, peak


@callback(Output("traffic-series", "children"), Output("traffic-series-for", "data"), Input("traffic-drawn", "data"),
          State("variant", "value"), State("traffic-series-for", "data"), prevent_initial_call=True)
def series(_drawn, key, shown):
    """The network's KPIs over time, asked for once the map is drawn (the map is what the page opens for)."""
    if key == shown:
        return no_update, no_update
    sel, err = ui.load_selection(key)
    if err is not None or "traffic" not in sel.domains:
        return None, key
    figs = D.derived(sel.path, f"series:{sel.variants}", lambda: F.traffic_series(sel.pair, sel.variants, sel.path))
    return [dcc.Graph(figure=f, id=f"traffic-series-{i}") for i, f in enumerate(figs)], key


@callback(Output("traffic-map", "figure"), Output("traffic-time-label", "children"), Output("traffic-drawn", "data"),
          Input("traffic-time", "value"), Input("traffic-mode", "value"), Input("traffic-link", "data"),
          State("variant", "value"), State("traffic-drawn", "data"))
def draw(t, mode, link, key, drawn):
    """The map at interval ``t``; a new variant reaches here through ``setup`` setting ``t`` (one draw, not two)."""
    if t is None:
        return no_update, no_update, no_update
    sel, err = ui.load_selection(key)
    if err is not None or "traffic" not in sel.domains:
        return F.empty("no traffic data"), "", None
    net = D.network(sel.path, sel.ds)
    clock = D.clock_labels(sel.ds)
    t = int(min(max(t or 0, 0), len(clock) - 1))
    if mode == "volume":
        cls = D.link_classes(D.flow(sel.path, sel.ds, sel.variant)[t], D.VOLUME_BINS)
        labels, colors, what, sev = D.VOLUME_LABELS, F.VOLUME_COLORS, "volume", F.VOLUME_SEVERITY
    else:
        cls = D.link_classes(D.speed_ratio(sel.path, sel.ds, sel.variant)[t], D.SPEED_BINS)
        labels, colors, what, sev = D.SPEED_LABELS, F.SPEED_COLORS, "speed as % of free flow", F.SPEED_SEVERITY
    capf = D.capacity_factor(sel.path, sel.ds, sel.variant)[t]
    closed, reduced = capf <= 0.0, (capf > 0.0) & (capf < 1.0)
    title = f"{sel.variant}: {what} at {clock[t]}" + (f" — {int(closed.sum())} link(s) closed" if closed.any() else "")
    state = [key, mode, link]
    if ctx.triggered_id == "traffic-time" and drawn == state:
        # a time step: send only the shapes' paths, the legend counts and the title; the rest stays in the browser
        patch = F.map_patch(Patch(), net, cls, labels, closed, reduced, sev)
        patch["layout"]["title"]["text"] = title
        return patch, clock[t], no_update
    fig = F.class_map(net, cls, labels, colors, title, highlight=link if isinstance(link, int) else None, height=600,
                      closed=closed, reduced=reduced, names=D.link_names(sel.ds), severity=sev)
    return fig, clock[t], state


@callback(Output("traffic-link", "data"), Input("traffic-map", "clickData"), prevent_initial_call=True)
def pick(click):
    if not click or not click.get("points"):
        return no_update
    p = click["points"][0]
    # the midpoint layer comes right after the colour classes: its point index is the link index
    if p.get("curveNumber") != D.N_MAP_CLASSES:
        return no_update
    return int(p.get("pointIndex", p.get("pointNumber", 0)))


@callback(Output("traffic-detail", "figure"), Input("variant", "value"), Input("traffic-link", "data"))
def detail(key, link):
    sel, err = ui.load_selection(key)
    if err is not None or "traffic" not in sel.domains:
        return F.empty("no traffic data")
    if not isinstance(link, int) or link >= sel.ds.sizes.get("link", 0):
        return F.empty("click a link on the map")
    return F.link_detail(sel.pair, link, sel.variants)


@callback(Output("traffic-interval", "disabled"), Output("traffic-play", "children"),
          Input("traffic-play", "n_clicks"), State("traffic-interval", "disabled"), prevent_initial_call=True)
def play(_n, disabled):
    return (False, "❚❚ pause") if disabled else (True, "▶ play")


@callback(Output("traffic-time", "value", allow_duplicate=True), Input("traffic-interval", "n_intervals"),
          Input("traffic-step", "n_clicks"), State("traffic-time", "value"), State("traffic-time", "max"),
          prevent_initial_call=True)
def tick(_n, _s, t, tmax):
    return ((t or 0) + 1) % ((tmax or 0) + 1)
