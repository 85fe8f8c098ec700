"""Shortest-path trees for dispatch and coverage, on the numba kernels of ``networks.routing``.

``emergency_link_times_s`` turns live link times into what a blue-light unit needs (one formula in one
place); ``times_to`` / ``times_from`` give one tree; ``min_times_from`` many sources at once.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from networks.routing import dijkstra_from, dijkstra_to, next_hop_tables, path_links

__all__ = ["emergency_link_times_s", "times_to", "times_from", "min_times_from", "times_from_many", "route_links"]

# Share of a link's queue delay (congested minus free-flow time) that a priority unit still suffers
# (the meso back-end's default ``traffic.priority_queue_factor``; the domain reads the live setting).
QUEUE_SHARE = 0.2


def emergency_link_times_s(link_tt_s: np.ndarray, fft_s: np.ndarray, speed_factor: float,
                           priority: bool = True, queue_share: float = QUEUE_SHARE) -> np.ndarray:
    """Estimated per-link time (s) of a unit: free flow / speed factor plus part of the queue delay.

    Without priority the unit drives like any car (the live congested time). ``inf`` stays ``inf``.
    """
    tt = np.asarray(link_tt_s, np.float64)
    if not priority:
        return np.ascontiguousarray(tt)
    delay = np.maximum(tt - fft_s, 0.0)
    return np.ascontiguousarray(fft_s / speed_factor + queue_share * delay)


def route_links(city: Any, orig: int, dest: int, cost: np.ndarray) -> list[int]:
    """Link indices of the least-``cost`` path orig -> dest (empty if unroutable or orig == dest)."""
    a = city.arrays
    dist, pred = dijkstra_from(int(orig), np.ascontiguousarray(cost, np.float64), a.out_indptr, a.out_links,
                               a.link_to, a.n_nodes)
    if orig == dest or not np.isfinite(dist[dest]):
        return []
    return [int(x) for x in path_links(int(orig), int(dest), pred, a.link_from)]


def times_to(city: Any, dest: int, cost: np.ndarray) -> np.ndarray:
    """Cost (e.g. s) from every node to ``dest`` (inf where unreachable)."""
    a = city.arrays
    return dijkstra_to(int(dest), cost, a.in_indptr, a.in_links, a.link_from, a.n_nodes)[0]


def times_from(city: Any, orig: int, cost: np.ndarray) -> np.ndarray:
    """Cost (e.g. s) from ``orig`` to every node (inf where unreachable)."""
    a = city.arrays
    return dijkstra_from(int(orig), cost, a.out_indptr, a.out_links, a.link_to, a.n_nodes)[0]


def times_from_many(city: Any, origins: np.ndarray, cost: np.ndarray) -> np.ndarray:
    """float32[S, N]: cost from each origin to every node (parallel kernel on the reversed graph roles).

    Uses the reverse-tree kernel with the graph's directions swapped, so row s is a forward tree.
    """
    a = city.arrays
    origins = np.ascontiguousarray(origins, np.int32)
    if origins.size == 0:
        return np.empty((0, a.n_nodes), np.float32)
    # A forward tree from s is a reverse tree on the transposed graph: swap in/out and from/to.
    dist, _ = next_hop_tables(origins, cost, a.out_indptr, a.out_links, a.link_to, a.n_nodes)
    return dist


def min_times_from(city: Any, origins: np.ndarray, cost: np.ndarray) -> np.ndarray:
    """float64[N]: cost from the nearest of ``origins`` to each node (inf if none reaches it)."""
    a = city.arrays
    best = np.full(a.n_nodes, np.inf)
    for o in np.unique(np.asarray(origins, np.int64)):
        np.minimum(best, times_from(city, int(o), cost), out=best)
    return best
