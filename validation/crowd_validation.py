"""Crowd model validation against experiments: free speed, Weidmann's fundamental diagram, bottleneck flows,
RiMEA tests 1 and 9, and a long run through a 1 m exit (no permanent clogging), side by side with JuPedSim's
default collision-free speed model when it is installed (an optional bench dependency). Prints markdown tables
(copied into docs/crowd.md) and a final PASS/FAIL summary.

Run: .venv/bin/python validation/crowd_validation.py   (about 20 s on a quiet 2-core machine, 8 s without JuPedSim)
"""
from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from agents.crowd.experiments import (bottleneck_flow, bottleneck_room, corridor_fd, rimea1, rimea9,  # noqa: E402
                                      run_egress, weidmann_speed)
from agents.crowd.sim import ModelParams  # noqa: E402


def _jps_version() -> str:
    import jupedsim
    return jupedsim.__version__


def jupedsim_egress(g, x0, y0, v0, t_max: float, dt: float, idle_s: float = 120.0):
    """The same room and people in JuPedSim's collision-free speed model with its default parameters (an
    optional peer: None if it is not installed). Stops when no one has left for ``idle_s`` s.
    Returns (people out, time the last one left (s), time the run stopped (s))."""
    try:
        import jupedsim as jps
        from shapely import Polygon, union_all
    except ImportError:
        return None
    e = g.exits[0]
    sim = jps.Simulation(model=jps.CollisionFreeSpeedModel(),
                         geometry=union_all([Polygon(g.outer), Polygon(e.apron(0.6))]), dt=dt)
    stage = sim.add_exit_stage(Polygon(e.apron(0.5)).buffer(-0.01))
    journey = sim.add_journey(jps.JourneyDescription([stage]))
    for x, y, v in zip(x0, y0, v0):
        sim.add_agent(jps.CollisionFreeSpeedModelAgentParameters(journey_id=journey, stage_id=stage,
                                                                 position=(float(x), float(y)), desired_speed=float(v)))
    n = len(x0)
    last_count, last_t, t = n, 0.0, 0.0
    while t < t_max and sim.agent_count() > 0 and t - last_t < idle_s:
        sim.iterate()
        t += dt
        if sim.agent_count() != last_count:
            last_count, last_t = sim.agent_count(), t
    return n - sim.agent_count(), last_t, t


def main() -> int:
    t0 = time.perf_counter()
    p = ModelParams()
    print(f"Model: collision-free speed model, radius {p.radius_m} m (l = {2 * p.radius_m:.2f} m), time gap "
          f"{p.time_gap_s} s, a_p {p.a_ped}, D_p {p.d_ped_m} m, a_w {p.a_wall}, D_w {p.d_wall_m} m, core "
          f"{p.core_radius_m} m, noise {p.noise}, body width {p.lateral_m} m, creep {p.creep_mps} m/s; dt 0.05 s\n")
    ok = {}
    t1 = rimea1(1.33)
    ok["RiMEA 1"] = 26 <= t1 <= 34
    print("## Free walking (RiMEA test 1)\n")
    print("| case | measured | target |\n|---|---|---|")
    print(f"| 40 m x 2 m corridor at 1.33 m/s | {t1:.2f} s | 26-34 s |\n")

    print("## Speed-density in a periodic corridor (16 m x 5 m, v0 = 1.34 m/s, 3 seeds, 30 s warm-up, 20 s "
          "measured)\n")
    print("| density (/m²) | measured v (m/s) | Weidmann v (m/s) | ratio | within ±20% |\n|---|---|---|---|---|")
    fd_ok = True
    for rho in (0.5, 1.0, 1.5, 2.0, 2.5, 3.0, 3.5, 4.0):
        v = np.mean([corridor_fd(rho, width=5.0, warmup_s=30, measure_s=20, seed=s) for s in (1, 2, 3)])
        w = float(weidmann_speed(rho))
        good = abs(v / w - 1) <= 0.2
        fd_ok &= good
        print(f"| {rho:.1f} | {v:.3f} | {w:.3f} | {v / w:.2f} | {'yes' if good else 'NO'} |")
    ok["Weidmann FD"] = fd_ok
    print()

    print("## Bottleneck (10 m x 10 m room, 200 people, opening mid wall; flow between the 10th and 90th "
          "percentile leaver, 3 seeds)\n")
    print("| width (m) | flow (1/s) | specific flow (1/(m s)) | target 1.5-2.2 | last out (s) | left inside |\n"
          "|---|---|---|---|---|---|")
    prev, grows, band = 0.0, True, True
    for w in (1.0, 1.2, 1.6, 2.0, 2.4):
        rs = [bottleneck_flow(w, n=200, seed=s) for s in (1, 2, 3)]
        J = np.mean([r.flow() for r in rs])
        T = np.mean([r.evacuation_time_s for r in rs])
        left = sum(r.left_inside for r in rs)
        grows &= J > prev
        prev = J
        inb = 1.5 <= J / w <= 2.2
        band &= inb
        print(f"| {w:.1f} | {J:.2f} | {J / w:.2f} | {'yes' if inb else 'NO'} | {T:.1f} | {left} |")
    ok["bottleneck flow grows with width"] = grows
    ok["bottleneck specific flow 1.5-2.2"] = band
    print()

    print("## RiMEA test 9 (1000 people, 30 m x 20 m room, 1 m exits near the corners of the short walls)\n")
    print("| seed | 4 exits: evacuation (s) | 2 exits (s) | ratio | target 1.6-2.4 |\n|---|---|---|---|---|")
    r9 = True
    for s in (1, 2):
        a = rimea9(4, seed=s)
        b = rimea9(2, seed=s)
        ratio = b.evacuation_time_s / a.evacuation_time_s
        good = 1.6 <= ratio <= 2.4 and a.left_inside == 0 and b.left_inside == 0
        r9 &= good
        print(f"| {s} | {a.evacuation_time_s:.1f} | {b.evacuation_time_s:.1f} | {ratio:.2f} | "
              f"{'yes' if good else 'NO'} |")
    ok["RiMEA 9"] = r9
    print()

    print("## A 1 m exit does not clog for good (600 people, 15 m x 15 m room)\n")
    sim, g = bottleneck_room(1.0, n=600, room=(15.0, 15.0), seed=4)
    x0, y0, v0 = sim.x[: sim.n].copy(), sim.y[: sim.n].copy(), sim.v0[: sim.n].copy()
    r = run_egress(sim, 900.0)
    gaps = np.diff(r.times)
    print("| model | people | all out | out | last out (s) | mean flow (1/s) | longest gap between leavers (s) |\n"
          "|---|---|---|---|---|---|---|")
    print(f"| ours | 600 | {'yes' if r.left_inside == 0 else 'NO'} | {r.times.size} | {r.evacuation_time_s:.1f} | "
          f"{r.times.size / max(r.evacuation_time_s, 1e-9):.2f} | {gaps.max():.2f} |")
    ok["1 m exit never clogs"] = r.left_inside == 0
    j = jupedsim_egress(g, x0, y0, v0, t_max=900.0, dt=0.05)
    if j is None:
        print("\n(JuPedSim not installed: its row is skipped; pip install --no-deps jupedsim shapely deprecated wrapt)")
    else:
        out, last, t_end = j
        print(f"| JuPedSim {_jps_version()} collision-free speed model, its defaults (T = 1 s, r = 0.2 m) | 600 | "
              f"{'yes' if out == 600 else 'NO'} | {out} | {last:.1f} | {out / max(last, 1e-9):.2f} | "
              f"{'clogged: no one out in the last ' + format(t_end - last, '.0f') + ' s' if out < 600 else '-'} |")
    print()

    print(f"(validation wall time {time.perf_counter() - t0:.0f} s)\n")
    for k, v in ok.items():
        print(f"{'PASS' if v else 'FAIL'}  {k}")
    return 0 if all(ok.values()) else 1


if __name__ == "__main__":
    raise SystemExit(main())
