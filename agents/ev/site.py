"""A charging site's electrical network with per-phase limits (ACN-Sim's three-phase model), and the sorted
greedy allocation under it.

Each plug is connected line-to-line with a phase angle (deg) and a voltage (V); each constraint is a linear
combination of plug currents (A) whose phasor sum must stay within a limit (A):
``|sum_j A[k, j] * I_j * exp(i phase_j)| <= limit[k]``. This is ACN-Sim's ``ChargingNetwork`` constraint set;
``caltech_acn_site`` rebuilds its Caltech ACN (54 EVSEs on a delta/wye transformer, two 80 A pods) here, so the
model needs no acnportal at run time. Sorted policies give each EV in turn the most current that keeps every
constraint feasible; we solve that largest current in closed form (a quadratic per constraint), where ACN-Sim
bisects to 0.01 A.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numba import njit

__all__ = ["PhaseNetwork", "caltech_acn_site", "sorted_greedy_phases"]


@dataclass
class PhaseNetwork:
    """Constraint matrix ``a`` (constraints x plugs), plug phase angles (deg) and voltages (V), limits (A)."""

    a: np.ndarray
    phase_deg: np.ndarray
    voltage_v: np.ndarray
    limit_a: np.ndarray
    plug_ids: list[str]
    names: list[str]

    @property
    def n_plugs(self) -> int:
        return int(self.a.shape[1])

    def currents_a(self, power_kw: np.ndarray) -> np.ndarray:
        """Magnitude (A) of every constraint's phasor current for plug powers (kW)."""
        amps = np.asarray(power_kw, float) * 1000.0 / self.voltage_v
        ph = np.deg2rad(self.phase_deg)
        return np.abs(self.a @ (amps * np.cos(ph)) + 1j * (self.a @ (amps * np.sin(ph))))

    def feasible(self, power_kw: np.ndarray, tol_a: float = 1e-5) -> bool:
        """True if every constraint holds (within ``tol_a`` A)."""
        return bool(np.all(self.currents_a(power_kw) <= self.limit_a + tol_a))


# The Caltech ACN as in acnportal.acnsim.network.sites.caltech_acn (BSD-3-Clause, Caltech):
# EVSE ids per line pair, phase angles AB 30, BC -90, CA 150 deg; 80 A per pod; transformer limits per phase.
_CC_POD = ["CA-322", "CA-493", "CA-496", "CA-320", "CA-495", "CA-321", "CA-323", "CA-494"]
_AV_POD = ["CA-324", "CA-325", "CA-326", "CA-327", "CA-489", "CA-490", "CA-491", "CA-492"]
_AB = [f"CA-{i}" for i in (308, 508, 303, 513, 310, 506, 316, 500, 318, 498)] + _AV_POD + _CC_POD
_BC = [f"CA-{i}" for i in (304, 512, 305, 511, 313, 503, 311, 505, 317, 499, 148, 149, 212, 213)]
_CA = [f"CA-{i}" for i in (307, 509, 309, 507, 306, 510, 315, 501, 319, 497, 312, 504, 314, 502)]


def caltech_acn_site(transformer_kw: float = 150.0, voltage_v: float = 208.0) -> PhaseNetwork:
    """ACN-Sim's Caltech ACN: 54 plugs, pods of 80 A, transformer primary (277 V) and secondary (120 V) per-phase
    limits of ``transformer_kw`` / 3 / V."""
    ids = _AB + _BC + _CA
    col = {s: j for j, s in enumerate(ids)}
    n = len(ids)

    def cur(members: list[str]) -> np.ndarray:
        v = np.zeros(n)
        v[[col[s] for s in members]] = 1.0
        return v

    ab, bc, ca = cur(_AB), cur(_BC), cur(_CA)
    i3a, i3b, i3c = ab - ca, bc - ab, ca - bc
    rows = [cur(_CC_POD), cur(_AV_POD), i3a, i3b, i3c, (i3a - i3c) / 4, (i3b - i3a) / 4, (i3c - i3b) / 4]
    sec, pri = transformer_kw * 1000 / 3 / 120, transformer_kw * 1000 / 3 / 277
    limits = np.array([80.0, 80.0, sec, sec, sec, pri, pri, pri])
    phase = np.array([30.0] * len(_AB) + [-90.0] * len(_BC) + [150.0] * len(_CA))
    names = ["CC Pod", "AV Pod", "Secondary A", "Secondary B", "Secondary C", "Primary A", "Primary B", "Primary C"]
    return PhaseNetwork(np.array(rows), phase, np.full(n, float(voltage_v)), limits, ids, names)


@njit(cache=True)
def greedy_phases_kernel(ub_kw, order, a, cos_p, sin_p, volt, limit, tol, out):
    m = a.shape[0]
    re = np.zeros(m)
    im = np.zeros(m)
    for i in range(out.shape[0]):
        out[i] = 0.0
    for q in range(order.shape[0]):
        j = order[q]
        x = ub_kw[j] * 1000.0 / volt[j]  # most current wanted (A)
        if x <= 0.0:
            continue
        for k in range(m):
            c = a[k, j]
            if c == 0.0:
                continue
            # |z + c x u|^2 <= L^2 with u = exp(i phase): c^2 x^2 + 2 c x Re(z conj u) + |z|^2 - L^2 <= 0
            lim = limit[k] + tol
            b = c * (re[k] * cos_p[j] + im[k] * sin_p[j])
            z2 = re[k] * re[k] + im[k] * im[k] - lim * lim
            disc = b * b - c * c * z2
            root = (-b + np.sqrt(disc)) / (c * c) if disc > 0.0 else 0.0
            if root < x:
                x = max(0.0, root)
        for k in range(m):
            re[k] += a[k, j] * x * cos_p[j]
            im[k] += a[k, j] * x * sin_p[j]
        out[j] = x * volt[j] / 1000.0


def sorted_greedy_phases(net: PhaseNetwork, ub_kw: np.ndarray, key: np.ndarray, tol_a: float = 0.0) -> np.ndarray:
    """Power (kW) per plug: in ``key`` order (lower first) each plug gets the most, up to ``ub_kw``, that keeps
    every constraint of ``net`` feasible (ACN-Sim's ``SortedSchedulingAlgo`` with continuous EVSEs)."""
    out = np.zeros(net.n_plugs)
    ph = np.deg2rad(net.phase_deg)
    greedy_phases_kernel(np.ascontiguousarray(ub_kw, np.float64), np.argsort(key, kind="mergesort"),
                          np.ascontiguousarray(net.a, np.float64), np.cos(ph), np.sin(ph),
                          np.ascontiguousarray(net.voltage_v, np.float64), np.ascontiguousarray(net.limit_a, np.float64),
                          float(tol_a), out)
    return out
