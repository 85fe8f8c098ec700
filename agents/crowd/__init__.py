"""Crowd domain: a numba collision-free speed model of pedestrians in venues, density maps and warnings.

Modules: geometry (venue polygons, exits, raster, periodic strips), distance_field (fast marching), kernel
(numba model), threads (thread count per kernel call), sim (one venue's simulation), density, warnings, venue
(one venue in the twin), config, domain, experiments (validation set-ups: corridors, measurement areas,
bottlenecks; never imported by the model).
"""
from __future__ import annotations

from agents.crowd.config import CrowdConfig
from agents.crowd.domain import CrowdDomain
from twin.registry import DomainSpec

__all__ = ["DOMAIN", "CrowdConfig", "CrowdDomain"]

DOMAIN = DomainSpec("crowd", CrowdConfig, CrowdDomain)
