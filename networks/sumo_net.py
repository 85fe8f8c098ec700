"""Load a SUMO network (.net.xml[.gz]) into a CityGraph via sumolib, and SUMO route files into trip arrays.

Links map one-to-one to SUMO edges that allow passenger cars (the SUMO traffic back-end relies on
this); nodes are the junctions those edges touch. Per-lane capacity comes from the road class
(see ``networks.roadclass``).
"""
from __future__ import annotations

import gzip
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import IO, cast

import networkx as nx
import numpy as np

from networks.geo import Projection
from networks.graph import CityGraph
from networks.roadclass import lane_capacity_vph

__all__ = ["load_sumo_net", "load_sumo_trips"]


def load_sumo_net(path: str | Path, name: str | None = None,
                  capacity_per_lane_vph: float = 1800.0) -> CityGraph:
    """Read a SUMO .net.xml(.gz) with sumolib: passenger edges become links (id = SUMO edge id).

    Edge attributes: length_m, lanes (lanes allowing passenger), speed_mps, road_class (SUMO edge
    type, e.g. 'highway.primary'), capacity_vph = lanes * class capacity, shape [(x, y), ...].
    Junctions with no passenger edge are left out. Node lon/lat are NaN when the net has no projection.
    """
    import sumolib

    net = sumolib.net.readNet(str(path), withInternal=False)
    geo = net.hasGeoProj()
    proj = Projection(net._location["projParameter"], net.getLocationOffset()) if geo else None
    edges = [e for e in net.getEdges(withInternal=False)
             if e.getFunction() != "internal" and e.allows("passenger")]
    used = {e.getFromNode().getID() for e in edges} | {e.getToNode().getID() for e in edges}
    ring_of = {eid: k for k, r in enumerate(net.getRoundabouts()) for eid in r.getEdges()}
    G = nx.MultiDiGraph()
    for node in net.getNodes():
        nid = node.getID()
        if nid not in used:
            continue
        x, y = node.getCoord()[:2]
        lon, lat = proj.inverse(x, y) if proj is not None else (np.nan, np.nan)
        G.add_node(nid, x=float(x), y=float(y), lon=float(lon), lat=float(lat),
                   signal=node.getType().startswith("traffic_light"))
    for e in edges:
        lanes = sum(1 for lane in e.getLanes() if lane.allows("passenger"))
        road_class = e.getType() or ""
        G.add_edge(e.getFromNode().getID(), e.getToNode().getID(), id=e.getID(),
                   length_m=float(e.getLength()), lanes=int(lanes), speed_mps=float(e.getSpeed()),
                   capacity_vph=lanes * lane_capacity_vph(road_class, capacity_per_lane_vph, e.getSpeed()),
                   road_class=road_class, shape=[(float(p[0]), float(p[1])) for p in e.getShape()],
                   ring=ring_of.get(e.getID(), -1))  # roundabout number, -1 if none
    city = CityGraph(G, name=name or Path(path).name.split(".")[0],
                     crs=net._location["projParameter"] if geo else None)
    city.source = str(path)
    city.lonlat_to_xy = proj
    return city


def open_network_file(path: str | Path) -> IO[bytes]:
    """Open a file, transparently gunzipping (by magic bytes, not by name)."""
    with open(path, "rb") as f:
        magic = f.read(2)
    return cast(IO[bytes], gzip.open(path, "rb") if magic == b"\x1f\x8b" else open(path, "rb"))


def load_sumo_trips(path: str | Path, city: CityGraph) -> dict:
    """Vehicles and trips of a SUMO route file as arrays (streamed, gzip-aware).

    Returns id (str), depart_s (float64), origin / destination (int32 node indices: from-node of the
    first edge, to-node of the last edge), ``skipped`` (entries whose edges are not in ``city`` or
    that have no route) and ``flows_skipped`` (``<flow>`` elements, not expanded).
    """
    a = city.arrays
    link_index = {lid: i for i, lid in enumerate(city.link_ids)}
    routes: dict[str, list[str]] = {}
    ids: list[str] = []
    depart: list[float] = []
    orig: list[int] = []
    dest: list[int] = []
    skipped = flows = 0

    def add(vid: str, dep: str | None, first: str | None, last: str | None) -> None:
        nonlocal skipped
        lf, lt = link_index.get(first or ""), link_index.get(last or "")
        try:
            dep_s = float(dep) if dep is not None else 0.0
        except ValueError:  # 'triggered', 'now', ... : no fixed time
            dep_s = None
        if lf is None or lt is None or dep_s is None:
            skipped += 1
            return
        ids.append(vid)
        depart.append(dep_s)
        orig.append(int(a.link_from[lf]))
        dest.append(int(a.link_to[lt]))

    stack: list[ET.Element] = []
    with open_network_file(path) as f:
        for event, el in ET.iterparse(f, events=("start", "end")):
            if event == "start":
                stack.append(el)
                continue
            stack.pop()
            tag = el.tag
            if tag == "route" and stack and stack[-1].tag in ("routes", "additional"):
                routes[el.get("id", "")] = el.get("edges", "").split()
            elif tag == "vehicle":
                child = el.find("route")
                if child is None:
                    child = el.find("routeDistribution/route")
                edges = (child.get("edges", "") if child is not None else "").split()
                if not edges and el.get("route") is not None:
                    edges = routes.get(el.get("route"), [])
                add(el.get("id", ""), el.get("depart"), edges[0] if edges else None,
                    edges[-1] if edges else None)
            elif tag == "trip":
                add(el.get("id", ""), el.get("depart"), el.get("from"), el.get("to"))
            elif tag == "flow":
                flows += 1
            if len(stack) == 1:
                stack[0].clear()  # drop finished top-level elements from the root (streaming)
    return {"id": np.array(ids, dtype=str), "depart_s": np.array(depart, np.float64),
            "origin": np.array(orig, np.int32), "destination": np.array(dest, np.int32),
            "skipped": int(skipped), "flows_skipped": int(flows)}
