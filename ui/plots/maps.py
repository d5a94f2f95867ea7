"""Figures for the app: interactive plotly builders and matplotlib PNG renderers.

One look everywhere (shared with the PNG figures, :mod:`rrs.figures`): a single perceptually uniform sequential
colormap (viridis) for every attribution or radius heatmap, shared colour scales inside a
comparison, and colour-blind-safe categorical overlays from the Okabe–Ito palette
(blue = certified, orange = in the top-k but not certified, grey = lost under attack).

Maps are ``(rows, cols)`` arrays over cells of ``cell × cell`` pixels of the working image;
images are ``(H, W, 3)`` uint8 arrays (or ``(3, H, W)`` float tensors in ``[0, 1]``).
Nothing here imports streamlit; PNG renderers return bytes (matplotlib, Agg backend), so
exports work without a browser or kaleido.
"""
from __future__ import annotations

import io
import math

import numpy as np
import plotly.graph_objects as go
import torch

from rrs.figures import new_figure, png_bytes

__all__ = ["COLORSCALE", "OVERLAY_SCALE", "CMAP", "CERTIFIED", "TOPK", "LOST", "PALETTE", "to_uint8",
           "display_scale", "mask_outline", "map_figure", "region_figure", "radius_figure",
           "beta_curve_figure", "bars_figure", "lines_figure", "prediction_figure",
           "difference_image", "maps_png", "curves_png", "bars_png", "image_png"]

#: The one sequential colormap (plotly name / matplotlib name).
COLORSCALE = "Viridis"
CMAP = "viridis"
#: Okabe–Ito colours (safe for the common colour-vision deficiencies).
CERTIFIED = "#0072B2"   # blue
TOPK = "#E69F00"        # orange
LOST = "#999999"        # grey
PALETTE = ("#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#F0E442", "#000000")

_FONT = dict(family="Source Sans Pro, sans-serif", size=13)


def _overlay_scale(floor: float = 0.08, full_at: float = 0.4) -> list:
    """Viridis whose low end fades out, so unimportant cells leave the photo visible.

    Same colours as :data:`COLORSCALE`; only the alpha ramps from ``floor`` at 0 to 1 at
    ``full_at`` of the scale.
    """
    from plotly.colors import hex_to_rgb, sample_colorscale
    stops = np.linspace(0, 1, 21)
    colors = sample_colorscale(COLORSCALE, list(stops))
    out = []
    for v, c in zip(stops, colors):
        rgb = c[c.index("(") + 1:c.index(")")] if c.startswith("rgb") else ",".join(map(str, hex_to_rgb(c)))
        alpha = floor + (1 - floor) * min(1.0, v / full_at)
        out.append([float(v), f"rgba({rgb},{alpha:.3f})"])
    return out


OVERLAY_SCALE = _overlay_scale()


# ----------------------------------------------------------------------------- helpers

def to_uint8(image) -> np.ndarray:
    """``(H, W, 3)`` uint8 from a uint8 array, a float array in [0, 1] (HWC or CHW) or a tensor."""
    if isinstance(image, torch.Tensor):
        image = image.detach().cpu().numpy()
    arr = np.asarray(image)
    if arr.ndim == 3 and arr.shape[0] in (1, 3) and arr.shape[-1] not in (1, 3):
        arr = np.moveaxis(arr, 0, -1)
    if arr.ndim == 2:
        arr = arr[..., None]
    if arr.shape[-1] == 1:
        arr = np.repeat(arr, 3, axis=-1)
    if arr.dtype != np.uint8:
        arr = np.clip(np.rint(np.asarray(arr, dtype=float) * 255.0), 0, 255).astype(np.uint8)
    return arr


def display_scale(*maps, percentile: float = 99.5) -> float:
    """One colour-scale maximum for a group of maps (shared scale within a comparison).

    Gradient maps are heavy-tailed: a handful of cells would make everything else black if
    the scale ended at the maximum, so it ends at a high percentile of all cells together.
    """
    vals = np.concatenate([np.asarray(m, dtype=float).ravel() for m in maps])
    vals = vals[np.isfinite(vals)]
    if vals.size == 0:
        return 1.0
    top = float(np.percentile(vals, percentile)) if vals.size > 50 else float(vals.max())
    if top <= 0:
        top = float(vals.max())
    return top if top > 0 else 1.0


def mask_outline(mask, cell: int) -> tuple[list, list]:
    """Boundary of a boolean cell mask as one polyline with ``None`` breaks (pixel coords).

    Only edges between a masked and an unmasked (or outside) cell are drawn, and collinear
    unit edges are merged into runs, so a region of thousands of pixel cells stays one
    light trace.
    """
    m = np.asarray(mask, dtype=bool)
    rows, cols = m.shape
    pad = np.pad(m, 1)
    xs: list = []
    ys: list = []
    # horizontal edges: between row r-1 and r (r = 0..rows)
    diff_h = pad[1:, 1:-1] != pad[:-1, 1:-1]          # (rows+1, cols)
    for r in range(rows + 1):
        line = diff_h[r]
        if not line.any():
            continue
        y = r * cell - 0.5
        for start, stop in _runs(line):
            xs += [start * cell - 0.5, stop * cell - 0.5, None]
            ys += [y, y, None]
    diff_v = pad[1:-1, 1:] != pad[1:-1, :-1]          # (rows, cols+1)
    for c in range(cols + 1):
        line = diff_v[:, c]
        if not line.any():
            continue
        x = c * cell - 0.5
        for start, stop in _runs(line):
            xs += [x, x, None]
            ys += [start * cell - 0.5, stop * cell - 0.5, None]
    return xs, ys


def _runs(flags: np.ndarray):
    """(start, stop) index pairs of the True runs of a 1-D boolean array."""
    d = np.diff(np.concatenate([[0], flags.astype(np.int8), [0]]))
    return zip(np.flatnonzero(d == 1), np.flatnonzero(d == -1))


def _image_layout(fig: go.Figure, height: int, title: str | None, legend: bool = False,
                  size: tuple[int, int] | None = None) -> go.Figure:
    if size is not None:
        # fixed ranges: outlines on the border must not make autorange shrink the picture
        h, w = size
        fig.update_xaxes(visible=False, constrain="domain", range=[-0.5, w - 0.5], autorange=False)
        fig.update_yaxes(visible=False, scaleanchor="x", constrain="domain", range=[h - 0.5, -0.5],
                         autorange=False)
    else:
        fig.update_xaxes(visible=False, constrain="domain")
        fig.update_yaxes(visible=False, scaleanchor="x", constrain="domain", autorange="reversed")
    fig.update_layout(height=height, margin=dict(l=4, r=4, t=34 if title else 6, b=4),
                      title=dict(text=title or "", x=0.02, y=0.98, yanchor="top", font=dict(size=15)),
                      font=_FONT, paper_bgcolor="rgba(0,0,0,0)", plot_bgcolor="rgba(0,0,0,0)",
                      showlegend=legend, dragmode="pan",
                      legend=dict(orientation="h", yanchor="top", y=-0.01, x=0.0))
    return fig


def _add_outline(fig: go.Figure, mask, cell: int, color: str, name: str, width: float = 2.0) -> None:
    """Outline a cell mask in ``color`` over a thin dark halo (visible on any background)."""
    xs, ys = mask_outline(mask, cell)
    fig.add_trace(go.Scatter(x=xs, y=ys, mode="lines", line=dict(color="rgba(0,0,0,0.55)", width=width + 2),
                             hoverinfo="skip", showlegend=False))
    fig.add_trace(go.Scatter(x=xs, y=ys, mode="lines", line=dict(color=color, width=width),
                             hoverinfo="skip", name=name, showlegend=False))


def _cell_axes(rows: int, cols: int, cell: int) -> dict:
    return dict(x0=(cell - 1) / 2, dx=cell, y0=(cell - 1) / 2, dy=cell)


def _cell_customdata(rows: int, cols: int) -> np.ndarray:
    r, c = np.meshgrid(np.arange(rows), np.arange(cols), indexing="ij")
    return np.stack([r, c], axis=-1)


# ------------------------------------------------------------------- plotly builders

def map_figure(image, cell_map, cell: int, opacity: float = 0.6, zmax: float | None = None,
               topk_mask=None, title: str | None = None, height: int = 380,
               colorbar_title: str = "attribution<br>(relative)", lost_mask=None,
               colorbar: bool = True) -> go.Figure:
    """An attribution map as an interactive heatmap over the image.

    Args:
        image: the working image ``(H, W, 3)``.
        cell_map: ``(rows, cols)`` non-negative map; ``cell``: cell side in pixels.
        opacity: heatmap opacity in [0, 1]; ``zmax``: top of the colour scale (shared within
            a comparison; default :func:`display_scale` of this map).
        topk_mask: optional ``(rows, cols)`` boolean mask outlined in orange (the top-k cells).
        lost_mask: optional mask outlined in grey, dashed (top cells an attack pushed out).
        colorbar: draw the colour bar (off where two maps share a row on a narrow screen).
    """
    img = to_uint8(image)
    m = np.asarray(cell_map, dtype=float)
    rows, cols = m.shape
    zmax = display_scale(m) if zmax is None else float(zmax)
    fig = go.Figure()
    fig.add_trace(go.Image(z=img, hoverinfo="skip"))
    fig.add_trace(go.Heatmap(
        z=np.clip(m / zmax, 0, 1), zmin=0, zmax=1, colorscale=OVERLAY_SCALE, opacity=float(opacity),
        customdata=np.dstack([_cell_customdata(rows, cols), m[..., None]]),
        hovertemplate="cell row %{customdata[0]}, col %{customdata[1]}<br>value %{customdata[2]:.3g}"
                      "<extra></extra>",
        colorbar=dict(title=dict(text=colorbar_title, side="right"), thickness=12, len=0.9), showscale=colorbar,
        **_cell_axes(rows, cols, cell)))
    if topk_mask is not None and np.any(topk_mask):
        _add_outline(fig, topk_mask, cell, TOPK, "top-k cells")
    if lost_mask is not None and np.any(lost_mask):
        xs, ys = mask_outline(lost_mask, cell)
        fig.add_trace(go.Scatter(x=xs, y=ys, mode="lines", line=dict(color="rgba(0,0,0,0.7)", width=5),
                                 hoverinfo="skip", showlegend=False))
        fig.add_trace(go.Scatter(x=xs, y=ys, mode="lines", line=dict(color="#DDDDDD", width=3, dash="dot"),
                                 hoverinfo="skip", name="top cells that fell", showlegend=False))
    return _image_layout(fig, height, title, size=img.shape[:2])


def region_figure(image, categories, cell: int, opacity: float = 0.55, title: str | None = None,
                  height: int = 380) -> go.Figure:
    """Categorical cell overlay: 1 = top-k not certified (orange), 2 = certified (blue),
    3 = lost under attack (grey); 0 = nothing drawn.

    Args:
        image: ``(H, W, 3)`` working image; categories: ``(rows, cols)`` ints in 0..3.
    """
    img = to_uint8(image)
    cat = np.asarray(categories, dtype=float)
    rows, cols = cat.shape
    z = np.where(cat > 0, cat, np.nan)
    names = {1: "in top-k, not certified", 2: "certified", 3: "lost under attack"}
    colors = {1: TOPK, 2: CERTIFIED, 3: LOST}
    scale = []
    for v in (1, 2, 3):
        lo, hi = (v - 1) / 3, v / 3
        scale += [[lo, colors[v]], [hi, colors[v]]]
    fig = go.Figure()
    fig.add_trace(go.Image(z=img, hoverinfo="skip"))
    fig.add_trace(go.Heatmap(
        z=z, zmin=0.5, zmax=3.5, colorscale=scale, showscale=False, opacity=float(opacity),
        customdata=_cell_customdata(rows, cols),
        hovertemplate="cell row %{customdata[0]}, col %{customdata[1]}<extra></extra>",
        **_cell_axes(rows, cols, cell)))
    for v in (2, 1, 3):
        if np.any(cat == v):
            _add_outline(fig, cat == v, cell, colors[v], names[v], width=1.5)
            fig.add_trace(go.Scatter(x=[None], y=[None], mode="markers", name=names[v],
                                     marker=dict(symbol="square", size=12, color=colors[v])))
    return _image_layout(fig, height, title, legend=True, size=img.shape[:2])


def radius_figure(image, radii, cell: int, opacity: float = 0.75, zmax: float | None = None,
                  title: str | None = None, height: int = 380, unit: str = "ℓ2",
                  estimate: bool = False) -> go.Figure:
    """Per-cell radius as a heatmap over the image (NaN cells are not drawn); ``estimate``: the
    radii are plug-in estimates, not certificates, and the colour bar says so."""
    img = to_uint8(image)
    r = np.asarray(radii, dtype=float)
    rows, cols = r.shape
    finite = r[np.isfinite(r)]
    top = float(finite.max()) if finite.size and finite.max() > 0 else 1.0
    zmax = top if zmax is None else float(zmax)
    fig = go.Figure()
    fig.add_trace(go.Image(z=img, hoverinfo="skip"))
    fig.add_trace(go.Heatmap(
        z=r, zmin=0, zmax=zmax if zmax > 0 else 1.0, colorscale=COLORSCALE, opacity=float(opacity),
        customdata=_cell_customdata(rows, cols),
        hovertemplate="cell row %{customdata[0]}, col %{customdata[1]}<br>radius %{z:.3g}<extra></extra>",
        colorbar=dict(title=dict(text=(f"estimated radius<br>({unit}, plug-in)" if estimate
                                       else f"certified<br>radius ({unit})"), side="right"), thickness=12, len=0.9),
        **_cell_axes(rows, cols, cell)))
    return _image_layout(fig, height, title, size=img.shape[:2])


def beta_curve_figure(curves: list[dict], title: str | None = None, height: int = 360,
                      unit: str = "ℓ2", log_y: bool = False) -> go.Figure:
    """Certified radius versus β, one line per certificate.

    Args:
        curves: dicts with ``name``, ``beta`` (list), ``radius`` (list) and optional
            ``dash`` (True for comparison-only forms such as the equal-level one, or a plotly
            dash name such as ``"dot"``), ``marker`` (symbol) and ``width``. Curves are drawn
            in order (later ones on top); infinite radii are left out of the line.
    """
    fig = go.Figure()
    for i, c in enumerate(curves):
        dash = c.get("dash")
        dash = dash if isinstance(dash, str) else ("dash" if dash else "solid")
        y = [None if r is None or not np.isfinite(r) else r for r in c["radius"]]
        fig.add_trace(go.Scatter(
            x=list(c["beta"]), y=y, mode="lines+markers", name=c["name"],
            line=dict(color=c.get("color", PALETTE[i % len(PALETTE)]), width=c.get("width", 2.5), dash=dash),
            marker=dict(size=8, symbol=c.get("marker", "circle")), hovertemplate="β = %{x:.2f}<br>radius %{y:.4g}<extra>%{fullData.name}</extra>"))
    fig.update_xaxes(title="β (fraction of the top-k that must stay)", autorange="reversed",
                     gridcolor="#e5e5e5")
    fig.update_yaxes(title=f"certified radius ({unit})", type="log" if log_y else "linear",
                     rangemode="tozero", gridcolor="#e5e5e5")
    fig.update_layout(height=height, margin=dict(l=10, r=10, t=36 if title else 10, b=10),
                      title=dict(text=title or "", x=0.02, font=dict(size=15)), font=_FONT,
                      legend=dict(orientation="h", yanchor="top", y=-0.32, x=0),
                      plot_bgcolor="white", paper_bgcolor="rgba(0,0,0,0)")
    return fig


def bars_figure(categories: list[str], series: list[dict], title: str | None = None,
                height: int = 340, y_title: str = "top-k intersection", y_range=(0, 1.15)) -> go.Figure:
    """Grouped bars: one group per category, one bar per series (``name``, ``values``, ``color``)."""
    fig = go.Figure()
    for i, s in enumerate(series):
        fig.add_trace(go.Bar(x=categories, y=list(s["values"]), name=s["name"],
                             marker_color=s.get("color", PALETTE[i % len(PALETTE)]),
                             text=[f"{v:.2f}" if v is not None and np.isfinite(v) else "" for v in s["values"]],
                             textposition="outside",
                             hovertemplate="%{x}: %{y:.3f}<extra>%{fullData.name}</extra>"))
    fig.update_layout(barmode="group", height=height, font=_FONT,
                      margin=dict(l=10, r=10, t=36 if title else 10, b=10),
                      title=dict(text=title or "", x=0.02, font=dict(size=15)),
                      legend=dict(orientation="h", yanchor="bottom", y=1.0, x=0),
                      plot_bgcolor="white", paper_bgcolor="rgba(0,0,0,0)")
    fig.update_yaxes(title=y_title, range=list(y_range) if y_range else None, gridcolor="#e5e5e5",
                     tickvals=[0, 0.2, 0.4, 0.6, 0.8, 1.0] if y_range and y_range[1] > 1 else None)
    return fig


def lines_figure(series: list[dict], x_title: str, y_title: str, title: str | None = None,
                 height: int = 360, log_x: bool = True, y_range=None) -> go.Figure:
    """Lines over a shared x axis: each series has ``name``, ``x``, ``y`` and optional
    ``color``/``dash``."""
    fig = go.Figure()
    for i, s in enumerate(series):
        fig.add_trace(go.Scatter(x=list(s["x"]), y=list(s["y"]), mode="lines+markers", name=s["name"],
                                 line=dict(color=s.get("color", PALETTE[i % len(PALETTE)]), width=2.5,
                                           dash=s.get("dash", "solid")),
                                 marker=dict(size=7),
                                 hovertemplate="%{x}: %{y:.3f}<extra>%{fullData.name}</extra>"))
    fig.update_xaxes(title=x_title, type="log" if log_x else "linear", gridcolor="#e5e5e5")
    if log_x:
        xs = sorted({float(v) for s in series for v in s["x"]})
        fig.update_xaxes(tickvals=xs, ticktext=[f"{v:g}" for v in xs])
    fig.update_yaxes(title=y_title, range=list(y_range) if y_range else None, gridcolor="#e5e5e5",
                     rangemode="tozero")
    fig.update_layout(height=height, font=_FONT, margin=dict(l=10, r=10, t=36 if title else 10, b=10),
                      title=dict(text=title or "", x=0.02, font=dict(size=15)),
                      legend=dict(orientation="h", yanchor="top", y=-0.32, x=0),
                      plot_bgcolor="white", paper_bgcolor="rgba(0,0,0,0)")
    return fig


def break_radius_figure(rows: list[dict], certified: float, x_title: str, title: str | None = None,
                        height: int = 230, budget: float | None = None) -> go.Figure:
    """Each method's break radius on one (log) budget axis, the certified radius a vertical line.

    ``rows``: ``name``, ``broken`` and ``radius`` (the break radius; when not broken, the
    largest budget tried, drawn as an arrow "not broken up to"), ``color``; values in the
    axis unit (``x_title``); ``budget``: an attack budget drawn as a solid black line."""
    fig = go.Figure()
    names = [r["name"] for r in rows]
    for r in rows:
        text = f"breaks at {r['radius']:.3g}" if r["broken"] else f"not broken up to {r['radius']:.3g}"
        fig.add_trace(go.Scatter(
            x=[r["radius"]], y=[r["name"]], mode="markers+text", text=[text],
            textposition="middle left" if not r["broken"] else "middle right", showlegend=False,
            marker=dict(symbol="x-thin" if r["broken"] else "triangle-right", size=18,
                        color=r.get("color", PALETTE[0]), line=dict(width=3, color=r.get("color", PALETTE[0]))),
            hovertemplate=f"{r['name']}: {text}<extra></extra>"))
    if certified > 0:
        fig.add_vline(x=certified, line=dict(color=CERTIFIED, width=2.5, dash="dash"))
        fig.add_annotation(x=math.log10(certified), y=1.0, yref="paper", yanchor="bottom", showarrow=False,
                           text=f"certified radius {certified:.3g}", font=dict(color=CERTIFIED))
    if budget is not None and budget > 0:
        fig.add_vline(x=budget, line=dict(color="#000000", width=2))
        fig.add_annotation(x=math.log10(budget), y=0.0, yref="paper", yanchor="top", showarrow=False,
                           text=f"your budget {budget:.3g}", font=dict(color="#000000"))
    xs = ([r["radius"] for r in rows if r["radius"] > 0] + ([certified] if certified > 0 else [])
          + ([budget] if budget else []))
    lo, hi = (min(xs), max(xs)) if xs else (0.01, 1.0)
    fig.update_xaxes(title=x_title, type="log", range=[math.log10(lo) - 0.6, math.log10(hi) + 0.6],
                     gridcolor="#e5e5e5", dtick=1, tickfont=dict(size=14))
    fig.update_yaxes(categoryorder="array", categoryarray=names[::-1], automargin=True, tickfont=dict(size=14))
    fig.update_layout(height=height, font=_FONT, margin=dict(l=10, r=10, t=56 if title else 30, b=10),
                      title=dict(text=title or "", x=0.02, font=dict(size=15)),
                      plot_bgcolor="white", paper_bgcolor="rgba(0,0,0,0)")
    return fig


def prediction_figure(predictions: list[tuple[int, str, float]], height: int = 230) -> go.Figure:
    """Horizontal bars of the top classes and their probabilities."""
    names = [f"{name}" for _, name, _ in predictions][::-1]
    probs = [p for *_, p in predictions][::-1]
    fig = go.Figure(go.Bar(x=probs, y=names, orientation="h", marker_color=CERTIFIED,
                           text=[f"{p:.1%}" for p in probs], textposition="outside", cliponaxis=False,
                           hovertemplate="%{y}: %{x:.2%}<extra></extra>"))
    # room right of a 100% bar for its label (it was cut at the plot's edge)
    fig.update_xaxes(range=[0, 1.22], tickvals=[0, 0.25, 0.5, 0.75, 1.0], tickformat=".0%", gridcolor="#e5e5e5",
                     title="probability")
    fig.update_layout(height=height, margin=dict(l=10, r=10, t=10, b=10), font=_FONT,
                      plot_bgcolor="white", paper_bgcolor="rgba(0,0,0,0)")
    return fig


def difference_image(x, x_adv, amplify: float | None = None) -> tuple[np.ndarray, float]:
    """The perturbation ``x_adv − x`` shown as mid-grey ± amplified change.

    Returns the ``(H, W, 3)`` uint8 picture and the amplification used (default: the change
    is scaled so its largest entry reaches the edge of the range).
    """
    a = _hwc(x)
    b = _hwc(x_adv)
    d = b - a
    top = float(np.abs(d).max())
    if amplify is None:
        amplify = 0.5 / top if top > 0 else 1.0
    return to_uint8(np.clip(0.5 + amplify * d, 0, 1)), float(amplify)


def _hwc(x) -> np.ndarray:
    if isinstance(x, torch.Tensor):
        x = x.detach().cpu().numpy()
    arr = np.asarray(x, dtype=float)
    if arr.ndim == 3 and arr.shape[0] in (1, 3) and arr.shape[-1] not in (1, 3):
        arr = np.moveaxis(arr, 0, -1)
    if arr.dtype == np.uint8 or arr.max() > 1.5:
        arr = arr / 255.0
    return arr


# ------------------------------------------------------------- matplotlib PNG exports

def _outline_mpl(ax, mask, cell, color, width=1.6):
    xs, ys = mask_outline(mask, cell)
    ax.plot([np.nan if v is None else v for v in xs], [np.nan if v is None else v for v in ys],
            color=color, linewidth=width)


def maps_png(image, panels: list[dict], cell: int, opacity: float = 0.6, columns: int | None = None,
             suptitle: str | None = None, footer: str | None = None) -> bytes:
    """A grid of panels as one PNG.

    Each panel is a dict with ``title`` and one of: ``map`` (heatmap over the image, with
    optional ``zmax`` and ``topk`` mask), ``categories`` (the overlay of :func:`region_figure`),
    ``radii`` (per-cell radius heatmap) or ``picture`` (an image shown as is).
    """
    from matplotlib.colors import ListedColormap
    img = to_uint8(image)
    h, w = img.shape[:2]
    n = len(panels)
    columns = columns or min(n, 4)
    nrows = math.ceil(n / columns)
    fig = new_figure(3.3 * columns, 3.5 * nrows, layout=None)
    axes = fig.subplots(nrows, columns, squeeze=False)
    for ax in axes.ravel():
        ax.axis("off")
    for ax, p in zip(axes.ravel(), panels):
        ax.set_title(p.get("title", ""), fontsize=10)
        extent = None
        if "picture" in p:
            ax.imshow(to_uint8(p["picture"]))
            continue
        ax.imshow(img)
        if "map" in p or "radii" in p:
            m = np.asarray(p.get("map", p.get("radii")), dtype=float)
            rows, cols = m.shape
            extent = (-0.5, cols * cell - 0.5, rows * cell - 0.5, -0.5)
            if "map" in p:
                from matplotlib import colormaps
                from matplotlib.cm import ScalarMappable
                zmax = p.get("zmax") or display_scale(m)
                v = np.clip(m / zmax, 0, 1)
                rgba = colormaps[CMAP](v)
                # same fade-out of the low end as the interactive figures (OVERLAY_SCALE)
                rgba[..., 3] = opacity * (0.08 + 0.92 * np.minimum(1.0, v / 0.4))
                ax.imshow(rgba, extent=extent, interpolation="nearest")
                im = ScalarMappable(cmap=CMAP)
                im.set_clim(0, 1)
            else:
                finite = m[np.isfinite(m)]
                vmax = p.get("zmax") or (float(finite.max()) if finite.size and finite.max() > 0 else 1.0)
                im = ax.imshow(np.ma.masked_invalid(m), cmap=CMAP, vmin=0, vmax=vmax, alpha=opacity,
                               extent=extent, interpolation="nearest")
            fig.colorbar(im, ax=ax, fraction=0.046, pad=0.02)
            if p.get("topk") is not None:
                _outline_mpl(ax, p["topk"], cell, TOPK)
        elif "categories" in p:
            cat = np.asarray(p["categories"], dtype=float)
            rows, cols = cat.shape
            extent = (-0.5, cols * cell - 0.5, rows * cell - 0.5, -0.5)
            cmap = ListedColormap([TOPK, CERTIFIED, LOST])
            ax.imshow(np.ma.masked_where(cat <= 0, cat), cmap=cmap, vmin=0.5, vmax=3.5, alpha=opacity,
                      extent=extent, interpolation="nearest")
            for v, c in ((1, TOPK), (2, CERTIFIED), (3, LOST)):
                if np.any(cat == v):
                    _outline_mpl(ax, cat == v, cell, c, 1.0)
        ax.set_xlim(-0.5, w - 0.5)
        ax.set_ylim(h - 0.5, -0.5)
    if suptitle:
        fig.suptitle(suptitle, fontsize=12)
    if footer:
        fig.text(0.01, 0.0, footer, fontsize=7, color="#555555", va="top", wrap=True)
    return png_bytes(fig, dpi=130, tight=True)


def curves_png(series: list[dict], x_title: str, y_title: str, title: str | None = None,
               log_x: bool = False, reverse_x: bool = False, footer: str | None = None) -> bytes:
    """Lines (``name``, ``x``, ``y``, optional ``dash``/``color``) as one PNG."""
    fig = new_figure(6.4, 3.8, layout=None)
    ax = fig.subplots()
    for i, s in enumerate(series):
        dash = s.get("dash")
        style = {"dot": ":", "dash": "--", "solid": "-"}.get(dash, "--") if isinstance(dash, str) else \
            ("--" if dash else "-")
        ax.plot(list(s["x"]), [v if v is not None and np.isfinite(v) else np.nan for v in s["y"]],
                marker={"diamond": "D", "x": "x"}.get(s.get("marker"), "o"), label=s["name"],
                color=s.get("color", PALETTE[i % len(PALETTE)]), linestyle=style)
    if log_x:
        ax.set_xscale("log", base=2)
    if reverse_x:
        ax.invert_xaxis()
    ax.set_xlabel(x_title)
    ax.set_ylabel(y_title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    if title:
        ax.set_title(title, fontsize=11)
    if footer:
        fig.text(0.01, -0.02, footer, fontsize=7, color="#555555", va="top", wrap=True)
    return png_bytes(fig, dpi=130, tight=True)


def bars_png(categories: list[str], series: list[dict], y_title: str = "top-k intersection",
             title: str | None = None, footer: str | None = None) -> bytes:
    """Grouped bars as one PNG (same data as :func:`bars_figure`)."""
    fig = new_figure(6.4, 3.8, layout=None)
    ax = fig.subplots()
    n = max(1, len(series))
    width = 0.8 / n
    xs = np.arange(len(categories))
    for i, s in enumerate(series):
        vals = [np.nan if v is None else v for v in s["values"]]
        ax.bar(xs + (i - (n - 1) / 2) * width, vals, width, label=s["name"],
               color=s.get("color", PALETTE[i % len(PALETTE)]))
    ax.set_xticks(xs, categories, rotation=15)
    ax.set_ylabel(y_title)
    ax.set_ylim(0, 1.05)
    ax.grid(axis="y", alpha=0.3)
    ax.legend(fontsize=8)
    if title:
        ax.set_title(title, fontsize=11)
    if footer:
        fig.text(0.01, -0.05, footer, fontsize=7, color="#555555", va="top", wrap=True)
    return png_bytes(fig, dpi=130, tight=True)


def image_png(image) -> bytes:
    """An image (uint8 HWC, float HWC/CHW in [0, 1] or a tensor) as lossless PNG bytes."""
    from PIL import Image
    buf = io.BytesIO()
    Image.fromarray(to_uint8(image)).save(buf, format="PNG")
    return buf.getvalue()
