"""Load a SUMO network (.net.xml[.gz]) into a CityGraph via sumolib, and SUMO route files into trip arrays.

Links map one-to-one to SUMO edges that allow passenger cars (the SUMO traffic back-end relies on
this); nodes are the junctions those edges touch. Per-lane capacity comes from the road class
(see ``networks.roadclass``).
"""
from __future__ import annotations

import gzip
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
                   name=e.getName() or "",  # the street name (OSM name tag via netconvert), for hover text
                   ring=ring_of.get(e.getID(), -1))  # roundabout number, -1 if none
    city = CityGraph(G, name=name or Path(path).name.split(".")[0],
                     crs=net._location["projParameter"] if geo else None)
    city.source = str(path)
    city.sumo_net = str(path)
    city.lonlat_to_xy = proj
    return city


def open_network_file(path: str | Path) -> IO[bytes]:
    """Open a file, transparently gunzipping (by magic bytes, not by name)."""
    with open(path, "rb") as f:
        magic = f.read(2)
    return cast(IO[bytes], gzip.open(path, "rb") if magic == b"\x1f\x8b" else open(path, "rb"))


# SUMO route files (vehicles, trips, flows, route definitions) are read in networks.sumo_routes
from networks.sumo_routes import load_sumo_trips  # noqa: E402  (re-exported: networks.sumo_net.load_sumo_trips)
