"""Recovery test of demand calibration: counts made from a known demand, calibration from a different prior.

One run of the built-in model on the scenario's own demand (the truth) gives hourly counts on a seeded third
of the busiest links (the top ``busy_share`` of links by flow); 20% of those count locations are held out.
Calibration starts from a different prior (fewer trips, steeper distance decay, flat in time) and must
reproduce the known flows on the held-out links (target: GEH < 5 on >= 95%) and the known OD totals (total
trips and trips per hour within 10%). The other busy links, never counted, are reported too.

    python validation/calibration_recovery.py [scenarios/bad_hersfeld.yaml]

Ends with one JSON line.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from agents.traffic.counts.assign import simulate, simulated_counts
from agents.traffic.counts.metrics import geh
from agents.traffic.counts.odme import (
    OdmeOptions,
    calibrate_demand,
    prior_trips,
    split_holdout,
)
from agents.traffic.counts.readers import CountSet

__all__ = ["make_counts", "other_prior", "recovery"]


def make_counts(city, ds, clock0: float, duration_s: float, busy_share: float, count_share: float,
                interval_s: float, seed: int) -> tuple[CountSet, np.ndarray]:
    """Counts (rounded vehicles) per ``interval_s`` on a seeded ``count_share`` of the busiest links; also the
    busy links that were not counted."""
    total = simulated_counts(ds, np.arange(city.arrays.n_links), np.zeros(city.arrays.n_links),
                             np.full(city.arrays.n_links, duration_s))
    n_busy = max(3, int(round(busy_share * city.arrays.n_links)))
    busy = np.argsort(-total, kind="stable")[:n_busy]
    rng = np.random.default_rng(np.random.SeedSequence([seed, 3]))
    counted = np.sort(rng.choice(busy, size=max(2, int(round(count_share * n_busy))), replace=False))
    starts = np.arange(0.0, duration_s - 1e-9, interval_s)
    links = np.repeat(counted, len(starts))
    s = np.tile(starts, len(counted))
    e = np.minimum(s + interval_s, duration_s)
    c = np.round(simulated_counts(ds, links, s, e))
    ids = city.link_ids
    cs = CountSet([ids[i] for i in links], links.astype(np.int32), np.full(len(links), -1, np.int32), s + clock0,
                  e + clock0, c, [""] * len(links), "synthetic")
    return cs, np.setdiff1d(busy, counted)


def other_prior(sc, trips_factor: float = 0.75, decay_per_km: float | None = None):
    """A different prior: ``trips_factor`` times the trips, a steeper distance decay, flat departures."""
    d = sc.demand
    dec = decay_per_km if decay_per_km is not None else 2.0 * d.distance_decay_per_km + 0.2
    new = d.model_copy(update={"trips": int(round(d.trips * trips_factor)), "distance_decay_per_km": dec,
                               "profile": "flat"})
    out = sc.model_copy(update={"demand": new})
    out._domains = {"traffic": sc.domain_configs["traffic"]}
    return out


def _hour_totals(trips, bounds: np.ndarray) -> np.ndarray:
    return np.histogram(trips["depart_s"], bins=bounds)[0].astype(float)


def recovery(scenario, city, scenario_dir, *, busy_share: float = 0.1, count_share: float = 1 / 3,
             holdout: float = 0.2, interval_s: float = 3600.0, seed: int = 0, opts: OdmeOptions | None = None,
             log=None) -> dict:
    """Run the recovery experiment on one resolved scenario (traffic only); return its figures."""
    t0 = time.perf_counter()
    truth_sc = scenario.model_copy()
    truth_sc._domains = {"traffic": scenario.domain_configs["traffic"]}
    truth = prior_trips(truth_sc, city, scenario_dir)
    ds = simulate(truth_sc, city, truth)
    clock0 = scenario.time.start_hour * 3600.0
    dur = float(scenario.time.duration_s)
    counts, uncounted = make_counts(city, ds, clock0, dur, busy_share, count_share, interval_s, seed)
    fit = split_holdout(counts, holdout, seed)
    prior_sc = other_prior(truth_sc)
    res = calibrate_demand(prior_sc, city, counts, fit, opts, scenario_dir=scenario_dir, log=log)
    hrs = (counts.end_s - counts.start_s) / 3600.0
    g = geh(res.sim_counts / hrs, counts.count / hrs)
    g_prior = geh(res.prior_sim_counts / hrs, counts.count / hrs)
    # never-counted busy links, over the whole run, per interval
    starts = np.arange(0.0, dur - 1e-9, interval_s)
    lk = np.repeat(uncounted, len(starts))
    s = np.tile(starts, len(uncounted))
    e = np.minimum(s + interval_s, dur)
    known = simulated_counts(ds, lk, s, e)
    got = simulated_counts(res.dataset, lk, s, e)
    g_unc = geh(got / ((e - s) / 3600.0), known / ((e - s) / 3600.0))
    bounds = np.append(starts, dur)
    h_true, h_cal, h_prior = (_hour_totals(t, bounds) for t in (truth, res.trips, prior_trips(prior_sc, city,
                                                                                              scenario_dir)))
    return {
        "scenario": scenario.name, "links": int(city.arrays.n_links),
        "count_locations": len(counts.locations()), "counts": len(counts),
        "holdout_locations": len({lab for lab, f in zip(counts.label, fit) if not f}),
        "geh5_fit": float(np.mean(g[fit] < 5)), "geh5_holdout": float(np.mean(g[~fit] < 5)),
        "geh5_holdout_prior": float(np.mean(g_prior[~fit] < 5)),
        "geh5_uncounted_busy": float(np.mean(g_unc < 5)), "uncounted_busy_links": len(uncounted),
        "trips_true": len(truth["origin"]), "trips_prior": int(h_prior.sum()),
        "trips_calibrated": len(res.trips["origin"]),
        "total_error": float(len(res.trips["origin"]) / len(truth["origin"]) - 1.0),
        "hourly_true": h_true.tolist(), "hourly_calibrated": h_cal.tolist(), "hourly_prior": h_prior.tolist(),
        "hourly_max_error": float(np.max(np.abs(h_cal / np.maximum(h_true, 1) - 1.0))),
        "history": res.history, "wall_s": round(time.perf_counter() - t0, 1),
    }


def main(argv: list[str] | None = None) -> int:
    from twin.city import build_city
    from twin.scenario import load_scenario

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("scenario", nargs="?", default=str(Path(__file__).resolve().parent.parent / "scenarios" /
                                                      "bad_hersfeld.yaml"))
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--no-trip-length", action="store_true", help="do not fit the trip-length slope")
    args = p.parse_args(argv)
    sc = load_scenario(args.scenario)["baseline"]
    city = build_city(sc.city, Path(args.scenario).parent, sc.name)
    r = recovery(sc, city, Path(args.scenario).parent, seed=args.seed,
                 opts=OdmeOptions(trip_length=not args.no_trip_length),
                 log=lambda h: print(f"  iteration {h['iteration']}: {h['trips']:,} trips, GEH<5 fit "
                                     f"{100 * h['geh5_fit']:.1f}%, hold-out {100 * h['geh5_holdout']:.1f}% "
                                     f"({h['wall_s']:.0f} s)", file=sys.stderr, flush=True))
    ok_geh, ok_tot = r["geh5_holdout"] >= 0.95, abs(r["total_error"]) <= 0.10 and r["hourly_max_error"] <= 0.10
    print(f"{r['scenario']}: {r['count_locations']} counted links ({r['counts']} hourly counts) of {r['links']}; "
          f"{r['holdout_locations']} held out")
    print(f"GEH<5: fit {100 * r['geh5_fit']:.1f}%, hold-out {100 * r['geh5_holdout']:.1f}% (prior "
          f"{100 * r['geh5_holdout_prior']:.1f}%; target >= 95%: {'ok' if ok_geh else 'MISSED'}), never-counted busy "
          f"links {100 * r['geh5_uncounted_busy']:.1f}% of {r['uncounted_busy_links']}")
    print(f"trips: true {r['trips_true']:,}, prior {r['trips_prior']:,}, calibrated {r['trips_calibrated']:,} "
          f"({100 * r['total_error']:+.1f}%); per hour true {r['hourly_true']}, calibrated "
          f"{r['hourly_calibrated']} (worst {100 * r['hourly_max_error']:.1f}%; target within 10%: "
          f"{'ok' if ok_tot else 'MISSED'})")
    print(json.dumps({k: r[k] for k in ("scenario", "geh5_fit", "geh5_holdout", "geh5_uncounted_busy",
                                        "total_error", "hourly_max_error", "wall_s")}))
    return 0 if ok_geh and ok_tot else 1


if __name__ == "__main__":
    sys.exit(main())
