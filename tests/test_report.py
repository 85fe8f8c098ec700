"""The static report: one self-contained HTML file, plotly.js embedded once, KPIs with deltas, every domain."""
from __future__ import annotations

import pytest


@pytest.fixture(scope="module")
def demo_file(tmp_path_factory):
    from dashboards.demo import make_demo_results

    return make_demo_results(tmp_path_factory.mktemp("rep"), variants=("closure",))


def test_report_self_contained_and_complete(demo_file, tmp_path):
    """plotly.js appears once, no external scripts or stylesheets, KPIs and every domain's section are there."""
    from dashboards.report import _plotly_gz, write_report

    out = write_report(demo_file, tmp_path / "report.html")
    text = out.read_text(encoding="utf-8")
    assert text.count(_plotly_gz()[:400]) == 1  # plotly.js once (gzip + base64, unpacked in the browser)
    # the summary comes first, in sentences with numbers and units, and the closed link shows on the maps
    assert text.index("<h2>Summary</h2>") < text.index("Key figures") < text.index("<h2>Run</h2>")
    assert "closure</b>" in text and ">nan" not in text.lower() and "nan<" not in text.lower()
    assert "closed in closure" in text
    assert "<script src=" not in text and "<link " not in text
    for s in ("Key figures", "vehicle-hours", "Traffic", "EV charging", "Crowd", "Emergency", "closure", "pts"):
        assert s in text, s
    assert "not simulated" not in text
    assert text.count('class="plotly-graph-div"') >= 10
    assert out.stat().st_size < 5e6


def test_report_says_when_a_domain_was_not_simulated(tmp_path):
    """A traffic-only file: the EV, crowd and emergency sections say they were not simulated."""
    from dashboards.demo import make_demo_results
    from dashboards.report import write_report

    p = make_demo_results(tmp_path, domains=("traffic",), variants=(), name="cars")
    text = write_report(p, tmp_path / "r.html").read_text(encoding="utf-8")
    for d in ("EV charging", "Crowd", "Emergency"):
        assert f"{d} was not simulated in this scenario" in text
