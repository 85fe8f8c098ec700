"""Export a CityGraph to a SUMO network (plain XML, then netconvert) so both traffic back-ends share a city.

SUMO forbids some characters in ids (space, tab, newline, | \\ ' " ; , < > &); synthetic link ids
such as 'n0_0>n1_0' contain '>', so ids are mapped with :func:`sumo_safe_id` ('n0_0-to-n1_0') and
the export returns the link id -> SUMO edge id mapping.
"""
from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Sequence
from xml.sax.saxutils import quoteattr

from networks.graph import CityGraph

__all__ = ["sumo_safe_id", "write_plain_xml", "to_sumo_net"]

_INVALID = " \t\n\r|\\'\";,<>&"


def sumo_safe_id(value: str) -> str:
    """A SUMO-valid id: '>' becomes '-to-', other forbidden characters become '_'."""
    value = str(value).replace(">", "-to-")
    return "".join("_" if ch in _INVALID else ch for ch in value)


def _id_map(ids: Sequence, what: str) -> dict:
    m = {i: sumo_safe_id(i) for i in ids}
    if len(set(m.values())) != len(m):
        raise ValueError(f"{what} ids collide after making them SUMO-safe")
    return m


def write_plain_xml(city: CityGraph, prefix: str | Path) -> tuple[Path, Path, dict[str, str]]:
    """Write '<prefix>.nod.xml' and '<prefix>.edg.xml'; return both paths and link id -> SUMO edge id.

    Signalised nodes become 'traffic_light' junctions, others 'priority'. Edges keep length (m),
    lanes, speed (m/s) and shape; the road class is not written (netconvert would need a type file).
    """
    prefix = Path(prefix)
    a = city.arrays
    node_map = _id_map(city.node_ids, "node")
    link_map = _id_map(city.link_ids, "link")
    nod, edg = prefix.with_suffix(".nod.xml"), prefix.with_suffix(".edg.xml")
    with open(nod, "w", encoding="utf-8") as f:
        f.write("<nodes>\n")
        for i, n in enumerate(city.node_ids):
            kind = "traffic_light" if a.node_signal[i] else "priority"
            f.write(f'  <node id={quoteattr(node_map[n])} x="{a.node_x[i]:.2f}" y="{a.node_y[i]:.2f}" '
                    f'type="{kind}"/>\n')
        f.write("</nodes>\n")
    with open(edg, "w", encoding="utf-8") as f:
        f.write("<edges>\n")
        for l, lid in enumerate(city.link_ids):
            d = city.link_attr(l)
            u, v = city.node_ids[a.link_from[l]], city.node_ids[a.link_to[l]]
            shape = d.get("shape")
            shape_attr = (' shape="' + " ".join(f"{x:.2f},{y:.2f}" for x, y in shape) + '"'
                          if shape and len(shape) > 2 else "")
            f.write(f'  <edge id={quoteattr(link_map[lid])} from={quoteattr(node_map[u])} '
                    f'to={quoteattr(node_map[v])} numLanes="{int(a.lanes[l])}" speed="{a.speed_mps[l]:.3f}" '
                    f'length="{a.length_m[l]:.2f}"{shape_attr}/>\n')
        f.write("</edges>\n")
    return nod, edg, link_map


def to_sumo_net(city: CityGraph, out_path: str | Path, extra_args: Sequence[str] = ()) -> dict[str, str]:
    """Build a SUMO .net.xml from the city with netconvert; return link id -> SUMO edge id.

    Coordinates are kept as they are (no offset normalisation), so x/y agree between back-ends.
    Raises ``RuntimeError`` with netconvert's message if it fails.
    """
    import sumolib

    out_path = Path(out_path)
    prefix = out_path.parent / (out_path.name.split(".")[0] + "_plain")
    nod, edg, link_map = write_plain_xml(city, prefix)
    cmd = [sumolib.checkBinary("netconvert"), "--node-files", str(nod), "--edge-files", str(edg),
           "--output-file", str(out_path), "--offset.disable-normalization", "true",
           "--no-warnings", "true", *extra_args]
    res = subprocess.run(cmd, capture_output=True, text=True)
    if res.returncode != 0:
        raise RuntimeError(f"netconvert failed ({res.returncode}): {res.stderr.strip()[-2000:]}")
    return link_map
