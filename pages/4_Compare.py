"""Compare: robustness versus computation — attacked top-k intersection and certified radius versus T.

Stored results of the evaluation study (``make eval``) are read from ``docs/results`` (or the
folder named by the ``RRS_RESULTS`` environment variable).
"""
import streamlit as st

from rrs.settings import L2, LINF, AttackSettings, CertifySettings, MapSettings
from ui import compare as CMP
from ui import predict, runs, sidebar, state
from ui import widgets as W

ctx = sidebar.page("Compare", "Smoothing costs one gradient per noise sample **T**. How much robustness does each "
                   "extra sample buy? Live on the current image: the top-k intersection under attack (with each "
                   "method's no-attack floor) and the certified radius of RRS, for several T.")

# ------------------------------------------------------------------------------ controls
methods = W.methods_multiselect(st, "Methods", "compare_methods", ["vanilla", "smoothgrad", "rrs"],
                                help="Raw methods do not use noise samples; they appear as flat reference lines.")
c2, c3 = st.columns([1.5, 1.3])
ts = state.widget(c2.multiselect, "Values of T", "compare_ts", [1, 2, 4, 8, 16], options=[1, 2, 4, 8, 16, 32, 64, 128])
epsilon = W.linf_budget_slider(c3, "Attack budget ε (ℓ∞, in 1/255 steps)", "compare_budget", 4, max_steps=16)
c6, c7, c9, c10 = st.columns([1.3, 1, 1, 1])
cell = W.cell_slider(ctx, c6, "compare_cell", 16)
k = W.k_slider(c7, "compare_k", 10.0, label="Top-k share")
beta = state.widget(c9.select_slider, "Certificate β", "compare_beta", 1.0, options=[0.5, 0.6, 0.7, 0.8, 0.9, 1.0],
                    format_func=lambda b: f"{b:.0%}")
norm = W.norm_radio(c10, "Certificate norm", "compare_norm", L2)
c8, _ = st.columns([2.4, 2])
sigma = W.sigma_slider(ctx, c8, "compare_sigma", 0.15)
with st.expander("Attack strength and seed"):
    c4, c5, c11 = st.columns([1, 1, 0.8])
    steps = state.widget(c4.slider, "Attack steps", "compare_steps", 5, min_value=1, max_value=30, step=1)
    eot = state.widget(c5.slider, "EOT samples", "compare_eot", 2, min_value=1, max_value=16, step=1)
    seed = W.seed_input(c11, "compare_seed")

# ------------------------------------------------------------------------ live comparison
if not methods or not ts:
    st.info("Select at least one method and one value of T.", icon=":material/info:")
else:
    req = CMP.Request(
        tuple(methods), tuple(sorted(int(t) for t in ts)),
        W.settings_or_stop(lambda: MapSettings(method="rrs", sigma=sigma, samples=1, cell=cell, k=k, seed=seed)),
        W.settings_or_stop(lambda: AttackSettings(objective="topk", norm=LINF, epsilon=epsilon, steps=int(steps),
                                                  eot=int(eot), seed=seed)),
        CertifySettings(norm=norm, eta=0.05, betas=(float(beta),)))
    run_key = (ctx.model_key, ctx.image_digest, ctx.size, req)
    predicted = CMP.predict(ctx, req)
    go = state.run_gate("compare", run_key, "Run comparison", "Attack every method at every T and certify RRS at every T.")
    if go and not runs.stopped("compare"):
        outcome = CMP.run(ctx, req, predicted)
        if outcome.value is not None:
            state.mark_done("compare", run_key)
            CMP.live(ctx, req, outcome)
    else:
        st.info(f"Press **Run comparison** for {req.jobs} attacks and certificates on this image — "
                f"{predict.predicted_text(predicted)}" + ("." if ctx.fast else
                                                          " (the fast preset in the sidebar makes it shorter)."),
                icon=":material/info:")

# ------------------------------------------------------------------------- stored results
CMP.stored()
