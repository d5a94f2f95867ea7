"""rrs.figures: valid PNGs whose pixels follow the maps, shared colour scales, no pyplot."""
from __future__ import annotations

import io
import subprocess
import sys

import numpy as np
import pytest
import torch
from matplotlib import colormaps
from PIL import Image

from rrs import figures as F

GRAY = torch.full((3, 64, 64), 0.5)


def _decode(png: bytes) -> np.ndarray:
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    im = Image.open(io.BytesIO(png))
    im.load()
    assert im.format == "PNG" and 150 <= im.size[0] <= 3000 and 150 <= im.size[1] <= 3000
    return np.asarray(im.convert("RGB")).astype(int)


def _hot(rows, cols, r, c, value=1.0):
    m = torch.zeros(rows, cols)
    m[r, c] = value
    return m


def _diff_centroid(a: np.ndarray, b: np.ndarray):
    assert a.shape == b.shape
    ys, xs = np.nonzero(np.abs(a - b).sum(axis=2) > 30)
    assert ys.size > 0, "the two figures should differ"
    return ys.mean(), xs.mean(), ys.size


# ------------------------------------------------------------------ array helpers

def test_blend_is_the_colormap_over_the_image():
    m = _hot(4, 4, 1, 2, 3.0)
    out = F.blend(GRAY, m, opacity=0.4)
    assert out.shape == (64, 64, 3)
    hot = 0.6 * 0.5 + 0.4 * np.asarray(colormaps[F.CMAP](1.0)[:3])
    cold = 0.6 * 0.5 + 0.4 * np.asarray(colormaps[F.CMAP](0.0)[:3])
    np.testing.assert_allclose(out[16:32, 32:48], np.broadcast_to(hot, (16, 16, 3)))
    np.testing.assert_allclose(out[:16, :32], np.broadcast_to(cold, (16, 32, 3)))
    # A larger vmax dims the hot cell to the middle of the scale.
    mid = 0.6 * 0.5 + 0.4 * np.asarray(colormaps[F.CMAP](0.5)[:3])
    np.testing.assert_allclose(F.blend(GRAY, m, 0.4, vmax=6.0)[20, 40], mid)


def test_upsample_matches_cell_layout():
    m = np.arange(9.0).reshape(3, 3)
    up = F.upsample(m, 10, 10, cell=4)  # ragged: cells of 4, 4, 2 pixels
    assert up[3, 3] == 0 and up[4, 4] == 4 and up[9, 9] == 8 and up[0, 8] == 2
    cam = F.upsample(np.arange(49.0).reshape(7, 7), 224, 224)  # proportional: 32-px blocks
    assert cam[31, 31] == 0 and cam[32, 32] == 8 and cam[223, 223] == 48


def test_image_inputs_agree():
    pil = Image.new("RGB", (20, 10), (255, 0, 0))
    t = torch.zeros(3, 10, 20)
    t[0] = 1
    np.testing.assert_allclose(F.image_array(pil), F.image_array(t))
    np.testing.assert_allclose(F.image_array(t[None]), F.image_array(np.asarray(pil)))


def test_topk_mask():
    m = torch.tensor([[0.1, 0.9], [0.5, 0.2]])
    np.testing.assert_array_equal(F.topk_mask(m, 2), [[False, True], [True, False]])


# ------------------------------------------------------------------------- PNGs

def test_overlay_hot_cell_is_drawn_where_it_is():
    base = _decode(F.overlay_png(GRAY, torch.zeros(4, 4), vmax=1.0))
    top_left = _decode(F.overlay_png(GRAY, _hot(4, 4, 0, 0), vmax=1.0))
    bottom_right = _decode(F.overlay_png(GRAY, _hot(4, 4, 3, 3), vmax=1.0))
    y1, x1, n1 = _diff_centroid(top_left, base)
    y2, x2, n2 = _diff_centroid(bottom_right, base)
    assert y1 < y2 and x1 < x2
    assert abs(n1 - n2) < 0.1 * n1  # both are one cell (1/16 of the panel)
    # The hot cell has the top colour of the scale blended at opacity 0.5.
    want = (0.5 * 0.5 + 0.5 * np.asarray(colormaps[F.CMAP](1.0)[:3])) * 255
    assert np.abs(top_left[int(y1), int(x1)] - want).max() <= 3


def test_overlay_masks_colour_cells_and_validate():
    m = torch.rand(4, 4, generator=torch.Generator().manual_seed(0))
    top = torch.zeros(4, 4, dtype=torch.bool)
    top[0, 0] = top[3, 3] = True
    cert = torch.zeros(4, 4, dtype=torch.bool)
    cert[0, 0] = True
    png = _decode(F.overlay_png(GRAY, None, topk_mask=top, certified_mask=cert))
    blue = np.asarray([0x00, 0x72, 0xB2])
    orange = np.asarray([0xE6, 0x9F, 0x00])
    blue_px = np.nonzero(np.abs(png - (0.15 * 127.5 + 0.85 * blue)).max(axis=2) <= 3)
    orange_px = np.nonzero(np.abs(png - (0.15 * 127.5 + 0.85 * orange)).max(axis=2) <= 3)
    assert blue_px[0].size > 100 and orange_px[0].size > 100
    assert blue_px[0].mean() < orange_px[0].mean()  # certified cell on top, the other below
    with pytest.raises(ValueError, match="topk_mask must have the map's shape"):
        F.overlay_png(GRAY, m, topk_mask=torch.ones(3, 3, dtype=torch.bool))
    with pytest.raises(ValueError, match="non-finite"):
        F.overlay_png(GRAY, torch.tensor([[float("nan"), 1.0], [0.0, 0.0]]))
    with pytest.raises(ValueError, match="opacity"):
        F.overlay_png(GRAY, m, opacity=1.5)
    with pytest.raises(ValueError, match="2-D"):
        F.overlay_png(GRAY, torch.zeros(2, 2, 2))


def test_comparison_shared_scale():
    m = _hot(4, 4, 1, 1, 2.0)
    labels = ("A", "B")
    half = F.comparison_png(GRAY, dict(zip(labels, (m, 0.5 * m))), shared_scale=True)
    same = F.comparison_png(GRAY, dict(zip(labels, (m, m))), shared_scale=True)
    y, x, _ = _diff_centroid(_decode(half), _decode(same))
    width = _decode(half).shape[1]
    assert x > width / 2, "only the right column (the halved map) may change colour"
    # Pixels at the top colour of the scale: with a shared scale only the left hot cell has
    # it; with separate scales both columns' hot cells do.
    top = (0.5 * 0.5 + 0.5 * np.asarray(colormaps[F.CMAP](1.0)[:3])) * 255

    def top_coloured_columns(png):
        ys, xs = np.nonzero(np.abs(_decode(png) - top).max(axis=2) <= 3)
        return xs

    shared = top_coloured_columns(half)
    own = top_coloured_columns(F.comparison_png(GRAY, dict(zip(labels, (m, 0.5 * m))), shared_scale=False))
    assert shared.size > 100 and (shared < width / 2).all()
    assert abs((own < width / 2).sum() - (own >= width / 2).sum()) < 0.15 * own.size
    assert (own >= width / 2).sum() > 100
    # normalize="max" puts maps of different units on one scale: then halving is invisible.
    n_half = _decode(F.comparison_png(GRAY, dict(zip(labels, (m, 0.5 * m))), normalize="max"))
    n_same = _decode(F.comparison_png(GRAY, dict(zip(labels, (m, m))), normalize="max"))
    assert np.array_equal(n_half, n_same)
    with pytest.raises(ValueError, match="non-empty dict"):
        F.comparison_png(GRAY, {})


def test_comparison_width_grows_with_methods():
    maps = {f"m{i}": torch.rand(8, 8) for i in range(3)}
    one = _decode(F.comparison_png(GRAY, dict(list(maps.items())[:1]), k=5))
    three = _decode(F.comparison_png(GRAY, maps, k=5))
    assert three.shape[1] > 2 * one.shape[1] * 0.8


def test_attack_png_rows_and_difference():
    clean = GRAY.clone()
    adv = clean.clone()
    adv[:, :8, :8] += 8 / 255  # perturb only the top-left corner
    cm = {"vanilla": _hot(4, 4, 0, 0), "rrs": _hot(4, 4, 1, 1)}
    am = {"vanilla": _hot(4, 4, 3, 3), "rrs": _hot(4, 4, 1, 1)}
    one = _decode(F.attack_png(clean, adv, {"vanilla": cm["vanilla"]}, {"vanilla": am["vanilla"]}, k=1))
    two = _decode(F.attack_png(clean, adv, cm, am, k=1, metrics={"vanilla": "top-k ∩ 0.00"}))
    assert two.shape[0] > 1.6 * one.shape[0] * 0.9 and two.shape[1] == one.shape[1]
    # The amplified difference panel shows the perturbed corner: compare with no perturbation.
    none = _decode(F.attack_png(clean, clean, {"vanilla": cm["vanilla"]}, {"vanilla": am["vanilla"]}, k=1))
    y, x, _ = _diff_centroid(one, none)
    assert one.shape[1] * 0.4 < x < one.shape[1] * 0.8  # third of four columns
    with pytest.raises(ValueError, match="same labels"):
        F.attack_png(clean, adv, cm, {"vanilla": am["vanilla"]})
    with pytest.raises(ValueError, match="shape"):
        F.attack_png(clean, torch.zeros(3, 32, 32), cm, am)


def test_attack_png_per_method_adversarial_images():
    clean = GRAY.clone()
    adv = {"a": (clean + 0.02).clamp(0, 1), "b": (clean - 0.02).clamp(0, 1)}
    maps = {"a": _hot(4, 4, 0, 0), "b": _hot(4, 4, 0, 0)}
    _decode(F.attack_png(clean, adv, maps, maps))


def test_no_pyplot_imported():
    code = ("import sys, torch; from rrs import figures as F; "
            "F.comparison_png(torch.rand(3, 32, 32), {'a': torch.rand(4, 4)}); "
            "print('matplotlib.pyplot' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "False"
