"""The scenario's ``emergency:`` section: a pydantic model with bounded fields and city-dependent checks.

Stations, hospitals and units come from the scenario, the OpenStreetMap extract's points of interest,
or both; incident types carry their rates, needed units, on-scene times and response-time targets.
Lists are replaced and dicts merged by variants, so what-if overrides stay short, e.g.
``emergency: {extra_stations: [{name: New, x: 1200, y: 300}], units: {ambulance: 3}, policy: distance}``.
"""
from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

__all__ = [
    "UNIT_TYPES", "UnitGroup", "SiteConfig", "StationConfig", "IncidentType", "LaneClosure",
    "EmergencyConfig", "DEFAULT_HOURLY_PROFILE",
]

UNIT_TYPES = ("ambulance", "fire")

# Relative call volume per hour of day (mean 1): EMS demand is lowest before dawn and peaks late morning.
DEFAULT_HOURLY_PROFILE: list[float] = [
    0.62, 0.52, 0.46, 0.42, 0.42, 0.50, 0.68, 0.92, 1.12, 1.26, 1.32, 1.34,
    1.32, 1.28, 1.26, 1.24, 1.22, 1.20, 1.16, 1.10, 1.02, 0.92, 0.82, 0.70,
]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class UnitGroup(_Strict):
    """``count`` units of one type at a station, on duty from ``shift[0]`` to ``shift[1]`` (hours of day)."""

    type: Literal["ambulance", "fire"] = Field("ambulance", description="unit type")
    count: int = Field(1, ge=0, le=100, description="number of units")
    shift: tuple[float, float] = Field((0.0, 24.0), description="on-duty hours [start, end) of each day; "
                                       "start > end wraps past midnight; (0, 24) is always on duty")

    @model_validator(mode="after")
    def _shift_bounds(self) -> "UnitGroup":
        a, b = self.shift
        if not (0.0 <= a <= 24.0 and 0.0 <= b <= 24.0):
            raise ValueError(f"shift {list(self.shift)} — hours must lie in [0, 24]")
        return self


class SiteConfig(_Strict):
    """A place on the city graph: a node id (or index) or x/y metres (snapped to the nearest node)."""

    name: str | None = Field(None, description="label used in results")
    node: str | int | None = Field(None, description="node id of the city graph (or node index)")
    x: float | None = Field(None, description="projected x in metres (used when node is not given)")
    y: float | None = Field(None, description="projected y in metres (used when node is not given)")

    @model_validator(mode="after")
    def _where(self) -> "SiteConfig":
        if self.node is None and (self.x is None or self.y is None):
            raise ValueError("give node, or both x and y")
        return self


class StationConfig(SiteConfig):
    """A station: its kind and, optionally, its own units (else the section's ``units`` defaults apply)."""

    kind: Literal["ambulance", "fire"] = Field("ambulance", description="station kind")
    units: list[UnitGroup] | None = Field(None, description="units based here; default from `units`")


class LaneClosure(_Strict):
    """Capacity cut on a link next to the incident while it lasts (e.g. a crash blocking lanes)."""

    capacity_factor: float = Field(0.5, ge=0.0, le=1.0, description="capacity factor (0 closes the link)")
    duration_s: float = Field(1800.0, gt=0.0, le=86400.0, description="how long the cut lasts, s")


class IncidentType(_Strict):
    """One kind of incident: how often, what it needs, how long it takes, and its response target."""

    rate_per_day: float = Field(0.0, ge=0.0, le=1e6, description="generated calls per day, whole city")
    rate_per_1000_per_year: float | None = Field(
        None, ge=0.0, le=1e5, description="calls per 1,000 inhabitants a year; when given it replaces rate_per_day "
        "(x the section's population / 1,000 / 365)")
    units: dict[Literal["ambulance", "fire"], int] = Field(
        default_factory=lambda: {"ambulance": 1}, description="units needed per incident by type")
    priority: int = Field(1, ge=1, le=9, description="1 is most urgent; queued calls are served by priority")
    target_s: float | None = Field(600.0, gt=0.0, le=7200.0, description="response-time target (call to first "
                                   "arrival), s; default 600 s = Hessen's Hilfsfrist (10 min in 90% of emergencies, "
                                   "Hessisches Rettungsdienstgesetz / Rettungsdienstplan); null = no target")
    on_scene_s: float = Field(1200.0, ge=0.0, le=86400.0, description="mean time on scene, s")
    on_scene_dist: Literal["exponential", "lognormal", "fixed"] = Field(
        "lognormal", description="distribution of time on scene (lognormal with cv 0.5)")
    transport_prob: float = Field(0.0, ge=0.0, le=1.0, description="share of ambulance attendances that "
                                  "transport a patient to hospital")
    handover_s: float = Field(900.0, ge=0.0, le=14400.0, description="patient handover at hospital, s")
    closure: LaneClosure | None = Field(None, description="lane closure at the incident (traffic accidents)")

    @model_validator(mode="after")
    def _needs_units(self) -> "IncidentType":
        if sum(self.units.values()) <= 0 or min(self.units.values()) < 0:
            raise ValueError(f"units {self.units} — need at least one unit and no negative counts")
        return self


# German rates (see docs/emergency.md): BASt "Leistungen des Rettungsdienstes 2016/17": ~169 ambulance-service
# missions per 1,000 inhabitants a year, 53% emergencies, 47% patient transport; traffic accidents ~9.1 per
# 1,000 a year (issue 17's BASt comparison), taken out of the emergencies; fire brigade calls (fires and
# technical assistance) ~6.8 per 1,000 a year.
RATE_AMBULANCE_PER_1000 = 169.0
RATE_ACCIDENT_PER_1000 = 9.1
RATE_FIRE_PER_1000 = 6.8


def _default_types() -> dict[str, IncidentType]:
    return {
        "emergency": IncidentType(rate_per_1000_per_year=round(RATE_AMBULANCE_PER_1000 * 0.53 - RATE_ACCIDENT_PER_1000, 2),
                                  units={"ambulance": 1}, priority=1, target_s=600.0, on_scene_s=1200.0,
                                  transport_prob=0.7, handover_s=900.0),
        "patient_transport": IncidentType(rate_per_1000_per_year=round(RATE_AMBULANCE_PER_1000 * 0.47, 2),
                                          units={"ambulance": 1}, priority=5, target_s=None, on_scene_s=900.0,
                                          transport_prob=1.0, handover_s=600.0),
        "traffic_accident": IncidentType(rate_per_1000_per_year=RATE_ACCIDENT_PER_1000, units={"ambulance": 1},
                                         priority=1, target_s=600.0, on_scene_s=1500.0, transport_prob=0.5,
                                         closure=LaneClosure(capacity_factor=0.5, duration_s=2400.0)),
        "fire": IncidentType(rate_per_1000_per_year=RATE_FIRE_PER_1000, units={"fire": 1}, priority=1,
                             target_s=600.0, on_scene_s=2700.0, transport_prob=0.0),
    }


class EmergencyConfig(_Strict):
    """The ``emergency:`` section of a scenario."""

    enabled: bool = Field(True, description="run the emergency domain")
    stations_from_osm: bool = Field(True, description="add ambulance_station / fire_station POIs of the city")
    hospitals_from_osm: bool = Field(True, description="add hospital POIs of the city")
    hospital_names: list[str] | None = Field(None, description="keep only hospitals with these names "
                                              "(e.g. those with an emergency department); None keeps all")
    stations: list[StationConfig] = Field(default_factory=list, description="stations given in the scenario")
    extra_stations: list[StationConfig] = Field(default_factory=list, description="stations added by a variant")
    remove_stations: list[str] = Field(default_factory=list, description="names of stations to leave out")
    hospitals: list[SiteConfig] = Field(default_factory=list, description="hospitals given in the scenario")
    units: dict[Literal["ambulance", "fire"], int] = Field(
        default_factory=lambda: {"ambulance": 2, "fire": 1},
        description="units per station of the matching kind when a station lists none")
    incident_types: dict[str, IncidentType] = Field(default_factory=_default_types,
                                                     description="incident types by name")
    population: float | None = Field(None, gt=0.0, le=5e7, description="inhabitants, for rate_per_1000_per_year; "
                                     "default: building footprint x persons_per_m2_footprint (cities with buildings)")
    persons_per_m2_footprint: float = Field(0.0121, gt=0.0, le=1.0, description="inhabitants per m2 of building "
                                            "footprint when population is not given (Bad Hersfeld: 30,000 people / "
                                            "2.49 km2 of OSM building footprint = 0.0121)")
    demand_scale: float = Field(1.0, ge=0.0, le=1000.0, description="multiplies every generated rate")
    hourly_profile: list[float] = Field(default_factory=lambda: list(DEFAULT_HOURLY_PROFILE),
                                        min_length=24, max_length=24,
                                        description="relative call rate per hour of day (normalised to mean 1)")
    start_hour: float = Field(0.0, ge=0.0, lt=24.0, description="hour of day at scenario start (for rates, "
                              "shifts); the engine's time-of-day overrides it when it has one")
    calls_file: str | None = Field(None, description="CSV of timestamped calls: time_s, type, node or x,y")
    generate: bool = Field(True, description="generate Poisson calls from the incident-type rates")
    bus_kinds: dict[str, str] = Field(default_factory=lambda: {"crowd": "medical", "crash": "traffic_accident"},
                                      description="incident kinds from other domains -> incident type")
    policy: Literal["congested", "distance", "station_area"] = Field(
        "congested", description="nearest unit by live congested travel time, by road distance, "
                                 "or the station area's units first (free-flow areas)")
    call_handling_s: float = Field(60.0, ge=0.0, le=3600.0, description="call taking before dispatch, s")
    turnout_s: dict[Literal["ambulance", "fire"], float] = Field(
        default_factory=lambda: {"ambulance": 60.0, "fire": 90.0},
        description="delay from dispatch to rolling when the unit is at its station, s")
    speed_factor: float = Field(1.3, ge=0.5, le=3.0, description="emergency speed relative to free flow")
    priority: bool = Field(True, description="units pass queues (blue lights)")
    redirect_returning: bool = Field(True, description="a unit driving back to station may take a new call")
    preempt: bool = Field(False, description="when no unit is free, divert the nearest unit on its way to "
                          "a less urgent call (that call goes back to the queue)")
    coverage_unit_type: Literal["ambulance", "fire"] = Field("ambulance", description="unit type for coverage")
    coverage_target_s: float | None = Field(None, gt=0.0, le=7200.0, description="coverage target, s "
                                            "(default: target of the first type needing that unit)")

    @model_validator(mode="after")
    def _types_ok(self) -> "EmergencyConfig":
        if any(v < 0 for v in self.hourly_profile) or sum(self.hourly_profile) <= 0:
            raise ValueError("hourly_profile — needs 24 non-negative values, not all zero")
        if "bus_kinds" not in self.model_fields_set:  # defaults: keep only kinds whose type exists
            self.bus_kinds = {k: v for k, v in self.bus_kinds.items() if v in self.incident_types}
        for name, kind in self.bus_kinds.items():
            if kind not in self.incident_types:
                raise ValueError(f"bus_kinds.{name}: {kind!r} — not an incident type; "
                                 f"use one of {sorted(self.incident_types)}")
        return self

    # ---- city-dependent checks --------------------------------------------------------------
    def city_errors(self, city: Any) -> list[str]:
        """Messages ``"<key.path>: <value> — <what is allowed>"`` for nodes the city does not have."""
        errors: list[str] = []
        for key in ("stations", "extra_stations", "hospitals"):
            for i, site in enumerate(getattr(self, key)):
                if site.node is not None and not _has_node(city, site.node):
                    errors.append(f"{key}[{i}].node: {site.node!r} — not a node of the city; "
                                  "use a node id or x/y")
        if not self.enabled:
            return errors
        from agents.emergency.resources import resolve_hospitals, resolve_stations

        try:
            stations = resolve_stations(self, city)
        except (KeyError, ValueError):
            return errors
        have = {u.type for s in stations for u in s.units if u.count > 0}
        for name, t in self.incident_types.items():
            for ut, n in t.units.items():
                if n > 0 and ut not in have:
                    errors.append(f"incident_types.{name}.units.{ut}: {n} — no station has {ut} units; "
                                  "add stations or units of that type, or drop the need")
        if any(t.transport_prob > 0 for t in self.incident_types.values()):
            try:
                if not resolve_hospitals(self, city):
                    errors.append("hospitals: [] — transport_prob > 0 but the city has no hospital; "
                                  "add hospitals with node or x/y, or set transport_prob to 0")
            except (KeyError, ValueError):
                pass
        return errors


def _has_node(city: Any, node: str | int) -> bool:
    if city.has_node(node):
        return True
    if isinstance(node, str) and node.lstrip("-").isdigit():
        return city.has_node(int(node))
    return isinstance(node, int) and 0 <= node < city.arrays.n_nodes
