"""Plotly figures shared by the Dash app and the static report (maps from the network's own geometry).

Maps are SVG (no WebGL context limit): links binned into a few colour classes, each class one path shape (one
element in the page), so a 10,000-link city is seven shapes whatever the time step.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import plotly.graph_objects as go
import plotly.io as pio
import xarray as xr

from dashboards import data as D

SPEED_COLORS = ["#8b0000", "#e34a33", "#fc8d59", "#fee08b", "#1a9850"]
VOLUME_COLORS = ["#d9d9d9", "#9ecae1", "#4292c6", "#08519c", "#08306b"]
DIFF_BINS = np.array([-0.2, -0.05, 0.05, 0.2])
DIFF_LABELS = ["much slower (< −20 pts)", "slower", "about the same (±5 pts)", "faster", "much faster (> +20 pts)"]
DIFF_COLORS = ["#b2182b", "#ef8a62", "#d9d9d9", "#67a9cf", "#2166ac"]
WIDTHS = [3.2, 2.8, 2.2, 1.8, 1.2]
VARIANT_COLORS = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2", "#17becf"]
BASE_COLOR = "#555555"
# the plotly.js the app serves and the report embeds: the cartesian bundle (scatter, bar, heatmap, histogram: every
# trace drawn here), gzip-compressed; 1.5 MB instead of the full 4.8 MB (dashboards/vendor/README.md)
PLOTLY_BUNDLE_GZ = Path(__file__).resolve().parent / "vendor" / "plotly-cartesian.min.js.gz"
# the look of every figure, as plotly's default: passing template="plotly_white" per figure re-validates the whole
# template each time (0.15-0.5 s a figure on the busy box, 5 s for the traffic page's series), the default is applied
# once and then reused
pio.templates.default = "plotly_white"


# the modebar (plotly's toolbar, top right, shown on hover) gets a strip of its own above the title: left-aligned
# titles alone were still crossed by its icons when long (the coverage map's) or in a half-width card
MODEBAR_STRIP_PX = 26
TITLE_TOP_PX = MODEBAR_STRIP_PX + 30  # top margin of a figure with a title: the strip, then one line of title


def _title(title: str | None) -> dict | None:
    """A left-aligned title under the modebar's strip (one place for every figure of the app and the report)."""
    if not title:
        return None
    return dict(text=title, x=0.01, xanchor="left", yref="container", y=1.0, yanchor="top",
                pad=dict(t=MODEBAR_STRIP_PX + 4))


LEGEND_BOTTOM_PX = 78  # bottom margin: tick labels, the x-axis title, then the legend's line at the figure's foot


def _layout(fig: go.Figure, title: str | None = None, height: int = 380, **kw) -> go.Figure:
    # the legend sits at the foot of the figure (container coordinates), under the x-axis title: at y=-0.15 of the
    # plot it crossed the axis title ("time of day") on 320-380 px charts
    fig.update_layout(title=_title(title), height=height,
                      margin=dict(l=40, r=10, t=TITLE_TOP_PX if title else 10, b=LEGEND_BOTTOM_PX),
                      legend=dict(orientation="h", yref="container", y=0, yanchor="bottom", x=0, xanchor="left"),
                      **kw)
    return fig


def empty(message: str, height: int = 300) -> go.Figure:
    fig = go.Figure()
    fig.add_annotation(text=message, showarrow=False, x=0.5, y=0.5, xref="paper", yref="paper",
                       font=dict(size=14, color="#666"))
    fig.update_xaxes(visible=False)
    fig.update_yaxes(visible=False)
    return _layout(fig, height=height)


def _map_layout(fig: go.Figure, title: str | None = None, height: int = 560) -> go.Figure:
    _layout(fig, title, height)
    fig.update_xaxes(visible=False, constrain="domain")
    fig.update_yaxes(visible=False, scaleanchor="x", scaleratio=1)
    fig.update_layout(legend=dict(orientation="v", yref="paper", y=1, yanchor="top", x=0, xanchor="left",
                                  bgcolor="rgba(255,255,255,0.8)"),
                      margin=dict(l=0, r=0, t=TITLE_TOP_PX if title else 0, b=0), hovermode="closest", uirevision="map",
                      dragmode="pan")
    return fig


def svg_path(x: np.ndarray, y: np.ndarray) -> str:
    """NaN-separated segment triples (:meth:`D.Network.segments`) as one SVG path string ("M x,y L x,y ...").

    A layout shape with this path is ONE element in the page, where a ``scatter`` line trace with NaN gaps is one
    SVG element per segment (Bad Hersfeld: 2,250 elements, 1-5 s to draw in Chromium on the busy box; a shape
    0.2-0.5 s). Coordinates are rounded to 1/10,000 of the map's extent (1 m for a 10 km town)."""
    x = np.asarray(x, np.float64).reshape(-1, 3)[:, :2]
    y = np.asarray(y, np.float64).reshape(-1, 3)[:, :2]
    if not len(x):
        return ""
    a = np.stack([x[:, 0], y[:, 0], x[:, 1], y[:, 1]], 1)
    ext = float(np.nanmax(a) - np.nanmin(a)) if np.isfinite(a).any() else 1.0
    dec = max(0, int(np.ceil(-np.log10(max(ext, 1e-9) / 1e4))))
    a = a[np.isfinite(a).all(1)]
    if dec == 0:
        return ("M%d,%dL%d,%d" * len(a)) % tuple(np.round(a).astype(np.int64).ravel().tolist())
    f = f"%.{dec}f"
    return (f"M{f},{f}L{f},{f}" * len(a)) % tuple(a.ravel().tolist())


def line_shape(path: str, line: dict, group: str | None = None, layer: str = "below", visible=True) -> dict:
    """A layout shape drawing ``path`` in data coordinates (no hover, no legend of its own: a legend entry is an
    empty trace of the same ``legendgroup``, so clicking it hides the shape too)."""
    shp = dict(type="path", path=path or "M0,0", xref="x", yref="y", line=line, layer=layer, visible=visible,
               showlegend=False, editable=False)
    if group is not None:
        shp["legendgroup"] = group
    return shp


def add_network(fig: go.Figure, net: D.Network, color: str = "#c8c8c8", width: float = 1.0,
                layer: str = "below") -> go.Figure:
    """The grey road network under a map's markers, as one path shape (see :func:`svg_path`)."""
    fig.add_shape(**line_shape(svg_path(*net.segments()), dict(color=color, width=width), layer=layer))
    return fig


CLOSED_STYLE = dict(color="#000000", width=4.5, dash="dot")
REDUCED_STYLE = dict(color="#7b3294", width=1.6, dash="dash")
# which class of a two-way street's two directions is drawn (the higher severity): speed classes are worst first
SPEED_SEVERITY = [4, 3, 2, 1, 0]
VOLUME_SEVERITY = [0, 1, 2, 3, 4]
DIFF_SEVERITY = [2, 1, 0, 1, 2]
BIG_MAP = 3000  # links: above this a map draws thinner lines and no per-link hover text


def map_lines(net: D.Network, classes: np.ndarray, n_classes: int, closed: np.ndarray | None = None,
              reduced: np.ndarray | None = None, severity: list[int] | None = None
              ) -> list[tuple[np.ndarray, np.ndarray, int]]:
    """(x, y, links) of the map's line traces: ``n_classes`` colour classes, then closed, then reduced capacity.

    A two-way street is drawn once, in the class of its more severe direction (``severity`` per class, default
    worst first), so the congested direction is never hidden under the free one and the browser draws half the
    lines; ``links`` still counts directed links. A closed link is drawn only in the closed layer (on top)."""
    n = net.n
    closed = np.zeros(n, bool) if closed is None else np.asarray(closed, bool)
    reduced = np.zeros(n, bool) if reduced is None else (np.asarray(reduced, bool) & ~closed)
    cls = np.where(closed, -1, np.asarray(classes, np.int64))
    counts = [int(np.count_nonzero(cls == k)) for k in range(n_classes)]
    draw = cls.copy()
    twin = net.twin if net.twin is not None else np.full(n, -1)
    rep = np.flatnonzero((twin >= 0) & (np.arange(n) < twin))
    if rep.size:
        sev = np.asarray(severity if severity is not None else list(range(n_classes))[::-1], np.int64)
        a, b = cls[rep], cls[twin[rep]]
        sa = np.where(a >= 0, sev[np.clip(a, 0, None)], -1)
        sb = np.where(b >= 0, sev[np.clip(b, 0, None)], -1)
        draw[rep] = np.where(sb > sa, b, a)
        draw[twin[rep]] = -1
    out = []
    for k in range(n_classes):
        x, y = net.segments(np.flatnonzero(draw == k))
        out.append((x, y, counts[k]))
    for mask in (closed, reduced):
        idx = np.flatnonzero(mask)
        x, y = net.segments(idx)
        out.append((x, y, len(idx)))
    return out


def class_map(net: D.Network, classes: np.ndarray, labels: list[str], colors: list[str], title: str | None = None,
              clickable: bool = True, highlight: int | None = None, height: int = 560,
              hover: np.ndarray | None = None, hover_label: str = "", closed: np.ndarray | None = None,
              reduced: np.ndarray | None = None, closed_label: str = "closed (capacity 0)",
              names: np.ndarray | None = None, severity: list[int] | None = None,
              link_text: np.ndarray | None = None) -> go.Figure:
    """Links coloured by class (:func:`map_lines`), then a "closed" layer (capacity factor 0: drawn instead of its
    class colour) and a "reduced capacity" overlay (0 < factor < 1), each one path shape (``layout.shapes[k]``)
    with its legend entry an empty trace (``data[k]``, same legend group); then, when ``clickable``, the midpoint
    layer for hover and clicks (``data[D.N_MAP_CLASSES]``): a scatter with ``mode="none"``, which hovers and
    clicks like markers but adds no element per link to the page. The indices are fixed so a time step can patch
    them (:func:`map_patch`). ``link_text``: the hover text of :func:`link_hover_text`, when the caller keeps it.

    All SVG (no WebGL): a report with many maps never runs out of WebGL contexts, and Chromium draws the
    10,000-link city's shapes faster than WebGL lines with software rendering."""
    fig = go.Figure()
    big = net.n > BIG_MAP
    lines = map_lines(net, classes, len(labels), closed, reduced, severity)
    shapes = []
    for k in range(5):
        x, y, cnt = lines[k] if k < len(labels) else (np.zeros(0), np.zeros(0), 0)
        line = dict(color=colors[k] if k < len(colors) else "#999999",
                    width=(WIDTHS[k] if k < len(WIDTHS) else 1.5) * (0.7 if big else 1.0))
        if k < len(labels):
            fig.add_trace(go.Scatter(x=[None], y=[None], mode="lines", name=f"{labels[k]} ({cnt:,})", line=line,
                                     hoverinfo="skip", legendgroup=f"c{k}"))
        else:  # keep the fixed trace layout for shorter class lists
            fig.add_trace(go.Scatter(x=[None], y=[None], mode="lines", showlegend=False, hoverinfo="skip"))
        shapes.append(line_shape(svg_path(x, y), line, f"c{k}"))
    for j, ((x, y, cnt), lab, style) in enumerate(zip(lines[len(labels):], (closed_label, "reduced capacity"),
                                                      (CLOSED_STYLE, REDUCED_STYLE))):
        vis = True if cnt else "legendonly"
        fig.add_trace(go.Scatter(x=[None], y=[None], mode="lines", name=f"{lab} ({cnt:,})", line=style,
                                 hoverinfo="skip", showlegend=True, visible=vis, legendgroup=f"c{5 + j}"))
        shapes.append(line_shape(svg_path(x, y), style, f"c{5 + j}", layer="above", visible=vis))
    fig.update_layout(shapes=shapes)
    if clickable:
        mx, my = net.midpoints()
        # hover: the street name and link id (for big networks only where the results carry names: payload)
        txt = link_text if link_text is not None else link_hover_text(net, names)
        fig.add_trace(go.Scatter(x=mx, y=my, mode="none", name="links", showlegend=False, text=txt,
                                 hovertemplate="%{text}<extra>click for detail</extra>" if txt is not None else
                                 "click for detail<extra></extra>"))
    if highlight is not None and 0 <= highlight < net.n:
        x, y = net.segments(np.array([highlight]))
        fig.add_trace(go.Scatter(x=x, y=y, mode="lines+markers", name=f"selected: {net.ids[highlight]}",
                                 line=dict(color="#00e5ff", width=6), hoverinfo="skip"))
    return _map_layout(fig, title, height)


def link_hover_text(net: D.Network, names: np.ndarray | None) -> np.ndarray | None:
    """Hover text per link: "street — link id" (big networks only where the results carry names: payload).

    A numpy array, not a list: plotly validates a list string by string (0.1-0.2 s a map)."""
    named = names is not None and any(names)
    if not named and net.n > BIG_MAP:
        return None
    return np.asarray([(f"{nm} — " if nm else "") + f"link {i}" for i, nm in
                       zip(net.ids, names if named else [""] * net.n)])


def map_patch(patch, net: D.Network, classes: np.ndarray, labels: list[str], closed: np.ndarray,
              reduced: np.ndarray, severity: list[int] | None, closed_label: str = "closed (capacity 0)"):
    """Fill a dash ``Patch`` of a :func:`class_map` figure for new classes: only the shapes' paths, the legend
    counts and the closed/reduced layers' visibility change (a time step sends ~25 bytes a drawn link)."""
    names = [*labels, closed_label, "reduced capacity"]
    for k, (x, y, cnt) in enumerate(map_lines(net, classes, len(labels), closed, reduced, severity)):
        patch["layout"]["shapes"][k]["path"] = svg_path(x, y) or "M0,0"
        patch["data"][k]["name"] = f"{names[k]} ({cnt:,})"
        if k >= len(labels):
            vis = True if cnt else "legendonly"
            patch["data"][k]["visible"] = vis
            patch["layout"]["shapes"][k]["visible"] = vis
    return patch


def _clock_axis(fig: go.Figure, clock: list[str], n: int | None = None) -> None:
    fig.update_xaxes(title="time of day")


def series(traces: list[tuple[str, np.ndarray, np.ndarray, dict]], title: str, ytitle: str,
           height: int = 320, hlines: list[tuple[float, str]] = ()) -> go.Figure:
    """Lines over clock time: traces of (name, x labels, y, line style)."""
    fig = go.Figure()
    for name, x, y, style in traces:
        fig.add_trace(go.Scatter(x=x, y=y, mode="lines", name=name, line=style))
    for yv, lab in hlines:
        if np.isfinite(yv):
            fig.add_hline(y=yv, line=dict(color="#b2182b", dash="dash"), annotation_text=lab)
    fig.update_yaxes(title=ytitle, rangemode="tozero")
    fig.update_xaxes(title="time of day", type="category", nticks=12)
    return _layout(fig, title, height)


def _style(i: int, base: bool = False) -> dict:
    return dict(color=BASE_COLOR, dash="dash", width=1.5) if base else \
        dict(color=VARIANT_COLORS[i % len(VARIANT_COLORS)], width=2.2)


# ------------------------------------------------------------------------------------------- traffic
def traffic_series(ds: xr.Dataset, variants: list[str], path=None) -> list[go.Figure]:
    """Network KPIs over time for the given variants (first one drawn as the reference, dashed)."""
    clock = D.clock_labels(ds)
    figs = []
    specs = [("net_running", "vehicles on the road", "vehicles"),
             ("net_waiting", "vehicles waiting to enter", "vehicles")]
    for var, title, yt in specs:
        if var not in ds:
            continue
        tr = [(v, clock, np.asarray(D.variant_view(ds, v)[var].values, float), _style(i, i == 0 and len(variants) > 1))
              for i, v in enumerate(variants)]
        figs.append(series(tr, title, yt))
    if "link_speed" in ds and "link_length" in ds:
        tr = []
        for i, v in enumerate(variants):
            vv = D.variant_view(ds, v)
            L = np.asarray(vv["link_length"].values, np.float32)
            veh = np.nan_to_num(np.asarray(vv["link_vehicles"].values, np.float32)) if "link_vehicles" in vv else None
            r = D.speed_ratio(path, ds, v) if path is not None else None
            if r is None:
                continue
            w = veh * L[None, :] if veh is not None else np.broadcast_to(L, r.shape)
            with np.errstate(invalid="ignore"):
                m = (r * w).sum(1) / np.where(w.sum(1) > 0, w.sum(1), np.nan)
            tr.append((v, clock, np.round(100 * m, 1), _style(i, i == 0 and len(variants) > 1)))
        fig = series(tr, "mean speed (% of free flow)", "% (vehicle-metre weighted)")
        fig.update_yaxes(range=[0, 105])
        figs.append(fig)
    return figs


def link_detail(ds: xr.Dataset, link: int, variants: list[str]) -> go.Figure:
    """Flow, speed and queue of one link over time, per variant."""
    from plotly.subplots import make_subplots

    clock = D.clock_labels(ds)
    lid = str(ds["link"].values[link])
    fig = make_subplots(rows=4, cols=1, shared_xaxes=True, vertical_spacing=0.05,
                        subplot_titles=("flow (veh/h)", "speed (km/h; gap = closed)", "queue (vehicles)",
                                        "capacity factor (1 = full, 0 = closed)"))
    for i, v in enumerate(variants):
        vv = D.variant_view(ds, v).isel(link=link)
        st = _style(i, i == 0 and len(variants) > 1)
        for r, var, scale in ((1, "link_flow", 1.0), (2, "link_speed", 3.6), (3, "link_queue", 1.0),
                              (4, "link_capacity_factor", 1.0)):
            if var in vv and vv[var].ndim == 1:
                fig.add_trace(go.Scatter(x=clock, y=np.asarray(vv[var].values, float) * scale, name=v, line=st,
                                         showlegend=r == 1, legendgroup=v), row=r, col=1)
    fig.update_xaxes(type="category", nticks=10)
    fig.update_yaxes(range=[-0.05, 1.05], row=4, col=1)
    v0 = D.variant_view(ds, variants[0]).isel(link=link)
    names = D.link_names(ds)
    if names is not None and names[link]:
        lid = f"{lid} ({names[link]})"
    info = f"link {lid}: {float(v0['link_length']):.0f} m, free flow {float(v0['link_freeflow_speed']) * 3.6:.0f} km/h"
    if "link_capacity" in v0:
        info += f", capacity {float(v0['link_capacity']):,.0f} veh/h"
    return _layout(fig, info, 640)


def diff_classes(ratio_a: np.ndarray, ratio_b: np.ndarray) -> np.ndarray:
    """Classes of the change in time-mean speed ratio from A to B."""
    d = ratio_b.mean(0) - ratio_a.mean(0)
    return np.digitize(d, DIFF_BINS).astype(np.int8)


# ------------------------------------------------------------------------------------------- EV
def station_names(vv: xr.Dataset) -> list[str]:
    """Distinguishable station labels: the name when names are unique, else "id (name)" (operators repeat)."""
    ids = [str(s) for s in vv["station"].values]
    if "station_name" not in vv:
        return ids
    nm = [str(s) for s in vv["station_name"].values]
    if len(set(nm)) == len(nm):
        return nm
    return [i if (n in ("", "nan") or n == i) else f"{i} ({n})" for i, n in zip(ids, nm)]


def ev_station_map(net: D.Network | None, vv: xr.Dataset, origin: tuple[float, float], title=None,
                   new: set[str] | None = None) -> go.Figure:
    """Stations sized by their mean charging load, coloured by plug occupancy, on the grey network."""
    fig = go.Figure()
    if net is not None:
        add_network(fig, net)
    vv = vv.isel(station=np.flatnonzero(D.station_present(vv)))  # stacking pads other variants' stations
    x = np.asarray(vv["station_x"].values, float) - origin[0]
    y = np.asarray(vv["station_y"].values, float) - origin[1]
    power = np.nan_to_num(np.asarray(vv["station_power"].values, float))
    mean_kw = power.mean(0)
    peak_kw = power.max(0) if power.size else mean_kw
    plugs = np.asarray(vv["station_plugs"].values, float)
    occ = np.nan_to_num(np.asarray(vv["station_busy"].values, float)).mean(0) / np.maximum(plugs, 1)
    names = station_names(vv)
    size = 10 + 40 * np.sqrt(mean_kw / max(mean_kw.max(), 1e-9)) if mean_kw.size else []
    fig.add_trace(go.Scatter(
        x=x, y=y, mode="markers", name="stations (size: mean load)",
        marker=dict(size=size, color=occ * 100, colorscale="YlOrRd", cmin=0, cmax=100, line=dict(width=1, color="#333"),
                    colorbar=dict(title="plugs busy %", thickness=12)),
        text=[f"{n}<br>{p:.0f} plugs<br>mean {m:.1f} kW, peak {pk:.1f} kW<br>busy {o:.0%}"
              for n, p, m, pk, o in zip(names, plugs, mean_kw, peak_kw, occ)],
        hovertemplate="%{text}<extra></extra>"))
    ids = [str(s) for s in vv["station"].values]
    mark = [i for i, sid in enumerate(ids) if new and sid in new]
    if mark:  # an intervention: stations this variant adds to the baseline's
        fig.add_trace(go.Scatter(x=x[mark], y=y[mark], mode="markers+text", name="new in this variant",
                                 marker=dict(size=22, symbol="star-open", color="#2166ac", line=dict(width=2.5)),
                                 text=[names[i] for i in mark], textposition="top center", hoverinfo="skip"))
    fig.update_layout(showlegend=True)  # one trace without the new-station marker: keep the legend
    return _map_layout(fig, title, 480)


def ev_load(ds: xr.Dataset, variants: list[str]) -> go.Figure:
    clock = D.clock_labels(ds)
    tr = [(v, clock, np.asarray(D.variant_view(ds, v)["ev_load"].values, float), _style(i, i == 0 and len(variants) > 1))
          for i, v in enumerate(variants)]
    lim = np.asarray(D.variant_view(ds, variants[-1])["ev_grid_limit"].values, float) if "ev_grid_limit" in ds else []
    fig = series(tr, "city charging load against the grid limit", "kW")
    if len(lim) and np.isfinite(lim).any():
        fig.add_trace(go.Scatter(x=clock, y=np.where(np.isfinite(lim), lim, None), mode="lines", name="grid limit",
                                 line=dict(color="#b2182b", dash="dot", width=2)))
    return fig


def _attempt_waits(vv: xr.Dataset, t_end: float) -> np.ndarray:
    """Wait for a plug (s) of each public charging attempt: to plugging in, else to giving up, else to the end
    of the run (the same rule as the wait KPIs); sessions already in progress at the start are left out."""
    req = np.asarray(vv["ev_attempt_request_time"].values, float)
    plug = np.asarray(vv["ev_attempt_plug_time"].values, float)
    end = np.asarray(vv["ev_attempt_end_time"].values, float)
    kind = np.asarray([str(k) for k in vv["ev_attempt_kind"].values]) if "ev_attempt_kind" in vv else None
    stop = np.where(np.isfinite(plug), plug, np.where(np.isfinite(end), end, t_end))
    ok = np.isfinite(req) & (kind != "warm" if kind is not None else True)
    return (stop - req)[ok]


def ev_waits(ds: xr.Dataset, variants: list[str]) -> go.Figure:
    """Distribution of the wait for a plug per charging attempt (per EV when attempts are not recorded)."""
    fig = go.Figure()
    t_end = float(np.nanmax(ds["time"].values)) if "time" in ds.coords and ds.sizes.get("time") else np.inf
    total = 0
    for i, v in enumerate(variants):
        vv = D.variant_view(ds, v)
        if "ev_attempt_request_time" in vv:
            w, what = _attempt_waits(vv, t_end) / 60.0, "attempts"
        else:
            w = np.asarray(vv["ev_wait"].values, float)
            tried = (np.nan_to_num(np.asarray(vv["ev_charges"].values, float)) > 0) | \
                    (np.nan_to_num(np.asarray(vv["ev_abandoned"].values, float)) > 0)
            w, what = w[tried & np.isfinite(w)] / 60.0, "EVs"
        total += len(w)
        fig.add_trace(go.Histogram(x=w, name=f"{v} ({len(w)} {what})", opacity=0.6, nbinsx=30, xbins=dict(start=0),
                                   marker_color=BASE_COLOR if (i == 0 and len(variants) > 1) else VARIANT_COLORS[i % len(VARIANT_COLORS)]))
    if not total:
        return empty("no public charging attempts in this run", 320)
    if all(np.nanmax(np.asarray(t.x, float), initial=0.0) <= 0 for t in fig.data):
        # every attempt got a plug at once: a histogram of zeros drew one bar from -0.5 to 0.5 min
        return empty("no waiting: every charging attempt got a plug at once<br>"
                     + "<br>".join(t.name for t in fig.data), 320)
    fig.update_layout(barmode="overlay")
    fig.update_xaxes(title="wait for a plug (min; given up: until then; still queued: until the end)",
                     rangemode="tozero")
    fig.update_yaxes(title="charging attempts")
    return _layout(fig, "waiting-time distribution", 320)


def ev_occupancy(ds: xr.Dataset, variant: str) -> go.Figure:
    vv = D.variant_view(ds, variant)
    vv = vv.isel(station=np.flatnonzero(D.station_present(vv)))
    clock = D.clock_labels(ds)
    busy = np.nan_to_num(np.asarray(vv["station_busy"].values, float))
    queue = np.nan_to_num(np.asarray(vv["station_queue"].values, float))
    names = station_names(vv)
    fig = go.Figure()
    # one legend entry per station up to 8; beyond that (Bad Hersfeld: 20+) the legend took the chart's place, so
    # the bands keep their names on hover and the legend says what they are
    few = len(names) <= 8
    for j, n in enumerate(names):
        fig.add_trace(go.Scatter(x=clock, y=busy[:, j], stackgroup="busy", name=n, mode="lines", showlegend=few,
                                 legendgroup="stations", hovertemplate="%{y:.0f} plugs busy<extra>%{fullData.name}</extra>"))
    if not few:
        fig.add_trace(go.Scatter(x=[None], y=[None], mode="lines", legendgroup="stations", line=dict(color="#999"),
                                 name=f"plugs busy, one band per station ({len(names)}; hover for names)"))
    fig.add_trace(go.Scatter(x=clock, y=queue.sum(1), name="EVs waiting (all stations)", mode="lines",
                             line=dict(color="#b2182b", dash="dash", width=2)))
    plugs = float(np.nansum(vv["station_plugs"].values))
    fig.add_hline(y=plugs, line=dict(color="#333", dash="dot"), annotation_text=f"{plugs:.0f} plugs")
    fig.update_xaxes(type="category", nticks=12, title="time of day")
    fig.update_yaxes(title="plugs busy (stacked by station)")
    return _layout(fig, f"occupancy over time — {variant}", 360)


# ------------------------------------------------------------------------------------------- crowd
def crowd_heatmap(vv: xr.Dataset, venue: int, clock: list[str], animate: bool = True) -> go.Figure:
    """A venue's density (persons/m²) per cell over time, animated with plotly frames (client-side)."""
    dens = np.asarray(vv["crowd_density"].isel(venue=venue).values, float)  # time, y, x
    xs = np.asarray(vv["crowd_x"].values, float)
    ys = np.asarray(vv["crowd_y"].values, float)
    zmax = max(float(np.nanmax(dens)) if np.isfinite(dens).any() else 1.0, 1.0)
    peak_t = int(np.nanargmax(np.nanmax(dens.reshape(len(dens), -1), 1))) if np.isfinite(dens).any() else 0
    z = lambda k: np.where(dens[k] > 0, np.round(dens[k], 2), np.nan)  # noqa: E731
    hm = dict(x=xs, y=ys, zmin=0, zmax=zmax, colorscale="YlOrRd", colorbar=dict(title="persons/m²"),
              hovertemplate="x %{x:.1f} m, y %{y:.1f} m: %{z:.2f} /m²<extra></extra>")
    fig = go.Figure(go.Heatmap(z=z(peak_t), **hm))
    if animate and len(dens) > 1:
        fig.frames = [go.Frame(data=[go.Heatmap(z=z(k), **hm)], name=clock[k]) for k in range(len(dens))]
        steps = [dict(method="animate", label=clock[k],
                      args=[[clock[k]], dict(mode="immediate", frame=dict(duration=0, redraw=True),
                                             transition=dict(duration=0))]) for k in range(len(dens))]
        fig.update_layout(
            sliders=[dict(active=peak_t, steps=steps, currentvalue=dict(prefix="time "), pad=dict(t=30))],
            updatemenus=[dict(type="buttons", showactive=False, x=0, y=-0.08, xanchor="right", buttons=[
                dict(label="▶ play", method="animate",
                     args=[None, dict(frame=dict(duration=400, redraw=True), fromcurrent=True)]),
                dict(label="❚❚", method="animate",
                     args=[[None], dict(mode="immediate", frame=dict(duration=0, redraw=False))])])])
    fig.update_yaxes(scaleanchor="x", scaleratio=1, title="y (m)")
    fig.update_xaxes(title="x (m)", constrain="domain")
    name = str(vv["venue"].values[venue])
    return _layout(fig, f"{name}: density (shown at the peak, {clock[peak_t] if clock else ''})", 520)


def crowd_warnings(vv: xr.Dataset, clock_start_s: float = 0.0, start: str = "00:00") -> go.Figure:
    """Warnings as bars from start to end on a time-of-day axis, coloured by level."""
    n = vv.sizes.get("warning", 0)
    if not n:
        return empty("no density warnings in this run")
    h, m = (int(x) for x in start.split(":"))
    t0 = h * 3600 + m * 60
    lv = [str(x) for x in vv["crowd_warning_level"].values]
    st = np.asarray(vv["crowd_warning_start"].values, float)
    en = np.asarray(vv["crowd_warning_end"].values, float)
    pk = np.asarray(vv["crowd_warning_peak"].values, float)
    ven = np.asarray(vv["crowd_warning_venue"].values)
    # warning venue indices count the run's own venues; a stacked file holds every variant's venues
    names = [str(x) for x, have in zip(vv["venue"].values, D.venue_present(vv)) if have]
    ok = np.isfinite(st)
    fig = go.Figure()
    colors = {"warn": "#fdae61", "critical": "#d7191c"}
    for level in ("warn", "critical"):
        sel = [i for i in range(n) if ok[i] and lv[i] == level]
        if not sel:
            continue
        fig.add_trace(go.Bar(
            base=[(t0 + st[i]) / 3600 for i in sel], x=[max(en[i] - st[i], 5) / 3600 for i in sel],
            y=[names[int(ven[i])] if 0 <= int(ven[i]) < len(names) else "?" for i in sel], orientation="h",
            name=level, marker_color=colors.get(level, "#999"),
            text=[f"peak {pk[i]:.1f}/m²" for i in sel], textposition="inside",
            hovertext=[f"{level}: {_hhmm(t0 + st[i])}–{_hhmm(t0 + en[i])}, peak {pk[i]:.2f} /m²" for i in sel],
            hoverinfo="text"))
    fig.update_layout(barmode="overlay")
    if ok.any():  # clock-time ticks (HH:MM), not decimal hours
        lo, hi = (t0 + np.nanmin(st[ok])) / 3600, (t0 + np.nanmax(np.where(np.isfinite(en), en, st)[ok])) / 3600
        step = max(1 / 12, round((hi - lo) / 6 * 12) / 12) if hi > lo else 1 / 12
        ticks = np.arange(np.floor(lo / step) * step, hi + step, step)
        fig.update_xaxes(tickvals=ticks, ticktext=[_hhmm(x * 3600) for x in ticks])
    fig.update_xaxes(title="time of day")
    return _layout(fig, "density warnings (bars: start to end, colour: level)", 280)


def _hhmm(s: float) -> str:
    s = int(round(s)) % 86400
    return f"{s // 3600:02d}:{(s % 3600) // 60:02d}"


def crowd_peak(ds: xr.Dataset, variants: list[str], venue: int) -> go.Figure:
    clock = D.clock_labels(ds)
    tr = [(v, clock, np.asarray(D.variant_view(ds, v)["crowd_peak_density"].isel(venue=venue).values, float),
           _style(i, i == 0 and len(variants) > 1)) for i, v in enumerate(variants)]
    return series(tr, "peak density in the venue", "persons/m²")


# ------------------------------------------------------------------------------------------- emergency
def em_incident_map(net: D.Network | None, vv: xr.Dataset, origin: tuple[float, float], title=None,
                    base_vv: xr.Dataset | None = None) -> go.Figure:
    """Incidents coloured by response time, the stations; a station the baseline (``base_vv``) lacks is starred."""
    fig = go.Figure()
    if net is not None:
        add_network(fig, net)
    x = np.asarray(vv["em_incident_x"].values, float) - origin[0]
    y = np.asarray(vv["em_incident_y"].values, float) - origin[1]
    r = np.asarray(vv["em_response_time"].values, float) / 60.0
    tgt = np.asarray(vv["em_target"].values, float) / 60.0 if "em_target" in vv else np.full_like(r, np.nan)
    typ = [str(t) for t in vv["em_incident_type"].values] if "em_incident_type" in vv else [""] * len(r)
    stt = [str(t) for t in vv["em_incident_status"].values] if "em_incident_status" in vv else [""] * len(r)
    ok = np.isfinite(x) & np.isfinite(r)
    cmax = float(np.nanmax(np.r_[tgt[np.isfinite(tgt)] * 2, r[ok]])) if ok.any() else 10
    fig.add_trace(go.Scatter(
        x=x[ok], y=y[ok], mode="markers", name="reached (colour: response time)",
        marker=dict(size=9, color=r[ok], colorscale="RdYlGn_r", cmin=0, cmax=cmax, line=dict(width=0.5, color="#333"),
                    colorbar=dict(title="min", thickness=12)),
        text=[f"{typ[i]}: {r[i]:.1f} min (target {tgt[i]:.0f})" for i in np.flatnonzero(ok)],
        hovertemplate="%{text}<extra></extra>"))
    no = np.isfinite(x) & ~np.isfinite(r)
    if no.any():
        fig.add_trace(go.Scatter(x=x[no], y=y[no], mode="markers", name="not reached",
                                 marker=dict(size=9, symbol="x", color="#444"),
                                 text=[f"{typ[i]}: {stt[i]}" for i in np.flatnonzero(no)],
                                 hovertemplate="%{text}<extra></extra>"))
    if "em_station_x" in vv:
        sx = np.asarray(vv["em_station_x"].values, float) - origin[0]
        sy = np.asarray(vv["em_station_y"].values, float) - origin[1]
        names = np.asarray([str(s) for s in vv["em_station"].values])
        here = np.isfinite(sx) & np.isfinite(sy)
        new = np.zeros_like(here)
        if base_vv is not None and "em_station_x" in base_vv:  # by name: the baseline may come from another file
            bx = np.asarray(base_vv["em_station_x"].values, float)
            had = {str(n) for n, x in zip(base_vv["em_station"].values, bx) if np.isfinite(x)}
            new = here & np.asarray([n not in had for n in names], bool)
        old = here & ~new
        fig.add_trace(go.Scatter(x=sx[old], y=sy[old], mode="markers", name="stations",
                                 marker=dict(size=14, symbol="square", color="#2166ac", line=dict(width=1, color="white")),
                                 text=names[old], hovertemplate="%{text}<extra></extra>"))
        if new.any():  # the intervention itself, marked as on the EV map
            fig.add_trace(go.Scatter(x=sx[new], y=sy[new], mode="markers", name="station new in this variant",
                                     marker=dict(size=20, symbol="star", color="#ff7f0e", line=dict(width=1, color="#333")),
                                     text=[f"{n} (new in this variant)" for n in names[new]],
                                     hovertemplate="%{text}<extra></extra>"))
    return _map_layout(fig, title, 480)


def em_response_hist(ds: xr.Dataset, variants: list[str]) -> go.Figure:
    fig = go.Figure()
    tgt = None
    for i, v in enumerate(variants):
        vv = D.variant_view(ds, v)
        r = np.asarray(vv["em_response_time"].values, float) / 60.0
        r = r[np.isfinite(r)]
        fig.add_trace(go.Histogram(x=r, name=f"{v} ({len(r)} reached)", opacity=0.6, nbinsx=30,
                                   marker_color=BASE_COLOR if (i == 0 and len(variants) > 1) else VARIANT_COLORS[i % len(VARIANT_COLORS)]))
        if "em_target" in vv and tgt is None:
            t = np.asarray(vv["em_target"].values, float)
            t = t[np.isfinite(t)]
            tgt = float(np.median(t)) / 60.0 if t.size else None
    if tgt:
        fig.add_vline(x=tgt, line=dict(color="#b2182b", dash="dash", width=2), annotation_text=f"target {tgt:.0f} min")
    fig.update_layout(barmode="overlay")
    fig.update_xaxes(title="response time, call to first arrival (min)")
    fig.update_yaxes(title="incidents")
    return _layout(fig, "response-time distribution against the target", 320)


def em_coverage_map(net: D.Network | None, vv: xr.Dataset, ds: xr.Dataset, cell_m: float,
                    origin: tuple[float, float]) -> go.Figure:
    """Zones (grid cells 'z<col>_<row>' of ``cell_m``) coloured by the time-mean share reachable in target."""
    fig = go.Figure()
    if net is not None:
        add_network(fig, net, "#bbbbbb", 0.8, layer="above")
    cov = np.asarray(vv["em_zone_coverage"].values, float)
    mean = np.nanmean(cov, 0) if cov.size else np.zeros(0)
    ids = [str(z) for z in vv["zone"].values]
    cells = []
    for zid, c in zip(ids, mean):
        try:
            col, row = (int(p) for p in zid[1:].split("_"))
        except ValueError:
            continue
        cells.append((col, row, zid, c))
    if cells:
        # one heatmap cell per zone, in metres (cell_m wide): the squares are the zones, whatever the zoom
        cols = sorted({c[0] for c in cells})
        rows = sorted({c[1] for c in cells})
        c0, r0 = cols[0], rows[0]
        z = np.full((rows[-1] - r0 + 1, cols[-1] - c0 + 1), np.nan)
        txt = np.full(z.shape, "", object)
        for col, row, zid, c in cells:
            z[row - r0, col - c0] = 100 * c if np.isfinite(c) else np.nan
            txt[row - r0, col - c0] = f"zone {zid}: " + (f"{c:.0%}" if np.isfinite(c) else "no data") + \
                " reachable within target"
        fig.add_trace(go.Heatmap(
            z=z, x0=(c0 + 0.5) * cell_m, dx=cell_m, y0=(r0 + 0.5) * cell_m, dy=cell_m, zmin=0, zmax=100,
            colorscale="RdYlGn", opacity=0.55, text=txt, hoverinfo="text", name="zone coverage",
            colorbar=dict(title="% in target", thickness=12)))
    return _map_layout(fig, "coverage: share of each zone reachable within the target (time mean)", 480)


def em_unit_names(ds: xr.Dataset, variants: list[str]) -> tuple[np.ndarray, list[str]]:
    """The units that exist in any of ``variants`` (stacking pads a unit only another variant has with NaN) and
    their labels "type index", the type taken from the variant that has the unit (never "nan 5")."""
    n = ds.sizes.get("unit", 0)
    labels: list[str | None] = [None] * n
    keep = np.zeros(n, bool)
    for v in variants:
        vv = D.variant_view(ds, v)
        u = np.asarray(vv["em_unit_utilisation"].values, float)
        types = [str(t) for t in vv["em_unit_type"].values] if "em_unit_type" in vv else [""] * n
        for k in range(n):
            if np.isfinite(u[k]) or types[k] not in ("", "nan", "None"):
                keep[k] = True
                if labels[k] is None and types[k] not in ("", "nan", "None"):
                    labels[k] = f"{types[k]} {k}"
    idx = np.flatnonzero(keep)
    return idx, [labels[k] or f"unit {k}" for k in idx]


def em_utilisation(ds: xr.Dataset, variants: list[str]) -> go.Figure:
    fig = go.Figure()
    idx, names = em_unit_names(ds, variants)
    for i, v in enumerate(variants):
        vv = D.variant_view(ds, v)
        u = np.asarray(vv["em_unit_utilisation"].values, float)[idx] * 100
        fig.add_trace(go.Bar(x=names, y=u, name=v,
                             marker_color=BASE_COLOR if (i == 0 and len(variants) > 1) else VARIANT_COLORS[i % len(VARIANT_COLORS)]))
    fig.update_yaxes(title="busy share of duty time (%)", range=[0, 100])
    return _layout(fig, "unit utilisation", 320)


def em_coverage_series(ds: xr.Dataset, variants: list[str]) -> go.Figure:
    clock = D.clock_labels(ds)
    tr = [(v, clock, 100 * np.asarray(D.variant_view(ds, v)["em_coverage"].values, float),
           _style(i, i == 0 and len(variants) > 1)) for i, v in enumerate(variants)]
    fig = series(tr, "population covered within target over time", "%")
    fig.update_yaxes(range=[0, 105])
    return fig
