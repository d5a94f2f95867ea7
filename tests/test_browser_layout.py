"""Every page on a projector (1024×768) and a laptop (1440×900), in Debian's chromium, on the
tiny model (issue 19, item 3), and a session that survives a reload (item 1).

Measured on every page after its main action ran: the width of every figure (images and
plotly charts, ≥ 240 px), horizontal overflow of the document and of every table, cut
button labels, and in Learn's presenter layout the smallest chart text (≥ 16 px). Every
page is photographed at both sizes (``RRS_LAYOUT_SHOTS``, default /tmp/rrs_browser/layout).
"""
from __future__ import annotations

import contextlib
import os
import re
from pathlib import Path

import pytest

from test_browser import CHROMIUM, ARGS, IDLE, browser, button, idle, nav  # noqa: F401
from test_browser_story import LAYOUT_JS

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.timeout(1800)]
SHOTS = Path(os.environ.get("RRS_LAYOUT_SHOTS", "/tmp/rrs_browser/layout"))
WAIT = 300_000
MIN_FIGURE = 240
MIN_PRESENTER_FONT = 16
SIZES = [(1440, 900), (1024, 768)]

MEASURE = """() => {
  const main = document.querySelector('[data-testid="stMain"]');
  const vis = el => { const r = el.getBoundingClientRect(); return r.width > 0 && r.height > 0; };
  // figures: images and charts (a gallery thumbnail above its pick button is a button)
  const thumb = e => { const col = e.closest('[data-testid="stColumn"]');
                       return col && col.querySelector('[data-testid="stButton"]') && e.tagName === 'IMG'; };
  const figs = [...document.querySelectorAll('[data-testid="stMain"] [data-testid="stImage"] img,'
                + '[data-testid="stMain"] [data-testid="stPlotlyChart"]')].filter(vis).filter(e => !thumb(e))
      .map(e => Math.round(e.getBoundingClientRect().width));
  // a map's own width: the plot area of a plotly image/heatmap (beside its colour bar)
  const maps = [...document.querySelectorAll('[data-testid="stMain"] [data-testid="stPlotlyChart"]')].filter(vis)
      .filter(c => c.querySelector('g.imagelayer image, g.heatmaplayer, .hm'))
      .map(c => Math.round(Math.min(...[...c.querySelectorAll('rect.nsewdrag')].map(r => r.getBoundingClientRect().width))));
  const clipped = [...document.querySelectorAll('[data-testid="stMain"] [data-testid="stPlotlyChart"]')].filter(vis)
      .flatMap(c => { const box = c.getBoundingClientRect();
                      return [...c.querySelectorAll('.gtitle, .g-gtitle text, .legendtext')]
                          .filter(t => t.getBoundingClientRect().right > box.right + 1 || t.getBoundingClientRect().left < box.left - 1)
                          .map(t => t.textContent); });
  const texts = [...document.querySelectorAll('[data-testid="stMain"] .js-plotly-plot text')]
      .filter(t => t.textContent.trim() && vis(t))
      .map(t => parseFloat(getComputedStyle(t).fontSize));
  const tables = [...document.querySelectorAll('[data-testid="stDataFrame"], [data-testid="stTable"]')]
      .filter(vis).map(t => { const col = t.closest('[data-testid="stColumn"]') || main;
                              // past its column, or wider inside than its box (the data grid's or the
                              // table's own sideways scroll)
                              const grid = t.querySelector('.dvn-scroller'), table = t.querySelector('table');
                              const sideways = grid ? grid.scrollWidth - grid.clientWidth
                                  : table ? table.getBoundingClientRect().width - t.getBoundingClientRect().width : 0;
                              return Math.round(Math.max(t.getBoundingClientRect().right - col.getBoundingClientRect().right,
                                                         sideways)); });
  // pairs (clean | attacked, raw | certified, plug-in | guaranteed): a row whose columns hold
  // figures keeps its first two side by side (a third may wrap)
  const figCol = c => vis(c) && c.querySelector('[data-testid="stImage"] img, [data-testid="stPlotlyChart"]')
                      && !c.querySelector('[data-testid="stButton"]');
  const split = [...document.querySelectorAll('[data-testid="stMain"] [data-testid="stHorizontalBlock"]')]
      .map(r => [...r.children].filter(c => c.matches('[data-testid="stColumn"]') && figCol(c)))
      .filter(cs => cs.length >= 2 && Math.abs(cs[0].getBoundingClientRect().top - cs[1].getBoundingClientRect().top) > 2)
      .map(cs => cs.slice(0, 2).map(c => Math.round(c.getBoundingClientRect().width)));
  const cut = [...document.querySelectorAll('[data-testid="stMain"] button p')]
      .filter(p => vis(p) && p.scrollWidth > p.clientWidth + 1).map(p => p.innerText);
  // any text on the page (sidebar included) that Streamlit cuts with an ellipsis (not inside a
  // closed expander, which keeps its boxes)
  const shown = e => vis(e) && !e.closest('details:not([open])');
  const ellipsed = [...document.querySelectorAll('[data-testid="stAppViewContainer"] *')]
      .filter(e => shown(e) && e.scrollWidth > e.clientWidth + 1 && getComputedStyle(e).textOverflow === 'ellipsis'
                   && (e.innerText || '').trim())
      .map(e => e.innerText.trim().slice(0, 80))
      // and a selected option wider than its box (a select box shows it in a one-line input)
      .concat([...document.querySelectorAll('[data-testid="stSelectbox"] input')]
                  .filter(i => shown(i) && i.scrollWidth > i.clientWidth + 1).map(i => i.value));
  return {figures: figs, maps: maps, clipped_titles: clipped, min_font: texts.length ? Math.min(...texts) : null,
          overflow: document.documentElement.scrollWidth - window.innerWidth,
          main_overflow: main.scrollWidth - main.clientWidth, table_excess: tables, cut_buttons: cut, cut_texts: ellipsed, split_pairs: split,
          sidebar: Math.round(document.querySelector('[data-testid="stSidebar"]').getBoundingClientRect().width),
          error_dialog: document.body.innerText.includes('Connection error')};
}"""


#: The bottom of Learn's Next button and of the step's finding (the line with the light bulb)
#: with the page scrolled to the top, and the window's height: what a projector shows.
FOLD = """() => {
  const main = document.querySelector('[data-testid="stMain"]');
  main.scrollTop = 0;
  const bottom = el => el ? Math.round(el.getBoundingClientRect().bottom) : null;
  const next = [...main.querySelectorAll('[data-testid="stButton"] button')].find(b => b.innerText.includes('Next'));
  const bulb = [...main.querySelectorAll('[data-testid="stMarkdownContainer"]')]
      .find(m => m.innerText.trim().startsWith('lightbulb'));      // the icon's ligature name
  return {next: bottom(next), finding: bottom(bulb), fold: window.innerHeight};
}"""


#: Certify after a run, scrolled to the top: the bottom of the verdict ("Whole top-k set: …").
VERDICT = """() => {
  const main = document.querySelector('[data-testid="stMain"]');
  main.scrollTop = 0;
  const box = [...main.querySelectorAll('[data-testid="stAlert"]')].find(b => /Whole top-k set/.test(b.innerText));
  return {verdict: box ? Math.round(box.getBoundingClientRect().bottom) : null, fold: window.innerHeight};
}"""

#: Certify mid-run, scrolled to the top: the bottom of the Stop button and of each live map.
LIVE = """() => {
  const main = document.querySelector('[data-testid="stMain"]');
  main.scrollTop = 0;
  const stop = [...main.querySelectorAll('[data-testid="stButton"] button')].find(b => b.innerText.includes('Stop'));
  const maps = [...main.querySelectorAll('[data-testid="stPlotlyChart"]')].filter(c => /so far/.test(c.innerText));
  return {stop: stop ? Math.round(stop.getBoundingClientRect().bottom) : null,
          maps: maps.map(c => Math.round(c.getBoundingClientRect().bottom)), fold: window.innerHeight};
}"""


@contextlib.contextmanager
def _app_page(browser, url: str, width: int, height: int):  # noqa: F811 (the fixture's name)
    """A fresh browser context at ``width``×``height`` with the app open and idle; its page."""
    context = browser.new_context(viewport={"width": width, "height": height})
    page = context.new_page()
    page.set_default_timeout(WAIT)
    try:
        page.goto(url)
        page.wait_for_selector(IDLE)
        yield page
    finally:
        context.close()


def _start_long_certify(page) -> None:
    """On Certify: the largest T (still running when a test looks), then press Certify and wait
    for the first live map."""
    samples = page.get_by_role("slider", name="Samples T")
    samples.focus()
    page.keyboard.press("End")
    idle(page)
    go = button(page, "Certify")
    go.scroll_into_view_if_needed()        # where a user at a small screen clicks it
    go.click()
    page.locator(".gtitle", has_text="RRS map so far").first.wait_for()


@pytest.fixture(scope="module")
def tiny_server():
    """``streamlit run`` of this checkout whose sessions start on the tiny model."""
    from bench import load

    log = open(SHOTS / "streamlit.log", "w") if SHOTS.mkdir(parents=True, exist_ok=True) is None else None
    with load.serve(model="tiny", budget=None, log=log) as (url, _pid):
        yield url


def test_a_cold_first_visit_shows_the_page_and_a_loading_line_while_the_model_loads(browser):  # noqa: F811
    """A server that has loaded no model yet: the heading and "Loading the model" are on the
    page before the model is ready (not a blank page), and the line goes once it is."""
    from bench import load

    seen = """window.__seen = [];
      new MutationObserver(() => {
        const h1 = document.querySelector('h1'), text = document.body ? document.body.innerText : '';
        if (text.includes('Loading the model')) window.__seen.push(h1 ? h1.innerText : '');
      }).observe(document, {childList: true, subtree: true, characterData: true});"""
    with load.serve(model="tiny", budget=None) as (url, _pid):
        context = browser.new_context(viewport={"width": 1440, "height": 900})
        page = context.new_page()
        page.set_default_timeout(WAIT)
        page.add_init_script(seen)
        try:
            page.goto(url)
            page.wait_for_selector(IDLE)
            page.get_by_test_id("stMetric").first.wait_for()
            headings = page.evaluate("window.__seen")
            assert headings, "no loading line was shown while the model loaded"
            assert "Robust interpretation maps" in headings, headings    # with the page's heading
            assert "Loading the model" not in page.inner_text("body")   # and it is gone now
        finally:
            context.close()


def _full_shot(page, name: str) -> None:
    """The viewport as the audience sees it, and the whole page at the same width."""
    page.screenshot(path=str(SHOTS / f"{name}.png"))
    width = page.viewport_size["width"]
    height = page.viewport_size["height"]
    tall = page.evaluate("document.querySelector('[data-testid=\"stMain\"]').scrollHeight")
    page.set_viewport_size({"width": width, "height": int(tall) + 40})
    page.wait_for_timeout(600)
    page.screenshot(path=str(SHOTS / f"{name}_full.png"))
    page.set_viewport_size({"width": width, "height": height})
    page.wait_for_timeout(400)


def _run_main_action(page, name: str) -> None:
    if name == "Certify":
        button(page, "Certify").click()
        page.get_by_text(re.compile(r"Complete: T = ")).first.wait_for(timeout=WAIT)
    elif name == "Attack":
        button(page, "Run attack").click()
        page.get_by_text(re.compile("computed now|from cache")).first.wait_for(timeout=WAIT)
    elif name == "Compare":
        button(page, "Run comparison").click()
        page.get_by_text(re.compile("computed now|from cache")).first.wait_for(timeout=WAIT)
    elif name == "Learn":
        page.get_by_text("Presenter layout").first.click()
    idle(page)
    page.wait_for_timeout(800)      # plotly finishes drawing


def _check(m: dict, where: str, presenter: bool = False) -> list[str]:
    bad = []
    if any(w < MIN_FIGURE for w in m["figures"] + m["maps"]):
        bad.append(f"{where}: figures {m['figures']}, maps {m['maps']} (some below {MIN_FIGURE} px)")
    if m["clipped_titles"]:
        bad.append(f"{where}: clipped chart titles {m['clipped_titles']}")
    if m["overflow"] > 0 or m["main_overflow"] > 0:
        bad.append(f"{where}: horizontal overflow {m['overflow']} px / main {m['main_overflow']} px")
    if any(e > 1 for e in m["table_excess"]):
        bad.append(f"{where}: a table runs {max(m['table_excess'])} px past its column or scrolls sideways")
    if m["split_pairs"]:
        bad.append(f"{where}: pairs of figures stacked instead of side by side (column widths {m['split_pairs']})")
    if m["cut_buttons"]:
        bad.append(f"{where}: cut button labels {m['cut_buttons']}")
    if m["cut_texts"]:
        bad.append(f"{where}: texts cut with an ellipsis {m['cut_texts']}")
    if m["sidebar"] < 200:
        bad.append(f"{where}: the sidebar is closed ({m['sidebar']} px): measured without it")
    if m["error_dialog"]:
        bad.append(f"{where}: a connection error dialog")
    if presenter and (m["min_font"] or 99) < MIN_PRESENTER_FONT:
        bad.append(f"{where}: chart text {m['min_font']} px in the presenter layout")
    return bad


@pytest.mark.parametrize("width,height", SIZES)
def test_every_page_fits_the_screen_and_every_figure_is_readable(tiny_server, browser, width, height):  # noqa: F811
    problems, report = [], {}
    with _app_page(browser, tiny_server, width, height) as page:
        page.get_by_text("Fast preset (class use)").click()
        idle(page)
        # Home: a gallery pick shows a toast, which must not cover the title
        button(page, "chelsea").click()
        toast = page.get_by_test_id("stToast").first
        toast.wait_for()
        page.locator("h1").first.scroll_into_view_if_needed()     # the title where it is read
        page.wait_for_timeout(300)
        t, h = toast.bounding_box(), page.locator("h1").first.bounding_box()
        overlap = not (t["x"] > h["x"] + h["width"] or t["x"] + t["width"] < h["x"]
                       or t["y"] > h["y"] + h["height"] or t["y"] + t["height"] < h["y"])
        if overlap:
            problems.append(f"Home {width}: the toast covers the title")
        idle(page)
        for name in ["Home", "Explain", "Certify", "Attack", "Compare", "Learn"]:
            if name != "Home":
                nav(page, name)
            _run_main_action(page, name)
            if name == "Learn":
                from ui.learn import STEPS
                for i in range(1, STEPS + 1):       # the presenter layout, one step per screen
                    step = page.get_by_test_id("stButton").get_by_role(
                        "button", name=re.compile(r"^(?!.*(Previous|Next)).*$")).first
                    step.click()
                    idle(page)
                    page.wait_for_timeout(800)
                    m = page.evaluate(MEASURE)
                    report[f"Learn step {i}"] = m
                    fold = page.evaluate(FOLD)
                    print(f"Learn step {i} {width}×{height}: {fold}")
                    problems += [f"Learn step {i} {width}×{height}: {what} below the fold ({fold})"
                                 for what in ("next", "finding") if not fold[what] or fold[what] > fold["fold"]]
                    problems += _check(m, f"Learn step {i} {width}×{height}", presenter=True)
                    problems += [f"Learn step {i} {width}×{height}: {p}" for p in page.evaluate(LAYOUT_JS)]
                    _full_shot(page, f"learn{i}_{width}x{height}")
                    if i < STEPS:
                        button(page, "Next").click()
                        idle(page)
                continue
            m = page.evaluate(MEASURE)
            report[name] = m
            problems += _check(m, f"{name} {width}×{height}")
            problems += [f"{name} {width}×{height}: {p}" for p in page.evaluate(LAYOUT_JS)]
            _full_shot(page, f"{name.lower()}_{width}x{height}")
        attack_maps = report["Attack"]["maps"]       # clean | attacked pairs: one size (both keep the colour bar)
        if attack_maps and max(attack_maps) - min(attack_maps) > 2:
            problems.append(f"Attack {width}×{height}: clean and attacked maps differ in size {attack_maps}")
        for name, m in report.items():
            print(f"{name} {width}×{height}: figures {m['figures']} maps {m['maps']} min chart font {m['min_font']} "
                  f"overflow {m['overflow']}/{m['main_overflow']} tables {m['table_excess']} "
                  f"split pairs {m['split_pairs']} sidebar {m['sidebar']} px")
        assert not problems, "\n".join(problems)


@pytest.mark.parametrize("width,height", SIZES)
def test_certify_contrast_fits_the_screen(tiny_server, browser, width, height):  # noqa: F811
    """Certify's "Try to break it": the raw and the certified map side by side after the button,
    its sentence, then the break-radius chart; every figure ≥ 240 px, nothing clipped or cut,
    no overflow; photographed at the sentence and at the chart."""
    problems = []
    with _app_page(browser, tiny_server, width, height) as page:
        button(page, "chelsea").click()
        idle(page)
        nav(page, "Certify")
        _run_main_action(page, "Certify")
        button(page, "Attack both maps at the certified radius").click()
        said = page.get_by_text(re.compile("At this size of change the raw map")).first
        said.wait_for(timeout=WAIT)
        idle(page)
        page.wait_for_timeout(800)
        said.scroll_into_view_if_needed()
        page.screenshot(path=str(SHOTS / f"certify_contrast_{width}x{height}.png"))
        m = page.evaluate(MEASURE)
        problems += _check(m, f"Certify contrast {width}×{height}")
        for title in ("Clean map, raw", "Clean map, RRS", "Attacked map, raw", "Attacked map, RRS"):
            assert page.locator(".gtitle", has_text=title).count() == 1, title
        page.locator(".gtitle", has_text="Attacked map, raw").first.scroll_into_view_if_needed()
        page.wait_for_timeout(400)
        page.screenshot(path=str(SHOTS / f"certify_contrast_maps_{width}x{height}.png"))
        button(page, "Find each map's break radius").click()
        chart = page.locator(".gtitle", has_text="Where each map breaks").first
        chart.wait_for(timeout=WAIT)
        idle(page)
        page.wait_for_timeout(800)
        chart.scroll_into_view_if_needed()
        page.screenshot(path=str(SHOTS / f"certify_radii_{width}x{height}.png"))
        m = page.evaluate(MEASURE)
        problems += _check(m, f"Certify break radii {width}×{height}")
        problems += [f"Certify contrast {width}×{height}: {p}" for p in page.evaluate(LAYOUT_JS)]
        print(f"contrast {width}×{height}: figures {m['figures']} maps {m['maps']} min font {m['min_font']}")
        assert not problems, "\n".join(problems)


def _sample_picker(page):
    return page.get_by_test_id("stSidebar").get_by_role("combobox", name="Sample image")


def test_a_reload_mid_run_and_after_a_run_keeps_the_image_the_settings_and_the_result(tiny_server, browser):  # noqa: F811
    """A reload (or a dropped connection) restores the image, the model, the page's settings
    and a finished result (from the server's cache, labelled so), and shows no error dialog."""
    with _app_page(browser, tiny_server, 1440, 900) as page:
        button(page, "chelsea").click()
        idle(page)
        nav(page, "Attack")
        steps = page.get_by_role("slider", name="Attack steps")
        page.get_by_text("Attack strength and seed").click()
        steps.focus()
        page.keyboard.press("ArrowLeft")
        idle(page)
        chosen = steps.get_attribute("aria-valuenow")
        button(page, "Run attack").click()
        page.get_by_text(re.compile("computed now")).first.wait_for()
        idle(page)
        assert re.search(r"[?&]image=chelsea", page.url) and "s=" in page.url, page.url
        # after a run: the reload shows the same result, from the cache, without pressing Run
        page.reload()
        page.wait_for_selector('h1:has-text("Attack")')
        page.wait_for_selector(IDLE)
        assert _sample_picker(page).input_value() == "chelsea"
        page.get_by_text("Attack strength and seed").click()
        assert page.get_by_role("slider", name="Attack steps").get_attribute("aria-valuenow") == chosen
        page.get_by_text(re.compile("from cache")).first.wait_for()
        assert "Connection error" not in page.inner_text("body")
        page.screenshot(path=str(SHOTS / "reload_after_attack.png"))
        # mid-run: a certification far from done, then a reload
        nav(page, "Certify")
        _start_long_certify(page)             # the run is still going at the reload
        # while it runs, the Stop button and the live maps are in view without scrolling
        live = page.evaluate(LIVE)
        assert live["stop"] and live["stop"] <= live["fold"], live
        assert live["maps"] and max(live["maps"]) <= live["fold"], live
        page.screenshot(path=str(SHOTS / "certify_live_1440x900.png"))
        page.reload()
        page.wait_for_selector('h1:has-text("Certify")')
        page.wait_for_selector(IDLE)
        assert _sample_picker(page).input_value() == "chelsea"
        assert "Connection error" not in page.inner_text("body")
        page.screenshot(path=str(SHOTS / "reload_mid_certify.png"))
        # and the page still works: a rerun after the reload completes
        button(page, "Certify").click()
        page.get_by_text(re.compile(r"Complete: T = ")).first.wait_for()
        idle(page)
        assert "Connection error" not in page.inner_text("body")
        # once complete, its verdict is in view without scrolling, where the live run was
        done = page.evaluate(VERDICT)
        assert done["verdict"] and done["verdict"] <= done["fold"], done
        page.screenshot(path=str(SHOTS / "certify_complete_1440x900.png"))


#: Where the last element matching ``[selector, text]`` is in the window now (no scrolling).
IN_VIEW = """([selector, text]) => {
  const main = document.querySelector('[data-testid="stMain"]');
  const hits = [...main.querySelectorAll(selector)].filter(e => e.innerText && e.innerText.includes(text));
  const e = hits[hits.length - 1];
  if (!e) return null;
  const r = e.getBoundingClientRect(), header = document.querySelector('[data-testid="stHeader"]');
  return {top: Math.round(r.top), bottom: Math.round(r.bottom), fold: window.innerHeight,
          header: header ? Math.round(header.getBoundingClientRect().bottom) : 0};
}"""


def test_a_projector_follows_the_run_certify_stop_button_and_each_attacked_method_come_into_view(tiny_server, browser):  # noqa: F811
    """At 1024×768 the Certify button is below the fold, and its run's Stop button and live maps
    appear above it, under the title: the page scrolls to them (it stayed at the button, the
    Stop button at y = −206). On Attack each method's result comes into view as it arrives, then
    the comparison of all of them (the tiny model's three arrive within a second, so only the
    last step is measured here)."""
    with _app_page(browser, tiny_server, 1024, 768) as page:
        nav(page, "Certify")
        _start_long_certify(page)             # still running when measured
        page.wait_for_timeout(1500)           # the page follows the run
        stop = page.evaluate(IN_VIEW, ["button", "Stop (keep the result so far)"])
        page.screenshot(path=str(SHOTS / "certify_live_1024x768.png"))
        assert stop and stop["header"] <= stop["top"] and stop["bottom"] <= stop["fold"], stop
        button(page, "Stop (keep the result so far)").click()
        idle(page)
        nav(page, "Attack")
        go = button(page, "Run attack")
        go.scroll_into_view_if_needed()
        go.click()
        page.get_by_text("What this shows").first.wait_for()
        page.wait_for_timeout(1500)
        done = page.evaluate(IN_VIEW, ["h3", "Methods compared"])
        page.screenshot(path=str(SHOTS / "attack_done_1024x768.png"))
        assert done and done["header"] <= done["top"] < done["fold"] // 2, done
