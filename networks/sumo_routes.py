"""SUMO route files (.rou.xml[.gz]) as trip arrays: vehicles, trips, ``<flow>`` elements and route definitions.

Each entry becomes one or more trips (origin = from-node of its first edge, destination = to-node of its
last edge, departure time in s). ``<flow>`` elements are expanded the way SUMO inserts them: ``number``
over [begin, end) or ``vehsPerHour`` / ``period`` equally spaced; ``probability`` (a Bernoulli draw per
second) and ``period="exp(rate)"`` (Poisson) are drawn from the generator passed in, so a seed fixes them.
Times may be seconds or SUMO's clock strings ("15:00:00", "1:15:00:00" with days).
"""
from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np

from networks.graph import CityGraph

__all__ = ["load_sumo_trips", "sumo_time_s"]

_CLOCK = re.compile(r"^\s*(?:(\d+):)?(\d+):(\d+):(\d+(?:\.\d*)?)\s*$")
_MAX_FLOW_VEHICLES = 2_000_000  # one flow may not expand beyond this (guards against a typo'd period)


def sumo_time_s(text: str | None, default: float | None = None) -> float | None:
    """A SUMO time attribute in seconds: ``"54000"``, ``"54000.5"``, ``"15:00:00"`` or ``"1:15:00:00"`` (d:h:m:s).

    Returns ``default`` when absent and None when not a fixed time (``triggered``, ``now``, ...).
    """
    if text is None:
        return default
    try:
        return float(text)
    except ValueError:
        pass
    m = _CLOCK.match(text)
    if m is None:
        return None
    d, h, mi, s = m.groups()
    return 86400.0 * int(d or 0) + 3600.0 * int(h) + 60.0 * int(mi) + float(s)


def _flow_departures(el: ET.Element, rng: np.random.Generator) -> np.ndarray | None:
    """Departure times (s) of a ``<flow>``, as SUMO spaces or draws them; None if it cannot be expanded."""
    begin = sumo_time_s(el.get("begin"), 0.0)
    end = sumo_time_s(el.get("end"), None)
    if begin is None:
        return None
    number, vph, period, prob = el.get("number"), el.get("vehsPerHour"), el.get("period"), el.get("probability")
    if end is None:
        end = begin + 86400.0 if number is None else None
    try:
        if number is not None:
            n = int(float(number))
            if end is None:  # number without end: SUMO inserts them one per period (default 1 s) from begin
                step = float(period) if period is not None else (3600.0 / float(vph) if vph else 1.0)
                return begin + step * np.arange(n)
            return begin + (end - begin) * np.arange(n) / max(n, 1)
        if end is None:  # no end and no number: not expandable
            return None
        if vph is not None:
            step = 3600.0 / float(vph)
            return np.arange(begin, end, step) if step > 0 else None
        if period is not None:
            m = re.match(r"^\s*exp\(\s*([0-9.eE+-]+)\s*\)\s*$", period)
            if m:  # Poisson arrivals with rate per second
                rate = float(m.group(1))
                k = rng.poisson(rate * (end - begin))
                return np.sort(begin + (end - begin) * rng.random(k))
            step = float(period)
            return np.arange(begin, end, step) if step > 0 else None
        if prob is not None:  # one Bernoulli trial per second
            secs = np.arange(begin, end, 1.0)
            return secs[rng.random(len(secs)) < float(prob)]
    except (ValueError, OverflowError):
        return None
    return None


def load_sumo_trips(path: str | Path, city: CityGraph, rng: np.random.Generator | None = None) -> dict:
    """Vehicles, trips and flows of a SUMO route file as trip arrays (streamed, gzip-aware).

    Returns ``id`` (str; flows give ``<flow id>.<k>`` as SUMO does), ``depart_s`` (float64, as written:
    clock times stay clock times), ``origin`` / ``destination`` (int32 node indices: from-node of the
    first edge, to-node of the last edge), ``skipped`` (entries whose edges are not in ``city``, that
    have no route or no fixed departure time) and ``flows`` (``<flow>`` elements expanded).
    ``rng`` draws the ``probability`` and ``exp(rate)`` flows (default: seed 0).
    """
    from networks.sumo_net import open_network_file

    rng = rng if rng is not None else np.random.default_rng(0)
    a = city.arrays
    link_index = {lid: i for i, lid in enumerate(city.link_ids)}
    routes: dict[str, list[str]] = {}
    dists: dict[str, tuple[list[list[str]], np.ndarray]] = {}  # routeDistribution id -> routes, probabilities
    ids: list[str] = []
    depart: list[np.ndarray] = []
    orig: list[np.ndarray] = []
    dest: list[np.ndarray] = []
    skipped = flows = 0

    def add(vid: str, deps: np.ndarray | None, first: str | None, last: str | None, many: bool = False) -> None:
        nonlocal skipped
        lf, lt = link_index.get(first or ""), link_index.get(last or "")
        if lf is None or lt is None or deps is None:
            skipped += 1 if deps is None or not many else max(len(deps), 1)
            return
        k = len(deps)
        ids.extend([f"{vid}.{j}" for j in range(k)] if many else [vid])
        depart.append(np.asarray(deps, np.float64))
        orig.append(np.full(k, a.link_from[lf], np.int32))
        dest.append(np.full(k, a.link_to[lt], np.int32))

    def edges_of(el: ET.Element) -> list[str]:
        """The edges an element drives: its own <route> child, a referenced route / distribution, or from..to."""
        child = el.find("route")
        if child is None:
            child = el.find("routeDistribution/route")
        edges = (child.get("edges", "") if child is not None else "").split()
        ref = el.get("route")
        if not edges and ref is not None:
            if ref in routes:
                edges = routes[ref]
            elif ref in dists:
                rs, p = dists[ref]
                edges = rs[int(rng.choice(len(rs), p=p))] if rs else []
        if not edges and el.get("from") is not None:
            edges = [el.get("from", "").strip(), (el.get("to") or el.get("from", "")).strip()]
        return edges

    stack: list[ET.Element] = []
    with open_network_file(path) as f:
        for event, el in ET.iterparse(f, events=("start", "end")):
            if event == "start":
                stack.append(el)
                continue
            stack.pop()
            tag = el.tag
            top = bool(stack) and stack[-1].tag in ("routes", "additional")
            if tag == "route" and top:
                routes[el.get("id", "")] = el.get("edges", "").split()
            elif tag == "routeDistribution" and top:
                rs = [r.get("edges", "").split() if r.get("edges") else routes.get(r.get("refId", ""), [])
                      for r in el.findall("route")]
                w = np.array([float(r.get("probability", 1.0)) for r in el.findall("route")])
                if rs and w.sum() > 0:
                    dists[el.get("id", "")] = (rs, w / w.sum())
            elif tag in ("vehicle", "trip"):
                edges = edges_of(el)
                dep = sumo_time_s(el.get("depart"), 0.0)
                add(el.get("id", ""), None if dep is None else np.array([dep]),
                    edges[0] if edges else None, edges[-1] if edges else None)
            elif tag == "flow":
                flows += 1
                edges = edges_of(el)
                deps = _flow_departures(el, rng)
                if deps is not None and len(deps) > _MAX_FLOW_VEHICLES:
                    deps = None
                add(el.get("id", ""), deps, edges[0] if edges else None, edges[-1] if edges else None, many=True)
            if len(stack) == 1:
                stack[0].clear()  # drop finished top-level elements from the root (streaming)
    cat = (lambda xs, dt: np.concatenate(xs).astype(dt) if xs else np.zeros(0, dt))  # noqa: E731
    return {"id": np.array(ids, dtype=str), "depart_s": cat(depart, np.float64),
            "origin": cat(orig, np.int32), "destination": cat(dest, np.int32),
            "skipped": int(skipped), "flows": int(flows)}
