"""Compare: any two variants side by side (KPIs, charts) and a difference map."""
import dash
import dash_bootstrap_components as dbc
from dash import Input, Output, State, callback, dcc, html

from dashboards import data as D
from dashboards import figures as F
from dashboards import ui

dash.register_page(__name__, path="/compare", name="Compare", title="CityTwin — compare", order=5)

layout = html.Div([
    html.H2("Compare two variants", className="h4"),
    dbc.Row([dbc.Col([html.Label("A"), dcc.Dropdown(id="compare-a", clearable=False)], md=5),
             dbc.Col([html.Label("B"), dcc.Dropdown(id="compare-b", clearable=False)], md=5)], className="mb-3"),
    html.Div(id="compare-content"),
])


@callback(Output("compare-a", "options"), Output("compare-b", "options"), Output("compare-a", "value"),
          Output("compare-b", "value"), Input("variant", "options"), State("variant", "value"),
          State("compare-a", "value"), State("compare-b", "value"))
def options(opts, current, a, b):
    opts = [o for o in opts if isinstance(o, dict) and isinstance(o.get("value"), str)] if isinstance(opts, list) else []
    vals = [o["value"] for o in opts]
    if a not in vals:
        a = next((v for v in vals if v.endswith("::baseline")), vals[0] if vals else None)
    if b not in vals:
        b = current if current in vals and current != a else next((v for v in vals if v != a), a)
    return opts, opts, a, b


@callback(Output("compare-content", "children"), Input("compare-a", "value"), Input("compare-b", "value"))
def show(ka, kb):
    sa, err = ui.load_selection(ka)
    if err is not None:
        return err
    sb, err = ui.load_selection(kb)
    if err is not None:
        return err
    pair = ui.pair_dataset(sa.path, sa.variant, sb.path, sb.variant)
    va, vb = [str(v) for v in pair["variant"].values]
    why = ui.incomparable(sa.ds, sb.ds)
    out = [dbc.Alert([html.B("A and B did not run alike "), f"({why}): the differences below are not effects of "
                      "the change and are not coloured.", ], color="warning", id="compare-incomparable")] if why else []
    out.append(ui.card(f"KPIs: A = {va}, B = {vb}", ui.kpi_table(pair, va, pair, vb, neutral=bool(why)),
                       id="compare-kpis"))
    g = lambda fig, i: dcc.Graph(figure=fig, id=i, config={"displaylogo": False, "scrollZoom": True})  # noqa: E731
    doms = set(sa.domains) & set(sb.domains)
    if "traffic" in doms:
        net = D.network(sa.path, sa.ds)
        ra = D.speed_ratio(sa.path, sa.ds, sa.variant)
        rb = D.speed_ratio(sb.path, sb.ds, sb.variant)
        if net is not None and ra.shape[1] == rb.shape[1]:
            cb = D.capacity_factor(sb.path, sb.ds, sb.variant)
            fig = F.class_map(net, F.diff_classes(ra, rb), F.DIFF_LABELS, F.DIFF_COLORS,
                              f"B ({vb}) against A ({va}): change in mean speed, % of free flow", clickable=False,
                              closed=cb.min(0) <= 0, reduced=cb.min(0) < 1, closed_label="closed in B (some of the time)",
                              severity=F.DIFF_SEVERITY)
            out.append(ui.card("Difference map", g(fig, "compare-map")))
        else:
            out.append(dbc.Alert("The two variants are on different networks: no difference map.", color="info"))
        out.append(dbc.Row([dbc.Col(g(f, f"compare-traffic-{i}"), lg=4)
                            for i, f in enumerate(F.traffic_series(pair, [va, vb], sb.path)[:3])]))
    if "ev" in doms:
        out.append(ui.card("EV charging", dbc.Row([dbc.Col(g(F.ev_load(pair, [va, vb]), "compare-ev-load"), lg=6),
                                                   dbc.Col(g(F.ev_waits(pair, [va, vb]), "compare-ev-waits"), lg=6)])))
    if "emergency" in doms:
        out.append(ui.card("Emergency", dbc.Row([
            dbc.Col(g(F.em_response_hist(pair, [va, vb]), "compare-em-hist"), lg=6),
            dbc.Col(g(F.em_utilisation(pair, [va, vb]), "compare-em-util"), lg=6)])))
    if "crowd" in doms:
        out.append(ui.card("Crowd", g(F.crowd_peak(pair, [va, vb], 0), "compare-crowd-peak")))
    for d in D.DOMAINS:
        if d not in doms:
            out.append(dbc.Alert(f"{D.DOMAIN_LABELS[d]}: not simulated in "
                                 f"{'either variant' if d not in sa.domains and d not in sb.domains else 'one of them'}.",
                                 color="warning", className="py-2"))
    return out
