"""Crafted callback requests with values of the wrong type (a script, not the page, sends them) get an answer,
not a server error, and nothing is written (session 8 audit: these four callbacks answered HTTP 500)."""
from __future__ import annotations

import pytest

from test_security import _callback, _client


@pytest.fixture(scope="module")
def results_dir(tmp_path_factory):
    from dashboards.demo import make_demo_results

    d = tmp_path_factory.mktemp("crafted") / "town"
    make_demo_results(d, domains=("traffic",), variants=(), name="town")
    return d


@pytest.fixture(scope="module")
def client(results_dir):
    return _client(results_dir)


@pytest.mark.parametrize("output,field,value", [
    ("traffic-link.data", "traffic-map.clickData", 5),
    ("traffic-link.data", "traffic-map.clickData", {"points": [{"curveNumber": 5, "pointIndex": "x"}]}),
    ("traffic-link.data", "traffic-map.clickData", {"points": "x"}),
    ("traffic-detail-box.children", "traffic-link.data", True),
    ("traffic-detail-box.children", "traffic-link.data", -3),
    ("traffic-time.value@", "traffic-time.max", -1),
    ("traffic-time.value@", "traffic-time.value", [1, 2]),
    ("compare-a.options", "variant.options", 5),
    ("compare-a.options", "variant.options", [{"value": 3}, "x"]),
])
def test_wrong_types_get_an_answer_not_a_server_error(results_dir, client, output, field, value):
    before = sorted(p.name for p in results_dir.rglob("*"))
    app, c = client
    r = _callback(app, c, output, {"variant.value": "town.nc::baseline", field: value})
    assert r.status_code in (200, 204), (output, field, r.status_code)
    assert sorted(p.name for p in results_dir.rglob("*")) == before


def test_time_step_still_steps_from_a_float_slider_value(client):
    """The type guard keeps a whole-number float (a slider may send 3.0): the step goes to 4, wrapping at max."""
    import json

    app, c = client
    for t, tmax, want in ((3.0, 10, 4), (3, 10, 4), (10, 10, 0)):
        r = _callback(app, c, "traffic-time.value@", {"traffic-time.value": t, "traffic-time.max": tmax,
                                                      "traffic-step.n_clicks": 1})
        assert r.status_code == 200 and json.loads(r.data)["response"]["traffic-time"]["value"] == want
