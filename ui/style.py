"""The app's page style for a projector (1024×768) as much as a laptop: one stylesheet,
injected once per run by :func:`ui.sidebar.page`, and larger chart text in the presenter
layout (:func:`screen_figure`, applied to every figure by :func:`ui.widgets.figure`).

What the rules guarantee (measured by ``tests/test_browser_layout.py``):

- a column that holds a figure (an image or a plotly chart) is never narrower than
  :data:`MIN_FIGURE_PX`: below that the row wraps, so maps stay readable instead of
  shrinking to 160 px;
- up to 1280 px wide the open sidebar is :data:`SIDEBAR_NARROW_PX` wide and the side margins
  1rem, so at 1024×768 with the sidebar open a pair of maps with colour bars (clean |
  attacked, plug-in | guaranteed) stays side by side rather than stacking;
- a table scrolls inside its column instead of running past the page's right edge;
- button labels, metric labels and deltas, and headings wrap instead of being cut
  ("Compute the guara…");
- toasts appear at the bottom right, not over the page title;
- in the presenter layout, less room above a smaller title (and no page intro,
  :func:`ui.sidebar.page`), so Learn's Next button and the step's finding show at 1024×768
  without scrolling; chart text (ticks, legends, colour bars, titles) is at least
  :data:`PRESENTER_FONT_PX` and a metric's value stays larger than its label.
"""
from __future__ import annotations

import streamlit as st

MIN_FIGURE_PX = 260        # a column with an image; the image inside is ≥ 240 px after padding
MIN_CHART_PX = 350         # a column with a plotly map: its colour bar takes ~100 px of it
PRESENTER_FONT_PX = 16     # readable from the back of a classroom
SIDEBAR_NARROW_PX = 240    # the open sidebar's width on a screen up to 1280 px wide

_FIGURE = '[data-testid="stImage"], [data-testid="stPlotlyChart"]'

CSS = f"""
<style>
/* a row whose columns hold figures wraps rather than shrinking them (a map beside its colour
   bar needs {MIN_CHART_PX}px to be 240 px wide itself) */
[data-testid="stHorizontalBlock"]:has(> [data-testid="stColumn"] :is({_FIGURE})) {{ flex-wrap: wrap; }}
[data-testid="stHorizontalBlock"] > [data-testid="stColumn"]:has([data-testid="stImage"]):not(:has([data-testid="stButton"])) {{
  min-width: min({MIN_FIGURE_PX}px, 100%) !important;
}}
/* (a gallery thumbnail with its pick button is a button, not a figure: four stay in a row)
   an image alone in its row is not blown up past the screen's height */
[data-testid="stMain"] [data-testid="stImage"] img {{ max-height: 62vh; object-fit: contain; }}
/* the σ slider's noise preview (ui.widgets.sigma_slider) is a reminder of what σ means, not a
   result: when its row wraps it stays {MIN_FIGURE_PX} px wide instead of a screen-high picture that
   pushes the page's results below the fold */
[class*="st-key-"][class*="_sigma_preview"] [data-testid="stImage"] {{ max-width: {MIN_FIGURE_PX}px; }}
[data-testid="stHorizontalBlock"] > [data-testid="stColumn"]:has([data-testid="stPlotlyChart"]) {{
  min-width: min({MIN_CHART_PX}px, 100%) !important;
}}
/* the Attack page's clean | adversarial | change row: when it wraps, the change stays as wide as
   the images above it instead of filling the page */
.st-key-attack_images [data-testid="stColumn"]:nth-child(3) {{ max-width: calc(50% - 0.5rem); }}
/* a projector's 1024 px with the sidebar open: the sidebar narrows to {SIDEBAR_NARROW_PX}px and the page's
   side margins go to the figures, so a pair of maps with their colour bar ({MIN_CHART_PX}px each)
   still fits side by side (1024 − {SIDEBAR_NARROW_PX} − 2·16 = 752 ≥ 2·{MIN_CHART_PX} + 32) */
@media (max-width: 1280px) {{
  section[data-testid="stSidebar"][data-collapsed="false"] {{
    width: {SIDEBAR_NARROW_PX}px !important; min-width: {SIDEBAR_NARROW_PX}px !important;
    max-width: {SIDEBAR_NARROW_PX}px !important;
  }}
  [data-testid="stMainBlockContainer"] {{ padding-left: 1rem !important; padding-right: 1rem !important; }}
}}
/* tables scroll inside their column; the page itself never scrolls sideways */
[data-testid="stTable"] {{ max-width: 100%; overflow-x: auto; }}
[data-testid="stDataFrame"] {{ max-width: 100%; }}
[data-testid="stMain"] {{ overflow-x: hidden; }}
/* labels wrap instead of being cut with an ellipsis */
[data-testid="stButton"] button, [data-testid="stDownloadButton"] button {{ height: auto; min-height: 2.5rem; }}
[data-testid="stButton"] button p, [data-testid="stDownloadButton"] button p {{
  white-space: normal; overflow: visible; text-overflow: clip;
}}
[data-testid="stMetricLabel"] *, [data-testid="stMetricDelta"] * {{
  white-space: normal !important; overflow: visible !important; text-overflow: clip !important;
}}
[data-testid="stMain"] h1, [data-testid="stMain"] h2, [data-testid="stMain"] h3 {{ overflow-wrap: anywhere; }}
/* the uploader's size limit and file types too ("25MB per file • PNG, JPG, WEBP, B…" in the sidebar) */
[data-testid="stFileUploaderDropzoneInstructions"] * {{
  white-space: normal !important; overflow: visible !important; text-overflow: clip !important;
}}
/* the scroll anchor of a run's live panel or an arriving result (ui.widgets.scroll_here) takes no
   room: its box is hidden while it holds the anchor (a rule, not a style on the box: Streamlit
   reuses the box for the element drawn there on the next run) */
[data-testid="stElementContainer"]:has(.rrs-anchor) {{ display: none; }}
/* what it scrolls to stops below Streamlit's sticky header (3.75rem), not under it */
[data-testid="stMain"] [data-testid="stElementContainer"] {{ scroll-margin-top: 4.5rem; }}
/* toasts at the bottom right: at the top they cover the page title on a 1024-px screen */
[data-testid="stToastContainer"] {{ top: auto !important; bottom: 1rem !important; }}
</style>
"""

PRESENTER_CSS = f"""
<style>
/* one step per screen: less room above the page's title, a smaller title */
[data-testid="stMainBlockContainer"] {{ padding-top: 3.5rem !important; }}
[data-testid="stMain"] h1 {{ font-size: 2.25rem; padding-top: 0; padding-bottom: 0.25rem; }}
[data-testid="stMain"] [data-testid="stMetricLabel"] p {{ font-size: 1.05rem !important; }}
[data-testid="stMain"] [data-testid="stMetricValue"] {{ font-size: 2.4rem !important; }}
[data-testid="stMain"] [data-testid="stMetricValue"] * {{ font-size: inherit !important; }}
[data-testid="stMain"] [data-testid="stButton"] button p {{ font-size: 1.1rem !important; }}
</style>
"""


def presenter(title: str) -> bool:
    """Whether this run draws the Learn page in its presenter layout (its toggle's value is
    in the session before the script runs)."""
    if title != "Learn":
        return False
    return bool(st.session_state.get("learn_presenter", st.session_state.get("keep.learn_presenter", False)))


def inject(presenter: bool = False) -> None:
    """Add the stylesheet to the page (and the presenter rules when ``presenter``)."""
    st.session_state["sb.presenter"] = presenter
    st.html(CSS + (PRESENTER_CSS if presenter else ""))


def screen_figure(fig):
    """``fig`` as shown on this page: in the presenter layout every text of the chart
    (ticks, axis titles, legend, colour bar, annotations) is at least
    :data:`PRESENTER_FONT_PX` and the title 4 px larger; unchanged otherwise."""
    if not st.session_state.get("sb.presenter"):
        return fig
    return larger_text(fig, PRESENTER_FONT_PX)


def larger_text(fig, size: int):
    """A copy of the plotly ``fig`` with every font at least ``size`` px (plain plotly, no
    Streamlit: tested directly)."""
    fig = type(fig)(fig)
    fig.update_layout(font_size=max(size, fig.layout.font.size or 0), legend_font_size=size,
                      title_font_size=size + 4)
    fig.update_xaxes(tickfont_size=size, title_font_size=size)
    fig.update_yaxes(tickfont_size=size, title_font_size=size)
    fig.update_annotations(font_size=size)
    for trace in fig.data:
        if "colorbar" in trace:       # heatmaps
            trace.colorbar.tickfont.size = size
            trace.colorbar.title.font.size = size
    return fig
