"""The scenario's ``ev:`` section (pydantic v2): fleet, vehicle types, stations, decisions, load management.

Every field is bounded and documented; variants override any of them (lists replace), e.g.
``ev: {share: 0.2, policy: llf, grid_limit_kw: 300, extra_stations: [{node: "123", plugs: 4, power_kw: 50}]}``.
"""
from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from agents.ev.allocation import POLICIES

__all__ = ["EVConfig", "VehicleType", "StationSpec"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class VehicleType(_Strict):
    """One kind of EV: battery, consumption and the most power it accepts on AC and DC plugs."""

    name: str = Field(description="Label, e.g. 'compact'.")
    share: float = Field(gt=0, le=1, description="Share of the EV fleet (shares are normalised).")
    battery_kwh: float = Field(gt=5, le=250, description="Usable battery capacity (kWh).")
    kwh_per_km: float = Field(gt=0.05, le=0.6, description="Consumption at 50 km/h (kWh/km).")
    speed_coeff: float = Field(0.25, ge=0, le=0.9, description="Share of consumption from drag at 50 km/h (0 = speed-independent).")
    ac_max_kw: float = Field(11.0, gt=1, le=43, description="On-board charger limit on AC plugs (<= 22 kW) (kW).")
    dc_max_kw: float = Field(100.0, gt=10, le=400, description="Battery limit on DC plugs (> 22 kW) (kW).")


def _default_types() -> list[VehicleType]:
    # Most BEVs sold in Germany take 11 kW AC (three-phase 16 A); small/older cars 7.4 kW (one phase 32 A).
    return [VehicleType(name="compact", share=0.25, battery_kwh=45, kwh_per_km=0.15, ac_max_kw=7.4, dc_max_kw=50),
            VehicleType(name="midsize", share=0.55, battery_kwh=65, kwh_per_km=0.17, ac_max_kw=11, dc_max_kw=100),
            VehicleType(name="suv", share=0.20, battery_kwh=90, kwh_per_km=0.21, ac_max_kw=11, dc_max_kw=150)]


class StationSpec(_Strict):
    """A charging station: where (node id, or x/y metres, or lon/lat) and how many plugs of what power."""

    id: str | None = Field(None, description="Station id (default: s<k>).")
    name: str | None = None
    node: str | int | None = Field(None, description="Node id of the city graph (an int is taken as a node index if it is not an id).")
    x: float | None = Field(None, description="Projected x (m); with y, snapped to the nearest routable node.")
    y: float | None = None
    lon: float | None = Field(None, ge=-180, le=180)
    lat: float | None = Field(None, ge=-90, le=90)
    plugs: int = Field(2, ge=1, le=200, description="Number of plugs (simpy resource capacity).")
    power_kw: float = Field(22.0, ge=2, le=400, description="Rated power per plug (kW): 7, 11, 22 (AC) or 50, 150 (DC).")
    limit_kw: float | None = Field(None, gt=0, le=100000, description="Grid connection limit of this station (kW).")

    @model_validator(mode="after")
    def _where(self) -> "StationSpec":
        if self.node is None and (self.x is None or self.y is None) and (self.lon is None or self.lat is None):
            raise ValueError("give node, or x and y, or lon and lat")
        return self


class EVConfig(_Strict):
    """Electric vehicles, their chargers and the load management of the ``ev:`` scenario section."""

    enabled: bool = True
    share: float = Field(0.1, ge=0, le=1, description="Share of the scenario's car trips made by EVs.")
    trips: int | None = Field(None, ge=0, le=5_000_000, description="Explicit number of EV trips (overrides share).")
    return_trip: bool = Field(True, description="After its dwell an EV drives back to its origin (if time remains).")
    vehicle_types: list[VehicleType] = Field(default_factory=_default_types, min_length=1)
    home_charging_share: float = Field(0.8, ge=0, le=1, description="Share of EV drivers who charge at home "
                                       "(German surveys: ~0.8); they start fuller and use public plugs only when low.")
    home_soc_mean: float = Field(0.75, gt=0.05, lt=0.99, description="Mean SoC at the first trip of home chargers (Beta).")
    home_soc_sd: float = Field(0.12, gt=0.01, lt=0.45, description="Its standard deviation.")
    soc_init_mean: float = Field(0.55, gt=0.05, lt=0.95, description="Mean SoC at the first trip of drivers without home charging (Beta).")
    soc_init_sd: float = Field(0.2, gt=0.01, lt=0.45, description="Its standard deviation (drivers without home charging).")
    charge_below_soc: float = Field(0.25, ge=0, le=0.9, description="Below this SoC an EV detours to charge before its trip.")
    target_soc: float = Field(0.8, gt=0.1, le=1.0, description="En-route charging stops at this SoC.")
    destination_charge_below_soc: float = Field(0.7, ge=0, le=1, description="Drivers without home charging may plug in at the destination below this SoC (home chargers: below charge_below_soc).")
    destination_request: Literal["session", "target"] = Field(
        "session", description="Energy asked for at a destination: a fitted session energy (lognormal, capped at a full "
                               "battery) or up to target_soc.")
    plug_dwell_h: float = Field(2.0, gt=0, le=48, description="Chance to plug in at a destination = 1 - exp(-dwell / "
                                "plug_dwell_h): short stops rarely plug in, long ones usually do (h).")
    warm_start: bool = Field(True, description="Stations start with sessions in progress, drawn from the fitted occupancy "
                             "at the start hour (arrivals x dwell, M(t)/G/inf).")
    walk_m: float = Field(400.0, ge=0, le=3000, description="Station within this distance of the destination counts as 'at the destination' (m).")
    choice: Literal["nearest", "expected_wait", "smart"] = Field(
        "smart", description="Where to charge: nearest by drive time; + expected wait from history; + live occupancy and congestion.")
    patience_s: float = Field(1800.0, ge=0, le=86400, description="Longest an EV waits for a plug en route before giving up (s).")
    destination_patience_s: float = Field(300.0, ge=0, le=86400, description="Longest wait for a plug at the destination (s).")
    session_params: str | None = Field(None, description="Fitted session parameters (JSON) relative to the scenario; default: the shipped data/ev/session_params.json.")
    dwell_class: str = Field("boulder_7kW", description="Which fitted class gives destination dwell times, session energies "
                             "and the warm start of AC plugs (DC plugs use dc_class).")
    dc_class: str = Field("dundee_50kW", description="Fitted class for the warm start of DC (> 22 kW) plugs.")
    dwell_scale: float = Field(1.0, gt=0, le=10, description="Multiplies fitted dwell times.")
    osm_stations: bool = Field(True, description="Use the city's amenity=charging_station POIs (when 'stations' is empty).")
    osm_default_plugs: int = Field(2, ge=1, le=50, description="Plugs of an OSM station without socket/capacity tags.")
    osm_default_power_kw: float = Field(22.0, ge=2, le=400, description="Plug power of an OSM station without an output tag (kW).")
    min_plugs: int = Field(1, ge=1, le=200, description="Every station has at least this many plugs (what-if).")
    town_ac_plugs: int | None = Field(None, ge=0, le=100000, description="Public AC plugs the town has (e.g. from the "
                                      "national register's density); when the listed stations have fewer, the rest are "
                                      "added as new sites where the most building floor area lies within walk_m.")
    town_dc_plugs: int | None = Field(None, ge=0, le=100000, description="Public DC (> 22 kW) plugs the town has; as "
                                      "town_ac_plugs.")
    fill_ac_site: tuple[int, float] = Field((2, 22.0), description="Plugs and kW of an added AC site (a typical German "
                                            "AC charging post: 2 x 22 kW).")
    fill_dc_site: tuple[int, float] = Field((4, 150.0), description="Plugs and kW of an added DC site.")
    stations: list[StationSpec] = Field(default_factory=list, description="Stations; replaces the OSM ones when given.")
    extra_stations: list[StationSpec] = Field(default_factory=list, description="Stations added to the others (what-if).")
    policy: Literal[POLICIES] = Field("uncontrolled", description="Load management: " + ", ".join(POLICIES) + ".")  # type: ignore[valid-type]
    grid_limit_kw: float | None = Field(None, gt=0, le=1e6, description="Limit on the city's total charging load (kW).")
    station_limit_kw: float | None = Field(None, gt=0, le=1e5, description="Default limit of each station (kW).")
    control_interval_s: float = Field(60.0, ge=1, le=3600, description="Load-management period (s).")
    efficiency: float = Field(0.95, gt=0.5, le=1.0, description="Charger efficiency: battery energy / grid energy.")
    taper_soc: float = Field(0.8, gt=0.3, le=1.0, description="Above this SoC charging power tapers linearly.")
    tou_peak_hours: list[tuple[float, float]] = Field(
        default_factory=list, description="Time-of-use peak windows [[start_h, end_h], ...] (clock hours): flexible charging waits.")
    grid_signal: list[tuple[float, float]] = Field(
        default_factory=list, description="Grid operator's signal [[clock_hour, factor], ...]: scales grid_limit_kw from that hour.")
    guidance_refresh_s: float = Field(300.0, ge=10, le=86400, description="How often live travel times to stations are refreshed (s).")

    @model_validator(mode="after")
    def _check(self) -> "EVConfig":
        for h0, h1 in self.tou_peak_hours:
            if not (0 <= h0 < h1 <= 24):
                raise ValueError(f"tou_peak_hours [{h0}, {h1}]: need 0 <= start < end <= 24")
        for h, f in self.grid_signal:
            if not (0 <= h < 24) or not (0 <= f <= 10):
                raise ValueError(f"grid_signal [{h}, {f}]: hour in [0, 24), factor in [0, 10]")
        for key, (n, kw) in (("fill_ac_site", self.fill_ac_site), ("fill_dc_site", self.fill_dc_site)):
            if not (1 <= n <= 200) or not (2 <= kw <= 400) or (key == "fill_ac_site") != (kw <= 22.0):
                raise ValueError(f"{key} [{n}, {kw}]: plugs 1-200, kW 2-22 for AC, 22-400 for DC")
        if self.charge_below_soc >= self.target_soc:
            raise ValueError(f"charge_below_soc ({self.charge_below_soc}) must be below target_soc ({self.target_soc})")
        return self

    def city_errors(self, city) -> list[str]:
        """Stations must name nodes of the city; lon/lat needs a georeferenced city."""
        errs = []
        for key, specs in (("stations", self.stations), ("extra_stations", self.extra_stations)):
            for i, s in enumerate(specs):
                is_index = isinstance(s.node, int) and 0 <= s.node < len(city.node_ids)
                if s.node is not None and not is_index and not city.has_node(s.node) and not city.has_node(str(s.node)):
                    errs.append(f"{key}[{i}].node: {s.node!r} — not a node of city {city.name!r} "
                                f"(use a node id such as {str(city.node_ids[0])!r})")
                elif s.node is None and s.x is None and getattr(city, "lonlat_to_xy", None) is None:
                    errs.append(f"{key}[{i}].lon: {s.lon!r} — city {city.name!r} has no geographic reference; give node or x/y")
        return errs
