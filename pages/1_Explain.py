"""Explain: raw and smoothed interpretation maps of the current image, side by side."""
import streamlit as st

from rrs import plots as P
from rrs import session as S
from ui import common as ui

ctx = ui.page("Explain", "Where did the model look? Pick a method. **Smoothing** averages the map over "
              "many noisy copies of the image, which makes it steadier; **RRS** averages the *ranks* of "
              "the cells, which is what makes it certifiable.")

# ------------------------------------------------------------------------------ controls
c1, c2, c3, c4 = st.columns([1.4, 1.4, 1.4, 0.8])
method = ui.widget(c1.selectbox, "Method", "explain_method", "rrs", options=list(S.METHOD_LABELS),
                   format_func=S.METHOD_LABELS.get,
                   help="Raw methods read the model's gradient once; smoothed ones average over noisy copies.")
smoothed = method in S.SMOOTH_METHODS
base = ui.widget(c2.selectbox, "Base attribution (what gets smoothed)", "explain_base", "vanilla",
                 options=list(S.BASE_LABELS), format_func=S.BASE_LABELS.get, disabled=not smoothed,
                 help="Vanilla gradient: how much each pixel changes the score. Grad-CAM: a coarse map "
                      "from the last convolutional layer.")
attribution = base if smoothed else method
cell = ui.widget(c3.select_slider, "Cell size", "explain_cell", 8, options=ui.cells_options(ctx.size),
                 format_func=ui.cell_label, disabled=attribution == "gradcam",
                 help="Maps are made of cells: single pixels or square patches (coarser = steadier). "
                      "Grad-CAM always uses its own feature grid.")
seed = ui.widget(c4.number_input, "Seed", "explain_seed", 0, min_value=0, max_value=2**31 - 1, step=1,
                 disabled=not smoothed, help="Fixes the noise draws, so a result can be recomputed exactly.")

c5, c6, c7 = st.columns([2.4, 1.2, 1.2])
sigma = ui.sigma_slider(ctx, c5, "explain_sigma", 0.15)
samples = ui.widget(c6.select_slider, "Noise samples T", "explain_samples", 16,
                    options=[1, 2, 4, 8, 16, 32, 64, 128, 256], disabled=not smoothed,
                    help="How many noisy copies are averaged. More = steadier map, proportionally slower.")
k_percent = ui.widget(c7.slider, "Top-k: share of cells", "explain_k", 5.0, min_value=1.0, max_value=50.0,
                      step=1.0, format="%g%%", help="The k most important cells are outlined; k is a share "
                                                    "of all cells so it keeps its meaning when cells change.")
scoring, scoring_param, noise = "topk", 10.0, "gaussian"
with st.expander("RRS scoring vector and noise type", expanded=method == "rrs"):
    s1, s2, s3 = st.columns([1.2, 1.6, 1])
    scoring = ui.widget(s1.selectbox, "Scoring family", "explain_scoring", "topk", options=list(S.SCORING_LABELS),
                        format_func=S.SCORING_LABELS.get, disabled=method != "rrs",
                        help="RRS replaces each noisy map by a score per rank: the top cell gets v₁, the next v₂, …")
    label, lo, hi, default, step = S.SCORING_PARAMS[scoring]
    scoring_param = ui.widget(s2.slider, label, f"explain_scoring_param_{scoring}", default, min_value=lo,
                              max_value=hi, step=step, disabled=method != "rrs")
    noise = ui.widget(s3.radio, "Noise", "explain_noise", "gaussian", options=["gaussian", "laplace"],
                      format_func=str.capitalize, horizontal=True, disabled=not smoothed,
                      help="Laplace noise with the same standard deviation as the Gaussian of this σ.")

settings = S.MapSettings(method=method, base=base, sigma=float(sigma), samples=int(samples), cell=int(cell),
                         k_percent=float(k_percent), scoring=scoring, scoring_param=float(scoring_param),
                         seed=int(seed), noise=noise)

# ------------------------------------------------------------------------------- compute
result = ui.run(f"Computing the {S.METHOD_LABELS[method]} map", ui.cached_map, ctx.model_key,
                ctx.image_digest, ctx.size, settings, _model=ctx.model, _x=ctx.x)
if result is None:
    st.stop()
if result.message:
    st.warning(result.message, icon=":material/warning:")

rows, cols = result.grid
m = st.columns([1.8, 1, 1, 1.2, 0.9])
ui.metric(m[0], "Prediction", result.label, f"{result.confidence:.1%} confident")
ui.metric(m[1], "Map size", f"{rows}×{cols}", f"{result.n:,} cells of {result.pixel_cell} px" if attribution != "gradcam"
          else f"{result.n} Grad-CAM cells")
ui.metric(m[2], "Top-k", f"{result.k:,} cells", f"{k_percent:g}% of the map")
if smoothed:
    ui.metric(m[3], "Top-k overlap with raw map", f"{result.raw_agreement():.2f}",
              help="Fraction of the smoothed map's top-k cells that are also top-k in the raw map.")
else:
    ui.metric(m[3], "Noise samples", "none", "raw maps use the image once")
ui.metric(m[4], "Time", f"{result.elapsed:.2f} s", result.device)

opacity = ui.opacity_slider("explain_opacity", 0.6)
top_raw = result.topk_mask("raw")
top_map = result.topk_mask("map")
left, right = st.columns(2, gap="medium")
with left:
    ui.figure(P.map_figure(ctx.picture, result.raw, result.pixel_cell, opacity, topk_mask=top_raw,
                           title=f"Raw: {S.BASE_LABELS[attribution]}"), "explain_raw",
              "Bright = where the model looked (one gradient, no noise); orange outline = the top-k cells.")
with right:
    if smoothed:
        ui.figure(P.map_figure(ctx.picture, result.map, result.pixel_cell, opacity, topk_mask=top_map,
                               title=f"Smoothed: {S.METHOD_LABELS[method]}, T = {result.samples_used}"),
                  "explain_smoothed",
                  "Bright = where the model looked on average over noisy copies; orange outline = the top-k cells.")
    else:
        st.info("Pick **SmoothGrad**, **Sparsified SmoothGrad** or **RRS** as the method to see the smoothed "
                "map next to this raw one.", icon=":material/info:")
st.caption("Each map is scaled to its own range (0 = least, 1 = most important) so raw gradients and "
           "smoothed scores share one colour scale.")
ui.provenance(ctx, result.elapsed, result.device, settings.seed if smoothed else "—", settings.describe())

# -------------------------------------------------------------------------------- export
panels = [{"title": f"Raw: {S.BASE_LABELS[attribution]}", "map": result.raw, "topk": top_raw}]
if smoothed:
    panels.append({"title": f"{S.METHOD_LABELS[method]} (T={result.samples_used})", "map": result.map,
                   "topk": top_map})
footer = f"{settings.describe()} · image {ctx.image_name} ({ctx.image_digest}) · {ctx.model_key} · {result.device}"
header = {"settings": ui.settings_dict(settings), "provenance": ctx.provenance()}


def _png() -> bytes:
    """The maps as one PNG (rrs.figures, the command line's renderer, when present)."""
    try:
        from rrs.figures import comparison_png
    except ImportError:
        return ui.maps_png(ctx, panels, result.pixel_cell, opacity, footer, title=f"{ctx.image_name}: {result.label}")()
    maps = {p["title"]: p["map"] for p in panels}
    return comparison_png(ctx.x, maps, normalize="max", opacity=opacity, k=result.k,
                          cell=None if attribution == "gradcam" else result.cell,
                          title=f"{ctx.image_name}: {result.label}", caption=footer)


ui.exports(f"rrs_explain_{ctx.image_name}_{method}", "explain_export", png=_png,
           csv=S.to_csv(result.rows(), header=header),
           json_text=S.to_json("explain", ui.settings_dict(settings),
                               {**result.summary(), "map": result.map, "raw": result.raw},
                               ctx.provenance()))
