"""``run_scenario.py suggest-stations FILE --add K [--run]``: propose station sites, optionally run them as a variant."""
from __future__ import annotations

import sys
from pathlib import Path

__all__ = ["cli_suggest_stations", "VARIANT_NAME"]

VARIANT_NAME = "suggested_stations"


def cli_suggest_stations(args) -> int:
    """Print K suggested sites and the variant YAML; with ``--run`` run baseline and variant and compare KPIs.

    ``args``: ``file`` (scenario path), ``add`` (K), ``run`` (bool), ``quiet`` (bool). Exit 0 ok, 1 run
    failed, 2 bad input.
    """
    import yaml

    from agents.emergency.planning import suggest_stations
    from twin.city import build_city
    from twin.scenario import ScenarioError, load_scenario

    try:
        variants = load_scenario(args.file)
        base = variants["baseline"]
        cfg = base.domain_configs.get("emergency")
        if cfg is None:
            raise ScenarioError(args.file, ["emergency: missing or disabled — add an emergency: section"])
        if args.add < 1:
            raise ScenarioError(args.file, [f"--add {args.add} — ask for at least 1 site"])
        city = build_city(base.city, Path(args.file).parent, base.name)
        errs = [f"emergency.{m}" for m in cfg.city_errors(city)]
        if errs:
            raise ScenarioError(args.file, errs)
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
