"""Emergency response: incidents, dispatch, units driving through traffic, response KPIs, station planning.

The engine builds the domain from ``DOMAIN`` (``twin.registry``); planners call
``agents.emergency.planning.suggest_stations``.
"""
from __future__ import annotations

from agents.emergency.config import EmergencyConfig
from twin.registry import DomainSpec

__all__ = ["DOMAIN", "EmergencyConfig", "make_emergency"]


def make_emergency(config: EmergencyConfig):
    """Build the domain from its validated section (imported lazily: simpy/mesa only when used)."""
    from agents.emergency.domain import EmergencyDomain

    return EmergencyDomain(config)


DOMAIN = DomainSpec("emergency", EmergencyConfig, make_emergency, requires=("traffic",))  # units drive
