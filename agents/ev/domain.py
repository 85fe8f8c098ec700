"""The EV-charging domain on the CityTwin clock: stations (OSM or scenario), EV drivers driving through
``twin.traffic``, the load manager, recording and KPIs.

Results (dims ``station``, ``ev``, ``time``): ``station_busy`` (time-mean plugs busy), ``station_queue``
(time-mean EVs waiting), ``station_power`` (mean kW), ``station_energy`` (kWh per interval), static
``station_node/x/y/plugs/plug_power/limit``; city ``ev_load`` (mean kW per interval) and ``ev_grid_limit``;
per EV ``ev_type``, ``ev_soc_start/end``, ``ev_wait``, ``ev_charge_time``, ``ev_energy`` (battery side),
``ev_delivered`` (grid side), ``ev_requested``, ``ev_charges``, ``ev_abandoned``, ``ev_ran_flat``,
``ev_unserved``, ``ev_distance``, ``ev_need_node``, ``ev_wish_node``, ``ev_wish_energy``.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import xarray as xr

from agents.ev.attempts import Attempt
from agents.ev.config import EVConfig
from agents.ev.controller import TouWindow
from agents.ev.drivers import EVDriver, historical_wait
from agents.ev.fleet import Fleet, draw_fleet
from agents.ev.results import ev_dataset, ev_kpis
from agents.ev.siting import station_rows, times_tables
from agents.ev.stations import Station, build_controller
from agents.ev.warm import draw_warm_sessions
from twin.domain import KPI, Domain

__all__ = ["EVDomain", "DEFAULT_PARAMS"]

DEFAULT_PARAMS = Path(__file__).resolve().parents[2] / "data" / "ev" / "session_params.json"


class EVDomain(Domain):
    """Electric vehicles and their chargers (see the module docstring for the recorded variables)."""

    name = "ev"

    def __init__(self, config: EVConfig) -> None:
        super().__init__(config)
        self.stations: list[Station] = []
        self._rec: dict[str, list] = {k: [] for k in ("t", "busy", "queue", "energy", "limit", "overload")}
        self._last = None
        self._tables_free = None
        self._tables_live = None
        self._live_t = -np.inf

    # ---- setup ----------------------------------------------------------------------------
    def setup(self, twin) -> None:
        """Build stations and the controller, draw the fleet, start one process per EV."""
        super().setup(twin)
        cfg: EVConfig = self.config
        self.env, self.traffic, city = twin.env, twin.traffic, twin.city
        errs = cfg.city_errors(city)
        if errs:
            raise ValueError("ev: " + "; ".join(errs))
        if not hasattr(self, "rng"):
            self.rng = twin.spawn_rng("ev")
        self.start_hour = float(getattr(twin, "start_hour", 0.0))
        rows = station_rows(city, cfg)
        self.stations = [Station(twin, self.env, k, r["id"], r["node"], r["x"], r["y"], r["plugs"], r["power_kw"],
                                 r["limit_kw"] if r["limit_kw"] is not None else np.inf, r["name"])
                         for k, r in enumerate(rows)]
        tou = [TouWindow(h0 - self.start_hour, h1 - self.start_hour) for h0, h1 in cfg.tou_peak_hours]
        tou += [TouWindow(h0 - self.start_hour + 24, h1 - self.start_hour + 24) for h0, h1 in cfg.tou_peak_hours]
        self.ctrl = build_controller(self.env, self.stations, city_limit_kw=cfg.grid_limit_kw or np.inf,
                                     policy=cfg.policy, dt_s=cfg.control_interval_s, efficiency=cfg.efficiency,
                                     tou=tou, limit_signal=self._signal if cfg.grid_signal else None)
        if self.stations:
            self.ctrl.start()
        self.station_nodes = np.array([s.node for s in self.stations], np.int64)
        self.near_station = self._near_station(city)
        params_path = twin.resolve_path(cfg.session_params) if cfg.session_params else DEFAULT_PARAMS
        self.params = json.loads(Path(params_path).read_text())
        for key in ("dwell_class", "dc_class"):
            if getattr(cfg, key) not in self.params["classes"]:
                raise ValueError(f"ev.{key}: {getattr(cfg, key)!r} — not a fitted class of {params_path}; "
                                 f"use one of {sorted(self.params['classes'])}")
        cls = self.params["classes"][cfg.dwell_class]
        dw, en = cls["dwell_h"], cls["energy_kwh"]
        o, d, dep = self._trips(twin)
        self.fleet: Fleet = draw_fleet(cfg, self.rng, o, d, dep, (dw["mu"], dw["sigma"]), (en["mu"], en["sigma"]))
        self.attempts: list[Attempt] = []
        self._near_lists: dict[int, list[int]] = {}
        if cfg.warm_start:
            self._warm_start()
        self.drivers = [EVDriver(twin, self, i) for i in range(self.fleet.n)]
        for drv in self.drivers:
            self.env.process(drv.run())
        self._last = self._counters()

    def _warm_start(self) -> None:
        """Sessions in progress at t = 0 on every station, from the fitted occupancy at the start hour."""
        cfg, rng = self.config, self.twin.spawn_rng("ev_warm")
        for st in self.stations:
            cls = self.params["classes"][cfg.dwell_class if st.power_kw <= 22.0 else cfg.dc_class]
            for _k, stay_s, kwh in draw_warm_sessions(cls, self.start_hour, st.plugs, st.power_kw, rng):
                rec = Attempt(-1, st.index, "warm", 0.0, kwh, st.power_kw * cfg.efficiency, stay_s)
                self.attempts.append(rec)
                cap = max(kwh / 0.3, 10.0)  # SoC 0.5 -> at most 0.8: the taper stays out of the way
                self.env.process(st.session(kwh, 0.5, cap, st.power_kw, dwell_s=stay_s, leave_when_full=False,
                                            taper_soc=cfg.taper_soc, tag=-1, rec=rec))

    def stations_near(self, node: int) -> list[int]:
        """Stations within ``walk_m`` (straight line) of ``node``, nearest first."""
        hit = self._near_lists.get(node)
        if hit is None:
            a = self.twin.city.arrays
            d = np.array([np.hypot(a.node_x[node] - s.x, a.node_y[node] - s.y) for s in self.stations])
            hit = [int(k) for k in np.argsort(d, kind="stable") if d[k] <= self.config.walk_m]
            self._near_lists[node] = hit
        return hit

    def _signal(self, t_s: float) -> float:
        pairs = sorted(self.config.grid_signal)
        h = (self.start_hour + t_s / 3600.0) % 24
        prev = [f for hh, f in pairs if hh <= h]
        return prev[-1] if prev else pairs[-1][1]

    def claim_trips(self, twin, trips: dict) -> np.ndarray | None:
        """Take a share of the background car trips as EV trips (the traffic domain then drives them only as EVs)."""
        cfg = self.config
        self.rng = twin.spawn_rng("ev")
        n_base = len(trips.get("origin", ()))
        n = cfg.trips if cfg.trips is not None else int(round(cfg.share * n_base))
        self._pick = None
        if n_base and n:
            self._pick = np.sort(self.rng.choice(n_base, size=n, replace=n > n_base))
            return np.unique(self._pick)
        return None

    def _trips(self, twin) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """EV trips: a share of the scenario's car trips (same origins, destinations and times), or ``trips``."""
        cfg, rng = self.config, self.rng
        dem = twin.shared.get("demand_trips") or {}
        base_o = np.asarray(dem.get("origin", np.zeros(0)), np.int64)
        n = cfg.trips if cfg.trips is not None else int(round(cfg.share * base_o.size))
        if n == 0:
            z = np.zeros(0, np.int64)
            return z, z, np.zeros(0)
        if base_o.size:
            pick = getattr(self, "_pick", None)
            if pick is None:
                pick = np.sort(rng.choice(base_o.size, size=n, replace=n > base_o.size))
            return base_o[pick], np.asarray(dem["destination"], np.int64)[pick], np.asarray(dem["depart_s"], float)[pick]
        # no background demand: own trips between routable nodes, departures by the fitted arrival profile
        mask = twin.city.largest_component_mask()
        nodes = np.flatnonzero(mask)
        o, d = rng.choice(nodes, n), rng.choice(nodes, n)
        share = np.asarray(self._hourly_profile(), float)
        hours = (self.start_hour + np.arange(int(np.ceil(twin.duration_s / 3600.0)))) % 24
        w = share[hours.astype(int)]
        h = rng.choice(hours.size, size=n, p=w / w.sum())
        dep = np.minimum((h + rng.random(n)) * 3600.0, twin.duration_s * 0.999)
        order = np.argsort(dep)
        return o[order], d[order], dep[order]

    def _hourly_profile(self) -> list[float]:
        path = DEFAULT_PARAMS
        params = getattr(self, "params", None) or json.loads(path.read_text())
        return params["classes"][self.config.dwell_class]["hourly_share"]

    def _near_station(self, city) -> np.ndarray:
        """For every node, the nearest station within ``walk_m`` (straight line), else -1."""
        a = city.arrays
        out = np.full(a.n_nodes, -1, np.int64)
        best = np.full(a.n_nodes, np.inf)
        for k, s in enumerate(self.stations):
            d = np.hypot(a.node_x - s.x, a.node_y - s.y)
            better = (d <= self.config.walk_m) & (d < best)
            out[better], best[better] = k, d[better]
        return out

    # ---- routing tables for the decisions --------------------------------------------------
    def tables(self, live: bool) -> tuple[np.ndarray, np.ndarray]:
        """(to, from) travel times (s) between stations and every node: free-flow, or live (refreshed)."""
        if not self.stations:
            z = np.zeros((0, self.twin.city.arrays.n_nodes))
            return z, z
        if not live:
            if self._tables_free is None:
                self._tables_free = times_tables(self.twin.city, self.twin.city.arrays.fft_s, self.station_nodes)
            return self._tables_free
        if self.env.now - self._live_t >= self.config.guidance_refresh_s or self._tables_live is None:
            cost = self.traffic.link_travel_times_s()
            if self._tables_live is None or not np.array_equal(cost, self._live_cost):  # unchanged: keep tables
                self._tables_live = times_tables(self.twin.city, cost, self.station_nodes)
                self._live_cost = cost
            self._live_t = self.env.now
        return self._tables_live

    def historical_wait_s(self) -> np.ndarray:
        return historical_wait(self.stations, self.env.now)

    # ---- recording --------------------------------------------------------------------------
    def _counters(self) -> dict:
        self.ctrl.advance()
        return {"busy_h": self.ctrl.st_busy_h.copy(), "energy": self.ctrl.st_energy_kwh.copy(),
                "queue": np.array([s.queue_area() for s in self.stations]), "t": self.env.now,
                "overload": self.ctrl.overload_kwh}

    def record(self, t_s: float) -> None:
        """Interval means since the last record: busy plugs, queue, power, energy; the city load."""
        now = self._counters()
        dt = max(now["t"] - self._last["t"], 1e-9)
        r = self._rec
        r["t"].append(t_s)
        r["busy"].append((now["busy_h"] - self._last["busy_h"]) * 3600.0 / dt)
        r["queue"].append((now["queue"] - self._last["queue"]) / dt)
        r["energy"].append(now["energy"] - self._last["energy"])
        r["limit"].append(self.ctrl.city_limit_now())
        r["overload"].append(now["overload"] - self._last["overload"])
        self._last = now

    def finalize(self, t_end_s: float) -> xr.Dataset:
        return ev_dataset(self)

    def kpis(self) -> dict[str, KPI]:
        return ev_kpis(self)
