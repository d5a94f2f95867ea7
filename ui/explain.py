"""The Explain page's views: the map's cards and figures, the export, and every smoothing
method side by side with an honest line on what was computed now and what came from the
cache.

The page (``pages/1_Explain.py``) lays out its controls and calls one function per result.
"""
from __future__ import annotations

import streamlit as st

from rrs.figures import comparison_png, topk_mask
from rrs.methods import METHODS
from rrs.settings import MapSettings

from . import caching, export, predict, runs, state
from . import plots as P
from . import widgets as W
__all__ = ["ALL", "compute", "cards", "maps", "exports", "compare_all", "cache_line"]

#: The smoothing methods shown side by side.
ALL = ["smoothgrad", "sparsified", "rrs"]


def compute(ctx, settings: MapSettings):
    """The map of ``settings`` (progress, predicted time, Stop on a widget change); the
    :class:`ui.runs.Outcome`, or the page stops when it failed."""
    with runs.measuring("the map's time"):
        predicted = predict.predict_map(ctx.model, ctx.x, settings)
    out = runs.run(f"Computing the {METHODS[settings.method].label} map", caching.map_result, ctx, settings,
                   predicted=predicted)
    if out.value is None:
        st.stop()
    if not out.cached:
        predict.record_map(ctx.model, ctx.x, out.value.settings, out.value.elapsed)
    return out


def cards(result, k: float) -> None:
    """Prediction, map size and the raw agreement (or "one gradient" for a raw method)."""
    rows, cols = result.grid
    gradcam = result.settings.attribution == "gradcam"
    m = st.columns([1.3, 1, 1])
    W.metric(m[0], "Prediction", result.label, f"{result.confidence:.0%} confident")
    W.metric(m[1], "Map size", f"{rows}×{cols}", f"top {result.k:,} of {result.n:,} cells",
             help=(f"Cells of {result.pixel_cell}×{result.pixel_cell} px" if not gradcam else
                   "Grad-CAM's feature grid") + f"; the top {result.k:,} ({k * 100:g}% of the cells) are outlined "
             "in orange on the maps.")
    if result.settings.smoothed:
        W.metric(m[2], "Raw agreement", f"{result.raw_agreement():.2f}",
                 help="Top-k overlap with the raw map: the fraction of the smoothed map's top-k cells that are also "
                      "top-k in the raw map.")
    else:
        W.metric(m[2], "Noise samples", "none", "one gradient")


def maps(ctx, result, opacity: float) -> None:
    """The raw map beside the smoothed one (or a hint to pick a smoothing method)."""
    s = result.settings
    left, right = st.columns(2, gap="medium")
    with left:
        W.figure(P.map_figure(ctx.picture, result.raw, result.pixel_cell, opacity, topk_mask=result.topk_mask("raw"),
                              title=f"Raw: {METHODS[s.attribution].label}"), "explain_raw",
                 "Bright = where the model looked (one gradient, no noise); orange outline = the top-k cells.")
    with right:
        if s.smoothed:
            W.figure(P.map_figure(ctx.picture, result.map, result.pixel_cell, opacity, topk_mask=result.topk_mask(),
                                  title=f"Smoothed: {METHODS[s.method].label}, T = {result.samples_used}"),
                     "explain_smoothed",
                     "Bright = where the model looked on average over noisy copies; orange outline = the top-k cells.")
        else:
            st.info("Pick **SmoothGrad**, **Sparsified SmoothGrad** or **RRS** as the method to see the smoothed "
                    "map next to this raw one.", icon=":material/info:")
    st.caption("Each map is scaled to its own range (0 = least, 1 = most important) so raw gradients and "
               "smoothed scores share one colour scale.")


def exports(ctx, result, opacity: float) -> None:
    """PNG of the maps, CSV of every cell, JSON with the settings to recompute."""
    used = result.settings
    maps_ = {f"Raw: {METHODS[used.attribution].label}": result.raw}
    if used.smoothed:
        maps_[f"{METHODS[used.method].label} (T={result.samples_used})"] = result.map
    footer = f"{used.describe()} · image {ctx.image_name} ({ctx.image_digest}) · {ctx.model_key} · {result.device}"
    W.exports(f"rrs_explain_{ctx.image_name}_{used.method}", "explain_export",
              png=lambda: comparison_png(ctx.x, maps_, normalize="max", opacity=opacity, k=result.k,
                                         cell=None if used.attribution == "gradcam" else result.cell,
                                         title=f"{ctx.image_name}: {result.label}", caption=footer),
              csv=export.to_csv(result.rows(), header={"settings": used, "provenance": ctx.provenance()}),
              json_text=export.to_json("explain", used, {**result.summary(), "map": result.map, "raw": result.raw},
                                       ctx.provenance()))


def cache_line(outcomes: list) -> str:
    """How the side-by-side maps were obtained: all computed now, all from the cache, or how
    many came from the cache and how long the others took."""
    fresh = [o for o in outcomes if not o.cached]
    cached = len(outcomes) - len(fresh)
    if not fresh:
        return (f":material/cached: all {len(outcomes)} maps from cache (computed earlier in "
                f"{sum(o.elapsed for o in outcomes):.2f} s)")
    now = sum(o.elapsed for o in fresh)
    if not cached:
        return f":material/timer: all {len(outcomes)} maps computed now in {now:.2f} s"
    return (f":material/timer: {cached} of {len(outcomes)} maps from cache; the other {len(fresh)} computed now "
            f"in {now:.2f} s")


def compare_all(ctx, settings: MapSettings, opacity: float) -> None:
    """The raw map and every smoothing method with the same σ, T, cells and seed, on one scale."""
    all_settings = {m: settings.replace(method=m) for m in ALL}
    predicted = sum(predict.predict_map(ctx.model, ctx.x, s) for s in all_settings.values())
    show = state.widget(st.toggle, "Compare all methods side by side", "explain_all", False,
                        help="The raw map and every smoothing method on this image, with the same σ, T, "
                             "cells and seed.")
    if not show or runs.stopped("explain_all"):
        return
    st.caption(f"{METHODS[settings.attribution].label} raw, then SmoothGrad, Sparsified SmoothGrad and RRS at "
               f"T = {settings.samples} — {predict.predicted_text(predicted)}.")
    results, outcomes = {}, []
    with runs.stoppable("explain_all"):
        for m, s_m in all_settings.items():
            o = runs.run(f"Computing the {METHODS[m].label} map", caching.map_result, ctx, s_m,
                         predicted=predict.predict_map(ctx.model, ctx.x, s_m))
            if o.value is None:
                st.stop()
            if not o.cached:
                predict.record_map(ctx.model, ctx.x, o.value.settings, o.value.elapsed)
            results[m], outcomes = o.value, outcomes + [o]
    first = results["smoothgrad"]
    panels = [(f"Raw {METHODS[first.settings.attribution].short.lower()}", first.raw,
               "one gradient, no noise")] + [
        (METHODS[m].short, r.map, f"T = {r.samples_used} noisy copies") for m, r in results.items()]
    cols = st.columns(len(panels), gap="small")
    for i, (col, (title, cmap, note)) in enumerate(zip(cols, panels)):
        scaled = cmap / max(P.display_scale(cmap), 1e-12)
        fig = P.map_figure(ctx.picture, scaled, first.pixel_cell, opacity, zmax=1.0,
                           topk_mask=topk_mask(cmap, first.k), title=title, height=260)
        fig.update_traces(showscale=False, selector=dict(type="heatmap"))   # same size panels; scale in the caption
        fig.update_layout(title=dict(font=dict(size=13)))
        with col:
            W.figure(fig, f"explain_all_{i}", f"{note}; orange = top {first.k} cells.")
    st.caption("All four maps on one colour scale, dark = least to bright yellow = most important: each is "
               "divided by its own top value, so the pattern, not the units, is compared.")
    st.caption(f"{cache_line(outcomes)} on {first.device} · seed {first.settings.seed} · "
               f"{first.settings.describe()} · image *{ctx.image_name}* at {ctx.size}×{ctx.size} · "
               f"model {ctx.model_label}")
