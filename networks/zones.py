"""Traffic zones: nodes grouped into square cells, weighted equally or by attached building area.

Zones only contain nodes of the largest strongly connected component, so any trip drawn between
two zone nodes is routable. Cells are counted from the south-west corner of the city's nodes:
zone id 'z{col}_{row}' covers x in [xmin + col*cell_m, xmin + (col+1)*cell_m), likewise y.
"""
from __future__ import annotations

import csv
import io
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from networks.graph import CityGraph, Zone
from networks.sumo_net import open_network_file

__all__ = ["grid_zones", "building_zones", "building_node_weights", "BuildingWeights", "attach_zones"]

log = logging.getLogger(__name__)


def _cells(city: CityGraph, cell_m: float) -> tuple[np.ndarray, np.ndarray]:
    """(col, row) int arrays: the square cell of every node."""
    if cell_m <= 0:
        raise ValueError("cell_m must be > 0")
    a = city.arrays
    col = np.floor((a.node_x - np.nanmin(a.node_x)) / cell_m).astype(np.int64)
    row = np.floor((a.node_y - np.nanmin(a.node_y)) / cell_m).astype(np.int64)
    return col, row


def _group(city: CityGraph, cell_m: float, weight: np.ndarray, population: np.ndarray) -> dict[str, Zone]:
    """Zones of routable nodes with weight > 0, one per non-empty cell (ordered by row, then column)."""
    col, row = _cells(city, cell_m)
    keep = city.largest_component_mask() & (weight > 0)
    zones: dict[str, Zone] = {}
    idx = np.flatnonzero(keep)
    order = np.lexsort((col[idx], row[idx]))
    idx = idx[order]
    keys = np.stack([row[idx], col[idx]], axis=1)
    if len(idx) == 0:
        return zones
    breaks = np.flatnonzero(np.any(keys[1:] != keys[:-1], axis=1)) + 1
    for members in np.split(idx, breaks):
        zid = f"z{col[members[0]]}_{row[members[0]]}"
        zones[zid] = Zone(zid, members.astype(np.int32), weight[members].astype(np.float64),
                          float(population[members].sum()))
    return zones


def grid_zones(city: CityGraph, cell_m: float) -> dict[str, Zone]:
    """Square-cell zones with equal node weights (1.0); ``population`` = number of nodes in the zone."""
    n = city.arrays.n_nodes
    return _group(city, cell_m, np.ones(n), np.ones(n))


@dataclass(frozen=True)
class BuildingWeights:
    """Building floor area (m2) and building count attached to each node, plus bookkeeping counts."""

    area_m2: np.ndarray  # float64[N]
    buildings: np.ndarray  # int64[N]
    rows: int  # buildings in the file
    attached: int  # buildings whose GenEdge is a city link
    missing_edge: int  # buildings whose GenEdge is not in the city (dropped)
    moved: int  # attached buildings whose node lay outside the largest SCC (moved to the nearest one in it)


def building_node_weights(city: CityGraph, buildings_csv: str | Path) -> BuildingWeights:
    """Attach each building (CSV columns TAZ,Poly,Area,Weight,GenEdge,PedEdge) to the from-node of its GenEdge.

    Buildings whose node is outside the largest strongly connected component go to the nearest
    node inside it, so every attached area stays routable.
    """
    a = city.arrays
    link_index = {lid: i for i, lid in enumerate(city.link_ids)}
    nodes: list[int] = []
    areas: list[float] = []
    rows = 0
    with open_network_file(buildings_csv) as raw:
        for rec in csv.DictReader(io.TextIOWrapper(raw, encoding="utf-8")):
            rows += 1
            l = link_index.get(rec["GenEdge"])
            if l is not None:
                nodes.append(int(a.link_from[l]))
                areas.append(float(rec["Area"]))
    node_arr = np.asarray(nodes, np.int64)
    mask = city.largest_component_mask()
    outside = np.flatnonzero(~mask[node_arr]) if len(node_arr) else np.empty(0, np.int64)
    if len(outside):
        ins = np.flatnonzero(mask)
        for k in outside:  # few: nearest routable node by straight-line distance
            v = node_arr[k]
            d2 = (a.node_x[ins] - a.node_x[v]) ** 2 + (a.node_y[ins] - a.node_y[v]) ** 2
            node_arr[k] = ins[np.argmin(d2)]
    area = np.bincount(node_arr, weights=np.asarray(areas, np.float64), minlength=a.n_nodes)
    count = np.bincount(node_arr, minlength=a.n_nodes).astype(np.int64)
    return BuildingWeights(area, count, rows, len(nodes), rows - len(nodes), int(len(outside)))


def building_zones(city: CityGraph, buildings_csv: str | Path, cell_m: float = 1000.0) -> dict[str, Zone]:
    """Square-cell zones weighted by building area: node weight = summed area (m2) of its buildings.

    ``Zone.population`` = number of buildings. Buildings whose GenEdge is not a city link are
    dropped and counted in the log (use :func:`building_node_weights` for the figures).
    """
    bw = building_node_weights(city, buildings_csv)
    log.info("%s: %d buildings, %d attached, %d with an edge not in the city, %d moved into the largest SCC",
             buildings_csv, bw.rows, bw.attached, bw.missing_edge, bw.moved)
    return _group(city, cell_m, bw.area_m2, bw.buildings.astype(np.float64))


def attach_zones(city: CityGraph, zones: dict[str, Zone]) -> CityGraph:
    """Set ``city.zones`` (replacing any) and return the city for chaining."""
    n = city.arrays.n_nodes
    for z in zones.values():
        if len(z.nodes) != len(z.weights) or (len(z.nodes) and (z.nodes.min() < 0 or z.nodes.max() >= n)):
            raise ValueError(f"zone {z.id!r} does not fit city {city.name!r}")
    city.zones = dict(zones)
    return city
