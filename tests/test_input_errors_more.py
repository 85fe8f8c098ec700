"""Hostile and malformed input found by the new-user audit (session 8): each is refused by `validate` and `run`
with exit 2, one line naming the file, the key and what is allowed, and nothing written."""
from __future__ import annotations

import os

import pytest
import yaml

from conftest import write_scenario as _scenario, assert_refused as _refused

from twin.cli import main

EMERGENCY = {"stations": [{"name": "s1", "node": "n0_0", "kind": "ambulance",
                           "units": [{"type": "ambulance", "count": 1}]},
                          {"name": "f1", "node": "n3_3", "kind": "fire", "units": [{"type": "fire", "count": 1}]}],
             "hospitals": [{"name": "h", "node": "n2_2"}], "generate": False}
SQUARE = [[0, 0], [40, 0], [40, 40], [0, 40]]


# --------------------------------------------------------------------- files named by domain sections
@pytest.mark.parametrize("section,value", [
    ({"emergency": {**EMERGENCY, "calls_file": "{v}"}}, "emergency.calls_file"),
    ({"ev": {"session_params": "{v}"}}, "ev.session_params"),
    ({"crowd": {"venues": [{"name": "v", "file": "{v}"}]}}, "crowd.venues[0].file"),
])
@pytest.mark.parametrize("where", ["/etc/hostname", "../../../../../../etc/hostname", "link", "missing.csv"])
def test_domain_data_files_obey_the_path_rule_at_validation(tmp_path, capsys, section, value, where):
    """Calls, EV session parameters and venue files were read only while running (exit 1, or a file outside
    the scenario's folder read at all): now validation refuses a path out of the folder (symlinks followed)
    and a missing file, naming the key."""
    folder = tmp_path / "scen"
    folder.mkdir()
    if where == "link":
        os.symlink("/etc/hostname", folder / "link")
    text = yaml.safe_dump(section).replace("'{v}'", repr(where)).replace("{v}", where)
    path = _scenario(folder, yaml.safe_load(text))
    why = "file not found" if where == "missing.csv" else "path leaves the scenario's folder"
    _refused(path, capsys, (value, why), commands=("validate",))


# --------------------------------------------------------------------- empty demand files
@pytest.mark.parametrize("extra,fname,text,words", [
    ({"demand": {"trips_file": "t.csv"}}, "t.csv", "depart_s,origin,destination\n",
     ("demand.trips_file: t.csv", "no trips")),
    ({"demand": {"od_file": "od.csv"}}, "od.csv", "origin_zone,destination_zone,trips\n",
     ("demand.od_file: od.csv", "no rows")),
    ({"demand": {"od_file": "od.csv"}}, "od.csv", "origin_zone,destination_zone,trips\nz0_0,z1_1,0\n",
     ("demand.od_file: od.csv", "0 trips in all 1 rows")),
    ({"emergency": {**EMERGENCY, "calls_file": "c.csv"}}, "c.csv", "time_s,type,node\n",
     ("emergency.calls_file: c.csv", "no calls")),
])
def test_demand_files_without_demand_are_refused(tmp_path, capsys, extra, fname, text, words):
    """A header-only trips file validated and then failed the run (exit 1); a header-only or all-zero OD file
    and a header-only calls file ran with no demand at all (exit 0)."""
    path = _scenario(tmp_path / "scen", extra, {fname: text})
    _refused(path, capsys, words)


# --------------------------------------------------------------------- contents only the run used to read
@pytest.mark.parametrize("row,words", [
    ("10,alien,n1_1", ("emergency.calls_file: c.csv", "row 2: type 'alien'", "use one of")),
    ("10,emergency,zz", ("emergency.calls_file: c.csv", "row 2: node 'zz'", "not a node of the city")),
])
def test_calls_file_rows_are_checked_against_the_city_before_running(tmp_path, capsys, row, words):
    """An unknown incident type or node in a calls file failed the run (exit 1, 'run failed: ValueError: <abs
    path>: ...'); now validation says it, without the server path."""
    path = _scenario(tmp_path / "scen", {"emergency": {**EMERGENCY, "calls_file": "c.csv"}},
                     {"c.csv": f"time_s,type,node\n{row}\n"})
    _refused(path, capsys, words)
    assert str(tmp_path) not in capsys.readouterr().err


@pytest.mark.parametrize("text,words", [
    ('{"a": 1}', "no 'classes' object"),
    ('{"classes": {"other": {}}}', "class 'boulder_7kW' (ev.dwell_class / ev.dc_class) is not in the file"),
    ('{"classes": {"boulder_7kW": {"hourly_share": [1, 2]}, "dundee_50kW": {}}}', "hourly_share — 24 finite"),
])
def test_ev_session_parameters_are_checked_before_running(tmp_path, capsys, text, words):
    """A session-parameter file without the fitted classes failed the run with a bare KeyError: 'classes'."""
    path = _scenario(tmp_path / "scen", {"ev": {"session_params": "p.json"}}, {"p.json": text})
    _refused(path, capsys, ("ev.session_params: p.json", words))


def test_ev_class_missing_from_the_shipped_parameters_is_refused(tmp_path, capsys):
    path = _scenario(tmp_path / "scen", {"ev": {"dwell_class": "nope"}})
    _refused(path, capsys, ("ev.dwell_class: 'nope'", "not a fitted class", "boulder_7kW"), commands=("validate",))


@pytest.mark.parametrize("fname,text,words", [
    ("v.geojson", '{"type": "Feature"}', "missing 'geometry'"),
    ("v.geojson", '{"type": "Feature", "geometry": {"type": "Polygon"}}', "missing 'coordinates'"),
    ("v.geojson", '{"type": "FeatureCollection", "features": []}', "no walkable Polygon"),
    ("v.geojson", '{"type": "Feature", "geometry": {"type": "Polygon", "coordinates": [["a", 1]]}}',
     "could not convert"),
    ("v.wkt", "POLYGON((0 0, 1 x))", "not a usable venue"),
])
def test_broken_venue_files_are_refused_before_running(tmp_path, capsys, fname, text, words):
    """Venue files were checked only as 'a JSON object' / 'starts with POLYGON', then failed the run with a
    bare KeyError or IndexError (exit 1)."""
    path = _scenario(tmp_path / "scen", {"crowd": {"venues": [{"name": "v", "file": fname}]}}, {fname: text})
    _refused(path, capsys, (f"crowd.venues[0].file: {fname}", words))


def test_a_good_venue_file_and_calls_file_still_validate(tmp_path, capsys):
    """The new checks do not refuse good files."""
    gj = ('{"type": "FeatureCollection", "features": [{"type": "Feature", "properties": {"role": "walkable"}, '
          '"geometry": {"type": "Polygon", "coordinates": [%s]}}, {"type": "Feature", "properties": '
          '{"name": "gate", "width_m": 2}, "geometry": {"type": "Point", "coordinates": [20, 0]}}]}' % (SQUARE,))
    path = _scenario(tmp_path / "scen", {"crowd": {"venues": [{"name": "v", "file": "v.geojson"}]},
                                         "emergency": {**EMERGENCY, "calls_file": "c.csv"}},
                     {"v.geojson": gj, "c.csv": "time_s,type,node\n10,emergency,n1_1\n"})
    assert main(["validate", str(path)]) == 0, capsys.readouterr().err
