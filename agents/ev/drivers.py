"""EV drivers: Mesa agents that make the decisions (when, where and how long to charge) while the state
lives in the :class:`Fleet` arrays. Each EV's day is one simpy process: trip, maybe charge, dwell, return.

When: below ``charge_below_soc`` before a trip (detour to a station, charge to ``target_soc``), or at a
destination with a station within ``walk_m`` when below the destination threshold (``charge_below_soc`` for
home chargers, ``destination_charge_below_soc`` for the others) and the dwell-dependent chance says so
(1 - exp(-dwell / ``plug_dwell_h``)); it then asks for a fitted session energy (or up to ``target_soc``).
Where: ``nearest`` (free-flow drive time), ``expected_wait`` (+ Erlang C wait from each station's history),
``smart`` (live congested times + live queue + EVs already heading there). At a destination ``smart``
drivers know live availability: they take a free plug within ``walk_m`` or skip charging (``declined_full``);
the others queue at the nearest station with ``destination_patience_s``.
Every attempt ends in one outcome (``agents.ev.attempts``); every EV is counted: done, ran flat, unroutable.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

import mesa
import numpy as np

from agents.ev.attempts import Attempt
from agents.ev.curves import trip_energy_kwh
from twin.queueing import mean_wait_s

if TYPE_CHECKING:  # pragma: no cover
    from agents.ev.domain import EVDomain

__all__ = ["EVDriver"]


class EVDriver(mesa.Agent):
    """The decision-maker of EV ``i`` (its state is row ``i`` of the domain's fleet arrays)."""

    def __init__(self, model: mesa.Model, domain: "EVDomain", i: int) -> None:
        super().__init__(model)
        self.dom = domain
        self.i = i

    # ---- decisions -------------------------------------------------------------------------
    def choose_station(self, at: int, dest: int, need_kwh: float = 0.0) -> int:
        """Station index minimising drive there + expected wait + charging ``need_kwh`` at its plug power + drive
        on to ``dest`` (``nearest``: drive there only); -1 if none reachable. The charging term is what sends a low
        EV to a fast (DC) charger rather than holding an AC plug for hours."""
        dom = self.dom
        cfg = dom.config
        to_st, from_st = dom.tables(live=cfg.choice == "smart")
        cost = to_st[:, at] + from_st[:, dest]
        if cfg.choice == "nearest":
            cost = to_st[:, at].copy()
        else:
            charge_s = np.array([need_kwh / max(self.plug_kw(k) * cfg.efficiency, 1e-9) * 3600.0
                                 for k in range(len(dom.stations))])
            if cfg.choice == "expected_wait":
                cost = cost + dom.historical_wait_s() + charge_s
            else:
                cost = cost + np.array([s.expected_wait_s(extra=s.en_route) for s in dom.stations]) + charge_s
        if not np.isfinite(cost).any():
            return -1
        return int(np.argmin(cost))

    def plug_kw(self, station: int) -> float:
        """Most power this EV takes on that station's plugs (AC on-board limit or DC battery limit)."""
        st, f = self.dom.stations[station], self.dom.fleet
        return min(st.power_kw, f.ac_kw[self.i] if st.power_kw <= 22.0 else f.dc_kw[self.i])

    # ---- the day ----------------------------------------------------------------------------
    def run(self):
        """simpy process: the EV's trip (with charging decisions), dwell and return trip."""
        dom, f, i = self.dom, self.dom.fleet, self.i
        env = dom.env
        if f.depart_s[i] > env.now:
            yield env.timeout(f.depart_s[i] - env.now)
        ok = yield from self._leg(int(f.origin[i]), int(f.dest[i]), f.dwell_s[i])
        if ok and dom.config.return_trip and env.now < dom.twin.duration_s:
            ok = yield from self._leg(int(f.dest[i]), int(f.origin[i]), None)
        f.tallies["done"][i] = 1.0 if ok else 0.0

    def _drive(self, o: int, d: int):
        """Drive through traffic; lower the SoC by the trip's energy. False if flat or unroutable."""
        dom, f, i = self.dom, self.dom.fleet, self.i
        if o == d:
            return True
        r = yield dom.traffic.drive(o, d, kind="ev", tag=("ev", i))
        if r.status == "unroutable":
            f.tallies["unroutable"][i] += 1
            return False
        tt = max(r.arrive_s - r.depart_s, 1.0)
        e = float(trip_energy_kwh(r.distance_m, tt, f.kwh_per_km[i], f.speed_coeff[i]))
        f.tallies["distance_m"][i] += r.distance_m
        f.tallies["drive_s"][i] += tt
        have = f.soc[i] * f.cap_kwh[i]
        if e >= have:
            f.soc[i] = 0.0
            f.tallies["ran_flat"][i] = 1.0
            return False
        f.soc[i] -= e / f.cap_kwh[i]
        return True

    def _charge(self, s: int, need_kwh: float, dwell_s: float | None, patience_s: float, leave_when_full: bool):
        dom, f, i = self.dom, self.dom.fleet, self.i
        st = dom.stations[s]
        t = f.tallies
        t["requested_kwh"][i] += need_kwh
        kw = self.plug_kw(s)
        batt_kw = min(st.power_kw * dom.config.efficiency, kw)
        rec = Attempt(i, s, "en_route" if dwell_s is None else "destination", dom.env.now, need_kwh, batt_kw, dwell_s)
        dom.attempts.append(rec)
        out = yield dom.env.process(st.session(need_kwh, float(f.soc[i]), float(f.cap_kwh[i]), kw,
                                               dwell_s=dwell_s, patience_s=patience_s,
                                               leave_when_full=leave_when_full, taper_soc=dom.config.taper_soc, tag=i,
                                               rec=rec))
        t["wait_s"][i] += out.wait_s
        if out.abandoned:
            t["abandoned"][i] += 1
            return out
        t["charges"][i] += 1
        t["charge_s"][i] += out.charge_s
        t["stored_kwh"][i] += out.stored_kwh
        t["delivered_kwh"][i] += out.delivered_kwh
        f.soc[i] = min(out.soc_end, 1.0)
        return out

    def _leg(self, o: int, d: int, dwell_s: float | None):
        """One trip o -> d (detouring to charge if low), then the dwell at d (charging there if it can)."""
        dom, cfg, f, i = self.dom, self.dom.config, self.dom.fleet, self.i
        env = dom.env
        if f.soc[i] < cfg.charge_below_soc:
            if f.tallies["need_node"][i] < 0:
                f.tallies["need_node"][i] = o
            s = self.choose_station(o, d, max(cfg.target_soc - f.soc[i], 0.0) * f.cap_kwh[i])
            if s >= 0:
                st = dom.stations[s]
                st.en_route += 1
                ok = yield from self._drive(o, st.node)
                st.en_route -= 1
                if not ok:
                    return False
                need = max(cfg.target_soc - f.soc[i], 0.0) * f.cap_kwh[i]
                yield from self._charge(s, need, None, cfg.patience_s, True)
                o = st.node
        wants = dwell_s is not None and self.wants_destination_charge(dwell_s)
        s = self.destination_station(d) if wants else -1
        if wants and s < 0 and dom.near_station[d] < 0 and f.tallies["wish_node"][i] < 0:
            f.tallies["wish_node"][i] = d
            f.tallies["wish_kwh"][i] = self.destination_need_kwh()
        if wants and s < 0 and dom.near_station[d] >= 0:
            f.tallies["declined_full"][i] += 1  # a station is near but smart guidance shows no free plug
        target = dom.stations[s].node if s >= 0 else d
        if s >= 0:
            dom.stations[s].en_route += 1
        ok = yield from self._drive(o, target)
        if s >= 0:
            dom.stations[s].en_route -= 1
        if not ok:
            return False
        if dwell_s is None:
            return True
        t_end = env.now + dwell_s
        if s >= 0:
            need = self.destination_need_kwh()
            yield from self._charge(s, need, dwell_s, cfg.destination_patience_s, False)
        if env.now < t_end:
            yield env.timeout(t_end - env.now)
        return True

    def wants_destination_charge(self, dwell_s: float) -> bool:
        """Below its threshold (home chargers only when low) and the dwell-dependent plug-in chance says yes."""
        cfg, f, i = self.dom.config, self.dom.fleet, self.i
        below = cfg.charge_below_soc if f.home[i] else cfg.destination_charge_below_soc
        if f.soc[i] >= below:
            return False
        return bool(f.plug_u[i] < 1.0 - np.exp(-dwell_s / 3600.0 / cfg.plug_dwell_h))

    def destination_need_kwh(self) -> float:
        """Battery energy asked for at a destination: the fitted session energy (capped at a full battery), or to
        ``target_soc``."""
        cfg, f, i = self.dom.config, self.dom.fleet, self.i
        room = max(1.0 - f.soc[i], 0.0) * f.cap_kwh[i]
        if cfg.destination_request == "target":
            return max(cfg.target_soc - f.soc[i], 0.0) * f.cap_kwh[i]
        return float(min(f.session_kwh[i], room))

    def destination_station(self, d: int) -> int:
        """Station to plug in near destination ``d`` (-1: none near, or smart guidance sees none free).

        ``smart``: the nearest station within ``walk_m`` with a free plug now (counting EVs already heading
        there); otherwise the nearest station within ``walk_m``, where the EV queues.
        """
        dom = self.dom
        near = dom.stations_near(d)
        if not near:
            return -1
        if dom.config.choice != "smart":
            return near[0]
        for k in near:
            st = dom.stations[k]
            if st.busy + st.queue_len + st.en_route < st.plugs:
                return k
        return -1


def historical_wait(stations, now_s: float, default_service_s: float = 3600.0) -> np.ndarray:
    """M/M/c mean wait (s) per station from its arrival rate and service time so far (no live information)."""
    out = np.zeros(len(stations))
    if now_s <= 0:
        return out
    for k, s in enumerate(stations):
        lam = s.n_requests / now_s
        mu = 1.0 / s.mean_service_s(default_service_s)
        w = mean_wait_s(lam, mu, s.plugs)
        out[k] = w if np.isfinite(w) else 4 * 3600.0
    return out
