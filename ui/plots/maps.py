"""Figures over the image (plotly): an attribution map over the photo with its top-k and lost
cells outlined, the certified/top-k/lost regions, per-cell radii, and an attack's
perturbation as a difference image. Maps are ``(rows, cols)`` arrays over cells of
``cell × cell`` pixels of the working image."""
from __future__ import annotations

import base64
import io

import numpy as np
import plotly.graph_objects as go
import torch
from PIL import Image

from .style import _FONT, CERTIFIED, COLORSCALE, LOST, OVERLAY_SCALE, TOPK, display_scale, mask_outline, to_uint8

__all__ = ["map_figure", "region_figure", "radius_figure", "difference_image"]


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


def _picture(img: np.ndarray) -> go.Image:
    """The photo under a map as a PNG (``source``), not as an array of pixel values (``z``):
    the browser decodes a PNG at once, while plotly.js paints a ``z`` image pixel by pixel
    and its JSON is about 10× larger."""
    buf = io.BytesIO()
    Image.fromarray(img).save(buf, format="PNG", compress_level=1)
    return go.Image(source="data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii"),
                    hoverinfo="skip")


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
    fig.add_trace(_picture(img))
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
    fig.add_trace(_picture(img))
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
    fig.add_trace(_picture(img))
    fig.add_trace(go.Heatmap(
        z=r, zmin=0, zmax=zmax if zmax > 0 else 1.0, colorscale=COLORSCALE, opacity=float(opacity),
        customdata=_cell_customdata(rows, cols),
        hovertemplate="cell row %{customdata[0]}, col %{customdata[1]}<br>radius %{z:.3g}<extra></extra>",
        colorbar=dict(title=dict(text=(f"estimated radius<br>({unit}, plug-in)" if estimate
                                       else f"certified<br>radius ({unit})"), side="right"), thickness=12, len=0.9),
        **_cell_axes(rows, cols, cell)))
    return _image_layout(fig, height, title, size=img.shape[:2])


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
