"""The calibration report: GEH per count (fit and hold-out apart), TAG M3.1 flow criteria, observed against
simulated regression, screenlines, the per-interval profile and how far the matrix moved from its prior.

``build_report`` makes one JSON-ready dict; ``text_report`` prints it for the terminal and
``calibration_html`` renders it as a section of the static HTML report (the dashboard page reads the same JSON).
"""
from __future__ import annotations

import html
import json
from pathlib import Path

import numpy as np

from agents.traffic.counts.metrics import geh, regression, tag_flow_ok

__all__ = ["build_report", "calibration_html", "calibration_sections", "count_table", "load_reports", "scatter_figure", "summarise", "text_report"]


def _clock(s: float) -> str:
    s = int(round(s))
    return f"{s // 3600:02d}:{s % 3600 // 60:02d}:{s % 60:02d}"


def count_table(counts, sim: np.ndarray, fit_mask: np.ndarray) -> list[dict]:
    """One row per count: observed and simulated vehicles and hourly flows, GEH, TAG flow test, fit/hold-out."""
    hours = (counts.end_s - counts.start_s) / 3600.0
    obs_h, sim_h = counts.count / hours, np.asarray(sim, float) / hours
    g = geh(sim_h, obs_h)
    ok = tag_flow_ok(sim_h, obs_h)
    return [{"label": counts.label[i], "start": _clock(counts.start_s[i]), "end": _clock(counts.end_s[i]),
             "start_s": float(counts.start_s[i]), "end_s": float(counts.end_s[i]),
             "observed": float(counts.count[i]), "simulated": round(float(sim[i]), 1),
             "observed_vph": round(float(obs_h[i]), 1), "simulated_vph": round(float(sim_h[i]), 1),
             "geh": round(float(g[i]), 2), "tag_ok": bool(ok[i]), "set": "fit" if fit_mask[i] else "holdout"}
            for i in range(len(counts))]


def summarise(rows: list[dict]) -> dict:
    """GEH < 5 share, TAG flow share, regression of simulated on observed hourly flows, for a list of rows."""
    if not rows:
        return {"n": 0}
    o = np.array([r["observed_vph"] for r in rows])
    s = np.array([r["simulated_vph"] for r in rows])
    g = np.array([r["geh"] for r in rows])
    return {"n": len(rows), "geh5_share": float(np.mean(g < 5)), "mean_geh": float(g.mean()),
            "tag_flow_share": float(np.mean([r["tag_ok"] for r in rows])),
            "observed_total": float(sum(r["observed"] for r in rows)),
            "simulated_total": float(sum(r["simulated"] for r in rows)), **regression(o, s)}


def _matrix(res, top: int = 10) -> dict:
    x0, x1 = res.x_prior, res.x_fit
    reg = regression(x0, x1)
    d = x1 - x0
    order = np.argsort(-np.abs(d), kind="stable")[:top]
    z = res.zone_ids
    slices = [f"{res.bounds[k]:.0f}-{res.bounds[k + 1]:.0f} s" for k in range(len(res.bounds) - 1)]
    return {"prior_trips": float(x0.sum()), "calibrated_trips": float(x1.sum()), "cells": len(x0),
            "zones": len(z), "slices": slices, "cell_slope": reg["slope"], "cell_intercept": reg["intercept"],
            "cell_r2": reg["r2"],
            "largest_changes": [{"origin_zone": z[res.cells_oz[c]], "destination_zone": z[res.cells_dz[c]],
                                 "slice": slices[res.cells_slice[c]], "prior": float(x0[c]),
                                 "calibrated": float(x1[c]), "change": float(d[c])} for c in order]}


def _intervals(rows: list[dict]) -> list[dict]:
    out: dict[tuple, dict] = {}
    for r in rows:
        k = (r["start_s"], r["end_s"])
        e = out.setdefault(k, {"start": r["start"], "end": r["end"], "observed": 0.0, "simulated": 0.0, "n": 0})
        e["observed"] += r["observed"]
        e["simulated"] += r["simulated"]
        e["n"] += 1
    return [out[k] for k in sorted(out)]


def _screenlines(rows: list[dict], screenlines: dict[str, list[str]] | None) -> list[dict]:
    out = []
    for name, links in (screenlines or {}).items():
        sel = [r for r in rows if r["label"] in set(links)]
        o, s = sum(r["observed"] for r in sel), sum(r["simulated"] for r in sel)
        out.append({"screenline": name, "counts": len(sel), "observed": o, "simulated": round(s, 1),
                    "difference_pct": round(100.0 * (s - o) / o, 2) if o else None,
                    "within_5pct": bool(o and abs(s - o) <= 0.05 * o)})
    return out


def build_report(name: str, counts, res, *, scenario_file: str, variant: str, counts_file: str,
                 holdout: float, seed: int, demand_file: str, snippet: str, folds: list[dict] | None = None,
                 screenlines: dict[str, list[str]] | None = None, wall_s: float = 0.0) -> dict:
    """Everything the terminal, HTML and dashboard views show, as one JSON-ready dict."""
    rows = count_table(counts, res.sim_counts, res.fit_mask)
    prior_rows = count_table(counts, res.prior_sim_counts, res.fit_mask)
    fit = [r for r in rows if r["set"] == "fit"]
    hold = [r for r in rows if r["set"] == "holdout"]
    return {
        "calibrate": name, "scenario": scenario_file, "variant": variant, "counts_file": counts_file,
        "counts": len(rows), "locations": len(counts.locations()), "holdout_share": holdout, "seed": seed,
        "rows": rows,
        "summary": {"fit": summarise(fit), "holdout": summarise(hold), "all": summarise(rows),
                    "prior_all": summarise(prior_rows)},
        "intervals": _intervals(rows), "screenlines": _screenlines(rows, screenlines),
        "matrix": _matrix(res), "history": res.history, "folds": folds or [],
        "demand_file": demand_file, "variant_snippet": snippet, "wall_s": round(wall_s, 1),
    }


def _pct(x) -> str:
    return "—" if x is None or x != x else f"{100 * x:.1f}%"


def _num(x, fmt=".3f") -> str:
    return "—" if x is None or x != x else format(x, fmt)


def text_report(rep: dict) -> str:
    """The report as terminal text."""
    L = [f"Calibration of {rep['scenario']} (variant {rep['variant']}) to {rep['counts_file']}: "
         f"{rep['counts']} counts at {rep['locations']} locations; hold-out {rep['holdout_share']:.0%} "
         f"(seed {rep['seed']})", ""]
    L.append(f"{'location':<22}{'interval':>19}{'set':>8}{'obs veh/h':>11}{'sim veh/h':>11}{'GEH':>7}{'TAG':>5}")
    for r in rep["rows"]:
        L.append(f"{r['label'][:21]:<22}{r['start'][:5] + '-' + r['end'][:5]:>19}{r['set']:>8}"
                 f"{r['observed_vph']:>11.1f}{r['simulated_vph']:>11.1f}{r['geh']:>7.2f}{'ok' if r['tag_ok'] else '-':>5}")
    L.append("")
    L.append(f"{'counts':<22}{'n':>4}{'GEH<5':>9}{'TAG flow':>10}{'R²':>8}{'slope':>8}{'intercept':>11}")
    for key, lab in (("prior_all", "prior (all counts)"), ("fit", "calibrated: fit"),
                     ("holdout", "calibrated: hold-out"), ("all", "calibrated: all")):
        s = rep["summary"][key]
        if s.get("n"):
            L.append(f"{lab:<22}{s['n']:>4}{_pct(s['geh5_share']):>9}{_pct(s['tag_flow_share']):>10}"
                     f"{_num(s['r2']):>8}{_num(s['slope']):>8}{_num(s['intercept'], '.1f'):>11}")
    L.append("targets (TAG M3.1): GEH < 5 on >= 85% of counts; flows within 100 veh/h (< 700), 15% (700-2,700), "
             "400 veh/h (> 2,700)")
    if rep["folds"]:
        L.append("")
        L.append("leave-some-out folds (each location held out once):")
        for f in rep["folds"]:
            L.append(f"  fold {f['fold']}: hold-out {', '.join(f['holdout'])}: GEH<5 fit {_pct(f['geh5_share_fit'])}, "
                     f"hold-out {_pct(f['geh5_share_holdout'])} (GEH {', '.join(f'{g:.1f}' for g in f['holdout_geh'])})")
        pooled = [g for f in rep["folds"] for g in f["holdout_geh"]]
        L.append(f"  pooled hold-out GEH<5: {_pct(float(np.mean(np.array(pooled) < 5)))} of {len(pooled)} counts")
    if rep["screenlines"]:
        L.append("")
        for s in rep["screenlines"]:
            L.append(f"screenline {s['screenline']}: observed {s['observed']:.0f}, simulated {s['simulated']:.0f} "
                     f"({s['difference_pct']:+.1f}%; target within 5%: {'ok' if s['within_5pct'] else 'no'})")
    L.append("")
    L.append("per interval (all counts):")
    for iv in rep["intervals"]:
        L.append(f"  {iv['start']}-{iv['end']}: observed {iv['observed']:.0f}, simulated {iv['simulated']:.0f} "
                 f"({iv['n']} counts)")
    m = rep["matrix"]
    L.append("")
    L.append(f"demand: {m['prior_trips']:.0f} trips in the prior -> {m['calibrated_trips']:.0f} calibrated "
             f"({m['cells']} cells: {m['zones']} zones x {len(m['slices'])} slices); cells calibrated vs prior: "
             f"slope {_num(m['cell_slope'])}, intercept {_num(m['cell_intercept'], '.2f')}, R² {_num(m['cell_r2'])} "
             f"(TAG: slope 0.98-1.02, R² > 0.95)")
    L.append("largest changes:")
    for c in m["largest_changes"][:8]:
        L.append(f"  {c['origin_zone']} -> {c['destination_zone']} ({c['slice']}): {c['prior']:.0f} -> "
                 f"{c['calibrated']:.0f}")
    L.append("")
    L.append(f"demand file: {rep['demand_file']}")
    L.append("variant snippet:")
    L += ["  " + ln for ln in rep["variant_snippet"].splitlines()]
    return "\n".join(L)


def scatter_figure(rep: dict):
    """Observed against simulated hourly flows, fit and hold-out counts apart, with the 1:1 line and GEH 5 band."""
    import plotly.graph_objects as go

    fig = go.Figure()
    rows = rep["rows"]
    hi = max([1.0] + [max(r["observed_vph"], r["simulated_vph"]) for r in rows]) * 1.1
    xs = np.linspace(0, hi, 60)
    for sign in (1, -1):  # GEH = 5: 2 (M - C)^2 = 25 (M + C), solved for M
        m = (2 * xs + 12.5 + sign * np.sqrt((2 * xs + 12.5) ** 2 - 4 * (xs ** 2 - 12.5 * xs))) / 2
        fig.add_trace(go.Scatter(x=xs, y=m, mode="lines", line={"dash": "dot", "color": "#999"},
                                 name="GEH = 5" if sign == 1 else None, showlegend=sign == 1, hoverinfo="skip"))
    fig.add_trace(go.Scatter(x=[0, hi], y=[0, hi], mode="lines", line={"color": "#444"}, name="1:1"))
    for key, colour in (("fit", "#1d3557"), ("holdout", "#e63946")):
        sel = [r for r in rows if r["set"] == key]
        if sel:
            s = rep["summary"][key]
            fig.add_trace(go.Scatter(
                x=[r["observed_vph"] for r in sel], y=[r["simulated_vph"] for r in sel], mode="markers",
                marker={"size": 9, "color": colour}, text=[f"{r['label']} GEH {r['geh']:.1f}" for r in sel],
                name=f"{key}: GEH<5 {_pct(s['geh5_share'])}, R² {_num(s['r2'], '.2f')}, slope {_num(s['slope'], '.2f')}"))
    fig.update_layout(xaxis_title="observed (veh/h)", yaxis_title="simulated (veh/h)", height=460,
                      margin={"l": 50, "r": 10, "t": 30, "b": 40}, legend={"orientation": "h", "y": -0.2},
                      title="Observed vs simulated hourly flow per count")
    fig.update_xaxes(range=[0, hi])
    fig.update_yaxes(range=[0, hi])
    return fig


def _table(head: list[str], rows: list[list]) -> str:
    h = "".join(f"<th>{html.escape(x)}</th>" for x in head)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in r) + "</tr>" for r in rows)
    return f"<table><tr>{h}</tr>{body}</table>"


def calibration_html(rep: dict, with_figure: bool = True) -> str:
    """The report as an HTML ``<section>`` (plotly.js must already be on the page when ``with_figure``)."""
    s = rep["summary"]
    parts = [f"<p>{html.escape(rep['scenario'])} (variant {html.escape(rep['variant'])}) calibrated to "
             f"{html.escape(rep['counts_file'])}: {rep['counts']} counts at {rep['locations']} locations, "
             f"{rep['holdout_share']:.0%} held out (seed {rep['seed']}), {rep['wall_s']} s.</p>"]
    summ = []
    for key, lab in (("prior_all", "prior, all counts"), ("fit", "calibrated, fit counts"),
                     ("holdout", "calibrated, hold-out counts"), ("all", "calibrated, all counts")):
        x = s[key]
        if x.get("n"):
            summ.append([lab, x["n"], _pct(x["geh5_share"]), _pct(x["tag_flow_share"]), _num(x["r2"]),
                         _num(x["slope"]), _num(x["intercept"], ".1f")])
    parts.append(_table(["counts", "n", "GEH<5 (target ≥ 85%)", "TAG flow criterion", "R²", "slope",
                         "intercept (veh/h)"], summ))
    if with_figure:
        parts.append(scatter_figure(rep).to_html(full_html=False, include_plotlyjs=False,
                                                 config={"displaylogo": False}, default_width="100%"))
    if rep["folds"]:
        parts.append("<h3>Leave-some-out folds</h3>" + _table(
            ["fold", "held out", "GEH<5 fit", "GEH<5 hold-out", "hold-out GEH"],
            [[f["fold"], ", ".join(f["holdout"]), _pct(f["geh5_share_fit"]), _pct(f["geh5_share_holdout"]),
              ", ".join(f"{g:.1f}" for g in f["holdout_geh"])] for f in rep["folds"]]))
    parts.append("<h3>Counts</h3>" + _table(
        ["location", "interval", "set", "observed (veh/h)", "simulated (veh/h)", "GEH", "TAG flow"],
        [[r["label"], f"{r['start']}-{r['end']}", r["set"], r["observed_vph"], r["simulated_vph"], r["geh"],
          "ok" if r["tag_ok"] else "no"] for r in rep["rows"]]))
    if rep["screenlines"]:
        parts.append("<h3>Screenlines (target within 5%)</h3>" + _table(
            ["screenline", "counts", "observed", "simulated", "difference %", "within 5%"],
            [[x["screenline"], x["counts"], x["observed"], x["simulated"], x["difference_pct"], x["within_5pct"]]
             for x in rep["screenlines"]]))
    parts.append("<h3>Per interval</h3>" + _table(
        ["interval", "counts", "observed (veh)", "simulated (veh)"],
        [[f"{iv['start']}-{iv['end']}", iv["n"], round(iv["observed"]), round(iv["simulated"])]
         for iv in rep["intervals"]]))
    m = rep["matrix"]
    parts.append(f"<h3>Demand moved from the prior</h3><p>{m['prior_trips']:.0f} → {m['calibrated_trips']:.0f} trips; "
                 f"{m['cells']} cells ({m['zones']} zones × {len(m['slices'])} slices); calibrated against prior "
                 f"cells: slope {_num(m['cell_slope'])}, intercept {_num(m['cell_intercept'], '.2f')}, "
                 f"R² {_num(m['cell_r2'])} (TAG M3.1: slope 0.98–1.02, R² &gt; 0.95).</p>" + _table(
        ["origin zone", "destination zone", "slice", "prior trips", "calibrated trips"],
        [[c["origin_zone"], c["destination_zone"], c["slice"], round(c["prior"]), round(c["calibrated"])]
         for c in m["largest_changes"]]))
    parts.append(f"<p>Demand file: <code>{html.escape(rep['demand_file'])}</code></p>")
    return f"<section id='calibration'><h2>Calibration to traffic counts</h2>{''.join(parts)}</section>"


def load_reports(folder: str | Path) -> list[tuple[Path, dict]]:
    """Every ``calibration.json`` under ``folder`` (newest first), parsed."""
    out = []
    for p in sorted(Path(folder).rglob("calibration.json"), key=lambda p: -p.stat().st_mtime):
        try:
            out.append((p, json.loads(p.read_text(encoding="utf-8"))))
        except (OSError, ValueError):
            continue
    return out


def calibration_sections(folder: str | Path) -> list[str]:
    """HTML sections for every calibration report under ``folder`` (for the static report; [] if none)."""
    out = []
    for _p, rep in load_reports(folder):
        try:
            out.append(calibration_html(rep))
        except (KeyError, TypeError, ValueError) as exc:  # an old or foreign JSON file: say so, keep the report
            out.append(f"<section><h2>Calibration</h2><p>{html.escape(str(_p))}: unreadable ({html.escape(str(exc))})"
                       f"</p></section>")
    return out
