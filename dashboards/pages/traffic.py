"""Traffic: the network from its own geometry coloured by speed ratio or volume, time slider and play,
network KPIs over time, a link's detail on click."""
import dash
import dash_bootstrap_components as dbc
import numpy as np
from dash import Input, Output, Patch, State, callback, clientside_callback, ctx, dcc, html, no_update

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
    # value None until `draw` picks the slowest interval: the map is drawn once, not at 0 and then at the peak
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
        dbc.Row([dbc.Col(ui.card("Selected link", html.Div(
                     html.P("Click a link on the map for its speed, flow and capacity over time.",
                            className="text-muted"), id="traffic-detail-box")), lg=6),
                 dbc.Col(ui.card("Network over time", html.Div(id="traffic-series")), lg=6)]),
    ]),
    dcc.Store(id="traffic-link"),
    dcc.Store(id="traffic-drawn"),
    dcc.Store(id="traffic-map-shown"),
    dcc.Store(id="traffic-series-for"),
    dcc.Interval(id="traffic-interval", interval=1200, disabled=True),
])


def _slider(sel) -> tuple[int, dict, int]:
    """The time slider for a variant: last index, clock marks, and the slowest interval (where the map opens)."""
    clock = D.clock_labels(sel.ds)
    n = len(clock)
    every = max(1, n // 8)
    r = D.speed_ratio(sel.path, sel.ds, sel.variant)
    peak = int(np.argmin(r.mean(1))) if r.size else 0
    return max(n - 1, 0), {i: clock[i] for i in range(0, n, every)}, peak


# the map's figure has arrived (`traffic-drawn`): wait in the browser until plotly has drawn its shapes, then ask for
# the series charts, so their drawing never competes with the map's (the map is what the page opens for)
clientside_callback("""function(drawn) {
    return new Promise(function(resolve) {
        var t0 = Date.now();
        (function poll() {
            if (document.querySelector('#traffic-map .shapelayer path') || Date.now() - t0 > 5000) { resolve(drawn); }
            else { window.requestAnimationFrame(poll); }
        })();
    });
}""", Output("traffic-map-shown", "data"), Input("traffic-drawn", "data"), prevent_initial_call=True)


@callback(Output("traffic-series", "children"), Output("traffic-series-for", "data"),
          Input("traffic-map-shown", "data"), State("variant", "value"), State("traffic-series-for", "data"),
          prevent_initial_call=True)
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
          Output("traffic-missing", "children"), Output("traffic-body", "style"), Output("traffic-time", "max"),
          Output("traffic-time", "marks"), Output("traffic-time", "value"),
          Input("variant", "value"), Input("traffic-time", "value"), Input("traffic-mode", "value"),
          Input("traffic-link", "data"), State("traffic-drawn", "data"))
def draw(key, t, mode, link, drawn):
    """The map at interval ``t``. Opening the page or choosing a variant sets the slider up (the slowest interval)
    and draws the map in the same call: one round trip, where a separate set-up callback made it two."""
    keep = (no_update,) * 3
    sel, err = ui.load_selection(key)
    if err is not None:
        return (no_update, "", None, err, {"display": "none"}) + keep
    if "traffic" not in sel.domains:
        return (no_update, "", None, ui.not_simulated("traffic"), {"display": "none"}) + keep
    slider = keep
    if ctx.triggered_id in (None, "variant") or t is None:
        slider = _slider(sel)
        t = slider[2]
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
        return (patch, clock[t]) + (no_update,) * 6
    fig = F.class_map(net, cls, labels, colors, title, highlight=_index(link), height=600,
                      closed=closed, reduced=reduced, severity=sev,
                      link_text=D.derived(sel.path, "link_hover", lambda: F.link_hover_text(net, D.link_names(sel.ds))))
    return (fig, clock[t], state, None, {}) + slider


def _index(v) -> int | None:
    """A link or time index from the browser: a whole number >= 0, else None (a crafted request may send
    anything; it gets no update instead of a server error)."""
    if isinstance(v, float) and v.is_integer():  # a slider may send 3.0
        v = int(v)
    return v if isinstance(v, int) and not isinstance(v, bool) and v >= 0 else None


@callback(Output("traffic-link", "data"), Input("traffic-map", "clickData"), prevent_initial_call=True)
def pick(click):
    points = click.get("points") if isinstance(click, dict) else None
    if not isinstance(points, list) or not points or not isinstance(points[0], dict):
        return no_update
    p = points[0]
    # the midpoint layer comes right after the colour classes: its point index is the link index
    if p.get("curveNumber") != D.N_MAP_CLASSES:
        return no_update
    i = _index(p.get("pointIndex", p.get("pointNumber", 0)))
    return no_update if i is None else i


@callback(Output("traffic-detail-box", "children"), Input("variant", "value"), Input("traffic-link", "data"),
          prevent_initial_call=True)
def detail(key, link):
    """The chosen link over time; no graph until a link is chosen (an empty graph cost the first draw ~0.1-0.3 s)."""
    link = _index(link)
    if link is None:
        return no_update
    sel, err = ui.load_selection(key)
    if err is not None or "traffic" not in sel.domains:
        return None
    if link >= sel.ds.sizes.get("link", 0):
        return html.P("Click a link on the map for its speed, flow and capacity over time.", className="text-muted")
    return dcc.Graph(id="traffic-detail", figure=F.link_detail(sel.pair, link, sel.variants))


@callback(Output("traffic-interval", "disabled"), Output("traffic-play", "children"),
          Input("traffic-play", "n_clicks"), State("traffic-interval", "disabled"), prevent_initial_call=True)
def play(_n, disabled):
    return (False, "❚❚ pause") if disabled else (True, "▶ play")


@callback(Output("traffic-time", "value", allow_duplicate=True), Input("traffic-interval", "n_intervals"),
          Input("traffic-step", "n_clicks"), State("traffic-time", "value"), State("traffic-time", "max"),
          prevent_initial_call=True)
def tick(_n, _s, t, tmax):
    return ((_index(t) or 0) + 1) % ((_index(tmax) or 0) + 1)
