"""The Streamlit app driven headless with ``streamlit.testing.v1.AppTest``.

Most tests use the tiny shapes CNN (milliseconds per gradient) so every page, widget and
error path is exercised quickly; the tests marked ``slow`` use the real default model.
Numbers shown by the pages are checked against the library computed directly.
"""
from __future__ import annotations

import io
import json
import math
import re
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from streamlit.testing.v1 import AppTest

from ui import plots as P
from rrs.images import load_image, load_sample, to_tensor
from rrs.methods import METHODS
from rrs.settings import L1, L2, LINF, AttackSettings, CertifySettings, MapSettings
from ui import budgets as B
from ui import compute as C
from ui import export as E

APP = str(Path(__file__).resolve().parent.parent / "app.py")
TIMEOUT = 300


def new_app(model: str = "tiny", **state) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    at.session_state["sb_model"] = model
    for k, v in state.items():
        at.session_state[k] = v
    return at.run()


def ok(at: AppTest) -> AppTest:
    assert not at.exception, [e.value for e in at.exception]
    return at


def metrics(at: AppTest) -> dict:
    return {m.label: m for m in at.metric}


def number(text: str) -> float:
    m = re.search(r"[-+]?\d*\.?\d+(?:[eE][-+]?\d+)?", str(text).replace(",", ""))
    assert m, f"no number in {text!r}"
    return float(m.group())


def image_uploader(at: AppTest):
    """The sidebar's image uploader (a new, empty widget with a new key after every file)."""
    ups = [u for u in at.file_uploader if str(u.key).startswith("sb_upload")]
    assert len(ups) == 1, [u.key for u in at.file_uploader]
    return ups[0]


def charts(at: AppTest) -> int:
    return len(at.get("plotly_chart"))


def png_bytes(array: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(array).save(buf, format="PNG")
    return buf.getvalue()


def shapes_png(index: int = 0, size: int = 64) -> bytes:
    from rrs.tiny import make_shapes
    images, _ = make_shapes(index + 1, size=size, generator=torch.Generator().manual_seed(3))
    return png_bytes(C.working_image(images[index]))


def tiny_model():
    from rrs.models import load_tiny
    return load_tiny("cpu")


# ------------------------------------------------------------------------------- home

@pytest.mark.slow
def test_home_real_model_predicts_the_sample():
    at = ok(new_app(model="efficientnet-lite0"))
    m = metrics(at)
    assert m["Prediction"].value in ("espresso", "cup")
    conf = number(m["Confidence"].value)
    assert 0 < conf <= 100
    assert charts(at) == 1                       # the top-5 bar chart
    # the gallery offers every bundled sample
    labels = {b.label for b in at.button}
    assert {"coffee", "chelsea", "astronaut"} <= labels


def test_gallery_button_switches_the_image_and_the_sidebar_follows():
    at = ok(new_app())
    at.button(key="home_use_chelsea").click().run()
    ok(at)
    assert at.selectbox(key="sb_sample").value == "chelsea"
    model = tiny_model()
    x = to_tensor(load_sample("chelsea"), 32)
    expected = C.compute_map(model, x, MapSettings(method="vanilla"))
    assert metrics(at)["Prediction"].value == expected.label


# ---------------------------------------------------------------------------- explain

@pytest.mark.parametrize("method", list(METHODS))
def test_explain_every_method_shows_maps_and_numbers(method):
    at = new_app()
    at.switch_page("pages/1_Explain.py").run()
    at.select_slider(key="explain_samples").set_value(4).run()   # while RRS (smoothed) is selected
    at.selectbox(key="explain_method").set_value(method).run()
    ok(at)
    m = metrics(at)
    smoothed = METHODS[method].smoothed
    assert charts(at) == (2 if smoothed else 1)
    assert any("computed now in" in c.value or "from cache" in c.value for c in at.caption)
    rows, cols = (int(v) for v in m["Map size"].value.split("×"))
    k = int(number(m["Map size"].delta))          # "top k of n cells"
    assert 1 <= k < rows * cols
    # the page shows what the library computes for the same settings
    model = tiny_model()
    x = to_tensor(load_sample("coffee"), 32)
    cell = 8 if method == "gradcam" else at.select_slider(key="explain_cell").value   # Grad-CAM: no cell choice
    settings = MapSettings(method=method, samples=4, cell=cell)
    expected = C.compute_map(model, x, settings)
    assert (rows, cols) == expected.grid and k == expected.k
    if smoothed:
        shown = float(m["Raw agreement"].value)
        assert 0.0 <= shown <= 1.0
        assert shown == pytest.approx(expected.raw_agreement(), abs=0.005)
    assert {b.label for b in at.download_button} == {"PNG figure", "CSV numbers", "JSON (settings + results)"}
    # the heatmap covers the whole picture (Grad-CAM's feature cells span several pixels)
    assert expected.pixel_cell * rows >= 32 and (expected.pixel_cell - 1) * rows < 32


def test_explain_settings_persist_across_pages_and_cache_makes_return_instant():
    at = new_app()
    at.switch_page("pages/1_Explain.py").run()
    at.slider(key="explain_sigma").set_value(0.3).run()
    at.select_slider(key="explain_cell").set_value(4).run()
    ok(at)
    first = next(re.search(r"in (\d+\.\d+) s", c.value).group(1) for c in at.caption if "computed now in" in c.value)
    at.switch_page("pages/2_Certify.py").run()
    ok(at)
    assert at.title[0].value == "Certify"
    at.switch_page("pages/1_Explain.py").run()
    ok(at)
    assert at.slider(key="explain_sigma").value == pytest.approx(0.3)
    assert at.select_slider(key="explain_cell").value == 4
    # same settings → the cached result, with the original timing, is shown again and says so
    assert any(f"from cache (computed earlier in {first} s)" in c.value for c in at.caption)
    assert metrics(at)["Map size"].value == "8×8"


def test_fast_preset_changes_page_defaults():
    at = new_app()
    at.toggle(key="sb_fast").set_value(True).run()
    at.switch_page("pages/1_Explain.py").run()
    ok(at)
    assert at.select_slider(key="explain_samples").value == 8
    at.switch_page("pages/3_Attack.py").run()
    assert at.slider(key="attack_steps").value == 5
    assert at.slider(key="attack_eot").value == 2
    at.toggle(key="sb_fast").set_value(False).run()
    assert at.slider(key="attack_steps").value == 10


# ---------------------------------------------------------------------------- uploads

def test_upload_becomes_the_image_everywhere():
    data = shapes_png(0)
    at = new_app()
    image_uploader(at).set_value(("circle.png", data, "image/png")).run()
    ok(at)
    assert any("Using your upload" in c.value and "circle.png" in c.value for c in at.sidebar.caption)
    model = tiny_model()
    x = to_tensor(load_image(data, name="circle.png"), 32)
    expected = C.compute_map(model, x, MapSettings(method="vanilla"))
    assert metrics(at)["Prediction"].value == expected.label
    # the upload stays the image on another page
    at.switch_page("pages/1_Explain.py").run()
    ok(at)
    assert metrics(at)["Prediction"].value == expected.label
    assert any("circle.png" in c.value for c in at.caption)
    # and one click brings the sample back
    at.button(key="sb_back_to_sample").click().run()
    ok(at)
    assert not any("Using your upload" in c.value for c in at.sidebar.caption)
    assert any("*coffee*" in c.value for c in at.caption)


@pytest.mark.parametrize("name,data,needle", [
    ("notes.png", b"this is not an image at all" * 10, "not"),
    ("tiny.png", None, "small"),
    ("bomb.png", "bomb", "decompression bomb"),
    ("empty.png", b"", "empty"),
])
def test_bad_uploads_give_a_clear_message_and_keep_the_session(name, data, needle):
    if data is None:
        data = png_bytes(np.zeros((4, 4, 3), np.uint8))
    elif data == "bomb":
        # a ~60-byte PNG declaring 100000 × 100000 pixels (a decompression bomb)
        import struct
        import zlib

        def chunk(tag, body):
            return struct.pack(">I", len(body)) + tag + body + struct.pack(">I", zlib.crc32(tag + body) & 0xFFFFFFFF)
        data = (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 100_000, 100_000, 8, 2, 0, 0, 0))
                + chunk(b"IDAT", zlib.compress(b"\x00" * 16)) + chunk(b"IEND", b""))
    at = new_app()
    before = metrics(at)["Prediction"].value
    image_uploader(at).set_value((name, data, "image/png")).run()
    ok(at)
    errors = [e.value for e in at.error]
    assert errors, "a bad upload must show an error in the page"
    assert any(needle in e.lower() for e in errors), errors
    assert all("Traceback" not in e for e in errors)
    # the previous image is still in use and the app keeps working
    assert metrics(at)["Prediction"].value == before
    at.switch_page("pages/1_Explain.py").run()
    ok(at)
    assert charts(at) >= 1
    # a good upload afterwards clears the error
    image_uploader(at).set_value(("ok.png", shapes_png(1), "image/png")).run()
    ok(at)
    assert not at.error


def test_wrong_model_file_is_refused_and_the_model_stays():
    at = new_app()
    at.selectbox(key="sb_user_arch").set_value("tiny").run()
    at.file_uploader(key="sb_user_file").set_value(("weights.pth", png_bytes(np.zeros((8, 8, 3), np.uint8)),
                                                     "application/octet-stream")).run()
    ok(at)
    errors = [e.value for e in at.error]
    assert errors and any("png" in e.lower() or "state_dict" in e.lower() for e in errors), errors
    assert at.selectbox(key="sb_model").value == "tiny"


def test_user_weights_for_the_tiny_architecture_load_and_are_used():
    from safetensors.torch import save
    model = tiny_model()
    data = save({k: v.contiguous() for k, v in model.net.state_dict().items()})
    at = new_app()
    at.selectbox(key="sb_user_arch").set_value("tiny").run()
    at.file_uploader(key="sb_user_file").set_value(("mine.safetensors", data, "application/octet-stream")).run()
    ok(at)
    assert not at.error
    assert at.selectbox(key="sb_model").value.startswith("user:")
    assert "mine.safetensors" in at.selectbox(key="sb_model").format_func(at.selectbox(key="sb_model").value)
    # same weights → same prediction as the bundled tiny model
    x = to_tensor(load_sample("coffee"), 32)
    assert metrics(at)["Prediction"].value == C.compute_map(model, x, MapSettings(method="vanilla")).label


# ---------------------------------------------------------------------------- certify

def _certify_run(at, samples, cell=None):
    at.select_slider(key="certify_samples").set_value(samples).run()
    if cell is not None:
        at.select_slider(key="certify_cell").set_value(cell).run()
    at.button(key="certify_run").click().run()
    return ok(at)


def _anytime(settings, norm=L2, scheme="selection"):
    from rrs.workflows import certify as WC
    cert = CertifySettings(norm=norm, eta=0.05, betas=C.CERTIFY_BETAS, scheme=scheme)
    return WC.certify_run(tiny_model(), to_tensor(load_sample("coffee"), 32), settings, cert)


def test_certify_runs_and_matches_the_library():
    at = new_app()
    at.switch_page("pages/2_Certify.py").run()
    ok(at)
    assert at.info and "Press **Certify**" in at.info[0].value
    _certify_run(at, 512, cell=4)
    assert charts(at) == 8          # 2 regions, 2 radius maps, 2 stays-important, radius-vs-β, growth
    m = metrics(at)
    expected = _anytime(MapSettings(method="rrs", sigma=0.25, samples=512, cell=4, k=0.1))
    rdp_fin, rdp_plug = number(m["RDP exact (ℓ2)"].value), number(m["RDP exact (ℓ2)"].delta)
    assert rdp_plug == pytest.approx(expected.radius("rdp_plugin", 1.0), rel=2e-3, abs=1e-12)
    assert rdp_fin == pytest.approx(expected.radius("rdp_finite", 1.0), rel=2e-3, abs=1e-12)
    k = expected.sampled.k
    cert_fin, cert_plug = int(number(m["Cells certified at L"].value)), int(number(m["Cells certified at L"].delta))
    assert m["Cells certified at L"].value.endswith(f"of {k}")
    assert 0 <= cert_fin <= k and 0 <= cert_plug <= k
    # the finite-sample guarantee shown is the best of RDP and Gaussian-CDF
    assert number(m["Guaranteed (ℓ2)"].value) == pytest.approx(expected.guaranteed(1.0), rel=2e-3, abs=1e-12)
    table = at.table[0].value
    assert any("not a certificate" in str(c) for c in table["certificate"])
    texts = [w.value for w in at.warning] + [s.value for s in at.success]
    assert any("Whole top-k set:" in t and "Per cell:" in t for t in texts)


def test_certify_norms_and_suggestion_buttons():
    at = new_app()
    at.switch_page("pages/2_Certify.py").run()
    _certify_run(at, 64)
    radii = {}
    assert at.radio(key="certify_norm").options == ["ℓ1", "ℓ2", "ℓ∞"]
    for norm in (L2, LINF, L1):
        at.radio(key="certify_norm").set_value(norm).run()
        ok(at)
        radii[norm] = metrics(at)[f"RDP exact ({'1/255, ℓ∞' if norm == LINF else norm.label})"].delta
    # ℓ∞ radii are shown in 1/255 steps: ℓ2 radius / √N × 255 (N = 3·32·32)
    assert number(radii[LINF]) == pytest.approx(number(radii[L2]) / math.sqrt(3 * 32 * 32) * 255, rel=1e-2,
                                                abs=1e-9)
    more = [b for b in at.button if b.key == "certify_try_samples"]
    if more:                                     # offered only when predicted to help
        more[0].click().run()
        ok(at)
        assert at.select_slider(key="certify_samples").value == 256
        assert charts(at) >= 7                   # it ran right away with the new budget


def test_certify_sample_budget_stops_at_the_device_cap():
    at = new_app()
    at.switch_page("pages/2_Certify.py").run()
    assert max(at.select_slider(key="certify_samples").options) == f"{B.MAX_SAMPLES['cpu']}"


def test_certify_with_laplace_noise_has_no_gaussian_cdf():
    at = new_app()
    at.switch_page("pages/2_Certify.py").run()
    at.radio(key="certify_noise").set_value("laplace").run()
    _certify_run(at, 128)
    m = metrics(at)
    assert m["Gaussian-CDF"].value == "n/a"
    plug = number(m["RDP exact (ℓ2)"].delta)
    expected = _anytime(MapSettings(method="rrs", sigma=0.25, samples=128, cell=8, k=0.1, noise="laplace"))
    assert plug == pytest.approx(expected.radius("rdp_plugin", 1.0), rel=2e-3, abs=1e-12)
    assert at.selectbox(key="certify_kind").options == ["RDP (exact)"]


# ----------------------------------------------------------------------------- attack

def test_attack_page_runs_and_reports_floor_and_labels():
    at = new_app()
    at.switch_page("pages/3_Attack.py").run()
    at.multiselect(key="attack_methods").set_value(["vanilla", "rrs"]).run()
    at.slider(key="attack_steps").set_value(3).run()
    at.slider(key="attack_eot").set_value(1).run()
    at.select_slider(key="attack_samples").set_value(4).run()
    at.select_slider(key="attack_cell").set_value(4).run()
    at.button(key="attack_run").click().run()
    ok(at)
    assert charts(at) == 2 * 2 + 2               # clean/attacked per method + bar chart + budget-vs-radius scale
    inter = [m for m in at.metric if m.label == "Top-k intersection"]
    assert len(inter) == 2
    for m in inter:
        assert 0.0 <= float(m.value) <= 1.0
        assert "vs floor" in m.delta
    table = at.dataframe[0].value
    assert len(table) == 2
    assert list(table["floor"])[0] == pytest.approx(1.0)      # vanilla gradients are deterministic
    assert all(0.0 <= v <= 1.0 for v in table["attacked"])
    assert all(v <= 4 * (1 + 1e-5) for v in table["ℓ∞ (/255)"])   # the budget (float32) is respected
    badges = [m.value for m in at.markdown if "label kept" in m.value or "label changed" in m.value]
    assert len(badges) == 2
    assert (list(table["label kept"]).count(True) == sum("label kept" in b for b in badges))
    assert {"PNG figure", "Adversarial image", "CSV numbers", "JSON (settings + results)"} <= \
        {b.label for b in at.download_button}


def test_attack_page_numbers_are_the_librarys_with_the_floor_at_seeds_s_and_s_plus_1():
    from rrs.attacks import attack
    from rrs.floor import no_attack_floor
    at = new_app()
    at.switch_page("pages/3_Attack.py").run()
    at.multiselect(key="attack_methods").set_value(["rrs"]).run()
    at.slider(key="attack_steps").set_value(2).run()
    at.slider(key="attack_eot").set_value(1).run()
    at.select_slider(key="attack_samples").set_value(4).run()
    at.select_slider(key="attack_cell").set_value(4).run()
    at.slider(key="attack_budget_linf").set_value(3).run()      # ε = 3/255
    at.number_input(key="attack_seed").set_value(2).run()
    at.button(key="attack_run").click().run()
    ok(at)
    row = at.dataframe[0].value.iloc[0]
    model = tiny_model()
    x = to_tensor(load_sample("coffee"), 32)
    settings = MapSettings(method="rrs", sigma=0.15, samples=4, cell=4, k=0.05, seed=2)
    floor = no_attack_floor(model, x, settings)
    assert floor.seeds == (2, 3)
    assert row["floor"] == pytest.approx(floor.topk_intersection)
    expected = attack(model, x, settings, AttackSettings(epsilon=3 / 255, steps=2, eot=1, seed=2))
    assert expected.floor.topk_intersection == pytest.approx(floor.topk_intersection)
    assert row["attacked"] == pytest.approx(expected.topk_intersection)
    assert row["ℓ∞ (/255)"] == pytest.approx(expected.linf * 255) and row["ℓ∞ (/255)"] <= 3 * (1 + 1e-5)
    # an ℓ2 budget is in pixel units, with its per-value equivalent next to it
    at.radio(key="attack_norm").set_value(L2).run()
    ok(at)
    assert at.slider(key="attack_budget_l2").value == 1.0
    assert any("per value if spread evenly" in c.value for c in at.caption)


def test_attack_that_cannot_keep_the_label_says_so():
    at = new_app(sb_sample="brick")
    at.switch_page("pages/3_Attack.py").run()
    at.multiselect(key="attack_methods").set_value(["vanilla"]).run()
    at.slider(key="attack_budget_linf").set_value(32).run()
    at.slider(key="attack_steps").set_value(1).run()
    at.select_slider(key="attack_cell").set_value(4).run()
    at.button(key="attack_run").click().run()
    ok(at)
    warnings = [w.value for w in at.warning]
    assert any("label" in w for w in warnings), warnings
    assert any("label changed" in m.value for m in at.markdown)
    assert list(at.dataframe[0].value["label kept"]) == [False]
    # the session keeps working
    at.switch_page("pages/1_Explain.py").run()
    ok(at)
    assert charts(at) == 2


def test_attack_needs_a_method():
    at = new_app()
    at.switch_page("pages/3_Attack.py").run()
    at.multiselect(key="attack_methods").set_value([]).run()
    ok(at)
    assert any("at least one method" in i.value for i in at.info)


# ---------------------------------------------------------------------------- compare

def test_compare_page_live_and_stored_results():
    at = new_app()
    at.switch_page("pages/4_Compare.py").run()
    ok(at)
    stored = [i.value for i in at.info if "stored" in i.value.lower() or "make eval" in i.value]
    try:
        from rrs.study import load_summary
        has_summary = load_summary() is not None
    except ImportError:
        has_summary = False
    if not has_summary:
        assert stored and "make eval" in stored[0]
    at.multiselect(key="compare_methods").set_value(["vanilla", "rrs"]).run()
    at.multiselect(key="compare_ts").set_value([1, 4]).run()
    at.slider(key="compare_steps").set_value(1).run()
    at.slider(key="compare_eot").set_value(1).run()
    at.select_slider(key="compare_cell").set_value(4).run()
    at.button(key="compare_run").click().run()
    ok(at)
    assert charts(at) >= 2
    table = at.table[0].value          # a table that wraps, not the data grid that scrolled sideways at 1024 px
    assert set(table["Noise samples T"]) == {1, 4}
    assert set(table["Method"]) == {"Vanilla gradient", "RRS (Rényi-Robust-Smooth)"}
    assert all(0 <= v <= 1 for v in table["Top-k kept under attack"])
    assert all(0 <= v <= 1 for v in table["No-attack floor"])


def test_compare_shows_stored_evaluation_results(tmp_path, monkeypatch):
    from rrs.study.stats import KEYS
    rows = []
    for method in ("rrs", "smoothgrad"):
        for t in (1, 4, 16):
            rows.append({**{k: None for k in KEYS}, "experiment": "robustness", "method": method, "cell": 16,
                         "T": t, "norm": "linf", "budget": 4 / 255, "attack": "standard", "metric": "intersection",
                         "mean": 0.1 * t ** 0.5 if method == "rrs" else 0.05 * t ** 0.5, "ci_low": 0.0,
                         "ci_high": 1.0, "n": 12})
            rows.append({**rows[-1], "metric": "floor_intersection", "mean": 1.0})   # another measure between
    import pandas as pd
    pd.DataFrame(rows).to_csv(tmp_path / "summary.csv", index=False)
    monkeypatch.setenv("RRS_RESULTS", str(tmp_path))
    at = new_app()
    at.switch_page("pages/4_Compare.py").run()
    ok(at)
    assert not any("No stored results" in i.value for i in at.info)
    assert at.selectbox(key="compare_stored_experiment").value == "robustness"
    assert charts(at) == 1                       # the stored-results plot (live results need a run)
    table = at.table[0].value
    assert len(table) == 6 and set(table["Method"]) == {"RRS (Rényi-Robust-Smooth)", "SmoothGrad"}
    # what is the same in every row is said once under the table, not repeated in a column
    assert {"Experiment", "Cell size (px)", "Attack budget", "Measure"}.isdisjoint(table.columns)
    assert {"Noise samples T", "Mean"} <= set(table.columns)
    assert list(table.index) == list(range(len(table)))     # no row numbers of the filtered summary
    assert any(c.startswith("In every row: Experiment robustness; ") and "Cell size (px) 16;" in c
               and "Attack budget ℓ∞ 4/255" in c for c in (c.value for c in at.caption)), [c.value for c in at.caption]


# ------------------------------------------------------------------------------ learn

def test_learn_page_every_step_runs():
    at = new_app()
    at.switch_page("pages/5_Learn.py").run()
    ok(at)
    assert [h.value for h in at.subheader][:7] == [
        "1. The model looks at a picture", "2. Where did it look?", "3. A tiny change moves the map",
        "4. Smoothing: average over noisy copies", "5. Does smoothing resist the attack?",
        "6. A guarantee: the certificate", "7. The same change, two maps"]
    assert charts(at) == 0
    expected = [1, 2, 4, 5, 6, 7, 9]           # figures after each step (steps 3 and 7 draw two)
    for i, n in zip(range(1, 8), expected):
        at.button(key=f"learn_run{i}").click().run()
        ok(at)
        assert charts(at) == n, i
    assert any("intersection" in m.label for m in at.metric)


# ------------------------------------------------------------------------ real model

@pytest.mark.slow
def test_real_model_explain_and_certify_at_low_resolution():
    at = new_app(model="efficientnet-lite0")
    at.selectbox(key="sb_size").set_value(112).run()
    at.switch_page("pages/1_Explain.py").run()
    at.select_slider(key="explain_samples").set_value(4).run()
    at.select_slider(key="explain_cell").set_value(16).run()
    ok(at)
    m = metrics(at)
    assert m["Map size"].value == "7×7"
    assert 0.0 <= float(m["Raw agreement"].value) <= 1.0
    assert charts(at) == 2
    at.switch_page("pages/2_Certify.py").run()
    _certify_run(at, 64, cell=16)
    assert charts(at) >= 7
    fin, plug = number(metrics(at)["RDP exact (ℓ2)"].value), number(metrics(at)["RDP exact (ℓ2)"].delta)
    assert 0 <= fin <= plug


# --------------------------------------------------------------- plain helpers (no UI)

def test_mask_outline_draws_exactly_the_region_boundary():
    mask = np.zeros((5, 6), bool)
    mask[1, 1:3] = True
    mask[2, 2] = True
    xs, ys = P.mask_outline(mask, 4)
    segs = set()
    for i in range(0, len(xs), 3):
        assert xs[i + 2] is None and ys[i + 2] is None
        (x0, y0), (x1, y1) = (xs[i], ys[i]), (xs[i + 1], ys[i + 1])
        assert x0 == x1 or y0 == y1              # axis-aligned only
        # split runs into unit edges of one cell side
        if y0 == y1:
            for a in np.arange(min(x0, x1), max(x0, x1), 4):
                segs.add(("h", float(a), float(y0)))
        else:
            for a in np.arange(min(y0, y1), max(y0, y1), 4):
                segs.add(("v", float(x0), float(a)))
    # brute force: every cell side between a masked and an unmasked (or outside) cell
    pad = np.pad(mask, 1)
    rows, cols = mask.shape
    want = set()
    for r in range(rows + 1):
        for c in range(cols):
            if pad[r, c + 1] != pad[r + 1, c + 1]:
                want.add(("h", c * 4 - 0.5, r * 4 - 0.5))
    for r in range(rows):
        for c in range(cols + 1):
            if pad[r + 1, c] != pad[r + 1, c + 1]:
                want.add(("v", c * 4 - 0.5, r * 4 - 0.5))
    assert segs == want


def test_exports_hold_settings_and_numbers_to_recompute():
    model = tiny_model()
    x = to_tensor(load_sample("coffee"), 32)
    settings = MapSettings(method="rrs", samples=4, cell=8, k=0.1, seed=7, noise="laplace", sigma=0.2)
    r = C.compute_map(model, x, settings)
    doc = json.loads(E.to_json("explain", r.settings, {**r.summary(), "map": r.map}, {"image": "coffee"}))
    assert doc["page"] == "explain" and doc["settings"]["seed"] == 7 and doc["settings"]["k"] == 0.1
    text = E.to_csv(r.rows(), header={"settings": r.settings})
    lines = text.splitlines()
    assert lines[0].startswith("# settings:") and lines[1] == "row,col,value,raw,in_topk"
    assert json.loads(lines[0].split(":", 1)[1]) == doc["settings"]
    assert len(lines) == 2 + r.n
    assert sum(line.endswith("True") for line in lines[2:]) == r.k
    # non-finite numbers are written as strings JSON can hold
    assert json.loads(E.to_json("x", {}, {"radius": float("inf")}, {}))["results"]["radius"] == "inf"


def test_json_export_settings_round_trip_and_reproduce_the_map():
    """The Explain page's JSON export: its settings read back with MapSettings.from_dict
    recompute exactly the exported map (and the settings the page shows)."""
    at = new_app()
    at.switch_page("pages/1_Explain.py").run()
    at.select_slider(key="explain_samples").set_value(4).run()
    at.slider(key="explain_k").set_value(12.0).run()
    at.number_input(key="explain_seed").set_value(5).run()
    at.radio(key="explain_noise").set_value("laplace").run()
    at.selectbox(key="explain_scoring").set_value("exponential").run()
    ok(at)
    model = tiny_model()
    x = to_tensor(load_sample("coffee"), 32)
    page_settings = MapSettings(method="rrs", noise="laplace", sigma=0.15, samples=4,
                                cell=at.select_slider(key="explain_cell").value, k=0.12, scoring="exponential",
                                scoring_param=0.05, seed=5)
    shown = C.compute_map(model, x, page_settings)
    assert int(number(metrics(at)["Map size"].delta)) == shown.k
    assert float(metrics(at)["Raw agreement"].value) == pytest.approx(shown.raw_agreement(), abs=0.005)
    doc = json.loads(E.to_json("explain", shown.settings, {**shown.summary(), "map": shown.map}, {}))
    again = MapSettings.from_dict(doc["settings"])
    assert again == page_settings
    assert np.array_equal(C.compute_map(model, x, again).map, np.array(doc["results"]["map"]))
    # a different seed gives a different map: the comparison above can fail
    assert not np.array_equal(C.compute_map(model, x, again.replace(seed=6)).map, shown.map)


def test_budget_caps_and_radius_formatting():
    model = tiny_model()
    assert B.plan_samples(100, model) == (100, "")
    capped, msg = B.plan_samples(10**7, model)
    assert capped == B.MAX_SAMPLES["cpu"] and "capped" in msg
    with pytest.raises(B.BudgetError):
        B.plan_samples(0, model)
    x224 = torch.zeros(3, 224, 224)
    eot, msg = B.plan_eot(1000, x224, model, memory_bytes=2 ** 40)
    assert eot == B.MAX_EOT["cpu"] and "GB" in msg
    eot, msg = B.plan_eot(1000, x224, model)          # this machine's available memory
    assert 1 <= eot <= B.MAX_EOT["cpu"] and "GB" in msg
    # the cap reads what the OS can hand out (MemAvailable: free pages plus reclaimable
    # cache), which after large file reads is far more than the free pages alone
    meminfo = dict(line.split(":", 1) for line in Path("/proc/meminfo").read_text().splitlines())
    available = int(meminfo["MemAvailable"].split()[0]) * 1024
    assert B.available_host_memory() == pytest.approx(available, rel=0.05)
    # with 1 GiB free, at most half of it is used: two 250 MB samples at 224×224
    assert B.plan_eot(10, x224, model, memory_bytes=2 ** 30)[0] == 2
    assert B.plan_eot(10, torch.zeros(3, 112, 112), model, memory_bytes=2 ** 30)[0] == 8
    assert B.plan_eot(3, x224, model, memory_bytes=2 ** 34) == (3, "")
    from rrs.workflows.advice import radius_text
    assert radius_text(2 / 255, LINF) == "2/255 (ℓ∞)"
    assert radius_text(0.5, L2, 3 * 224 * 224) == "0.5 (ℓ2) ≈ 0.33/255 per value"
    assert radius_text(0.5, L1) == "0.5 (ℓ1)"


def test_noise_preview_uses_the_maps_sigma_for_both_families():
    """σ is the standard deviation for Gaussian and Laplace noise alike (Laplace scale σ/√2)."""
    x = torch.full((3, 64, 64), 0.5)
    for noise in ("gaussian", "laplace"):
        pic = C.noise_preview(x, 0.1, noise, seed=1).astype(float) / 255
        assert pic.std() == pytest.approx(0.1, rel=0.05), noise


def test_compute_layer_and_library_run_without_streamlit():
    """ui.compute/budgets/export/plots are plain Python (usable from scripts); rrs never imports the app."""
    import subprocess
    import sys
    code = ("import sys, rrs, rrs.attacks, rrs.figures, ui.plots, ui.compute, ui.budgets, ui.export; "
            "bad = sorted(m for m in sys.modules if m.split('.')[0] == 'streamlit' or m.startswith('ui.') "
            "and m not in ('ui.compute', 'ui.budgets', 'ui.export', 'ui.plots') and not m.startswith('ui.plots.')); "
            "print(bad); assert not bad, bad")
    out = subprocess.run([sys.executable, "-c", code], cwd=Path(APP).parent, capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr


def test_the_server_heap_is_frozen_once_at_the_first_model_load():
    """ui.caching.settle_heap: Streamlit's full collection after each script run then walks only
    what the scripts made (30 sessions finishing together had held the GIL for seconds)."""
    import gc

    from ui import caching

    was = dict(caching._HEAP)
    caching._HEAP["frozen"] = False
    gc.unfreeze()                                   # AppTests in this process may have frozen it
    try:
        assert gc.get_freeze_count() == 0
        assert caching.settle_heap() is True
        assert gc.get_freeze_count() > 10_000       # torch, streamlit, numpy: all frozen
        assert caching.settle_heap() is False       # once per process
    finally:
        gc.unfreeze()
        caching._HEAP.update(was)
