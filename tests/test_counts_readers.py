"""Count readers: every format maps to the city's links; bad counts are refused with file, row and id."""
from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pytest

from agents.traffic.counts import CountsError, read_counts
from networks import synthetic

L1, L2 = "n0_0>n1_0", "n1_0>n2_0"


@pytest.fixture(scope="module")
def city():
    return synthetic.grid(3, 3, 200.0)


def _w(tmp_path: Path, name: str, text: str) -> Path:
    p = tmp_path / name
    if name.endswith(".gz"):
        p.write_bytes(gzip.compress(text.encode()))
    else:
        p.write_text(text)
    return p


def test_csv_link_and_edge_columns_with_clock_times(city, tmp_path):
    p = _w(tmp_path, "c.csv", f"link,start,end,count,vehicle_class\n{L1},16:00,17:00,120,car\n{L1},17:00,18:00,80,car\n"
                              f"{L2},57600,61200,45,truck\n")
    c = read_counts(p, city)
    assert len(c) == 3 and c.link.tolist() == [city.link_index(L1)] * 2 + [city.link_index(L2)]
    assert c.start_s.tolist() == [57600.0, 61200.0, 57600.0] and c.count.tolist() == [120, 80, 45]
    assert c.vclass == ["car", "car", "truck"]
    assert np.allclose(c.hourly, [120, 80, 45])
    q = _w(tmp_path, "e.csv", f"edge,start,end,count\n{L2},0,1800,30\n")
    assert read_counts(q, city).hourly.tolist() == [60.0]


def test_edgedata_xml_uses_the_chosen_attribute(city, tmp_path):
    p = _w(tmp_path, "ed.xml.gz", f"<meandata><interval id='a' begin='0' end='3600'><edge id='{L1}' entered='12' "
                                  f"left='10'/><edge id='{L2}' entered='7' left='9'/></interval></meandata>")
    assert read_counts(p, city).count.tolist() == [12, 7]
    assert read_counts(p, city, attribute="left").count.tolist() == [10, 9]


def test_cadyts_measurements(city, tmp_path):
    p = _w(tmp_path, "m.xml", f"<measurements><singlelink link='{L1}' start='53900' end='61000' value='202' "
                              f"stddev='8' type='COUNT_VEH'/></measurements>")
    c = read_counts(p, city)
    assert c.label == [L1] and c.count[0] == 202 and c.end_s[0] - c.start_s[0] == 7100


def test_dfrouter_flows_with_detectors_sum_lanes_and_classes(city, tmp_path):
    det = _w(tmp_path, "det.xml", f"<detectors><detectorDefinition id='d1' lane='{L1}_0' pos='0'/>"
                                  f"<detectorDefinition id='d2' lane='{L1}_1' pos='0'/>"
                                  f"<detectorDefinition id='d3' lane='{L2}_0' pos='0'/></detectors>")
    flows = _w(tmp_path, "f.csv", "Detector;Time;qPKW;qLKW;vPKW;vLKW\nd1;0;10;2;50;40\nd2;0;5;0;50;0\n"
                                  "d3;0;7;1;50;40\nd3;15;3;0;50;0\n")
    c = read_counts(flows, city, detectors=det, time_offset_s=3600, interval_s=900)
    got = {(lab, s): n for lab, s, n in zip(c.label, c.start_s, c.count)}
    assert got == {(L1, 3600.0): 17.0, (L2, 3600.0): 8.0, (L2, 4500.0): 3.0}  # Time in minutes
    csv_det = _w(tmp_path, "d.csv", "detector,start,end,count\nd3,0,600,9\n")
    assert read_counts(csv_det, city, detectors=det).label == [L2]


def test_turn_counts_name_both_links(city, tmp_path):
    p = _w(tmp_path, "t.xml", f"<data><interval begin='0' end='3600'><edgeRelation from='{L1}' to='{L2}' count='33'/>"
                              f"</interval></data>")
    c = read_counts(p, city)
    assert c.label == [f"{L1}>{L2}"] and c.prev_link[0] == city.link_index(L1) and c.link[0] == city.link_index(L2)
    bad = _w(tmp_path, "t2.xml", f"<data><interval begin='0' end='3600'><edgeRelation from='{L2}' to='{L1}' "
                                 f"count='3'/></interval></data>")
    with pytest.raises(CountsError, match="not a turn"):
        read_counts(bad, city)


@pytest.mark.parametrize("row,words", [
    (f"{L1},0,3600,-5", ["row 2", "count", "-5", ">= 0"]),
    (f"{L1},0,3600,nan", ["row 2", "count", "nan", "finite"]),
    ("nowhere,0,3600,5", ["row 2", "'nowhere'", "not a link"]),
    (f"{L1},3600,0,5", ["row 2", "end must be after start"]),
])
def test_bad_rows_name_file_row_and_id(city, tmp_path, row, words):
    p = _w(tmp_path, "bad.csv", f"link,start,end,count\n{row}\n")
    with pytest.raises(CountsError) as ei:
        read_counts(p, city)
    msg = str(ei.value)
    assert "bad.csv" in msg and all(w in msg for w in words), msg


def test_overlapping_intervals_refused_but_other_classes_may_share_them(city, tmp_path):
    p = _w(tmp_path, "o.csv", f"link,start,end,count\n{L1},0,3600,5\n{L1},1800,5400,5\n")
    with pytest.raises(CountsError, match="row 3.*overlaps"):
        read_counts(p, city)
    ok = _w(tmp_path, "ok.csv", f"link,start,end,count,vehicle_class\n{L1},0,3600,5,car\n{L1},0,3600,2,truck\n")
    assert len(read_counts(ok, city)) == 2


def test_missing_columns_and_unknown_detector(city, tmp_path):
    with pytest.raises(CountsError, match="need link"):
        read_counts(_w(tmp_path, "x.csv", "where,when,count\na,0,1\n"), city)
    det = _w(tmp_path, "det.xml", f"<detectors><detectorDefinition id='d1' lane='{L1}_0'/></detectors>")
    with pytest.raises(CountsError, match="row 2: detector 'zz'"):
        read_counts(_w(tmp_path, "f.csv", "Detector;Time;qPKW;qLKW\nzz;0;1;0\n"), city, detectors=det)
