"""The crowd domain: venues on the city graph, stepped on the engine's clock, recorded as density maps.

Results (see docs/results.md): ``crowd_density`` (venue, time, crowd_y, crowd_x) m-2, time-mean over each
record interval; ``crowd_peak_density`` and ``crowd_occupancy`` (venue, time); ``crowd_exit_flow``
(time, crowd_exit) s-1 with exit venue/name/node/width/x/y; warnings along ``warning`` (venue, level,
start, end, peak, x, y in city m); per-venue totals. People leaving become car trips from the exit's node
(``twin.traffic.add_trips``); a critical warning publishes an ``incident`` on ``twin.bus``.
"""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import xarray as xr

from agents.crowd.config import CrowdConfig, VenueConfig
from agents.crowd.geometry import load_geojson, parse_wkt_polygons
from agents.crowd.venue import VenueRun
from twin.domain import KPI, Domain

__all__ = ["CrowdDomain"]


class CrowdDomain(Domain):
    """Pedestrian crowds in venues, density warnings, and the cars they send onto the streets."""

    name = "crowd"

    def __init__(self, config: CrowdConfig) -> None:
        super().__init__(config)
        self.venues: list[VenueRun] = []
        self.exit_nodes: list[list[int]] = []
        self.car_trips: list[int] = []
        self.incidents: list[dict] = []

    # ---- set-up -------------------------------------------------------------------------------
    def setup(self, twin) -> None:
        """Build each venue (geometry, fields, schedules) and register the crowd process on the clock."""
        self.twin = twin
        cfg: CrowdConfig = self.config
        self.rng = twin.spawn_rng("crowd")
        city = twin.city
        routable = city.largest_component_mask() if hasattr(city, "largest_component_mask") else None
        self._dest_nodes = np.flatnonzero(routable) if routable is not None else np.arange(city.arrays.n_nodes)
        for vc in cfg.venues:
            base = self._load_file(vc) if vc.file else None
            g, exits = vc.geometry(base)
            origin = self._origin(vc)
            run = VenueRun(vc, cfg, g, exits, origin, self.rng)
            nodes = []
            for e, eg in zip(exits, g.exits):
                if e.node is not None:
                    nodes.append(city.node_index(e.node))
                else:
                    cx, cy = run.to_city(*eg.centre)
                    nodes.append(city.nearest_routable_node(cx, cy) if hasattr(city, "nearest_routable_node")
                                 else city.nearest_node(cx, cy))
            self.venues.append(run)
            self.exit_nodes.append(nodes)
            self.car_trips.append(0)
        self._carry = [np.zeros(len(v.exit_cfg)) for v in self.venues]
        self._flows: list[np.ndarray] = []
        self._dens: list[list[np.ndarray]] = [[] for _ in self.venues]
        self._peak: list[list[float]] = [[] for _ in self.venues]
        self._occ: list[list[int]] = [[] for _ in self.venues]
        self._exits_prev = [np.zeros(len(v.exit_cfg), np.int64) for v in self.venues]
        self._flow_rows: list[np.ndarray] = []
        self._last_record = 0.0
        twin.shared["crowd"] = {v.name: {"inside": 0, "peak_density": 0.0} for v in self.venues}
        twin.env.process(self._run())

    def _load_file(self, vc: VenueConfig) -> dict:
        p = Path(self.twin.resolve_path(vc.file))
        if p.suffix.lower() == ".wkt":
            polys = parse_wkt_polygons(p.read_text())
            return {"polygon": polys[0][0].tolist(), "obstacles": [r.tolist() for r in polys[0][1:]],
                    "walls": [], "exits": []}
        return load_geojson(p)

    def _origin(self, vc: VenueConfig) -> tuple[float, float]:
        city = self.twin.city
        if vc.origin is not None:
            return float(vc.origin[0]), float(vc.origin[1])
        if vc.origin_node is not None:
            i = city.node_index(vc.origin_node)
            return float(city.arrays.node_x[i]), float(city.arrays.node_y[i])
        if vc.origin_poi is not None:
            for p in city.pois:
                if p.get("name") == vc.origin_poi:
                    return float(p["x"]), float(p["y"])
            raise KeyError(f"crowd: venue {vc.name!r}: no point of interest named {vc.origin_poi!r}")
        return 0.0, 0.0

    # ---- the process --------------------------------------------------------------------------
    def _run(self):
        env = self.twin.env
        dt = self.config.update_s
        end = float(self.twin.duration_s)
        while env.now + 1e-9 < end:
            step = min(dt, end - env.now)
            yield env.timeout(step)
            now = float(env.now)
            for k, v in enumerate(self.venues):
                res = v.tick(now, step)
                if res.exits.sum() > 0:
                    self._cars(k, res.exits, now)
                for w in res.raised:
                    if w.level == "critical":
                        self._incident(v, w)
                sh = self.twin.shared["crowd"][v.name]
                sh["inside"] = v.inside
                sh["peak_density"] = res.peak_density

    def _cars(self, k: int, left: np.ndarray, now: float) -> None:
        cfg = self.config
        carry = self._carry[k]
        carry += left * cfg.car_share / cfg.persons_per_car
        n = np.floor(carry + 1e-9).astype(np.int64)
        carry -= n
        total = int(n.sum())
        if total == 0:
            return
        origins = np.repeat(np.asarray(self.exit_nodes[k], np.int64), n)
        dests = self.rng.choice(self._dest_nodes, total)
        same = dests == origins
        while same.any() and self._dest_nodes.size > 1:
            dests[same] = self.rng.choice(self._dest_nodes, int(same.sum()))
            same = dests == origins
        depart = now + self.rng.uniform(0.0, cfg.walk_to_car_s, total)
        traffic = getattr(self.twin, "traffic", None)
        if traffic is not None:
            traffic.add_trips(origins, dests, depart, kind="car")
        self.car_trips[k] += total

    def _incident(self, v: VenueRun, w) -> None:
        x, y = v.to_city(w.x, w.y)
        node = self.twin.city.nearest_node(x, y) if math.isfinite(x) else self.exit_nodes[0][0]
        payload = {"kind": "crowd", "node": int(node), "time_s": float(self.twin.env.now), "source": "crowd",
                   "venue": v.name, "density": float(w.peak_density)}
        self.incidents.append(payload)
        self.twin.bus.publish("incident", payload)

    # ---- recording ----------------------------------------------------------------------------
    def record(self, t_s: float) -> None:
        """Store the interval's mean density map, peak density, occupancy and exit counts."""
        for k, v in enumerate(self.venues):
            m, p = v.take_interval()
            self._dens[k].append(m.astype(np.float32))
            self._peak[k].append(p)
            self._occ[k].append(v.inside)
        counts = np.concatenate([v.sim.exit_count[: v.n_exits] for v in self.venues]) if self.venues else np.zeros(0)
        prev = np.concatenate(self._exits_prev) if self.venues else np.zeros(0)
        span = max(t_s - self._last_record, 1e-9)
        self._flow_rows.append((counts - prev) / span)
        self._exits_prev = [v.sim.exit_count[: v.n_exits].copy() for v in self.venues]
        self._last_record = t_s

    def finalize(self, t_end_s: float) -> xr.Dataset:
        """Assemble the crowd variables (units and long names on each)."""
        for v in self.venues:
            v.tracker.close(t_end_s)
        times = np.asarray(getattr(self.twin, "record_times", []), float)[: len(self._flow_rows)]
        nt = len(times)
        names = [v.name for v in self.venues]
        ny = max(v.density.shape[0] for v in self.venues)
        nx = max(v.density.shape[1] for v in self.venues)
        cell = self.config.density_cell_m
        dens = np.full((len(self.venues), nt, ny, nx), np.nan, np.float32)
        for k, v in enumerate(self.venues):
            a, b = v.density.shape
            if nt:
                dens[k, :, :a, :b] = np.stack(self._dens[k][:nt])
        ds = xr.Dataset(coords={"venue": names, "time": times,
                                "crowd_y": (np.arange(ny) + 0.5) * cell, "crowd_x": (np.arange(nx) + 0.5) * cell})
        ds["crowd_y"].attrs.update(units="m", long_name="local y of density cell centre (from crowd_venue_y0)")
        ds["crowd_x"].attrs.update(units="m", long_name="local x of density cell centre (from crowd_venue_x0)")

        def put(name, dims, data, units, long):
            ds[name] = (dims, np.asarray(data))
            ds[name].attrs.update(units=units, long_name=long)

        put("crowd_density", ("venue", "time", "crowd_y", "crowd_x"), dens, "m-2",
            "pedestrian density, mean over the record interval (NaN outside the venue)")
        put("crowd_peak_density", ("venue", "time"), np.array([v[:nt] for v in self._peak]).reshape(-1, nt), "m-2",
            f"peak density over a {self.config.density_window_m:g} m window in the interval")
        put("crowd_occupancy", ("venue", "time"), np.array([o[:nt] for o in self._occ]).reshape(-1, nt), "1",
            "persons inside the venue")
        put("crowd_venue_x0", ("venue",), [v.origin[0] + v.density.x0 for v in self.venues], "m",
            "city x of the density grid's lower-left corner")
        put("crowd_venue_y0", ("venue",), [v.origin[1] + v.density.y0 for v in self.venues], "m",
            "city y of the density grid's lower-left corner")
        put("crowd_venue_area", ("venue",), [v.g.area_m2 for v in self.venues], "m2", "walkable area")
        put("crowd_entered", ("venue",), [v.entered for v in self.venues], "1", "persons who entered")
        put("crowd_exited", ("venue",), [v.exited for v in self.venues], "1", "persons who left through an exit")
        put("crowd_queue", ("venue",), [v.queue for v in self.venues], "1", "arrivals still queuing outside at the end")
        put("crowd_car_trips", ("venue",), self.car_trips, "1", "car trips added to traffic by leavers")
        ex_names, ex_venue, ex_node, ex_w, ex_x, ex_y = [], [], [], [], [], []
        for k, v in enumerate(self.venues):
            for e, eg, node in zip(v.exit_cfg, v.g.exits, self.exit_nodes[k]):
                ex_names.append(f"{v.name}/{e.name}")
                ex_venue.append(k)
                ex_node.append(node)
                ex_w.append(eg.width_m)
                cx, cy = v.to_city(*eg.centre)
                ex_x.append(cx)
                ex_y.append(cy)
        ds = ds.assign_coords(crowd_exit=ex_names)
        flows = np.stack(self._flow_rows[:nt]) if nt else np.zeros((0, len(ex_names)))
        put("crowd_exit_flow", ("time", "crowd_exit"), flows, "s-1", "persons leaving through the exit, per second")
        put("crowd_exit_venue", ("crowd_exit",), ex_venue, "1", "index of the exit's venue")
        put("crowd_exit_node", ("crowd_exit",), ex_node, "1", "city node index where the exit meets the street")
        put("crowd_exit_width", ("crowd_exit",), ex_w, "m", "clear width of the exit")
        put("crowd_exit_x", ("crowd_exit",), ex_x, "m", "city x of the exit")
        put("crowd_exit_y", ("crowd_exit",), ex_y, "m", "city y of the exit")
        ws = [(k, w) for k, v in enumerate(self.venues) for w in v.tracker.warnings]
        ds = ds.assign_coords(warning=np.arange(len(ws)))
        put("crowd_warning_venue", ("warning",), [k for k, _ in ws], "1", "index of the venue")
        put("crowd_warning_level", ("warning",), [w.level for _, w in ws], "1", "warn or critical")
        put("crowd_warning_threshold", ("warning",), [w.level_density for _, w in ws], "m-2", "density level")
        put("crowd_warning_start", ("warning",), [w.start_s for _, w in ws], "s", "first time above the level")
        put("crowd_warning_end", ("warning",), [w.end_s for _, w in ws], "s", "first time back below (or run end)")
        put("crowd_warning_peak", ("warning",), [w.peak_density for _, w in ws], "m-2", "peak density in the episode")
        put("crowd_warning_x", ("warning",), [self.venues[k].to_city(w.x, 0)[0] for k, w in ws], "m", "city x of the peak")
        put("crowd_warning_y", ("warning",), [self.venues[k].to_city(0, w.y)[1] for k, w in ws], "m", "city y of the peak")
        for name in ("crowd_warning_venue", "crowd_warning_start", "crowd_warning_end", "crowd_warning_peak",
                     "crowd_warning_x", "crowd_warning_y", "crowd_warning_threshold"):
            ds[name] = ds[name].astype(np.float64) if name != "crowd_warning_venue" else ds[name].astype(np.int64)
        ds["crowd_warning_level"] = ds["crowd_warning_level"].astype(str)
        return ds

    # ---- KPIs ---------------------------------------------------------------------------------
    def egress_times(self) -> dict[str, float]:
        """Per venue: seconds from egress start until the venue was empty (NaN if never emptied)."""
        out = {}
        for v in self.venues:
            if not math.isfinite(v.egress_start) or v.inside > 0 or v.queue > 0 or not math.isfinite(v.last_exit_s):
                out[v.name] = float("nan")
            else:
                out[v.name] = v.last_exit_s - v.egress_start
        return out

    def kpis(self) -> dict[str, KPI]:
        eg = [t for t in self.egress_times().values()]
        has_egress = any(math.isfinite(v.egress_start) for v in self.venues)
        nwarn = sum(len(v.tracker.warnings) for v in self.venues)
        out = {
            "peak_density": KPI(max((v.peak_all for v in self.venues), default=0.0), "m-2",
                                f"peak density ({self.config.density_window_m:g} m window)"),
            "person_seconds_above_warn": KPI(sum(v.person_s["warn"] for v in self.venues), "s",
                                             f"person-seconds at >= {self.config.warn_density:g} /m²"),
            "person_seconds_above_critical": KPI(sum(v.person_s["critical"] for v in self.venues), "s",
                                                 f"person-seconds at >= {self.config.critical_density:g} /m²"),
            "warnings": KPI(float(nwarn), "1", "density warnings raised"),
            "car_trips": KPI(float(sum(self.car_trips)), "1", "car trips of people leaving venues", "none"),
            "exited": KPI(float(sum(v.exited for v in self.venues)), "1", "persons who left the venues", "none"),
        }
        if has_egress:
            out["egress_time_s"] = KPI(max(eg) if all(math.isfinite(t) for t in eg) else float("nan"), "s",
                                       "time to empty the venues after egress starts (NaN: not emptied)")
        return out
