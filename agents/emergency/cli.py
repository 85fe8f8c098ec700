"""``run_scenario.py suggest-stations FILE --add K [--run]``: propose station sites, optionally run them as a variant."""
from __future__ import annotations

import sys

__all__ = ["cli_suggest_stations", "VARIANT_NAME"]

VARIANT_NAME = "suggested_stations"


def cli_suggest_stations(args) -> int:
    """Print K suggested sites and the variant YAML; with ``--run`` run baseline and variant and compare KPIs.

    ``args``: ``file`` (scenario path), ``add`` (K), ``run`` (bool), ``quiet`` (bool). Exit 0 ok, 1 run
    failed, 2 bad input.
    """
    import yaml

    from agents.emergency.planning import suggest_stations
    from twin.cli import planning_inputs
    from twin.scenario import ScenarioError

    try:
        base, cfg, city = planning_inputs(args.file, "emergency", args.add)
    except ScenarioError as exc:
        print(str(exc), file=sys.stderr)
        return 2
    sug = suggest_stations(city, cfg, k=args.add)
    print(sug.table())
    desc = f"{len(sug.sites)} suggested station(s) maximising coverage within {sug.budget_s:.0f} s travel"
    override = {"description": desc, **sug.override}
    print("\nadd this to the scenario's variants:\n")
    print(yaml.safe_dump({"variants": {VARIANT_NAME: override}}, sort_keys=False, allow_unicode=True))
    if not args.run:
        return 0
    from twin.cli import run_with_variant

    return run_with_variant(args.file, VARIANT_NAME, override, city, args.quiet)
