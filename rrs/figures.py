"""PNG figures of interpretation maps (command line and the app's PNG exports).

Rendering uses matplotlib's object API (``matplotlib.figure.Figure`` drawn by the Agg
canvas), never ``pyplot``: no global figure state, safe from several threads at once.

Conventions (shared with the app's plotly figures, :mod:`ui.plots`): one perceptually uniform colormap for every
attribution heatmap (:data:`CMAP`), side-by-side maps share one colour scale, categorical
overlays use the colour-blind-safe Okabe–Ito colours — blue = certified (or kept under
attack), orange = in the top-k but not certified (or new under attack), grey = lost under
attack — and every figure carries a one-line caption.

Cell maps ``(rows, cols)`` are drawn on the image grid with nearest-neighbour upsampling:
with ``cell`` given, pixel ``(y, x)`` belongs to cell ``(y // cell, x // cell)`` exactly as in
:func:`rrs.attributions.to_cells` (ragged border cells included); without it the grid is
stretched proportionally (e.g. a 7×7 Grad-CAM map on a 224×224 image).
"""
from __future__ import annotations

import io

import numpy as np
import torch
from matplotlib import colormaps, patheffects
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.cm import ScalarMappable
from matplotlib.colors import Normalize, to_rgb
from matplotlib.figure import Figure
from matplotlib.patches import Patch
from PIL import Image

from . import checks

__all__ = ["CMAP", "CERTIFIED_COLOR", "TOPK_COLOR", "LOST_COLOR", "image_array", "map_array",
           "upsample", "blend", "topk_mask", "overlay_png", "comparison_png", "attack_png", "new_figure",
           "png_bytes"]

#: The one colormap for all attribution heatmaps (perceptually uniform, colour-blind safe).
CMAP = "viridis"
#: Okabe–Ito blue / orange / grey for categorical overlays.
CERTIFIED_COLOR = "#0072B2"
TOPK_COLOR = "#E69F00"
LOST_COLOR = "#999999"

_DPI = 100


# ----------------------------------------------------------------------- arrays

def image_array(image) -> np.ndarray:
    """An image as a float ``(H, W, 3)`` array in ``[0, 1]``.

    Accepts a PIL image, an ``rrs.images.LoadedImage``, a ``(3, H, W)``/``(1, 3, H, W)``/
    ``(1, H, W)`` tensor in ``[0, 1]`` or an ``(H, W, 3)`` numpy array (uint8 or float).
    """
    original = getattr(image, "original", None)
    if isinstance(original, Image.Image):
        image = original
    if isinstance(image, Image.Image):
        return np.asarray(image.convert("RGB"), dtype=np.float64) / 255.0
    if isinstance(image, torch.Tensor):
        t = image.detach().double().cpu()
        if t.dim() == 4 and t.shape[0] == 1:
            t = t[0]
        if t.dim() == 3 and t.shape[0] in (1, 3):
            arr = t.expand(3, -1, -1).permute(1, 2, 0).numpy()
        elif t.dim() == 2:
            arr = t[..., None].expand(-1, -1, 3).numpy()
        else:
            raise ValueError(f"image tensor must be (3, H, W), got shape {tuple(image.shape)}")
    else:
        arr = np.asarray(image)
        if arr.ndim == 2:
            arr = np.repeat(arr[..., None], 3, axis=2)
        if arr.ndim != 3 or arr.shape[2] not in (3, 4):
            raise ValueError(f"image array must be (H, W, 3), got shape {arr.shape}")
        arr = arr[..., :3]
        arr = arr / 255.0 if arr.dtype == np.uint8 else arr.astype(np.float64)
    if not np.all(np.isfinite(arr)):
        raise ValueError("image has non-finite values")
    return np.clip(np.ascontiguousarray(arr, dtype=np.float64), 0.0, 1.0)


def map_array(cell_map, name: str = "cell_map") -> np.ndarray:
    """A cell map (tensor or array ``(rows, cols)`` or ``(1, rows, cols)``) as float64."""
    if isinstance(cell_map, torch.Tensor):
        cell_map = cell_map.detach().double().cpu().numpy()
    arr = np.asarray(cell_map, dtype=np.float64)
    if arr.ndim == 3 and arr.shape[0] == 1:
        arr = arr[0]
    if arr.ndim != 2 or arr.size == 0:
        raise ValueError(f"{name} must be a 2-D (rows, cols) map, got shape {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} has non-finite values")
    return arr


def _cell_index(size: int, cells: int, cell: int | None) -> np.ndarray:
    if cell is not None and -(-size // int(cell)) == cells:
        return np.arange(size) // int(cell)
    return (np.arange(size) * cells) // size


def upsample(cell_map, height: int, width: int, cell: int | None = None) -> np.ndarray:
    """Nearest-neighbour upsampling of a ``(rows, cols)`` map to ``(height, width)``.

    With ``cell`` (the cell size used to build the map) pixel ``(y, x)`` takes cell
    ``(y // cell, x // cell)``; otherwise cell ``(y·rows // height, x·cols // width)``.
    """
    m = cell_map if isinstance(cell_map, np.ndarray) else map_array(cell_map)
    rows, cols = m.shape
    return m[np.ix_(_cell_index(height, rows, cell), _cell_index(width, cols, cell))]


def _check_opacity(opacity) -> float:
    return checks.fraction("opacity", opacity, closed_low=True)


def _vmax(maps, vmax=None) -> float:
    if vmax is not None:
        v = float(vmax)
        if not np.isfinite(v) or v <= 0:
            raise ValueError(f"vmax must be a finite number > 0, got {vmax!r}")
        return v
    top = max(float(np.max(m)) for m in maps)
    return top if top > 0 else 1.0


def blend(image, cell_map, opacity: float = 0.5, vmax: float | None = None, cmap: str = CMAP,
          cell: int | None = None) -> np.ndarray:
    """The heatmap over the image: ``(1 − opacity)·image + opacity·cmap(map / vmax)``.

    Args:
        image: see :func:`image_array`; cell_map: ``(rows, cols)``.
        opacity: heatmap weight in ``[0, 1]``; vmax: top of the colour scale (default the
            map's max; the bottom is 0 since maps are non-negative).
    Returns:
        float ``(H, W, 3)`` array in ``[0, 1]``.
    """
    img = image_array(image)
    m = map_array(cell_map)
    o = _check_opacity(opacity)
    up = upsample(m, img.shape[0], img.shape[1], cell)
    colours = colormaps[cmap](Normalize(0.0, _vmax([m], vmax), clip=True)(up))[..., :3]
    return (1.0 - o) * img + o * colours


def topk_mask(cell_map, k: int) -> np.ndarray:
    """Boolean ``(rows, cols)`` mask of the ``k`` largest cells (ties broken by index)."""
    from .metrics import topk_indices

    m = map_array(cell_map)
    mask = np.zeros(m.size, dtype=bool)
    mask[topk_indices(m, int(k))] = True
    return mask.reshape(m.shape)


def _mask(mask, shape, name) -> np.ndarray | None:
    if mask is None:
        return None
    arr = mask.detach().cpu().numpy() if isinstance(mask, torch.Tensor) else np.asarray(mask)
    if arr.ndim == 1 and arr.size == shape[0] * shape[1]:
        arr = arr.reshape(shape)
    if arr.shape != tuple(shape):
        raise ValueError(f"{name} must have the map's shape {tuple(shape)}, got {arr.shape}")
    return arr.astype(bool)


# ------------------------------------------------------------------ drawing parts

def new_figure(width_in: float, height_in: float, layout: str | None = "constrained") -> Figure:
    """A matplotlib figure on its own Agg canvas (the object API, never pyplot: no global state,
    so several threads, e.g. app sessions, can render at once)."""
    fig = Figure(figsize=(width_in, height_in), dpi=_DPI, layout=layout)
    FigureCanvasAgg(fig)
    return fig


def png_bytes(fig: Figure, dpi: int = _DPI, tight: bool = False) -> bytes:
    """The figure as PNG bytes on white (``tight``: cropped to what is drawn)."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, facecolor="white", bbox_inches="tight" if tight else None)
    return buf.getvalue()


def _caption(fig: Figure, text: str | None) -> None:
    if text:
        text = " ".join(str(text).split())
        # One line that fits the figure: shrink the font (a DejaVu character is ~0.55 em wide).
        size = min(9.0, max(5.5, fig.get_figwidth() * 72 * 0.95 / (0.55 * len(text))))
        fig.supxlabel(text, fontsize=size, color="#333333")


def _show(ax, rgb: np.ndarray, title: str | None = None) -> None:
    ax.imshow(rgb, interpolation="nearest")
    ax.set_xticks([])
    ax.set_yticks([])
    for spine in ax.spines.values():
        spine.set_visible(False)
    if title:
        ax.set_title(title, fontsize=10)


def _outline(ax, mask_up: np.ndarray, color: str = "white") -> None:
    if mask_up.any() and not mask_up.all():
        cs = ax.contour(mask_up.astype(float), levels=[0.5], colors=[color], linewidths=1.1)
        cs.set_path_effects([patheffects.withStroke(linewidth=2.2, foreground="black")])


def _paint(rgb: np.ndarray, mask_up: np.ndarray, color: str, alpha: float = 0.85) -> np.ndarray:
    out = rgb.copy()
    out[mask_up] = (1 - alpha) * out[mask_up] + alpha * np.asarray(to_rgb(color))
    return out


def _colorbar(fig, axes, vmax: float, cmap: str, label: str) -> None:
    sm = ScalarMappable(Normalize(0.0, vmax), colormaps[cmap])
    cb = fig.colorbar(sm, ax=axes, shrink=0.85, pad=0.02, fraction=0.05)
    cb.set_label(label, fontsize=8)
    cb.ax.tick_params(labelsize=7)


def _size_for(img: np.ndarray, cols: int, rows: int, panel: float = 3.0) -> tuple[float, float]:
    h, w = img.shape[:2]
    aspect = h / w
    return cols * panel + 0.9, rows * panel * aspect + 0.55 * rows + 0.45


def _normalize(m: np.ndarray, how: str | None) -> np.ndarray:
    if how is None:
        return m
    if how == "max":
        top = float(m.max())
        return m / top if top > 0 else m
    if how == "sum":
        total = float(m.sum())
        return m / total if total > 0 else m
    raise ValueError(f"normalize must be None, 'max' or 'sum', got {how!r}")


# ----------------------------------------------------------------------- figures

def overlay_png(image, cell_map, title: str | None = None, opacity: float = 0.5,
                topk_mask=None, certified_mask=None, vmax: float | None = None,
                cell: int | None = None, caption: str | None = None, cmap: str = CMAP,
                colorbar_label: str = "attribution") -> bytes:
    """One map over its image as PNG bytes.

    Args:
        image: PIL image or ``(3, H, W)`` tensor in ``[0, 1]`` (the model input the map was
            computed on, so cells align).
        cell_map: ``(rows, cols)`` tensor/array (non-negative), or ``None`` for the image only.
        title: panel title; opacity: heatmap weight in ``[0, 1]`` (default 0.5).
        topk_mask: ``(rows, cols)`` bool; outlined in white. With ``certified_mask`` too,
            the top-k cells are filled instead: blue = certified, orange = not certified.
        certified_mask: ``(rows, cols)`` bool of certified cells (blue).
        vmax: top of the colour scale (default the map's max).
        cell: cell size in pixels used to build the map (exact cell alignment; optional).
        caption: one-line caption (a sensible default is used when ``None``).
    """
    img = image_array(image)
    h, w = img.shape[:2]
    m = None if cell_map is None else map_array(cell_map)
    grid = m.shape if m is not None else None
    if grid is None and (topk_mask is not None or certified_mask is not None):
        ref = topk_mask if topk_mask is not None else certified_mask
        grid = np.shape(ref.detach().cpu().numpy() if isinstance(ref, torch.Tensor) else ref)
        if len(grid) != 2:
            raise ValueError(f"masks must be 2-D (rows, cols), got shape {grid}")
    top = _mask(topk_mask, grid, "topk_mask") if grid is not None else None
    cert = _mask(certified_mask, grid, "certified_mask") if grid is not None else None
    o = _check_opacity(opacity)
    scale = _vmax([m], vmax) if m is not None else None
    rgb = blend(img, m, o, scale, cmap, cell) if m is not None else img.copy()

    handles = []
    if cert is not None:
        cert_up = upsample(cert, h, w, cell)
        rgb = _paint(rgb, cert_up, CERTIFIED_COLOR)
        handles.append(Patch(color=CERTIFIED_COLOR, label="certified"))
        if top is not None:
            rgb = _paint(rgb, upsample(top & ~cert, h, w, cell), TOPK_COLOR)
            handles.append(Patch(color=TOPK_COLOR, label="top-k, not certified"))
    fig = new_figure(*_size_for(img, 1, 1, panel=4.2))
    ax = fig.add_subplot()
    _show(ax, rgb, title)
    if top is not None and cert is None:
        _outline(ax, upsample(top, h, w, cell))
    if cert is not None and top is not None:
        _outline(ax, upsample(top, h, w, cell))
    if handles:
        ax.legend(handles=handles, loc="upper center", bbox_to_anchor=(0.5, -0.01), ncol=2,
                  fontsize=8, frameon=False)
    if m is not None:
        _colorbar(fig, ax, scale, cmap, colorbar_label)
    if caption is None:
        parts = []
        if m is not None:
            parts.append("Bright = where the model looked")
        if cert is not None:
            parts.append("blue = certified" + (", orange = top-k but not certified"
                                               if top is not None else " cells"))
        elif top is not None:
            parts.append("outlined = the top-k cells")
        caption = "; ".join(parts) + "." if parts else "The model input."
    _caption(fig, caption)
    return png_bytes(fig)


def comparison_png(image, maps: dict, shared_scale: bool = True, normalize: str | None = None,
                   opacity: float = 0.5, k: int | None = None, cell=None,
                   title: str | None = None, caption: str | None = None, cmap: str = CMAP,
                   vmax: float | None = None) -> bytes:
    """Several maps of one image side by side, one column per method, as PNG bytes.

    Args:
        image: the model input the maps were computed on (PIL or ``(3, H, W)`` tensor).
        maps: ``{label: (rows, cols) map}`` in display order (grids may differ).
        shared_scale: one colour scale ``[0, vmax]`` for all columns (default), else each
            column scaled to its own max.
        normalize: ``None``, ``"max"`` or ``"sum"`` — rescale each map first, so maps in
            different units (gradients vs RRS probabilities) can share a scale.
        k: outline each map's top-``k`` cells (``None``: no outline).
        cell: cell size for exact alignment; an int for all maps or ``{label: int|None}``.
        vmax: top of the shared scale (default the largest value over all maps).
    """
    if not isinstance(maps, dict) or not maps:
        raise ValueError("maps must be a non-empty dict {label: (rows, cols) map}")
    img = image_array(image)
    h, w = img.shape[:2]
    o = _check_opacity(opacity)
    arrays = {str(lbl): _normalize(map_array(m, f"map {lbl!r}"), normalize) for lbl, m in maps.items()}
    shared = _vmax(arrays.values(), vmax) if shared_scale else None
    cells = cell if isinstance(cell, dict) else {lbl: cell for lbl in arrays}
    fig = new_figure(*_size_for(img, len(arrays), 1))
    axes = fig.subplots(1, len(arrays), squeeze=False)[0]
    for ax, (lbl, m) in zip(axes, arrays.items()):
        scale = shared if shared_scale else _vmax([m])
        c = cells.get(lbl)
        _show(ax, blend(img, m, o, scale, cmap, c), lbl)
        if k is not None:
            _outline(ax, upsample(topk_mask(m, min(int(k), m.size)), h, w, c))
        if not shared_scale:
            _colorbar(fig, ax, scale, cmap, "attribution")
    if shared_scale:
        label = {"max": "attribution / its max", "sum": "share of the map's total"}.get(normalize, "attribution")
        _colorbar(fig, list(axes), shared, cmap, label + " (shared scale)")
    if title:
        fig.suptitle(title, fontsize=11)
    if caption is None:
        caption = ("Bright = where each method says the model looked; "
                   + ("all panels share one colour scale" if shared_scale else "each panel has its own scale")
                   + ("; outlined = top-k cells." if k is not None else "."))
    _caption(fig, caption)
    return png_bytes(fig)


def _change_panel(img: np.ndarray, clean_top: np.ndarray, adv_top: np.ndarray, cell) -> np.ndarray:
    h, w = img.shape[:2]
    gray = np.repeat(img.mean(axis=2, keepdims=True), 3, axis=2) * 0.6 + 0.4
    rgb = _paint(gray, upsample(clean_top & adv_top, h, w, cell), CERTIFIED_COLOR, 0.85)
    rgb = _paint(rgb, upsample(clean_top & ~adv_top, h, w, cell), LOST_COLOR, 0.85)
    return _paint(rgb, upsample(adv_top & ~clean_top, h, w, cell), TOPK_COLOR, 0.85)


def attack_png(clean_image, adv_image, clean_maps: dict, adv_maps: dict, k: int | None = None,
               metrics: dict | None = None, amplify: float | None = None,
               normalize: str | None = None, opacity: float = 0.5, cell=None,
               title: str | None = None, caption: str | None = None, cmap: str = CMAP) -> bytes:
    """Clean versus attacked maps, one row per method, as PNG bytes.

    Each row: the clean map over the clean image, the attacked map over the adversarial
    image (same colour scale within the row), the amplified perturbation, and — with ``k`` —
    the change of the top-k set (blue = kept, grey = lost, orange = new).

    Args:
        clean_image: the clean model input (PIL or ``(3, H, W)`` tensor).
        adv_image: the adversarial input, or ``{label: image}`` when each method was attacked
            separately.
        clean_maps, adv_maps: ``{label: (rows, cols) map}`` with the same labels.
        k: top-k size for the change panel, one int or a dict per label (``None``: no panel).
        metrics: optional ``{label: short text}`` shown in the row's attacked-map title
            (e.g. ``"top-k ∩ 0.12, label kept"``).
        amplify: perturbation gain (default: the largest change shown at full contrast).
        normalize: ``None``/``"max"``/``"sum"``, applied to each map before colouring.
        cell: cell size for alignment; int or ``{label: int|None}``.
    """
    if not isinstance(clean_maps, dict) or not clean_maps:
        raise ValueError("clean_maps must be a non-empty dict {label: map}")
    if not isinstance(adv_maps, dict) or set(adv_maps) != set(clean_maps):
        raise ValueError("adv_maps must have the same labels as clean_maps, "
                         f"got {sorted(map(str, adv_maps or {}))} and {sorted(map(str, clean_maps))}")
    clean = image_array(clean_image)
    h, w = clean.shape[:2]
    advs = {}
    for lbl in clean_maps:
        a = image_array(adv_image[lbl] if isinstance(adv_image, dict) else adv_image)
        if a.shape != clean.shape:
            raise ValueError(f"adversarial image for {lbl!r} has shape {a.shape}, clean image {clean.shape}")
        advs[lbl] = a
    o = _check_opacity(opacity)
    if amplify is not None and (not np.isfinite(float(amplify)) or float(amplify) <= 0):
        raise ValueError(f"amplify must be a finite number > 0, got {amplify!r}")
    cells = cell if isinstance(cell, dict) else {lbl: cell for lbl in clean_maps}
    labels = list(clean_maps)
    ncols = 4 if k is not None else 3
    fig = new_figure(*_size_for(clean, ncols, len(labels), panel=2.6))
    axes = fig.subplots(len(labels), ncols, squeeze=False)
    for r, lbl in enumerate(labels):
        cm = _normalize(map_array(clean_maps[lbl], f"clean map {lbl!r}"), normalize)
        am = _normalize(map_array(adv_maps[lbl], f"attacked map {lbl!r}"), normalize)
        if cm.shape != am.shape:
            raise ValueError(f"clean and attacked maps for {lbl!r} differ in shape: {cm.shape} vs {am.shape}")
        scale = _vmax([cm, am])
        c = cells.get(lbl)
        row = axes[r]
        _show(row[0], blend(clean, cm, o, scale, cmap, c), f"{lbl}: clean")
        extra = f"\n{metrics[lbl]}" if metrics and lbl in metrics else ""
        _show(row[1], blend(advs[lbl], am, o, scale, cmap, c), f"{lbl}: attacked{extra}")
        diff = advs[lbl] - clean
        peak = float(np.abs(diff).max())
        gain = float(amplify) if amplify is not None else (0.5 / peak if peak > 0 else 1.0)
        _show(row[2], np.clip(0.5 + gain * diff, 0, 1), f"perturbation ×{gain:.0f}")
        k_row = k.get(lbl) if isinstance(k, dict) else k
        if k_row is not None:
            kk = min(int(k_row), cm.size)
            _show(row[3], _change_panel(clean, topk_mask(cm, kk), topk_mask(am, kk), c), f"top-{kk} change")
        _colorbar(fig, list(row[:2]), scale, cmap, "attribution (row scale)")
    if k is not None:
        handles = [Patch(color=CERTIFIED_COLOR, label="kept"), Patch(color=LOST_COLOR, label="lost"),
                   Patch(color=TOPK_COLOR, label="new")]
        axes[-1][3].legend(handles=handles, loc="upper center", bbox_to_anchor=(0.5, -0.02), ncol=3,
                           fontsize=7, frameon=False)
    if title:
        fig.suptitle(title, fontsize=11)
    if caption is None:
        caption = ("Each row: a method's map before and after the attack (same colour scale), the "
                   "amplified perturbation" + (", and which top-k cells were kept, lost or new." if k is not None else "."))
    _caption(fig, caption)
    return png_bytes(fig)

