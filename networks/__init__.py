"""City graphs: builders (synthetic, OpenStreetMap XML, SUMO .net.xml), zones, routing on CSR arrays.

This package stands alone: it imports nothing from ``twin`` or ``agents``.
"""
from networks.graph import CityGraph, ConnectivityReport, LinkArrays, Zone
from networks.io import summary
from networks.osm import load_osm
from networks.osm_pois import load_osm_pois
from networks.routing import reachable_share, shortest_path, shortest_time
from networks.sumo_net import load_sumo_net, load_sumo_trips
from networks.synthetic import grid, line, radial
from networks.zones import attach_zones, building_zones, grid_zones

__all__ = ["CityGraph", "ConnectivityReport", "LinkArrays", "Zone",
           "grid", "radial", "line", "load_sumo_net", "load_sumo_trips", "load_osm", "load_osm_pois",
           "grid_zones", "building_zones", "attach_zones",
           "shortest_path", "shortest_time", "reachable_share", "summary"]
