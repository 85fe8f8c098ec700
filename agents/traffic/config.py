"""The scenario's ``traffic:`` section: which back-end, routing and calibration parameters, closures."""
from __future__ import annotations

from typing import Literal, NamedTuple

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from agents.traffic.sumo_options import additional_file_errors, normalise_extra_args
from twin.registry import traffic_backend_names  # the allowed back-end names come from the registry

__all__ = ["Closure", "RoutingRules", "SumoOptions", "TrafficConfig"]

# on a SUMO network, what SUMO micro's drivers and router do (measured, docs/traffic_model.md "Routing (session 6)")
SUMO_SPEED_SCALE = 0.92  # SUMO micro's link times on free links are 7-10% (q10-q25) over the speed-limit time
SUMO_ROUTE_REFRESH_S = 60.0  # SUMO routes each departure on current times; tables follow them every minute
SUMO_COST_TAU_S = 90.0  # rerouting device: mean of 180 one-second speed samples (mean age 90 s)


class RoutingRules(NamedTuple):
    """The built-in model's routing and free-speed options with their automatic defaults resolved for a city."""

    turn_costs: bool
    pin_end_links: bool
    route_refresh_s: float
    route_cost_tau_s: float
    speed_scale: float


class Closure(BaseModel):
    """A link closed (capacity factor 0) or narrowed (0 < factor < 1) for a time window."""

    model_config = ConfigDict(extra="forbid")
    link: str = Field(description="Link id of the city graph (a SUMO edge id for SUMO networks).")
    start_s: float = Field(0.0, ge=0, description="When it starts, seconds from scenario start.")
    end_s: float | None = Field(None, ge=0, description="When it ends (s); null = until the end of the run.")
    capacity_factor: float = Field(0.0, ge=0.0, le=1.0, description="0 closes the link; 0.5 halves its capacity.")

    @model_validator(mode="after")
    def _window(self) -> "Closure":
        if self.end_s is not None and self.end_s <= self.start_s:
            raise ValueError(f"end_s ({self.end_s}) must be after start_s ({self.start_s})")
        return self


class SumoOptions(BaseModel):
    """Options of the SUMO back-end (used when ``backend: sumo``)."""

    model_config = ConfigDict(extra="forbid")
    connection: Literal["libsumo", "traci"] = Field("libsumo", description="In-process libsumo (fast) or TraCI socket.")
    gui: bool = Field(False, description="With traci: start sumo-gui instead of sumo, where installed.")
    step_length_s: float = Field(1.0, gt=0, le=10, description="SUMO's own step length (s).")
    mesosim: bool = Field(False, description="Run SUMO's mesoscopic mode instead of the microscopic one.")
    additional_files: list[str] = Field(default_factory=list, description="SUMO additional files (signal programs, ...), relative to the scenario file.")
    extra_args: list[str] = Field(default_factory=list, description=(
        "Extra SUMO options that change the model, as [option, value, ...]; only the allow-list of "
        "agents/traffic/sumo_options.py (docs/sumo.md) is accepted: no option naming a file or writing output."))

    @field_validator("extra_args", mode="before")
    @classmethod
    def _allowed_args(cls, v):
        if not isinstance(v, list):
            return v  # pydantic names the type error
        return normalise_extra_args(v)

    def path_errors(self, resolve) -> list[str]:
        """Each additional file must resolve inside the scenario's folder or the project and hold only
        allowed elements (no detector or output writing files); ``resolve`` is the scenario's path rule."""
        errs = []
        for i, f in enumerate(self.additional_files):
            key = f"sumo.additional_files[{i}]"
            try:
                p = resolve(f)
            except ValueError as exc:
                errs.append(f"{key}: {f[:80]!r} — {exc}")
                continue
            if not p.is_file():
                errs.append(f"{key}: {f[:80]!r} — file not found")
                continue
            errs += [f"{key}: {f[:80]!r} — {m}" for m in additional_file_errors(p)]
        return errs


class TrafficConfig(BaseModel):
    """Traffic back-end and its parameters.

    The built-in model's junction parameters are physical (saturation flow, HBS follow-up time and critical
    gap, SUMO's time-to-teleport), not calibrated factors: see docs/traffic_model.md.
    """

    model_config = ConfigDict(extra="forbid")
    enabled: bool = True
    backend: str = Field(
        "meso", description="meso: built-in numba queue model; freeflow: no congestion; sumo: Eclipse SUMO; "
                            "or any back-end registered in twin.registry (entry points citytwin.traffic_backends).")
    step_s: float | None = Field(None, gt=0, le=10, description="Kernel step (s); default: the scenario's time.step_s.")
    reroute_interval_s: float = Field(300.0, ge=10, le=86400, description="How often link times are refreshed for routing (s).")
    reroute_share: float = Field(0.1, ge=0.0, le=1.0, description="Share of en-route drivers who take the new best route at each refresh.")
    jam_spacing_m: float = Field(7.5, ge=4.0, le=20.0, description="Road length one queued vehicle takes (m): sets storage.")
    capacity_scale: float = Field(1.0, gt=0.0, le=5.0, description="Multiplies every link's and movement's capacity.")
    speed_scale: float | None = Field(None, gt=0.0, le=2.0, description="Multiplies free-flow speeds (drivers below the limit < 1); null: 0.92 on a SUMO network (SUMO micro's drivers' measured free speed, docs/traffic_model.md), 1.0 otherwise.")
    junctions: bool = Field(True, description="Junction model: per-movement capacities (signals, give-way), turn times, turn queues. false: links limit only by their own capacity.")
    saturation_flow_vph: float = Field(1800.0, ge=600.0, le=2600.0, description="Saturation flow of one lane through a junction (veh/h): priority movements, and signals times their green share.")
    follow_up_s: float = Field(3.5, ge=1.5, le=8.0, description="HBS follow-up time t_f of a stream that gives way (s).")
    follow_up_right_s: float = Field(3.0, ge=1.5, le=8.0, description="Follow-up time of a right turn that gives way (s).")
    critical_gap_s: float = Field(6.4, ge=2.0, le=12.0, description="HBS critical gap t_g (s): capacity of a minor stream = 3600/t_f exp(-q_p (t_g - t_f/2)/3600).")
    permissive_capacity: bool = Field(True, description="A signal movement green partly as 'G' (protected) and partly as 'g' (permissive, gives way) passes saturation flow x lanes x its 'G' share plus, over its 'g' share, what gap acceptance leaves against its foes green at the same time (docs/traffic_model.md, Bologna permissive capacity). false: 'G' and 'g' count alike unless never 'G'.")
    permissive_gap_s: float = Field(4.5, ge=2.0, le=12.0, description="Critical headway of a permissive ('g') signal movement against its opposing flow (s; HCM's permitted left turn: 4.5 s).")
    actuated_signals: bool = Field(False, description="SUMO 'actuated' signal programs (SUMO networks): every actuated_interval_s each actuated phase gets the green its movements' arrivals need, between minDur and maxDur (networks/actuated.py); off: the programs run as written.")
    actuated_interval_s: float = Field(90.0, gt=0, le=3600, description="How often (s) actuated phase durations are recomputed.")
    minor_gap_delay: bool = Field(True, description="A vehicle of a stream that gives way (yield, stop, all-way, right-before-left) arriving at an idle line waits Adams' delay (exp(q_p t_g) - q_p t_g - 1) / q_p for a gap in its foes' live flow q_p, below capacity too (docs/traffic_model.md, 'Junction interaction').")
    permissive_gap_wait: bool = Field(False, description="A permissive ('g') signal movement banks no capacity while none of its vehicles waits: an arriving turner looks for its gap from then on (holding its lane, e.g. a shared through lane, meanwhile).")
    lane_lookahead_m: float = Field(0.0, ge=0.0, le=200.0, description="Into a link shorter than this (m), a movement serves each onward movement only on the in-link's lanes whose connections reach it (SUMO's drivers choose lanes for the links ahead), with its own capacity account. 0: off (docs/traffic_model.md, Bologna permissive capacity).")
    flow_window_s: float = Field(120.0, ge=10.0, le=3600.0, description="Averaging time of the conflicting flows a minor stream sees (s).")
    signal_cluster_link_m: float = Field(15.0, ge=0.0, le=50.0, description="A signal head fed only by its own controller through unsignalised links shorter than this (m; a joined signal's cluster pieces) waits no second red: no uniform delay. 0: only directly fed heads (docs/traffic_model.md, Bologna signal throughput; 15 m is the default since Bologna lanes and closure, with stand_unroutable).")
    keep_clear: bool = Field(False, description="SUMO's keep-clear rule on links shorter than two vehicles (junction areas): a vehicle enters one only if the link after it has room.")
    gridlock_time_s: float = Field(300.0, ge=1.0, le=86400.0, description="SUMO's time-to-teleport: the first vehicle of a queue standing still this long jumps along its route to the next link with room (counted as gridlock_resolutions; its wait stays in its travel time).")
    stand_unroutable: bool = Field(True, description="A trip whose pinned first and last links (pin_end_links) have no path between them departs anyway and stands at the end of its first link (rightmost lane) until the gridlock rule moves it on, as SUMO drives it with --ignore-route-errors (docs/traffic_model.md, Bologna lanes and closure). false: it is counted unroutable and never enters.")
    lane_queues: bool = Field(False, description="A vehicle whose lanes are all held by a blocked vehicle ahead waits in its lane's queue without ending the look at the vehicles behind (8 at most otherwise), so a long queue on one lane does not stop vehicles bound for another (docs/traffic_model.md, Bologna lanes and closure).")
    priority_queue_factor: float = Field(0.2, ge=0.0, le=1.0, description="Share of a queue's delay that priority vehicles still suffer.")
    pin_end_links: bool | None = Field(None, description="Trips depart on the first and arrive over the last link of their free-flow shortest path (as the SUMO back-end sends them to SUMO) and route only in between (the count calibration walks the same routes); false: route node to node; null: true on a SUMO network.")
    turn_costs: bool | None = Field(None, description="Route on each movement's own cost (turn time + signal delay + its own queue, as SUMO's router sees internal lanes), over the junction model's movements only; false: node-to-node routing with the least signal delay of a link's movements in its cost; null: true on a SUMO network (its connections and signal programs are real).")
    turn_queue_costs: bool = Field(True, description="With turn_costs: a movement's routing cost also counts its own queue at its live capacity (give-way, green share).")
    route_refresh_s: float | None = Field(None, ge=1, le=86400, description="How often the routing tables follow the link times (s), for departures and re-routing; null: 60 s with turn costs (SUMO routes each departure on the current times), else every reroute_interval_s.")
    route_cost_tau_s: float | None = Field(None, ge=0.0, le=3600.0, description="Time constant (s) of the exponential moving average of routing costs (SUMO's rerouting device: 180 samples of 1 s, mean age 90 s); 0: the costs of the moment of the refresh; null: 90 s with turn costs, else 0.")
    route_sample_s: float = Field(10.0, ge=1.0, le=600.0, description="How often routing costs are sampled into the moving average (s), when route_cost_tau_s > 0.")
    reroute_on_closure: bool = Field(False, description="When a link closes, every driver whose remaining route uses it re-routes at once (SUMO's closing rerouter); false: each re-routes when it reaches the closed link.")
    routes_file: str | None = Field(None, description="Built-in model only: a SUMO route file (.rou.xml[.gz], relative to the scenario file; usually demand.trips_file) whose routes the trips drive as fixed paths, never re-routed (a closed link on one holds the vehicle before it). A trip takes the file entry with its departure, origin and destination; entries without a passenger path on the city, and trips without an entry, are routed as usual and counted (docs/traffic_model.md, fixed routes). null: every trip is routed.")
    sync_interval_s: float = Field(60.0, ge=1.0, le=3600.0, description="Longest the kernel runs between syncs with the clock (s).")
    closures: list[Closure] = Field(default_factory=list, description="Links closed or narrowed during the run.")
    sumo: SumoOptions = Field(default_factory=SumoOptions)

    def routing_for(self, city) -> RoutingRules:
        """Routing options with their automatic (null) defaults resolved: on a SUMO network (``city.sumo_net``) the
        built-in model routes as SUMO's router does (movement costs, pinned end edges, smoothed costs refreshed
        every minute) and drives at SUMO's drivers' measured free speed; on OpenStreetMap and synthetic graphs as
        before (node tables, refreshed every ``reroute_interval_s``: fast on large grids)."""
        sumo = getattr(city, "sumo_net", None) is not None
        turn = sumo if self.turn_costs is None else bool(self.turn_costs)
        pin = sumo if self.pin_end_links is None else bool(self.pin_end_links)
        refresh = self.route_refresh_s if self.route_refresh_s is not None else (
            min(SUMO_ROUTE_REFRESH_S, self.reroute_interval_s) if turn else self.reroute_interval_s)
        tau = self.route_cost_tau_s if self.route_cost_tau_s is not None else (SUMO_COST_TAU_S if turn else 0.0)
        speed = self.speed_scale if self.speed_scale is not None else (SUMO_SPEED_SCALE if sumo else 1.0)
        return RoutingRules(turn, pin, float(refresh), float(tau), float(speed))

    def path_errors(self, resolve) -> list[str]:
        """Files the section names (SUMO additional files, the routes file), checked with the scenario's path rule."""
        errs = self.sumo.path_errors(resolve)
        if self.routes_file is not None:
            f = self.routes_file
            if not f.endswith((".rou.xml", ".rou.xml.gz", ".xml", ".xml.gz")):
                errs.append(f"routes_file: {f[:80]!r} — a SUMO route file (.rou.xml or .rou.xml.gz)")
            else:
                try:
                    if not resolve(f).is_file():
                        errs.append(f"routes_file: {f[:80]!r} — file not found")
                except ValueError as exc:
                    errs.append(f"routes_file: {f[:80]!r} — {exc}")
        return errs

    @field_validator("backend")
    @classmethod
    def _registered(cls, v: str) -> str:
        names = traffic_backend_names()
        if v not in names:
            raise ValueError("unknown traffic back-end; use one of " + ", ".join(repr(n) for n in names))
        return v

    def time_notes(self, time_cfg) -> list[str]:
        """Closures that start at or after the run's end never apply (a what-if that equals its baseline, e.g.
        start_s in the wrong unit, or a shortened run): said as a note, not refused (shortening a scenario is
        a normal way to try it)."""
        end = float(time_cfg.duration_s)
        return [f"closures[{i}].start_s: {c.start_s:g} — at or after the end of the run (time.duration_s {end:g} s): "
                "this closure never applies" for i, c in enumerate(self.closures) if end <= c.start_s < float("inf")]

    def city_errors(self, city) -> list[str]:
        """Closures must name links of the city."""
        errs = []
        for i, c in enumerate(self.closures):
            if not city.has_link(c.link):
                errs.append(f"closures[{i}].link: {c.link!r} — not a link of city {city.name!r} "
                            f"(use a link id such as {city.link_ids[0]!r})")
        return errs
