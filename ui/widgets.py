"""Shared widgets of the pages: settings controls that convert the app's knobs into the
library's settings fields, progress, metric cards, figures with captions, provenance and
export buttons.

App-only knobs and their conversion to :mod:`rrs.settings` live here: the top-k share and
the scoring parameters are shown in % of the cells (``MapSettings.k = percent / 100``), ℓ∞
budgets in 1/255 steps (``AttackSettings.epsilon = steps / 255``), σ in pixel units.
"""
from __future__ import annotations

import contextvars
import math
import re
import time

import numpy as np
import pandas as pd
import streamlit as st
import torch

from ui import plots as P
from rrs.compute.scheduler import Cancelled
from rrs.methods import METHODS
from rrs.settings import L1, L2, LINF, Norm

from . import caching, style
from .state import not_drawing, widget

#: The norm choices of certificates (``format_func=norm_label``).
NORMS = [L1, L2, LINF]

SCORING_LABELS = {"topk": "Top-k′ uniform", "exponential": "Exponential decay",
                  "linear": "Linear decay", "power": "Power law"}
#: Per family: (label, min, max, default, step, shown in % of the cells). k′ and τ are shares
#: of the cells so a setting keeps its meaning when the cell size (hence n) changes.
SCORING_PARAMS = {
    "topk": ("k′ — cells sharing the score (% of cells)", 1.0, 50.0, 10.0, 1.0, True),
    "exponential": ("decay length τ (% of cells)", 0.5, 50.0, 5.0, 0.5, True),
    "linear": ("k′ — score reaches 0 after (% of cells)", 1.0, 50.0, 10.0, 1.0, True),
    "power": ("exponent γ", 0.2, 3.0, 1.0, 0.1, False),
}

SIGMA_HELP = "σ = standard deviation of the noise per pixel value (Laplace: scale σ/√2)"


def norm_label(norm: Norm) -> str:
    return norm.label


def name_and_detail(label: str) -> tuple[str, str]:
    """``"Top-k (push the map off its top cells)"`` → ``("Top-k", "push the map off its top
    cells")``: a select box shows the name alone (its value is one line, cut where it is longer
    than the box), and the detail goes under it."""
    name, _, rest = label.partition(" (")
    return name, rest.replace(")", "", 1)


def method_label(name: str) -> str:
    return METHODS[name].label


# ------------------------------------------------------------------------ settings knobs

def method_select(container, label: str, key: str, default: str, options=None, **kwargs) -> str:
    """A method picker over :data:`rrs.methods.METHODS` (labels from the registry)."""
    return widget(container.selectbox, label, key, default, options=list(options or METHODS),
                  format_func=method_label, **kwargs)


def methods_multiselect(container, label: str, key: str, default: list, **kwargs) -> list:
    return widget(container.multiselect, label, key, default, options=list(METHODS), format_func=method_label,
                  **kwargs)


def k_slider(container, key: str, default_percent: float, label: str = "Top-k: share of cells", **kwargs) -> float:
    """The top-k share in % of the cells; returns ``MapSettings.k`` (a fraction)."""
    percent = widget(container.slider, label, key, default_percent, min_value=1.0, max_value=50.0, step=1.0,
                     format="%g%%", **kwargs)
    return float(percent) / 100.0


def scoring_controls(family_col, param_col, key: str, disabled: bool = False, **kwargs) -> tuple[str, float]:
    """The RRS scoring family and its parameter; returns ``(scoring, MapSettings.scoring_param)``."""
    scoring = widget(family_col.selectbox, "Scoring family", f"{key}_scoring", "topk", options=list(SCORING_LABELS),
                     format_func=SCORING_LABELS.get, disabled=disabled, **kwargs)
    label, lo, hi, default, step, percent = SCORING_PARAMS[scoring]
    value = widget(param_col.slider, label, f"{key}_scoring_param_{scoring}", default, min_value=lo,
                   max_value=hi, step=step, disabled=disabled)
    return scoring, float(value) / 100.0 if percent else float(value)


def noise_radio(container, key: str, help: str, disabled: bool = False) -> str:
    return widget(container.radio, "Noise", key, "gaussian", options=["gaussian", "laplace"],
                  format_func=str.capitalize, horizontal=True, disabled=disabled, help=help)


def norm_radio(container, label: str, key: str, default: Norm = L2, options=None, **kwargs) -> Norm:
    """A threat-norm choice over :class:`rrs.settings.Norm` values (shown as ℓ1/ℓ2/ℓ∞)."""
    return widget(container.radio, label, key, default, options=list(options or NORMS), format_func=norm_label,
                  horizontal=True, **kwargs)


def linf_budget_slider(container, label: str, key: str, default: int, max_steps: int = 32, **kwargs) -> float:
    """An ℓ∞ budget in 1/255 steps; returns ``AttackSettings.epsilon`` in pixel units."""
    steps = widget(container.slider, label, key, default, min_value=1, max_value=max_steps, step=1, **kwargs)
    return int(steps) / 255.0


def sigma_slider(ctx, container, key: str, default: float = 0.15, noise: str = "gaussian",
                 disabled: bool = False, why: str = "") -> float:
    """A σ slider with the image under one noise draw at that σ beside it; ``disabled`` (a
    raw method, which adds no noise) greys the slider and replaces the preview by ``why``."""
    left, right = container.columns([3, 1.2])
    sigma = widget(left.slider, "Noise level σ (pixel units; images are in [0, 1])", key, default,
                   min_value=0.01, max_value=0.5, step=0.01, help=f"{SIGMA_HELP}. 0.15 ≈ 38/255.",
                   disabled=disabled)
    if disabled:
        left.caption(why or "Not used: this method adds no noise.")
        return float(sigma)
    left.caption(f"σ = {sigma:g} ≈ {sigma * 255:.0f}/255 per pixel value")
    # keyed, so the stylesheet keeps this reminder thumbnail-sized when its row wraps (ui.style)
    noise_preview_image(ctx, sigma, noise, right.container(key=f"{key}_preview"))
    return float(sigma)


def noise_preview_image(ctx, sigma: float, noise: str = "gaussian", container=None) -> None:
    """Next to a σ slider: the image with one noise draw at that σ."""
    (container or st).image(caching.noise_preview(ctx, sigma, noise), width="stretch",
                            caption=f"one noise draw at σ = {sigma:g}")


def cells_options(size: int) -> list[int]:
    """Cell sizes that make sense at this working resolution."""
    return [c for c in (1, 2, 4, 8, 16, 32) if c <= max(1, size // 3)]


def cell_label(c: int) -> str:
    return "pixels" if c == 1 else f"{c}×{c} px patches"


def cell_slider(ctx, container, key: str, default: int, **kwargs) -> int:
    return int(widget(container.select_slider, "Cell size", key, default, options=cells_options(ctx.size),
                      format_func=cell_label, **kwargs))


def seed_input(container, key: str, **kwargs) -> int:
    return int(widget(container.number_input, "Seed", key, 0, min_value=0, max_value=2**31 - 1, step=1, **kwargs))


def opacity_slider(key: str, default: float = 0.6, container=None) -> float:
    return widget((container or st).slider, "Overlay opacity", key, default, min_value=0.0, max_value=1.0,
                  step=0.05, help="0 shows only the image, 1 only the map.")


# ------------------------------------------------------------------------ running things

class Progress:
    """A progress bar that long computations (also inside ``st.cache_data``) can update.

    Updates run in a copy of the context taken outside the cached function, so they are
    not recorded for cache replay; each update is also the point where a widget change
    interrupts the run (Streamlit stops the script there), which is how long work gets
    cancelled.
    """

    def __init__(self, text: str, container=None):
        self._context = contextvars.copy_context()
        self.text = text
        self.bar = (container or st).progress(0.0, text=text)
        self._last = 0.0
        self._queued_text, self._queued_at = None, -1.0

    def __call__(self, done, total) -> None:
        now = time.perf_counter()
        if now - self._last < 0.2 and done < total:
            return
        self._last = now
        frac = float(min(max(done / total, 0.0), 1.0)) if total else 1.0
        self._context.run(self.bar.progress, frac, text=f"{self.text} — {frac:.0%}")

    def queued(self, position: int, seconds) -> None:
        """While the job waits for the compute scheduler: its place in the queue and the wait.
        Redrawn only when the text changes, at most once a second (thirty waiting sessions
        would otherwise send the server's event loop a message every few milliseconds)."""
        from rrs.timing import format_seconds
        wait = "wait not yet known" if seconds is None else f"{format_seconds(seconds)} until it starts"
        text = f"Queued: position {position}, {wait} — {self.text}"
        now = time.perf_counter()
        if text == self._queued_text or now - self._queued_at < 1.0:
            return
        self._queued_text, self._queued_at = text, now
        self._context.run(self.bar.progress, 0.0, text=text)

    def clear(self) -> None:
        self._context.run(self.bar.empty)


def with_progress(text: str, fn, *args, **kwargs):
    """Call ``fn(*args, progress=bar, **kwargs)`` with a progress bar; clear it afterwards
    (:func:`ui.runs.run` adds the predicted time and whether the result came from the cache).

    Bad settings raise ``ValueError`` subclasses with plain messages: they are shown as an
    error in the page and ``None`` is returned, so the session keeps working.
    """
    bar = Progress(text)
    start = time.perf_counter()
    try:
        return fn(*args, progress=bar, **kwargs)
    except torch.cuda.OutOfMemoryError:  # pragma: no cover - GPU only
        st.error("The GPU ran out of memory for this request; lower T, the EOT samples or the "
                 "resolution.", icon=":material/memory:")
    except Cancelled:
        st.info("This computation was cancelled.", icon=":material/cancel:")
    except MemoryError:
        st.error("This request needs more memory than the machine has; lower T, the EOT samples "
                 "or the working resolution.", icon=":material/memory:")
    except ValueError as e:
        st.error(str(e), icon=":material/error:")
    finally:
        bar.clear()
        not_drawing(time.perf_counter() - start)
    return None


def settings_or_stop(make):
    """``make()`` (building settings objects); a ``ValueError`` is shown and the page stops."""
    try:
        return make()
    except ValueError as e:
        st.error(str(e), icon=":material/error:")
        st.stop()


# ------------------------------------------------------------------------------ showing

def metric(container, label: str, value, delta=None, help: str | None = None, good_up: bool | None = None):
    """``st.metric`` in the app's style: bordered; a delta is coloured only when it has a
    direction that is good or bad (``good_up``), otherwise shown as plain grey context."""
    if good_up is not None and isinstance(delta, str):
        lead = re.match(r"\s*([-+]?\d*\.?\d+)", delta)
        if lead and float(lead.group(1)) == 0.0:
            good_up = None          # no change: no arrow, no colour
    if good_up is None:
        container.metric(label, value, delta, delta_color="off", delta_arrow="off", help=help, border=True)
    else:
        container.metric(label, value, delta, delta_color="normal" if good_up else "inverse",
                         help=help, border=True)


def figure(fig, key: str, caption: str) -> None:
    """A plotly figure with its one-line caption."""
    st.plotly_chart(style.screen_figure(fig), key=key, config={"displaylogo": False, "scrollZoom": False,
                                          "modeBarButtonsToRemove": ["select2d", "lasso2d"]})
    st.caption(caption)


def cell_text(v) -> str:
    """A table cell for people: 4 significant digits, yes/no, empty for a missing value."""
    if isinstance(v, (bool, np.bool_)):
        return "yes" if v else "no"
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return ""
    return f"{v:.4g}" if isinstance(v, float) else str(v)


def table(rows, keep: tuple[str, ...] = ()) -> None:
    """A table that fits its column on a projector: headers and names wrap (``st.table``; the
    data grid scrolled sideways inside a 1024-px column), numbers show 4 significant digits, and
    a column with one value in every row (other than ``keep``) is said once under the table
    instead of repeated."""
    df = pd.DataFrame(rows).reset_index(drop=True)          # no row numbers of a filtered frame
    same = {c: df[c].iloc[0] for c in df.columns
            if len(df) > 1 and c not in keep and df[c].map(cell_text).nunique() == 1}
    st.table(df.drop(columns=list(same)).style.format(cell_text))
    if same:
        st.caption("In every row: " + "; ".join(f"{c} {cell_text(v)}" for c, v in same.items()) + ".")


def scroll_here(tag: str) -> None:
    """Bring this point of the page to the top of the window once, as it is drawn: a run's live
    panel (on a 1024×768 projector the user scrolled down to the button, and the panel appears
    above it) or a result that just arrived below the fold. Call it only for work computed
    now, so a later rerun (from the cache) leaves the reader's scroll position alone."""
    anchor = f"rrs-scroll-{tag}-{time.time_ns()}"
    # The anchor's own box is hidden (ui.style: no gap in the layout); the page scrolls to the element after
    # it. Drawn at the end of the page, that element can only reach the bottom of the window until
    # what follows it is drawn: it scrolls again as the page grows, for 3 s, unless the reader
    # scrolls or a newer anchor takes over.
    st.html(f'<div id="{anchor}" class="rrs-anchor"></div><script>(() => {{ let n = 0; const stop = () => {{ n = 99; }};'
            f'window.__rrsScroll = "{anchor}";'
            '["wheel", "touchstart", "keydown"].forEach(e => window.addEventListener(e, stop, {once: true}));'
            f'const go = () => {{ const el = document.getElementById("{anchor}");'
            f'if (!el || n++ > 15 || window.__rrsScroll !== "{anchor}") return;'
            'const box = el.closest(\'[data-testid="stElementContainer"]\') || el;'
            'const next = box.nextElementSibling; if (next) next.scrollIntoView({block: "start"});'
            'setTimeout(go, 200); }; go(); })();</script>',
            unsafe_allow_javascript=True)


def maps_png(ctx, panels: list[dict], cell: int, opacity: float, footer: str, title: str | None = None):
    """A callable rendering ``panels`` to PNG (on click, off the script thread)."""
    picture = ctx.picture

    def render() -> bytes:
        return P.maps_png(picture, panels, cell, opacity=opacity, suptitle=title, footer=footer)
    return render


def exports(stem: str, key: str, png=None, csv: str | None = None, json_text: str | None = None,
            extra_png: tuple | None = None) -> None:
    """Download buttons: PNG figure(s) (rendered on click), CSV and JSON (settings + numbers).

    ``extra_png`` is an optional ``(label, data_or_callable, file_suffix)`` for a second figure.
    """
    # One row that wraps: each button as wide as its label (fixed columns cut the labels at
    # 1024 px).
    row = st.container(horizontal=True)
    if png is not None:
        row.download_button("PNG figure", data=png, file_name=f"{stem}.png", mime="image/png",
                                   key=f"{key}_png", icon=":material/image:", on_click="ignore")
    if extra_png:
        label, data, suffix = extra_png
        row.download_button(label, data=data, file_name=f"{stem}_{suffix}.png", mime="image/png",
                                   key=f"{key}_png2", icon=":material/show_chart:", on_click="ignore")
    if csv is not None:
        row.download_button("CSV numbers", data=csv, file_name=f"{stem}.csv", mime="text/csv",
                                   key=f"{key}_csv", icon=":material/table:", on_click="ignore")
    if json_text is not None:
        row.download_button("JSON (settings + results)", data=json_text, file_name=f"{stem}.json",
                                   mime="application/json", key=f"{key}_json", icon=":material/data_object:",
                                   on_click="ignore")
