"""The CityTwin what-if dashboard: a multi-page Dash app over a folder of results files.

``run_scenario.py dashboard [RESULTS_DIR] [--host H] [--port P]`` calls :func:`serve`. The app reads results
files only; assets (Bootstrap 5 CSS from npm, MIT) are served locally, nothing comes from a CDN.
"""
from __future__ import annotations

import sys
import threading
from pathlib import Path

import dash
import dash_bootstrap_components as dbc
from dash import Input, Output, State, dcc, html

from dashboards import data as D
from dashboards import ui

__all__ = ["create_app", "serve"]

HERE = Path(__file__).resolve().parent
NAV = [("/", "Overview"), ("/traffic", "Traffic"), ("/ev", "EV charging"), ("/crowd", "Crowd"),
       ("/emergency", "Emergency"), ("/compare", "Compare"), ("/whatif", "What-if"),
       ("/calibration", "Calibration")]


def _default_value(opts: list[dict], current: str | None) -> str | None:
    values = [o["value"] for o in opts]
    if current in values:
        return current
    non_base = [v for v in values if not v.endswith("::baseline")]
    return non_base[0] if non_base else (values[0] if values else None)


def create_app(results_dir: str | Path) -> dash.Dash:
    """A Dash app over ``results_dir`` (scanned recursively for ``*.nc`` whenever the picker refreshes)."""
    ui.set_root(results_dir)
    app = dash.Dash(__name__, use_pages=True, pages_folder=str(HERE / "pages"), assets_folder=str(HERE / "assets"),
                    serve_locally=True, external_stylesheets=[], external_scripts=[], title="CityTwin",
                    suppress_callback_exceptions=True, update_title=None)
    nav = dbc.Navbar(dbc.Container([
        dbc.NavbarBrand("CityTwin", href="/"),
        dbc.Nav([dbc.NavItem(dbc.NavLink(lab, href=p, active="exact", id=f"nav-{lab.split()[0].lower()}"))
                 for p, lab in NAV], navbar=True, className="me-auto"),
        html.Div([html.Span("variant", className="text-light me-2 small"),
                  dcc.Dropdown(id="variant", clearable=False, style={"width": "320px"}, persistence=True,
                               persistence_type="session")],
                 className="d-flex align-items-center"),
    ], fluid=True), color="dark", dark=True, className="mb-3")
    app.layout = html.Div([
        dcc.Location(id="url"),
        dcc.Store(id="catalog-version", data=0),
        nav,
        dbc.Container([html.Div(id="file-errors"), dash.page_container], fluid=True),
    ])

    @app.callback(Output("variant", "options"), Output("variant", "value"), Output("file-errors", "children"),
                  Input("catalog-version", "data"), Input("url", "pathname"), State("variant", "value"))
    def refresh(_version, _path, current):
        cat = ui.catalog()
        entries = cat.entries()
        opts = cat.options()
        bad = [e for e in entries if e.error]
        cards = [ui.error_card(f"Cannot use results file {e.rel}", e.error, None) for e in bad]
        if not cat.root.is_dir():
            cards.insert(0, ui.error_card(f"Results folder {cat.root} not found",
                                          "Start the dashboard with an existing folder of results files.", None))
        errs = html.Div(cards, id="file-error-cards") if cards else None
        return opts, _default_value(opts, current), errs

    threading.Thread(target=_warm, args=(ui.catalog(),), daemon=True, name="citytwin-warm").start()
    return app


def _warm(cat: D.Catalog) -> None:
    """Read every results file once at start (network geometry, speed ratios), so the first page is quick."""
    for e in cat.entries():
        if e.error:
            continue
        try:
            ds = D.load(e.path)
            if "link_speed" in ds:
                D.network(e.path, ds)
                for v in e.variants[:2]:
                    D.speed_ratio(e.path, ds, v)
        except Exception:  # a bad file is reported by the page, not here
            pass


def serve(results_dir: str | Path = "results", host: str = "127.0.0.1", port: int = 8050, debug: bool = False) -> int:
    """Serve the dashboard (blocking); exit code 0, or 2 when the folder does not exist."""
    root = Path(results_dir)
    if not root.is_dir():
        print(f"error: {root}: results folder not found", file=sys.stderr)
        return 2
    n = len(D.Catalog(root).files())
    print(f"CityTwin dashboard: {n} results file(s) in {root.resolve()}\n  open http://{host}:{port}/  (Ctrl+C stops)",
          file=sys.stderr)
    app = create_app(root)
    app.run(host=host, port=port, debug=debug)
    return 0
