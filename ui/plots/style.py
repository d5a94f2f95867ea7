"""The app's one look, shared by every figure (and with :mod:`rrs.figures`): the sequential
colormap (viridis) and its fading overlay scale, the Okabe–Ito colours (blue = certified,
orange = in the top-k but not certified, grey = lost under attack), the chart font, and the
helpers every builder uses: images as uint8, one shared colour scale for a group of maps, the
outline of a cell mask."""
from __future__ import annotations

import numpy as np
import torch

__all__ = ["COLORSCALE", "OVERLAY_SCALE", "CMAP", "CERTIFIED", "TOPK", "LOST", "PALETTE", "to_uint8",
           "display_scale", "mask_outline"]

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
