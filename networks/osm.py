"""Build a CityGraph from an OpenStreetMap XML file (.osm / .osm.gz), offline and streaming.

Drivable ``highway=*`` ways become links between intersections and dead ends (way ends and nodes
shared by two or more ways); intermediate nodes survive only in the link ``shape``. Coordinates are
projected to the UTM zone of the data's centroid. Tag rules live in ``networks.osm_tags``; points of
interest in ``networks.osm_pois``.
"""
from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Callable, Iterator

import networkx as nx
import numpy as np

from networks.geo import Projection, haversine_m, utm_crs
from networks.graph import CityGraph
from networks.osm_tags import directions, is_drivable, lanes_per_direction, speed_kph
from networks.roadclass import lane_capacity_vph
from networks.sumo_net import open_network_file

__all__ = ["load_osm", "read_osm"]


class OsmData:
    """What one streaming pass keeps: all node coordinates, selected ways, tagged nodes."""

    def __init__(self) -> None:
        self.node_index: dict[int, int] = {}  # OSM node id -> row in lon/lat
        self.lon: list[float] = []
        self.lat: list[float] = []
        self.node_tags: dict[int, dict[str, str]] = {}  # only nodes the caller asked for
        self.ways: list[tuple[int, list[int], dict[str, str]]] = []  # (way id, node refs, tags)


def _elements(path: str | Path) -> Iterator[ET.Element]:
    """Finished top-level elements (node, way, relation) of an OSM file; each is cleared after use."""
    with open_network_file(path) as f:
        it = ET.iterparse(f, events=("start", "end"))
        _, root = next(it)
        depth = 1
        for event, el in it:
            if event == "start":
                depth += 1
                continue
            depth -= 1
            if depth == 1:
                yield el
                root.clear()  # drop finished elements: memory stays flat


def read_osm(path: str | Path, keep_way: Callable[[dict[str, str]], bool],
             keep_node: Callable[[dict[str, str]], bool] = lambda tags: False) -> OsmData:
    """One pass over an OSM XML file: every node's lon/lat, plus the ways and tagged nodes asked for."""
    data = OsmData()
    index, lon, lat = data.node_index, data.lon, data.lat
    for el in _elements(path):
        tag = el.tag
        if tag == "node":
            nid = int(el.attrib["id"])
            index[nid] = len(lon)
            lon.append(float(el.attrib["lon"]))
            lat.append(float(el.attrib["lat"]))
            if len(el):
                tags = {t.get("k", ""): t.get("v", "") for t in el.iter("tag")}
                if tags and keep_node(tags):
                    data.node_tags[nid] = tags
        elif tag == "way":
            tags = {t.get("k", ""): t.get("v", "") for t in el.iter("tag")}
            if keep_way(tags):
                data.ways.append((int(el.attrib["id"]), [int(n.attrib["ref"]) for n in el.iter("nd")], tags))
    return data


def _runs(refs: list[int], ok: Callable[[int], bool]) -> list[list[int]]:
    """Maximal runs of consecutive refs that pass ``ok`` (known coordinates, inside the bbox)."""
    runs, cur = [], []
    for r in refs:
        if ok(r):
            cur.append(r)
        else:
            if len(cur) >= 2:
                runs.append(cur)
            cur = []
    if len(cur) >= 2:
        runs.append(cur)
    return runs


def _split(run: list[int], is_node: Callable[[int], bool]) -> list[list[int]]:
    """Split a run at graph nodes; a piece that starts and ends at the same node is halved."""
    pieces, start = [], 0
    for k in range(1, len(run)):
        if is_node(run[k]) or k == len(run) - 1:
            piece = run[start:k + 1]
            if piece[0] == piece[-1] and len(piece) > 2:  # closed loop touching the graph once
                mid = len(piece) // 2
                pieces += [piece[:mid + 1], piece[mid:]]
            elif piece[0] != piece[-1]:
                pieces.append(piece)
            start = k
    return pieces


def load_osm(path: str | Path, name: str | None = None, bbox: tuple[float, float, float, float] | None = None,
             capacity_per_lane_vph: float = 1800.0, include_service: bool = False) -> CityGraph:
    """Road graph from OSM XML: drivable ways split at intersections and dead ends.

    ``bbox`` = (min_lon, min_lat, max_lon, max_lat) keeps only way nodes inside it (ways leaving the
    box are cut there). Node ids are OSM node ids as strings; link ids 'w{way}_{seq}+' (along the way's
    node order) or '-' (against it). Length = sum of haversine segment lengths (m).
    """
    data = read_osm(path, lambda t: is_drivable(t, include_service),
                    lambda t: t.get("highway") == "traffic_signals")
    index = data.node_index
    lon_all, lat_all = np.asarray(data.lon), np.asarray(data.lat)
    if bbox is not None:
        x0, y0, x1, y1 = bbox
        inside = (lon_all >= x0) & (lon_all <= x1) & (lat_all >= y0) & (lat_all <= y1)
        ok = lambda r: r in index and inside[index[r]]  # noqa: E731
    else:
        ok = index.__contains__
    runs = [(wid, run, tags) for wid, refs, tags in data.ways for run in _runs(refs, ok)]
    if not runs:
        raise ValueError(f"{path}: no drivable ways" + (" inside the bbox" if bbox else ""))

    # graph nodes: run ends and nodes used twice or more (by several ways, or twice by one)
    uses: dict[int, int] = {}
    ends: set[int] = set()
    for _, run, _ in runs:
        ends.add(run[0])
        ends.add(run[-1])
        for r in run:
            uses[r] = uses.get(r, 0) + 1
    graph_nodes = ends | {r for r, c in uses.items() if c >= 2}

    used_rows = np.fromiter((index[r] for r in uses), np.int64, len(uses))
    crs = utm_crs(float(lon_all[used_rows].mean()), float(lat_all[used_rows].mean()))
    proj = Projection(crs)
    xs, ys = proj(lon_all, lat_all)

    pieces = [(wid, _split(run, graph_nodes.__contains__), tags) for wid, run, tags in runs]
    graph_nodes = {r for _, ps, _ in pieces for p in ps for r in (p[0], p[-1])}  # + halved loops' middles
    G = nx.MultiDiGraph()
    for r in sorted(graph_nodes):
        i = index[r]
        G.add_node(str(r), x=float(xs[i]), y=float(ys[i]), lon=float(lon_all[i]), lat=float(lat_all[i]),
                   signal=r in data.node_tags, osm_id=r)
    next_seq: dict[int, int] = {}
    for wid, way_pieces, tags in pieces:
        fwd, bwd = directions(tags)
        oneway = fwd != bwd
        road_class = "highway." + tags["highway"]
        attrs = {}
        for direction, allowed in (("forward", fwd), ("backward", bwd)):
            if allowed:
                lanes = lanes_per_direction(tags, oneway, direction)
                speed = speed_kph(tags, direction) / 3.6
                attrs[direction] = dict(lanes=lanes, speed_mps=speed, road_class=road_class, osm_way=wid,
                                        capacity_vph=lanes * lane_capacity_vph(road_class, capacity_per_lane_vph,
                                                                               speed),
                                        name=tags.get("name", ""))
        seq = next_seq.get(wid, 0)  # a way cut by the bbox continues its numbering
        for piece in way_pieces:
            rows = np.fromiter((index[r] for r in piece), np.int64, len(piece))
            length = float(haversine_m(lon_all[rows[:-1]], lat_all[rows[:-1]],
                                       lon_all[rows[1:]], lat_all[rows[1:]]).sum())
            shape = list(zip(xs[rows].tolist(), ys[rows].tolist()))
            u, v = str(piece[0]), str(piece[-1])
            if "forward" in attrs:
                G.add_edge(u, v, id=f"w{wid}_{seq}+", length_m=length, shape=shape, **attrs["forward"])
            if "backward" in attrs:
                G.add_edge(v, u, id=f"w{wid}_{seq}-", length_m=length, shape=shape[::-1], **attrs["backward"])
            seq += 1
        next_seq[wid] = seq
    city = CityGraph(G, name=name or Path(path).name.split(".")[0], crs=crs)
    city.source = str(path)
    city.lonlat_to_xy = proj
    return city
