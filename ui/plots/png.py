"""The app's PNG exports (matplotlib, Agg backend, through :mod:`rrs.figures`): panels of maps,
curves, bars and the image itself, as bytes, so exports work without a browser or kaleido."""
from __future__ import annotations

import io
import math

import numpy as np

from rrs.figures import new_figure, png_bytes

from .style import CERTIFIED, CMAP, LOST, PALETTE, TOPK, display_scale, mask_outline, to_uint8

__all__ = ["maps_png", "curves_png", "bars_png", "image_png"]


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
