"""Traffic domain: the built-in mesoscopic model (numba) and Eclipse SUMO, behind one API (backend.py)."""
from __future__ import annotations

from agents.traffic.config import TrafficConfig
from twin.registry import DomainSpec

__all__ = ["DOMAIN", "TrafficConfig", "make_traffic"]


def make_traffic(config: TrafficConfig):
    """Build the back-end the scenario asks for (``traffic.backend``)."""
    if config.backend == "sumo":
        from agents.traffic.sumo import SumoTraffic  # imported only when used: it needs SUMO

        return SumoTraffic(config)
    from agents.traffic.meso import MesoTraffic

    return MesoTraffic(config)


DOMAIN = DomainSpec("traffic", TrafficConfig, make_traffic)
