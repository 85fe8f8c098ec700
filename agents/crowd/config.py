"""The scenario's ``crowd:`` section: venues (geometry, exits, arrivals, egress), model and warning settings.

Venue coordinates are local metres; ``origin`` (city metres), ``origin_node`` or ``origin_poi`` places the
local (0, 0) in the city. A ``dt_s`` the kernel cannot step stably is a validation error.
"""
from __future__ import annotations

from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_validator

from agents.crowd.sim import ModelParams, stable_dt

__all__ = ["ExitConfig", "ArrivalConfig", "EgressConfig", "VenueConfig", "ModelConfig", "CrowdConfig"]

Point = tuple[float, float]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ExitConfig(_Strict):
    """An opening in the venue's outer boundary, attached to a city node."""

    name: str = Field(description="Exit name (unique within the venue).")
    at: Point = Field(description="A point on the outer boundary (local m); the opening is centred there.")
    width_m: float = Field(1.2, ge=0.5, le=50.0, description="Clear width of the opening (m).")
    role: Literal["exit", "entrance", "both"] = Field("both", description="Used to leave, to enter, or both.")
    node: int | str | None = Field(None, description="City node (index or id) where people reach the street; "
                                                      "default: the routable node nearest the exit.")
    open: bool = Field(True, description="False closes the exit (a wall).")


class ArrivalConfig(_Strict):
    """People coming to the event through the entrances, spread over a time window."""

    persons: int = Field(ge=0, le=2_000_000, description="How many people arrive.")
    start_s: float = Field(0.0, ge=0.0, description="First arrival (s from scenario start).")
    end_s: float = Field(1800.0, gt=0.0, description="Last arrival (s).")
    shape: Literal["uniform", "triangular"] = Field(
        "triangular", description="Arrival rate over the window: flat, or rising to a peak at 70% of it.")

    @model_validator(mode="after")
    def _window(self) -> "ArrivalConfig":
        if self.end_s <= self.start_s:
            raise ValueError(f"end_s ({self.end_s}) must be after start_s ({self.start_s})")
        return self

    def cumulative(self, t_s: np.ndarray) -> np.ndarray:
        """Expected number arrived by time t (persons)."""
        u = np.clip((np.asarray(t_s, float) - self.start_s) / (self.end_s - self.start_s), 0.0, 1.0)
        if self.shape == "uniform":
            return self.persons * u
        c = 0.7
        f = np.where(u <= c, u * u / c, 1.0 - (1.0 - u) ** 2 / (1.0 - c))
        return self.persons * f


class EgressConfig(_Strict):
    """The end of the event: everyone inside starts leaving between start_s and start_s + spread_s."""

    start_s: float = Field(ge=0.0, description="When people start to leave (s from scenario start).")
    spread_s: float = Field(300.0, ge=0.0, le=86400.0, description="Leaving starts spread uniformly over this (s); "
                                                                   "0 = an evacuation.")


class VenueConfig(_Strict):
    """A stadium, square or hall: walkable polygon, obstacles, walls, exits; where it sits in the city."""

    name: str = Field(description="Venue name (unique).")
    origin: Point | None = Field(None, description="City coordinates (m) of the local origin.")
    origin_node: int | str | None = Field(None, description="Or: the city node at the local origin.")
    origin_poi: str | None = Field(None, description="Or: the name of a city point of interest (kind venue).")
    polygon: list[Point] | None = Field(None, description="Walkable outer ring (local m).")
    wkt: str | None = Field(None, description="Or: WKT POLYGON (holes = obstacles), local m.")
    file: str | None = Field(None, description="Or: a GeoJSON file (local m) beside the scenario.")
    obstacles: list[list[Point]] = Field(default_factory=list, description="Obstacle rings (stages, stands), local m.")
    walls: list[list[Point]] = Field(default_factory=list, description="Thin wall polylines (fences), local m.")
    exits: list[ExitConfig] = Field(default_factory=list, description="Openings in the outer ring.")
    attractor: Point | None = Field(None, description="Where arriving people head (a stage); default: the point "
                                                      "farthest from the entrances.")
    standing_density: float = Field(2.0, ge=0.2, le=6.0, description="Density (persons/m²) at which arrivals fill the "
                                                                      "area around the attractor.")
    initial_persons: int = Field(0, ge=0, le=2_000_000, description="People already standing inside at the start.")
    arrivals: ArrivalConfig | None = None
    egress: EgressConfig | None = None

    @model_validator(mode="after")
    def _shape(self) -> "VenueConfig":
        given = [k for k in ("polygon", "wkt", "file") if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError(f"give exactly one of polygon, wkt, file (got {', '.join(given) or 'none'})")
        places = [k for k in ("origin", "origin_node", "origin_poi") if getattr(self, k) is not None]
        if len(places) > 1:
            raise ValueError(f"give at most one of origin, origin_node, origin_poi (got {', '.join(places)})")
        if self.polygon is not None and len(self.polygon) < 3:
            raise ValueError("polygon needs at least 3 points")
        names = [e.name for e in self.exits]
        if len(set(names)) != len(names):
            raise ValueError(f"exit names must be unique: {names}")
        if self.file is None:
            self.geometry()  # raises ValueError with a clear message on bad exits
        if self.arrivals is not None and self.arrivals.persons > 0 and self.file is None:
            if not any(e.role in ("entrance", "both") and e.open for e in self.exits):
                raise ValueError("arrivals need at least one open exit with role entrance or both")
        return self

    def geometry(self, base: dict | None = None):
        """Build the :class:`VenueGeometry` (``base``: keys loaded from a GeoJSON file)."""
        from agents.crowd.geometry import VenueGeometry, parse_wkt_polygons, polygon_area

        obstacles = [np.asarray(o, float) for o in self.obstacles]
        walls = [np.asarray(w, float) for w in self.walls]
        exits = list(self.exits)
        if base is not None:
            outer = np.asarray(base["polygon"], float)
            obstacles += [np.asarray(o, float) for o in base["obstacles"]]
            walls += [np.asarray(w, float) for w in base["walls"]]
            exits += [ExitConfig(**e) for e in base["exits"]]
        elif self.wkt is not None:
            polys = parse_wkt_polygons(self.wkt)
            if len(polys) != 1:
                raise ValueError(f"wkt must hold one polygon, found {len(polys)}")
            outer = polys[0][0]
            obstacles += polys[0][1:]
        else:
            outer = np.asarray(self.polygon, float)
        if abs(polygon_area(outer)) < 1.0:
            raise ValueError("walkable polygon has (almost) no area")
        g = VenueGeometry.build(outer, obstacles, walls)
        for i, e in enumerate(exits):
            _, dist, _ = g.edge_distance(e.at)
            if dist > 1.0:
                raise ValueError(f"exits[{i}].at: {list(e.at)} is {dist:.1f} m from the boundary — put it on an edge")
            if e.open:
                g.exits.append(g.opening(e.name, e.at, e.width_m))
        return g, [e for e in exits if e.open]


class ModelConfig(_Strict):
    """Collision-free speed model parameters (defaults calibrated: see docs/crowd.md)."""

    radius_m: float = Field(0.205, ge=0.1, le=0.4, description="Half the length an agent takes along its path (m).")
    time_gap_s: float = Field(0.6, ge=0.1, le=3.0, description="Time gap T: speed = gap / T (s).")
    a_ped: float = Field(8.0, ge=0.0, le=50.0, description="Neighbour repulsion strength (1).")
    d_ped_m: float = Field(0.1, ge=0.01, le=1.0, description="Neighbour repulsion range (m).")
    a_wall: float = Field(5.0, ge=0.0, le=50.0, description="Wall repulsion strength (1).")
    d_wall_m: float = Field(0.02, gt=0.0, le=0.5, description="Wall repulsion range (m).")
    core_radius_m: float = Field(0.15, ge=0.05, le=0.3, description="Hard core: no two centres closer than twice "
                                                                  "this (m); bodies compress in a crush.")
    wall_clearance_m: float = Field(0.2, ge=0.05, le=0.4, description="No centre closer than this to a wall (m).")
    noise: float = Field(0.3, ge=0.0, le=1.0, description="Reproducible random term added to the walking "
                                                          "direction (1): breaks arches that would clog a door.")
    max_speed_mps: float = Field(2.0, ge=0.5, le=4.0, description="Largest desired walking speed (m/s).")
    lateral_m: float = Field(0.65, ge=0.2, le=1.0, description="Body width (m): a neighbour whose centre is "
                                                             "within this of one's path blocks the way.")
    creep_mps: float = Field(0.4, ge=0.0, le=1.0, description="Speed (m/s) allowed to someone held up only by "
                                                             "people behind them in the field: breaks deadlocks "
                                                             "at doors.")
    anticipation_s: float = Field(1.0, ge=0.0, le=5.0, description="Counter-flow: oncoming walkers are avoided as "
                                                                 "if closer by their closing speed x this (s).")
    a_side: float = Field(2.0, ge=0.0, le=20.0, description="Counter-flow: strength of the sideways step away from "
                                                           "an oncoming walker ahead (1); 0 = off.")
    side_bias_m: float = Field(0.1, ge=0.0, le=1.0, description="Counter-flow: pass oncoming walkers on the right "
                                                               "unless they are this far to one's right already (m).")
    oncoming_width_m: float = Field(0.3, ge=0.1, le=1.0, description="Counter-flow: an oncoming walker holds one up "
                                                                    "only within this of one's path (m).")
    noise_speed_mps: float = Field(1.5, ge=0.0, le=4.0, description="The direction noise fades out as a walker's "
                                                                   "speed rises to this (m/s); 0 = at any speed.")
    zipper_width_m: float = Field(0.3, ge=0.1, le=1.0, description="Zipper: a walker ahead in one's lane (same "
                                  "way, moving, parallel) holds one up only within this of one's path (m).")
    zipper_speed_mps: float = Field(0.3, ge=0.0, le=2.0, description="Zipper: ... when it moves at least this fast "
                                                                    "(m/s); 0 = off.")
    zipper_angle_deg: float = Field(30.0, ge=0.0, le=180.0, description="Zipper: ... and its desired direction is "
                                                                       "within this angle of one's own (degrees).")
    reaction_time_s: float = Field(0.2, ge=0.0, le=1.0, description="The walking direction turns towards the "
                                   "computed one with this reaction time (s); 0 = at once.")
    speed_mean_mps: float = Field(1.34, ge=0.3, le=2.5, description="Mean free walking speed (m/s), Weidmann.")
    speed_sd_mps: float = Field(0.26, ge=0.0, le=1.0, description="Its standard deviation (m/s).")

    def params(self) -> ModelParams:
        return ModelParams(radius_m=self.radius_m, time_gap_s=self.time_gap_s, a_ped=self.a_ped,
                           d_ped_m=self.d_ped_m, a_wall=self.a_wall, d_wall_m=self.d_wall_m,
                           core_radius_m=self.core_radius_m, wall_clearance_m=self.wall_clearance_m,
                           max_speed_mps=self.max_speed_mps, noise=self.noise, lateral_m=self.lateral_m,
                           creep_mps=self.creep_mps, anticipation_s=self.anticipation_s, a_side=self.a_side,
                           side_bias_m=self.side_bias_m, oncoming_width_m=self.oncoming_width_m,
                           noise_speed_mps=self.noise_speed_mps, zipper_width_m=self.zipper_width_m,
                           zipper_speed_mps=self.zipper_speed_mps, zipper_angle_deg=self.zipper_angle_deg,
                           reaction_time_s=self.reaction_time_s)


class CrowdConfig(_Strict):
    """Crowd flow in venues: pedestrian kernel, density maps, warnings, people leaving by car."""

    enabled: bool = True
    dt_s: float = Field(0.05, gt=0.0, le=1.0, description="Kernel sub-step (s); must be stable for the model.")
    update_s: float = Field(1.0, ge=0.1, le=60.0, description="How often the crowd syncs with the clock: arrivals, "
                                                              "density samples, warnings (s).")
    raster_cell_m: float = Field(0.2, ge=0.05, le=0.5, description="Cell of the walkable grid and navigation fields (m).")
    density_cell_m: float = Field(1.0, ge=0.25, le=10.0, description="Cell of the recorded density map (m).")
    density_window_m: float = Field(2.0, ge=0.5, le=20.0, description="Side of the square over which density is "
                                                                      "averaged for warnings (m).")
    warn_density: float = Field(4.0, gt=0.0, le=10.0, description="Warning level (persons/m², moving crowd).")
    critical_density: float = Field(5.5, gt=0.0, le=12.0, description="Critical level (persons/m²).")
    warn_duration_s: float = Field(10.0, ge=0.0, le=3600.0, description="How long density must stay above a level "
                                                                        "before a warning is raised (s).")
    car_share: float = Field(0.3, ge=0.0, le=1.0, description="Share of leavers who drive away.")
    persons_per_car: float = Field(1.5, ge=1.0, le=9.0, description="Car occupancy (persons per car).")
    walk_to_car_s: float = Field(600.0, ge=0.0, le=7200.0, description="Walk from exit to car: uniform 0..this (s).")
    model: ModelConfig = Field(default_factory=ModelConfig)
    venues: list[VenueConfig] = Field(min_length=1, description="The venues simulated.")

    @model_validator(mode="after")
    def _checks(self) -> "CrowdConfig":
        lim = stable_dt(self.model.params())
        if self.dt_s > lim + 1e-12:
            raise ValueError(f"dt_s {self.dt_s} s is unstable for this model: use dt_s <= {lim:.4f} s "
                             f"(min of time_gap_s/2 and min(core_radius_m, wall_clearance_m)/max_speed_mps)")
        if self.critical_density < self.warn_density:
            raise ValueError(f"critical_density ({self.critical_density}) must be >= warn_density ({self.warn_density})")
        if self.density_window_m < self.density_cell_m:
            raise ValueError("density_window_m must be >= density_cell_m")
        names = [v.name for v in self.venues]
        if len(set(names)) != len(names):
            raise ValueError(f"venue names must be unique: {names}")
        return self

    def city_errors(self, city) -> list[str]:
        """Nodes and points of interest named by venues must exist in the city."""
        errs: list[str] = []
        poi_names = {p.get("name") for p in getattr(city, "pois", [])}
        for i, v in enumerate(self.venues):
            if v.origin_node is not None and not _has_node(city, v.origin_node):
                errs.append(f"venues[{i}].origin_node: {v.origin_node!r} — not a node of the city")
            if v.origin_poi is not None and v.origin_poi not in poi_names:
                kinds = sorted(str(p.get("name")) for p in city.pois if p.get("kind") == "venue")[:5]
                errs.append(f"venues[{i}].origin_poi: {v.origin_poi!r} — not a point of interest of the city"
                            + (f" (venues: {', '.join(kinds)})" if kinds else ""))
            for k, e in enumerate(v.exits):
                if e.node is not None and not _has_node(city, e.node):
                    errs.append(f"venues[{i}].exits[{k}].node: {e.node!r} — not a node of the city")
        return errs


def _has_node(city, node) -> bool:
    try:
        city.node_index(node)
        return True
    except (KeyError, TypeError):
        return False
