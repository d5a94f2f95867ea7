"""The Certify page in a real browser (Debian's chromium) at 1440×900 and 1024×768: a fast-preset
anytime certification on the default model; no horizontal overflow; every figure captioned."""
from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from test_browser import CHART, CHROMIUM, ARGS, LONG, IDLE, browser, button, charts_drawn, idle, nav, server  # noqa: F401

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.timeout(1800)]
SHOTS = Path(os.environ.get("RRS_SCREENSHOTS", "/tmp/rrs_browser"))


@pytest.mark.parametrize("width,height", [(1440, 900), (1024, 768)])
def test_certify_anytime_in_a_real_browser(server, browser, width, height):  # noqa: F811
    context = browser.new_context(viewport={"width": width, "height": height}, accept_downloads=True)
    page = context.new_page()
    page.set_default_timeout(LONG)
    try:
        page.goto(server)
        page.wait_for_selector(IDLE)
        page.get_by_text("Fast preset (class use)").click()
        idle(page)
        nav(page, "Certify")
        assert page.get_by_text(re.compile(r"predicted .* checkpoints at T = ")).count() >= 1
        button(page, "Certify").click()
        page.get_by_text(re.compile(r"Complete: T = ")).wait_for()
        idle(page)
        n = charts_drawn(page, 7)
        # no horizontal overflow
        assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
        # every figure is followed by its caption
        uncaptioned = page.evaluate("""() => [...document.querySelectorAll('[data-testid="stPlotlyChart"]')]
            .filter(c => { const el = c.closest('[data-testid="stElementContainer"]');
                           const next = el && el.nextElementSibling;
                           return !(next && next.querySelector('[data-testid="stCaptionContainer"]')); }).length""")
        assert uncaptioned == 0, f"{uncaptioned} of {n} figures without a caption"
        # metric values are not cut off
        cut = page.evaluate("""() => [...document.querySelectorAll('[data-testid="stMetricValue"] div')]
            .filter(d => d.scrollWidth > d.clientWidth + 1).map(d => d.innerText)""")
        assert not cut, cut
        assert page.get_by_text(re.compile("Whole top-k set:")).count() >= 1
        assert page.get_by_text(re.compile("a different question", re.I)).count() >= 1
        page.screenshot(path=str(SHOTS / f"certify_{width}x{height}.png"))
        # the whole page at the same width (Streamlit scrolls inside its main container)
        tall = page.evaluate("document.querySelector('[data-testid=\"stMain\"]').scrollHeight")
        page.set_viewport_size({"width": width, "height": int(tall) + 50})
        idle(page)
        page.screenshot(path=str(SHOTS / f"certify_{width}x{height}_full.png"))
    finally:
        context.close()
