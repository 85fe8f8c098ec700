"""Digest of every result variable of a few runs: proves a speed change left the traffic results bit-identical.

    .venv/bin/python -m bench.traffic_digest --save before.json     # on the old code
    .venv/bin/python -m bench.traffic_digest --compare before.json  # on the new code: lists every differing variable
    .venv/bin/python -m bench.traffic_digest                        # all cases, digests + one JSON line

Cases: the Wildau baseline (real network, counted routes), the Bad Hersfeld baseline (real network, EV and
emergency on the same clock) and its closure variant `main_road_closed` (gridlock queues, closed-link
re-routing), a synthetic 16x16 grid peak with 10k trips, and the same grid with a link closed
mid-run (full table rebuild path). Each data variable and coordinate of the results Dataset is hashed
(SHA-256 of its raw bytes, dtype and shape; object arrays by their string form); attrs that hold wall time,
creation time, commit or the checkout's folder (and the scenario hash that includes it) are left out.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import sys
import time
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._common import ROOT  # noqa: E402

CASES = ("wildau", "bad_hersfeld", "bad_hersfeld_closure", "grid", "grid_closure")
# differ between any two runs (time, commit) or checkouts (the folder, and the scenario hash that includes it)
_VOLATILE_ATTRS = {"wall_time_s", "created", "code_version", "git_commit", "code_digest", "host", "python",
                   "scenario_dir", "scenario_hash"}


# case -> (scenario file stem, variant)
_FILE_CASES = {"wildau": ("wildau", "baseline"), "bad_hersfeld": ("bad_hersfeld", "baseline"),
               "bad_hersfeld_closure": ("bad_hersfeld", "main_road_closed")}


def _grid_doc(closure: bool) -> dict:
    from bench.traffic import scenario_doc

    doc = scenario_doc(16, 10_000, duration_s=7200.0, start="07:00")
    if closure:  # two central links of the 16x16 grid, closed at 07:30 (grid link ids are "u>v")
        doc["traffic"]["closures"] = [{"link": "n7_7>n8_7", "start_s": 1800.0},
                                      {"link": "n8_7>n7_7", "start_s": 1800.0, "end_s": 5400.0}]
    return doc


def run_case(name: str):
    """Run one case's baseline; return its results Dataset."""
    from twin.engine import CityTwin
    from twin.scenario import load_scenario, resolve_variants

    if name in ("wildau", "bad_hersfeld", "bad_hersfeld_closure"):
        city, variant = _FILE_CASES[name]
        path = ROOT / "scenarios" / f"{city}.yaml"
        sc = load_scenario(path)[variant]
        return CityTwin(sc, path.parent).run()
    sc = resolve_variants(_grid_doc(name == "grid_closure"), ROOT / "scenarios" / "bench_traffic.yaml")["baseline"]
    return CityTwin(sc, ROOT / "scenarios").run()


def _hash_array(values) -> str:
    import numpy as np

    a = np.asarray(values)
    h = hashlib.sha256(f"{a.dtype.str}{a.shape}".encode())
    if a.dtype.kind == "O" or a.dtype.kind == "U":
        h.update("\x1f".join(str(x) for x in a.ravel()).encode())
    else:
        h.update(np.ascontiguousarray(a).tobytes())
    return h.hexdigest()[:16]


def digest(ds) -> dict[str, str]:
    """Per variable (data variables, coordinates) and per stable attr: a short SHA-256."""
    out = {f"var:{k}": _hash_array(v.values) for k, v in ds.data_vars.items()}
    out.update({f"coord:{k}": _hash_array(v.values) for k, v in ds.coords.items()})
    out.update({f"attr:{k}": hashlib.sha256(str(v).encode()).hexdigest()[:16] for k, v in ds.attrs.items()
                if k not in _VOLATILE_ATTRS})
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--save", help="write the digests to this JSON file")
    ap.add_argument("--compare", help="compare with digests saved earlier; exit 1 if any variable differs")
    ap.add_argument("--case", action="append", choices=CASES, help="only these cases (default: all)")
    args = ap.parse_args()
    cases = args.case or list(CASES)
    res: dict[str, dict] = {}
    times: dict[str, float] = {}
    for c in cases:
        t0 = time.perf_counter()
        res[c] = digest(run_case(c))
        times[c] = round(time.perf_counter() - t0, 1)
        print(f"{c}: {len(res[c])} digests, run {times[c]} s", flush=True)
    if args.save:
        Path(args.save).write_text(json.dumps(res, indent=1, sort_keys=True))
    diffs = 0
    if args.compare:
        ref = json.loads(Path(args.compare).read_text())
        for c in cases:
            if c not in ref:
                print(f"{c}: not in {args.compare}")
                diffs += 1
                continue
            keys = sorted(set(ref[c]) | set(res[c]))
            bad = [k for k in keys if ref[c].get(k) != res[c].get(k)]
            diffs += len(bad)
            print(f"{c}: {len(keys) - len(bad)} of {len(keys)} identical" + (f"; DIFFER: {bad}" if bad else ""))
    print(json.dumps({"bench": "traffic_digest", "value": diffs, "unit": "differing variables", "target": 0,
                      "cases": times}))
    if args.compare and diffs:
        sys.exit(1)


if __name__ == "__main__":
    main()
