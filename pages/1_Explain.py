"""Explain: raw and smoothed interpretation maps of the current image, side by side."""
import streamlit as st

from rrs.methods import METHODS, RAW_METHODS
from rrs.settings import MapSettings
from ui import explain as E
from ui import runs, sidebar, state
from ui import widgets as W

ctx = sidebar.page("Explain", "Where did the model look? Pick a method. **Smoothing** averages the map over "
                   "many noisy copies of the image, which makes it steadier; **RRS** averages the *ranks* of "
                   "the cells, which is what makes it certifiable.")

# ------------------------------------------------------------------------------ controls
c1, c2, c3, c4 = st.columns([1.7, 1.4, 1.3, 0.7])      # the method's name fits its select box at 1024 px
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
out = E.compute(ctx, settings)
result = out.value
if result.message:
    st.warning(result.message, icon=":material/warning:")
if cell_slot is not None:
    cell_slot.markdown("**Cells**  \nGrad-CAM's own {}×{} feature grid".format(*result.grid))
E.cards(result, k)
opacity = W.opacity_slider("explain_opacity", 0.6)
E.maps(ctx, result, opacity)
runs.provenance(ctx, out, result.device, result.settings.seed if smoothed else "—", result.settings.describe())
E.exports(ctx, result, opacity)

# ------------------------------------------------------------------- every method at once
st.divider()
E.compare_all(ctx, settings, opacity)
