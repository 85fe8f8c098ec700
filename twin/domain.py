"""The one small interface through which a domain (traffic, EV, crowd, emergency) plugs into the engine.

A domain is built from its validated config section, then the engine calls, in order:
``setup(twin)`` once (register simpy processes on ``twin.env``, create Mesa agents),
``record(t_s)`` at every recording time (the engine's single recorder process calls it),
and at the end ``finalize(t_end_s) -> xarray.Dataset`` and ``kpis() -> dict[str, KPI]``.
Domains talk to each other only through the engine: ``twin.traffic`` (the traffic back-end's
public API), ``twin.bus`` (publish/subscribe of events) and ``twin.shared`` (named shared state).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, ClassVar

import numpy as np
import xarray as xr

if TYPE_CHECKING:  # pragma: no cover
    from twin.engine import CityTwin

__all__ = ["KPI", "Domain", "DomainRunError", "EventBus"]


@dataclass(frozen=True)
class KPI:
    """One headline figure of a run: value with units, a label, and which direction is better."""

    value: float
    units: str
    label: str
    better: str = "lower"  # "lower", "higher" or "none"


class DomainRunError(RuntimeError):
    """A domain's external engine failed mid-run (e.g. SUMO crashed). The engine catches it, assembles the
    partial results (attr ``complete`` = 0) into ``dataset`` and re-raises, so callers can keep them."""

    dataset: xr.Dataset | None = None


class Domain:
    """Base class for a domain. Subclasses set ``name`` and override the hooks they need."""

    name: ClassVar[str] = "domain"

    def __init__(self, config: Any) -> None:
        self.config = config
        self.twin: CityTwin | None = None

    def claim_trips(self, twin: "CityTwin", trips: dict) -> "np.ndarray | None":
        """Indices of background trips this domain drives itself (e.g. as EVs); the traffic domain then
        leaves them out. Called once, before any ``setup``. Default: none."""
        return None

    def setup(self, twin: "CityTwin") -> None:
        """Attach to the engine: keep ``twin``, register processes on ``twin.env``."""
        self.twin = twin

    def record(self, t_s: float) -> None:
        """Record state at simulated time ``t_s`` (seconds from scenario start)."""

    def finalize(self, t_end_s: float) -> xr.Dataset:
        """Return this domain's results; every variable carries ``units`` and ``long_name`` attrs."""
        return xr.Dataset()

    def kpis(self) -> dict[str, KPI]:
        """Return this domain's KPIs keyed by a short snake_case name."""
        return {}


@dataclass
class EventBus:
    """Synchronous publish/subscribe between domains (e.g. crowd -> emergency incidents)."""

    _subs: dict[str, list[Callable[[dict], None]]] = field(default_factory=dict)

    def subscribe(self, topic: str, callback: Callable[[dict], None]) -> None:
        """Call ``callback(payload)`` for every later ``publish(topic, payload)``."""
        self._subs.setdefault(topic, []).append(callback)

    def publish(self, topic: str, payload: dict) -> int:
        """Deliver ``payload`` to every subscriber of ``topic``; return how many received it."""
        subs = self._subs.get(topic, [])
        for cb in subs:
            cb(payload)
        return len(subs)
