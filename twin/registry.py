"""Registry from a scenario section name to the domain that implements it.

Each domain package exposes ``DOMAIN = DomainSpec(...)``; the engine imports it lazily by name,
so a domain only costs an import when a scenario uses it (the xarray back-end registry pattern).
"""
from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any, Callable

from pydantic import BaseModel

__all__ = ["DomainSpec", "DOMAIN_MODULES", "get_domain_spec"]


@dataclass(frozen=True)
class DomainSpec:
    """How to validate a domain's scenario section and build the domain from it."""

    name: str
    config_model: type[BaseModel]
    factory: Callable[[Any], Any]  # config -> Domain


# Order matters: the engine sets domains up in this order (traffic first: the others drive on it).
DOMAIN_MODULES: dict[str, str] = {
    "traffic": "agents.traffic",
    "crowd": "agents.crowd",
    "ev": "agents.ev",
    "emergency": "agents.emergency",
}


def get_domain_spec(name: str) -> DomainSpec:
    """Import and return the ``DomainSpec`` registered under ``name``."""
    module = importlib.import_module(DOMAIN_MODULES[name])
    spec = getattr(module, "DOMAIN")
    if spec.name != name:
        raise RuntimeError(f"domain module {DOMAIN_MODULES[name]} registers {spec.name!r}, expected {name!r}")
    return spec
