"""Road-class defaults shared by the OSM and SUMO loaders: per-lane capacity, speed and lanes.

Per-lane capacities are planning figures (veh/h/lane) for a base of 1800 veh/h/lane; loaders scale
them by ``capacity_per_lane_vph / 1800`` so one scenario knob moves every class together.
"""
from __future__ import annotations

__all__ = ["BASE_CAPACITY_PER_LANE_VPH", "CAPACITY_PER_LANE_VPH", "DEFAULT_SPEED_KPH",
           "DEFAULT_LANES", "normalise_class", "lane_capacity_vph"]

BASE_CAPACITY_PER_LANE_VPH = 1800.0

# veh/h/lane at base 1800: high-grade roads have fewer conflicts, minor roads more (parking, crossings).
CAPACITY_PER_LANE_VPH: dict[str, float] = {
    "motorway": 2000.0, "motorway_link": 1800.0,
    "trunk": 1900.0, "trunk_link": 1700.0,
    "primary": 1800.0, "primary_link": 1600.0,
    "secondary": 1600.0, "secondary_link": 1500.0,
    "tertiary": 1400.0, "tertiary_link": 1300.0,
    "unclassified": 1200.0, "residential": 1200.0,
    "living_street": 600.0, "service": 800.0,
    "arterial": 1800.0,  # synthetic radial spokes
}
UNKNOWN_CAPACITY_PER_LANE_VPH = 1200.0

# Default speed (km/h) when a way has no usable maxspeed (German urban/rural practice).
DEFAULT_SPEED_KPH: dict[str, float] = {
    "motorway": 120.0, "motorway_link": 80.0,
    "trunk": 100.0, "trunk_link": 60.0,
    "primary": 70.0, "primary_link": 50.0,
    "secondary": 60.0, "secondary_link": 50.0,
    "tertiary": 50.0, "tertiary_link": 40.0,
    "unclassified": 50.0, "residential": 30.0,
    "living_street": 7.0, "service": 20.0,
}

# Default lanes per direction (OSM ways without a lanes tag).
DEFAULT_LANES: dict[str, int] = {"motorway": 2, "trunk": 2}


def normalise_class(road_type: str) -> str:
    """Bare OSM class from a SUMO edge type or OSM value: 'highway.primary|railway.tram' -> 'primary'."""
    for part in (road_type or "").split("|"):
        part = part.strip()
        if part.startswith("highway."):
            return part[len("highway."):]
        if part in CAPACITY_PER_LANE_VPH:
            return part
    return road_type or ""


def _capacity_by_speed(speed_mps: float) -> float:
    """Per-lane capacity (veh/h, base 1800) guessed from speed for untyped edges (e.g. hand-made SUMO nets)."""
    if speed_mps >= 22.2:  # >= 80 km/h: motorway-like
        return 2000.0
    if speed_mps >= 15.3:  # >= 55 km/h: primary
        return 1800.0
    if speed_mps >= 11.1:  # >= 40 km/h: secondary / urban through road
        return 1600.0
    return 1200.0


def lane_capacity_vph(road_class: str, capacity_per_lane_vph: float = BASE_CAPACITY_PER_LANE_VPH,
                      speed_mps: float | None = None) -> float:
    """Capacity of one lane (veh/h) of a road class, scaled relative to the base of 1800 veh/h/lane.

    Unknown classes use ``speed_mps`` when given (see ``_capacity_by_speed``), else 1200 veh/h/lane.
    """
    base = CAPACITY_PER_LANE_VPH.get(normalise_class(road_class))
    if base is None:
        base = _capacity_by_speed(speed_mps) if speed_mps is not None else UNKNOWN_CAPACITY_PER_LANE_VPH
    return base * capacity_per_lane_vph / BASE_CAPACITY_PER_LANE_VPH
