"""CityTwin core: scenario files, the coupled engine (mesa Model + simpy clock), results, batches."""
from twin.domain import KPI, Domain, EventBus
from twin.scenario import Scenario, ScenarioError, load_scenario

__all__ = ["CityTwin", "KPI", "Domain", "EventBus", "Scenario", "ScenarioError", "load_scenario", "run"]


def __getattr__(name):  # the engine imports numba kernels: load it only when asked for
    if name == "CityTwin":
        from twin.engine import CityTwin

        return CityTwin
    if name == "run":
        from twin.api import run

        return run
    raise AttributeError(name)
