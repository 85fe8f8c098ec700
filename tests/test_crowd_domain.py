"""Crowd domain on a tiny fake twin: config validation, density records, warnings -> incidents, leavers -> car trips."""
import numpy as np
import pytest
from pydantic import ValidationError

from agents.crowd import DOMAIN, CrowdConfig
from networks.synthetic import grid
from agents.traffic.standins import FixedTimeTraffic
from twin.context import DomainContext
from twin.engine import Engine


class FakeTraffic(FixedTimeTraffic):
    """The fixed-time stand-in that also records add_trips calls."""

    def __init__(self):
        super().__init__(0.0)
        self.calls = []

    def add_trips(self, origins, destinations, depart_s, kind="car"):
        self.calls.append((np.asarray(origins), np.asarray(destinations), np.asarray(depart_s), kind))
        return super().add_trips(origins, destinations, depart_s, kind)


class FakeTwin(Engine):
    """The real engine on a 4x4 grid with the recording stand-in traffic; ``run(domain)`` runs one domain."""

    def __init__(self, duration_s=120.0, record_s=20.0, seed=3):
        super().__init__(DomainContext.for_city(grid(4, 4, 100.0), duration_s, record_s, seed=seed),
                         {"traffic": FakeTraffic()})

    def run(self, domain):
        self.domains[domain.name] = domain
        return super().run()


def section(**venue_over):
    venue = {"name": "hall", "origin": [150.0, 150.0], "polygon": [[0, 0], [12, 0], [12, 8], [0, 8]],
             "exits": [{"name": "door", "at": [12, 4], "width_m": 1.2, "node": 5},
                       {"name": "gate", "at": [0, 4], "width_m": 2.0}],
             "attractor": [6, 4], "standing_density": 5.8, "initial_persons": 220,
             "egress": {"start_s": 30, "spread_s": 0}}
    venue.update(venue_over)
    return {"warn_duration_s": 3, "car_share": 0.5, "persons_per_car": 1.0, "walk_to_car_s": 60, "venues": [venue]}


def test_unstable_dt_and_bad_values_are_validation_errors():
    """dt above the stability limit, a misplaced exit and critical < warn are rejected with clear messages."""
    with pytest.raises(ValidationError, match="unstable"):
        CrowdConfig.model_validate({**section(), "dt_s": 0.5})
    with pytest.raises(ValidationError, match="from the boundary"):
        CrowdConfig.model_validate(section(exits=[{"name": "x", "at": [6, 4]}]))
    with pytest.raises(ValidationError, match="critical_density"):
        CrowdConfig.model_validate({**section(), "critical_density": 3.0})
    cfg = CrowdConfig.model_validate(section(exits=[{"name": "door", "at": [12, 4], "node": "nowhere"}]))
    errs = cfg.city_errors(grid(4, 4, 100.0))
    assert errs == ["venues[0].exits[0].node: 'nowhere' — not a node of the city"]


def test_dense_hall_warns_publishes_incident_empties_and_feeds_traffic():
    """A packed hall raises warnings and a crowd incident, empties on egress, and sends cars from its exits."""
    twin = FakeTwin()
    got = []
    twin.bus.subscribe("incident", got.append)
    dom = DOMAIN.factory(DOMAIN.config_model.model_validate(section()))
    ds = twin.run(dom)
    v = dom.venues[0]
    assert v.entered == 220 and v.inside + v.exited == v.entered
    assert v.inside == 0  # everyone out within 90 s of egress
    k = dom.kpis()
    assert k["peak_density"].value >= 5.5
    assert 0 < k["egress_time_s"].value < 90
    assert got and got[0]["kind"] == "crowd" and got[0]["venue"] == "hall" and got[0]["density"] >= 5.5
    assert set(ds.crowd_warning_level.values) == {"warn", "critical"}
    # cars: 50% share, 1 person per car -> floor(220/2) +- rounding, from the two exit nodes
    trips = sum(len(c[0]) for c in twin.traffic.calls)
    assert abs(trips - 110) <= 2 and trips == k["car_trips"].value
    origins = np.concatenate([c[0] for c in twin.traffic.calls])
    assert set(origins) <= set(dom.exit_nodes[0]) and 5 in set(origins)
    assert all((c[2] >= 30).all() for c in twin.traffic.calls)
    # records: density map integrates to the occupancy (time means at the first record: all inside)
    dens = ds.crowd_density.isel(venue=0, time=0).values
    area = (v.density.area_m2)
    a, b = area.shape
    assert abs(np.nansum(dens[:a, :b] * area) - 220) < 1.0
    assert ds.crowd_density.attrs["units"] == "m-2"
    assert float(ds.crowd_exit_flow.sum()) * 20 == pytest.approx(220)
    assert int(ds.crowd_occupancy.isel(venue=0, time=-1)) == 0


def test_arrivals_fill_from_entrances_and_are_reproducible():
    """Arrivals enter through entrances over their window; the same seed gives the same run."""
    sec = section(initial_persons=0, egress=None, standing_density=2.0,
                  arrivals={"persons": 60, "start_s": 0, "end_s": 40, "shape": "uniform"})
    out = []
    for _ in range(2):
        twin = FakeTwin(duration_s=60, record_s=20)
        dom = DOMAIN.factory(DOMAIN.config_model.model_validate(sec))
        ds = twin.run(dom)
        out.append(ds)
        v = dom.venues[0]
        assert v.entered + v.queue == 60 and v.exited == 0
        occ = ds.crowd_occupancy.values[0]
        assert occ[0] < occ[-1] == v.inside
    assert np.array_equal(out[0].crowd_density.values, out[1].crowd_density.values, equal_nan=True)
