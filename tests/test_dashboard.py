"""The what-if dashboard in a real browser (headless Debian chromium + chromedriver through dash.testing).

Each page loads without console errors and shows real content; the map renders; the variant picker changes
the KPI cards; a what-if run completes and appears in the picker; bad files show an error card; a 10,000-link
city renders and steps (its timings are printed). Screenshots go to test-artifacts/screenshots/.
"""
from __future__ import annotations

import os
import shutil
import threading
import time
from pathlib import Path

import numpy as np
import pytest

import dash.testing  # noqa: E402,F401  (a test dependency: pip install -e ".[test]")

from dashboards.data import N_MAP_CLASSES  # noqa: E402

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
if not (Path(CHROMIUM).exists() and shutil.which("chromedriver")):
    if os.environ.get("CI"):  # CI installs the browser (.ci/run): missing there is a failure, not a skip
        raise RuntimeError("chromium/chromedriver missing: .ci/install-browser.sh should have installed them")
    pytest.skip("needs Debian chromium and chromium-driver: run .ci/install-browser.sh (as root)",
                allow_module_level=True)

from dash.testing.application_runners import ThreadedRunner  # noqa: E402
from dash.testing.composite import DashComposite  # noqa: E402
from dash.testing.wait import until  # noqa: E402
from selenium.webdriver.chrome.options import Options  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
SHOTS = ROOT / "test-artifacts" / "screenshots"


# ------------------------------------------------------------------------------------------ fixtures
class GracefulRunner(ThreadedRunner):
    """A threaded Dash server for the browser tests that stops with werkzeug's ``shutdown()``.

    dash.testing's own ``ThreadedRunner`` stops its server by injecting ``SystemExit`` into every thread started
    after it (``KillerThread.kill``): the what-if worker, the warm-up reader, and threads of whatever the worker
    process runs next. This one touches no thread but its own."""

    def start(self, app, start_timeout=10, **kwargs):
        from werkzeug.serving import make_server

        app.scripts.config.serve_locally = True
        app.css.config.serve_locally = True
        self._app, self.host = app, "127.0.0.1"
        self._srv = make_server("127.0.0.1", 0, app.server, threaded=True)
        self.port = self._srv.server_port
        self.thread = threading.Thread(target=self._srv.serve_forever, daemon=True, name="dash-test-server")
        self.thread.start()
        until(lambda: self.accessible(self.url), timeout=start_timeout)
        self.started = True

    def stop(self):
        self._srv.shutdown()
        self._srv.server_close()
        self.thread.join(self.stop_timeout)
        self._app, self.started = None, False


@pytest.fixture
def graceful_server():
    with GracefulRunner() as runner:
        yield runner


@pytest.fixture
def duo(request, graceful_server, tmpdir):
    """dash_duo with headless chromium and the flags NOTES.md asks for (no conftest hook needed)."""
    opts = Options()
    opts.binary_location = CHROMIUM
    for a in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
              "--disable-component-update", "--window-size=1400,1100", "--enable-unsafe-swiftshader"):
        opts.add_argument(a)
    with DashComposite(server=graceful_server, browser="Chrome", headless=True, options=[opts],
                       download_path=tmpdir.mkdir("download").strpath, percy_assets_root="",
                       percy_finalize=False) as dc:
        dc.driver.set_window_size(1400, 1100)
        yield dc


@pytest.fixture(scope="session")
def demo_dir(tmp_path_factory):
    """All four domains on a 6 x 6 grid town, baseline + closure + ev_hub (other stations and venue)."""
    from dashboards.demo import make_demo_results

    d = tmp_path_factory.mktemp("results") / "demo_town"
    make_demo_results(d, variants=("closure", "ev_hub"))
    return d


@pytest.fixture(scope="session")
def traffic_only_dir(tmp_path_factory):
    from dashboards.demo import make_demo_results

    d = tmp_path_factory.mktemp("traffic_only")
    make_demo_results(d, domains=("traffic",), variants=("more_demand",), name="cars_only")
    return d


@pytest.fixture(scope="session")
def bad_hersfeld_dir(tmp_path_factory):
    """The real default scenario shortened to its first hour: baseline + festival, every domain (about 30 s)."""
    from twin.engine import CityTwin
    from twin.results import stack_variants, write_atomic
    from twin.scenario import deep_merge, load_document, resolve_variants

    path = ROOT / "scenarios" / "bad_hersfeld.yaml"
    doc = load_document(path)
    variants = doc.pop("variants")
    doc = deep_merge(doc, {"time": {"duration_s": 3600}, "demand": {"trips": 7000, "end_s": 3300}})
    doc["variants"] = {"festival": variants["festival"]}
    runs = {name: CityTwin(sc, path.parent).run() for name, sc in resolve_variants(doc, path).items()}
    d = tmp_path_factory.mktemp("bh") / "bad_hersfeld"
    write_atomic(stack_variants(runs), d / "bad_hersfeld.nc")
    return d


def shot(duo, name: str) -> Path:
    SHOTS.mkdir(parents=True, exist_ok=True)
    p = SHOTS / f"{name}.png"
    h = duo.driver.execute_script("return Math.min(document.body.scrollHeight, 4000)")
    duo.driver.set_window_size(1400, max(1100, int(h) + 40))
    time.sleep(0.3)
    duo.driver.save_screenshot(str(p))
    duo.driver.set_window_size(1400, 1100)
    return p


def no_console_errors(duo):
    logs = [e for e in (duo.get_logs() or []) if e.get("level") == "SEVERE" and "favicon" not in e.get("message", "")]
    assert logs == [], logs


def start(duo, folder):
    from dashboards.app import create_app

    app = create_app(folder)
    duo.start_server(app)
    return app


def goto(duo, path: str):
    duo.driver.get(duo.server_url + path)


# ------------------------------------------------------------------------------------------ tests
def test_every_page_loads_with_real_content(duo, demo_dir):
    """Overview, traffic, EV, crowd, emergency and compare render their content without console errors."""
    start(duo, demo_dir)
    duo.wait_for_element("#kpis-traffic", timeout=30)
    for dom in ("ev", "crowd", "emergency"):
        duo.wait_for_element(f"#kpis-{dom}")
    assert "Demo Town" in duo.find_element("#overview-content").text
    no_console_errors(duo)
    shot(duo, "overview")

    goto(duo, "/traffic")
    duo.wait_for_contains_text("#traffic-map .gtitle", "speed as % of free flow", timeout=30)
    duo.wait_for_element("#traffic-map .shapelayer path")
    duo.wait_for_element("#traffic-series-0 .main-svg")
    no_console_errors(duo)
    shot(duo, "traffic")

    goto(duo, "/ev")
    duo.wait_for_element("#ev-map .main-svg", timeout=30)
    duo.wait_for_contains_text("#ev-load .gtitle", "grid limit")
    duo.wait_for_element("#ev-occupancy .main-svg")
    no_console_errors(duo)
    shot(duo, "ev")

    goto(duo, "/crowd")
    duo.wait_for_element("#crowd-heatmap .main-svg", timeout=30)
    duo.wait_for_contains_text("#crowd-warnings .gtitle", "warnings")
    no_console_errors(duo)
    shot(duo, "crowd")

    goto(duo, "/emergency")
    duo.wait_for_element("#em-map .main-svg", timeout=30)
    duo.wait_for_contains_text("#em-hist .gtitle", "target")
    duo.wait_for_element("#em-coverage .main-svg")
    duo.wait_for_element("#em-utilisation .main-svg")
    no_console_errors(duo)
    shot(duo, "emergency")

    goto(duo, "/compare")
    duo.wait_for_contains_text("#compare-kpis", "Δ (B − A)", timeout=30)
    duo.wait_for_contains_text("#compare-map .gtitle", "change in mean speed")
    no_console_errors(duo)
    shot(duo, "compare")


def test_every_page_shows_bad_hersfeld(duo, bad_hersfeld_dir):
    """The real town: every page renders its content (map of Bad Hersfeld's 4,057 links, its chargers, the
    festival venue, its ambulance stations) without console errors; screenshots bh_*.png."""
    start(duo, bad_hersfeld_dir)
    duo.wait_for_element("#kpis-traffic", timeout=30)
    for dom in ("ev", "emergency", "crowd"):
        duo.wait_for_element(f"#kpis-{dom}")
    assert "Bad Hersfeld" in duo.find_element("#overview-content").text
    no_console_errors(duo)
    shot(duo, "bh_overview")
    pages = [("/traffic", "#traffic-map .shapelayer path"), ("/ev", "#ev-map .main-svg"),
             ("/emergency", "#em-map .main-svg"), ("/compare", "#compare-map .main-svg")]
    for url, sel in pages:
        goto(duo, url)
        duo.wait_for_element(sel, timeout=40)  # a full page load of a 4,057-link map on a busy CI box
        no_console_errors(duo)
        shot(duo, "bh" + url.replace("/", "_"))
        if url == "/traffic":  # street names from the SUMO net's edge names are the map's hover text
            texts = duo.driver.execute_script(
                "var g=document.querySelector('#traffic-map .js-plotly-plot');"
                f"return Array.from(g._fullData[{N_MAP_CLASSES}].text || []);")
            assert len(texts) == 4057 and sum("straße" in t for t in texts) > 500, texts[:5]
    goto(duo, "/crowd")  # the picker starts on the first variant, the festival: its venue's density map
    duo.wait_for_element("#crowd-heatmap .main-svg", timeout=30)
    no_console_errors(duo)
    shot(duo, "bh_crowd")


PAGE_TITLES = [  # (nav link, element whose text names the selected variant, what it must contain)
    ("#nav-overview", "#overview-content .card-header", "— {v}"),
    ("#nav-traffic", "#traffic-map .gtitle", "{v}: speed"),
    ("#nav-ev", "#ev-map .gtitle", "{v}: stations"),
    ("#nav-crowd", "#crowd-heatmap .gtitle", "{venue}"),
    ("#nav-emergency", "#em-map .gtitle", "{v}: incidents"),
]


def test_every_page_for_every_variant(duo, demo_dir):
    """Each page x each variant (the ev_hub variant has another station and another venue than the others):
    no error card or server error, titles name the selected variant, nothing stale after switching (ev_hub
    first, then the baseline: the EV page must lose the hub, the crowd page the market)."""
    start(duo, demo_dir)
    duo.wait_for_element("#kpis-traffic", timeout=20)
    venue = {"ev_hub": "market", "baseline": "square", "closure": "square"}
    for v in ("ev_hub", "baseline", "closure"):
        duo.find_element("#nav-overview").click()
        duo.select_dcc_dropdown("#variant", value=v)
        for nav, sel, want in PAGE_TITLES:
            duo.find_element(nav).click()
            duo.wait_for_contains_text(sel, want.format(v=v, venue=venue[v]), timeout=30)
            assert not duo.driver.find_elements("css selector", ".error-card"), (v, nav)
            if nav == "#nav-ev":  # the hub's marker only in ev_hub; the station layer has this variant's stations
                n = duo.driver.execute_script(
                    "const gd = document.querySelector('#ev-map .js-plotly-plot');"
                    "return gd._fullData.find(t => (t.name || '').startsWith('stations'))._length;")
                assert n == (3 if v == "ev_hub" else 2), (v, n)
                legend = duo.find_element("#ev-map .legend").text
                assert ("new in this variant" in legend) == (v == "ev_hub"), legend
            if nav == "#nav-traffic" and v == "closure":
                duo.wait_for_contains_text("#traffic-map .legend", "closed (capacity 0) (2)", timeout=30)
            shot(duo, f"page{nav.replace('#nav', '')}_{v}")
        no_console_errors(duo)


def test_map_click_shows_link_detail(duo, demo_dir):
    """Clicking a link on the traffic map draws its flow, speed and queue over time."""
    start(duo, demo_dir)
    goto(duo, "/traffic")
    duo.wait_for_contains_text("#traffic-map .gtitle", "free flow", timeout=30)
    # click through the plotly API (a canvas click needs pixel coordinates): emit a click on link 7
    duo.driver.execute_script("""
        const gd = document.querySelector('#traffic-map .js-plotly-plot');
        const tr = gd.data.length - 1;  // the midpoint layer is last unless a link is highlighted
        gd.emit('plotly_click', {points: [{curveNumber: 7, pointIndex: 7, pointNumber: 7}]});""")
    duo.wait_for_contains_text("#traffic-detail .gtitle", "link ", timeout=30)
    duo.wait_for_contains_text("#traffic-map", "selected:", timeout=30)
    no_console_errors(duo)


def test_variant_picker_changes_kpi_cards(duo, demo_dir):
    """Choosing the baseline instead of the closure changes the KPI cards and the description."""
    start(duo, demo_dir)
    duo.wait_for_contains_text("#variant-description", "closed", timeout=30)
    before = duo.find_element("#kpi-kpi_traffic_vehicle_hours").text
    assert "better" in before or "worse" in before or "+0" in before
    duo.select_dcc_dropdown("#variant", value="baseline")
    duo.wait_for_contains_text("#variant-description", "as written", timeout=30)
    after = duo.find_element("#kpi-kpi_traffic_vehicle_hours").text
    assert after != before and "baseline" in after
    no_console_errors(duo)


def test_whatif_run_completes_and_appears(duo, demo_dir, tmp_path):
    """A factor above the page's limit (×2) is refused beside the field; a valid run ends in the picker."""
    folder = tmp_path / "wi"
    shutil.copytree(demo_dir, folder)
    start(duo, folder)
    goto(duo, "/whatif")
    duo.wait_for_contains_text("#wi-source", "demo_town.nc", timeout=30)
    scale = duo.find_element("#wi-demand-scale")
    scale.clear()
    scale.send_keys("50")
    duo.find_element("#wi-run").click()
    duo.wait_for_contains_text("#wi-demand-scale-feedback", "must be between 0 and 2", timeout=30)
    shot(duo, "whatif_invalid")
    scale.clear()
    scale.send_keys("1.3")
    name = duo.find_element("#wi-name")
    name.clear()
    name.send_keys("busier")
    duo.find_element("#wi-run").click()
    duo.wait_for_element("#wi-done", timeout=90)
    shot(duo, "whatif_done")
    assert (folder / "demo_town__busier.nc").is_file()
    # the picker gets the new variant when the catalogue refreshes, which may come after "done" on a busy box;
    # select_dcc_dropdown only logs a missing option, so check the choice took (seen failing at load 12-14)
    for _ in range(30):
        duo.select_dcc_dropdown("#variant", value="busier (what-if)")
        if "busier (what-if)" in duo.find_element("#variant").text:
            break
        duo.find_element("#variant").click()  # close the open menu, then try again
        time.sleep(1.0)
    assert "busier (what-if)" in duo.find_element("#variant").text
    time.sleep(0.5)  # the clientside callback keeps the choice for the reload below
    goto(duo, "/")
    duo.wait_for_contains_text("#variant-description", "what-if from the dashboard", timeout=30)
    assert "%)" in duo.find_element("#kpi-kpi_traffic_trips").text  # a delta against the main file's baseline
    no_console_errors(duo)


def test_bad_files_show_error_cards_and_app_keeps_running(duo, demo_dir, tmp_path):
    """A corrupt and a foreign netCDF file each get an error card naming them; good files still work."""
    import xarray as xr

    folder = tmp_path / "bad"
    shutil.copytree(demo_dir, folder)
    (folder / "broken.nc").write_bytes(b"CDF\x01 this is not a netCDF file at all" * 10)
    xr.Dataset({"a": ("x", np.arange(3.0))}).to_netcdf(folder / "foreign.nc")
    start(duo, folder)
    duo.wait_for_contains_text("#file-error-cards", "broken.nc", timeout=30)
    assert "foreign.nc" in duo.find_element("#file-error-cards").text
    assert "not a CityTwin results file" in duo.find_element("#file-error-cards").text
    duo.wait_for_element("#kpis-traffic")
    shot(duo, "error_cards")
    goto(duo, "/traffic")
    duo.wait_for_contains_text("#traffic-map .gtitle", "free flow", timeout=30)


def test_domain_not_simulated_says_so(duo, traffic_only_dir):
    """A traffic-only results file: the EV, crowd and emergency pages say plainly they were not simulated."""
    start(duo, traffic_only_dir)
    duo.wait_for_element("#not-simulated-ev", timeout=30)
    for page, dom in (("/ev", "ev"), ("/crowd", "crowd"), ("/emergency", "emergency")):
        goto(duo, page)
        duo.wait_for_contains_text(f"#not-simulated-{dom}", "was not simulated", timeout=30)
    shot(duo, "not_simulated_ev")
    no_console_errors(duo)


# ------------------------------------------------------------------------------------------ speed
def synthetic_city(folder: Path) -> Path:
    from dashboards.demo import make_synthetic_city

    return make_synthetic_city(folder)


def test_10k_links_render_and_step(duo, tmp_path):
    """10,000 links x 288 intervals: the traffic map renders and steps through time in the browser.

    Goals 3 s first render, 1 s a step (printed; bench/dashboard.py measures them). The bounds scale with the
    machine: the same browser and server reopening the overview (page, bundles from the cache, a callback, the
    KPI cards) is the reference, and the first draw may take the larger of 20 s and 6 references, a step 4 s or
    1.5 references. Measured: reference 1.2-5 s and first draw 2-6 s (BH) at load 10-16 on 2 cores; the old code
    (traces, not shapes) took 25-40 s / 3-9 s a step at load 10 with the reference under 4 s: caught either way."""
    path = synthetic_city(tmp_path)
    import xarray as xr

    assert xr.open_dataset(path).sizes["link"] >= 10_000
    start(duo, tmp_path)
    duo.wait_for_element("#kpis-traffic", timeout=30)  # the app is open (overview)
    t0 = time.perf_counter()
    goto(duo, "/")  # the reference: the overview again, now that the results are read
    duo.wait_for_element("#kpis-traffic", timeout=60)
    ref = time.perf_counter() - t0
    time.sleep(1.5)  # as a person would read it (plotly.js is fetched in idle time)
    t0 = time.perf_counter()
    duo.find_element("#nav-traffic").click()
    duo.wait_for_contains_text("#traffic-time-label", ":", timeout=30)
    t_label = time.perf_counter() - t0
    duo.wait_for_contains_text("#traffic-map .gtitle", "free flow", timeout=30)
    duo.wait_for_element("#traffic-map .shapelayer path")
    first = time.perf_counter() - t0
    print(f"label after {t_label:.2f} s")
    label = duo.find_element("#traffic-time-label").text
    steps = []
    for _ in range(3):
        t0 = time.perf_counter()
        duo.find_element("#traffic-step").click()
        until(lambda: duo.find_element("#traffic-time-label").text != label, timeout=5)
        label = duo.find_element("#traffic-time-label").text
        duo.wait_for_contains_text("#traffic-map .gtitle", label, timeout=5)
        steps.append(time.perf_counter() - t0)
    shot(duo, "traffic_10k")
    print(f"10k links: first render {first:.2f} s, time steps {', '.join(f'{s:.2f}' for s in steps)} s, "
          f"reference (overview) {ref:.2f} s, load {os.getloadavg()[0]:.1f}")
    assert first < max(20.0, 6 * ref) and max(steps) < max(4.0, 1.5 * ref), (first, steps, ref)
    no_console_errors(duo)


# ------------------------------------------------------------------------------------------ no browser
def test_paths_never_leave_the_results_folder(tmp_path):
    """safe_path and the catalogue refuse '..', absolute paths and symlinks out of the folder."""
    from dashboards import data as D

    (tmp_path / "in").mkdir()
    (tmp_path / "secret.nc").write_bytes(b"x")
    (tmp_path / "in" / "link.nc").symlink_to(tmp_path / "secret.nc")
    cat = D.Catalog(tmp_path / "in")
    for bad in ("../secret.nc::baseline", "/etc/passwd::baseline", "link.nc::baseline", "a/../../secret.nc::x"):
        with pytest.raises(ValueError):
            cat.resolve(bad)
    assert cat.files() == []
    assert cat.resolve("sub/x.nc::v") == ((tmp_path / "in" / "sub" / "x.nc").resolve(), "v")


def test_speed_10k_links_server(tmp_path):
    """Server side of the 10k-link city: open + first traffic callbacks and a time step's callback finish.

    The goals (< 3 s, < 0.5 s on an idle machine) are printed; the assertion catches a regression by an order of
    magnitude, not the machine's load (CI runs two test workers on two cores)."""
    import sys

    from dashboards import ui
    from dashboards.app import create_app

    synthetic_city(tmp_path)
    t0 = time.perf_counter()
    create_app(tmp_path)
    from dashboards import data as D
    from dashboards import figures as F

    mod = next(m for k, m in list(sys.modules.items()) if k.endswith("traffic") and "pages" in k)
    key = "big_city.nc::baseline"
    sel = ui.Selection(key)
    tmax, _marks, peak = mod._slider(sel)
    assert 0 <= peak <= tmax == sel.ds.sizes["time"] - 1
    mod.series(None, key, None)
    net = D.network(sel.path, sel.ds)
    r = D.speed_ratio(sel.path, sel.ds, "baseline")
    fig = F.class_map(net, D.link_classes(r[peak], D.SPEED_BINS), D.SPEED_LABELS, F.SPEED_COLORS, "t").to_json()
    first = time.perf_counter() - t0
    t0 = time.perf_counter()
    cls = D.link_classes(D.speed_ratio(sel.path, sel.ds, "baseline")[min(peak + 1, tmax)], D.SPEED_BINS)
    lines = F.map_lines(net, cls, 5)
    import json

    from dash import Patch

    none = np.zeros(net.n, bool)
    patch = json.dumps(F.map_patch(Patch(), net, cls, D.SPEED_LABELS, none, none, F.SPEED_SEVERITY).to_plotly_json())
    step = time.perf_counter() - t0
    # the step sends the 7 layers' paths: about 25 bytes a drawn link, not the figure
    assert patch.count('"path"]') == 7 and len(patch) < 40 * net.n, len(patch)
    # a two-way street is drawn once: the synthetic grid is all two-way, so half the links are drawn
    assert sum(len(x) for x, _y, _n in lines) == 3 * net.n // 2
    assert sum(n for _x, _y, n in lines) == net.n  # the legend still counts every directed link
    print(f"server: first {first:.2f} s, step {step:.3f} s, figure {len(fig) / 1e6:.2f} MB")
    assert first < 30.0 and step < 5.0  # goals 3 s and 0.5 s on an idle machine (printed above)


def test_incomparable_runs_are_named_and_not_coloured():
    """A what-if file that ran another duration or back-end than its baseline is flagged (its deltas are no effect)."""
    import xarray as xr

    from dashboards import ui

    def ds(t_end, backend):
        return xr.Dataset(coords={"time": np.arange(300.0, t_end + 1, 300.0)},
                          attrs={"backend": backend, "clock_start": "07:00"})

    assert ui.incomparable(ds(10800, "meso"), ds(10800, "meso")) is None
    why = ui.incomparable(ds(10800, "meso"), ds(3600, "sumo"))
    assert "duration 3 h against 1 h" in why and "back-end meso against sumo" in why


def test_whatif_progress_names_each_phase(monkeypatch):
    """The what-if progress says queued / building / simulating t of T from the first poll (no blank first seconds)."""
    import sys

    from dashboards import whatif as W
    from dashboards.app import create_app

    create_app(ROOT / "nonexistent_results_folder")
    mod = next(m for k, m in list(sys.modules.items()) if k.endswith("pages.whatif"))
    j = W.Job(id="j1", variant="v1", out_path=Path("x.nc"))
    monkeypatch.setitem(W._jobs, "j1", j)
    monkeypatch.setattr(W, "queue_position", lambda _j: 1)
    texts = []
    for status, phase, t in (("queued", "", 0), ("running", "building the city, demand and routes", 0),
                             ("running", "simulating", 5400)):
        j.status, j.phase, j.sim_t, j.sim_total, j.running_since = status, phase, t, 10800.0, time.time()
        j.progress = t / 10800
        texts.append(str(mod.poll(1, "j1", 0)[2]))
    assert "queued" in texts[0] and "building the city" in texts[1] and "simulating 1:30 h of 3:00 h" in texts[2]


def test_variant_survives_reload(duo, demo_dir):
    """Reloading a page with a variant chosen keeps that variant in the picker and on the page (it was seen blank
    after a reload)."""
    start(duo, demo_dir)
    duo.wait_for_element("#kpis-traffic", timeout=20)
    duo.select_dcc_dropdown("#variant", value="baseline")
    duo.wait_for_contains_text("#variant-description", "as written", timeout=30)
    for path, sel, want in (("/", "#overview-content .card-header", "— baseline"),
                            ("/traffic", "#traffic-map .gtitle", "baseline: speed")):
        for _ in range(2):
            goto(duo, path)
            duo.driver.refresh()
            duo.wait_for_contains_text(sel, want, timeout=30)
            assert duo.find_element("#variant").text.strip().startswith("baseline"), duo.find_element("#variant").text
    no_console_errors(duo)


def test_sweep_results_open_with_intervals(duo, tmp_path):
    """A batch sweep's results file (KPIs along ``seed`` with ``_mean``/``_ci95``, variants numbered, no baseline)
    opens in the dashboard: each KPI card shows its mean with ± its 95% interval and n."""
    import xarray as xr

    rng = np.random.default_rng(3)
    vh = 100 + rng.normal(0, 2, (2, 3))
    attrs = {"units": "h", "better": "lower", "domain": "traffic", "long_name": "vehicle-hours on the road"}
    half = 4.303 * vh.std(1, ddof=1) / np.sqrt(3)  # Student t, 2 degrees of freedom
    ds = xr.Dataset({"kpi_traffic_vehicle_hours": (("variant", "seed"), vh, attrs),
                     "kpi_traffic_vehicle_hours_mean": (("variant",), vh.mean(1), attrs),
                     "kpi_traffic_vehicle_hours_ci95": (("variant",), half, {**attrs, "better": "none"}),
                     "status": (("variant", "seed"), np.full((2, 3), "ok"))},
                    coords={"variant": [0, 1], "seed": [0, 1, 2]},
                    attrs={"scenario_name": "sweep_town", "n_seeds": 3})
    (tmp_path / "sweep").mkdir()
    ds.to_netcdf(tmp_path / "sweep" / "sweep_town.nc")
    start(duo, tmp_path / "sweep")
    duo.wait_for_contains_text("#kpi-kpi_traffic_vehicle_hours", "(n=3)", timeout=30)
    text = duo.find_element("#kpi-kpi_traffic_vehicle_hours").text
    assert f"{vh[0].mean():.1f}" in text.replace(",", "") and "±" in text, text
    assert "no baseline to compare with" in text  # a sweep's variant 0 is not a baseline
    assert not duo.driver.find_elements("css selector", ".error-card")
    shot(duo, "sweep_overview")
