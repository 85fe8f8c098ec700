"""The allow-list of SUMO command-line options a scenario may pass in ``traffic.sumo.extra_args``.

A scenario is data that may come from someone else, so ``extra_args`` never reaches SUMO's command line
unchecked: only options that change the *model* (teleporting, meso headways and junction control,
insertion, lane changing, routing) are accepted, each with a typed, bounded value. Every option that
names a file (``--log``, ``--*-output``, ``--weight-files``, ``-c``, ...) or is not listed here is refused
at validation; the list is documented in docs/sumo.md. Option names are those of SUMO 1.2x
(``sumo --save-template``); tests check each one still exists in the installed SUMO.

The same module checks the scenario's own SUMO *additional files*: only elements that describe the
network's control or vehicles (signal programs, vTypes, stops, ...) are accepted, and no element may carry an
attribute that names a file (``file``, ``output``, ``dest``, ``href``...), so an additional file cannot make
SUMO write or read outside the run's temp folder either.
"""
from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Sequence

__all__ = ["ALLOWED_OPTIONS", "check_extra_args", "checked_additional", "normalise_extra_args", "additional_file_errors",
           "ALLOWED_ADDITIONAL_TAGS", "FILE_ATTRIBUTES", "DOC"]

DOC = "docs/sumo.md, section 'Allowed extra_args'"

_BOOL = ("bool",)
_BIG_S = 1e6  # seconds: about 11.5 days, above any scenario's 7-day limit


def _time(lo: float = -1.0, hi: float = _BIG_S) -> tuple:
    return ("float", lo, hi)


# option -> (kind, ...): ("bool",), ("float", lo, hi), ("int", lo, hi), ("enum", (values...))
ALLOWED_OPTIONS: dict[str, tuple] = {
    # teleporting and gridlock handling
    "--time-to-teleport": _time(), "--time-to-teleport.highways": _time(),
    "--time-to-teleport.highways.min-speed": ("float", 0.0, 100.0),
    "--time-to-teleport.disconnected": _time(), "--time-to-teleport.remove": _BOOL,
    "--time-to-teleport.bidi": _time(),
    "--ignore-junction-blocker": _time(), "--time-to-impatience": _time(),
    "--waiting-time-memory": _time(0.0), "--startup-wait-threshold": _time(0.0),
    "--max-depart-delay": _time(),
    # insertion
    "--sloppy-insert": _BOOL, "--eager-insert": _BOOL, "--emergency-insert": _BOOL,
    "--random-depart-offset": _time(0.0), "--extrapolate-departpos": _BOOL,
    "--max-num-vehicles": ("int", -1, 100_000_000),
    # micro model
    "--step-method.ballistic": _BOOL, "--lateral-resolution": ("float", -1.0, 10.0),
    "--lanechange.duration": _time(0.0, 60.0), "--lanechange.overtake-right": _BOOL,
    "--collision.action": ("enum", ("none", "warn", "teleport", "remove")),
    "--collision.stoptime": _time(0.0, 3600.0), "--collision.check-junctions": _BOOL,
    "--collision.mingap-factor": ("float", -1.0, 10.0),
    "--default.action-step-length": ("float", 0.0, 10.0), "--default.speeddev": ("float", -1.0, 1.0),
    "--default.carfollowmodel": ("enum", ("Krauss", "KraussOrig1", "KraussPS", "KraussX", "EIDM", "IDM",
                                          "IDMM", "SmartSK", "Daniel1", "PWagner2009", "BKerner", "Rail",
                                          "CC", "ACC", "CACC", "W99", "Wiedemann")),
    "--tls.all-off": _BOOL, "--tls.actuated.jam-threshold": ("float", -1.0, 3600.0),
    "--tls.actuated.detector-length": ("float", 0.0, 1000.0), "--tls.yellow.min-decel": ("float", 0.0, 20.0),
    # meso model (SUMO docs: Simulation/Meso)
    "--meso-edgelength": ("float", 1.0, 10000.0), "--meso-tauff": ("float", 0.0, 60.0),
    "--meso-taufj": ("float", 0.0, 60.0), "--meso-taujf": ("float", 0.0, 60.0),
    "--meso-taujj": ("float", 0.0, 60.0), "--meso-jam-threshold": ("float", -1.0, 1.0),
    "--meso-multi-queue": _BOOL, "--meso-lane-queue": _BOOL, "--meso-junction-control": _BOOL,
    "--meso-junction-control.limited": _BOOL, "--meso-tls-penalty": ("float", 0.0, 100.0),
    "--meso-tls-flow-penalty": ("float", 0.0, 100.0), "--meso-minor-penalty": _time(0.0, 3600.0),
    "--meso-overtaking": _BOOL, "--meso-recheck": _time(0.0, 3600.0),
    # routing (the rerouting device every CityTwin trip carries)
    "--routing-algorithm": ("enum", ("dijkstra", "astar", "CH", "CHWrapper")),
    "--weights.random-factor": ("float", 1.0, 100.0), "--weights.minor-penalty": ("float", 0.0, 3600.0),
    "--weights.tls-penalty": ("float", 0.0, 100.0), "--weights.priority-factor": ("float", 0.0, 100.0),
    "--weights.turnaround-penalty": ("float", 0.0, 3600.0),
    "--device.rerouting.period": _time(0.0), "--device.rerouting.pre-period": _time(0.0),
    "--device.rerouting.adaptation-weight": ("float", 0.0, 1.0),
    "--device.rerouting.adaptation-steps": ("int", 0, 100_000),
    "--device.rerouting.adaptation-interval": _time(0.0, 3600.0),
    "--device.rerouting.threshold.factor": ("float", 0.0, 100.0),
    "--device.rerouting.threshold.constant": _time(0.0),
    "--device.rerouting.synchronize": _BOOL,
}

_TRUE = ("true", "on", "yes", "1", "x")
_FALSE = ("false", "off", "no", "0")
_SHOW = 60  # characters of a refused value shown in a message


def _short(s: str) -> str:
    s = s.encode("unicode_escape").decode("ascii")
    return repr(s if len(s) <= _SHOW else s[:_SHOW - 3] + "...")


def _check_value(opt: str, spec: tuple, raw: str) -> str | None:
    """None when ``raw`` is a valid value of ``opt``, else what is allowed."""
    kind = spec[0]
    if kind == "bool":
        return None if raw.lower() in _TRUE + _FALSE else "a boolean: true or false"
    if kind == "enum":
        return None if raw in spec[1] else "one of " + ", ".join(spec[1])
    lo, hi = spec[1], spec[2]
    if not re.fullmatch(r"[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?", raw):
        return f"a number between {lo:g} and {hi:g}"
    x = float(raw)
    if kind == "int" and x != int(x):
        return f"a whole number between {lo:g} and {hi:g}"
    if not math.isfinite(x) or x < lo or x > hi:
        return f"a number between {lo:g} and {hi:g}"
    return None


def normalise_extra_args(args: Sequence[str]) -> list[str]:
    """``extra_args`` as ``[--option, value, ...]`` pairs (``--opt=value`` split); raise ValueError naming
    the first refused option or value and pointing to the allowed list."""
    out: list[str] = []
    i = 0
    args = list(args)
    while i < len(args):
        tok = args[i]
        if not isinstance(tok, str):
            raise ValueError(f"item {i}: {tok!r} is not a string; write options as strings, e.g. "
                             f"[\"--meso-junction-control\", \"true\"]")
        opt, eq, val = tok.partition("=")
        if opt not in ALLOWED_OPTIONS:
            what = "is not an option" if not tok.startswith("-") else "is not an allowed SUMO option"
            if re.search(r"(output|log|file|save|dump|config|^-c$|^-[a-z]$)", opt):
                what = "names a file or writes output: refused (SUMO writes only into the run's temp folder)"
            raise ValueError(f"{_short(opt)} {what}; allowed: the model options listed in {DOC} "
                             f"(e.g. --time-to-teleport, --meso-junction-control), each followed by its value")
        if not eq:
            if i + 1 >= len(args) or not isinstance(args[i + 1], str):
                raise ValueError(f"{opt} needs a value after it (e.g. [\"{opt}\", \"...\"]); see {DOC}")
            val = args[i + 1]
            i += 1
        bad = _check_value(opt, ALLOWED_OPTIONS[opt], val)
        if bad is not None:
            raise ValueError(f"{opt} {_short(val)} — the value must be {bad} (allowed options and values: {DOC})")
        out += [opt, val]
        i += 1
    return out


def check_extra_args(args: Sequence[str]) -> list[str]:
    """Validate ``extra_args`` (pydantic field validator body): the normalised list, or ValueError."""
    return normalise_extra_args(args)


# ----------------------------------------------------------------------------------- additional files
ALLOWED_ADDITIONAL_TAGS = frozenset({
    "additional", "add", "tlLogic", "phase", "condition", "assignment", "function", "param", "WAUT", "wautSwitch",
    "wautJunction", "vType", "vTypeDistribution", "carFollowing-Krauss", "carFollowing-IDM", "route",
    "routeDistribution", "busStop", "trainStop", "containerStop", "chargingStation", "parkingArea", "space",
    "access", "overheadWireSegment", "location", "interval", "closingReroute", "closingLaneReroute",
    "destProbReroute", "routeProbReroute", "parkingAreaReroute", "rerouter", "edge", "lane", "stop",
})
FILE_ATTRIBUTES = frozenset({"file", "output", "dest", "href", "filename", "path", "outputfile", "vtypes"})
_MAX_ADDITIONAL_ELEMENTS = 5_000_000


def additional_file_errors(path: Path) -> list[str]:
    """Problems of one SUMO additional file (.xml or .xml.gz): element tags outside the allow-list,
    attributes naming files. Parsed with the standard library's expat parser, which fetches no DTD or
    external entity; elements are cleared as they end and counted, so a huge file cannot exhaust memory."""
    import gzip
    import xml.etree.ElementTree as ET

    path = Path(path)
    errs: list[str] = []
    opener = gzip.open if path.name.endswith(".gz") else open
    try:
        with opener(path, "rb") as fh:
            for n, (ev, el) in enumerate(ET.iterparse(fh, events=("start", "end"))):
                if n > 2 * _MAX_ADDITIONAL_ELEMENTS:
                    return [f"more than {_MAX_ADDITIONAL_ELEMENTS:,} elements — too large for an additional file"]
                if ev == "end":
                    el.clear()
                    continue
                tag = str(el.tag).rsplit("}", 1)[-1][:40]
                if tag not in ALLOWED_ADDITIONAL_TAGS:
                    errs.append(f"element <{tag}> is not allowed in a scenario's additional file (detectors and "
                                f"outputs write files); allowed elements are listed in {DOC}")
                errs += [f"<{tag} {a[:40]}=...> names a file — refused (SUMO writes only into the run's temp folder)"
                         for a in el.attrib if a.lower() in FILE_ATTRIBUTES]
                if len(errs) >= 5:
                    break
    except (ET.ParseError, OSError, EOFError) as exc:
        return [f"not valid XML ({str(exc)[:120]})"]
    return errs


def checked_additional(paths: Sequence[Path]) -> list[str]:
    """The additional files as strings for SUMO's ``-a``; ValueError when one breaks the rules above."""
    out = []
    for p in paths:
        errs = additional_file_errors(Path(p))
        if errs:
            raise ValueError(f"SUMO additional file {Path(p).name}: {errs[0]}")
        out.append(str(p))
    return out
