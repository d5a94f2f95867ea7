"""Explain: raw and smoothed interpretation maps of the current image, side by side."""
import streamlit as st

from ui import plots as P
from rrs.figures import comparison_png, topk_mask
from rrs.methods import METHODS, RAW_METHODS
from rrs.settings import MapSettings
from ui import caching, export, runs, sidebar, state, story
from ui import widgets as W

ctx = sidebar.page("Explain", "Where did the model look? Pick a method. **Smoothing** averages the map over "
                   "many noisy copies of the image, which makes it steadier; **RRS** averages the *ranks* of "
                   "the cells, which is what makes it certifiable.")

# ------------------------------------------------------------------------------ controls
c1, c2, c3, c4 = st.columns([1.4, 1.4, 1.4, 0.8])
method = W.method_select(c1, "Method", "explain_method", "rrs",
                         help="Raw methods read the model's gradient once; smoothed ones average over noisy copies.")
smoothed = METHODS[method].smoothed
base = W.method_select(c2, "Base attribution (what gets smoothed)", "explain_base", "vanilla", options=RAW_METHODS,
                       disabled=not smoothed,
                       help="Vanilla gradient: how much each pixel changes the score. Grad-CAM: a coarse map "
                            "from the last convolutional layer.")
attribution = base if smoothed else method
if attribution == "gradcam":
    # Grad-CAM has no cell size to choose: its cells are the last convolutional layer's grid,
    # named once the map is known (below)
    cell_slot = c3.empty()
    cell = int(st.session_state.get(state.KEEP + "explain_cell", state.preset_default("explain_cell", 8)))
else:
    cell_slot = None
    cell = W.cell_slider(ctx, c3, "explain_cell", 8,
                         help="Maps are made of cells: single pixels or square patches (coarser = steadier).")
seed = W.seed_input(c4, "explain_seed", disabled=not smoothed,
                    help="Fixes the noise draws, so a result can be recomputed exactly.")

c5, c6, c7 = st.columns([2.4, 1.2, 1.2])
sigma = W.sigma_slider(ctx, c5, "explain_sigma", 0.15, disabled=not smoothed,
                       why="Not used: a raw method reads the gradient of the image itself, with no noise.")
samples = state.widget(c6.select_slider, "Noise samples T", "explain_samples", 16,
                   options=[1, 2, 4, 8, 16, 32, 64, 128, 256], disabled=not smoothed,
                   help="How many noisy copies are averaged. More = steadier map, proportionally slower.")
k = W.k_slider(c7, "explain_k", 5.0, help="The k most important cells are outlined; k is a share of all cells "
                                         "so it keeps its meaning when cells change.")
with st.expander("RRS scoring vector and noise type", expanded=method == "rrs"):
    s1, s2, s3 = st.columns([1.2, 1.6, 1])
    scoring, scoring_param = W.scoring_controls(
        s1, s2, "explain", disabled=method != "rrs",
        help="RRS replaces each noisy map by a score per rank: the top cell gets v₁, the next v₂, …")
    noise = W.noise_radio(s3, "explain_noise", disabled=not smoothed,
                          help="Laplace noise with the same standard deviation as the Gaussian of this σ "
                               "(scale σ/√2).")

settings = W.settings_or_stop(lambda: MapSettings(
    method=method, base=base, noise=noise, sigma=sigma, samples=int(samples), cell=cell, k=k, scoring=scoring,
    scoring_param=scoring_param, seed=seed))

# ------------------------------------------------------------------------------- compute
predicted = story.predict_map(ctx.model, ctx.x, settings)
out = runs.run(f"Computing the {METHODS[method].label} map", caching.map_result, ctx, settings, predicted=predicted)
result = out.value
if result is None:
    st.stop()
if result.message:
    st.warning(result.message, icon=":material/warning:")
rows, cols = result.grid
if cell_slot is not None:
    cell_slot.markdown(f"**Cells**  \nGrad-CAM's own {rows}×{cols} feature grid")

m = st.columns([1.3, 1, 1])
W.metric(m[0], "Prediction", result.label, f"{result.confidence:.0%} confident")
W.metric(m[1], "Map size", f"{rows}×{cols}", f"top {result.k:,} of {result.n:,} cells",
         help=(f"Cells of {result.pixel_cell}×{result.pixel_cell} px" if attribution != "gradcam" else
               "Grad-CAM's feature grid") + f"; the top {result.k:,} ({k * 100:g}% of the cells) are outlined "
         "in orange on the maps.")
if smoothed:
    W.metric(m[2], "Raw agreement", f"{result.raw_agreement():.2f}",
             help="Top-k overlap with the raw map: the fraction of the smoothed map's top-k cells that are also "
                  "top-k in the raw map.")
else:
    W.metric(m[2], "Noise samples", "none", "one gradient")

opacity = W.opacity_slider("explain_opacity", 0.6)
top_raw = result.topk_mask("raw")
top_map = result.topk_mask("map")
left, right = st.columns(2, gap="medium")
with left:
    W.figure(P.map_figure(ctx.picture, result.raw, result.pixel_cell, opacity, topk_mask=top_raw,
                          title=f"Raw: {METHODS[attribution].label}"), "explain_raw",
             "Bright = where the model looked (one gradient, no noise); orange outline = the top-k cells.")
with right:
    if smoothed:
        W.figure(P.map_figure(ctx.picture, result.map, result.pixel_cell, opacity, topk_mask=top_map,
                              title=f"Smoothed: {METHODS[method].label}, T = {result.samples_used}"),
                 "explain_smoothed",
                 "Bright = where the model looked on average over noisy copies; orange outline = the top-k cells.")
    else:
        st.info("Pick **SmoothGrad**, **Sparsified SmoothGrad** or **RRS** as the method to see the smoothed "
                "map next to this raw one.", icon=":material/info:")
st.caption("Each map is scaled to its own range (0 = least, 1 = most important) so raw gradients and "
           "smoothed scores share one colour scale.")
used = result.settings
runs.provenance(ctx, out, result.device, used.seed if smoothed else "—", used.describe())

# -------------------------------------------------------------------------------- export
maps = {f"Raw: {METHODS[attribution].label}": result.raw}
if smoothed:
    maps[f"{METHODS[method].label} (T={result.samples_used})"] = result.map
footer = f"{used.describe()} · image {ctx.image_name} ({ctx.image_digest}) · {ctx.model_key} · {result.device}"
W.exports(f"rrs_explain_{ctx.image_name}_{method}", "explain_export",
          png=lambda: comparison_png(ctx.x, maps, normalize="max", opacity=opacity, k=result.k,
                                     cell=None if attribution == "gradcam" else result.cell,
                                     title=f"{ctx.image_name}: {result.label}", caption=footer),
          csv=export.to_csv(result.rows(), header={"settings": used, "provenance": ctx.provenance()}),
          json_text=export.to_json("explain", used, {**result.summary(), "map": result.map, "raw": result.raw},
                                   ctx.provenance()))

# ------------------------------------------------------------------- every method at once
st.divider()
ALL = ["smoothgrad", "sparsified", "rrs"]
all_settings = {m: settings.replace(method=m) for m in ALL}
all_predicted = sum(story.predict_map(ctx.model, ctx.x, s) for s in all_settings.values())
show_all = state.widget(st.toggle, "Compare all methods side by side", "explain_all", False,
                        help="The raw map and every smoothing method on this image, with the same σ, T, "
                             "cells and seed.")
if show_all and not runs.stopped("explain_all"):
    st.caption(f"{METHODS[attribution if not smoothed else base].label} raw, then SmoothGrad, Sparsified "
               f"SmoothGrad and RRS at T = {samples} — {story.predicted_text(all_predicted)}.")
    maps, outcomes = {}, []
    with runs.stoppable("explain_all"):
        for m, s_m in all_settings.items():
            o = runs.run(f"Computing the {METHODS[m].label} map", caching.map_result, ctx, s_m,
                         predicted=story.predict_map(ctx.model, ctx.x, s_m))
            if o.value is None:
                st.stop()
            maps[m], outcomes = o.value, outcomes + [o]
    first = maps["smoothgrad"]
    panels = [(f"Raw {METHODS[first.settings.attribution].short.lower()}", first.raw,
               "one gradient, no noise")] + [
        (METHODS[m].short, r.map, f"T = {r.samples_used} noisy copies") for m, r in maps.items()]
    cols_all = st.columns(len(panels), gap="small")
    for i, (col, (title, cmap, note)) in enumerate(zip(cols_all, panels)):
        scaled = cmap / max(P.display_scale(cmap), 1e-12)
        fig = P.map_figure(ctx.picture, scaled, first.pixel_cell, opacity, zmax=1.0,
                           topk_mask=topk_mask(cmap, first.k), title=title, height=260)
        fig.update_traces(showscale=False, selector=dict(type="heatmap"))   # same size panels; scale in the caption
        fig.update_layout(title=dict(font=dict(size=13)))
        with col:
            W.figure(fig, f"explain_all_{i}", f"{note}; orange = top {first.k} cells.")
    st.caption("All four maps on one colour scale, dark = least to bright yellow = most important: each is "
               "divided by its own top value, so the pattern, not the units, is compared.")
    total = runs.Outcome(None, sum(o.elapsed for o in outcomes))
    total.cached = all(o.cached for o in outcomes)
    runs.provenance(ctx, total, first.device, seed, first.settings.describe())
