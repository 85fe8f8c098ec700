"""Preparing a SUMO run for the SUMO traffic back-end: locate SUMO, the network, the trips, the command line.

SUMO is located through the PyPI packages only (``eclipse-sumo`` gives ``sumo.SUMO_HOME`` and the
binaries, ``sumolib.checkBinary``); a system install is never used. ``libsumo``, ``traci`` and
``sumolib`` must carry the same version as ``eclipse-sumo``.

Trip mapping (city graph -> SUMO): a trip from node ``o`` to node ``d`` becomes a SUMO ``<trip>``
from the first link and to the last link of the free-flow shortest path o -> d on the city graph
(so from-edge is an out-link of ``o`` and to-edge an in-link of ``d``, the ones the built-in model
would use on an empty network). SUMO routes the trip itself at insertion with its rerouting device
(current travel times), and may pick other links in between.
"""
from __future__ import annotations

import importlib.metadata as md
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence
from xml.sax.saxutils import quoteattr

import numpy as np
from numba import njit

from networks.routing import next_hop_tables

__all__ = ["SumoNotAvailable", "SUMO_PACKAGES", "check_sumo", "sumo_binary", "SumoNetwork", "prepare_network",
           "freeflow_od_links", "write_vtypes_and_trips", "write_additional", "write_closures", "sumo_command",
           "VTYPES"]

SUMO_PACKAGES = ("eclipse-sumo", "libsumo", "traci", "sumolib")
_PIP = "pip install \"citytwin[sumo]\" (or: pip install eclipse-sumo=={v} libsumo=={v} traci=={v} sumolib=={v})"


class SumoNotAvailable(RuntimeError):
    """SUMO (the PyPI packages eclipse-sumo, libsumo, traci, sumolib) is missing, broken or mismatched."""


def check_sumo(connection: str = "libsumo") -> str:
    """Check the SUMO packages are installed with one version; return that version or raise SumoNotAvailable."""
    versions: dict[str, str | None] = {}
    for p in SUMO_PACKAGES:
        try:
            versions[p] = md.version(p)
        except md.PackageNotFoundError:
            versions[p] = None
    need = ["eclipse-sumo", "sumolib", connection]
    missing = [p for p in need if versions[p] is None]
    ref = versions.get("eclipse-sumo") or next((v for v in versions.values() if v), "1.28.0")
    if missing:
        raise SumoNotAvailable(f"SUMO back-end needs the PyPI package(s) {', '.join(missing)}; install with: "
                               f"{_PIP.format(v=ref)}")
    mismatch = {p: v for p, v in versions.items() if v is not None and v != ref}
    if mismatch:
        raise SumoNotAvailable(f"SUMO packages disagree on the version: eclipse-sumo {ref} but "
                               + ", ".join(f"{p} {v}" for p, v in mismatch.items())
                               + f"; reinstall them together: {_PIP.format(v=ref)}")
    try:
        import sumo  # noqa: F401  (sets SUMO_HOME when unset)
    except ImportError as exc:
        raise SumoNotAvailable(f"cannot import the 'sumo' package of eclipse-sumo {ref}: {exc}") from exc
    return ref


def sumo_binary(gui: bool = False) -> str:
    """Path of the ``sumo`` (or ``sumo-gui``) binary of the eclipse-sumo wheel; SumoNotAvailable if absent."""
    import sumo
    import sumolib

    name = "sumo-gui" if gui else "sumo"
    path = Path(sumo.SUMO_HOME) / "bin" / name
    if not path.exists():
        found = sumolib.checkBinary(name)
        path = Path(found)
    if not path.exists() or not os.access(path, os.X_OK):
        what = "sumo-gui is not part of this eclipse-sumo install (use gui: false)" if gui else \
            f"the sumo binary is missing from {sumo.SUMO_HOME}/bin"
        raise SumoNotAvailable(f"SUMO back-end: {what}")
    return str(path)


@dataclass
class SumoNetwork:
    """The SUMO network file of a city and the city link -> SUMO edge id list (index = link index)."""

    net_file: Path
    edge_ids: list[str]
    exported: bool


def prepare_network(city, work_dir: Path) -> SumoNetwork:
    """Use the city's own .net.xml when it came from one (edge ids = link ids), else export it with netconvert."""
    src = getattr(city, "source", None)
    if src and str(src).endswith((".net.xml", ".net.xml.gz")) and Path(src).exists():
        return SumoNetwork(Path(src), [str(x) for x in city.link_ids], False)
    from networks.sumo_export import to_sumo_net

    out = Path(work_dir) / "city.net.xml"
    link_map = to_sumo_net(city, out)
    return SumoNetwork(out, [link_map[x] for x in city.link_ids], True)


def freeflow_od_links(city, fft_s: np.ndarray, origins: np.ndarray, destinations: np.ndarray,
                      max_table_cells: int = 40_000_000) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """First link, last link, link count and free-flow time of each trip's free-flow shortest path.

    Unroutable trips (or origin == destination) get first = last = -1. Destinations are done in
    batches so the next-hop table stays below ``max_table_cells`` cells.
    """
    a = city.arrays
    n = len(origins)
    first = np.full(n, -1, np.int64)
    last = np.full(n, -1, np.int64)
    nlinks = np.zeros(n, np.int32)
    tff = np.full(n, np.nan)
    if n == 0:
        return first, last, nlinks, tff
    dests = np.unique(destinations)
    batch = max(1, max_table_cells // max(a.n_nodes, 1))
    slot = np.full(a.n_nodes, -1, np.int64)
    for b0 in range(0, len(dests), batch):
        ds = dests[b0:b0 + batch].astype(np.int32)
        _, nh = next_hop_tables(ds, fft_s, a.in_indptr, a.in_links, a.link_from, a.n_nodes)
        slot[:] = -1
        slot[ds] = np.arange(len(ds))
        sel = np.flatnonzero(np.isin(destinations, ds) & (origins != destinations))
        _walk(sel.astype(np.int64), origins.astype(np.int64), destinations.astype(np.int64), slot, nh,
              a.link_to.astype(np.int64), fft_s.astype(np.float64), first, last, nlinks, tff, a.n_nodes)
    return first, last, nlinks, tff


@njit(cache=True)
def _walk(sel, origins, destinations, slot, nh, link_to, fft, first, last, nlinks, tff, n_nodes):  # pragma: no cover
    """Follow next-hop rows from each selected trip's origin to its destination (numba)."""
    for k in range(sel.shape[0]):
        i = sel[k]
        d = destinations[i]
        row = slot[d]
        v = origins[i]
        t = 0.0
        cnt = 0
        prev = -1
        while v != d and cnt <= n_nodes:
            ln = nh[row, v]
            if ln < 0:
                break
            if cnt == 0:
                first[i] = ln
            t += fft[ln]
            prev = ln
            cnt += 1
            v = link_to[ln]
        if v == d and cnt > 0:
            last[i] = prev
            nlinks[i] = cnt
            tff[i] = t
        else:
            first[i] = -1


# vType ids by vehicle kind; "car_rr" are cars that also re-route en route (reroute_share of them).
VTYPES = {"car": "car", "ev": "ev", "emergency": "emergency", "bus": "bus", "truck": "truck"}


def _vtypes_xml(reroute_period_s: float) -> str:
    rr = f'<param key="device.rerouting.period" value="{reroute_period_s:g}"/>'
    return "\n".join([
        '  <vType id="car" vClass="passenger"/>',
        f'  <vType id="car_rr" vClass="passenger">{rr}</vType>',
        '  <vType id="ev" vClass="passenger" emissionClass="Energy/unknown">'
        '<param key="has.battery.device" value="true"/>'
        '<param key="device.battery.capacity" value="60000"/>'
        '<param key="device.battery.chargeLevel" value="48000"/></vType>',
        '  <vType id="emergency" vClass="emergency" guiShape="emergency" speedFactor="1.3">'
        '<param key="has.bluelight.device" value="true"/></vType>',
        '  <vType id="bus" vClass="bus"/>',
        '  <vType id="truck" vClass="truck"/>',
    ])


def write_vtypes_and_trips(path: Path, edge_ids: Sequence[str], trip_ids: np.ndarray, depart_s: np.ndarray,
                           from_link: np.ndarray, to_link: np.ndarray, rerouting: np.ndarray,
                           reroute_period_s: float) -> Path:
    """Write the vTypes and the trips (sorted by departure) as a SUMO route file; ids are trip indices."""
    order = np.argsort(depart_s, kind="stable")
    with open(path, "w", encoding="utf-8") as f:
        f.write("<routes>\n")
        f.write(_vtypes_xml(reroute_period_s) + "\n")
        for i in order:
            typ = "car_rr" if rerouting[i] else "car"
            f.write(f'  <trip id="{int(trip_ids[i])}" type="{typ}" depart="{depart_s[i]:.2f}" '
                    f'from={quoteattr(edge_ids[from_link[i]])} to={quoteattr(edge_ids[to_link[i]])}/>\n')
        f.write("</routes>\n")
    return path


def write_additional(path: Path, edgedata_file: Path, period_s: float) -> Path:
    """Additional file: edge-based measures (edgeData) every ``period_s`` seconds."""
    with open(path, "w", encoding="utf-8") as f:
        f.write(f'<additional>\n  <edgeData id="citytwin" file={quoteattr(str(edgedata_file))} '
                f'period="{period_s:g}" excludeEmpty="true"/>\n</additional>\n')
    return path


def write_closures(path: Path, closures: Sequence[tuple[str, float, float]], trigger_edges: Sequence[str]) -> Path:
    """Additional file closing edges for time windows: one ``<rerouter>`` with a ``closingReroute`` per closure.

    ``closures``: (edge id, begin s, end s). Closing through SUMO's own rerouter, instead of changing lane
    permissions through libsumo/TraCI mid-run, is what SUMO meso with junction control survives (the live
    calls crashed it, docs/sumo.md). The rerouter sits on ``trigger_edges`` (every edge of the city), so a
    vehicle whose remaining route uses a closed edge re-routes on entering its next edge; vehicles inserted
    later are routed around it because the edge disallows every class while closed.
    """
    trig = " ".join(trigger_edges)
    with open(path, "w", encoding="utf-8") as f:
        f.write("<additional>\n")
        for k, (edge, begin, end) in enumerate(closures):
            f.write(f'  <rerouter id="citytwin_closure_{k}" edges={quoteattr(trig)}>\n'
                    f'    <interval begin="{begin:g}" end="{end:g}">'
                    f'<closingReroute id={quoteattr(edge)} disallow="all"/></interval>\n  </rerouter>\n')
        f.write("</additional>\n")
    return path


def sumo_command(binary: str, net_file: Path, routes: Path, additional: str | Path, tripinfo: Path, *,
                 step_length_s: float, end_s: float, seed: int, mesosim: bool,
                 extra_args: Sequence[str] = ()) -> list[str]:
    """The SUMO command line: all trips routed at insertion by the rerouting device (current times).

    ``additional``: one file, or several joined by commas (as SUMO reads them). ``extra_args`` are checked
    again against the allow-list (agents/traffic/sumo_options.py): no option naming a file reaches SUMO,
    whoever built the config."""
    from agents.traffic.sumo_options import normalise_extra_args

    cmd = [binary, "-n", str(net_file), "-r", str(routes), "-a", str(additional),
           "--step-length", f"{step_length_s:g}", "--end", f"{end_s:g}", "--seed", str(int(seed) % 2**31),
           "--tripinfo-output", str(tripinfo), "--tripinfo-output.write-unfinished", "true",
           "--device.rerouting.probability", "1", "--device.rerouting.period", "0",
           "--ignore-route-errors", "true", "--no-step-log", "true", "--no-warnings", "true",
           "--duration-log.disable", "true", "--verbose", "false"]
    if mesosim:
        cmd += ["--mesosim", "true"]
    return cmd + normalise_extra_args(extra_args)


def new_work_dir() -> Path:
    """A fresh temporary folder for one SUMO run's files."""
    return Path(tempfile.mkdtemp(prefix="citytwin_sumo_"))
