"""The domain context (twin/context.py): named RNG streams, contained data paths, record times, clock start."""
from __future__ import annotations

import numpy as np
import pytest

from networks.synthetic import grid
from twin.context import DomainContext, record_times


def test_named_streams_are_fixed_by_seed_and_independent_of_call_order():
    """spawn_rng(name) depends on (seed, name) only: same draws whatever was asked before; names differ."""
    a = DomainContext.for_city(grid(2, 2), 60.0, seed=4)
    b = DomainContext.for_city(grid(2, 2), 60.0, seed=4)
    b.spawn_rng("other").random(10)
    x, y = a.spawn_rng("ev").random(5), b.spawn_rng("ev").random(5)
    np.testing.assert_array_equal(x, y)
    assert not np.array_equal(x, a.spawn_rng("emergency").random(5))
    assert not np.array_equal(x, DomainContext.for_city(grid(2, 2), 60.0, seed=5).spawn_rng("ev").random(5))


def test_resolve_path_stays_inside_the_allowed_folders(tmp_path):
    """Scenario data paths resolve beside the scenario; escaping paths are refused; used files are listed."""
    d = tmp_path / "a" / "b"
    d.mkdir(parents=True)
    (d / "calls.csv").write_text("x\n")
    ctx = DomainContext.for_city(grid(2, 2), 60.0, scenario_dir=d)
    assert ctx.resolve_path("calls.csv") == (d / "calls.csv").resolve()
    assert ctx.data_files == [(d / "calls.csv").resolve()]
    with pytest.raises(ValueError, match="leaves"):
        ctx.resolve_path("/etc/passwd")
    with pytest.raises(ValueError, match="leaves"):
        ctx.resolve_path("../../../../etc/passwd")


def test_record_times_end_at_the_duration_and_clock_start_sets_start_hour():
    """Records every interval and always at the end; '07:30' is start_hour 7.5."""
    assert list(record_times(900.0, 300.0)) == [300.0, 600.0, 900.0]
    assert list(record_times(1000.0, 300.0)) == [300.0, 600.0, 900.0, 1000.0]
    assert list(record_times(100.0, 300.0)) == [100.0]
    ctx = DomainContext.for_city(grid(2, 2), 600.0, 300.0, clock_start="07:30")
    assert ctx.start_hour == 7.5 and ctx.clock_start == "07:30" and list(ctx.record_times) == [300.0, 600.0]
