"""Broken data files are refused by validate and run before anything is built: exit 2, one line naming the
scenario file, the key, the data file and what is wrong; no traceback; nothing written (issue 15)."""
from __future__ import annotations

import gzip
from pathlib import Path

import pytest
import yaml

from twin.cli import main

NET = ('<?xml version="1.0"?>\n<net version="1.9">\n  <location netOffset="0,0" convBoundary="0,0,100,0" '
       'origBoundary="0,0,100,0" projParameter="!"/>\n'
       '  <edge id="a" from="1" to="2" priority="1">\n'
       '    <lane id="a_0" index="0" speed="13.9" length="100" shape="0,0 100,0"/>\n  </edge>\n'
       '  <junction id="1" type="priority" x="0" y="0" incLanes="" intLanes="" shape="0,0"/>\n'
       '  <junction id="2" type="priority" x="100" y="0" incLanes="a_0" intLanes="" shape="100,0"/>\n</net>\n')
OSM_OK = ('<?xml version="1.0"?>\n<osm version="0.6">\n <node id="1" lat="50.0" lon="9.0"/>\n'
          ' <node id="2" lat="50.001" lon="9.0"/>\n <way id="5"><nd ref="1"/><nd ref="2"/>'
          '<tag k="highway" v="residential"/></way>\n</osm>\n')
XXE = ('<?xml version="1.0"?>\n<!DOCTYPE osm [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>\n'
       '<osm><node id="1" lat="50" lon="9"><tag k="name" v="&xxe;"/></node></osm>\n')
LAUGHS = ('<?xml version="1.0"?>\n<!DOCTYPE lolz [<!ENTITY lol "lol">'
          + "".join(f'<!ENTITY lol{i} "{("&lol" + (str(i - 1) if i > 1 else "") + ";") * 10}">' for i in range(1, 10))
          + ']>\n<osm><node id="1" lat="50" lon="9"><tag k="name" v="&lol9;"/></node></osm>\n')


def _gz(data: bytes) -> bytes:
    return gzip.compress(data)


# (kind, city/demand keys to set with {f} = the data file, file name, file bytes, words the message must hold)
CASES = [
    ("net: garbage behind a gzip header", {"city": {"source": "sumo", "path": "{f}"}}, "n.net.xml.gz",
     b"\x1f\x8b\x08\x00" + b"garbage" * 20, "gzip"),
    ("net: plain text named .gz", {"city": {"source": "sumo", "path": "{f}"}}, "n.net.xml.gz",
     b"this is not a network\n", "not well-formed XML"),
    ("net: truncated .net.xml", {"city": {"source": "sumo", "path": "{f}"}}, "n.net.xml",
     NET.encode()[:300], "truncated"),
    ("net: truncated .net.xml.gz", {"city": {"source": "sumo", "path": "{f}"}}, "n.net.xml.gz",
     _gz(NET.encode())[:-30], "gzip"),
    ("net: empty", {"city": {"source": "sumo", "path": "{f}"}}, "n.net.xml", b"", "empty"),
    ("net: no edges", {"city": {"source": "sumo", "path": "{f}"}}, "n.net.xml",
     b'<?xml version="1.0"?><net version="1.9"></net>', "no road edges"),
    ("net: a README", {"city": {"source": "sumo", "path": "{f}"}}, "README.md",
     b"# My city\n\nSome words & more.\n", "not well-formed XML"),
    ("osm: XXE", {"city": {"source": "osm", "path": "{f}"}}, "x.osm", XXE.encode(), "entity"),
    ("osm: billion laughs", {"city": {"source": "osm", "path": "{f}"}}, "x.osm", LAUGHS.encode(), "entity"),
    ("osm: no roads", {"city": {"source": "osm", "path": "{f}"}}, "x.osm",
     OSM_OK.replace('k="highway"', 'k="building"').encode(), "no roads"),
    ("osm: lat abc", {"city": {"source": "osm", "path": "{f}"}}, "x.osm",
     OSM_OK.replace('lat="50.0"', 'lat="abc"').encode(), "lat='abc'"),
    ("od: Latin-1", {"demand": {"od_file": "{f}"}}, "od.csv",
     "origin_zone,destination_zone,trips\nMünster,z1,3\n".encode("latin-1"), "not UTF-8"),
    ("buildings: garbage", {"city": {"source": "grid", "buildings": "{f}"}}, "b.csv",
     bytes(range(256)) * 4, "not UTF-8"),
    ("pois: truncated", {"city": {"source": "grid", "pois": "{f}"}}, "p.osm", OSM_OK.encode()[:120], "truncated"),
    ("od: NaN trips", {"demand": {"od_file": "{f}"}}, "od.csv",
     b"origin_zone,destination_zone,trips\nz0_0,z0_0,nan\n", "finite"),
    ("od: inf trips", {"demand": {"od_file": "{f}"}}, "od.csv",
     b"origin_zone,destination_zone,trips\nz0_0,z0_0,inf\n", "finite"),
    ("od: 1e15 trips", {"demand": {"od_file": "{f}"}}, "od.csv",
     b"origin_zone,destination_zone,trips\nz0_0,z0_0,1e15\n", "allowed 0 to 2e+07"),
    ("trips: depart abc", {"demand": {"trips_file": "{f}"}}, "t.csv",
     b"depart_s,origin,destination\nabc,n0_0,n1_1\n", "not a number"),
    ("trips: depart NaN", {"demand": {"trips_file": "{f}"}}, "t.csv",
     b"depart_s,origin,destination\nnan,n0_0,n1_1\n", "finite"),
    ("trips: depart 1e400", {"demand": {"trips_file": "{f}"}}, "t.csv",
     b"depart_s,origin,destination\n1e400,n0_0,n1_1\n", "finite"),
    ("trips: truncated .rou.xml", {"demand": {"trips_file": "{f}"}}, "t.rou.xml",
     b'<routes>\n <trip id="a" depart="0" from="n0_0>n1_0" to="n1_0>n2_0"/>\n <trip id="b" dep', "truncated"),
    ("calls: not CSV", {"emergency": {"stations_from_osm": False, "hospitals_from_osm": False,
                                      "stations": [{"name": "A", "node": "n0_0",
                                                    "units": [{"type": "ambulance", "count": 1}]}],
                                      "incident_types": {"medical": {"rate_per_day": 1}},
                                      "calls_file": "{f}"}},
     "calls.csv", b"\x89PNG\r\n\x1a\n" + bytes(range(200)), "not UTF-8"),
    ("calls: wrong columns", {"emergency": {"stations_from_osm": False, "hospitals_from_osm": False,
                                            "stations": [{"name": "A", "node": "n0_0",
                                                          "units": [{"type": "ambulance", "count": 1}]}],
                                            "incident_types": {"medical": {"rate_per_day": 1}},
                                            "calls_file": "{f}"}},
     "calls.csv", b"just some words\nand more\n", "need time_s"),
]


def _fill(obj, fname: str):
    if isinstance(obj, dict):
        return {k: _fill(v, fname) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_fill(v, fname) for v in obj]
    return fname if obj == "{f}" else obj


def write_scenario(tmp_path: Path, keys: dict, fname: str, data: bytes) -> Path:
    (tmp_path / fname).write_bytes(data)
    doc = {"name": "broken", "seed": 1, "city": {"source": "grid", "grid": {"nx": 3, "ny": 3}},
           "time": {"duration_s": 600, "record_interval_s": 300}, "outputs": {"report": False}}
    for k, v in _fill(keys, fname).items():
        doc[k] = {**doc.get(k, {}), **v} if isinstance(v, dict) else v
    p = tmp_path / "s.yaml"
    p.write_text(yaml.safe_dump(doc))
    return p


@pytest.mark.parametrize("kind,keys,fname,data,words", CASES, ids=[c[0] for c in CASES])
def test_broken_data_file_is_refused_by_validate(tmp_path, capsys, kind, keys, fname, data, words):
    path = write_scenario(tmp_path, keys, fname, data)
    assert main(["validate", str(path)]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1, err
    key = next(iter(keys)) if "city" not in keys else "city."
    assert lines[0].startswith(f"{path}: "), err  # scenario file
    assert key.rstrip(".") in lines[0] and fname in lines[0] and words in lines[0], err


@pytest.mark.parametrize("case", [CASES[0], CASES[7], CASES[14], CASES[20]], ids=lambda c: c[0])
def test_run_refuses_before_simulating_and_writes_nothing(tmp_path, capsys, case):
    kind, keys, fname, data, words = case
    path = write_scenario(tmp_path, keys, fname, data)
    out = tmp_path / "out"
    assert main(["run", str(path), "--out", str(out), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert words in err and "Traceback" not in err
    assert not out.exists()


def test_good_small_files_pass(tmp_path, capsys):
    """The checks do not refuse good files: an OD file and a CSV trips file on the grid validate."""
    path = write_scenario(tmp_path, {"demand": {"od_file": "{f}"}}, "od.csv",
                          b"origin_zone,destination_zone,trips\nz0_0,z0_0,3\n")
    assert main(["validate", str(path)]) == 0, capsys.readouterr().err
    path = write_scenario(tmp_path, {"demand": {"trips_file": "{f}"}}, "t.csv",
                          b"depart_s,origin,destination\n10,n0_0,n1_1\n5000,n0_0,n2_2\n")
    assert main(["validate", str(path)]) == 0
    err = capsys.readouterr()
    # the trip departing after the end is reported, not dropped silently
    assert "1 of 2 trips depart outside the demand window" in err.out + err.err


def test_shipped_data_files_pass_the_checks():
    """Every shipped network, POI, buildings and trips file passes (no false alarms on real data)."""
    from twin.data_checks import scenario_data_errors
    from twin.scenario import load_document, load_scenario

    root = Path(__file__).resolve().parent.parent / "scenarios"
    checked = 0
    for p in sorted(root.glob("*.yaml")) + sorted((root / "examples").glob("*.yaml")):
        if "city" not in load_document(p):  # a snippet to copy into a scenario (examples/ev.yaml)
            continue
        assert scenario_data_errors(load_scenario(p), p.parent) == [], p
        checked += 1
    assert checked >= 5
