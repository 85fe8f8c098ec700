"""The CityTwin what-if dashboard: a multi-page Dash app over a folder of results files.

``run_scenario.py dashboard [RESULTS_DIR] [--host H] [--port P] [--no-whatif] [--allow-host NAME]`` calls
:func:`serve`. The app reads results files only (the what-if page queues bounded runs, docs/security.md);
assets (Bootstrap 5 CSS from npm, MIT) are served locally, nothing comes from a CDN. The server answers only
to loopback host names and the bound address (dashboards.safety), and refuses bodies above 1 MB.
"""
from __future__ import annotations

import gzip
import hashlib
import sys
import threading
from pathlib import Path

import dash
import flask
import dash_bootstrap_components as dbc
from dash import Input, Output, State, dcc, html, no_update

from dashboards import data as D
from dashboards import figures as F
from dashboards import ui
from dashboards import whatif as W
from dashboards.safety import MAX_BODY_BYTES, allowed_hosts_for, install_guards, is_loopback, public_text

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


def create_app(results_dir: str | Path, *, whatif: bool = True, allowed_hosts: set[str] | None = None,
               max_body: int = MAX_BODY_BYTES) -> dash.Dash:
    """A Dash app over ``results_dir`` (scanned recursively for ``*.nc`` whenever the picker refreshes).

    ``whatif=False`` turns the what-if page and its runs off; ``allowed_hosts`` are the Host names it answers
    to (default: loopback names only); request bodies above ``max_body`` bytes are refused.
    """
    ui.set_root(results_dir)
    W.set_enabled(whatif)
    app = dash.Dash(__name__, use_pages=True, pages_folder=str(HERE / "pages"), assets_folder=str(HERE / "assets"),
                    serve_locally=True, external_stylesheets=[], external_scripts=[], title="CityTwin",
                    suppress_callback_exceptions=True, update_title=None)
    nav = dbc.Navbar(dbc.Container([
        dbc.NavbarBrand("CityTwin", href="/"),
        dbc.Nav([dbc.NavItem(dbc.NavLink(lab, href=p, active="exact", id=f"nav-{lab.split()[0].lower()}"))
                 for p, lab in NAV if whatif or p != "/whatif"], navbar=True, className="me-auto"),
        html.Div([html.Span("variant", className="text-light me-2 small"),
                  dcc.Dropdown(id="variant", clearable=False, style={"width": "320px"},
                               placeholder="loading the results…")],
                 className="d-flex align-items-center"),
    ], fluid=True), color="dark", dark=True, className="mb-3")
    app.layout = html.Div([
        dcc.Location(id="url"),
        dcc.Store(id="catalog-version", data=0),
        # the chosen variant across reloads: kept here, not by the dropdown's own `persistence`, which raced with
        # `refresh` setting options and value after a reload (the picker was seen blank)
        dcc.Store(id="variant-memory", storage_type="session"),
        nav,
        dbc.Container([html.Div(id="file-errors"), dash.page_container], fluid=True),
        html.Div(id="plotly-preload"),  # an empty hidden graph once the overview is drawn (below)
    ])

    @app.callback(Output("variant", "options"), Output("variant", "value"), Output("file-errors", "children"),
                  Input("catalog-version", "data"), Input("url", "pathname"), State("variant", "value"),
                  State("variant-memory", "data"), State("variant", "options"))
    def refresh(_version, _path, current, remembered=None, shown=None):
        cat = ui.catalog()
        entries = cat.entries()
        opts = cat.options()
        bad = [e for e in entries if e.error]
        cards = [ui.error_card(f"Cannot use results file {e.rel}", public_text(e.error, (cat.root,)), None)
                 for e in bad]
        if not cat.root.is_dir():
            cards.insert(0, ui.error_card(f"Results folder {cat.root.name} not found",
                                          "Start the dashboard with an existing folder of results files.", None))
        errs = html.Div(cards, id="file-error-cards") if cards else None
        values = [o["value"] for o in opts]
        value = _default_value(opts, current if current in values else remembered)
        # unchanged: no update, which would run every callback of the page that reads the variant once more
        return (no_update if opts == shown else opts), (no_update if value == current else value), errs

    # in the browser (no server round trip): a page loaded right after choosing a variant still finds it
    app.clientside_callback("function(v) { return v ? v : window.dash_clientside.no_update; }",
                            Output("variant-memory", "data"), Input("variant", "value"), prevent_initial_call=True)

    # plotly.js loads when the first graph is drawn, and loading and running it took 0.6-2.4 s of the traffic map's
    # first draw; the first page people see (the overview) has no graph: once its cards are drawn and the browser is
    # idle, an empty hidden graph makes Dash's own loader fetch plotly.js, so the page opened next draws at once.
    # Through Dash's loader, never twice; not before the overview's cards (it slowed their first draw by ~3 s).
    app.clientside_callback("""function(_cards) {
        if (window.__ctPlotlyPreload) { return window.dash_clientside.no_update; }
        window.__ctPlotlyPreload = true;
        return new Promise(function(resolve) { setTimeout(function() {
            (window.requestIdleCallback || function(f) { setTimeout(f, 0); })(function() {
                resolve({namespace: 'dash_core_components', type: 'Graph', props: {id: 'plotly-preload-graph',
                    figure: {data: [], layout: {}}, style: {display: 'none'}, config: {staticPlot: true}}});
            }, {timeout: 3000}); }, 300); });
    }""", Output("plotly-preload", "children"), Input("overview-content", "children"), prevent_initial_call=True)

    install_guards(app.server, allowed_hosts if allowed_hosts is not None else allowed_hosts_for("127.0.0.1"),
                   max_body)
    install_plotly_bundle(app)
    threading.Thread(target=_warm, args=(ui.catalog(),), daemon=True, name="citytwin-warm").start()
    return app


def install_plotly_bundle(app: dash.Dash, bundle_gz: Path = F.PLOTLY_BUNDLE_GZ) -> None:
    """Serve ``bundle_gz`` (gzip-compressed plotly.js) at the URL where Dash's graphs load plotly.js.

    Why: parsing and running the full 4.8 MB bundle held the browser's main thread 1.2-2.4 s before the first
    map could be drawn; the cartesian bundle is a third of that, sent compressed (no compression work per request).
    Registered after the Host/body guards, so those still run first.
    """
    url = app.config.requests_pathname_prefix + "_dash-component-suites/plotly/package_data/plotly.min.js"
    gz = bundle_gz.read_bytes()
    etag = hashlib.sha256(gz).hexdigest()[:32]

    @app.server.before_request
    def _plotly_bundle():
        if flask.request.path != url:
            return None
        if "gzip" in flask.request.headers.get("Accept-Encoding", ""):
            resp = flask.Response(gz, mimetype="application/javascript")
            resp.headers["Content-Encoding"] = "gzip"
        else:
            resp = flask.Response(gzip.decompress(gz), mimetype="application/javascript")
        resp.headers["Vary"] = "Accept-Encoding"
        resp.headers["Cache-Control"] = "public, max-age=3600"
        resp.set_etag(etag)
        return resp.make_conditional(flask.request)


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


def serve(results_dir: str | Path = "results", host: str = "127.0.0.1", port: int = 8050, debug: bool = False,
          whatif: bool = True, allow_hosts: tuple[str, ...] = ()) -> int:
    """Serve the dashboard (blocking); exit code 0, or 2 when the folder does not exist.

    Bound to anything but loopback, it prints a warning: every visitor can read the results and (unless
    ``whatif=False``) run simulations on this machine; there is no login (put it behind an authenticating
    proxy). It answers only to the Host names of :func:`dashboards.safety.allowed_hosts_for`.
    """
    root = Path(results_dir)
    if not root.is_dir():
        print(f"error: {root}: results folder not found", file=sys.stderr)
        return 2
    if debug and not is_loopback(host):
        print("error: --debug serves Werkzeug's debugger, which runs code typed into the browser: "
              "use it only with --host 127.0.0.1", file=sys.stderr)
        return 2
    hosts = allowed_hosts_for(host, allow_hosts)
    if not is_loopback(host):
        print(f"WARNING: binding to {host}: anyone who can reach this address can read these results"
              + (" and use the what-if page to run simulations on this machine (--no-whatif turns it off)"
                 if whatif else "")
              + ". There is no login: keep the dashboard on 127.0.0.1 unless it is behind an authenticating proxy. "
              f"Accepted Host names: {', '.join(sorted(hosts))} (add more with --allow-host).", file=sys.stderr)
    n = len(D.Catalog(root).files())
    print(f"CityTwin dashboard: {n} results file(s) in {root.resolve()}\n  open http://{host}:{port}/  (Ctrl+C stops)",
          file=sys.stderr)
    app = create_app(root, whatif=whatif, allowed_hosts=hosts)
    app.run(host=host, port=port, debug=debug)
    return 0
