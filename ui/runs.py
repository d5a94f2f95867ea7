"""Long work on a page: its predicted time before it starts, progress, a Stop button, and
an honest line saying whether a result was computed now or came from the cache.

A result came from the cache exactly when the computation never reported progress: every
computation the pages run reports it (at least once, at the end), and a cache hit does not
run the computation at all.
"""
from __future__ import annotations

import contextlib
import time

import streamlit as st

from . import state
from . import widgets as W
from .predict import predicted_text, remaining_text

__all__ = ["Outcome", "run", "measuring", "stoppable", "stopped", "provenance", "provenance_seconds", "stop_key"]


class Outcome:
    """A finished run: ``value`` (None when it failed), ``cached``, ``elapsed`` (of the
    computation, also when it came from the cache) and ``wall`` (of this call)."""

    def __init__(self, value, wall: float, computed: bool = True):
        self.value = value
        self.wall = wall
        self.elapsed = _elapsed(value) if value is not None else wall
        self.cached = value is not None and not computed


def _elapsed(value) -> float:
    if isinstance(value, dict):
        return float(value.get("elapsed", 0.0))
    return float(getattr(value, "elapsed", 0.0))


def stop_key(page_key: str) -> str:
    return f"{page_key}_stop"


def stopped(page_key: str) -> bool:
    """True on the run right after the page's Stop button was pressed (the work it stopped
    is not restarted; a notice says so)."""
    if st.session_state.get(stop_key(page_key)):
        st.info("Stopped — nothing from the interrupted run is shown. Press the run button to start "
                "again.", icon=":material/stop_circle:")
        return True
    return False


@contextlib.contextmanager
def measuring(what: str = "the times"):
    """The spinner over a page's predictions: on a first visit they measure this device's
    speed (a pilot run per kind of map and, for smoothed maps, bf16 against fp32 once: seconds
    on a CPU); shown only when the block takes longer than half a second. Its time is not
    part of :func:`ui.state.page_seconds`."""
    start = time.perf_counter()
    try:
        with st.spinner(f"Measuring this device's speed, to predict {what}…"):
            yield
    finally:
        state.not_drawing(time.perf_counter() - start)


@contextlib.contextmanager
def stoppable(page_key: str):
    """A Stop button shown while the block runs (pressing it, or changing any widget,
    interrupts the work at its next progress update; :func:`stopped` then says so)."""
    slot = st.empty()
    slot.button("Stop", key=stop_key(page_key), icon=":material/stop:",
                help="Interrupts the computation; changing any setting does the same.")
    try:
        yield
    finally:
        slot.empty()


def run(text: str, fn, *args, predicted: float | None = None, **kwargs) -> Outcome:
    """:func:`ui.widgets.with_progress` with the predicted time in the progress text; an :class:`Outcome`."""
    label = text if predicted is None else f"{text} ({predicted_text(predicted)})"
    calls = []
    start = time.perf_counter()

    def tracked(*a, progress, **kw):
        def report(done, total):
            # the prediction updated while it runs: the time left at the pace since the first
            # report (a queued job's wait is not its pace)
            now, frac = time.perf_counter(), (done / total if total else 1.0)
            if not calls:
                calls.append((now, frac))
            t0, f0 = calls[0]
            if f0 < frac < 1 and hasattr(progress, "text"):
                left = remaining_text(now - t0, (frac - f0) / (1 - f0))
                if left:
                    progress.text = f"{text} ({left})"
            calls.append((now, frac))
            progress(done, total)
        return fn(*a, progress=report, **kw)
    value = W.with_progress(label, tracked, *args, **kwargs)
    return Outcome(value, time.perf_counter() - start, computed=bool(calls))


def provenance(ctx, outcome: Outcome, device: str, seed, settings_text: str) -> None:
    """The one line every result carries, saying whether it came from the cache."""
    if outcome.cached:
        when = f":material/cached: from cache (computed earlier in {outcome.elapsed:.2f} s)"
    else:
        when = f":material/timer: computed now in {outcome.elapsed:.2f} s"
    _provenance_line(ctx, when, device, seed, settings_text)


def provenance_seconds(ctx, elapsed: float, device: str, seed, settings_text: str) -> None:
    """The same line for a result whose computing time is known but not how it was run (e.g.
    the Certify page's run, kept across reruns): time, device, seed, settings, image, model."""
    _provenance_line(ctx, f":material/timer: {elapsed:.2f} s", device, seed, settings_text)


def _provenance_line(ctx, when: str, device: str, seed, settings_text: str) -> None:
    st.caption(f"{when} on {device} · seed {seed} · {settings_text} · image *{ctx.image_name}* at "
               f"{ctx.size}×{ctx.size} · model {ctx.model_label}")
