"""Measure loader and routing speed on the shipped data: ``python -m networks.bench [--threads N]``.

Prints wall-clock seconds (best of a few runs after a warm-up compile) for docs/networks.md.
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Callable

import numpy as np

DATA = Path(__file__).resolve().parents[1] / "data"


def _best(fn: Callable[[], object], repeat: int = 3) -> float:
    """Best wall time in seconds of ``repeat`` calls."""
    best = np.inf
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def main() -> None:
    import numba

    from networks.osm import load_osm
    from networks.osm_pois import load_osm_pois
    from networks.routing import next_hop_tables
    from networks.sumo_net import load_sumo_net, load_sumo_trips
    from networks.synthetic import grid

    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--threads", type=int, default=0, help="numba threads (0 = numba default)")
    args = ap.parse_args()
    if args.threads:
        numba.set_num_threads(args.threads)
    print(f"numba threads: {numba.get_num_threads()}")

    bh_net = DATA / "bad_hersfeld" / "osm_edited.net.xml.gz"
    bh_osm = DATA / "bad_hersfeld" / "osm_bbox.osm.xml.gz"
    t = _best(lambda: load_sumo_net(bh_net), 2)
    print(f"load_sumo_net Bad Hersfeld: {t:.2f} s")
    t = _best(lambda: load_osm(bh_osm), 2)
    print(f"load_osm Bad Hersfeld: {t:.2f} s")
    osm_city = load_osm(bh_osm)
    t = _best(lambda: load_osm_pois(bh_osm, osm_city), 2)
    print(f"load_osm_pois Bad Hersfeld (with snapping): {t:.2f} s")
    bo = load_sumo_net(DATA / "bologna" / "joined_buslanes.net.xml.gz")
    t = _best(lambda: load_sumo_trips(DATA / "bologna" / "joined.rou.xml.gz", bo), 2)
    print(f"load_sumo_trips Bologna: {t:.2f} s")

    for label, city in (("grid 36x36", grid(36, 36)), ("Bad Hersfeld SUMO", load_sumo_net(bh_net)),
                        ("Bad Hersfeld OSM", osm_city)):
        a = city.arrays
        dests = np.arange(a.n_nodes, dtype=np.int32)
        run = lambda: next_hop_tables(dests, a.fft_s, a.in_indptr, a.in_links, a.link_from, a.n_nodes)  # noqa: E731
        run()  # compile / load cache
        t = _best(run)
        print(f"next_hop_tables {label}: {a.n_nodes} destinations x {a.n_nodes} nodes, {a.n_links} links: "
              f"{t * 1000:.0f} ms ({t / a.n_nodes * 1e6:.0f} us per destination)")


if __name__ == "__main__":
    main()
