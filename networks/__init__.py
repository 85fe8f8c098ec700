"""City graphs: builders (synthetic, OpenStreetMap XML, SUMO .net.xml), zones, routing on CSR arrays.

This package stands alone: it imports nothing from ``twin`` or ``agents``.
"""
from networks.graph import CityGraph, ConnectivityReport, LinkArrays, Zone

__all__ = ["CityGraph", "ConnectivityReport", "LinkArrays", "Zone"]
