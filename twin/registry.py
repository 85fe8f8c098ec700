"""The open registry: scenario section name -> domain, and ``traffic.backend`` name -> traffic back-end class.

Plug-ins register through entry points, as xarray's back-ends do: a package declares, in its pyproject.toml,

    [project.entry-points."citytwin.domains"]
    parking = "citytwin_parking:DOMAIN"              # a DomainSpec

    [project.entry-points."citytwin.traffic_backends"]
    mybackend = "citytwin_mybackend:MyTraffic"       # a class built from the traffic config

The built-ins are registered the same way (CityTwin's own pyproject.toml lists them); :data:`BUILTIN_DOMAINS`
and :data:`BUILTIN_BACKENDS` hold the same table so a checkout that was never installed also works (a test
keeps the two equal). Tests and notebooks may call :func:`register_domain` / :func:`register_traffic_backend`
to add one without reinstalling. Entries are loaded lazily: a domain only costs an import when a scenario
uses it. See docs/extending.md.
"""
from __future__ import annotations

import importlib
import re
from dataclasses import dataclass
from importlib.metadata import entry_points
from typing import Any, Callable

from pydantic import BaseModel

__all__ = ["DomainSpec", "DOMAIN_GROUP", "BACKEND_GROUP", "BUILTIN_DOMAINS", "BUILTIN_BACKENDS",
           "domain_names", "get_domain_spec", "register_domain", "unregister_domain",
           "traffic_backend_names", "get_traffic_backend", "register_traffic_backend",
           "unregister_traffic_backend", "reload_entry_points", "RegistryError"]

DOMAIN_GROUP = "citytwin.domains"
BACKEND_GROUP = "citytwin.traffic_backends"

# Order matters: the engine sets domains up in this order (traffic first: the others drive on it).
BUILTIN_DOMAINS: dict[str, str] = {
    "traffic": "agents.traffic:DOMAIN",
    "crowd": "agents.crowd:DOMAIN",
    "ev": "agents.ev:DOMAIN",
    "emergency": "agents.emergency:DOMAIN",
}
BUILTIN_BACKENDS: dict[str, str] = {
    "meso": "agents.traffic.meso:MesoTraffic",
    "freeflow": "agents.traffic.meso:MesoTraffic",  # the meso kernel without congestion (reads config.backend)
    "sumo": "agents.traffic.sumo:SumoTraffic",
}
_NAME = re.compile(r"[a-z][a-z0-9_]{0,39}")
# names the scenario file uses for itself: a domain cannot take them
_RESERVED = {"name", "description", "seed", "city", "time", "demand", "outputs", "batch", "variants", "variant",
             "variant_description"}


class RegistryError(RuntimeError):
    """A registration is unusable (bad name, clash, entry point that does not load)."""


@dataclass(frozen=True)
class DomainSpec:
    """How to validate a domain's scenario section and build the domain from it.

    ``requires``: other domains it cannot run without (e.g. ``("traffic",)`` for EV and emergency).
    """

    name: str
    config_model: type[BaseModel]
    factory: Callable[[Any], Any]  # config -> Domain
    requires: tuple[str, ...] = ()


# name -> "module:attr" (entry points) or the object itself (run-time registrations)
_plugins: dict[str, dict[str, str]] | None = None  # group -> installed entry points, read once
_runtime: dict[str, dict[str, Any]] = {DOMAIN_GROUP: {}, BACKEND_GROUP: {}}
_BUILTIN = {DOMAIN_GROUP: BUILTIN_DOMAINS, BACKEND_GROUP: BUILTIN_BACKENDS}
_KIND = {DOMAIN_GROUP: "domain", BACKEND_GROUP: "traffic back-end"}


def _check_name(name: str, kind: str) -> None:
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise RegistryError(f"{kind} name {name!r}: use 1-40 lower-case letters, digits or '_', starting with a letter")
    if kind == "domain" and name in _RESERVED:
        raise RegistryError(f"domain name {name!r} is a scenario key of its own; choose another name")


def reload_entry_points() -> None:
    """Read the installed plug-ins' entry points again (they are read once, at the first look-up)."""
    global _plugins
    found: dict[str, dict[str, str]] = {}
    for group, builtin in _BUILTIN.items():
        found[group] = {}
        for ep in sorted(entry_points(group=group), key=lambda e: e.name):
            _check_name(ep.name, _KIND[group])
            if ep.name in builtin:
                if ep.value != builtin[ep.name]:
                    raise RegistryError(f"entry point {group}:{ep.name} = {ep.value!r} clashes with the built-in "
                                        f"{builtin[ep.name]!r}")
                continue
            found[group][ep.name] = ep.value
    _plugins = found


def _table(group: str) -> dict[str, Any]:
    """Built-ins first (in their order), then installed plug-ins sorted by name, then run-time registrations."""
    if _plugins is None:
        reload_entry_points()
    assert _plugins is not None
    return {**_BUILTIN[group], **_plugins[group], **_runtime[group]}


def _resolve(target: Any) -> Any:
    if not isinstance(target, str):
        return target
    module, _, attr = target.partition(":")
    obj: Any = importlib.import_module(module)
    for part in attr.split(".") if attr else []:
        obj = getattr(obj, part)
    return obj


# ------------------------------------------------------------------------------------------- domains
def domain_names() -> list[str]:
    """Registered domains, in set-up order (built-ins first: traffic, crowd, ev, emergency)."""
    return list(_table(DOMAIN_GROUP))


def get_domain_spec(name: str) -> DomainSpec:
    """Import and return the :class:`DomainSpec` registered under ``name`` (KeyError if none)."""
    table = _table(DOMAIN_GROUP)
    if name not in table:
        raise KeyError(f"no domain {name!r}; registered: {', '.join(table)}")
    spec = _resolve(table[name])
    if not isinstance(spec, DomainSpec):
        raise RegistryError(f"domain {name!r} ({table[name]!r}) is a {type(spec).__name__}, not a DomainSpec")
    if spec.name != name:
        raise RegistryError(f"domain {name!r} ({table[name]!r}) calls itself {spec.name!r}")
    return spec


def register_domain(spec: DomainSpec | str, name: str | None = None) -> None:
    """Register a domain at run time (a :class:`DomainSpec`, or ``"module:attr"`` with ``name``)."""
    key = spec.name if isinstance(spec, DomainSpec) else name
    if key is None:
        raise RegistryError("register_domain('module:attr') needs name=")
    _check_name(key, "domain")
    if key in BUILTIN_DOMAINS:
        raise RegistryError(f"domain {key!r} is built in; choose another name")
    _runtime[DOMAIN_GROUP][key] = spec


def unregister_domain(name: str) -> None:
    """Remove a run-time registration (built-ins stay)."""
    _runtime[DOMAIN_GROUP].pop(name, None)


# ------------------------------------------------------------------------------------------- back-ends
def traffic_backend_names() -> list[str]:
    """Registered traffic back-ends: the allowed values of ``traffic.backend`` and ``--backend``."""
    return list(_table(BACKEND_GROUP))


def get_traffic_backend(name: str) -> Callable[[Any], Any]:
    """The class (or factory) registered as traffic back-end ``name``: called with the TrafficConfig."""
    table = _table(BACKEND_GROUP)
    if name not in table:
        raise KeyError(f"no traffic back-end {name!r}; registered: {', '.join(table)}")
    return _resolve(table[name])


def register_traffic_backend(name: str, factory: Callable[[Any], Any] | str) -> None:
    """Register a traffic back-end at run time: ``factory(config)`` returns the back-end (a Domain)."""
    _check_name(name, "traffic back-end")
    if name in BUILTIN_BACKENDS:
        raise RegistryError(f"traffic back-end {name!r} is built in; choose another name")
    _runtime[BACKEND_GROUP][name] = factory


def unregister_traffic_backend(name: str) -> None:
    """Remove a run-time registration (built-ins stay)."""
    _runtime[BACKEND_GROUP].pop(name, None)
