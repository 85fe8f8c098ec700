"""The built-in model's trip-end and closure routing rules, which follow what the SUMO back-end makes SUMO do.

- Pinned end links (``pin_end_links``, on by default on SUMO networks only): a node-to-node trip departs on the first link and arrives over the last link of its
  free-flow shortest path (the SUMO back-end sends SUMO exactly that edge-to-edge trip).
- Closing reroute (``reroute_on_closure``, off by default): when a link closes, every driver whose remaining route uses it takes a new route at once
  (SUMO's closing rerouter on every edge), instead of all of them turning away at the closed link's approach.
"""
from __future__ import annotations

import numpy as np

from agents.traffic import meso_kernel as K
from agents.traffic.sumo_setup import freeflow_od_links
from conftest import make_twin


def _grid(trips=1200, duration=1500, traffic=None, seed=7, pin=True):
    return make_twin({"seed": seed, "city": {"source": "grid", "grid": {"nx": 5, "ny": 5, "spacing_m": 150},
                                             "zone_cell_m": 300},
                      "time": {"duration_s": duration, "step_s": 1, "record_interval_s": 300},
                      "demand": {"trips": trips, "end_s": duration * 0.6},
                      "traffic": {"reroute_share": 0.1, "reroute_interval_s": 120, "pin_end_links": pin,
                                  **(traffic or {})}})


def test_trips_depart_and_arrive_on_the_links_the_sumo_backend_gives_sumo():
    """Every routed trip's route starts with the first and ends with the last link of its free-flow shortest
    path (``freeflow_od_links``, the SUMO back-end's rule), even after congestion changed the tables."""
    tw = _grid()
    tw.setup()
    T = tw.traffic
    tw.env.run(until=1500)
    T._catch_up()
    n = T.n_veh
    f, last, _, _ = freeflow_od_links(tw.city, T.fft, T.v_orig[:n], T.v_dest[:n])
    assert np.array_equal(T.v_first[:n], f) and np.array_equal(T.v_last[:n], last)
    started = np.flatnonzero(np.isin(T.v_status[:n], (K.ARRIVED, K.RUNNING)) & (f >= 0))
    assert len(started) > 800
    first_on_route = T.route_buf[T.v_rstart[started]]
    # a rerouted driver's route restarts at the link it was on: check the departures' first links on the
    # ones never rerouted (route start holds the first link), and the last link on everyone
    last_on_route = T.route_buf[T.v_rstart[started] + T.v_rlen[started] - 1]
    assert np.array_equal(last_on_route, last[started])
    never = T.v_rpos[started] == T.v_rlen[started] - 1  # finished or on the last link of its only route
    assert np.mean(first_on_route[never] == f[started][never]) > 0.8
    assert T.counts()["arrived"] > 800


def test_node_to_node_routing_when_pinning_is_off():
    """With ``pin_end_links: false`` no trip has pinned links and trips still arrive."""
    tw = _grid(pin=False)
    tw.setup()
    tw.env.run(until=1500)
    T = tw.traffic
    T._catch_up()
    assert np.all(T.v_first[: T.n_veh] == -1) and T.counts()["arrived"] > 800


def test_a_closure_reroutes_every_driver_heading_for_it_at_once():
    """Right after a link closes, no running driver's remaining route uses it (they re-routed from where they
    were, not at its approach), nobody is lost, and the closed link then carries nothing."""
    tw = _grid(trips=2500, traffic={"reroute_on_closure": True, "closures": [{"link": "n2_2>n3_2", "start_s": 400},
                                                 {"link": "n3_2>n2_2", "start_s": 400}]})
    tw.setup()
    T = tw.traffic
    closed = [tw.city.link_index("n2_2>n3_2"), tw.city.link_index("n3_2>n2_2")]

    def heading_for_closed():
        run = np.flatnonzero(T.v_status[: T.n_veh] == K.RUNNING)
        return sum(bool(np.isin(T.route_buf[T.v_rstart[v] + T.v_rpos[v] + 1: T.v_rstart[v] + T.v_rlen[v]],
                                closed).any()) for v in run)

    tw.env.run(until=399)
    T._catch_up()
    before = heading_for_closed()
    assert before > 0  # the test means something: drivers were heading for the link
    tw.env.run(until=401)
    T._catch_up()
    assert heading_for_closed() == 0
    tw.env.run(until=1500)
    T._catch_up()
    c = T.counts()
    assert c["total"] == (c["arrived"] + c["running"] + c["pending_due"] + c["pending_future"] + c["unroutable"]
                          + c["stranded"])
    assert c["stranded"] == 0 and c["unroutable"] == 0
