"""CityTwin core: scenario files, the coupled engine (mesa Model + simpy clock), results, batches.

``twin.run`` is the run service (the module): ``from twin.run import run_variants``.
"""
from twin.domain import KPI, Domain, EventBus
from twin.scenario import Scenario, ScenarioError, load_scenario

__all__ = ["CityTwin", "KPI", "Domain", "EventBus", "Scenario", "ScenarioError", "load_scenario", "run_variants"]


def __getattr__(name):  # the engine imports numba kernels: load it only when asked for
    if name == "CityTwin":
        from twin.engine import CityTwin

        return CityTwin
    if name == "run_variants":
        from twin.run import run_variants

        return run_variants
    raise AttributeError(name)
