"""The emergency-response domain: wires stations, units, the dispatch centre and call sources to the engine.

Calls come from Poisson generation per zone and type, a calls file, and the event bus (topic
``incident``: e.g. the crowd domain's critical density, a crash that narrows a link). Coverage is
recorded at every record time under the live traffic. Results and KPIs: ``agents.emergency.results``.
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np

from agents.emergency.config import EmergencyConfig, IncidentType, LaneClosure
from agents.emergency.coverage import coverage_share, covered_points, zone_coverage
from agents.emergency.dispatch import DispatchCentre
from agents.emergency.incidents import CallSchedule, Incident, demand_points, poisson_schedule, read_calls
from agents.emergency.paths import QUEUE_SHARE
from agents.emergency.resources import resolve_hospitals, resolve_node, resolve_stations
from agents.emergency.units import Station, Unit
from twin.domain import KPI, Domain

__all__ = ["EmergencyDomain", "coverage_budget_s"]


def coverage_budget_s(cfg: EmergencyConfig) -> float:
    """Travel-time budget (s) for coverage: target minus call handling and turnout of the coverage unit."""
    ut = cfg.coverage_unit_type
    target = cfg.coverage_target_s
    if target is None:
        target = next((t.target_s for t in cfg.incident_types.values()
                       if t.units.get(ut, 0) > 0 and t.target_s is not None), 480.0)
    return max(0.0, target - cfg.call_handling_s - cfg.turnout_s.get(ut, 60.0))


class EmergencyDomain(Domain):
    """Incidents, dispatch and units driving through the simulated traffic."""

    name = "emergency"

    def __init__(self, config: EmergencyConfig) -> None:
        super().__init__(config)
        self.config: EmergencyConfig = config
        self.centre: DispatchCentre | None = None
        self.stations: list[Station] = []
        self.units: list[Unit] = []
        self.bus_ignored = 0
        self.closures = 0
        self._rec: dict[str, list] = {k: [] for k in ("t", "waiting", "busy", "on_duty", "calls",
                                                      "coverage", "zone_coverage")}
        self._kpis: dict[str, KPI] = {}

    # ---- setup --------------------------------------------------------------------------
    def setup(self, twin: Any) -> None:
        """Place stations, hospitals and units; start call sources and shifts."""
        super().setup(twin)
        cfg = self.config
        self.env, self.city = twin.env, twin.city
        self.t_end = float(twin.duration_s)
        base = twin.spawn_rng("emergency")
        self._gen_rng, self._svc_rng = base.spawn(2)
        start_hour = getattr(twin, "start_hour", None)
        self.start_hour = float(cfg.start_hour if start_hour is None else start_hour)
        sites = resolve_stations(cfg, self.city)
        self.hospital_sites = resolve_hospitals(cfg, self.city)
        self.stations = [Station(twin, i, s.name, s.kind, s.node, s.x, s.y, s.source) for i, s in enumerate(sites)]
        traffic = twin.traffic  # required (DOMAIN.requires): the engine refuses a run without traffic
        self.traffic = traffic
        self.centre = DispatchCentre(twin, cfg, self.env, self.city, traffic, self.stations,
                                     self.hospital_sites)
        tcfg = getattr(twin.traffic, "config", None)
        self.centre.queue_share = float(getattr(tcfg, "priority_queue_factor", QUEUE_SHARE))
        for st, site in zip(self.stations, sites):
            for g in site.units:
                for k in range(g.count):
                    u = Unit(twin, len(self.units), f"{st.name}/{g.type}-{k + 1}", g.type, st,
                             tuple(g.shift), self.centre)
                    self.units.append(u)
        self.centre.units = self.units
        for u in self.units:
            if not (u.shift[1] - u.shift[0] >= 24.0):
                self.env.process(u.shift_process(self.start_hour))
        self.dp = demand_points(self.city)
        self._zone_of = np.full(self.city.arrays.n_nodes, -1, np.int32)
        self._zone_of[self.dp.node] = self.dp.zone
        types = cfg.incident_types
        self.population = self._population(twin)
        if cfg.generate:
            rates = {k: self.rate_per_day(t) * cfg.demand_scale for k, t in types.items()}
            sched = poisson_schedule(rates, cfg.hourly_profile, self.dp, self.t_end, self._gen_rng,
                                     self.start_hour)
            self.env.process(self._feed(sched))
        if cfg.calls_file:
            path = twin.resolve_path(cfg.calls_file)
            self.env.process(self._feed(read_calls(path, self.city, set(types), self.dp)))
        if getattr(twin, "bus", None) is not None:
            twin.bus.subscribe("incident", self._on_bus)
        self._budget_s = coverage_budget_s(cfg)
        self._n_rec = 0

    def _population(self, twin: Any) -> float | None:
        """Inhabitants: the section's ``population``, else building footprint (m2, the zone weights of a city built
        with buildings) x ``persons_per_m2_footprint``; None when neither is known."""
        cfg = self.config
        if cfg.population is not None:
            return float(cfg.population)
        zones = getattr(self.city, "zones", {}) or {}
        if getattr(self.city, "zone_weight_kind", "equal") == "building_area_m2" and zones:
            area = float(sum(np.sum(z.weights) for z in zones.values()))
            return area * cfg.persons_per_m2_footprint
        if any(t.rate_per_1000_per_year is not None and t.rate_per_1000_per_year > 0
               for t in cfg.incident_types.values()) and cfg.generate:
            raise ValueError("emergency.population: not given and the city has no buildings file — give the number "
                             "of inhabitants (needed by rate_per_1000_per_year), or use rate_per_day")
        return None

    def rate_per_day(self, t: IncidentType) -> float:
        """Calls per day of an incident type (before ``demand_scale``): per-1,000 rate x population, or rate_per_day."""
        if t.rate_per_1000_per_year is not None:
            return t.rate_per_1000_per_year * (self.population or 0.0) / 1000.0 / 365.0
        return t.rate_per_day

    # ---- call sources -------------------------------------------------------------------
    def _feed(self, sched: CallSchedule):
        env = self.env
        for i in range(len(sched)):
            t = float(sched.time_s[i])
            if t >= self.t_end:
                break
            if t > env.now:
                yield env.timeout(t - env.now)
            self.raise_incident(sched.type[i], int(sched.node[i]), sched.source, int(sched.zone[i]))

    def _draw_on_scene(self, t: IncidentType) -> float:
        m = t.on_scene_s
        if m <= 0 or t.on_scene_dist == "fixed":
            return m
        if t.on_scene_dist == "exponential":
            return float(self._svc_rng.exponential(m))
        s2 = math.log(1.0 + 0.25)  # lognormal with coefficient of variation 0.5
        return float(self._svc_rng.lognormal(math.log(m) - s2 / 2.0, math.sqrt(s2)))

    def raise_incident(self, type_name: str, node: int, source: str = "api", zone: int = -1) -> Incident:
        """A call of ``type_name`` at node index ``node`` comes in now; returns its record."""
        assert self.centre is not None
        t = self.config.incident_types[type_name]
        inc = Incident(id=len(self.centre.incidents), type=type_name, node=int(node), call_s=float(self.env.now),
                       zone=int(zone if zone >= 0 else self._zone_of[node]), source=source,
                       priority=t.priority, target_s=math.nan if t.target_s is None else t.target_s, on_scene_s=self._draw_on_scene(t),
                       transport_u=float(self._svc_rng.random()))
        if t.closure is not None and source != "bus:crash":
            self._close_near(int(node), t.closure)
        self.centre.call(inc)
        return inc

    def _close_near(self, node: int, closure: LaneClosure, link: int | None = None) -> None:
        """Narrow the busiest open link into ``node`` (or ``link``) for the closure's duration."""
        a = self.city.arrays
        tt = self.centre.link_times_s()
        if link is None:
            ins = a.in_links[a.in_indptr[node]:a.in_indptr[node + 1]]
            ins = [int(l) for l in ins if np.isfinite(tt[l])]
            if not ins:
                return
            link = max(ins, key=lambda l: a.capacity_vph[l])
        elif not np.isfinite(tt[link]):
            return  # already closed (e.g. a planned closure): leave it alone
        self.traffic.set_capacity_factor(int(link), closure.capacity_factor)
        self.closures += 1
        self.env.process(self._reopen(int(link), closure.duration_s))

    def _reopen(self, link: int, after_s: float):
        yield self.env.timeout(after_s)
        self.traffic.set_capacity_factor(link, 1.0)

    def _on_bus(self, payload: dict) -> None:
        """An ``incident`` from another domain: map its kind to a type, raise it (now or at ``time_s``)."""
        if payload.get("source") == "emergency":
            return
        kind = str(payload.get("kind", ""))
        tname = kind if kind in self.config.incident_types else self.config.bus_kinds.get(kind)
        link = payload.get("link")
        try:
            li = self.city.link_index(link) if link is not None else None
            if payload.get("node") is not None:
                node = resolve_node(self.city, payload["node"])
            elif li is not None:
                node = int(self.city.arrays.link_to[li])
            else:
                node = resolve_node(self.city, None, payload["x"], payload["y"])
        except (KeyError, TypeError, ValueError):
            node = None
        if tname is None or node is None:
            self.bus_ignored += 1
            return
        delay = max(0.0, float(payload.get("time_s", self.env.now)) - self.env.now)
        self.env.process(self._bus_call(tname, node, kind, li, payload, delay))

    def _bus_call(self, tname: str, node: int, kind: str, link: int | None, payload: dict, delay: float):
        if delay > 0:
            yield self.env.timeout(delay)
        if link is not None and kind == "crash":
            t = self.config.incident_types[tname]
            base = t.closure or LaneClosure()
            cl = LaneClosure(capacity_factor=float(payload.get("capacity_factor", base.capacity_factor)),
                             duration_s=float(payload.get("duration_s", base.duration_s)))
            self._close_near(node, cl, link)
        self.raise_incident(tname, node, source=f"bus:{kind}")

    # ---- recording ----------------------------------------------------------------------
    def coverage_now(self) -> tuple[np.ndarray, float]:
        """(zone coverage [Z], city share) under live traffic from stations with on-duty coverage units."""
        ut = self.config.coverage_unit_type
        nodes = np.array(sorted({u.station.node for u in self.units if u.type == ut and not u.off_duty}),
                         np.int64)
        cov = covered_points(self.city, nodes, self.centre.cost("congested"), self._budget_s, self.dp)
        zc = zone_coverage(cov, self.dp)
        return zc, coverage_share(zc, self.dp)

    def record(self, t_s: float) -> None:
        """Waiting calls, busy and on-duty units, calls in the interval, coverage now."""
        c = self.centre
        r = self._rec
        r["t"].append(float(t_s))
        r["waiting"].append(c.waiting_calls())
        r["busy"].append(sum(u.state not in ("idle", "off", "returning") for u in self.units))
        r["on_duty"].append(sum(not u.off_duty for u in self.units))
        r["calls"].append(len(c.incidents) - self._n_rec)
        self._n_rec = len(c.incidents)
        zc, share = self.coverage_now()
        r["zone_coverage"].append(zc)
        r["coverage"].append(share)

    def finalize(self, t_end_s: float):
        """The domain's Dataset (see ``agents.emergency.results``); also computes the KPIs."""
        from agents.emergency.results import build_dataset, build_kpis

        ds = build_dataset(self, float(t_end_s))
        self._kpis = build_kpis(self, ds, float(t_end_s))
        return ds

    def kpis(self) -> dict[str, KPI]:
        return dict(self._kpis)
