"""Reading SUMO's edgeData and tripinfo outputs (with sumolib) into arrays for the results schema.

Both readers tolerate a truncated file (SUMO killed mid-run): they keep what was parsed and report
``complete=False``.
"""
from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np

__all__ = ["read_edgedata", "read_tripinfo"]


def _attr(obj, name: str, default: float = 0.0) -> float:
    v = obj.getAttributeSecure(name, None)
    return float(v) if v not in (None, "") else default


def read_edgedata(path: Path, edge_index: dict[str, int], interval_ends_s: np.ndarray) -> tuple[dict, bool]:
    """Per-interval edge measures as ``[T, L]`` arrays keyed ``exits`` (left + arrived), ``sampled_s``,
    ``dist_m`` (sampledSeconds * speed), ``time_loss_s`` (SUMO's timeLoss: time lost against driving at the
    desired speed, summed over vehicles) and ``found`` (bool [T]: interval present in the file).

    Intervals are matched to ``interval_ends_s`` by their end time; edges not in ``edge_index``
    (e.g. SUMO edges closed to cars) are ignored. Returns (arrays, file_complete).
    """
    import sumolib

    T, L = len(interval_ends_s), len(edge_index)
    out = {"exits": np.zeros((T, L)), "sampled_s": np.zeros((T, L)), "dist_m": np.zeros((T, L)),
           "time_loss_s": np.zeros((T, L)), "found": np.zeros(T, bool)}
    complete = True
    if not Path(path).exists():
        return out, False
    try:
        for iv in sumolib.xml.parse(str(path), "interval"):
            end = float(iv.end)
            k = int(np.argmin(np.abs(interval_ends_s - end))) if T else -1
            if k < 0 or abs(interval_ends_s[k] - end) > 1e-3 + 1e-6 * end:
                continue
            out["found"][k] = True
            for e in iv.getChild("edge") if iv.hasChild("edge") else []:
                j = edge_index.get(e.id)
                if j is None:
                    continue
                ss = _attr(e, "sampledSeconds")
                out["exits"][k, j] = _attr(e, "left") + _attr(e, "arrived")
                out["sampled_s"][k, j] = ss
                out["dist_m"][k, j] = ss * _attr(e, "speed")
                out["time_loss_s"][k, j] = _attr(e, "timeLoss")
    except ET.ParseError:
        complete = False
    return out, complete


def read_tripinfo(path: Path) -> tuple[dict[int, tuple[float, float, float, bool]], bool]:
    """``{trip id: (depart_s, arrival_s or NaN, routeLength_m, finished)}`` from a tripinfo file.

    Vehicle ids that are not integers (not ours) are skipped. Unfinished vehicles (written at the end
    with ``--tripinfo-output.write-unfinished``) have arrival -1 in SUMO: NaN here, ``finished`` False.
    Returns (table, file_complete).
    """
    import sumolib

    table: dict[int, tuple[float, float, float, bool]] = {}
    if not Path(path).exists():
        return table, False
    complete = True
    try:
        for ti in sumolib.xml.parse(str(path), "tripinfo"):
            try:
                vid = int(ti.id)
            except ValueError:
                continue
            arr = _attr(ti, "arrival", -1.0)
            done = arr >= 0 and ti.getAttributeSecure("vaporized", "") in ("", None)
            table[vid] = (_attr(ti, "depart", np.nan), arr if arr >= 0 else np.nan,
                          _attr(ti, "routeLength"), bool(done))
    except ET.ParseError:
        complete = False
    return table, complete
