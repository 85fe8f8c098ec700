"""Interpret OpenStreetMap way tags for cars: drivable classes, direction, speed limit, lanes.

Pure functions on a tag dict, so the rules can be tested without a file. Defaults come from
``networks.roadclass`` (German urban/rural practice).
"""
from __future__ import annotations

import re

from networks.roadclass import DEFAULT_LANES, DEFAULT_SPEED_KPH

__all__ = ["DRIVABLE", "is_drivable", "directions", "speed_kph", "lanes_per_direction"]

DRIVABLE = frozenset({
    "motorway", "motorway_link", "trunk", "trunk_link", "primary", "primary_link",
    "secondary", "secondary_link", "tertiary", "tertiary_link", "unclassified", "residential",
    "living_street",
})
_NO_ACCESS = frozenset({"no", "private", "agricultural", "forestry", "delivery"})
# Named limits (km/h): country prefix stripped, e.g. "DE:urban" -> "urban".
_NAMED_SPEED_KPH = {"urban": 50.0, "rural": 100.0, "motorway": 130.0, "trunk": 100.0,
                    "living_street": 7.0, "walk": 7.0, "zone30": 30.0, "zone:30": 30.0,
                    "zone20": 20.0, "zone:20": 20.0, "bicycle_road": 30.0}
_NUMBER = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(mph|km/h|kmh|kph|knots)?\s*$", re.IGNORECASE)


def is_drivable(tags: dict[str, str], include_service: bool = False) -> bool:
    """True for a car-usable highway way (service roads only when asked; areas and no-access excluded)."""
    hw = tags.get("highway")
    if hw not in DRIVABLE and not (include_service and hw == "service"):
        return False
    if tags.get("area") == "yes":
        return False
    for key in ("motor_vehicle", "motorcar", "access"):
        if key in tags:  # the most specific key present decides
            return tags[key] not in _NO_ACCESS
    return True


def directions(tags: dict[str, str]) -> tuple[bool, bool]:
    """(forward, backward) allowed along the way's node order: oneway yes/-1, roundabouts, motorways."""
    ow = tags.get("oneway", "").lower()
    if ow in ("yes", "true", "1"):
        return True, False
    if ow in ("-1", "reverse"):
        return False, True
    if ow in ("no", "false", "0", "alternating", "reversible"):
        return True, True
    if tags.get("junction") in ("roundabout", "circular"):
        return True, False
    if tags.get("highway") in ("motorway", "motorway_link"):
        return True, False
    return True, True


def _parse_speed(value: str | None) -> float | None:
    """km/h from a maxspeed value ('50', '50 mph', 'DE:urban', 'walk', '50;30'); None if unusable."""
    if not value:
        return None
    value = value.split(";")[0].strip()
    m = _NUMBER.match(value)
    if m:
        v = float(m.group(1))
        unit = (m.group(2) or "").lower()
        if unit == "mph":
            v *= 1.609344
        elif unit == "knots":
            v *= 1.852
        return v if v > 0 else None
    name = value.split(":", 1)[1] if re.match(r"^[A-Za-z]{2}:", value) else value
    return _NAMED_SPEED_KPH.get(name.lower())


def speed_kph(tags: dict[str, str], direction: str = "forward") -> float:
    """Speed limit in km/h for one direction ('forward'/'backward'); class default when missing or 'none'."""
    for key in (f"maxspeed:{direction}", "maxspeed"):
        v = _parse_speed(tags.get(key))
        if v is not None:
            return v
    hw = tags.get("highway", "")
    if tags.get("maxspeed") == "none":  # no limit (German Autobahn): advisory 130 km/h
        return max(130.0, DEFAULT_SPEED_KPH.get(hw, 50.0))
    return DEFAULT_SPEED_KPH.get(hw, 50.0)


def _int(value: str | None) -> int | None:
    if not value:
        return None
    m = re.match(r"\s*(\d+)", value.split(";")[0])
    return int(m.group(1)) if m and int(m.group(1)) > 0 else None


def lanes_per_direction(tags: dict[str, str], oneway: bool, direction: str = "forward") -> int:
    """Lanes in one direction: lanes:forward/backward, else lanes (halved on two-way roads), else class default."""
    explicit = _int(tags.get(f"lanes:{direction}"))
    if explicit:
        return explicit
    total = _int(tags.get("lanes"))
    if total:
        return total if oneway else max(1, total // 2)
    return DEFAULT_LANES.get(tags.get("highway", ""), 1)
