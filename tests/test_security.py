"""Each attack of issue 12 is refused with nothing written; the legitimate uses keep working.

Scenario files: SUMO options that name files (``--log``, ``--*-output``...), additional files with outputs,
the YAML alias bomb, paths into the scenario folder's parent. Dashboard (Flask test client, crafted
``/_dash-update-component`` POSTs): free YAML / SUMO options, an over-limit what-if, a full queue, a
foreign ``Host``, an oversized body, server paths in error cards.
"""
from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import threading
import time
import tracemalloc
from pathlib import Path

import pytest

from twin.cli import main

ROOT = Path(__file__).resolve().parent.parent

TINY = """\
name: tiny
seed: 3
city: {source: grid, grid: {nx: 3, ny: 3, spacing_m: 200}, zone_cell_m: 400}
time: {duration_s: 600, step_s: 1, record_interval_s: 300}
demand: {trips: 40}
traffic: {backend: meso}
"""


def _write(folder: Path, text: str, name: str = "s.yaml") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    p = folder / name
    p.write_text(textwrap.dedent(text))
    return p


def _files(folder: Path) -> set[Path]:
    return {p for p in folder.rglob("*")}


def _run_refused(tmp_path: Path, path: Path, capsys) -> str:
    """``run_scenario.py run`` on ``path`` exits 2, writes no results; returns stderr."""
    before = _files(tmp_path)
    out = tmp_path / "out"
    rc = main(["run", str(path), "--out", str(out), "--quiet"])
    err = capsys.readouterr().err
    assert rc == 2, err
    assert "Traceback" not in err
    assert not out.exists()
    assert _files(tmp_path) == before
    return err


# ------------------------------------------------------------------------------------ SUMO options
FILE_OPTIONS = [["--log", "{t}/x.pth"], ["--summary-output", "{t}/x.xml"], ["--tripinfo-output", "{t}/t.xml"],
                ["--weight-files", "nofile\nimport os; os.system('id > {t}/marker') #"],
                ["--error-log", "{t}/e.log"], ["--save-configuration", "{t}/c.sumocfg"], ["-c", "{t}/c.sumocfg"],
                ["--additional-files", "{t}/a.add.xml"], ["--fcd-output={t}/fcd.xml"],
                ["--meso-junction-control", "true", "--log", "{t}/x.log"],
                ["--time-to-teleport", "--log"], ["--meso-junction-control", "true; touch {t}/x"]]


@pytest.mark.parametrize("args", FILE_OPTIONS, ids=[a[-2] if len(a) > 1 else a[0][:14] for a in FILE_OPTIONS])
@pytest.mark.parametrize("connection", ["libsumo", "traci"])
def test_sumo_options_naming_files_are_refused_from_a_scenario_file(tmp_path, capsys, args, connection):
    """Every option that names a file or writes output exits 2 naming it and the allowed list; nothing is written."""
    target = tmp_path / "victim"
    target.mkdir()
    extra = [a.replace("{t}", str(target)) for a in args]
    text = TINY.replace("traffic: {backend: meso}",
                        f"traffic: {{backend: sumo, sumo: {{connection: {connection}, extra_args: {json.dumps(extra)}}}}}")
    err = _run_refused(tmp_path, _write(tmp_path / "scen", text), capsys)
    assert "traffic.sumo.extra_args" in err and "docs/sumo.md" in err
    bad = next(a for a in extra if a.split("=")[0] not in ("--meso-junction-control", "--time-to-teleport")
               or ";" in a or a == "--log")
    assert bad.split("=")[0][:40] in err or repr(bad)[:30] in err
    assert list(target.iterdir()) == []


def test_allowed_options_are_accepted_and_normalised():
    """The README's use and the --opt=value form pass; values are typed and bounded."""
    from agents.traffic.config import TrafficConfig
    from agents.traffic.sumo_options import normalise_extra_args

    cfg = TrafficConfig.model_validate({"backend": "sumo", "sumo": {
        "extra_args": ["--meso-junction-control", "true", "--time-to-teleport=120", "--routing-algorithm", "astar"]}})
    assert cfg.sumo.extra_args == ["--meso-junction-control", "true", "--time-to-teleport", "120",
                                   "--routing-algorithm", "astar"]
    for bad in (["--time-to-teleport", "1e9"], ["--time-to-teleport", "inf"], ["--routing-algorithm", "../x"],
                ["--meso-tls-penalty", "-1"], ["--max-num-vehicles", "2.5"], ["--meso-junction-control"]):
        with pytest.raises(ValueError, match=bad[0]):
            normalise_extra_args(bad)


def test_every_allowed_option_exists_in_the_installed_sumo(tmp_path):
    """The allow-list names real options of this SUMO (sumo --save-template), none of them of type FILE."""
    import xml.etree.ElementTree as ET

    from agents.traffic.sumo_options import ALLOWED_OPTIONS
    from agents.traffic.sumo_setup import check_sumo, sumo_binary

    check_sumo("libsumo")
    tmpl = tmp_path / "t.xml"
    subprocess.run([sumo_binary(), "--save-template", str(tmpl)], check=True, capture_output=True, timeout=60)
    types = {el.tag: el.get("type") for el in ET.parse(tmpl).getroot().iter() if el.get("type")}
    for opt in ALLOWED_OPTIONS:
        assert opt[2:] in types, f"{opt} is not an option of this SUMO"
        assert types[opt[2:]] not in ("FILE", "STR[]"), f"{opt} has type {types[opt[2:]]}"


def test_additional_file_with_outputs_is_refused(tmp_path, capsys):
    """An additional file beside the scenario may hold signal programs, not detectors writing files."""
    scen = tmp_path / "scen"
    scen.mkdir()
    (scen / "bad.add.xml").write_text(f'<additional><edgeData id="x" file="{tmp_path}/victim.xml"/>'
                                      f'<timedEvent type="SaveTLSStates" dest="{tmp_path}/v2.xml"/></additional>')
    text = TINY.replace("traffic: {backend: meso}",
                        "traffic: {backend: sumo, sumo: {additional_files: [bad.add.xml]}}")
    err = _run_refused(tmp_path, _write(scen, text), capsys)
    assert "traffic.sumo.additional_files[0]" in err and "edgeData" in err and "names a file" in err


def test_legitimate_sumo_run_keeps_its_files_in_a_temp_folder_removed_afterwards(tmp_path, monkeypatch):
    """extra_args [--meso-junction-control, true] runs; SUMO's files live in one temp folder, gone at the end."""
    import tempfile

    from agents.traffic.sumo_setup import check_sumo
    from twin.engine import CityTwin
    from twin.scenario import load_scenario

    check_sumo("libsumo")
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(tmp))
    seen: list[Path] = []
    import agents.traffic.sumo as S

    orig = S.new_work_dir
    monkeypatch.setattr(S, "new_work_dir", lambda: seen.append(orig()) or seen[-1])
    text = TINY.replace("traffic: {backend: meso}", "traffic: {backend: sumo, sumo: {mesosim: true, extra_args: "
                        "[--meso-junction-control, 'true']}}")
    path = _write(tmp_path / "scen", text)
    ds = CityTwin(load_scenario(path)["baseline"], path.parent).run()
    assert len(seen) == 1 and seen[0].parent == tmp
    assert not seen[0].exists(), "the run's temp folder must be removed"
    assert list(tmp.iterdir()) == []
    assert int((ds["trip_status"] == 0).sum()) > 0  # trips arrived: SUMO really ran


# ------------------------------------------------------------------------------------ YAML limits
BOMB = """\
name: bomb
city: {source: grid}
a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]
b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]
c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]
d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]
e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]
f: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]
g: &g [*f,*f,*f,*f,*f,*f,*f,*f,*f]
h: &h [*g,*g,*g,*g,*g,*g,*g,*g,*g]
i: &i [*h,*h,*h,*h,*h,*h,*h,*h,*h]
"""


def test_alias_bomb_is_refused_fast_and_small(tmp_path):
    """The 687-byte alias bomb (9^9 values) fails while loading: < 2 s and < 200 MB, in-process and as a CLI."""
    from twin.scenario import ScenarioError, load_scenario

    path = _write(tmp_path, BOMB)
    assert path.stat().st_size < 700
    tracemalloc.start()
    t0 = time.perf_counter()
    with pytest.raises(ScenarioError, match="expands to more than"):
        load_scenario(path)
    dt = time.perf_counter() - t0
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    print(f"alias bomb in-process: {dt:.3f} s, peak {peak / 1e6:.1f} MB (Python allocations)")
    assert dt < 2.0 and peak < 200e6
    # peak RSS from /proc (VmHWM belongs to this program image; ru_maxrss would carry pytest's over the exec)
    code = ("import re, sys, time; t = time.perf_counter(); from twin.cli import main; "
            f"rc = main(['run', {str(path)!r}, '--out', {str(tmp_path / 'out')!r}]); "
            "hwm = re.search(r'VmHWM:\\s*(\\d+)', open('/proc/self/status').read()).group(1); "
            "print(time.perf_counter() - t, hwm); sys.exit(rc)")
    t0 = time.perf_counter()
    r = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    wall = time.perf_counter() - t0
    inner_s, rss_kb = r.stdout.split()
    print(f"alias bomb CLI: exit {r.returncode}, {wall:.2f} s wall (main {float(inner_s):.2f} s incl. imports), "
          f"max RSS {int(rss_kb) / 1024:.0f} MB")
    assert r.returncode == 2 and "expands to more than" in r.stderr
    assert int(rss_kb) < 200 * 1024
    assert float(inner_s) < 10.0  # imports included; under 2 s on an idle machine (docs/security.md)
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("text,expect", [
    ("name: x\ncity: &a {source: grid, grid: *a}\n", "recursive"),
    ("name: x\ncity: {source: grid}\ndescription: " + "[" * 200 + "]" * 200 + "\n", "nesting deeper"),
    ("name: x\ncity: {source: grid}\nvariants:\n" + "".join(f"  v{i}: {{}}\n" for i in range(300)), "at most 200"),
], ids=["recursive alias", "deep nesting", "too many variants"])
def test_other_yaml_limits(tmp_path, capsys, text, expect):
    err = _run_refused(tmp_path, _write(tmp_path / "scen", text), capsys)
    assert expect in err


def test_messages_show_a_shortened_value(tmp_path, capsys):
    """A huge wrong value is shown in a few dozen characters, not echoed whole."""
    text = TINY.replace("demand: {trips: 40}", "demand: {trips: '" + "x" * 50_000 + "'}")
    err = _run_refused(tmp_path, _write(tmp_path / "scen", text), capsys)
    assert "demand.trips" in err and len(err) < 1000


# ------------------------------------------------------------------------------------ data paths
def test_paths_into_the_parent_folder_are_refused(tmp_path, capsys):
    """A scenario in downloads/scen/ may not read downloads/secret.csv, directly or through a symlink."""
    (tmp_path / "secret.csv").write_text("origin_zone,destination_zone,trips\nTOP-SECRET,z0_0,1\n")
    scen = tmp_path / "scen"
    scen.mkdir()
    (scen / "link.csv").symlink_to(tmp_path / "secret.csv")
    for value in ("../secret.csv", "link.csv", str(tmp_path / "secret.csv")):
        err = _run_refused(tmp_path, _write(scen, TINY.replace("demand: {trips: 40}", f"demand: {{od_file: '{value}'}}")),
                           capsys)
        assert "demand.od_file" in err and "leaves the scenario's folder" in err
        assert "TOP-SECRET" not in err


def test_data_beside_the_scenario_and_in_the_project_still_resolve(tmp_path):
    from twin.scenario import PROJECT_ROOT, resolve_data_path

    (tmp_path / "sub").mkdir()
    assert resolve_data_path("sub/x.csv", tmp_path) == (tmp_path / "sub" / "x.csv").resolve()
    assert resolve_data_path("../data/bologna/joined_tls.add.xml.gz", PROJECT_ROOT / "scenarios").is_file()


def test_outputs_dir_may_not_leave_the_project(tmp_path, capsys):
    for value in ("/tmp/elsewhere", "../../elsewhere", "~/x"):
        text = TINY + f"outputs: {{dir: '{value}'}}\n"
        err = _run_refused(tmp_path, _write(tmp_path / "scen", text), capsys)
        assert "outputs.dir" in err


def test_batch_out_in_the_file_may_not_leave_its_folder(tmp_path, capsys):
    """A scenario's batch.out of /elsewhere is refused by sweep (exit 2, nothing written); --out is the user's."""
    from twin.batch import plan_batch
    from twin.scenario import ScenarioError

    target = tmp_path / "elsewhere"
    path = _write(tmp_path / "scen", TINY + f"batch: {{out: '{target}', params: {{demand.scale: [1, 1.1]}}}}\n")
    rc = main(["sweep", str(path), "--quiet"])
    assert rc == 2 and "batch.out" in capsys.readouterr().err and not target.exists()
    with pytest.raises(ScenarioError, match="batch.out"):
        plan_batch(_write(tmp_path / "scen", TINY + "batch: {out: ../../x, params: {demand.scale: [1]}}\n"))
    assert plan_batch(path, out=tmp_path / "mine").out_dir == tmp_path / "mine"


# ------------------------------------------------------------------------------------ dashboard
@pytest.fixture(scope="module")
def results_dir(tmp_path_factory):
    """A traffic-only demo town (baseline only, 30 simulated minutes): a few seconds."""
    from dashboards.demo import make_demo_results

    d = tmp_path_factory.mktemp("sec_results") / "town"
    make_demo_results(d, domains=("traffic",), variants=(), name="town")
    return d


def _client(folder, **kw):
    from dashboards.app import create_app

    app = create_app(folder, **kw)
    c = app.server.test_client()
    assert c.get("/", headers={"Host": "127.0.0.1:8050"}).status_code == 200  # sets the callbacks up
    return app, c


def _callback(app, client, output_part: str, values: dict, host: str = "localhost:8050"):
    """POST a crafted callback request, as a browser (or a script) would, for the callback whose output key
    contains ``output_part``; ``values`` maps "id.property" to values (others: None)."""
    key = next(k for k in app.callback_map if output_part in k)
    cb = app.callback_map[key]
    outs = key.strip(".").split("...") if key.startswith("..") else [key]
    outputs = [{"id": o.rsplit(".", 1)[0], "property": o.rsplit(".", 1)[1]} for o in outs]
    ins = [{"id": i["id"], "property": i["property"], "value": values.get(f"{i['id']}.{i['property']}")}
           for i in cb["inputs"]]
    st = [{"id": s["id"], "property": s["property"], "value": values.get(f"{s['id']}.{s['property']}")}
          for s in cb["state"]]
    body = {"output": key, "outputs": outputs if key.startswith("..") else outputs[0], "inputs": ins, "state": st,
            "changedPropIds": [f"{ins[0]['id']}.{ins[0]['property']}"]}
    return client.post("/_dash-update-component", json=body, headers={"Host": host})


def _whatif_values(template: str, **fields) -> dict:
    v = {"wi-run.n_clicks": 1, "variant.value": "town.nc::baseline", "wi-template.value": template,
         "wi-name.value": "attack", "wi-em-kind.value": "ambulance"}
    v.update({f"{k.replace('_', '-')}.value": x for k, x in fields.items()})
    return v


@pytest.fixture(autouse=True)
def fresh_jobs():
    """Each test starts with no what-if jobs and runs switched on."""
    from dashboards import whatif as W

    W._jobs.clear()
    W._queue.clear()
    W.set_enabled(True)
    yield
    W.set_enabled(True)


@pytest.fixture
def no_runs(monkeypatch):
    """Record what would be run instead of running it."""
    from dashboards import whatif as W

    ran = []

    def fake(j):
        ran.append(j)
        j.status, j.finished = "done", time.time()

    monkeypatch.setattr(W, "_run", fake)
    return ran


def test_crafted_callback_with_free_yaml_and_sumo_options_is_refused(results_dir, tmp_path, no_runs):
    """The POST that used to write a .pth file: template 'custom' with backend sumo and --log is refused."""
    from dashboards import whatif as W

    before = _files(results_dir)
    app, c = _client(results_dir)
    marker = tmp_path / "x.pth"
    evil = ("traffic: {backend: sumo, sumo: {connection: traci, extra_args: "
            f"['--log', '{marker}', '--weight-files', \"nofile\\nimport os\"]}}}}")
    for template, extra in (("custom", {"wi_custom": evil}), (["demand"], {}), ("demand", {"wi_demand_scale": evil})):
        r = _callback(app, c, "wi-general.children", _whatif_values(template, **extra))
        assert r.status_code == 200, r.data[:300]
        text = r.get_data(as_text=True)
        assert any(w in text for w in ("Cannot run", "malformed", "correct the fields")), (template, text[-700:])
    assert no_runs == [] and not any(j.status in ("queued", "running") for j in W._jobs.values())
    assert not marker.exists() and _files(results_dir) == before
    assert "custom" not in W.TEMPLATES


def test_over_limit_whatif_is_refused(results_dir, no_runs):
    """Demand above ×2, a factor above 1, a start after the run's end, 1000 units: each refused, nothing queued."""
    app, c = _client(results_dir)
    cases = [("demand", {"wi_demand_scale": 5}, "between 0 and 2"),
             ("demand", {"wi_demand_scale": "nan"}, "enter a number"),
             ("closure", {"wi_closure_link": "n1_1>n2_1", "wi_closure_start": 10_000, "wi_closure_factor": 0},
              "between 0 and 29"),
             ("closure", {"wi_closure_link": "n1_1>n2_1", "wi_closure_start": 1, "wi_closure_factor": 3},
              "between 0 and 1"),
             ("closure", {"wi_closure_link": "../../etc/passwd", "wi_closure_start": 1, "wi_closure_factor": 0},
              "not a link"),
             ("station", {"wi_em_node": "n1_1", "wi_em_units": 1000}, "not simulated")]
    for template, fields, expect in cases:
        text = _callback(app, c, "wi-general.children", _whatif_values(template, **fields)).get_data(as_text=True)
        assert expect in text, (template, fields, text[:600])
    assert no_runs == []


def test_limits_hold_behind_the_form(results_dir):
    """check_limits and the per-template key list refuse what the form code would never build."""
    from dashboards import whatif as W
    from twin.scenario import resolve_variants

    from dashboards import data as D

    base = D.scenario_doc(D.load(results_dir / "town.nc"), "baseline")
    base = {k: v for k, v in base.items() if k not in ("variant", "variant_description")}
    doc = dict(base, variants={"long": {"time": {"duration_s": 7 * 86400, "record_interval_s": 300}},
                               "big": {"demand": {"scale": 3.0 * base["demand"].get("scale", 1.0)}},
                               "sumo": {"traffic": {"backend": "sumo"}}})
    v = resolve_variants(doc, results_dir / "town.yaml")
    assert any("time" in m for m in W.check_limits(v["baseline"], v["long"]))
    assert any("demand.scale" in m for m in W.check_limits(v["baseline"], v["big"]))
    assert any("back-end" in m for m in W.check_limits(v["baseline"], v["sumo"]))
    with pytest.raises(W.Invalid):
        W._keys_allowed("demand", {"traffic": {"backend": "sumo"}})


def test_queue_is_bounded_one_job_runs_and_cancel_works(results_dir, monkeypatch):
    """One job runs, MAX_QUEUED wait, the next is refused; cancel drops a waiting job and stops a running one."""
    from dashboards import whatif as W

    release = threading.Event()
    running = []

    def fake_run(j):
        running.append(j)
        j.status = "running"
        while not (release.is_set() or j.cancel.is_set()):
            time.sleep(0.01)
        j.status, j.finished = ("cancelled" if j.cancel.is_set() else "done"), time.time()

    monkeypatch.setattr(W, "_run", fake_run)
    W.set_enabled(True)
    sc, scen_dir, city, _ = W.prepare(results_dir / "town.nc", "q0", "demand", {"scale": 1.1})
    jobs = [W.submit(sc, scen_dir, city, results_dir / f"q{i}.nc") for i in range(1 + W.MAX_QUEUED)]
    for _ in range(200):
        if running:
            break
        time.sleep(0.01)
    assert running == [jobs[0]] and [j.status for j in jobs[1:]] == ["queued"] * W.MAX_QUEUED
    with pytest.raises(W.Invalid, match="already waiting behind the running one"):
        W.submit(sc, scen_dir, city, results_dir / "q_over.nc")
    assert W.cancel(jobs[1].id) and jobs[1].status == "cancelled"
    assert W.cancel(jobs[0].id)
    for _ in range(300):
        if jobs[0].status == "cancelled" and len(running) == 2:
            break
        time.sleep(0.01)
    assert jobs[0].status == "cancelled" and running[1] is jobs[2]  # the next waiting job runs, one at a time
    release.set()
    for _ in range(500):
        if all(j.status in ("done", "cancelled") for j in jobs):
            break
        time.sleep(0.01)
    assert [j.status for j in jobs] == ["cancelled", "cancelled", "done", "done"]
    assert not any((results_dir / f"q{i}.nc").exists() for i in range(4))


def test_a_real_run_over_its_wall_time_stops_and_writes_nothing(results_dir, monkeypatch):
    """A real engine run from the page is stopped at its first progress call past the wall-time limit."""
    from dashboards import whatif as W

    monkeypatch.setattr(W, "MAX_RUN_WALL_S", 0.0)
    sc, scen_dir, city, out = W.prepare(results_dir / "town.nc", "too_long", "demand", {"scale": 1.5})
    j = W.submit(sc, scen_dir, city, out)
    for _ in range(6000):
        if j.finished:
            break
        time.sleep(0.01)
    assert j.status == "cancelled" and "wall time" in j.message and not out.exists()


def test_foreign_host_and_large_body_are_refused(results_dir):
    from dashboards.safety import allowed_hosts_for

    app, c = _client(results_dir)
    assert c.get("/", headers={"Host": "localhost:8050"}).status_code == 200
    assert c.get("/", headers={"Host": "[::1]:8050"}).status_code == 200
    for host in ("evil.example:8050", "localhost.evil.example", "127.0.0.1.nip.io", ""):
        r = c.get("/", headers={"Host": host})
        assert r.status_code == 403 and b"answers only to" in r.data
        r = _callback(app, c, "wi-general.children", _whatif_values("demand", wi_demand_scale=1.1), host=host)
        assert r.status_code == 403
    r = c.post("/_dash-update-component", data=b"x" * 2_000_000, headers={"Host": "localhost",
                                                                         "Content-Type": "application/json"})
    assert r.status_code == 413
    assert "10.0.0.5" in allowed_hosts_for("10.0.0.5") and "0.0.0.0" not in allowed_hosts_for("0.0.0.0")
    assert "proxy.example" in allowed_hosts_for("0.0.0.0", ["proxy.example"])


def test_no_whatif_turns_runs_off(results_dir, no_runs):
    app, c = _client(results_dir, whatif=False)
    try:
        text = _callback(app, c, "wi-general.children", _whatif_values("demand", wi_demand_scale=1.1)).get_data(as_text=True)
        assert "turned off" in text and no_runs == []
    finally:
        from dashboards import whatif as W

        W.set_enabled(True)


def test_error_cards_show_no_server_paths(results_dir, tmp_path):
    import shutil

    folder = tmp_path / "res"
    shutil.copytree(results_dir, folder)
    (folder / "broken.nc").write_bytes(b"CDF\x01 not netCDF" * 10)
    app, c = _client(folder)
    text = _callback(app, c, "file-errors.children", {"catalog-version.data": 1, "url.pathname": "/"}).get_data(
        as_text=True)
    assert "broken.nc" in text
    assert str(tmp_path) not in text and "/tmp/" not in text


def test_serve_warns_on_public_address_and_refuses_public_debug(results_dir, capsys, monkeypatch):
    import dash

    from dashboards.app import serve

    monkeypatch.setattr(dash.Dash, "run", lambda self, **kw: None)
    assert serve(results_dir, host="0.0.0.0") == 0
    err = capsys.readouterr().err
    assert "WARNING" in err and "what-if" in err and "authenticating proxy" in err
    assert serve(results_dir, host="127.0.0.1") == 0
    assert "WARNING" not in capsys.readouterr().err
    assert serve(results_dir, host="0.0.0.0", debug=True) == 2


def test_cli_dashboard_flags(monkeypatch):
    import dashboards.app as A

    got = {}
    monkeypatch.setattr(A, "serve", lambda *a, **kw: got.update(kw) or 0)
    assert main(["dashboard", "x", "--no-whatif", "--allow-host", "proxy.example"]) == 0
    assert got["whatif"] is False and got["allow_hosts"] == ("proxy.example",)
