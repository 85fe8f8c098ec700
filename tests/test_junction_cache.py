"""The junction model of a SUMO network kept on disk (``networks.junctions.sumo_junctions``, session 11).

- A model read back from the cache equals the one read from the net, field by field (dtypes and element types too),
  and the second call does not read the net.
- A changed net file (one signal phase longer) gets another key: its model is read from the file, equals a fresh
  read of it and differs from the first model's green shares. A changed link table (speeds) gets another key too.
- A broken cache file is read past: the net is read again and the file rewritten.
"""
from __future__ import annotations

import dataclasses
import gzip
from pathlib import Path

import numpy as np
import pytest

import networks.junctions as J
from networks.sumo_net import load_sumo_net

NET = Path(__file__).resolve().parent.parent / "data" / "wildau" / "Netzmodell2.net.xml.gz"


def _same(j1: J.Junctions, j2: J.Junctions) -> list[str]:
    bad = []
    for f in dataclasses.fields(j1):
        x, y = getattr(j1, f.name), getattr(j2, f.name)
        if isinstance(x, np.ndarray):
            ok = x.dtype == y.dtype and x.shape == y.shape and x.tobytes() == y.tobytes()
        elif f.name == "mv_tl_index":
            ok = x == y and all(type(v) is type(w) for a, b in zip(x, y) for v, w in zip(a, b))
        else:
            ok = x == y and all(type(a) is type(b) for a, b in zip(x, y))
        if not ok:
            bad.append(f.name)
    return bad


def _args(net: Path):
    city = load_sumo_net(net)
    a = city.arrays
    return net, city._link_index, a.lanes, a.speed_mps


def test_cached_model_equals_the_read_one_and_is_invalidated_by_a_changed_file(tmp_path, monkeypatch):
    monkeypatch.setattr(J, "JUNCTION_CACHE_DIR", tmp_path / "jc")
    net = tmp_path / "w.net.xml.gz"
    net.write_bytes(NET.read_bytes())
    args = _args(net)
    fresh = J.read_sumo_junctions(*args)
    first = J.sumo_junctions(*args)  # read and written
    assert len(list((tmp_path / "jc").glob("w.*.npz"))) == 1
    assert not _same(fresh, first)
    reads = []
    orig = J.read_sumo_junctions
    monkeypatch.setattr(J, "read_sumo_junctions", lambda *a: reads.append(1) or orig(*a))
    cached = J.sumo_junctions(*args)
    assert not reads  # from the disk, not the net
    assert not _same(fresh, cached)
    # the file changes: one signal phase 36 s -> 60 s
    text = gzip.decompress(net.read_bytes()).decode()
    assert text.count('<phase duration="36"') >= 1
    net.write_bytes(gzip.compress(text.replace('<phase duration="36"', '<phase duration="60"', 1).encode()))
    changed = J.sumo_junctions(*args)
    assert reads == [1]  # another key: read from the net
    monkeypatch.setattr(J, "read_sumo_junctions", orig)
    assert not _same(J.read_sumo_junctions(*args), changed)
    assert not np.array_equal(changed.mv_green, fresh.mv_green)
    assert len(list((tmp_path / "jc").glob("w.*.npz"))) == 2
    # other link speeds: another key as well
    assert J.junction_cache_key(net, args[1], args[2], args[3] * 1.1) != J.junction_cache_key(*args)


@pytest.mark.parametrize("damage", ["garbage", "truncated"])
def test_a_broken_cache_file_is_read_past(tmp_path, monkeypatch, damage):
    """Garbage bytes, or a zip cut in half (its central directory lost), are read past, not raised."""
    monkeypatch.setattr(J, "JUNCTION_CACHE_DIR", tmp_path / "jc")
    args = _args(NET)
    J.sumo_junctions(*args)
    (f,) = (tmp_path / "jc").glob("*.npz")
    data = f.read_bytes()
    f.write_bytes(b"not a zip file" if damage == "garbage" else data[: len(data) // 2])
    j = J.sumo_junctions(*args)
    assert not _same(J.read_sumo_junctions(*args), j)
    assert f.stat().st_size > 1000  # rewritten


@pytest.mark.parametrize("where", [None, "file"])
def test_no_cache_dir_or_an_unwritable_one_still_reads_the_net(tmp_path, monkeypatch, where):
    blocker = tmp_path / "blocker"
    blocker.write_text("a file where the cache folder would go")
    monkeypatch.setattr(J, "JUNCTION_CACHE_DIR", None if where is None else blocker / "jc")
    args = _args(NET)
    assert not _same(J.read_sumo_junctions(*args), J.sumo_junctions(*args))
