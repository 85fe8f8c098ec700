"""The traffic API contract (agents/traffic/backend.py), checked the same way on every back-end and stand-in.

Back-ends: the built-in ``meso`` model, ``freeflow`` (same kernel, no congestion), ``sumo`` (libsumo, small
grid), and the stand-ins other domains' tests use (agents/traffic/standins.py), registered here as back-ends
so every one runs through the same scenario -> CityTwin path.
"""
from __future__ import annotations

from pathlib import Path

import networkx as nx
import numpy as np
import pytest
from pydantic import BaseModel, ConfigDict

from agents.traffic.backend import TrafficAPI, TrafficBackend, TripResult
from agents.traffic.schema import ARRIVED, traffic_dataset, traffic_kpis
from agents.traffic.standins import FixedTimeTraffic, FreeFlowTravel, PrecomputedTraffic
from twin.domain import Domain
from twin.engine import CityTwin
from twin.registry import (DomainSpec, register_domain, register_traffic_backend, unregister_domain,
                           unregister_traffic_backend)
from twin.scenario import resolve_variants

ROOT = Path(__file__).resolve().parents[1]
N, SPACING = 5, 200.0  # 5 x 5 grid, 200 m links
FIXED_S = 30.0

STANDINS = {
    "standin_fixed": lambda cfg: FixedTimeTraffic(FIXED_S, cfg),
    "standin_freeflow": FreeFlowTravel,
    "standin_precomputed": PrecomputedTraffic,
}
BACKENDS = ["meso", "freeflow", "sumo", *STANDINS]
# back-ends whose drives follow road physics (the fixed-time stand-in's do not, by design)
PHYSICAL = {"meso", "freeflow", "sumo", "standin_freeflow", "standin_precomputed"}
FULL_SERIES = {"meso", "freeflow", "sumo"}  # back-ends that record link time series


class _ClaimerConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    every: int = 2


class _Claimer(Domain):
    """Claims every ``every``-th background trip (as the EV domain claims EV trips) and drives none."""

    name = "claimer"

    def claim_trips(self, twin, trips):
        return np.arange(0, len(trips["origin"]), self.config.every)


@pytest.fixture(autouse=True, scope="module")
def _registered():
    for name, factory in STANDINS.items():
        register_traffic_backend(name, factory)
    register_domain(DomainSpec("claimer", _ClaimerConfig, _Claimer))
    yield
    for name in STANDINS:
        unregister_traffic_backend(name)
    unregister_domain("claimer")


def _twin(backend: str, trips: int = 0, duration_s: float = 1800.0, claim: bool = False, extra=()):
    """A CityTwin on the 5x5 grid with ``backend``; ``extra`` simpy processes start right after setup."""
    if backend == "sumo":
        pytest.importorskip("libsumo", reason="SUMO back-end not installed")
    doc = {"name": "contract", "seed": 5,
           "city": {"source": "grid", "grid": {"nx": N, "ny": N, "spacing_m": SPACING}},
           "time": {"duration_s": duration_s, "step_s": 1, "record_interval_s": 300},
           "demand": {"trips": trips, "model": "uniform", "end_s": duration_s / 3},
           "traffic": {"backend": backend}}
    if claim:
        doc["claimer"] = {"every": 2}
    sc = resolve_variants(doc, ROOT / "scenarios" / "contract.yaml")["baseline"]
    tw = CityTwin(sc, ROOT / "scenarios")
    setup = tw.setup

    def setup_then_start():
        setup()
        for p in extra:
            tw.env.process(p(tw))

    tw.setup = setup_then_start
    return tw


def _close(tw) -> None:
    close = getattr(tw.traffic, "close", None)
    if close is not None:
        close()


def _node(i: int, j: int, tw) -> int:
    return tw.city.node_index(f"n{i}_{j}")


def _reference_graph(tw, link_times: np.ndarray) -> nx.DiGraph:
    """The city as a networkx DiGraph weighted by the back-end's own link times (fastest parallel link)."""
    a = tw.city.arrays
    g = nx.DiGraph()
    g.add_nodes_from(range(a.n_nodes))
    for i in range(a.n_links):
        u, v, w = int(a.link_from[i]), int(a.link_to[i]), float(link_times[i])
        if np.isfinite(w) and (not g.has_edge(u, v) or g[u][v]["w"] > w):
            g.add_edge(u, v, w=w)
    return g


# ------------------------------------------------------------------------------------------- API shape
@pytest.mark.parametrize("backend", BACKENDS)
def test_backend_implements_the_protocol(backend):
    """Every back-end is a TrafficAPI (runtime-checked), a TrafficBackend and a Domain named 'traffic'."""
    tw = _twin(backend)
    tw.setup()
    try:
        assert isinstance(tw.traffic, TrafficAPI)
        assert isinstance(tw.traffic, TrafficBackend) and isinstance(tw.traffic, Domain)
        assert tw.traffic.name == "traffic"
    finally:
        _close(tw)


def test_protocol_rejects_an_object_missing_a_call():
    """The Protocol is a real check: an object with all calls but ``times_to`` is not a TrafficAPI."""

    class Partial:
        def drive(self, *a, **k): ...
        def add_trips(self, *a, **k): ...
        def route(self, *a, **k): ...
        def travel_time_s(self, *a, **k): ...
        def link_travel_times_s(self): ...
        def set_capacity_factor(self, *a, **k): ...

    assert not isinstance(Partial(), TrafficAPI)
    Partial.times_to = lambda self, d, congested=True: None
    assert isinstance(Partial(), TrafficAPI)


# ------------------------------------------------------------------------------------------- routing
@pytest.mark.parametrize("backend", BACKENDS)
def test_routing_queries_agree_with_each_other_and_networkx(backend):
    """route, travel_time_s, times_to and link_travel_times_s agree, and match networkx on the same link times."""
    tw = _twin(backend)
    tw.setup()
    try:
        T = tw.traffic
        tt = T.link_travel_times_s()
        a = tw.city.arrays
        assert tt.shape == (a.n_links,) and np.all(tt > 0) and np.all(np.isfinite(tt))
        g = _reference_graph(tw, tt)
        pairs = [(_node(0, 0, tw), _node(4, 4, tw)), (_node(4, 0, tw), _node(0, 3, tw)),
                 (_node(2, 2, tw), _node(2, 1, tw))]
        for o, d in pairs:
            route = T.route(o, d)
            assert route, f"no route {o}->{d}"
            assert int(a.link_from[route[0]]) == o and int(a.link_to[route[-1]]) == d
            assert all(int(a.link_to[x]) == int(a.link_from[y]) for x, y in zip(route, route[1:]))
            t = T.travel_time_s(o, d)
            assert t == pytest.approx(float(tt[route].sum()), rel=1e-9)
            assert t == pytest.approx(nx.shortest_path_length(g, o, d, weight="w"), rel=1e-9)
            assert T.times_to(d)[o] == pytest.approx(t, rel=1e-9)
            assert T.travel_time_s(o, d, congested=False) <= t * (1 + 1e-9)
        assert T.route(pairs[0][0], pairs[0][0]) == [] and T.travel_time_s(pairs[0][0], pairs[0][0]) == 0.0
        # node ids work as well as indices
        assert T.travel_time_s("n0_0", "n4_4") == T.travel_time_s(pairs[0][0], pairs[0][1])
    finally:
        _close(tw)


@pytest.mark.parametrize("backend", BACKENDS)
def test_closing_a_link_detours_and_reopening_restores(backend):
    """Capacity factor 0: link time inf, routes avoid it, time not shorter; factor 1 restores the old figures."""
    tw = _twin(backend)
    tw.setup()
    try:
        T = tw.traffic
        o, d = _node(0, 0, tw), _node(4, 0, tw)  # straight along one row: 4 links
        before = T.travel_time_s(o, d)
        route = T.route(o, d)
        cut = route[len(route) // 2]
        T.set_capacity_factor(tw.city.link_ids[cut], 0.0)  # by link id
        assert np.isinf(T.link_travel_times_s()[cut])
        detour = T.route(o, d)
        assert detour and cut not in detour
        assert T.travel_time_s(o, d) > before
        ff = T.travel_time_s(o, d, congested=False)
        assert np.isfinite(ff) and T.times_to(d, congested=False)[o] == pytest.approx(ff, rel=1e-9)
        T.set_capacity_factor(cut, 1.0)  # by index
        assert np.isfinite(T.link_travel_times_s()[cut])
        assert T.travel_time_s(o, d) == pytest.approx(before, rel=1e-9)
        assert cut in T.route(o, d)
    finally:
        _close(tw)


# ------------------------------------------------------------------------------------------- driving
@pytest.mark.parametrize("backend", BACKENDS)
def test_drive_event_fires_on_arrival_with_a_trip_result(backend):
    """A drive started at t=100 s fires when it arrives: times, nodes and distance are consistent."""
    seen = {}

    def proc(tw):
        yield tw.env.timeout(100.0)
        o, d = _node(0, 0, tw), _node(4, 4, tw)
        seen["ff"] = tw.traffic.travel_time_s(o, d, congested=False)
        res = yield tw.traffic.drive(o, d, kind="car")
        seen["res"], seen["now"] = res, tw.env.now

    tw = _twin(backend, duration_s=600.0, extra=[proc])
    ds = tw.run()
    res = seen["res"]
    assert isinstance(res, TripResult) and res.status == "arrived"
    assert (res.origin, res.destination) == (_node(0, 0, tw), _node(4, 4, tw))
    # time-stepped back-ends fire at the end of the step (1 s here) in which the vehicle arrived
    assert 99.0 <= res.depart_s <= 100.0 and seen["now"] - 1.0 <= res.arrive_s <= seen["now"] + 1e-9
    manhattan = 2 * (N - 1) * SPACING
    assert res.distance_m >= 0.95 * manhattan
    if backend in PHYSICAL:  # nobody beats the free-flow shortest time (one step of rounding allowed)
        assert res.travel_time_s >= seen["ff"] - 1.0
    else:
        assert res.travel_time_s == pytest.approx(FIXED_S)
    # the trip is in the results' trip table, arrived
    k = int(res.trip)
    assert int(ds["trip_status"].values[k]) == ARRIVED
    assert ds["trip_arrive"].values[k] == pytest.approx(res.arrive_s, abs=1.0)


@pytest.mark.parametrize("backend", BACKENDS)
def test_unreachable_drive_reports_unroutable_without_raising(backend):
    """With every link into the destination closed, drive still returns an event; it reports unroutable."""
    seen = {}

    def proc(tw):
        yield tw.env.timeout(10.0)
        a = tw.city.arrays
        d = _node(2, 2, tw)
        for i in np.flatnonzero(a.link_to == d):
            tw.traffic.set_capacity_factor(int(i), 0.0)
        assert np.isinf(tw.traffic.travel_time_s(_node(0, 0, tw), d))
        assert tw.traffic.route(_node(0, 0, tw), d) == []
        res = yield tw.traffic.drive(_node(0, 0, tw), d)
        seen["res"], seen["now"] = res, tw.env.now

    tw = _twin(backend, duration_s=600.0, extra=[proc])
    tw.run()
    assert seen["res"].status in ("unroutable", "stranded")
    assert seen["now"] <= 10.0 + 60.0  # reported at once (within a minute of kernel time), not at the end


@pytest.mark.parametrize("backend", BACKENDS)
def test_added_trips_get_ids_and_arrive(backend):
    """add_trips returns one distinct id per trip; light demand all arrives and shows in the trip table."""
    seen = {}

    def proc(tw):
        yield tw.env.timeout(60.0)
        o = np.array([_node(0, 0, tw), _node(4, 4, tw), _node(0, 4, tw)], np.int32)
        d = np.array([_node(4, 4, tw), _node(0, 0, tw), _node(4, 0, tw)], np.int32)
        seen["ids"] = tw.traffic.add_trips(o, d, np.array([60.0, 90.0, 120.0]))
        seen["o"] = o

    tw = _twin(backend, duration_s=1200.0, extra=[proc])
    ds = tw.run()
    ids = np.asarray(seen["ids"])
    assert len(ids) == 3 and len(set(ids.tolist())) == 3
    assert np.array_equal(ds["trip_origin"].values[ids], seen["o"])
    assert np.all(ds["trip_status"].values[ids] == ARRIVED)
    assert np.all(ds["trip_depart"].values[ids] >= 60.0 - 1e-9)


@pytest.mark.parametrize("backend", BACKENDS)
def test_claimed_trips_are_left_to_the_claiming_domain(backend):
    """Trips another domain claims (claim_trips) are not driven by the back-end: its trip table has the rest."""
    tw = _twin(backend, trips=30, duration_s=1200.0, claim=True)
    ds = tw.run()
    demand = tw.shared["demand_trips"]
    keep = np.ones(len(demand["origin"]), bool)
    keep[::2] = False
    assert ds.sizes["trip"] == int(keep.sum()) > 0
    assert np.array_equal(np.sort(ds["trip_origin"].values), np.sort(demand["origin"][keep]))


# ------------------------------------------------------------------------------------------- results schema
def _reference_schema(city) -> dict[str, tuple[tuple[str, ...], str]]:
    """Names, dims and units of the traffic schema (agents/traffic/schema.py) with one record and one trip."""
    L = city.arrays.n_links
    z = np.zeros((1, L))
    series = {"flow": z, "speed": z, "vehicles": z, "queue": z, "capf": z, "junction_delay": z, "running": [0],
              "completed": [0], "waiting": [0]}
    one = {k: np.zeros(1) for k in ("origin", "destination", "depart", "arrive", "freeflow_time", "distance",
                                     "links", "kind")}
    one["status"] = np.zeros(1, np.int8)
    ref = traffic_dataset(city, fft_s=np.ones(L), capacity_vph=np.ones(L), rec_t=[300.0], series=series, trips=one)
    return {str(k): (tuple(str(d) for d in v.dims), v.attrs["units"]) for k, v in ref.data_vars.items()}


@pytest.mark.parametrize("backend", BACKENDS)
def test_results_follow_the_traffic_schema(backend):
    """Every back-end writes the schema's variables with the same dims and units, and the same KPIs."""
    tw = _twin(backend, trips=20, duration_s=900.0)
    ds = tw.run()
    ref = _reference_schema(tw.city)
    traffic_vars = {k for k in ds.data_vars if str(k).split("_")[0] in ("link", "trip", "net")}
    for k in traffic_vars:
        assert k in ref, f"{backend}: {k} is not in the traffic schema"
        assert (tuple(ds[k].dims), ds[k].attrs["units"]) == ref[k], k
    static = {k for k, (dims, _) in ref.items() if "time" not in dims}
    assert static <= traffic_vars
    if backend in FULL_SERIES:  # link_junction_delay is optional (only the built-in model separates it)
        assert set(ref) - {"link_junction_delay"} == traffic_vars - {"link_junction_delay"}
    kref = traffic_kpis(status=np.zeros(0, np.int8), depart=np.zeros(0), arrive=np.zeros(0),
                        freeflow_time=np.zeros(0), distance_m=np.zeros(0), now_s=0.0, pending_due=0, teleports=0)
    k = tw.traffic.kpis()
    assert set(k) == set(kref) and all(k[n].units == kref[n].units for n in k)
    assert k["trips"].value == ds.sizes["trip"] == 20
    assert k["trips_completed"].value == int((ds["trip_status"].values == ARRIVED).sum())
