"""A self-contained static HTML report of one results file, for officials who receive it by mail.

plotly.js is embedded once (not per figure); the file needs no network to open. Maps are scattergl with
the network drawn as a few None-separated traces, so Bad Hersfeld stays well under 10 MB.
"""
from __future__ import annotations

import html
import json
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from dashboards import data as D
from dashboards import figures as F

__all__ = ["write_report", "build_report"]

_CSS = """
body{font-family:-apple-system,'Segoe UI',Roboto,Helvetica,Arial,sans-serif;margin:0;color:#222;background:#f6f7f9}
header{background:#1d3557;color:#fff;padding:18px 32px}header h1{margin:0 0 4px 0;font-size:26px}
header p{margin:2px 0;opacity:.9}main{padding:16px 32px;max-width:1400px;margin:auto}
section{background:#fff;border:1px solid #e1e4e8;border-radius:8px;padding:16px 20px;margin:16px 0}
h2{margin-top:0;color:#1d3557}table{border-collapse:collapse;width:100%;font-size:14px}
th,td{padding:5px 8px;border-bottom:1px solid #eee;text-align:right}th{background:#f0f2f5;position:sticky;top:0}
td.l,th.l{text-align:left}.better{color:#1a7f37;font-weight:600}.worse{color:#c62828;font-weight:600}
.same{color:#777}.dom{background:#fafbfc;font-weight:700;text-align:left}.note{color:#666;font-size:13px}
.missing{background:#fff8e1;border-color:#ffe08a}.grid{display:grid;grid-template-columns:1fr 1fr;gap:12px}
@media(max-width:1000px){.grid{grid-template-columns:1fr}}dl{display:grid;grid-template-columns:max-content 1fr;
gap:2px 16px;font-size:14px}dt{color:#666}dd{margin:0}
"""


def _fig_html(fig) -> str:
    return fig.to_html(full_html=False, include_plotlyjs=False, config={"displaylogo": False, "responsive": True},
                       default_width="100%")


def _kpi_table(ds, variants: list[str]) -> str:
    base_v = variants[0]
    rows = []
    heads = "".join(f"<th>{html.escape(v)}</th>" for v in variants) + \
        "".join(f"<th>Δ {html.escape(v)}</th>" for v in variants[1:])
    rows.append(f"<tr><th class='l'>KPI</th><th class='l'>better</th>{heads}</tr>")
    kp = {v: {k["name"]: k for k in D.kpi_list(D.variant_view(ds, v))} for v in variants}
    names = list(kp[base_v])
    last_dom = None
    for n in names:
        k0 = kp[base_v][n]
        if k0["domain"] != last_dom:
            last_dom = k0["domain"]
            rows.append(f"<tr><td class='dom' colspan='{2 * len(variants) + 1}'>"
                        f"{html.escape(D.DOMAIN_LABELS.get(last_dom, last_dom))}</td></tr>")
        cells = "".join(f"<td>{D.fmt_value(kp[v][n]['value'], k0['units'])}</td>" for v in variants)
        for v in variants[1:]:
            cls = D.judge(k0["better"], k0["value"], kp[v][n]["value"])
            cells += f"<td class='{cls}'>{D.fmt_delta(k0['value'], kp[v][n]['value'], k0['units'])}</td>"
        units = "" if k0["units"] in ("1", "") else f" ({html.escape(k0['units'])})"
        rows.append(f"<tr><td class='l'>{html.escape(k0['label'])}{units}</td>"
                    f"<td class='l'>{html.escape(k0['better'])}</td>{cells}</tr>")
    return "<table>" + "".join(rows) + "</table>"


def _section(title: str, body: str, cls: str = "") -> str:
    return f"<section class='{cls}'><h2>{html.escape(title)}</h2>{body}</section>"


def _traffic(path, ds, variants) -> str:
    net = D.network(path, ds)
    parts = []
    if net is not None and "link_speed" in ds:
        r0 = D.speed_ratio(path, ds, variants[0])
        clock = D.clock_labels(ds)
        # the interval with the most vehicle-metres below free flow (the peak)
        t_peak = int(np.argmin(r0.mean(1))) if r0.size else 0
        c0 = D.capacity_factor(path, ds, variants[0])[t_peak]
        fig = F.class_map(net, D.link_classes(r0[t_peak], D.SPEED_BINS), D.SPEED_LABELS, F.SPEED_COLORS,
                          f"{variants[0]}: speed as % of free flow at {clock[t_peak]} (slowest interval)",
                          clickable=False, height=600, closed=c0 <= 0, reduced=c0 < 1)
        maps = [_fig_html(fig)]
        for v in variants[1:]:
            cls = F.diff_classes(r0, D.speed_ratio(path, ds, v))
            cv = D.capacity_factor(path, ds, v).min(0)
            maps.append(_fig_html(F.class_map(net, cls, F.DIFF_LABELS, F.DIFF_COLORS,
                                              f"{v} against {variants[0]}: change in mean speed (% of free flow)",
                                              clickable=False, height=600, closed=cv <= 0, reduced=cv < 1,
                                              closed_label=f"closed in {v} (some of the time)")))
        parts.append("<div class='grid'>" + "".join(maps) + "</div>")
    parts.append("<div class='grid'>" + "".join(_fig_html(f) for f in F.traffic_series(ds, variants, path)) + "</div>")
    return "".join(parts)


def _ev(path, ds, variants) -> str:
    net = D.network(path, ds)
    origin = D.network_origin(ds) if "node_x" in ds else (0.0, 0.0)
    figs = [F.ev_station_map(net, D.variant_view(ds, variants[0]), origin, f"stations — {variants[0]} (size: mean load)"),
            F.ev_load(ds, variants), F.ev_waits(ds, variants), F.ev_occupancy(ds, variants[0])]
    return "<div class='grid'>" + "".join(_fig_html(f) for f in figs) + "</div>"


def _crowd(path, ds, variants) -> str:
    clock = D.clock_labels(ds)
    out = []
    vv = D.variant_view(ds, variants[0])
    for k, name in enumerate(str(v) for v in ds["venue"].values):
        figs = [F.crowd_heatmap(vv, k, clock, animate=len(clock) <= 120), F.crowd_peak(ds, variants, k)]
        out.append(f"<h3>{html.escape(name)}</h3><div class='grid'>" + "".join(_fig_html(f) for f in figs) + "</div>")
    for v in variants:
        out.append(f"<h3>warnings — {html.escape(v)}</h3>" +
                   _fig_html(F.crowd_warnings(D.variant_view(ds, v), start=str(ds.attrs.get("clock_start", "00:00")))))
    return "".join(out)


def _emergency(path, ds, variants) -> str:
    net = D.network(path, ds)
    origin = D.network_origin(ds) if "node_x" in ds else (0.0, 0.0)
    vv = D.variant_view(ds, variants[0])
    sc = D.scenario_doc(ds, variants[0]) or {}
    cell = float((sc.get("city") or {}).get("zone_cell_m", 1000.0))
    figs = [F.em_incident_map(net, vv, origin, f"incidents — {variants[0]} (colour: response time)"),
            F.em_response_hist(ds, variants)]
    if "em_zone_coverage" in ds:
        figs.append(F.em_coverage_map(net, vv, ds, cell, origin))
    if "em_unit_utilisation" in ds:
        figs.append(F.em_utilisation(ds, variants))
    return "<div class='grid'>" + "".join(_fig_html(f) for f in figs) + "</div>"


def _meta(ds, variants) -> str:
    a = ds.attrs
    items = [("scenario", a.get("scenario_name", "")), ("city", a.get("city", "")),
             ("clock start", a.get("clock_start", "")), ("seed", a.get("seed", "")),
             ("traffic back-end", a.get("backend", "")),
             ("created", D.run_attr(ds, variants[0], "created", a.get("created", ""))),
             ("CityTwin", a.get("citytwin_version", "")),
             ("scenario hash", str(D.run_attr(ds, variants[0], "scenario_hash", ""))[:16]),
             ("complete", "yes" if int(a.get("complete", 1)) else "NO — a run stopped early")]
    dl = "".join(f"<dt>{html.escape(k)}</dt><dd>{html.escape(str(v))}</dd>" for k, v in items)
    vd = []
    for v in variants:
        desc = str(D.run_attr(ds, v, "variant_description", ""))
        if not desc and v == "baseline":
            desc = "the scenario as written"
        try:
            w = float(D.run_attr(ds, v, "wall_time_s", "nan"))
        except (TypeError, ValueError):
            w = float("nan")
        wall = f" <span class='note'>(run took {w:,.0f} s)</span>" if np.isfinite(w) else ""
        vd.append(f"<li><b>{html.escape(v)}</b>: {html.escape(desc)}{wall}</li>")
    return f"<dl>{dl}</dl><h3>Variants</h3><ul>{''.join(vd)}</ul>"


def build_report(results_path: str | Path) -> str:
    """The report's HTML text (plotly.js embedded once)."""
    from plotly.offline import get_plotlyjs

    path = Path(results_path)
    ds = D.load(path)
    variants = [str(v) for v in ds["variant"].values]
    doms = D.simulated_domains(ds)
    a = ds.attrs
    body = [_section("Run", _meta(ds, variants)),
            _section("Key figures (Δ against the first variant; green = better, red = worse)",
                     _kpi_table(ds, variants))]
    builders = {"traffic": _traffic, "ev": _ev, "crowd": _crowd, "emergency": _emergency}
    for dom in D.DOMAINS:
        title = D.DOMAIN_LABELS[dom]
        if dom not in doms:
            body.append(_section(title, f"<p>{html.escape(title)} was not simulated in this scenario.</p>", "missing"))
            continue
        try:
            body.append(_section(title, builders[dom](path, ds, variants)))
        except Exception as exc:  # one broken section must not cost the whole report
            body.append(_section(title, f"<p class='worse'>This section could not be drawn: "
                                        f"{html.escape(type(exc).__name__)}: {html.escape(str(exc))}</p>", "missing"))
    from agents.traffic.counts.report import calibration_sections  # calibrations written beside the results
    body += calibration_sections(path.parent)
    title = f"CityTwin report: {a.get('scenario_name', path.stem)}"
    now = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    return (f"<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
            f"<meta name='viewport' content='width=device-width, initial-scale=1'><style>{_CSS}</style>"
            f"<script type='text/javascript'>{get_plotlyjs()}</script></head><body>"
            f"<header><h1>{html.escape(title)}</h1><p>{html.escape(str(a.get('scenario_description', '')))}</p>"
            f"<p class='note' style='color:#dde'>{html.escape(str(a.get('city', '')))} · variants: "
            f"{html.escape(', '.join(variants))} · domains: {html.escape(', '.join(doms) or 'none')} · "
            f"written {now} from {html.escape(path.name)}</p></header>"
            f"<main>{''.join(body)}</main>"
            f"<script type='application/json' id='citytwin-meta'>"
            f"{html.escape(json.dumps({'variants': variants, 'domains': doms}))}</script></body></html>")


def write_report(results_path: str | Path, out_path: str | Path) -> Path:
    """Write the report of ``results_path`` to ``out_path`` (atomically); return the path written."""
    from twin.atomic import write_text_atomic

    return write_text_atomic(build_report(results_path), out_path)
