"""Screenshots of every dashboard page for chosen variants of a results folder, and of its report, in headless Chromium.

For looking at what an official sees (issue 16, point 8) and refreshing docs/img. Needs /usr/bin/chromium and
chromedriver (.ci/install-browser.sh) and selenium (the test extra). Serves the app on 127.0.0.1 (a free port).

    .venv/bin/python -m dashboards.screenshots results/bad_hersfeld OUT_DIR [--variant V ...] [--report FILE]
"""
from __future__ import annotations

import argparse
import logging
import shutil
import sys
import threading
import time
from pathlib import Path

# page path, an element that is there once the page has drawn its content
PAGES = [("/", "#overview-content .card"), ("/traffic", "#traffic-map .shapelayer path"),
         ("/ev", "#ev-content .main-svg, #ev-content .alert"),
         ("/crowd", "#crowd-heatmap .main-svg, #crowd-missing .alert"),
         ("/emergency", "#emergency-content .main-svg, #emergency-content .alert"),
         ("/compare", "#compare-kpis table"), ("/whatif", "#wi-source"), ("/calibration", "#calibration-content *")]


def _driver(width: int = 1400, height: int = 1100):
    from selenium import webdriver
    from selenium.webdriver.chrome.options import Options

    opts = Options()
    opts.binary_location = shutil.which("chromium") or "/usr/bin/chromium"
    for a in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
              "--disable-component-update", f"--window-size={width},{height}", "--enable-unsafe-swiftshader",
              "--hide-scrollbars"):
        opts.add_argument(a)
    drv = webdriver.Chrome(options=opts)
    drv.set_window_size(width, height)
    return drv


def _wait(fn, timeout: float = 90.0):
    t_end = time.monotonic() + timeout
    while time.monotonic() < t_end:
        try:
            if fn():
                return True
        except Exception:  # an element replaced while reading it: try again
            pass
        time.sleep(0.2)
    return False


def _full_page(drv, path: Path, width: int = 1400, max_h: int = 5000) -> Path:
    """The whole page (at most ``max_h`` px) through Chromium's own full-page capture (CDP), not the window."""
    import base64

    size = drv.execute_cdp_cmd("Page.getLayoutMetrics", {})["cssContentSize"]
    h = min(int(size["height"]), max_h)
    shot = drv.execute_cdp_cmd("Page.captureScreenshot", {
        "format": "png", "captureBeyondViewport": True,
        "clip": {"x": 0, "y": 0, "width": width, "height": h, "scale": 1}})
    path.write_bytes(base64.b64decode(shot["data"]))
    return path


def _choose(drv, variant: str) -> None:
    """Pick ``variant`` (its label in the navbar's picker)."""
    drv.find_element("css selector", "#variant").click()
    _wait(lambda: drv.find_elements("css selector", ".dash-dropdown-option"), 20)
    for o in drv.find_elements("css selector", ".dash-dropdown-option"):
        if o.text.strip().endswith(variant) or o.text.strip() == variant:
            o.click()
            return
    raise SystemExit(f"error: no variant {variant!r} in the picker")


def shoot(results: Path, out: Path, variants: list[str], report: Path | None = None) -> list[Path]:
    """Every page for each of ``variants`` (picker labels), then the report; returns the PNG files written."""
    from werkzeug.serving import make_server

    from dashboards.app import create_app

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    out.mkdir(parents=True, exist_ok=True)
    app = create_app(results)
    srv = make_server("127.0.0.1", 0, app.server, threaded=True)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{srv.server_port}"
    drv = _driver()
    shots = []
    try:
        drv.get(base + "/")
        _wait(lambda: drv.find_elements("css selector", "#overview-content .card"))
        for v in variants:
            drv.find_element("css selector", "#nav-overview").click()
            _choose(drv, v)
            for page, ready in PAGES:
                nav = "#nav-" + (page.strip("/") or "overview").replace("whatif", "what-if")
                links = drv.find_elements("css selector", nav)
                if links:
                    links[0].click()
                else:
                    drv.get(base + page)
                ok = _wait(lambda: drv.find_elements("css selector", ready))
                time.sleep(2.5)  # the page's later charts (series, detail) and plotly's transitions
                name = f"{(page.strip('/') or 'overview')}_{v}.png"
                shots.append(_full_page(drv, out / name))
                print(f"{name}: {'drawn' if ok else 'NOT READY after 90 s'}", flush=True)
        if report is not None:
            drv.get(report.resolve().as_uri())
            ok = _wait(lambda: drv.execute_script("return document.body.dataset.drawn === 'yes'"), 120)
            n = drv.execute_script("return document.querySelectorAll('.plotly-graph-div').length")
            # drawn: a trace, a path shape (maps), a heatmap image, or a message (annotation) in its SVG
            empty = drv.execute_script("""return Array.from(document.querySelectorAll('.plotly-graph-div')).filter(
                d => !d.querySelector('.main-svg .trace, .main-svg .shapelayer path, .main-svg image, .annotation')
            ).length""")
            print(f"report: {'drawn' if ok else 'NOT DRAWN'}, {n} charts, {empty} with nothing drawn", flush=True)
            shots.append(_full_page(drv, out / "report_top.png", max_h=2600))
            shots.append(_full_page(drv, out / "report_full.png", max_h=30000))
    finally:
        drv.quit()
        srv.shutdown()
    return shots


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("results", type=Path)
    ap.add_argument("out", type=Path)
    ap.add_argument("--variant", action="append", help="picker label (default: baseline)")
    ap.add_argument("--report", type=Path)
    a = ap.parse_args(argv)
    shoot(a.results, a.out, a.variant or ["baseline"], a.report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
