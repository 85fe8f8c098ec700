"""CityTwin core: scenario files, the coupled engine (mesa Model + simpy clock), results, batches.

``twin.run`` is the run service (the module): ``from twin.run import run_variants``.
"""

__all__ = ["CityTwin", "KPI", "Domain", "EventBus", "Scenario", "ScenarioError", "load_scenario", "run_variants"]

# Everything loads on first use (PEP 562): ``import twin.scenario`` must not pay for xarray or numba, so a
# command that refuses a bad scenario file exits at once (docs/security.md: the alias bomb exits in < 2 s).
_LAZY = {"KPI": "twin.domain", "Domain": "twin.domain", "EventBus": "twin.domain", "Scenario": "twin.scenario",
         "ScenarioError": "twin.scenario", "load_scenario": "twin.scenario", "CityTwin": "twin.engine",
         "run_variants": "twin.run"}


def __getattr__(name):
    mod = _LAZY.get(name)
    if mod is None:
        raise AttributeError(name)
    import importlib

    return getattr(importlib.import_module(mod), name)
