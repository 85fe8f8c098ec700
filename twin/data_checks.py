"""Open and check every data file a scenario names before anything is built or simulated.

The schema (``twin.scenario``) sees only the YAML; this module reads the files it points to: networks
(SUMO ``.net.xml``, OpenStreetMap XML, plain or gzipped), points of interest, buildings CSV, OD and trips
files (CSV or SUMO routes), emergency calls, EV session parameters and crowd venue files. Each problem is one
line ``<key>: <file> — <what is wrong>`` (the caller prefixes the scenario file), so ``validate`` and ``run``
exit 2 before any work. XML is read with expat and any entity declaration (XXE, "billion laughs") is refused.
Numbers must be finite and within bounds; trips departing outside the demand window are counted and reported
(:func:`data_notes`), never dropped silently.
"""
from __future__ import annotations

from functools import partial
import csv
import gzip
import json
import math
import zlib
from pathlib import Path
from typing import Any, Callable, Iterator
from xml.parsers import expat

__all__ = ["DataFileProblem", "scenario_data_errors", "data_notes", "domain_files", "city_data_errors", "xml_problem", "MAX_OD_TRIPS",
           "MAX_DEPART_S", "MAX_ROWS_REPORTED"]

MAX_OD_TRIPS = 20_000_000     # the schema's demand.trips maximum: one OD file may not ask for more in total
MAX_DEPART_S = 7 * 86400 * 2  # departures beyond two weeks are typos (the longest run is one week)
MAX_ROWS_REPORTED = 3         # problems listed per file before "..."
_CHUNK = 1 << 20
_CHECKED: dict[tuple, str | None] = {}  # (key, path, mtime, size) -> problem: each file is read once per process


class DataFileProblem(ValueError):
    """One thing wrong with a data file (the message says what, in a few words, with a row or line)."""


# ------------------------------------------------------------------------------------------- reading
def _open_bytes(path: Path):
    """A binary stream of ``path``, gunzipped when it starts with the gzip magic bytes (as the loaders do)."""
    with open(path, "rb") as f:
        magic = f.read(2)
    return gzip.open(path, "rb") if magic == b"\x1f\x8b" else open(path, "rb")


def _chunks(path: Path) -> Iterator[bytes]:
    """Chunks of the (gunzipped) file; a broken gzip stream becomes a :class:`DataFileProblem`."""
    try:
        with _open_bytes(path) as f:
            while True:
                b = f.read(_CHUNK)
                if not b:
                    return
                yield b
    except (gzip.BadGzipFile, EOFError, zlib.error, OSError) as exc:
        if isinstance(exc, (FileNotFoundError, PermissionError, IsADirectoryError)):
            raise DataFileProblem(f"cannot be opened ({type(exc).__name__})") from None
        raise DataFileProblem(f"not a readable gzip file ({str(exc)[:80] or type(exc).__name__}): the data "
                              "after the gzip header is broken or truncated") from None


def _text_lines(path: Path) -> Iterator[str]:
    """Decoded UTF-8 lines (gzip-aware, without line ends); a non-UTF-8 byte is a problem naming its line."""
    import codecs

    u = codecs.getincrementaldecoder("utf-8-sig")()
    buf, line_no = "", 0
    for chunk in _chunks(path):
        try:
            buf += u.decode(chunk)
        except UnicodeDecodeError as exc:
            line = line_no + buf.count("\n") + 1
            raise DataFileProblem(f"not UTF-8 text (byte 0x{chunk[exc.start]:02x} near line {line}); save it "
                                  "as UTF-8") from None
        *lines, buf = buf.split("\n")
        for ln in lines:
            line_no += 1
            yield ln.rstrip("\r")
    try:
        buf += u.decode(b"", final=True)
    except UnicodeDecodeError:
        raise DataFileProblem("not UTF-8 text (the file ends inside a character); save it as UTF-8") from None
    if buf:
        yield buf.rstrip("\r")


def _csv_rows(path: Path, need: tuple[str, ...] | Callable[[list[str]], str | None]) -> Iterator[tuple[int, dict]]:
    """(line number, row) of a CSV with a header; missing columns or a ragged row are problems."""
    lines = _text_lines(path)
    reader = csv.reader(lines)
    try:
        header = next(reader)
    except StopIteration:
        raise DataFileProblem("empty file — a CSV with a header row") from None
    except csv.Error as exc:
        raise DataFileProblem(f"not CSV ({exc})") from None
    header = [h.strip() for h in header]
    if callable(need):
        bad = need(header)
        if bad:
            raise DataFileProblem(bad)
    elif not set(need) <= set(header):
        raise DataFileProblem(f"columns {', '.join(h[:20] for h in header[:8])!s} — need {', '.join(need)} "
                              "(not this kind of CSV file?)")
    n = len(header)
    for i, row in enumerate(reader, start=2):
        if not row or all(not c.strip() for c in row):
            continue
        if len(row) != n:
            raise DataFileProblem(f"row {i}: {len(row)} fields, the header has {n} (truncated or not CSV)")
        yield i, dict(zip(header, row))


def _number(text: str, what: str, row: int, lo: float, hi: float) -> float:
    """``text`` as a finite float in [lo, hi], else a problem naming row and column."""
    try:
        v = float(text)
    except (TypeError, ValueError):
        raise DataFileProblem(f"row {row}: {what} {str(text)[:30]!r} — not a number") from None
    if not math.isfinite(v):
        raise DataFileProblem(f"row {row}: {what} {str(text)[:30]!r} — must be a finite number")
    if not lo <= v <= hi:
        raise DataFileProblem(f"row {row}: {what} {v:g} — allowed {lo:g} to {hi:g}")
    return v


# ------------------------------------------------------------------------------------------- XML
class _Refused(Exception):
    pass


def xml_problem(path: Path, on_start: Callable[[str, dict], Any] | None = None) -> str | None:
    """Parse ``path`` (XML, plain or gzipped) with expat, refusing entity declarations and external entities;
    call ``on_start(tag, attrs)`` for every element until it returns True (then the rest is only parsed, at C
    speed). Returns the root tag, or raises :class:`DataFileProblem`."""
    p = expat.ParserCreate()
    root: list[str] = []

    def refuse(*_a: Any) -> None:
        raise _Refused("the file declares XML entities (<!ENTITY ...>); entity expansion is refused "
                       "(XXE / 'billion laughs' protection)")

    def start(tag: str, attrs: dict) -> None:
        if not root:
            root.append(tag)
            if on_start is None:
                p.StartElementHandler = None
        if on_start is not None and on_start(tag, attrs):
            p.StartElementHandler = None

    p.EntityDeclHandler = refuse
    p.UnparsedEntityDeclHandler = refuse
    p.ExternalEntityRefHandler = refuse  # type: ignore[assignment]
    p.SetParamEntityParsing(expat.XML_PARAM_ENTITY_PARSING_NEVER)
    p.StartElementHandler = start
    empty = True
    try:
        for chunk in _chunks(path):
            empty = empty and not chunk.strip()
            p.Parse(chunk, False)
        if empty:
            raise DataFileProblem("empty file")
        p.Parse(b"", True)
    except _Refused as exc:
        raise DataFileProblem(str(exc)) from None
    except expat.ExpatError as exc:
        code = expat.ErrorString(exc.code)
        if code in ("no element found", "unclosed token"):
            raise DataFileProblem(f"truncated XML (line {exc.lineno}: {code}); the file ends before its last "
                                  "element closes") from None
        raise DataFileProblem(f"not well-formed XML (line {exc.lineno}, column {exc.offset}: {code}); "
                              "not an XML file of this kind?") from None
    return root[0] if root else None


def _sumo_net(path: Path) -> None:
    count = {"edge": 0}

    def start(tag: str, a: dict) -> bool:
        if tag == "edge" and a.get("function", "normal") != "internal":
            count["edge"] += 1
            return True  # one road edge is enough: parse the rest for well-formedness only
        return False

    root = xml_problem(path, start)
    if root != "net":
        raise DataFileProblem(f"root element <{root}> — a SUMO network has <net> (is it the right file?)")
    if count["edge"] == 0:
        raise DataFileProblem("the network has no road edges")


def _osm(path: Path, need_roads: bool) -> None:
    st = {"roads": 0, "nodes": 0, "in_way": False}

    def start(tag: str, a: dict) -> None:
        if tag == "node":
            st["nodes"] += 1
            for k, lo, hi in (("lat", -90.0, 90.0), ("lon", -180.0, 180.0)):
                try:
                    v = float(a.get(k, "nan"))
                except ValueError:
                    v = math.nan
                if not (math.isfinite(v) and lo <= v <= hi):
                    raise DataFileProblem(f"node {str(a.get('id'))[:20]}: {k}={str(a.get(k))[:20]!r} — a number "
                                          f"from {lo:g} to {hi:g}")
        elif tag == "way":
            st["in_way"] = True
        elif tag == "tag" and st["in_way"] and a.get("k") == "highway":
            st["roads"] += 1
            st["in_way"] = False

    root = xml_problem(path, start)
    if root != "osm":
        raise DataFileProblem(f"root element <{root}> — an OpenStreetMap file has <osm>")
    if need_roads and st["roads"] == 0:
        raise DataFileProblem("no roads (no way with a highway=* tag)")


def _routes(path: Path) -> None:
    from networks.sumo_routes import sumo_time_s


    def start(tag: str, a: dict) -> None:
        for k in ("depart", "begin", "end", "period"):
            if k in a and tag in ("vehicle", "trip", "flow", "person"):
                txt = a[k]
                v = sumo_time_s(txt)
                if v is None and k == "depart" and txt in ("triggered", "containerTriggered", "begin", "now"):
                    continue
                if v is None or not math.isfinite(v) or not 0 <= v <= MAX_DEPART_S:
                    raise DataFileProblem(f"<{tag} id={str(a.get('id'))[:20]!r}> {k}={txt[:30]!r} — a time from 0 "
                                          f"to {MAX_DEPART_S:,} s (number or HH:MM:SS)")

    root = xml_problem(path, start)
    if root not in ("routes", "additional"):
        raise DataFileProblem(f"root element <{root}> — a SUMO route file has <routes>")


# ------------------------------------------------------------------------------------------- CSV kinds
def _od(path: Path, scale: float) -> None:
    total, rows = 0.0, 0
    for i, r in _csv_rows(path, ("origin_zone", "destination_zone", "trips")):
        rows += 1
        total += _number(r["trips"], "trips", i, 0.0, MAX_OD_TRIPS)
        if total * scale > MAX_OD_TRIPS:
            raise DataFileProblem(f"more than {MAX_OD_TRIPS:,} trips in total (x demand.scale {scale:g}) by row "
                                  f"{i} — split the demand or lower the counts")
    if total <= 0:  # a demand file that asks for nothing is a mistake (demand.trips: 0 says "no cars")
        raise DataFileProblem("no rows — the file has only its header" if rows == 0 else
                              f"0 trips in all {rows:,} rows — an OD file must ask for at least one trip")


def _trips_csv(path: Path) -> None:
    rows = 0
    for i, r in _csv_rows(path, ("depart_s", "origin", "destination")):
        rows += 1
        _number(r["depart_s"], "depart_s", i, 0.0, MAX_DEPART_S)
    if rows == 0:
        raise DataFileProblem("no trips — the file has only its header (one row per trip: depart_s,origin,destination)")


def _buildings(path: Path) -> None:
    for i, r in _csv_rows(path, ("GenEdge", "Area")):
        _number(r["Area"], "Area", i, 0.0, 1e8)


def _calls(path: Path) -> None:
    def cols(header: list[str]) -> str | None:
        if not ({"time_s", "time"} & set(header)) or "type" not in header:
            return (f"columns {', '.join(h[:20] for h in header[:8])} — need time_s (or time), type, and node or "
                    "x,y (not a calls CSV?)")
        if "node" not in header and not {"x", "y"} <= set(header):
            return "no node column and no x,y columns — each call needs a place"
        return None

    rows = 0
    for i, r in _csv_rows(path, cols):
        t = r.get("time_s", r.get("time", ""))
        if ":" in t:
            try:
                v = sum(float(p) * m for p, m in zip(t.split(":"), (3600, 60, 1)))
            except ValueError:
                raise DataFileProblem(f"row {i}: time {t[:30]!r} — seconds or HH:MM[:SS]") from None
            _number(str(v), "time", i, 0.0, MAX_DEPART_S)
        else:
            _number(t, "time_s", i, 0.0, MAX_DEPART_S)
        for k in ("x", "y"):
            if r.get(k, "").strip() and not r.get("node", "").strip():
                _number(r[k], k, i, -1e8, 1e8)
        rows += 1
    if rows == 0:
        raise DataFileProblem("no calls — the file has only its header (one row per call: time_s,type,node or x,y)")


def _json(path: Path) -> dict:
    text = "\n".join(_text_lines(path))
    try:
        doc = json.loads(text, parse_constant=lambda c: (_ for _ in ()).throw(DataFileProblem(
            f"{c} is not allowed — numbers must be finite")))
    except json.JSONDecodeError as exc:
        raise DataFileProblem(f"not JSON (line {exc.lineno}: {exc.msg})") from None
    if not isinstance(doc, dict):
        raise DataFileProblem(f"{type(doc).__name__} — the file must hold a JSON object")
    return doc


def _finite(v: Any, lo: float = -math.inf) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) and v >= lo


def _session_params(path: Path, classes: tuple[str, ...]) -> None:
    """A fitted session-parameter file (``agents.ev.fit_sessions``): ``classes`` holds each class the EV section
    uses, with 24 ``hourly_share`` weights, ``arrivals_per_charger_day`` and lognormal ``dwell_h`` and
    ``energy_kwh`` (``mu``, ``sigma``), all finite."""
    doc = _json(path)
    have = doc.get("classes")
    if not isinstance(have, dict) or not have:
        raise DataFileProblem("no 'classes' object — a session-parameter file as written by "
                              "python -m agents.ev.fit_sessions")
    for name in dict.fromkeys(classes):
        c = have.get(name)
        if not isinstance(c, dict):
            raise DataFileProblem(f"class {name!r} (ev.dwell_class / ev.dc_class) is not in the file; it has "
                                  f"{', '.join(sorted(map(str, have))[:8])}")
        share = c.get("hourly_share")
        if not (isinstance(share, list) and len(share) == 24 and all(_finite(x, 0.0) for x in share)
                and sum(share) > 0):
            raise DataFileProblem(f"classes.{name}.hourly_share — 24 finite weights >= 0, not all 0")
        if not _finite(c.get("arrivals_per_charger_day"), 0.0):
            raise DataFileProblem(f"classes.{name}.arrivals_per_charger_day — a finite number >= 0")
        for key in ("dwell_h", "energy_kwh"):
            d = c.get(key)
            if not (isinstance(d, dict) and _finite(d.get("mu")) and _finite(d.get("sigma"), 0.0)):
                raise DataFileProblem(f"classes.{name}.{key} — an object with finite mu and sigma >= 0")


def _venue(path: Path, venue: Any = None) -> None:
    """A crowd venue file: WKT ``POLYGON`` or GeoJSON (local metres) that builds a walkable venue with the
    section's exits (the same code the crowd domain runs)."""
    if path.suffix.lower() == ".wkt":
        text = "\n".join(_text_lines(path)).strip()
        if not text.upper().startswith(("POLYGON", "MULTIPOLYGON")):
            raise DataFileProblem("not WKT: a venue file holds POLYGON((...))")
    else:
        _json(path)
    if venue is None:
        return
    from agents.crowd.geometry import load_geojson, parse_wkt_polygons

    try:
        if path.suffix.lower() == ".wkt":
            polys = parse_wkt_polygons("\n".join(_text_lines(path)))
            base = {"polygon": polys[0][0].tolist(), "obstacles": [r.tolist() for r in polys[0][1:]],
                    "walls": [], "exits": []}
        else:
            base = load_geojson(path)
        if base.get("polygon") is None:
            raise ValueError("no walkable Polygon feature")
        venue.geometry(base)
    except DataFileProblem:
        raise
    except (KeyError, IndexError, TypeError, ValueError, AttributeError) as exc:
        what = f"missing {exc}" if isinstance(exc, KeyError) else " ".join(str(exc).split())[:120]
        raise DataFileProblem(f"not a usable venue ({type(exc).__name__}: {what}) — a WKT POLYGON, or GeoJSON "
                              "with one walkable Polygon and exits as Points (docs/crowd.md)") from None


# ------------------------------------------------------------------------------------------- per scenario
def _files(sc: Any) -> list[tuple[str, str, Callable[[Path], None]]]:
    """(key, value, check) for every data file a resolved scenario variant names."""
    out: list[tuple[str, str, Callable[[Path], None]]] = []
    c, d = sc.city, sc.demand
    if c.path and c.source == "sumo":
        out.append(("city.path", c.path, _sumo_net))
    elif c.path and c.source == "osm":
        out.append(("city.path", c.path, lambda p: _osm(p, True)))
    if c.pois and c.pois != c.path:
        out.append(("city.pois", c.pois, lambda p: _osm(p, False)))
    if c.buildings:
        out.append(("city.buildings", c.buildings, _buildings))
    if d.od_file:
        out.append(("demand.od_file", d.od_file, partial(_od, scale=d.scale)))
    if d.trips_file:
        xml = str(d.trips_file).endswith((".xml", ".xml.gz"))
        out.append(("demand.trips_file", d.trips_file, _routes if xml else _trips_csv))
    return out + domain_files(sc.domain_configs)


def domain_files(domains: dict[str, Any]) -> list[tuple[str, str, Callable[[Path], None]]]:
    """(key, value, check) for the data files that domain sections name: emergency calls, EV session
    parameters, crowd venue files. Their paths obey the scenario's path rule like city and demand files."""
    out: list[tuple[str, str, Callable[[Path], None]]] = []
    em = domains.get("emergency")
    if em is not None and getattr(em, "calls_file", None):
        out.append(("emergency.calls_file", em.calls_file, _calls))
    ev = domains.get("ev")
    if ev is not None and getattr(ev, "session_params", None):
        classes = tuple(str(getattr(ev, k)) for k in ("dwell_class", "dc_class") if getattr(ev, k, None))
        out.append(("ev.session_params", ev.session_params, partial(_session_params, classes=classes)))
    cr = domains.get("crowd")
    for i, v in enumerate(getattr(cr, "venues", None) or []):
        if getattr(v, "file", None):
            out.append((f"crowd.venues[{i}].file", v.file, partial(_venue, venue=v)))
    return out


def scenario_data_errors(variants: dict[str, Any], base_dir: Path,
                         prefix_of: Callable[[str], str] = lambda v: "") -> list[str]:
    """One line per broken data file named by any variant (each file checked once): ``key: file — problem``."""
    from twin.scenario import resolve_data_path

    msgs: list[str] = []
    seen: dict[tuple, str | None] = {}
    for vname, sc in variants.items():
        for key, value, check in _files(sc):
            try:
                path = resolve_data_path(value, base_dir)
            except ValueError:
                continue  # reported by the schema's path rule
            if not path.is_file():
                continue  # "file not found" is the schema's message
            st = path.stat()
            k = (key, path, st.st_mtime_ns, st.st_size, repr(getattr(check, "keywords", None)))
            if k in _CHECKED:
                seen[k] = _CHECKED[k]
            if k not in seen:
                try:
                    check(path)
                    seen[k] = None
                except DataFileProblem as exc:
                    seen[k] = str(exc)
                except RecursionError:
                    seen[k] = "nested too deeply"
                except MemoryError:
                    seen[k] = "too large to read"
            _CHECKED[k] = seen[k]
            if seen[k]:
                msgs.append(f"{prefix_of(vname)}{key}: {Path(value).name} — {seen[k]}")
    return list(dict.fromkeys(msgs))


def city_data_errors(sc: Any, city: Any, base_dir: Path) -> list[str]:
    """Problems of domain data that only the city can show, before anything runs: calls of
    ``emergency.calls_file`` at a node the city lacks or of an unknown incident type (read by the emergency
    domain's own reader), and EV classes missing from the shipped session parameters. ``key: … — …`` lines."""
    from twin.scenario import resolve_data_path

    msgs: list[str] = []
    doms = sc.domain_configs
    em = doms.get("emergency")
    if em is not None and getattr(em, "calls_file", None):
        from agents.emergency.incidents import read_calls

        path = resolve_data_path(em.calls_file, base_dir)
        try:
            read_calls(path, city, set(em.incident_types))
        except (ValueError, KeyError, TypeError, IndexError) as exc:
            text = " ".join(str(exc).split()).replace(f"{path}: ", "")
            msgs.append(f"emergency.calls_file: {Path(em.calls_file).name} — {text[:200]}")
    ev = doms.get("ev")
    if ev is not None and not getattr(ev, "session_params", None):
        default = Path(__file__).resolve().parent.parent / "data" / "ev" / "session_params.json"
        try:
            have = json.loads(default.read_text()).get("classes", {})
        except (OSError, ValueError):
            have = None
        for key in ("dwell_class", "dc_class"):
            v = getattr(ev, key, None)
            if have is not None and v is not None and v not in have:
                msgs.append(f"ev.{key}: {str(v)[:40]!r} — not a fitted class of data/ev/session_params.json; use "
                            f"one of {', '.join(sorted(have))}")
    return msgs


def data_notes(sc: Any, city: Any, base_dir: Path) -> list[str]:
    """Facts a user must see though they are not errors: trips of a trips file that depart outside the
    demand window (they are not simulated), domain settings that never act in this run (``time_notes``, e.g. a
    closure starting after the end). One line each."""
    import numpy as np

    from twin.demand import clock_shift
    from twin.scenario import ScenarioError, resolve_data_path

    d, t = sc.demand, sc.time
    notes = []
    for name, cfg in sc.domain_configs.items():  # e.g. a closure that starts after the run ends
        timed = getattr(cfg, "time_notes", None)
        notes += [f"{name}.{m}" for m in (timed(t) if timed is not None else [])]
    if not d.trips_file:
        return notes
    path = resolve_data_path(d.trips_file, base_dir)
    if str(d.trips_file).endswith((".xml", ".xml.gz")):
        from networks.sumo_routes import load_sumo_trips

        dep = np.asarray(load_sumo_trips(path, city)["depart_s"], float)
    else:
        dep = np.array([float(r["depart_s"]) for _, r in _csv_rows(path, ("depart_s", "origin", "destination"))])
    t1 = min(d.end_s if d.end_s is not None else t.duration_s, t.duration_s)
    try:
        dep, _ = clock_shift(dep, d.start_s, t1, t.start_hour, "trips")
    except ScenarioError:
        return notes
    out = int(((dep < d.start_s) | (dep >= t1)).sum())
    if out == 0:
        return notes
    return notes + [f"demand.trips_file: {Path(d.trips_file).name} — {out:,} of {len(dep):,} trips depart outside the "
            f"demand window {d.start_s:,.0f}-{t1:,.0f} s and are not simulated (set time.duration_s / "
            "demand.end_s to include them)"]
