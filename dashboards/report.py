"""A self-contained static HTML report of one results file, for officials who receive it by mail.

plotly.js is embedded once, gzip-compressed (unpacked in the browser), and the file needs no network to open.
Maps are SVG scatter (no WebGL context limit) with the network as a few None-separated traces. A summary of
the clear changes comes first, then the KPI tables (blocks of three variants, value and change together).
"""
from __future__ import annotations

import base64
import html
import itertools
import json
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from dashboards import data as D
from dashboards import figures as F
from twin import kpi_format as KF

__all__ = ["write_report", "build_report"]

_CSS = """
body{font-family:-apple-system,'Segoe UI',Roboto,Helvetica,Arial,sans-serif;margin:0;color:#222;background:#f6f7f9}
header{background:#1d3557;color:#fff;padding:18px 32px}header h1{margin:0 0 4px 0;font-size:26px}
header p{margin:2px 0;opacity:.9}main{padding:16px 32px;max-width:1400px;margin:auto}
section{background:#fff;border:1px solid #e1e4e8;border-radius:8px;padding:16px 20px;margin:16px 0}
h2{margin-top:0;color:#1d3557}table{border-collapse:collapse;width:100%;font-size:14px}
th,td{padding:5px 8px;border-bottom:1px solid #eee;text-align:right}th{background:#f0f2f5;position:sticky;top:0}
td.l,th.l{text-align:left}.better{color:#1a7f37;font-weight:600}.worse{color:#c62828;font-weight:600}
.same,.unclear{color:#777}.unclear{font-style:italic}table.kpis{margin-bottom:14px}
table.kpis td small{font-size:12px}ul.summary li{margin:6px 0;line-height:1.45}.dom{background:#fafbfc;font-weight:700;text-align:left}.note{color:#666;font-size:13px}
.missing{background:#fff8e1;border-color:#ffe08a}.grid{display:grid;grid-template-columns:1fr 1fr;gap:12px}
@media(max-width:1000px){.grid{grid-template-columns:1fr}}dl{display:grid;grid-template-columns:max-content 1fr;
gap:2px 16px;font-size:14px}dt{color:#666}dd{margin:0}
"""


_fig_ids = itertools.count()


def _fig_html(fig) -> str:
    """A figure as an empty div plus its JSON; the loader at the end of the page draws it once plotly.js is in."""
    fid = f"ct-fig-{next(_fig_ids)}"
    h = fig.layout.height or 400
    data = fig.to_json().replace("</", "<\\/")
    return (f'<div id="{fid}" class="plotly-graph-div" style="height:{h}px;width:100%"></div>'
            f"<script type='application/json' class='ct-fig' data-target='{fid}'>{data}</script>")


# plotly.js's cartesian bundle (1.5 MB: scatter, bar, heatmap, histogram, every trace the report draws; the full
# bundle is 4.8 MB) ships gzip-compressed and base64-encoded (0.66 MB) and is unpacked in the browser
# (DecompressionStream: Chromium 80+, Firefox 113+, Safari 16.4+); still one file, no network needed.
_LOADER = """
(async function(){
  try {
    const b64 = document.getElementById('plotlyjs-gz').textContent.trim();
    const bytes = Uint8Array.from(atob(b64), c => c.charCodeAt(0));
    const js = await new Response(new Blob([bytes]).stream().pipeThrough(new DecompressionStream('gzip'))).text();
    const s = document.createElement('script'); s.text = js; document.head.appendChild(s);
    for (const el of document.querySelectorAll('script.ct-fig')) {
      const f = JSON.parse(el.textContent);
      await Plotly.newPlot(el.dataset.target, f.data, f.layout, {displaylogo: false, responsive: true});
    }
    document.body.dataset.drawn = 'yes';
  } catch (e) {
    document.body.insertAdjacentHTML('afterbegin', '<p style="color:#c62828;padding:8px 32px">Charts cannot be '
      + 'drawn in this browser (' + e + '): the tables below are complete.</p>');
  }
})();
"""


def _plotly_gz() -> str:
    """The vendored plotly.js bundle (already gzip-compressed, dashboards/vendor/README.md), base64-encoded."""
    return base64.b64encode(F.PLOTLY_BUNDLE_GZ.read_bytes()).decode("ascii")


def _kpi_rows(ds) -> dict:
    rows = KF.kpi_rows(ds)
    return {(r["kpi"], r["variant"]): r for r in rows}, list(dict.fromkeys(r["kpi"] for r in rows))


def _cell(r: dict, ref: float) -> tuple[str, str]:
    """Value and change (same unit) of one KPI row, and its CSS class."""
    val = KF.fmt_value(r["value"], r["kpi"], r["units"], ref=ref)
    if r["delta"] is None:
        return val, "same"
    n = min(r["n"], r.get("n_pairs", r["n"]))  # pairs where both the variant and the baseline have a value
    d = KF.fmt_delta(ref, ref + r["delta"], r["kpi"], r["units"], r["delta_ci95"], n if r["n"] > 1 else None)
    v = r["verdict"]
    word = {"better": "better", "worse": "worse", "unclear": "no clear change"}.get(v, "")
    return (f"{html.escape(val)}<br><small class='{v}'>{html.escape(d)}" +
            (f" · {word}" if word else "") + "</small>"), v


def _kpi_table(ds, variants: list[str], per_block: int = 3) -> str:
    """KPIs as rows: the baseline's value, then each variant's value with its change together; at most
    ``per_block`` variants per table so the table fits 1,400 px whatever the number of variants."""
    by, names = _kpi_rows(ds)
    others = variants[1:]
    blocks = [others[i:i + per_block] for i in range(0, len(others), per_block)] or [[]]
    out = []
    for g in blocks:
        head = "".join(f"<th>{html.escape(v)}<br><small>value, change</small></th>" for v in g)
        rows = [f"<tr><th class='l'>KPI</th><th class='l'>better</th><th>{html.escape(variants[0])}</th>{head}</tr>"]
        last = None
        for n in names:
            b = by[(n, variants[0])]
            if b["domain"] != last:
                last = b["domain"]
                rows.append(f"<tr><td class='dom' colspan='{len(g) + 3}'>"
                            f"{html.escape(D.DOMAIN_LABELS.get(last, last))}</td></tr>")
            ref = b["value"] if b["value"] is not None else float("nan")
            cells = ""
            for v in g:
                txt, cls = _cell(by[(n, v)], ref)
                cells += f"<td>{txt}</td>"
            unit = KF.unit_label(n, b["units"], ref)
            rows.append(f"<tr><td class='l'>{html.escape(b['label'])}{f' ({html.escape(unit)})' if unit else ''}</td>"
                        f"<td class='l'>{html.escape(b['better'])}</td>"
                        f"<td>{html.escape(KF.fmt_value(b['value'], n, b['units'], ref=ref))}</td>{cells}</tr>")
        out.append("<table class='kpis'>" + "".join(rows) + "</table>")
    return "".join(out)


def _summary(ds, variants: list[str], top: int = 4) -> str:
    """Per variant, the few clear changes against the baseline in sentences with numbers and units."""
    by, names = _kpi_rows(ds)
    n_rep = int(ds.attrs.get("replications", 1) or 1)
    how = (f"mean of {n_rep} runs each; a change counts as clear when its 95% interval excludes 0" if n_rep > 1
           else "one run each: changes under 2% (1 point for shares) are treated as noise, and a single run "
                "cannot show how much of a change is chance")
    items = []
    for v in variants[1:]:
        clear = []
        for n in names:
            r, b = by[(n, v)], by[(n, variants[0])]
            if r["verdict"] not in ("better", "worse") or b["value"] is None or r["value"] is None:
                continue
            rel = abs(r["delta"]) / max(abs(b["value"]), 1e-12)
            clear.append((rel, n, r, b))
        clear.sort(key=lambda x: -x[0])
        desc = str(D.run_attr(ds, v, "variant_description", ""))
        if not clear:
            text = "no clear change in any key figure."
        else:
            sent = []
            for _, n, r, b in clear[:top]:
                ref = b["value"]
                d = KF.fmt_delta(ref, ref + r["delta"], n, r["units"], r["delta_ci95"])
                sent.append(f"{html.escape(b['label'])}: {html.escape(KF.fmt_value(ref, n, r['units'], ref=ref))} → "
                            f"{html.escape(KF.fmt_value(r['value'], n, r['units'], ref=ref))} "
                            f"(<span class='{r['verdict']}'>{html.escape(d)}, {r['verdict']}</span>)")
            more = f" ({len(clear) - top} more clear changes in the table.)" if len(clear) > top else ""
            text = "; ".join(sent) + "." + more
        items.append(f"<li><b>{html.escape(v)}</b>{': ' + html.escape(desc) if desc else ''}<br>{text}</li>")
    if not items:
        return f"<p>Only the baseline was run ({how}).</p>"
    return f"<p class='note'>Against the baseline; {how}.</p><ul class='summary'>{''.join(items)}</ul>"


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
                                              closed_label=f"closed in {v} (some of the time)",
                                              severity=F.DIFF_SEVERITY)))
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
    for k, name in enumerate(str(v) for v in ds["venue"].values):
        owner = next((v for v in variants if D.venue_present(D.variant_view(ds, v))[k]), None)
        if owner is None:
            continue
        have = [v for v in variants if D.venue_present(D.variant_view(ds, v))[k]]
        figs = [F.crowd_heatmap(D.variant_view(ds, owner), k, clock, animate=False), F.crowd_peak(ds, have, k)]
        out.append(f"<h3>{html.escape(name)} <small class='note'>(density map: {html.escape(owner)})</small></h3>"
                   "<div class='grid'>" + "".join(_fig_html(f) for f in figs) + "</div>")
    quiet = []
    for v in variants:
        vv = D.variant_view(ds, v)
        n_warn = int(np.isfinite(np.asarray(vv["crowd_warning_start"].values, float)).sum()) \
            if "crowd_warning_start" in vv else 0
        if n_warn == 0:
            quiet.append(v)
            continue
        out.append(f"<h3>warnings — {html.escape(v)}</h3>" +
                   _fig_html(F.crowd_warnings(vv, start=str(ds.attrs.get("clock_start", "00:00")))))
    if quiet:
        out.append(f"<p>No density warnings in: {html.escape(', '.join(quiet))}.</p>")
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
    path = Path(results_path)
    ds = D.load(path)
    variants = [str(v) for v in ds["variant"].values]
    doms = D.simulated_domains(ds)
    a = ds.attrs
    body = [_section("Summary", _summary(ds, variants)),
            _section("Key figures (change against the baseline in each value's own unit; green = better, "
                     "red = worse, grey = no clear change)", _kpi_table(ds, variants)),
            _section("Run", _meta(ds, variants))]
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
            "</head><body>"
            f"<header><h1>{html.escape(title)}</h1><p>{html.escape(str(a.get('scenario_description', '')))}</p>"
            f"<p class='note' style='color:#dde'>{html.escape(str(a.get('city', '')))} · variants: "
            f"{html.escape(', '.join(variants))} · domains: {html.escape(', '.join(doms) or 'none')} · "
            f"written {now} from {html.escape(path.name)}</p></header>"
            f"<main>{''.join(body)}</main>"
            f"<script type='application/json' id='citytwin-meta'>"
            f"{html.escape(json.dumps({'variants': variants, 'domains': doms}))}</script>"
            f"<script type='text/plain' id='plotlyjs-gz'>{_plotly_gz()}</script>"
            f"<script>{_LOADER}</script></body></html>")


def write_report(results_path: str | Path, out_path: str | Path) -> Path:
    """Write the report of ``results_path`` to ``out_path`` (atomically); return the path written."""
    from twin.atomic import write_text_atomic

    return write_text_atomic(build_report(results_path), out_path)
