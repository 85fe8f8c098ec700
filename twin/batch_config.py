"""The ``batch:`` section of a scenario file: its pydantic schema (light: pydantic and numpy only).

``twin.scenario`` can validate ``Scenario.batch`` with :class:`BatchConfig` without importing the batch
machinery; ``twin.batch`` re-exports these classes.
"""
from __future__ import annotations

import math
import re
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

__all__ = ["BatchConfig", "ExecutorConfig", "Range", "PATH_RE"]

PATH_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]*(\.([A-Za-z0-9_-]+))*$")


# ------------------------------------------------------------------------------------------- schema
class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Range(_Strict):
    """A numeric range: ``num`` evenly spaced values for a grid; sampled uniformly by random/latin designs.

    Integer bounds (and ``integer: true``) give integers. ``log: true`` spaces/samples on a log scale.
    """

    min: float
    max: float
    num: int | None = Field(None, ge=1, le=10_000, description="Values on a grid design (linspace).")
    integer: bool = Field(False, description="Round to integers (default when both bounds are integers).")
    log: bool = Field(False, description="Log-spaced (both bounds > 0).")

    @model_validator(mode="before")
    @classmethod
    def _int_default(cls, data):
        if isinstance(data, dict) and "integer" not in data:
            lo, hi = data.get("min"), data.get("max")
            if isinstance(lo, int) and isinstance(hi, int) and not isinstance(lo, bool):
                data = {**data, "integer": True}
        return data

    @model_validator(mode="after")
    def _order(self) -> "Range":
        if not self.max >= self.min:
            raise ValueError(f"max ({self.max}) is below min ({self.min})")
        if self.log and self.min <= 0:
            raise ValueError("a log range needs min > 0")
        return self

    def _cast(self, x: np.ndarray) -> list:
        if self.integer:
            return [int(v) for v in np.rint(x)]
        return [float(v) for v in x]

    def grid(self) -> list:
        n = self.num or 2
        x = np.geomspace(self.min, self.max, n) if self.log else np.linspace(self.min, self.max, n)
        return self._cast(x)

    def at(self, u: np.ndarray) -> list:
        """Values at unit-interval positions ``u`` (inverse CDF of the uniform distribution)."""
        if self.integer:
            lo, hi = math.ceil(self.min - 1e-9), math.floor(self.max + 1e-9)
            return [int(v) for v in np.minimum(lo + np.floor(u * (hi - lo + 1)), hi)]
        if self.log:
            return self._cast(np.exp(np.log(self.min) + u * (np.log(self.max) - np.log(self.min))))
        return self._cast(self.min + u * (self.max - self.min))


DASK_ADDRESS = re.compile(r"local|(tcp|tls|ws|wss|ucx)://[A-Za-z0-9_.\-]{1,253}:\d{1,5}|(tcp|tls|ws|wss|ucx)://\[[0-9A-Fa-f:.]{2,45}\]:\d{1,5}")


class ExecutorConfig(_Strict):
    """Where runs execute: ``workers`` local processes (0 = in this process), or a Dask cluster."""

    workers: int | None = Field(None, ge=0, le=4096, description="Local worker processes (default: cores; 0: in this process).")
    context: Literal["spawn", "forkserver"] = Field("spawn", description="Start method of local workers (never fork).")
    dask: str | None = Field(None, description="Scheduler address (tcp://host:8786), or 'local' for a LocalCluster.")
    dask_workers: int | None = Field(None, ge=1, le=4096, description="Workers of a LocalCluster (default: cores).")

    @field_validator("dask")
    @classmethod
    def _address(cls, v: str | None) -> str | None:
        if v is not None and not DASK_ADDRESS.fullmatch(v):
            raise ValueError(f"{v[:60]!r} — a scheduler address scheme://host:port (schemes "
                             "tcp, tls, ws, wss, ucx; e.g. tcp://10.0.0.5:8786) or 'local'")
        return v

    @model_validator(mode="before")
    @classmethod
    def _shorthand(cls, data):
        if isinstance(data, str):
            return {"workers": 0} if data == "serial" else ({"dask": "local"} if data == "dask" else
                                                            ({} if data == "local" else {"dask": data}))
        if isinstance(data, int) and not isinstance(data, bool):
            return {"workers": data}
        return data


class BatchConfig(_Strict):
    """The ``batch:`` section of a scenario file (also the arguments of :func:`sweep`)."""

    params: dict[str, list[Any] | Range] = Field(default_factory=dict, description=(
        "Scenario key path -> values (a list) or a range {min, max, num}. The key 'variant' takes names of "
        "the file's variants."))
    seeds: int = Field(1, ge=1, le=100_000, description="Replications per parameter set.")
    seed: int | None = Field(None, ge=0, le=2**63 - 1, description="Batch seed (default: the scenario's seed).")
    design: Literal["grid", "random", "latin"] = Field("grid", description="Full factorial, random or Latin hypercube.")
    samples: int | None = Field(None, ge=1, le=1_000_000, description="Parameter sets of a random/latin design.")
    keep: Literal["kpis", "series", "all"] = Field("kpis", description="What each run file keeps: KPIs, + time series, or everything.")
    executor: ExecutorConfig = Field(default_factory=ExecutorConfig)
    out: str | None = Field(None, description="Batch folder (default: <outputs.dir>/<name>/batch).")
    retry_failed: bool = Field(True, description="Re-run failed runs when the batch runs again.")

    @field_validator("params")
    @classmethod
    def _params(cls, v: dict) -> dict:
        for k, vals in v.items():
            if not PATH_RE.match(k):
                raise ValueError(f"{k!r} is not a key path; write section.key (e.g. demand.scale)")
            if isinstance(vals, list) and not vals:
                raise ValueError(f"{k}: give at least one value")
        return v

    @model_validator(mode="after")
    def _design(self) -> "BatchConfig":
        if self.design == "grid":
            for k, vals in self.params.items():
                if isinstance(vals, Range) and vals.num is None:
                    raise ValueError(f"params.{k}: a range on a grid design needs 'num' (how many values)")
        elif self.params and self.samples is None:
            raise ValueError(f"a {self.design} design needs 'samples' (how many parameter sets)")
        return self
