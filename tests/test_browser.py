"""The app in a real browser: Playwright driving Debian's chromium against ``streamlit run``.

Every page is visited with the real default model (fast preset, 112×112 working
resolution, tiny budgets): an image is uploaded, sliders are moved, the plotly figures must
be drawn, a short attack runs, and exports are downloaded and their contents checked. Two
browser contexts at once must each get results for their own image.

Needs ``/usr/bin/chromium`` (``apt-get install chromium``; ``.ci/run`` installs it) and the
``playwright`` Python package; never ``playwright install``.
"""
from __future__ import annotations

import csv
import io
import json
import os
import re
from pathlib import Path

import numpy as np
import pytest
from playwright.sync_api import TimeoutError as PlaywrightTimeout
from PIL import Image

from rrs.images import load_image
from rrs.models import load_model
from rrs.settings import MapSettings
from rrs.smoothing import interpretation_map

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.timeout(1800)]

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--disable-gpu", "--disable-quic", "--no-sandbox", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]
LONG = 600_000          # ms: the real model on a shared 2-core machine can be slow
IDLE = '[data-testid="stApp"][data-test-script-state="notRunning"]'
CHART = '[data-testid="stPlotlyChart"] .js-plotly-plot .main-svg'
SHOTS = Path(os.environ.get("RRS_SCREENSHOTS", "/tmp/rrs_browser"))


@pytest.fixture(scope="module")
def server():
    """A real ``streamlit run`` of this checkout on 127.0.0.1 (bench/load.py's ``serve``)."""
    assert Path(CHROMIUM).exists(), "Debian chromium is missing: apt-get install -y chromium"
    from bench import load

    log = open(SHOTS.parent / "rrs_streamlit_browser.log", "w") if SHOTS.parent.exists() else None
    with load.serve(model=None, budget=None, log=log) as (url, _pid):
        yield url


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright
    SHOTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield b
        b.close()


def _open(browser, url: str):
    context = browser.new_context(viewport={"width": 1400, "height": 2800}, accept_downloads=True)
    page = context.new_page()
    page.set_default_timeout(LONG)
    page.goto(url)
    page.wait_for_selector(IDLE)
    return context, page


def idle(page) -> None:
    """Wait until the script run started by the last interaction has finished."""
    page.wait_for_timeout(400)
    page.wait_for_selector(IDLE)


def nav_link(page, name: str):
    return page.get_by_test_id("stSidebar").get_by_test_id("stPageLink-NavLink").filter(has_text=name)


def nav(page, name: str) -> None:
    nav_link(page, name).click()
    heading = "Robust interpretation maps" if name == "Home" else name
    page.wait_for_selector(f'h1:has-text("{heading}")')
    idle(page)


def choose(page, label: str, option_pattern: str) -> None:
    """Pick an option of a select box. A rerun that starts just after the box opened (on a
    loaded machine the previous interaction's rerun can start late) closes the list again,
    so the box is reopened until the option shows."""
    option = page.get_by_role("option", name=re.compile(option_pattern)).first
    for attempt in range(5):
        page.get_by_role("combobox", name=label).click()
        try:
            option.wait_for(state="visible", timeout=30_000)
            break
        except PlaywrightTimeout:
            page.keyboard.press("Escape")
            idle(page)
    option.click()
    idle(page)


def slider_keys(page, label: str, *keys: str) -> str:
    """Press keys on a slider; return its shown value."""
    s = page.get_by_role("slider", name=label)
    s.focus()
    for k in keys:
        page.keyboard.press(k)
    idle(page)
    return s.get_attribute("aria-valuetext") or s.get_attribute("aria-valuenow")


def button(page, label: str):
    return page.get_by_test_id("stButton").get_by_role("button", name=label)


def charts_drawn(page, at_least: int) -> int:
    page.wait_for_selector(CHART, state="visible")
    page.wait_for_function(f"document.querySelectorAll('{CHART}').length >= {at_least}")
    idle(page)
    return page.locator(CHART).count()


def download(page, label: str) -> bytes:
    with page.expect_download() as info:
        page.get_by_test_id("stDownloadButton").get_by_role("button", name=label).click()
    return Path(info.value.path()).read_bytes()


def metric_value(page, label: str) -> str:
    box = page.get_by_test_id("stMetric").filter(has_text=label).first
    return box.get_by_test_id("stMetricValue").inner_text()


def upload(page, path: Path) -> None:
    page.get_by_test_id("stSidebar").get_by_test_id("stFileUploader").first.locator(
        'input[type="file"]').set_input_files(str(path))
    page.get_by_text(f"Using your upload {path.name}").wait_for()
    idle(page)


def fast_setup(page) -> None:
    """Fast preset and 112×112 working resolution (the real default model stays)."""
    page.get_by_text("Fast preset (class use)").click()
    idle(page)
    choose(page, "Working resolution", "112×112")


def _image(path: Path, seed: int, size=(180, 150)) -> Path:
    rng = np.random.default_rng(seed)
    arr = np.zeros((size[1], size[0], 3), np.uint8)
    arr[:] = rng.integers(0, 255, 3)
    y, x = np.mgrid[:size[1], :size[0]]
    blob = (x - size[0] / 2) ** 2 + (y - size[1] / 2) ** 2 < (min(size) / 3) ** 2
    arr[blob] = rng.integers(0, 255, 3)
    Image.fromarray(arr).save(path)
    return path


def shot(page, name: str) -> None:
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


# ------------------------------------------------------------------------ deep links

def test_a_deep_link_gets_the_shared_sidebar_and_keeps_settings(server, browser):
    """The module's first request is a page URL, not Home: the page draws the shared
    sidebar itself, and a sidebar setting made there survives moving to another page."""
    context = browser.new_context(viewport={"width": 1400, "height": 1800})
    page = context.new_page()
    page.set_default_timeout(LONG)
    try:
        page.goto(f"{server}/Learn")
        page.wait_for_selector('h1:has-text("Learn")')
        page.wait_for_selector(IDLE)
        assert page.get_by_test_id("stSidebar").get_by_role("combobox", name="Sample image").count() == 1
        assert nav_link(page, "Home").count() == 1
        choose(page, "Sample image", "^chelsea$")
        nav(page, "Certify")
        assert page.url.split("?")[0].endswith("/Certify")        # the query names image, model, session
        picker = page.get_by_test_id("stSidebar").get_by_role("combobox", name="Sample image")
        assert picker.input_value() == "chelsea"
    finally:
        context.close()


# ---------------------------------------------------------------------------- the tour

def test_every_page_in_a_real_browser(server, browser, tmp_path):
    context, page = _open(browser, server)
    try:
        fast_setup(page)
        img = _image(tmp_path / "my_blob.png", seed=1)
        upload(page, img)
        charts_drawn(page, 1)                          # Home: top-5 prediction chart
        assert metric_value(page, "Prediction")
        shot(page, "home")

        # ------------------------------------------------------------------ Explain
        nav(page, "Explain")
        charts_drawn(page, 2)                          # raw and smoothed maps
        assert "my_blob.png" in page.get_by_text(re.compile("image \\*?my_blob.png")).first.inner_text()
        before = page.get_by_test_id("stMetric").filter(has_text="Map size").first.inner_text()
        value = slider_keys(page, "Top-k: share of cells", "ArrowRight", "ArrowRight", "ArrowRight",
                            "ArrowRight", "ArrowRight")
        assert value and value.startswith("10")
        page.wait_for_function(
            "b => ![...document.querySelectorAll('[data-testid=stMetric]')].some("
            "m => m.innerText.includes('Map size') && m.innerText === b)", arg=before)
        charts_drawn(page, 2)
        doc = json.loads(download(page, "JSON (settings + results)"))
        assert doc["page"] == "explain" and doc["settings"]["k"] == pytest.approx(0.10)
        assert doc["provenance"]["image"] == "my_blob.png" and doc["provenance"]["working_size"] == 112
        rows, cols = doc["results"]["grid"]
        assert np.array(doc["results"]["map"]).shape == (rows, cols) == (7, 7)
        # the exported settings read back recompute the exported map
        settings = MapSettings.from_dict(doc["settings"])
        assert (settings.method, settings.samples, settings.cell) == ("rrs", 8, 16)
        model = load_model(doc["provenance"]["model"])
        x = model.prepare(load_image(img.read_bytes(), name=img.name), 112)
        again = interpretation_map(model, x, settings).numpy()
        assert np.allclose(again, np.array(doc["results"]["map"]), rtol=1e-4, atol=1e-6)
        png = download(page, "PNG figure")
        assert png[:8] == b"\x89PNG\r\n\x1a\n"
        shot(page, "explain")

        # ------------------------------------------------------------------ Certify
        nav(page, "Certify")
        slider_keys(page, "Samples T", "Home")                          # T = 64
        button(page, "Certify").click()
        charts_drawn(page, 7)
        slider_keys(page, re.compile("Radius L to draw"), "ArrowRight", "ArrowRight")
        charts_drawn(page, 7)
        text = download(page, "CSV numbers").decode()
        assert text.startswith("# settings:")
        data = [r for r in csv.DictReader(io.StringIO("\n".join(
            line for line in text.splitlines() if not line.startswith("#")))) if r["table"] == "certificate"]
        kinds = {r["certificate"] for r in data}
        assert any("not a certificate" in k for k in kinds) and any("RDP" in k for k in kinds)
        assert all(float(r["radius"]) >= 0 for r in data)
        shot(page, "certify")

        # ------------------------------------------------------------------- Attack
        nav(page, "Attack")
        page.get_by_role("button", name="Remove SmoothGrad").click()
        idle(page)
        page.get_by_text("Attack strength and seed").click()             # steps and EOT are in an expander
        slider_keys(page, "Attack steps", "Home", "ArrowRight")          # 2 steps
        slider_keys(page, "EOT samples per step", "Home")               # 1 sample
        slider_keys(page, "Map samples T", "Home", "ArrowRight")         # T = 2
        button(page, "Run attack").click()
        charts_drawn(page, 6)                          # 2 × (clean, attacked) + bars + budget-vs-radius scale
        page.get_by_text("Methods compared").wait_for()
        adv = Image.open(io.BytesIO(download(page, re.compile("Adversarial image"))))
        assert adv.size == (112, 112)
        doc = json.loads(download(page, "JSON (settings + results)"))
        assert set(doc["results"]["methods"]) == {"vanilla", "rrs"}
        for r in doc["results"]["methods"].values():
            assert 0 <= r["attacked_topk_intersection"] <= 1 and 0 <= r["no_attack_floor"] <= 1
            assert r["linf_255"] <= 4 * (1 + 1e-5)
        shot(page, "attack")

        # ------------------------------------------------------------------ Compare
        nav(page, "Compare")
        page.get_by_text(re.compile("No stored results yet|Stored evaluation results")).first.wait_for()
        page.get_by_role("button", name="Remove SmoothGrad").click()
        idle(page)
        for t in ("Remove 4", "Remove 8"):
            page.get_by_role("button", name=t, exact=True).click()
            idle(page)
        page.get_by_text("Attack strength and seed").click()
        slider_keys(page, "Attack steps", "Home")
        slider_keys(page, "EOT samples", "Home")
        button(page, "Run comparison").click()
        charts_drawn(page, 2)
        text = download(page, "CSV numbers").decode()
        rows = list(csv.DictReader(io.StringIO("\n".join(l for l in text.splitlines() if not l.startswith("#")))))
        assert {r["T"] for r in rows} == {"1", "2"}
        shot(page, "compare")

        # -------------------------------------------------------------------- Learn
        nav(page, "Learn")
        button(page, "Ask the model").click()
        charts_drawn(page, 1)
        button(page, "Draw the map").click()
        charts_drawn(page, 2)
        shot(page, "learn")
    finally:
        context.close()


def test_two_sessions_at_once_get_their_own_results(server, browser, tmp_path):
    a_ctx, a = _open(browser, server)
    b_ctx, b = _open(browser, server)
    try:
        for page, seed in ((a, 2), (b, 3)):
            fast_setup(page)
            upload(page, _image(tmp_path / f"session_{seed}.png", seed=seed, size=(160 + seed, 140)))
        # start both Explain runs before waiting for either, so the server serves them together
        for page in (a, b):
            nav_link(page, "Explain").click()
        docs = {}
        for page, seed in ((a, 2), (b, 3)):
            page.wait_for_selector('h1:has-text("Explain")')
            idle(page)
            charts_drawn(page, 2)
            docs[seed] = json.loads(download(page, "JSON (settings + results)"))
        assert docs[2]["provenance"]["image"] == "session_2.png"
        assert docs[3]["provenance"]["image"] == "session_3.png"
        assert docs[2]["provenance"]["image_sha256_16"] != docs[3]["provenance"]["image_sha256_16"]
        assert docs[2]["results"]["map"] != docs[3]["results"]["map"]
        # each session still shows its own image after the other one moved on
        nav(b, "Home")
        nav(a, "Certify")
        assert "session_2.png" in a.get_by_test_id("stSidebar").inner_text()
        assert "session_3.png" in b.get_by_test_id("stSidebar").inner_text()
    finally:
        a_ctx.close()
        b_ctx.close()
