"""Crowd kernel benchmark: agent-steps per wall second at 1k, 10k, 100k agents, side by side with JuPedSim.

The same room-with-exit (square room at 2 persons/m², one 2 m exit mid east wall), the same initial
positions, desired speeds, radius, time gap and dt are given to both simulators; each runs a fixed number
of steps and we time the stepping only. JuPedSim (an optional bench dependency: ``pip install --no-deps
jupedsim shapely deprecated wrapt``) runs its collision-free speed model, single-threaded (it has no
threads). Ours runs as users get it (the thread picker: one thread below 1,000 agents, above that whichever of
one and all allowed threads measured faster lately) and, for a like-for-like figure, pinned to one thread.
Then the 10k run again while a busy loop keeps one core busy: the picker against one thread and two forced,
interleaved in rounds (median of the paired ratios).
Ends with one JSON line: value = our agent-steps/s (default threads) over JuPedSim's at 10k agents.

Run: .venv/bin/python bench/crowd.py
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numba
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from agents.crowd.experiments import room_with_exit  # noqa: E402
from agents.crowd.sim import ModelParams  # noqa: E402

DT = 0.05


def ours(n: int, steps: int, threads: int | None = None, forced: int | None = None) -> dict:
    """Time ``steps`` steps: as users get it (the thread picker), pinned to ``threads`` for the whole process,
    or ``forced`` to that many threads whatever the machine's load (the behaviour before the picker)."""
    sim, g = room_with_exit(n, density=2.0, exit_width=2.0, seed=1, params=ModelParams(), dt=DT)
    if threads is not None:
        numba.set_num_threads(threads)
    sim.threads.fixed = forced
    sim.step(DT)  # compile / warm caches outside the timing
    inside0 = sim.inside
    t0 = time.perf_counter()
    c0 = time.process_time()
    agent_steps = 0
    chunk = max(1, min(steps, 20))
    done = 0
    while done < steps:
        k = min(chunk, steps - done)
        a = sim.inside
        sim.step(k * DT)
        agent_steps += k * (a + sim.inside) / 2
        done += k
    wall = time.perf_counter() - t0
    cpu = time.process_time() - c0
    numba.set_num_threads(numba.config.NUMBA_NUM_THREADS)
    return {"agents": inside0, "steps": steps, "wall_s": wall, "agent_steps_per_s": agent_steps / wall,
            "realtime_factor": steps * DT / wall, "cpu_s": cpu, "realtime_factor_cpu": steps * DT / max(cpu, 1e-9),
            "sim": sim, "geometry": g,
            "threads_chosen": sim.threads.last_choice}


LOADED_ROUNDS = 4


def loaded(n: int = 10_000, steps: int = 200, rounds: int = LOADED_ROUNDS) -> dict:
    """The same 10k-agent run while another process keeps one core busy (a spinning Python loop started and
    stopped here): the picker against one thread and against two forced threads, interleaved ``rounds`` times
    (the order rotating each round). Returns the mean rates and each round's picker / one-thread and two /
    one-thread ratios: on a shared machine single runs swing by 30%, paired ratios much less."""
    busy = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        time.sleep(1.0)
        res: dict[str, list[float]] = {"picker": [], "one": [], "two": []}
        runs = {"one": lambda: ours(n, steps, threads=1), "two": lambda: ours(n, steps, forced=2),
                "picker": lambda: ours(n, steps)}
        order = list(runs)
        for r in range(rounds):
            for k in order[r % 3:] + order[: r % 3]:
                res[k].append(runs[k]()["agent_steps_per_s"])
    finally:
        busy.kill()
        busy.wait()
    out: dict = {k: float(np.mean(v)) for k, v in res.items()}
    out["picker_ratios"] = [p / o for p, o in zip(res["picker"], res["one"])]
    out["two_ratios"] = [t / o for t, o in zip(res["two"], res["one"])]
    return out


def jupedsim_run(sim0, g, steps: int) -> dict | None:
    try:
        import jupedsim as jps
        from shapely import Polygon, union_all
    except ImportError:
        return None
    p = ModelParams()
    e = g.exits[0]
    room = Polygon(g.outer)
    apron = Polygon(e.apron(0.6))
    geo = union_all([room, apron])
    model = jps.CollisionFreeSpeedModel()
    sim = jps.Simulation(model=model, geometry=geo, dt=DT)
    exit_id = sim.add_exit_stage(Polygon(e.apron(0.5)).buffer(-0.01))
    jid = sim.add_journey(jps.JourneyDescription([exit_id]))
    n = sim0.n
    for i in range(n):
        sim.add_agent(jps.CollisionFreeSpeedModelAgentParameters(
            journey_id=jid, stage_id=exit_id, position=(float(sim0._x0[i]), float(sim0._y0[i])),
            radius=p.radius_m, time_gap=p.time_gap_s, desired_speed=float(sim0.v0[i])))
    sim.iterate()
    t0 = time.perf_counter()
    agent_steps = 0
    for _ in range(steps):
        agent_steps += sim.agent_count()
        sim.iterate()
    wall = time.perf_counter() - t0
    return {"agents": n, "steps": steps, "wall_s": wall, "agent_steps_per_s": agent_steps / wall,
            "realtime_factor": steps * DT / wall}


def main() -> None:
    plan = [(1_000, 400), (10_000, 100), (100_000, 60)]
    rows = []
    has_jps = True
    try:
        import jupedsim  # noqa: F401
    except ImportError:
        has_jps = False
        print("jupedsim is not installed: comparison skipped "
              "(pip install --no-deps jupedsim shapely deprecated wrapt)")
    for n, steps in plan:
        # the same initial state for both: keep a copy of positions before we step
        sim, g = room_with_exit(n, density=2.0, exit_width=2.0, seed=1, params=ModelParams(), dt=DT)
        sim._x0, sim._y0 = sim.x.copy(), sim.y.copy()
        r = ours(n, steps)
        r1 = ours(n, steps, threads=1)
        j = jupedsim_run(sim, g, steps) if has_jps and n <= 10_000 else None
        rows.append((n, r, r1, j))
        print(f"  done {n} agents", flush=True)
    try:
        load = os.getloadavg()[0]
    except OSError:
        load = float("nan")
    print()
    print(f"Room with one 2 m exit at 2 persons/m², dt = {DT} s, collision-free speed model; "
          f"{os.cpu_count()} cores ({numba.config.NUMBA_NUM_THREADS} numba threads), load average {load:.1f} at the end")
    print(f"{'agents':>8} {'steps':>6} {'ours agent-steps/s':>19} {'x real time':>12} {'ours 1 thread':>14} "
          f"{'JuPedSim':>10} {'ratio':>6} {'ratio 1 thread':>15}")
    out = {}
    for n, r, r1, j in rows:
        js = f"{j['agent_steps_per_s']:>10,.0f}" if j else f"{'-':>10}"
        ratio = r["agent_steps_per_s"] / j["agent_steps_per_s"] if j else float("nan")
        ratio1 = r1["agent_steps_per_s"] / j["agent_steps_per_s"] if j else float("nan")
        print(f"{n:>8,} {r['steps']:>6} {r['agent_steps_per_s']:>19,.0f} {r['realtime_factor']:>12.2f} "
              f"{r1['agent_steps_per_s']:>14,.0f} {js} {ratio:>6.1f} {ratio1:>15.1f}")
        out[n] = (r, j, ratio, r1, ratio1)
    lo = loaded()
    try:
        load2 = os.getloadavg()[0]
    except OSError:
        load2 = float("nan")
    pr, tr = np.array(lo["picker_ratios"]), np.array(lo["two_ratios"])
    print(f"\nWith a busy loop on one core (10k agents, 200 steps, agent-steps/s, mean of {pr.size} interleaved "
          f"rounds; load average {load2:.1f}): picker {lo['picker']:,.0f}, one thread {lo['one']:,.0f}, two threads "
          f"forced {lo['two']:,.0f}; picker / one thread per round: median {np.median(pr):.2f} (range "
          f"{pr.min():.2f}-{pr.max():.2f}); two forced / one thread: median {np.median(tr):.2f} (range "
          f"{tr.min():.2f}-{tr.max():.2f})")
    r10, j10, ratio10, _, ratio10_1 = out[10_000]
    r100 = out[100_000][0]
    print(f"\n10k agents: {ratio10:.1f}x JuPedSim (goal >= 10x), {ratio10_1:.1f}x on one thread; 100k agents: "
          f"{r100['realtime_factor']:.2f}x real time (goal >= 1), {out[100_000][3]['realtime_factor']:.2f}x on one "
          f"thread")
    r100_1 = out[100_000][3]
    print(f"100k agents on one thread per CPU second (what one idle core gives, less the cache other work on a "
          f"busy machine takes): {r100_1['realtime_factor_cpu']:.2f}x real time ({r100_1['cpu_s']:.1f} CPU s for "
          f"{r100_1['steps']} steps)")
    print(json.dumps({"bench": "crowd", "value": round(ratio10, 2) if np.isfinite(ratio10) else None, "unit": "x",
                      "target": 10,
                      "ours_agent_steps_per_s": {str(k): round(v[0]["agent_steps_per_s"]) for k, v in out.items()},
                      "jupedsim_agent_steps_per_s": {str(k): round(v[1]["agent_steps_per_s"]) for k, v in out.items()
                                                     if v[1]},
                      "ratio_10k_one_thread": round(ratio10_1, 2) if np.isfinite(ratio10_1) else None,
                      "realtime_factor_100k": round(r100["realtime_factor"], 3), "realtime_target_100k": 1.0,
                      "realtime_factor_100k_one_thread": round(out[100_000][3]["realtime_factor"], 3),
                      "realtime_factor_100k_one_thread_per_cpu_s": round(r100_1["realtime_factor_cpu"], 3),
                      "threads": numba.config.NUMBA_NUM_THREADS,
                      "dt_s": DT, "jupedsim": has_jps, "load_avg": round(load, 1),
                      "loaded_picker_over_one_thread_median": round(float(np.median(pr)), 2),
                      "loaded_picker_over_one_thread_range": [round(float(pr.min()), 2), round(float(pr.max()), 2)],
                      "loaded_two_forced_over_one_thread_median": round(float(np.median(tr)), 2)}))


if __name__ == "__main__":
    main()
