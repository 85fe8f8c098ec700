"""Junction model of a city graph: the movements (in-link -> out-link) at each node, as flat arrays for kernels.

Each movement carries what limits it at the junction: the in-lanes that serve it (count and bit mask, so a
queue for one direction need not block another where lanes allow), its control class (priority, yield,
stop, all-way stop, zipper, signal), the effective green share and cycle of a signal, the time a turn takes
beyond cruising (the internal lane and the braking/accelerating it implies), and the higher-ranked
movements it must give way to (for gap-acceptance capacity). From a SUMO network everything is read from
the file (connections, their ``state``, the junction ``request`` response bits, ``tlLogic`` programs,
internal lanes); OpenStreetMap and synthetic cities get the same derived from signals, road classes and
geometry. Nothing here knows about traffic models: ``agents.traffic`` turns these into capacities.
"""
from __future__ import annotations

import gzip
import math
import zipfile
try:  # lxml parses large networks several times faster; the standard library does the same job
    from lxml import etree as ET
except ImportError:  # pragma: no cover
    import xml.etree.ElementTree as ET  # type: ignore[no-redef]
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable
from xml.parsers import expat

import numpy as np

__all__ = ["Junctions", "PRIORITY", "YIELD", "STOP", "ALLWAY", "ZIPPER", "SIGNAL",
           "sumo_junctions", "read_sumo_junctions", "junction_cache_key", "JUNCTION_CACHE_DIR", "graph_junctions", "read_tls_programs", "apply_tls_programs", "green_shares",
           "green_parts", "permissive_foe_weights",
           "turn_loss_s", "same_green_feed"]

# movement control classes
PRIORITY, YIELD, STOP, ALLWAY, ZIPPER, SIGNAL = 0, 1, 2, 3, 4, 5
_STATE_CLASS = {"M": PRIORITY, "m": YIELD, "=": YIELD, "s": STOP, "w": ALLWAY, "Z": ZIPPER,
                "O": PRIORITY, "o": YIELD}

LOST_TIME_PER_GREEN_S = 4.0  # HCM: start-up lost time + clearance lost time per green interval (s)
COMFORT_DECEL_MPS2 = 4.5  # SUMO passenger default decel (m/s²)
ACCEL_MPS2 = 2.6  # SUMO passenger default accel (m/s²)
LATERAL_ACCEL_MPS2 = 5.5  # netconvert --junctions.limit-turn-speed: turn speed = sqrt(a_lat * radius)


@dataclass
class Junctions:
    """Movements grouped by in-link (CSR): movements of link ``l`` are ``mv_ptr[l]:mv_ptr[l+1]``.

    Per movement: ``mv_out`` out-link index; ``mv_lanes`` in-lanes serving it; ``mv_lanemask`` bit mask of
    those lanes (bit 0 = rightmost); ``mv_class`` control class; ``mv_green`` effective green share
    (1 where unsignalised); ``mv_cycle`` signal cycle (s, 0 where unsignalised); ``mv_turn_s`` time the
    turn costs beyond cruising through (s); ``mv_len_m`` the internal lane driven (m); ``mv_tl`` / ``mv_tl_index`` its traffic light and the signal link
    indices of its lane connections (for re-reading programs; "" / [] where unsignalised); ``mv_dir`` 0 straight, 1 left, -1 right, 2 turnaround;
    ``mv_permissive`` a signalised movement that is only ever green as 'g' (gives way to its conflicts);
    ``mv_permissive_share`` the part of ``mv_green`` in which it is green only as 'g' (permissive: it filters
    through gaps), the rest (``mv_protected_share``) is 'G' (protected).
    Conflicts (CSR ``cf_ptr``/``cf_mv``): movements this one gives way to; ``cf_w`` per conflict the factor that
    turns the foe's mean flow into its flow during this movement's permissive green (the share of that green in
    which the foe is green too, over the foe's own green share: its vehicles pass only in its green); 1 where
    unsignalised; ``cf_lane_share`` the share of the foe's lane connections that conflict with this movement's
    (a foe on three lanes of which one crosses it offers gaps on the other two). ``link_lanemask`` is the full lane mask of each in-link.
    """

    mv_ptr: np.ndarray  # int64[L+1]
    mv_out: np.ndarray  # int32[M]
    mv_lanes: np.ndarray  # float64[M]
    mv_lanemask: np.ndarray  # int64[M]
    mv_class: np.ndarray  # int8[M]
    mv_green: np.ndarray  # float64[M]
    mv_cycle: np.ndarray  # float64[M]
    mv_turn_s: np.ndarray  # float64[M]
    mv_len_m: np.ndarray  # float64[M]: internal lane length (m) driven through the junction, 0 if inside the links
    mv_dir: np.ndarray  # int8[M]: 0 straight, 1 left, -1 right, 2 turnaround
    mv_permissive: np.ndarray  # bool[M]: signalised and never protected (green only as 'g': gives way)
    cf_ptr: np.ndarray  # int64[M+1]
    cf_mv: np.ndarray  # int32[K]
    link_lanemask: np.ndarray  # int64[L]
    mv_tl: list[str]
    mv_tl_index: list[list[int]]  # signal link indices of the movement's lane connections
    mv_permissive_share: np.ndarray | None = None  # float64[M]: effective green share as 'g' only (0 unsignalised)
    cf_w: np.ndarray | None = None  # float64[K]: foe flow during this movement's permissive green / foe mean flow
    cf_lane_share: np.ndarray | None = None  # float64[K]: share of the foe's lane connections that conflict (SUMO)
    nx_ptr: np.ndarray | None = None  # int64[M+1]: per movement l -> b, one entry per movement of b (SUMO), else none
    nx_mask: np.ndarray | None = None  # int64[K2]: lanes of l (bits) whose connections reach that onward movement's lanes

    def __post_init__(self) -> None:
        if self.mv_permissive_share is None:
            self.mv_permissive_share = np.zeros(self.n_movements, np.float64)
        if self.cf_w is None:
            self.cf_w = np.ones(self.cf_mv.shape[0], np.float64)
        if self.cf_lane_share is None:
            self.cf_lane_share = np.ones(self.cf_mv.shape[0], np.float64)
        if self.nx_ptr is None:
            self.nx_ptr = np.zeros(self.n_movements + 1, np.int64)
            self.nx_mask = np.zeros(0, np.int64)

    @property
    def mv_protected_share(self) -> np.ndarray:
        """Effective green share in which the movement has priority ('G'; 1 where unsignalised)."""
        return np.maximum(self.mv_green - self.mv_permissive_share, 0.0)

    @property
    def n_movements(self) -> int:
        return int(self.mv_out.shape[0])

    def movement(self, l_in: int, l_out: int) -> int:
        """Index of the movement ``l_in -> l_out``, -1 if there is none."""
        for m in range(int(self.mv_ptr[l_in]), int(self.mv_ptr[l_in + 1])):
            if self.mv_out[m] == l_out:
                return m
        return -1


def turn_loss_s(v_in: float, v_turn: float, v_out: float, turn_len_m: float = 0.0) -> float:
    """Seconds a junction costs beyond cruising the links: braking v_in -> v_turn, speeding up again, and
    driving its internal lane.

    Braking at b from v to u loses (v-u)²/(2bv) against cruising at v; accelerating at a from u to w loses
    (w-u)²/(2aw). ``turn_len_m`` is the internal lane (SUMO's ``via``: not part of either link's length),
    driven at the turn speed.
    """
    u = max(min(v_turn, v_in, v_out), 0.5)
    loss = (v_in - u) ** 2 / (2 * COMFORT_DECEL_MPS2 * v_in) if v_in > u else 0.0
    loss += (v_out - u) ** 2 / (2 * ACCEL_MPS2 * v_out) if v_out > u else 0.0
    if turn_len_m > 0:
        loss += turn_len_m / u
    return loss


def _open(path: str | Path):
    with open(path, "rb") as f:
        magic = f.read(2)
    return gzip.open(path, "rb") if magic == b"\x1f\x8b" else open(path, "rb")


def green_shares(phases: list[tuple[float, str]], lost_s: float = LOST_TIME_PER_GREEN_S) -> tuple[np.ndarray, float]:
    """Effective green share per signal link index of one program, and its cycle (s).

    Effective green = green (G/g) + yellow - ``lost_s`` per green interval (HCM), over the cycle.
    A link green in every phase has share 1 (no loss).
    """
    if not phases:
        return np.zeros(0), 0.0
    cycle = float(sum(d for d, _ in phases))
    n = max(len(s) for _, s in phases)
    out = np.zeros(n)
    for k in range(n):
        st = [s[k] if k < len(s) else "r" for _, s in phases]
        green = [c in "Gg" for c in st]
        if all(green):
            out[k] = 1.0
            continue
        g = sum(d for (d, _), c in zip(phases, st) if c in "Ggy")
        starts = sum(1 for i in range(len(st)) if green[i] and not green[i - 1] and st[i - 1] != "y")
        out[k] = max(0.0, g - lost_s * max(starts, 1)) / cycle if cycle > 0 else 0.0
    return out, cycle


def green_parts(phases: list[tuple[float, str]], lost_s: float = LOST_TIME_PER_GREEN_S
                ) -> tuple[np.ndarray, np.ndarray, float]:
    """Protected ('G') and permissive ('g') parts of each signal link index's effective green share, and the cycle.

    Each green interval (a run of G/g/y phases) loses ``lost_s`` (HCM): half at its start, charged to the kind of
    its first green phase, half at its end, charged to the kind of its last; a yellow counts with the green
    before it. Both parts sum to :func:`green_shares` (they are scaled to it), so this only splits that share.
    A link green in every phase loses nothing.
    """
    total, cycle = green_shares(phases, lost_s)
    n = len(total)
    prot, perm = np.zeros(n), np.zeros(n)
    if cycle <= 0:
        return prot, perm, cycle
    P = len(phases)
    for k in range(n):
        st = [s[k] if k < len(s) else "r" for _, s in phases]
        on = [c in "Ggy" for c in st]
        if not any(c in "Gg" for c in st):
            continue
        part = {"G": 0.0, "g": 0.0}
        if all(on):
            for (d, _), c in zip(phases, st):
                part["g" if c == "g" else "G"] += d
        else:
            i0 = next(i for i in range(P) if not on[i])  # start scanning after a red phase: runs never wrap
            run: list[tuple[float, str]] = []
            for step in range(1, P + 1):
                i = (i0 + step) % P
                if on[i]:
                    run.append((phases[i][0], st[i]))
                if (not on[i] or step == P) and run:
                    greens = [c for _, c in run if c in "Gg"]
                    if greens:
                        kind = greens[0]
                        for d, c in run:
                            kind = c if c in "Gg" else kind
                            part[kind] += d
                        part[greens[0]] -= lost_s / 2
                        part[greens[-1]] -= lost_s / 2
                    run = []
        a, b = max(part["G"], 0.0), max(part["g"], 0.0)
        if a + b > 0:
            prot[k], perm[k] = total[k] * a / (a + b), total[k] * b / (a + b)
    return prot, perm, cycle


def permissive_foe_weights(phases: list[tuple[float, str]], mine: list[int], foe: list[int], foe_share: float
                           ) -> float:
    """Factor turning a foe's mean flow into its flow while movement ``mine`` (signal indices) is green as 'g'.

    The share of that permissive time in which the foe (its indices ``foe``) is green too, over the foe's
    effective green share ``foe_share`` (its vehicles pass only in its own green, at mean flow / green share).
    0 where the two are never green together (a foe in another phase takes no gaps from it).
    """
    perm_t, both_t = 0.0, 0.0
    for d, s in phases:
        g_me = sum(1 for k in mine if k < len(s) and s[k] == "g") / len(mine) if mine else 0.0
        if g_me <= 0:
            continue
        g_foe = sum(1 for k in foe if k < len(s) and s[k] in "Gg") / len(foe) if foe else 1.0
        perm_t += d * g_me
        both_t += d * g_me * g_foe
    if perm_t <= 0:
        return 1.0
    return both_t / perm_t / max(foe_share, 0.1)


def read_tls_programs(paths: Iterable[str | Path]) -> dict[str, tuple[float, list[tuple[float, str]]]]:
    """Signal programs of SUMO net/additional files: {tl id: (offset, [(duration s, state), ...])}; the last wins."""
    progs: dict[str, tuple[float, list[tuple[float, str]]]] = {}
    for path in paths:
        cur: Any = None  # (id, cycle s, phases) of the tlLogic being read
        with _open(path) as f:
            for ev, el in ET.iterparse(f, events=("start", "end")):
                if ev == "start" and el.tag == "tlLogic":
                    cur = (el.get("id", ""), float(el.get("offset", 0) or 0), [])
                elif ev == "end" and el.tag == "phase" and cur is not None:
                    cur[2].append((float(el.get("duration", 0)), el.get("state", "")))
                elif ev == "end" and el.tag == "tlLogic" and cur is not None:
                    progs[cur[0]] = (cur[1], cur[2])
                    cur = None
                    el.clear()
    return progs


def apply_tls_programs(j: Junctions, programs: dict[str, tuple[float, list[tuple[float, str]]]],
                       movements: Iterable[int] | None = None) -> None:
    """Set green shares and cycles of signalised movements from ``programs`` (in place); only ``movements`` if
    given (the movements of those programs: actuated signals update a few programs many times a run).

    A movement green only as 'g' (permissive: gives way while green) keeps its conflicts and yields; a movement
    green partly as 'G' and partly as 'g' gets both parts (``mv_permissive_share``), and each of its conflicts
    the weight of the foe's flow during its permissive green (``cf_w``, :func:`permissive_foe_weights`).
    """
    assert j.mv_permissive_share is not None and j.cf_w is not None and j.cf_lane_share is not None  # __post_init__
    shares = {tl: green_shares(ph) for tl, (_, ph) in programs.items()}
    parts = {tl: green_parts(ph) for tl, (_, ph) in programs.items()}
    mvs = list(range(len(j.mv_tl)) if movements is None else movements)
    for m in mvs:
        tl = j.mv_tl[m]
        if not tl or tl not in shares:
            continue
        g, cyc = shares[tl]
        ks = [k for k in j.mv_tl_index[m] if 0 <= k < len(g)]
        if ks:  # lanes of one movement may have their own signal indices: mean green over them
            gm = float(sum(g[k] for k in ks)) / len(ks)
            j.mv_green[m] = gm
            j.mv_cycle[m] = cyc if gm < 1.0 else 0.0
            j.mv_permissive[m] = not any(k < len(st) and st[k] == "G" for k in ks for _, st in programs[tl][1])
            j.mv_permissive_share[m] = min(float(sum(parts[tl][1][k] for k in ks)) / len(ks), gm)
    for m in mvs:
        tl = j.mv_tl[m]
        if not tl or tl not in programs or j.mv_permissive_share[m] <= 0:
            continue
        for c in range(int(j.cf_ptr[m]), int(j.cf_ptr[m + 1])):
            f = int(j.cf_mv[c])
            if j.mv_tl[f] == tl:
                j.cf_w[c] = j.cf_lane_share[c] * permissive_foe_weights(
                    programs[tl][1], j.mv_tl_index[m], j.mv_tl_index[f], float(j.mv_green[f]))


def same_green_feed(j: Junctions, length_m: np.ndarray, short_m: float = 15.0, depth: int = 4) -> np.ndarray:
    """Signalised movements whose vehicles all arrive in the green that released them (bool per movement).

    True where every movement feeding the in-link belongs to the same signal controller (a SUMO joined
    signal: one program for a junction cluster), looking upstream through unsignalised links shorter than
    ``short_m`` (the cluster's internal pieces, e.g. a 1 m link between two heads with a priority node on
    it), at most ``depth`` links deep. Such a head is cleared in the green that fed it, so its vehicles wait
    no second red: the caller drops its uniform (Webster) delay. Graph-derived signals have no controller
    id and never qualify.
    """
    M = j.n_movements
    L = len(j.mv_ptr) - 1
    mv_in = np.repeat(np.arange(L), np.diff(j.mv_ptr))
    feeders: list[list[int]] = [[] for _ in range(L)]  # movements ending on each link
    for m in range(M):
        feeders[int(j.mv_out[m])].append(m)

    def sources(l: int, d: int, seen: set[int]) -> set[str]:
        """Controllers releasing vehicles onto link ``l`` ("" for an uncontrolled source)."""
        if not feeders[l] or l in seen:
            return {""}
        seen = seen | {l}
        out: set[str] = set()
        for f in feeders[l]:
            if j.mv_tl[f]:
                out.add(j.mv_tl[f])
            elif d > 0 and length_m[mv_in[f]] < short_m:  # a piece of the cluster: look further up
                out |= sources(int(mv_in[f]), d - 1, seen)
            else:
                out.add("")
        return out

    res = np.zeros(M, np.bool_)
    memo: dict[int, set[str]] = {}
    for m in range(M):
        if j.mv_class[m] != SIGNAL or not j.mv_tl[m]:
            continue
        li = int(mv_in[m])
        if li not in memo:
            memo[li] = sources(li, depth, set())
        res[m] = memo[li] == {j.mv_tl[m]}
    return res


def _build(L: int, rows: list[tuple], conflicts: dict[tuple[int, int], set[tuple[int, int]]], link_lanemask: np.ndarray,
           lane_share: dict[tuple[tuple[int, int], tuple[int, int]], float] | None = None) -> Junctions:
    """Pack movement rows (l_in, l_out, lanes, mask, cls, green, cycle, turn_s, tl, tl_index, dir[, len_m]) into CSR."""
    rows = sorted(rows, key=lambda r: (r[0], r[1]))
    M = len(rows)
    mv_in = np.array([r[0] for r in rows], np.int64)
    j = Junctions(
        mv_ptr=np.searchsorted(mv_in, np.arange(L + 1)).astype(np.int64),
        mv_out=np.array([r[1] for r in rows], np.int32),
        mv_lanes=np.array([r[2] for r in rows], np.float64),
        mv_lanemask=np.array([r[3] for r in rows], np.int64),
        mv_class=np.array([r[4] for r in rows], np.int8),
        mv_green=np.array([r[5] for r in rows], np.float64),
        mv_cycle=np.array([r[6] for r in rows], np.float64),
        mv_turn_s=np.array([r[7] for r in rows], np.float64),
        mv_len_m=np.array([r[11] if len(r) > 11 else 0.0 for r in rows], np.float64),
        mv_dir=np.array([r[10] for r in rows], np.int8), mv_permissive=np.zeros(M, np.bool_),
        cf_ptr=np.zeros(M + 1, np.int64), cf_mv=np.zeros(0, np.int32),
        link_lanemask=link_lanemask.astype(np.int64),
        mv_tl=[r[8] for r in rows], mv_tl_index=[r[9] for r in rows])
    index = {(r[0], r[1]): m for m, r in enumerate(rows)}
    cf: list[int] = []
    share: list[float] = []
    keys = [(r[0], r[1]) for r in rows]
    for m, r in enumerate(rows):
        foes = sorted({index[p] for p in conflicts.get((r[0], r[1]), set()) if p in index and index[p] != m})
        cf.extend(foes)
        share.extend((lane_share or {}).get((keys[m], keys[f]), 1.0) for f in foes)
        j.cf_ptr[m + 1] = len(cf)
    j.cf_mv = np.array(cf, np.int32)
    j.cf_w = np.ones(len(cf), np.float64)
    j.cf_lane_share = np.array(share, np.float64)
    return j


# ---- the junction model of a SUMO network, cached on disk ----------------------------------------------------------
# Reading Bad Hersfeld's 23 MB net takes ~0.7 s, and every process that runs the city paid it in its first run
# (the graph keeps the model for the process). The model is a pure function of the net file's bytes, the city's
# links (ids, lanes, speeds) and this module's code, so it is kept under the digest of all of them; any change to
# one of them gives another key (a stale entry is never read). ``JUNCTION_CACHE_DIR`` None: no disk cache.
JUNCTION_CACHE_DIR: Path | None = Path(__file__).resolve().parent.parent / "results" / ".cache" / "junctions"
_ARRAY_FIELDS = ("mv_ptr", "mv_out", "mv_lanes", "mv_lanemask", "mv_class", "mv_green", "mv_cycle", "mv_turn_s",
                 "mv_len_m", "mv_dir", "mv_permissive", "cf_ptr", "cf_mv", "link_lanemask", "mv_permissive_share",
                 "cf_w", "cf_lane_share", "nx_ptr", "nx_mask")


def junction_cache_key(path: str | Path, link_index: dict[str, int], link_lanes: np.ndarray,
                       link_speed: np.ndarray) -> str:
    """SHA-256 (hex, 24 characters) of everything :func:`sumo_junctions` reads: the net file's bytes, the links'
    SUMO ids in index order, their lanes and speeds, the source of this module and numpy's version."""
    import hashlib

    h = hashlib.sha256()
    for part in (Path(path).read_bytes(), Path(__file__).read_bytes(), np.__version__.encode(),
                 "\n".join(sorted(link_index, key=link_index.__getitem__)).encode(),
                 np.ascontiguousarray(link_lanes, np.float64).tobytes(),
                 np.ascontiguousarray(link_speed, np.float64).tobytes()):
        h.update(len(part).to_bytes(8, "little"))
        h.update(part)
    return h.hexdigest()[:24]


def _save_junctions(j: Junctions, f: Path) -> None:
    """Write ``j`` to ``f`` (.npz, no pickles) atomically: a partial file is never seen under the final name."""
    import os
    import tempfile

    flat = [i for idx in j.mv_tl_index for i in idx]
    ptr = np.cumsum([0] + [len(idx) for idx in j.mv_tl_index]).astype(np.int64)
    arrays = {k: getattr(j, k) for k in _ARRAY_FIELDS}
    arrays.update(mv_tl=np.array(j.mv_tl, dtype=str), tl_index_ptr=ptr, tl_index=np.array(flat, np.int64))
    f.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=f.parent, suffix=".npz.part")
    try:
        with os.fdopen(fd, "wb") as out:
            np.savez(out, **arrays)
        os.replace(tmp, f)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _load_junctions(f: Path) -> Junctions:
    with np.load(f, allow_pickle=False) as z:
        arrays = {k: z[k] for k in _ARRAY_FIELDS}
        tl = [str(x) for x in z["mv_tl"].tolist()]
        ptr, flat = z["tl_index_ptr"], z["tl_index"].tolist()
    tl_index = [flat[int(ptr[m]):int(ptr[m + 1])] for m in range(len(ptr) - 1)]
    return Junctions(mv_tl=tl, mv_tl_index=tl_index, **arrays)


def sumo_junctions(path: str | Path, link_index: dict[str, int], link_lanes: np.ndarray,
                   link_speed: np.ndarray) -> Junctions:
    """:func:`read_sumo_junctions`, kept on disk under :func:`junction_cache_key` in ``JUNCTION_CACHE_DIR``
    (read back when present; written after a read; a cache that cannot be read or written is skipped)."""
    if JUNCTION_CACHE_DIR is None:
        return read_sumo_junctions(path, link_index, link_lanes, link_speed)
    try:
        f = JUNCTION_CACHE_DIR / f"{Path(path).name.split('.')[0]}.{junction_cache_key(path, link_index, link_lanes, link_speed)}.npz"
    except OSError:
        return read_sumo_junctions(path, link_index, link_lanes, link_speed)
    if f.is_file():
        try:
            return _load_junctions(f)
        except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile):
            pass  # unreadable: read the net again and rewrite it
    j = read_sumo_junctions(path, link_index, link_lanes, link_speed)
    try:
        _save_junctions(j, f)
    except OSError:
        pass
    return j


def read_sumo_junctions(path: str | Path, link_index: dict[str, int], link_lanes: np.ndarray,
                        link_speed: np.ndarray) -> Junctions:
    """Movements of the city links ``link_index`` (SUMO edge id -> link) from a SUMO .net.xml(.gz).

    Reads connections (lanes, state, via internal lane, signal link index), junction request response bits
    (who gives way to whom) and the file's own signal programs.
    """
    L = len(link_index)
    internal: dict[str, tuple[float, float]] = {}  # internal lane id -> (length m, speed m/s)
    lane_ok: dict[str, bool] = {}  # normal lane id -> allows passenger cars
    junc_inc: dict[str, list[str]] = {}  # junction id -> incLanes
    junc_resp: dict[str, dict[int, str]] = {}
    junc_type: dict[str, str] = {}
    conns: list[dict] = []
    progs: dict[str, tuple[float, list[tuple[float, str]]]] = {}  # the file's signal programs (one pass)
    # one expat pass with start/end handlers (no element objects: ElementTree's iterparse took 3x as long,
    # ~1 s of Bad Hersfeld's first run); the same values, in the same order
    cur: list[Any] = [None, None, None, None]  # edge id, its function, junction id, signal program being read

    def start(tag: str, at: Any) -> None:  # expat: the element's attributes (dict of str)
        if tag == "lane":
            if cur[0] is not None:
                if cur[1] == "internal":
                    internal[at.get("id")] = (float(at.get("length", 0)), float(at.get("speed", 13.9)))
                else:
                    allow, disallow = at.get("allow"), at.get("disallow")
                    ok = True
                    if allow is not None:
                        ok = any(c in ("passenger", "all", "private") for c in allow.split())
                    if disallow is not None and any(c in ("passenger", "all", "private") for c in disallow.split()):
                        ok = False
                    lane_ok[at.get("id")] = ok
        elif tag == "connection":
            if not at.get("from", "").startswith(":"):
                conns.append(at)  # a new dict per element
        elif tag == "request":
            if cur[2] is not None:
                junc_resp[cur[2]][int(at.get("index"))] = at.get("response", "")
        elif tag == "phase":
            if cur[3] is not None:
                cur[3][2].append((float(at.get("duration", 0)), at.get("state", "")))
        elif tag == "edge":
            cur[0], cur[1] = at.get("id"), at.get("function", "")
        elif tag == "junction":
            jid = cur[2] = at.get("id")
            junc_inc[jid] = (at.get("incLanes") or "").split()
            junc_resp[jid] = {}
            junc_type[jid] = at.get("type", "")
        elif tag == "tlLogic":
            cur[3] = (at.get("id", ""), float(at.get("offset", 0) or 0), [])

    def end(tag: str) -> None:
        if tag == "edge":
            cur[0] = None
        elif tag == "junction":
            cur[2] = None
        elif tag == "tlLogic" and cur[3] is not None:
            progs[cur[3][0]] = (cur[3][1], cur[3][2])
            cur[3] = None

    parser = expat.ParserCreate()
    parser.StartElementHandler = start
    parser.EndElementHandler = end
    with _open(path) as f:
        parser.ParseFile(f)
    # request index of each connection: incLanes order, then each lane's connections in file order
    by_lane: dict[str, list[dict]] = {}
    for c in conns:
        by_lane.setdefault(f"{c['from']}_{c['fromLane']}", []).append(c)
    rows_of: dict[tuple[int, int], list] = {}
    conn_key: dict[tuple[str, int], tuple[int, int] | None] = {}
    conn_resp: list[tuple[tuple[int, int], str, str]] = []
    for jid, inc in junc_inc.items():
        idx = 0
        for lane in inc:
            for c in by_lane.get(lane, []):
                if c["to"].startswith(":"):
                    continue  # to a walking area / crossing
                li, lo = link_index.get(c["from"]), link_index.get(c["to"])
                key = (li, lo) if li is not None and lo is not None and lane_ok.get(lane, True) else None
                conn_key[(jid, idx)] = key
                if key is not None:
                    conn_resp.append((key, jid, junc_resp[jid].get(idx, "")))
                    rows_of.setdefault(key, []).append(c)
                idx += 1
    conflicts: dict[tuple[int, int], set[tuple[int, int]]] = {}
    foe_conns: dict[tuple[tuple[int, int], tuple[int, int]], set[int]] = {}  # foe's connections that conflict
    for key, jid, resp in conn_resp:
        n = len(resp)
        for b in range(n):
            if resp[n - 1 - b] == "1":
                foe = conn_key.get((jid, b))
                if foe is not None and foe != key:
                    conflicts.setdefault(key, set()).add(foe)
                    foe_conns.setdefault((key, foe), set()).add(b)
    lane_share = {kf: min(1.0, len(bs) / max(len(rows_of.get(kf[1], ())), 1)) for kf, bs in foe_conns.items()}
    link_lanemask = np.zeros(L, np.int64)
    rows = []
    for (li, lo), cs in rows_of.items():
        lanes = sorted({int(c["fromLane"]) for c in cs})
        mask = 0
        for ln in lanes:
            mask |= 1 << min(ln, 62)
        link_lanemask[li] |= mask
        states = [c.get("state", "M") for c in cs]
        tl = next((c.get("tl", "") for c in cs if c.get("tl")), "")
        tl_index = [int(c["linkIndex"]) for c in cs if c.get("tl") and c.get("linkIndex") is not None]
        if tl:
            cls = SIGNAL
        else:
            cls = max((_STATE_CLASS.get(s, PRIORITY) for s in states),
                      key=lambda k: (PRIORITY, ZIPPER, YIELD, ALLWAY, STOP).index(k) if k != SIGNAL else 0)
        vin, vout = float(link_speed[li]), float(link_speed[lo])
        turn, ilen = [], []
        for c in cs:
            via = c.get("via")
            if via and via in internal:
                ln_m, sp = internal[via]
                turn.append(turn_loss_s(vin, sp, vout, ln_m))
                ilen.append(ln_m)
        turn_s = _mean(turn) if turn else 0.0
        if cls == STOP:
            turn_s += turn_loss_s(vin, 0.0, vout)  # a full stop
        d = (cs[0].get("dir") or "s").lower()
        mdir = 1 if d == "l" else -1 if d == "r" else 2 if d == "t" else 0
        rows.append((li, lo, float(len(lanes)), mask, cls, 1.0, 0.0, turn_s, tl, tl_index, mdir,
                     _mean(ilen) if ilen else 0.0))
    # links with no connection at all (dead ends, turnarounds) keep an empty movement list
    for li in range(L):
        if link_lanemask[li] == 0:
            link_lanemask[li] = (1 << int(max(link_lanes[li], 1))) - 1
    j = _build(L, rows, conflicts, link_lanemask, lane_share)
    _onward_lanes(j, rows_of)
    apply_tls_programs(j, progs)  # as read_tls_programs([path]), without parsing the file a second time
    return j


def _mean(xs: list[float]) -> float:
    """``float(np.mean(xs))`` of a short list without numpy's per-call cost (12,000 calls on Bad Hersfeld): for fewer
    than 8 values numpy adds them one after another from 0.0, as ``sum`` does; longer lists go to numpy (its pairwise
    sum groups them differently)."""
    return sum(xs) / len(xs) if len(xs) < 8 else float(np.mean(xs))


def _onward_lanes(j: Junctions, rows_of: dict[tuple[int, int], list[dict]]) -> None:
    """Per movement l -> b and each movement of b: the lanes of l whose connections end on a lane of b that the
    onward movement leaves from (``nx_ptr``/``nx_mask``; SUMO's drivers choose lanes for the links ahead)."""
    L = len(j.mv_ptr) - 1
    mv_in = np.repeat(np.arange(L), np.diff(j.mv_ptr))
    ptr = [0]
    masks: list[int] = []
    for m in range(j.n_movements):
        li, b = int(mv_in[m]), int(j.mv_out[m])
        cs = rows_of.get((li, b), [])
        for m2 in range(int(j.mv_ptr[b]), int(j.mv_ptr[b + 1])):
            from2 = {int(c["fromLane"]) for c in rows_of.get((b, int(j.mv_out[m2])), [])}
            mask = 0
            for c in cs:
                if c.get("toLane") is not None and int(c["toLane"]) in from2:
                    mask |= 1 << min(int(c["fromLane"]), 62)
            masks.append(mask)
        ptr.append(len(masks))
    j.nx_ptr = np.array(ptr, np.int64)
    j.nx_mask = np.array(masks, np.int64)


_CLASS_RANK = {"motorway": 9, "trunk": 8, "primary": 7, "secondary": 6, "tertiary": 5, "unclassified": 3,
               "residential": 2, "living_street": 1, "service": 1, "arterial": 7}


def _rank(road_class: str) -> int:
    rc = (road_class or "").split("|")[0].replace("highway.", "")
    base = rc.replace("_link", "")
    return _CLASS_RANK.get(base, 3) - (1 if rc.endswith("_link") else 0)


def _turn_angle(a, l_in: int, l_out: int) -> float:
    """Turn angle in degrees (-180..180, left positive) from in-link to out-link, from node coordinates."""
    x0, y0 = a.node_x[a.link_from[l_in]], a.node_y[a.link_from[l_in]]
    x1, y1 = a.node_x[a.link_to[l_in]], a.node_y[a.link_to[l_in]]
    x2, y2 = a.node_x[a.link_to[l_out]], a.node_y[a.link_to[l_out]]
    h1, h2 = math.atan2(y1 - y0, x1 - x0), math.atan2(y2 - y1, x2 - x1)
    d = math.degrees(h2 - h1)
    return (d + 180.0) % 360.0 - 180.0 if np.isfinite(d) else 0.0


def graph_junctions(city, signal_cycle_s: float = 90.0) -> Junctions:
    """Movements derived from the graph (OpenStreetMap, synthetic): signals, road classes and geometry.

    Signalised node: each approach direction gets one of two phases (fixed ``signal_cycle_s``), i.e. green
    share (cycle - 2 x lost time) / 2 with 3+ approaches, (cycle - lost) / cycle x 0.7 with 2 (a crossing).
    Unsignalised: approaches on the highest road class have priority; the others give way to their movements
    (where all are equal, all have priority and the node model shares the room downstream). A roundabout entry gives way to the ring. U-turns only where there is no other way on.
    Turns cost the braking to a turn speed sqrt(a_lat x r) (r 10 m right, 20 m left) and back.
    """
    a = city.arrays
    L = a.n_links
    ring = a.link_ring if a.link_ring is not None else np.full(L, -1)
    rank = np.array([_rank(str(city.link_attr(i).get("road_class", ""))) for i in range(L)], np.int32)
    rows = []
    conflicts: dict[tuple[int, int], set[tuple[int, int]]] = {}
    link_lanemask = ((np.int64(1) << np.maximum(a.lanes, 1).astype(np.int64)) - 1).astype(np.int64)
    for v in range(a.n_nodes):
        ins = a.in_links[a.in_indptr[v]:a.in_indptr[v + 1]]
        outs = a.out_links[a.out_indptr[v]:a.out_indptr[v + 1]]
        if len(ins) == 0 or len(outs) == 0:
            continue
        approaches = {int(a.link_from[i]) for i in ins}
        sig = bool(a.node_signal[v]) and len(ins) > 1
        if sig:
            green = ((signal_cycle_s - 2 * LOST_TIME_PER_GREEN_S) / 2 if len(approaches) >= 3
                     else 0.7 * (signal_cycle_s - LOST_TIME_PER_GREEN_S)) / signal_cycle_s
        on_ring = [i for i in ins if ring[i] >= 0]
        top = max(int(rank[i]) for i in ins)
        major = {int(i) for i in ins if rank[i] == top}  # equal classes: all priority, shared by the node model
        if on_ring:
            major = set(int(i) for i in on_ring)
        node_rows: list[tuple] = []
        for li in ins:
            li = int(li)
            cand = [int(o) for o in outs if a.link_to[o] != a.link_from[li]] or [int(o) for o in outs]
            nl = int(max(a.lanes[li], 1))
            for lo in cand:
                ang = _turn_angle(a, li, lo)
                mask = int(link_lanemask[li])
                if nl > 1 and ang > 45:
                    mask = 1 << (nl - 1)  # left turn: leftmost lane
                elif nl > 1 and ang < -45:
                    mask = 1  # right turn: rightmost lane
                lanes = float(bin(mask).count("1"))
                radius = 10.0 if ang < -45 else 20.0
                vin, vout = float(a.speed_mps[li]), float(a.speed_mps[lo])
                vt = math.sqrt(LATERAL_ACCEL_MPS2 * radius) if abs(ang) > 45 else vin
                turn_s = turn_loss_s(vin, vt, vout) if abs(ang) > 45 else 0.0
                if sig:
                    cls, g, cyc = SIGNAL, green, signal_cycle_s
                else:
                    cls, g, cyc = (PRIORITY if li in major else YIELD), 1.0, 0.0
                mdir = 2 if abs(ang) > 150 else 1 if ang > 45 else -1 if ang < -45 else 0
                node_rows.append((li, lo, lanes, mask, cls, g, cyc, turn_s, "", [], mdir))
        for r in node_rows:
            if r[4] == YIELD:
                conflicts[(r[0], r[1])] = {(q[0], q[1]) for q in node_rows if q[0] in major and q[0] != r[0]}
        rows.extend(node_rows)
    return _build(L, rows, conflicts, link_lanemask)
