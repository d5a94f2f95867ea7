"""The presenter layout's chart text (:func:`ui.style.larger_text`), on the app's own figures."""
from __future__ import annotations

import numpy as np

from ui import plots as P
from ui import style


def fonts(fig) -> list[float]:
    """Every font size the figure states, resolved as plotly does (unset = the layout font)."""
    full = fig
    base = full.layout.font.size or 12
    sizes = [base, full.layout.legend.font.size or base, full.layout.title.font.size or base]
    for axis in [a for name, a in full.layout.to_plotly_json().items() if name.startswith(("xaxis", "yaxis"))]:
        sizes.append((axis.get("tickfont") or {}).get("size", base))
        sizes.append(((axis.get("title") or {}).get("font") or {}).get("size", base))
    for trace in full.data:
        if "colorbar" in trace:
            sizes.append(trace.colorbar.tickfont.size or base)
    sizes += [a.font.size or base for a in full.layout.annotations]
    return sizes


def test_presenter_charts_have_no_text_below_16_px():
    rng = np.random.default_rng(0)
    picture = (rng.random((32, 32, 3)) * 255).astype(np.uint8)
    figs = [P.map_figure(picture, rng.random((4, 4)), 8, 0.6, title="a map"),
            P.prediction_figure([(0, "cat", 0.9), (1, "dog", 0.1)])]
    for fig in figs:
        assert min(fonts(fig)) < style.PRESENTER_FONT_PX          # as drawn normally: smaller
        big = style.larger_text(fig, style.PRESENTER_FONT_PX)
        assert min(fonts(big)) >= style.PRESENTER_FONT_PX
        assert big.layout.title.font.size >= style.PRESENTER_FONT_PX + 4
        assert min(fonts(fig)) < style.PRESENTER_FONT_PX          # the original is not changed


def test_map_figures_carry_the_exact_picture_as_a_png():
    """The photo under every map is a lossless PNG (``source``: the browser draws it at once;
    an array ``z`` is painted pixel by pixel), aligned with the cells: pixel (0, 0) at 0."""
    import base64
    import io

    from PIL import Image

    rng = np.random.default_rng(1)
    picture = (rng.random((32, 32, 3)) * 255).astype(np.uint8)
    figs = [P.map_figure(picture, rng.random((4, 4)), 8), P.region_figure(picture, rng.integers(0, 4, (4, 4)), 8),
            P.radius_figure(picture, rng.random((4, 4)), 8)]
    for fig in figs:
        image = next(t for t in fig.data if t.type == "image")
        assert image.z is None and image.source.startswith("data:image/png;base64,")
        decoded = np.asarray(Image.open(io.BytesIO(base64.b64decode(image.source.split(",", 1)[1]))).convert("RGB"))
        np.testing.assert_array_equal(decoded, picture)
        assert (image.x0 or 0) == 0 and (image.dx or 1) == 1 and (image.y0 or 0) == 0 and (image.dy or 1) == 1
        heat = next(t for t in fig.data if t.type == "heatmap")
        assert heat.x0 == (8 - 1) / 2 and heat.dx == 8          # cell centres in the picture's pixel units
