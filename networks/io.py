"""Human-readable reports on a city graph (sizes, road length, connectivity)."""
from __future__ import annotations

from collections import Counter

import numpy as np

from networks.graph import CityGraph

__all__ = ["summary"]


def summary(city: CityGraph) -> str:
    """Multi-line summary: nodes, links, road km, lane-km, signals, classes, zones, POIs, connectivity.

    A graph that is not strongly connected is reported (how many nodes lie outside the largest
    strongly connected component), never raised as an error.
    """
    a = city.arrays
    km = float(a.length_m.sum()) / 1000.0
    lane_km = float((a.length_m * a.lanes).sum()) / 1000.0
    classes = Counter(str(city.link_attr(i).get("road_class", "")) for i in range(a.n_links))
    top = ", ".join(f"{c or '?'} {n}" for c, n in classes.most_common(6))
    lines = [
        f"city {city.name!r} ({city.source or 'unknown source'})",
        f"  nodes {a.n_nodes}, links {a.n_links}, signals {int(np.count_nonzero(a.node_signal))}",
        f"  road {km:.1f} km (directed links), {lane_km:.1f} lane-km",
        f"  classes: {top}",
        f"  zones {len(city.zones)}, POIs {len(city.pois)}, crs {city.crs or 'local metres'}",
        f"  connectivity: {city.connectivity()}",
    ]
    return "\n".join(lines)
