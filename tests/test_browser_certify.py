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


@pytest.fixture(scope="module")
def one_slot_server():
    """The app with one compute slot (``RRS_MAX_JOBS=1``, as on this 2-core machine anyway)."""
    from bench import load

    with load.serve(model=None, budget=None, env={"RRS_MAX_JOBS": "1"}) as (url, _pid):
        yield url


def test_a_second_certify_waits_in_the_queue_and_starts_when_the_first_stops(one_slot_server, browser):  # noqa: F811
    """Two students press Certify on one server: the second page says it is queued and where;
    pressing Stop on the first keeps its last checkpoint (labelled valid) and frees the slot, and
    the second run starts."""
    contexts = [browser.new_context(viewport={"width": 1440, "height": 900}) for _ in range(2)]
    try:
        a, b = (c.new_page() for c in contexts)
        for page in (a, b):
            page.set_default_timeout(LONG)
            page.goto(one_slot_server)
            page.wait_for_selector(IDLE)
            nav(page, "Certify")
        button(a, "Certify").click()
        a.get_by_text("RRS map so far").first.wait_for()          # A holds the slot, between checkpoints
        button(b, "Certify").click()
        b.get_by_text(re.compile(r"Queued: position 1, ")).first.wait_for()
        assert b.get_by_text("RRS map so far").count() == 0
        page_shot = SHOTS / "certify_queued_1440x900.png"
        b.screenshot(path=str(page_shot))
        button(a, "Stop (keep the result so far)").click()
        a.get_by_text(re.compile(r"Stopped at T = [\d,]+ of [\d,]+, valid")).wait_for()
        # B got the slot: its live map, or its result when the run was over before a look. Once
        # in the suite B showed neither within 600 s (not reproduced alone, under CPU load or with
        # its file): both pages are kept as screenshots when that happens
        try:
            b.get_by_text(re.compile(r"RRS map so far|Complete: T = ")).first.wait_for()
        except Exception:
            for name, page in (("a", a), ("b", b)):
                page.screenshot(path=str(SHOTS / f"certify_queue_failed_{name}.png"), full_page=True)
            raise
        stop = b.get_by_role("button", name="Stop (keep the result so far)")
        if stop.count():
            stop.first.click()
        b.get_by_text(re.compile(r"Stopped at T = |Complete: T = ")).first.wait_for()
        assert b.get_by_text(re.compile(r"Queued: position")).count() == 0
    finally:
        for c in contexts:
            c.close()
