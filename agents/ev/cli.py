"""``run_scenario.py suggest-chargers FILE --add K [--run]``: run the baseline, propose K charger sites where
simulated EVs found no charger, print them as a ready variant, and optionally run that variant."""
from __future__ import annotations

import sys
from pathlib import Path

__all__ = ["cli_suggest_chargers", "VARIANT_NAME"]

VARIANT_NAME = "suggested_chargers"


def cli_suggest_chargers(args) -> int:
    """Exit 0 ok, 1 a run failed, 2 bad input (``args``: file, add, run, quiet)."""
    import yaml

    from agents.ev.suggest import as_variant, suggest_chargers
    from twin.cli import Progress, planning_inputs, run_with_variant
    from twin.run import run_one
    from twin.scenario import ScenarioError

    try:
        base, cfg, city = planning_inputs(args.file, "ev", args.add)
    except ScenarioError as exc:
        print(str(exc), file=sys.stderr)
        return 2
    bar = Progress("baseline", base.time.duration_s, args.quiet)
    ds = run_one(base, Path(args.file).parent, progress=bar)
    bar.close()
    sites = suggest_chargers(ds, city, k=args.add)
    if not sites:
        print("no unmet charging demand in the baseline: nothing to suggest")
        return 0
    print(f"{'#':>2} {'node':>24} {'x (m)':>9} {'y (m)':>9} {'unmet kWh covered':>18} {'plugs':>6} {'kW':>5}")
    for i, s in enumerate(sites):
        print(f"{i:>2} {s['node']:>24} {s['x']:>9.0f} {s['y']:>9.0f} {s['score']:>18.1f} {s['plugs']:>6} "
              f"{s['power_kw']:>5.0f}")
    override = {"description": f"{len(sites)} suggested charging site(s) where simulated EVs found none",
                **as_variant(sites, [e.model_dump(exclude_none=True) for e in getattr(cfg, "extra_stations", [])])}
    print("\nadd this to the scenario's variants:\n")
    print(yaml.safe_dump({"variants": {VARIANT_NAME: override}}, sort_keys=False, allow_unicode=True))
    if not args.run:
        return 0
    return run_with_variant(args.file, VARIANT_NAME, override, city, args.quiet)
