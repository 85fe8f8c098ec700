"""The city graph: a networkx MultiDiGraph (the source of truth) with a compiled CSR array view for kernels.

Node attributes: ``x``, ``y`` (metres, projected), ``lon``, ``lat`` (degrees, NaN where unknown),
optional ``signal`` (bool: a signalised junction). Edge attributes: ``id`` (str, unique),
``length_m``, ``lanes``, ``speed_mps``, ``capacity_vph``, ``road_class`` (str), optional ``shape``
(list of (x, y) metres, from-node to to-node) and ``ring`` (roundabout number, -1 or absent if none).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Hashable

import networkx as nx
import numpy as np

__all__ = ["CityGraph", "LinkArrays", "Zone", "ConnectivityReport"]


@dataclass(frozen=True)
class LinkArrays:
    """Flat arrays of the graph, indexed by link (0..L-1) and node (0..N-1), for numba kernels."""

    n_nodes: int
    n_links: int
    link_from: np.ndarray  # int32[L] node index
    link_to: np.ndarray  # int32[L] node index
    length_m: np.ndarray  # float64[L]
    speed_mps: np.ndarray  # float64[L]
    lanes: np.ndarray  # int32[L]
    capacity_vph: np.ndarray  # float64[L]
    fft_s: np.ndarray  # float64[L] free-flow travel time = length / speed
    out_indptr: np.ndarray  # int32[N+1]: out_links[out_indptr[v]:out_indptr[v+1]] leave node v
    out_links: np.ndarray  # int32[L]
    in_indptr: np.ndarray  # int32[N+1]: in_links[in_indptr[v]:in_indptr[v+1]] enter node v
    in_links: np.ndarray  # int32[L]
    node_x: np.ndarray  # float64[N] metres
    node_y: np.ndarray  # float64[N] metres
    node_signal: np.ndarray  # bool[N]
    link_ring: np.ndarray | None = None  # int32[L]: roundabout number of the link, -1 if not on one


@dataclass
class Zone:
    """A traffic zone: node indices with weights (e.g. building floor area) for spreading trips."""

    id: str
    nodes: np.ndarray  # int32 node indices
    weights: np.ndarray  # float64, same length, >= 0
    population: float = 0.0  # optional weight of the zone as a whole (people or buildings)


@dataclass(frozen=True)
class ConnectivityReport:
    """How well connected a graph is: nodes outside the largest strongly connected component."""

    n_nodes: int
    n_components: int
    largest_component: int
    unreachable_nodes: int

    @property
    def strongly_connected(self) -> bool:
        return self.n_components == 1

    def __str__(self) -> str:
        if self.strongly_connected:
            return f"strongly connected ({self.n_nodes} nodes)"
        return (
            f"not strongly connected: {self.n_components} components, largest has "
            f"{self.largest_component} of {self.n_nodes} nodes ({self.unreachable_nodes} outside it)"
        )


class CityGraph:
    """A city road network: ``G`` (networkx) plus a cached ``arrays`` view, zones and points of interest.

    Links are indexed in the order ``G.edges(keys=True)`` yields them when the view is built;
    nodes in the order of ``G.nodes``. Call :meth:`invalidate` after editing ``G``.
    """

    def __init__(self, G: nx.MultiDiGraph, name: str = "city", crs: str | None = None) -> None:
        self.G = G
        self.name = name
        self.crs = crs
        self.zones: dict[str, Zone] = {}
        # what zone weights measure: "equal" (one per node) or "building_area_m2" (building footprint per node)
        self.zone_weight_kind: str = "equal"
        self.pois: list[dict[str, Any]] = []  # dicts with kind, name, node (index), x, y, lon, lat, tags
        self.source: str = ""  # where the graph came from (file path or builder)
        # (lon, lat) degrees -> (x, y) metres in this graph's projection; None for synthetic graphs
        self.lonlat_to_xy: Callable[[float, float], tuple[float, float]] | None = None
        self.sumo_net: str | None = None  # the SUMO .net.xml this graph was read from (source of its junctions)
        self._arrays: LinkArrays | None = None
        self._junctions: Any = None
        self._node_ids: list[Hashable] = []
        self._node_index: dict[Hashable, int] = {}
        self._link_ids: list[str] = []
        self._link_index: dict[str, int] = {}
        self._link_keys: list[tuple] = []

    # ---- compiled view -------------------------------------------------------------------
    def invalidate(self) -> None:
        """Drop the compiled view and junction model; the next access rebuilds them from ``G``."""
        self._arrays = None
        self._junctions = None

    @property
    def arrays(self) -> LinkArrays:
        """The CSR array view (built once, rebuilt after :meth:`invalidate`)."""
        if self._arrays is None:
            self._build()
        return self._arrays  # type: ignore[return-value]

    def _build(self) -> None:
        G = self.G
        self._node_ids = list(G.nodes)
        self._node_index = {n: i for i, n in enumerate(self._node_ids)}
        edges = list(G.edges(keys=True, data=True))
        L, N = len(edges), len(self._node_ids)
        self._link_keys = [(u, v, k) for u, v, k, _ in edges]
        self._link_ids = [str(d.get("id", f"{u}-{v}-{k}")) for u, v, k, d in edges]
        if len(set(self._link_ids)) != L:
            raise ValueError(f"{self.name}: edge ids are not unique")
        self._link_index = {lid: i for i, lid in enumerate(self._link_ids)}
        lf = np.fromiter((self._node_index[u] for u, _, _, _ in edges), np.int32, L)
        lt = np.fromiter((self._node_index[v] for _, v, _, _ in edges), np.int32, L)
        length = np.fromiter((float(d["length_m"]) for *_, d in edges), np.float64, L)
        speed = np.fromiter((float(d["speed_mps"]) for *_, d in edges), np.float64, L)
        lanes = np.fromiter((int(d.get("lanes", 1)) for *_, d in edges), np.int32, L)
        cap = np.fromiter((float(d["capacity_vph"]) for *_, d in edges), np.float64, L)
        length = np.maximum(length, 1.0)
        fft = length / np.maximum(speed, 0.1)
        out_indptr, out_links = _csr(lf, N)
        in_indptr, in_links = _csr(lt, N)
        nx_ = np.array([float(G.nodes[n].get("x", np.nan)) for n in self._node_ids], np.float64)
        ny_ = np.array([float(G.nodes[n].get("y", np.nan)) for n in self._node_ids], np.float64)
        sig = np.array([bool(G.nodes[n].get("signal", False)) for n in self._node_ids], np.bool_)
        ring = np.fromiter((int(d.get("ring", -1)) for *_, d in edges), np.int32, L)
        self._arrays = LinkArrays(N, L, lf, lt, length, speed, lanes, cap, fft,
                                  out_indptr, out_links, in_indptr, in_links, nx_, ny_, sig, ring)

    def junctions(self):
        """The junction model (:class:`networks.junctions.Junctions`): read from the SUMO network the graph
        came from, else derived from signals, road classes and geometry. Built once, on first use."""
        if self._junctions is None:
            from networks.junctions import graph_junctions, sumo_junctions

            a = self.arrays
            if self.sumo_net:
                self._junctions = sumo_junctions(self.sumo_net, self._link_index, a.lanes, a.speed_mps)
            else:
                self._junctions = graph_junctions(self)
        return self._junctions

    # ---- ids <-> indices -----------------------------------------------------------------
    @property
    def node_ids(self) -> list[Hashable]:
        self.arrays
        return self._node_ids

    @property
    def link_ids(self) -> list[str]:
        self.arrays
        return self._link_ids

    def node_index(self, node: Hashable) -> int:
        """Index of a node id (or pass-through of an int index already in range)."""
        self.arrays
        if node in self._node_index:
            return self._node_index[node]
        if isinstance(node, (int, np.integer)) and 0 <= int(node) < len(self._node_ids):
            return int(node)
        raise KeyError(f"unknown node {node!r} in city {self.name!r}")

    def has_node(self, node: Hashable) -> bool:
        self.arrays
        return node in self._node_index

    def link_index(self, link: str | int) -> int:
        """Index of a link id (or pass-through of an int index already in range)."""
        self.arrays
        if isinstance(link, str) and link in self._link_index:
            return self._link_index[link]
        if isinstance(link, (int, np.integer)) and 0 <= int(link) < len(self._link_ids):
            return int(link)
        raise KeyError(f"unknown link {link!r} in city {self.name!r}")

    def has_link(self, link: str) -> bool:
        self.arrays
        return link in self._link_index

    def link_attr(self, i: int) -> dict:
        """The networkx attribute dict of link index ``i``."""
        u, v, k = self._link_keys[i]
        return self.G.edges[u, v, k]

    def nearest_node(self, x: float, y: float) -> int:
        """Index of the node nearest to (x, y) metres."""
        a = self.arrays
        return int(np.nanargmin((a.node_x - x) ** 2 + (a.node_y - y) ** 2))

    def largest_component_mask(self) -> np.ndarray:
        """bool[N]: True for nodes in the largest strongly connected component (mutually routable)."""
        comps = list(nx.strongly_connected_components(self.G))
        mask = np.zeros(len(self.node_ids), np.bool_)
        if comps:
            mask[[self._node_index[n] for n in max(comps, key=len)]] = True
        return mask

    def nearest_routable_node(self, x: float, y: float) -> int:
        """Index of the node nearest to (x, y) metres among the largest strongly connected component."""
        a = self.arrays
        d2 = (a.node_x - x) ** 2 + (a.node_y - y) ** 2
        d2[~self.largest_component_mask()] = np.inf
        return int(np.argmin(d2))

    # ---- diagnostics ---------------------------------------------------------------------
    def connectivity(self) -> ConnectivityReport:
        """Strongly connected components: how many nodes lie outside the largest one."""
        comps = list(nx.strongly_connected_components(self.G))
        largest = max((len(c) for c in comps), default=0)
        n = self.G.number_of_nodes()
        return ConnectivityReport(n, len(comps), largest, n - largest)

    def __repr__(self) -> str:
        return f"CityGraph({self.name!r}, {self.G.number_of_nodes()} nodes, {self.G.number_of_edges()} links)"


def _csr(keys: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """CSR grouping of items 0..len(keys)-1 by ``keys`` (stable order within a group)."""
    order = np.argsort(keys, kind="stable").astype(np.int32)
    counts = np.bincount(keys, minlength=n)
    indptr = np.zeros(n + 1, np.int32)
    np.cumsum(counts, out=indptr[1:])
    return indptr, order
