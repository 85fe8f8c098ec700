"""EV-charging benchmark (not a test): ``python bench/ev.py`` (no arguments, a few minutes).

1. A simulated day with 10,000 and 100,000 EVs on a 30x30 grid city (9 km x 9 km), stations scaled with
   the fleet (one 4-plug station per 250 EVs, a third of them 50 kW DC), LLF under a grid limit of half the
   installed power, smart guidance. Trips use precomputed free-flow times (agents.traffic.standins), so the
   figures are the EV domain's own cost: simpy events per wall second and wall time.
2. The same month of real sessions (Boulder, August 2019, 906 sessions, data/ev/) through least-laxity-first
   at a 20 kW site limit, in ACN-Sim (acnportal, optional bench dependency) and in this model, side by side
   on the same input (times on ACN-Sim's 5-minute grid, 32 A at 208 V plugs, ideal batteries).
3. The first week of the same sessions on a three-phase site: ACN-Sim's Caltech ACN (``caltech_acn``, 54 EVSEs on a delta/wye
   transformer with per-phase limits, two 80 A pods) at a 30 and a 60 kW transformer, LLF and EDF, side by side
   with this model's own copy of that network (``agents.ev.site.caltech_acn_site``); and ours with a single
   aggregate limit of the same kW, to show what the phase limits cost.
4. The default scenario (Bad Hersfeld, 16:00-19:00, meso traffic, seed 42, baseline only) beside the real
   references: AC/DC plug-ins per plug and occupancy over the same clock window from the fitted session classes,
   public plugs from the Bundesnetzagentur register's density (``agents.ev.reference``).
Ends with one JSON line; value = ACN-Sim wall time / ours for LLF (target >= 10), energy within 1%.
"""
from __future__ import annotations

import json
import sys
import time
import warnings
from datetime import datetime
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from agents.ev import EVConfig, EVDomain  # noqa: E402
from agents.traffic.standins import PrecomputedTraffic  # noqa: E402
from agents.ev.replay import SessionLog, load_log, replay  # noqa: E402
from agents.ev.site import caltech_acn_site  # noqa: E402
from networks import synthetic  # noqa: E402
from twin.context import DomainContext  # noqa: E402
from twin.engine import Engine  # noqa: E402

PERIOD_MIN, VOLT, AMPS, LIMIT_KW = 5, 208.0, 32.0, 20.0
PHASE_DAYS = 7


def city_day(n_ev: int, seed: int = 1) -> dict:
    """One simulated day with ``n_ev`` EV trips (plus return trips)."""
    city = synthetic.grid(30, 30, 300.0)
    t0 = time.perf_counter()
    ctx = DomainContext.for_city(city, 86400.0, 900.0, seed=seed)
    rng = np.random.default_rng(seed)
    n_st = max(n_ev // 250, 2)
    nodes = rng.choice(city.arrays.n_nodes, n_st, replace=False)
    st = [{"node": int(v), "plugs": 4, "power_kw": 50.0 if k % 3 == 0 else 22.0} for k, v in enumerate(nodes)]
    limit = 0.5 * sum(s["plugs"] * s["power_kw"] for s in st)
    dom = EVDomain(EVConfig(trips=n_ev, stations=st, policy="llf", grid_limit_kw=limit, choice="smart"))
    tw = Engine(ctx, {"traffic": PrecomputedTraffic(), "ev": dom})
    t1 = time.perf_counter()
    tw.run()
    t2 = time.perf_counter()
    events = next(tw.env._eid)
    k = {a: b.value for a, b in dom.kpis().items()}
    return {"evs": n_ev, "stations": n_st, "plugs": 4 * n_st, "setup_s": t1 - t0, "run_s": t2 - t1, "events": events,
            "events_per_s": events / (t2 - t1), "trips": len(tw.traffic.trip_table()["origin"]),
            "sessions": k["sessions_started"],
            "energy_mwh": k["energy_delivered_kwh"] / 1000, "peak_kw": k["peak_load_kw"], "limit_kw": limit}


def assign_plugs(a: np.ndarray, d: np.ndarray) -> tuple[np.ndarray, int]:
    """Give each session a plug free at its arrival (interval colouring): ACN-Sim needs one EVSE per session."""
    free_at: list[float] = []
    out = np.zeros(a.size, int)
    for i in np.argsort(a, kind="stable"):
        for j, f in enumerate(free_at):
            if f <= a[i]:
                free_at[j], out[i] = d[i], j
                break
        else:
            free_at.append(d[i])
            out[i] = len(free_at) - 1
    return out, len(free_at)


def acn_events(log, plug: np.ndarray, ids: list[str]):
    """ACN-Sim's event queue for the sessions: session i plugs into EVSE ``ids[plug[i]]`` at its 5-min period,
    with an ideal battery of its requested energy (the same input both models get)."""
    from acnportal import acnsim

    p_s = PERIOD_MIN * 60
    evs = [acnsim.EV(int(log.arrival_s[i] // p_s), int(log.departure_s[i] // p_s), float(log.energy_kwh[i]),
                     ids[plug[i]], f"s{i}", acnsim.Battery(float(log.energy_kwh[i]), 0, AMPS * VOLT / 1000))
           for i in range(len(log))]
    return acnsim.EventQueue([acnsim.PluginEvent(ev.arrival, ev) for ev in evs])


def run_acn(log, plug: np.ndarray, n_plugs: int, algo: str) -> tuple[float, float]:
    """ACN-Sim on the same sessions; returns (energy delivered kWh, wall s)."""
    from acnportal import acnsim, algorithms

    net = acnsim.ChargingNetwork()
    ids = [f"P{j}" for j in range(n_plugs)]
    for sid in ids:
        net.register_evse(acnsim.EVSE(sid, max_rate=AMPS), VOLT, 0)
    net.add_constraint(acnsim.Current(ids), LIMIT_KW * 1000 / VOLT, name="site")
    queue = acn_events(log, plug, ids)
    sorts = {"llf": algorithms.least_laxity_first, "edf": algorithms.earliest_deadline_first}
    sched = algorithms.UncontrolledCharging() if algo == "uncontrolled" else algorithms.SortedSchedulingAlgo(sorts[algo])
    sim = acnsim.Simulator(net, sched, queue, datetime(2019, 8, 1), period=PERIOD_MIN, verbose=False)
    t = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sim.run()
    return float(acnsim.total_energy_delivered(sim)), time.perf_counter() - t


def interleaved_plugs(net) -> np.ndarray:
    """Column of the k-th plug used: the site's plugs taken phase by phase in turn (AB, BC, CA, AB, ...)."""
    by_phase = [np.flatnonzero(net.phase_deg == p) for p in (30.0, -90.0, 150.0)]
    return np.array([c for trio in zip(*by_phase) for c in trio])


def run_acn_phases(log, plug: np.ndarray, algo: str, transformer_kw: float) -> tuple[float, float, np.ndarray]:
    """ACN-Sim on its Caltech ACN; session i on EVSE ``plug[i]`` (column of the network); (kWh, wall s, matrix)."""
    from acnportal import acnsim, algorithms

    net = acnsim.sites.caltech_acn(basic_evse=True, voltage=VOLT, transformer_cap=transformer_kw)
    ids = net.station_ids
    queue = acn_events(log, plug, ids)
    sorts = {"llf": algorithms.least_laxity_first, "edf": algorithms.earliest_deadline_first}
    sim = acnsim.Simulator(net, algorithms.SortedSchedulingAlgo(sorts[algo]), queue, datetime(2019, 8, 1),
                           period=PERIOD_MIN, verbose=False)
    t = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sim.run()
    return float(acnsim.total_energy_delivered(sim)), time.perf_counter() - t, (
        np.asarray(net.constraint_matrix), np.asarray(net.magnitudes), list(ids))


def first_days(log, days: float) -> SessionLog:
    """The sessions arriving in the first ``days`` days (ACN-Sim needs minutes per month on a three-phase site)."""
    k = log.arrival_s < days * 86400.0
    return SessionLog(log.arrival_s[k], log.departure_s[k], log.energy_kwh[k], log.station[k], log.t0)


def three_phase(log) -> dict:
    """Part 3: the Caltech three-phase site at 30 and 60 kW, LLF and EDF, ACN-Sim vs ours (+ ours, one aggregate limit)."""
    a = log.arrival_s
    d = log.departure_s
    # strict colouring (a plug is reused only after a gap): the same plug is never freed and taken at one instant
    plug_k, n_used = assign_plugs(a, d + 1.0)
    site = caltech_acn_site(30.0, VOLT)
    col = interleaved_plugs(site)[plug_k]
    print(f"\n3. Three-phase site: ACN-Sim's Caltech ACN (54 EVSEs, per-phase transformer limits, 80 A pods), "
          f"{len(log)} sessions (first {PHASE_DAYS} days) on {n_used} EVSEs taken phase by phase")
    print(f"{'kW':>4} {'policy':>6} {'ACN-Sim kWh':>12} {'ours kWh':>10} {'diff %':>8} {'1-limit kWh':>12} "
          f"{'phases cost %':>13} {'ACN-Sim s':>10} {'ours s':>8}")
    rows = {}
    for kw in (30.0, 60.0):
        site = caltech_acn_site(kw, VOLT)
        for algo in ("llf", "edf"):
            r = replay(log, plugs=site.n_plugs, plug_kw=AMPS * VOLT / 1000, policy=algo, dt_s=PERIOD_MIN * 60.0,
                       phase_net=site, plug_of=col)
            agg = replay(log, plugs=site.n_plugs, plug_kw=AMPS * VOLT / 1000, policy=algo, limit_kw=kw,
                         dt_s=PERIOD_MIN * 60.0, plug_of=col)
            try:
                e_acn, t_acn, (mat, mag, ids) = run_acn_phases(log, col, algo, kw)
                assert ids == site.plug_ids and np.allclose(mat, site.a) and np.allclose(mag, site.limit_a)
            except ImportError:
                e_acn = t_acn = float("nan")
            diff = 100 * (r.energy_kwh - e_acn) / e_acn
            cost = 100 * (agg.energy_kwh - r.energy_kwh) / agg.energy_kwh
            rows[f"{algo}_{kw:g}kW"] = {"acnsim_kwh": round(e_acn, 3), "ours_kwh": round(r.energy_kwh, 3),
                                        "rel_diff": diff / 100, "aggregate_limit_kwh": round(agg.energy_kwh, 3),
                                        "acnsim_wall_s": round(t_acn, 2), "ours_wall_s": round(r.wall_s, 3)}
            print(f"{kw:4.0f} {algo:>6} {e_acn:12.2f} {r.energy_kwh:10.2f} {diff:8.3f} {agg.energy_kwh:12.2f} "
                  f"{cost:13.1f} {t_acn:10.2f} {r.wall_s:8.3f}")
    return rows


def run_ours(log, n_plugs: int, algo: str, repeats: int = 3) -> tuple[float, float, int]:
    """This model on the same sessions; returns (energy kWh, best wall s of ``repeats``, events)."""
    best, r = np.inf, None
    for _ in range(repeats):
        r = replay(log, plugs=n_plugs, plug_kw=AMPS * VOLT / 1000, policy=algo, limit_kw=LIMIT_KW,
                   dt_s=PERIOD_MIN * 60.0)
        best = min(best, r.wall_s)
    return r.energy_kwh, best, r.events


def default_scenario() -> dict:
    """Part 4: the default scenario's baseline beside the fitted references and the German register."""
    from agents.ev.reference import comparison_rows
    from twin.run import load_variants, run_one

    path = ROOT / "scenarios" / "bad_hersfeld.yaml"
    sc = load_variants(path, variants=[])["baseline"]
    t = time.perf_counter()
    ds = run_one(sc, path.parent)
    wall = time.perf_counter() - t
    params = json.loads((ROOT / "data" / "ev" / "session_params.json").read_text())
    pop = float(ds["kpi_emergency_population"]) if "kpi_emergency_population" in ds else None
    rows = comparison_rows(ds, params, float(sc.time.start_hour), float(sc.time.duration_s), pop)
    print(f"\n4. Default scenario {path.name}, baseline, seed {sc.seed} ({wall:.0f} s wall): model beside the references")
    print(f"{'figure':<34} {'model':>8} {'reference':>12}  source")
    for fig, m, r, src in rows:
        print(f"{fig:<34} {m:>8} {r:>12}  {src}")
    return {fig: {"model": m, "reference": r} for fig, m, r, _ in rows}


def main() -> None:
    print("EV charging benchmark (bench/ev.py)\n")
    print("1. A day in the city (precomputed free-flow trips, LLF, smart guidance)")
    print(f"{'EVs':>8} {'stations':>8} {'trips':>8} {'sessions':>8} {'events':>9} {'wall s':>7} {'events/s':>9} "
          f"{'energy MWh':>10} {'peak kW':>8} {'limit kW':>8}")
    days = []
    for n in (10_000, 100_000):
        d = city_day(n)
        days.append(d)
        print(f"{d['evs']:8d} {d['stations']:8d} {d['trips']:8d} {d['sessions']:8.0f} {d['events']:9d} "
              f"{d['run_s']:7.1f} {d['events_per_s']:9.0f} {d['energy_mwh']:10.1f} {d['peak_kw']:8.0f} {d['limit_kw']:8.0f}")

    log = load_log().snapped(PERIOD_MIN * 60.0)
    plug, n_plugs = assign_plugs(log.arrival_s, log.departure_s)
    print(f"\n2. Real sessions: Boulder 2019-08, {len(log)} sessions, {n_plugs} plugs, "
          f"{LIMIT_KW:g} kW site limit, {PERIOD_MIN}-min periods; requested {log.energy_kwh.sum():.1f} kWh")
    print(f"{'policy':>13} {'ACN-Sim kWh':>12} {'ours kWh':>10} {'diff %':>8} {'ACN-Sim s':>10} {'ours s':>8} {'speed-up':>9}")
    rows, acn_ok = {}, True
    for algo in ("uncontrolled", "llf"):
        e_ours, t_ours, ev_ours = run_ours(log, n_plugs, algo)
        try:
            e_acn, t_acn = run_acn(log, plug, n_plugs, algo)
        except ImportError:
            acn_ok, e_acn, t_acn = False, float("nan"), float("nan")
        rows[algo] = (e_acn, e_ours, t_acn, t_ours)
        print(f"{algo:>13} {e_acn:12.2f} {e_ours:10.2f} {100 * (e_ours - e_acn) / e_acn:8.4f} {t_acn:10.2f} "
              f"{t_ours:8.3f} {t_acn / t_ours:8.1f}x")
    if not acn_ok:
        print("acnportal is not installed: pip install acnportal (optional bench dependency)")
    phases = three_phase(first_days(log, PHASE_DAYS))
    town = default_scenario()
    e_acn, e_ours, t_acn, t_ours = rows["llf"]
    ratio = t_acn / t_ours if acn_ok else None
    print(f"\nLLF: {ratio:.1f}x faster than ACN-Sim (target 10x), energy {100 * (e_ours - e_acn) / e_acn:+.4f}% "
          "(target within 1%)" if acn_ok else "")
    out = {"bench": "ev", "value": round(ratio, 2) if ratio else None, "unit": "x", "target": 10,
           "llf_energy_kwh_ours": round(e_ours, 3), "llf_energy_kwh_acnsim": round(e_acn, 3),
           "llf_energy_rel_diff": (e_ours - e_acn) / e_acn if acn_ok else None,
           "llf_wall_s_ours": round(t_ours, 4), "llf_wall_s_acnsim": round(t_acn, 3),
           "sessions": len(log), "limit_kw": LIMIT_KW,
           "day_10k_events_per_s": round(days[0]["events_per_s"]), "day_10k_wall_s": round(days[0]["run_s"], 2),
           "day_100k_events_per_s": round(days[1]["events_per_s"]), "day_100k_wall_s": round(days[1]["run_s"], 2),
           "traffic": "precomputed free-flow trips",
           "three_phase_max_abs_rel_diff": max(abs(v["rel_diff"]) for v in phases.values()),
           "three_phase": phases, "default_scenario_vs_reference": town}
    print(json.dumps(out))


if __name__ == "__main__":
    main()
