"""Early warnings: a level is raised when a venue's peak window density stays at or above it for a duration.

Each warning has a start (first sample above the level), an end (first sample below, or the run end),
the peak density reached and where (local m). ``update`` returns the warnings that have just been raised
(the duration has just been met), so the domain can publish an incident at that moment.
"""
from __future__ import annotations

from dataclasses import dataclass

__all__ = ["CrowdWarning", "WarningTracker"]


@dataclass
class CrowdWarning:
    """One episode of density at or above ``level_density`` for at least the warning duration."""

    venue: str
    level: str  # "warn" | "critical"
    level_density: float  # persons/m²
    start_s: float
    end_s: float
    peak_density: float  # persons/m²
    x: float  # local m of the peak
    y: float
    raised_s: float  # when the duration was met

    @property
    def duration_s(self) -> float:
        return self.end_s - self.start_s


class WarningTracker:
    """Tracks episodes per level for one venue from successive (time, peak density, place) samples."""

    def __init__(self, venue: str, levels: dict[str, float], duration_s: float) -> None:
        self.venue = venue
        self.levels = levels
        self.duration_s = duration_s
        self._open: dict[str, CrowdWarning | None] = {k: None for k in levels}
        self.warnings: list[CrowdWarning] = []

    def update(self, t_s: float, peak: float, x: float, y: float) -> list[CrowdWarning]:
        """Feed one sample; return warnings raised at this sample."""
        raised = []
        for name, thr in self.levels.items():
            ep = self._open[name]
            if peak >= thr:
                if ep is None:
                    ep = CrowdWarning(self.venue, name, thr, t_s, t_s, peak, x, y, float("nan"))
                    self._open[name] = ep
                if peak > ep.peak_density:
                    ep.peak_density, ep.x, ep.y = peak, x, y
                ep.end_s = t_s
                if ep.raised_s != ep.raised_s and t_s - ep.start_s >= self.duration_s:  # NaN: not yet raised
                    ep.raised_s = t_s
                    self.warnings.append(ep)
                    raised.append(ep)
            elif ep is not None:
                ep.end_s = t_s
                self._open[name] = None
        return raised

    def close(self, t_end_s: float) -> None:
        """End open episodes at the end of the run."""
        for name, ep in self._open.items():
            if ep is not None:
                ep.end_s = t_end_s
            self._open[name] = None
