"""Points of interest from OpenStreetMap XML: chargers, hospitals, ambulance/fire stations, control centres, venues.

Tagged nodes give their own position; tagged ways (building outlines) give the mean of their nodes.
Relations (multipolygons) are not read.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from networks.graph import CityGraph
from networks.osm import read_osm

__all__ = ["POI_KINDS", "poi_kind", "load_osm_pois"]

# (key, value) -> kind, checked in this order (first match wins)
POI_KINDS: tuple[tuple[str, str, str], ...] = (
    ("amenity", "charging_station", "charging_station"),
    ("amenity", "hospital", "hospital"),
    ("emergency", "ambulance_station", "ambulance_station"),
    ("amenity", "fire_station", "fire_station"),
    ("emergency", "control_centre", "control_centre"),
    ("leisure", "stadium", "venue"),
    ("leisure", "sports_centre", "venue"),
    ("amenity", "marketplace", "venue"),
    ("place", "square", "venue"),
)


def poi_kind(tags: dict[str, str]) -> str | None:
    """The POI kind of an OSM tag set, or None if it is not a point of interest we use."""
    for key, value, kind in POI_KINDS:
        if tags.get(key) == value:
            return kind
    return None


def load_osm_pois(path: str | Path, city: CityGraph | None = None,
                  routable: bool = True) -> list[dict[str, Any]]:
    """POIs as dicts: kind, name, osm_id, osm_type ('node'/'way'), lon, lat, tags.

    With a ``city`` (which must have ``lonlat_to_xy``) each dict also gets x, y (metres) and
    node = index of the nearest city node; with ``routable`` (default) the nearest node of the
    largest strongly connected component, so an ambulance can always leave and return.
    """
    wanted = lambda tags: poi_kind(tags) is not None  # noqa: E731
    data = read_osm(path, keep_way=wanted, keep_node=wanted)
    lon_all, lat_all = np.asarray(data.lon), np.asarray(data.lat)
    pois: list[dict[str, Any]] = []
    for nid, tags in data.node_tags.items():
        i = data.node_index[nid]
        pois.append(_poi(tags, nid, "node", float(lon_all[i]), float(lat_all[i])))
    for wid, refs, tags in data.ways:
        rows = [data.node_index[r] for r in dict.fromkeys(refs) if r in data.node_index]  # closed ways repeat
        if rows:
            pois.append(_poi(tags, wid, "way", float(lon_all[rows].mean()), float(lat_all[rows].mean())))
    if city is not None:
        if city.lonlat_to_xy is None:
            raise ValueError(f"city {city.name!r} has no lonlat_to_xy: cannot place POIs")
        nearest = city.nearest_routable_node if routable else city.nearest_node
        for p in pois:
            x, y = city.lonlat_to_xy(p["lon"], p["lat"])
            p["x"], p["y"] = float(x), float(y)
            p["node"] = nearest(p["x"], p["y"])
    return pois


def _poi(tags: dict[str, str], osm_id: int, osm_type: str, lon: float, lat: float) -> dict[str, Any]:
    return {"kind": poi_kind(tags), "name": tags.get("name", ""), "osm_id": osm_id, "osm_type": osm_type,
            "lon": lon, "lat": lat, "tags": dict(tags)}
