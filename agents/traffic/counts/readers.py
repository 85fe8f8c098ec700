"""Read observed traffic counts and map them to the city's links.

Formats (detected from the file's content):

- CSV ``link`` (or ``edge``, or ``detector`` with a detector file), ``start``, ``end``, ``count``, optional
  ``vehicle_class``; times are clock time, seconds of the day or ``HH:MM[:SS]``;
- SUMO edgeData XML (``<interval begin end><edge id entered/></interval>``; the attribute is selectable);
- Cadyts measurements (``<singlelink link start end value stddev/>``);
- SUMO detector definitions (``<detectorDefinition id lane/>``) plus a dfrouter/flowrouter flow CSV
  ``Detector;Time;qPKW;qLKW;vPKW;vLKW`` (Time in minutes from ``time_offset_s``; each row counts
  ``interval_s`` seconds);
- turn counts (``<interval begin end><edgeRelation from to count/></interval>``).

Every count must name a link of the city (or a detector on one), be a finite number >= 0, and the
intervals of one location and vehicle class may not overlap. Problems raise :class:`CountsError`
naming the file, the row and the id; the CLI turns it into exit code 2.
"""
from __future__ import annotations

import csv
import gzip
import io
import math
import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

__all__ = ["CountSet", "CountsError", "parse_clock_s", "read_counts", "read_detectors"]

_MAX_ERRORS = 10


class CountsError(ValueError):
    """Bad count input: ``messages`` are lines ``file: row N: what — what is allowed``."""

    def __init__(self, path: str | Path, messages: list[str]) -> None:
        self.path = str(path)
        self.messages = list(messages)
        super().__init__("\n".join(f"{self.path}: {m}" for m in self.messages))


@dataclass
class CountSet:
    """Observed counts, one per (location, interval, vehicle class).

    ``link`` holds link indices of the city; ``prev_link`` is -1 for link counts and the from-link of
    turn counts (then ``link`` is the to-link). Times are clock time in seconds of the day; ``count``
    is vehicles in the interval.
    """

    label: list[str]
    link: np.ndarray
    prev_link: np.ndarray
    start_s: np.ndarray
    end_s: np.ndarray
    count: np.ndarray
    vclass: list[str] = field(default_factory=list)
    source: str = ""

    def __len__(self) -> int:
        return len(self.label)

    @property
    def hourly(self) -> np.ndarray:
        """Observed flows in vehicles per hour (count divided by the interval length)."""
        return self.count * 3600.0 / (self.end_s - self.start_s)

    def subset(self, idx) -> CountSet:
        """The counts at positions ``idx`` (an index array or boolean mask)."""
        idx = np.flatnonzero(idx) if np.asarray(idx).dtype == bool else np.asarray(idx, int)
        return CountSet([self.label[i] for i in idx], self.link[idx], self.prev_link[idx], self.start_s[idx],
                        self.end_s[idx], self.count[idx], [self.vclass[i] for i in idx], self.source)

    def locations(self) -> list[str]:
        """Distinct count locations (link ids, or ``from>to`` for turns) in first-seen order."""
        return list(dict.fromkeys(self.label))


def _open_text(path: Path) -> str:
    raw = path.read_bytes()
    if raw[:2] == b"\x1f\x8b":
        raw = gzip.decompress(raw)
    return raw.decode("utf-8-sig")


_HMS = re.compile(r"^(\d{1,2}):([0-5]\d)(?::([0-5]\d(?:\.\d+)?))?$")


def parse_clock_s(value: str) -> float:
    """Clock time as seconds of the day: a number of seconds, or ``HH:MM`` / ``HH:MM:SS``."""
    v = str(value).strip()
    m = _HMS.match(v)
    if m:
        return int(m.group(1)) * 3600 + int(m.group(2)) * 60 + float(m.group(3) or 0)
    x = float(v)
    if not math.isfinite(x):
        raise ValueError(v)
    return x


class _Collector:
    """Gathers rows, validating each, and raises one CountsError with every problem at the end."""

    def __init__(self, path: Path, city) -> None:
        self.path, self.city = path, city
        self.errors: list[str] = []
        self.rows: list[tuple] = []  # (label, link, prev, start, end, count, vclass, key)

    def err(self, where: str, msg: str) -> None:
        if len(self.errors) < _MAX_ERRORS:
            self.errors.append(f"{where}: {msg}")

    def link(self, where: str, what: str, lid: str | None) -> int | None:
        if lid is None or lid == "":
            self.err(where, f"{what} is missing")
            return None
        if not self.city.has_link(lid):
            self.err(where, f"{what} {lid!r} — not a link of city {self.city.name!r} "
                            f"(use a link id such as {self.city.link_ids[0]!r})")
            return None
        return self.city.link_index(lid)

    def number(self, where: str, what: str, value, clock: bool = False) -> float | None:
        try:
            x = parse_clock_s(value) if clock else float(value)
        except (TypeError, ValueError):
            allowed = "seconds of the day or HH:MM[:SS]" if clock else "a finite number >= 0"
            self.err(where, f"{what} {value!r} — not {allowed}")
            return None
        if not math.isfinite(x) or x < 0:
            self.err(where, f"{what} {value!r} — must be a finite number >= 0")
            return None
        return x

    def add(self, where: str, label: str, link: int | None, prev: int, start, end, count, vclass: str,
            key: str | None = None) -> None:
        s = self.number(where, "start", start, clock=True)
        e = self.number(where, "end", end, clock=True)
        c = self.number(where, "count", count)
        if link is None or s is None or e is None or c is None:
            return
        if e <= s:
            self.err(where, f"interval {start}-{end} — end must be after start")
            return
        self.rows.append((label, link, prev, s, e, c, vclass, key or label, where))

    def finish(self, source: str) -> CountSet:
        if not self.rows and not self.errors:
            self.errors.append("no counts found")
        by_key: dict[tuple, list] = {}
        for r in self.rows:
            by_key.setdefault((r[7], r[6]), []).append(r)
        for (key, vc), rs in by_key.items():
            rs = sorted(rs, key=lambda r: r[3])
            for a, b in zip(rs, rs[1:]):
                if b[3] < a[4]:
                    self.err(b[8], f"{key!r}{' class ' + vc if vc else ''}: interval {b[3]:g}-{b[4]:g} s overlaps "
                                   f"{a[3]:g}-{a[4]:g} s ({a[8]}) — intervals of one location may not overlap")
        if self.errors:
            raise CountsError(self.path, self.errors)
        # several detectors or classes on one location and interval are summed into one count
        agg: dict[tuple, list] = {}
        for label, link, prev, s, e, c, vc, _key, _w in self.rows:
            k = (label, s, e, vc if vc else "")
            if k in agg:
                agg[k][5] += c
            else:
                agg[k] = [label, link, prev, s, e, c, vc]
        rows = list(agg.values())
        return CountSet([r[0] for r in rows], np.array([r[1] for r in rows], np.int32),
                        np.array([r[2] for r in rows], np.int32), np.array([r[3] for r in rows], float),
                        np.array([r[4] for r in rows], float), np.array([r[5] for r in rows], float),
                        [r[6] for r in rows], source)


def read_detectors(path: str | Path, city) -> dict[str, int]:
    """Detector id -> link index, from SUMO detector definitions (``<detectorDefinition id lane/>``) or
    induction loops (``<inductionLoop id lane/>``, ``<e1Detector .../>``)."""
    path = Path(path)
    col = _Collector(path, city)
    try:
        root = ET.fromstring(_open_text(path))
    except (ET.ParseError, OSError) as exc:
        raise CountsError(path, [f"not readable as detector XML ({exc})"]) from None
    out: dict[str, int] = {}
    for i, el in enumerate(root.iter()):
        if el.tag not in ("detectorDefinition", "inductionLoop", "e1Detector"):
            continue
        did, lane = el.get("id"), el.get("lane", "")
        edge = lane.rsplit("_", 1)[0] if "_" in lane else lane
        li = col.link(f"detector {did!r}", "lane's edge", edge)
        if li is not None and did:
            out[did] = li
    if col.errors:
        raise CountsError(path, col.errors)
    if not out:
        raise CountsError(path, ["no <detectorDefinition id=... lane=...> elements"])
    return out


def _csv_counts(path: Path, text: str, city, detectors: dict[str, int] | None) -> CountSet:
    col = _Collector(path, city)
    rows = list(csv.DictReader(io.StringIO(text)))
    fields = [f.strip() for f in (csv.DictReader(io.StringIO(text)).fieldnames or [])]
    keycol = next((k for k in ("link", "edge", "detector") if k in fields), None)
    missing = [c for c in ("start", "end", "count") if c not in fields]
    if keycol is None or missing:
        need = (["link|edge|detector"] if keycol is None else []) + missing
        raise CountsError(path, [f"columns {fields} — need link (or edge, or detector), start, end, count "
                                 f"[, vehicle_class]; missing {', '.join(need)}"])
    if keycol == "detector" and not detectors:
        raise CountsError(path, ["column 'detector' needs the detector definitions (--detectors FILE)"])
    for i, r in enumerate(rows):
        r = {(k or "").strip(): (v or "").strip() for k, v in r.items()}
        where = f"row {i + 2}"
        lid = r[keycol]
        if keycol == "detector":
            link = detectors.get(lid)
            if link is None:
                col.err(where, f"detector {lid!r} — not in the detector file (detectors: "
                               f"{', '.join(list(detectors or {})[:5])}, ...)")
                continue
            label = city.link_ids[link]
        else:
            link, label = col.link(where, keycol, lid), lid
        col.add(where, label, link, -1, r["start"], r["end"], r["count"], r.get("vehicle_class", ""),
                key=lid)
    return col.finish("csv")


def _dfrouter_counts(path: Path, text: str, city, detectors: dict[str, int] | None, time_offset_s: float,
                     interval_s: float) -> CountSet:
    if not detectors:
        raise CountsError(path, ["a dfrouter flow file needs the detector definitions (--detectors FILE)"])
    col = _Collector(path, city)
    rd = csv.DictReader(io.StringIO(text), delimiter=";")
    fields = [f.strip() for f in (rd.fieldnames or [])]
    if "Detector" not in fields or "Time" not in fields or not ({"qPKW", "qLKW"} & set(fields)):
        raise CountsError(path, [f"columns {fields} — need Detector;Time;qPKW[;qLKW;vPKW;vLKW]"])
    for i, r in enumerate(rd):
        r = {(k or "").strip(): (v or "").strip() for k, v in r.items()}
        where = f"row {i + 2}"
        did = r["Detector"]
        link = detectors.get(did)
        if link is None:
            col.err(where, f"detector {did!r} — not in the detector file (detectors: "
                           f"{', '.join(list(detectors or {})[:5])}, ...)")
            continue
        t_min = col.number(where, "Time", r["Time"])
        if t_min is None:
            continue
        total = 0.0
        ok = True
        for q in ("qPKW", "qLKW"):
            if q in r and r[q] != "":
                x = col.number(where, q, r[q])
                ok &= x is not None
                total += x or 0.0
        if not ok:
            continue
        s = time_offset_s + 60.0 * t_min
        col.add(where, city.link_ids[link], link, -1, s, s + interval_s, total, "", key=did)
    return col.finish("dfrouter")


def _xml_counts(path: Path, text: str, city, attribute: str) -> CountSet:
    try:
        root = ET.fromstring(text)
    except ET.ParseError as exc:
        raise CountsError(path, [f"not well-formed XML ({exc})"]) from None
    col = _Collector(path, city)
    singles = list(root.iter("singlelink"))
    if singles:  # Cadyts
        for i, el in enumerate(singles):
            lid = el.get("link")
            where = f"singlelink {i + 1} (link {lid!r})"
            col.add(where, lid or "", col.link(where, "link", lid), -1, el.get("start"), el.get("end"),
                    el.get("value"), el.get("type", ""))
        return col.finish("cadyts")
    n_rel = sum(1 for _ in root.iter("edgeRelation"))
    n_edge = 0
    for iv_i, iv in enumerate(root.iter("interval")):
        b, e = iv.get("begin"), iv.get("end")
        for j, el in enumerate(iv):
            if el.tag == "edgeRelation":
                fr, to = el.get("from"), el.get("to")
                where = f"interval {iv_i + 1} edgeRelation {j + 1} ({fr!r} -> {to!r})"
                lf, lt = col.link(where, "from", fr), col.link(where, "to", to)
                if lf is not None and lt is not None and city.arrays.link_to[lf] != city.arrays.link_from[lt]:
                    col.err(where, f"{fr!r} does not end where {to!r} starts — not a turn")
                    continue
                cnt = el.get("count", el.get(attribute))
                col.add(where, f"{fr}>{to}", lt, -1 if lf is None else lf, b, e, cnt, "")
            elif el.tag == "edge" and not n_rel:
                n_edge += 1
                lid = el.get("id")
                where = f"interval {iv_i + 1} edge {j + 1} ({lid!r})"
                val = el.get(attribute)
                if val is None:
                    col.err(where, f"attribute {attribute!r} missing (edgeData counts need it; see --attribute)")
                    continue
                col.add(where, lid or "", col.link(where, "id", lid), -1, b, e, val, "")
    if n_rel:
        return col.finish("turns")
    if n_edge or col.errors:
        return col.finish("edgedata")
    raise CountsError(path, ["XML with no <singlelink>, <interval><edge> or <edgeRelation> counts"])


def read_counts(path: str | Path, city, *, detectors: str | Path | None = None, time_offset_s: float = 0.0,
                interval_s: float = 60.0, attribute: str = "entered") -> CountSet:
    """Read counts of any supported format from ``path`` and map them to ``city``'s links.

    ``detectors``: SUMO detector definitions, needed by dfrouter files and CSV ``detector`` columns.
    ``time_offset_s``/``interval_s``: clock time of dfrouter Time 0 and each row's length (s).
    ``attribute``: the edgeData attribute holding the count (``entered`` as routeSampler).
    """
    path = Path(path)
    if not path.is_file():
        raise CountsError(path, ["file not found"])
    try:
        text = _open_text(path)
    except (OSError, UnicodeDecodeError) as exc:
        raise CountsError(path, [f"not readable as text ({exc})"]) from None
    dets = read_detectors(detectors, city) if detectors else None
    head = text.lstrip()[:200]
    if head.startswith("<"):
        return _xml_counts(path, text, city, attribute)
    first = head.splitlines()[0] if head else ""
    if first.startswith("Detector;") or ";" in first and "Time" in first:
        return _dfrouter_counts(path, text, city, dets, time_offset_s, interval_s)
    return _csv_counts(path, text, city, dets)
