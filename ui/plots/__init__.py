"""Figures for the app: interactive plotly builders and matplotlib PNG renderers.

One look everywhere (shared with the PNG figures, :mod:`rrs.figures`): a single perceptually uniform sequential
colormap (viridis) for every attribution or radius heatmap, shared colour scales inside a
comparison, and colour-blind-safe categorical overlays from the Okabe–Ito palette
(blue = certified, orange = in the top-k but not certified, grey = lost under attack).

Maps are ``(rows, cols)`` arrays over cells of ``cell × cell`` pixels of the working image;
images are ``(H, W, 3)`` uint8 arrays (or ``(3, H, W)`` float tensors in ``[0, 1]``).
Nothing here imports streamlit; PNG renderers return bytes (matplotlib, Agg backend), so
exports work without a browser or kaleido.

One module per concern, every public name re-exported here (``from ui import plots as P``;
``P.map_figure``): :mod:`ui.plots.style` (colours, scales, shared helpers), :mod:`ui.plots.maps`
(figures over the image), :mod:`ui.plots.charts` (curves, bars, break radii, predictions) and
:mod:`ui.plots.png` (the matplotlib PNG exports).
"""
from __future__ import annotations

from .charts import bars_figure, beta_curve_figure, break_radius_figure, lines_figure, prediction_figure
from .maps import difference_image, map_figure, radius_figure, region_figure
from .png import bars_png, curves_png, image_png, maps_png
from .style import (_FONT, CERTIFIED, CMAP, COLORSCALE, LOST, OVERLAY_SCALE, PALETTE, TOPK,  # noqa: F401 (_FONT: ui.story)
                    display_scale, mask_outline, to_uint8)

__all__ = ["COLORSCALE", "OVERLAY_SCALE", "CMAP", "CERTIFIED", "TOPK", "LOST", "PALETTE", "to_uint8",
           "display_scale", "mask_outline", "map_figure", "region_figure", "radius_figure",
           "beta_curve_figure", "bars_figure", "lines_figure", "prediction_figure",
           "difference_image", "break_radius_figure", "maps_png", "curves_png", "bars_png", "image_png"]
