"""Stations and hospitals on the city graph, from the scenario and from the OpenStreetMap extract's POIs.

OSM tags map to kinds: ``emergency=ambulance_station`` -> ambulance station, ``amenity=fire_station`` ->
fire station, ``amenity=hospital`` -> hospital (the city builder stores them in ``city.pois``).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Hashable

import numpy as np

from agents.emergency.config import EmergencyConfig, SiteConfig, StationConfig, UnitGroup

__all__ = ["Site", "StationSite", "resolve_node", "resolve_stations", "resolve_hospitals", "DEFAULT_UNITS"]

DEFAULT_UNITS = {"ambulance": 2, "fire": 1}
_STATION_POI = {"ambulance_station": "ambulance", "fire_station": "fire"}


@dataclass
class Site:
    """A named place snapped to a node of the city (node index; x/y metres)."""

    name: str
    node: int
    x: float
    y: float
    source: str = "scenario"  # "scenario" | "osm" | "variant"


@dataclass
class StationSite(Site):
    """A station site with its kind and unit groups."""

    kind: str = "ambulance"
    units: list[UnitGroup] = field(default_factory=list)


def resolve_node(city: Any, node: Hashable | None, x: float | None = None, y: float | None = None) -> int:
    """Node index for a node id / index, or the node nearest to (x, y) metres; KeyError if unknown."""
    if node is None:
        return city.nearest_node(float(x), float(y))
    if city.has_node(node):
        return city.node_index(node)
    if isinstance(node, str) and node.lstrip("-").isdigit() and city.has_node(int(node)):
        return city.node_index(int(node))
    if isinstance(node, (int, np.integer)) and 0 <= int(node) < city.arrays.n_nodes:
        return int(node)
    raise KeyError(f"unknown node {node!r}")


def _site(city: Any, s: SiteConfig, default_name: str, source: str) -> tuple[str, int, float, float]:
    idx = resolve_node(city, s.node, s.x, s.y)
    a = city.arrays
    return (s.name or default_name, idx, float(a.node_x[idx]), float(a.node_y[idx]))


def _default_units(cfg: EmergencyConfig, kind: str) -> list[UnitGroup]:
    n = cfg.units.get(kind, DEFAULT_UNITS[kind])  # type: ignore[call-overload]
    return [UnitGroup(type=kind, count=n)]


def resolve_stations(cfg: EmergencyConfig, city: Any) -> list[StationSite]:
    """All stations: OSM POIs (if enabled), then ``stations``, then ``extra_stations``; minus ``remove_stations``."""
    out: list[StationSite] = []
    if cfg.stations_from_osm:
        for i, p in enumerate(getattr(city, "pois", []) or []):
            kind = _STATION_POI.get(p.get("kind", ""))
            if kind is None:
                continue
            name = p.get("name") or f"{kind}-osm-{i}"
            node = int(p["node"])
            out.append(StationSite(name, node, float(p["x"]), float(p["y"]), "osm", kind,
                                   _default_units(cfg, kind)))
    for key, source in (("stations", "scenario"), ("extra_stations", "variant")):
        for i, s in enumerate(getattr(cfg, key)):
            assert isinstance(s, StationConfig)
            name, idx, x, y = _site(city, s, f"{key}[{i}]", source)
            units = list(s.units) if s.units is not None else _default_units(cfg, s.kind)
            out.append(StationSite(name, idx, x, y, source, s.kind, units))
    removed = set(cfg.remove_stations)
    out = [s for s in out if s.name not in removed]
    _dedupe_names(out)
    return out


def resolve_hospitals(cfg: EmergencyConfig, city: Any) -> list[Site]:
    """Hospitals: OSM POIs (if enabled; filtered by ``hospital_names``) and the scenario's ``hospitals``."""
    out: list[Site] = []
    if cfg.hospitals_from_osm:
        for i, p in enumerate(getattr(city, "pois", []) or []):
            if p.get("kind") != "hospital":
                continue
            name = p.get("name") or f"hospital-osm-{i}"
            if cfg.hospital_names is not None and name not in cfg.hospital_names:
                continue
            out.append(Site(name, int(p["node"]), float(p["x"]), float(p["y"]), "osm"))
    for i, h in enumerate(cfg.hospitals):
        name, idx, x, y = _site(city, h, f"hospitals[{i}]", "scenario")
        out.append(Site(name, idx, x, y, "scenario"))
    _dedupe_names(out)
    return out


def _dedupe_names(sites: list) -> None:
    seen: dict[str, int] = {}
    for s in sites:
        k = seen.get(s.name, 0)
        seen[s.name] = k + 1
        if k:
            s.name = f"{s.name} ({k + 1})"
