"""Calibration: the reports ``run_scenario.py calibrate`` wrote under the results folder (GEH per count, fit and
hold-out apart, observed vs simulated, folds, how far the demand moved from its prior)."""
import dash
import dash_bootstrap_components as dbc
from dash import Input, Output, callback, dcc, html

from agents.traffic.counts.report import load_reports, scatter_figure
from dashboards import ui

dash.register_page(__name__, path="/calibration", name="Calibration", title="CityTwin — calibration", order=7)

layout = html.Div([
    html.H2("Calibration to traffic counts", className="h4"),
    dcc.Dropdown(id="calibration-pick", clearable=False, className="mb-3"),
    html.Div(id="calibration-content"),
])


def _reports():
    return load_reports(ui.catalog().root)


def _table(head, rows, id_=None):
    kw = {"id": id_} if id_ else {}
    return dbc.Table([html.Thead(html.Tr([html.Th(h) for h in head])),
                      html.Tbody([html.Tr([html.Td(c) for c in r]) for r in rows])],
                     size="sm", striped=True, hover=True, **kw)


def _pct(x):
    return "—" if x is None or x != x else f"{100 * x:.1f}%"


@callback(Output("calibration-pick", "options"), Output("calibration-pick", "value"), Input("url", "pathname"))
def options(_path):
    root = ui.catalog().root
    opts = [{"label": f"{rep.get('calibrate', '?')} ({rep.get('variant', '')}): {p.relative_to(root).parent}",
             "value": str(p.relative_to(root))} for p, rep in _reports()]
    return opts, (opts[0]["value"] if opts else None)


@callback(Output("calibration-content", "children"), Input("calibration-pick", "value"))
def show(rel):
    if not rel:
        return dbc.Alert(["No calibration in this results folder. Run ",
                          html.Code("run_scenario.py calibrate SCENARIO --counts COUNTS"), " first."],
                         color="info", id="calibration-none")
    rep = next((r for p, r in _reports() if str(p.relative_to(ui.catalog().root)) == rel), None)
    if rep is None:
        return ui.error_card("Calibration report not found", f"{rel} is no longer there.", "calibration-missing")
    s = rep["summary"]
    summ = [[lab, s[k]["n"], _pct(s[k]["geh5_share"]), _pct(s[k]["tag_flow_share"]), f"{s[k]['r2']:.3f}",
             f"{s[k]['slope']:.3f}"]
            for k, lab in (("prior_all", "prior, all counts"), ("fit", "calibrated, fit"),
                           ("holdout", "calibrated, hold-out"), ("all", "calibrated, all")) if s[k].get("n")]
    out = [ui.card("Goodness of fit (TAG M3.1: GEH < 5 on ≥ 85% of counts)",
                   _table(["counts", "n", "GEH<5", "TAG flow criterion", "R²", "slope"], summ, "calibration-summary")),
           ui.card("Observed vs simulated", dcc.Graph(figure=scatter_figure(rep), id="calibration-scatter",
                                                      config={"displaylogo": False}))]
    if rep.get("folds"):
        out.append(ui.card("Leave-some-out folds", _table(
            ["fold", "held out", "GEH<5 fit", "GEH<5 hold-out", "hold-out GEH"],
            [[f["fold"], ", ".join(f["holdout"]), _pct(f["geh5_share_fit"]), _pct(f["geh5_share_holdout"]),
              ", ".join(f"{g:.1f}" for g in f["holdout_geh"])] for f in rep["folds"]])))
    out.append(ui.card("Counts", _table(
        ["location", "interval", "set", "observed veh/h", "simulated veh/h", "GEH", "TAG flow"],
        [[r["label"], f"{r['start']}-{r['end']}", r["set"], r["observed_vph"], r["simulated_vph"], r["geh"],
          "ok" if r["tag_ok"] else "no"] for r in rep["rows"]], "calibration-counts")))
    m = rep["matrix"]
    out.append(ui.card(f"Demand moved from the prior: {m['prior_trips']:.0f} → {m['calibrated_trips']:.0f} trips; "
                       f"cells slope {m['cell_slope']:.3f}, R² {m['cell_r2']:.3f}", _table(
        ["origin zone", "destination zone", "slice", "prior", "calibrated"],
        [[c["origin_zone"], c["destination_zone"], c["slice"], round(c["prior"]), round(c["calibrated"])]
         for c in m["largest_changes"]])))
    out.append(html.P(["Demand file: ", html.Code(rep["demand_file"])], className="small text-muted"))
    return out
