"""Certify: which top cells of the RRS map are guaranteed to stay, and up to what change —
certified while the samples arrive (anytime), valid whenever the run stops."""
import streamlit as st

from rrs.compute import device as D
from rrs.methods import RAW_METHODS
from rrs.settings import L2, MapSettings
from rrs.workflows.certify import plan_run
from ui import budgets, caching, runs, sidebar, state
from ui import certify as CU
from ui import certify_view as V
from ui import widgets as W
from ui.compute import CERTIFY_BETAS

ctx = sidebar.page("Certify", "A **certificate** is a mathematical guarantee: for *every* change of the image "
                   "up to a size L, the top cells of the RRS map stay in the top-k. It holds for the map "
                   "expected over the noise; the **finite-sample** value also accounts for having only T "
                   "samples and holds with probability 1 − η, while the **plug-in** value treats the "
                   "T-sample map as exact (an estimate, not a guarantee). Certificates update while the "
                   "samples arrive; stopping keeps the last one, still valid.")
CAP = budgets.MAX_SAMPLES[budgets.device_kind(ctx.model)]
live = st.container()       # a run's Stop button and live maps, then its verdict: under the title, in view

# ------------------------------------------------------------------------------ controls
c1, c2, c3, c4 = st.columns([1.4, 1.4, 1.2, 0.8])
base = W.method_select(c1, "Base attribution", "certify_base", "vanilla", options=RAW_METHODS,
                       help="The map RRS smooths and certifies.")
cell = W.cell_slider(ctx, c2, "certify_cell", 32, disabled=base == "gradcam",
                     help="Coarse cells give far stronger certificates: fewer cells compete for the top-k.")
k = W.k_slider(c3, "certify_k", 10.0)
seed = W.seed_input(c4, "certify_seed")

c5, c6, c7 = st.columns([2.4, 1.3, 1.1])
sigma = W.sigma_slider(ctx, c5, "certify_sigma", 0.25)
samples = state.widget(c6.select_slider, "Samples T", "certify_samples", 1024,
                       options=[t for t in CU.T_OPTIONS if t <= CAP],
                       help="Noise draws; they arrive in doubling checkpoints and every checkpoint is certified. "
                            "More samples = tighter finite-sample certificate.")
eta = state.widget(c7.select_slider, "Failure probability η", "certify_eta", 0.05,
                   options=[0.001, 0.01, 0.05, 0.1, 0.2],
                   help="The finite-sample certificates hold with probability at least 1 − η over the sampling "
                        "(split over the checkpoints, so stopping early keeps them valid).")
with st.expander("Scheme, RRS scoring vector, noise type and precision"):
    s0, s1, s2, s3 = st.columns([1.5, 1.2, 1.6, 1])
    scheme = state.widget(s0.radio, "Finite-sample scheme", "certify_scheme", "selection", options=list(CU.SCHEME_TEXT),
                          format_func=lambda s: CU.SCHEME_TEXT[s][0],
                          help=" ".join(f"{v[0]}: {v[1]}" for v in CU.SCHEME_TEXT.values()))
    s0.caption(CU.SCHEME_TEXT[scheme][1])
    scoring, scoring_param = W.scoring_controls(
        s1, s2, "certify", help="Top-k′ uniform scores allow exact (Clopper–Pearson) intervals: the strongest "
                                "finite-sample certificates.")
    noise = W.noise_radio(s3, "certify_noise", help="The Gaussian-CDF certificate exists only for Gaussian noise.")
    precision = state.widget(s3.radio, "Precision", "certify_precision", D.precision(ctx.model, ctx.x),
                             options=["fp32", "bf16"],
                             horizontal=True, help="bf16 autocast is faster; the certificate is then about the "
                                                   "map computed in bf16 (bench/precision.py: it agrees with fp32 "
                                                   "within the no-attack floor).")

settings = W.settings_or_stop(lambda: MapSettings(
    method="rrs", base=base, noise=noise, sigma=sigma, samples=int(samples), cell=cell, k=k, scoring=scoring,
    scoring_param=scoring_param, seed=seed, precision=precision))
run_key = (ctx.model_key, ctx.image_digest, ctx.size, settings, scheme)
plan = plan_run(int(samples), scheme)
with runs.measuring("the run's time"):
    predicted, caption = CU.predicted_time(ctx.model, ctx.x, settings, plan, ctx.device)
c6.caption(caption)

b1, b2 = st.columns([1, 3])
clicked = b1.button("Certify", type="primary", key="certify_run", icon=":material/play_arrow:",
                    help="Draw the noise samples in doubling checkpoints and certify after each one.")
if clicked or st.session_state.pop("certify.go", False):
    V.run_live(ctx, run_key, settings, CU.certify_settings(st.session_state.get("certify_norm", L2), eta, scheme),
               plan, live)

sampled, from_cache, view_key = V.stored_result(run_key, int(samples), predicted)
V.status_line(sampled, float(eta), from_cache)

# --------------------------------------------------------------------------- view controls
v1, v2, v3, v4 = st.columns([1.3, 2.3, 1.4, 1.1])
norm = W.norm_radio(v1, "Threat norm", "certify_norm", L2,
                    help="How the size of a change is measured: ℓ2 = overall energy, ℓ∞ = largest change "
                         "of any single value, ℓ1 = total change.")
view = caching.anytime_view(view_key, sampled, CU.certify_settings(norm, eta, sampled.scheme))
kind = state.widget(v3.selectbox, "Certificate for the region", "certify_kind", "best",
                    options=["best", "rdp", "cdf"] if view.report.cdf_cells_finite is not None else ["rdp"],
                    format_func={"best": "Best of both", "rdp": "RDP (exact)", "cdf": "Gaussian CDF"}.get,
                    help="Two sound certificates: Rényi-DP (exact) and Gaussian-CDF. **Best of both**: a cell "
                         "certified by either is guaranteed.")
beta = float(state.widget(v4.select_slider, "β (share that must stay)", "certify_beta", 1.0,
                          options=list(CERTIFY_BETAS), format_func=lambda b: f"{b:.0%}",
                          help="β = 1: every top-k cell must stay; β = 0.8: at least 80% of them."))
radius = V.radius_slider(v2, view, kind, beta, run_key)

# ------------------------------------------------------------------- verdict and numbers
verdict = V.verdict_box(view, beta, live)
if view_key == run_key:
    V.suggestion_buttons(ctx, view, beta, settings, run_key, CAP)
V.numbers(view, beta, radius, kind)

# ------------------------------------------------------------------------------- figures
opacity = W.opacity_slider("certify_opacity", 0.55)
series = V.figures(ctx, view, radius, kind, beta, opacity)
V.break_section(ctx, view, beta, kind, view_key, settings)
V.export_section(ctx, view, verdict, series, radius, kind, beta, opacity, from_cache)
