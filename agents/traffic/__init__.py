"""Traffic domain: the built-in mesoscopic model (numba) and Eclipse SUMO behind one API (backend.py).

Back-ends are looked up in the registry (``twin.registry``, entry-point group ``citytwin.traffic_backends``)
by the scenario's ``traffic.backend``; a new back-end is one module plus one registration (docs/extending.md).
"""
from __future__ import annotations

from typing import Any

from agents.traffic.config import TrafficConfig
from twin.registry import DomainSpec, get_traffic_backend

__all__ = ["DOMAIN", "TrafficConfig", "make_traffic"]


def make_traffic(config: TrafficConfig) -> Any:
    """Build the back-end the scenario asks for (``traffic.backend``); it is imported only when used."""
    return get_traffic_backend(config.backend)(config)


DOMAIN = DomainSpec("traffic", TrafficConfig, make_traffic)
