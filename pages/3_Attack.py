"""Attack: move the interpretation map with a tiny change of the image, method by method."""
import streamlit as st

from rrs.settings import L2, LINF, OBJECTIVES, AttackSettings, MapSettings
from ui import attack as A
from ui import predict, runs, sidebar, state
from ui import widgets as W

ctx = sidebar.page("Attack", "An **interpretation attack** changes the image by an amount too small to see, "
                   "keeping the model's answer, but moving the map. Each method is attacked on its own; its "
                   "**no-attack floor** — how much two clean runs with different noise seeds agree — shows "
                   "how much of a change is the attack and how much is just sampling noise.")

# ------------------------------------------------------------------------------ controls
methods = W.methods_multiselect(st, "Methods to attack", "attack_methods", ["vanilla", "smoothgrad", "rrs"],
                                help="Each selected method gets its own attack.")
c2, c3, c4 = st.columns([1.4, 1, 1.6])
objective = state.widget(c2.selectbox, "Attack objective", "attack_objective", "topk", options=list(OBJECTIVES),
                         format_func=lambda o: W.name_and_detail(OBJECTIVES[o])[0])
c2.caption(W.name_and_detail(OBJECTIVES[objective])[1].capitalize())      # its box shows the name only
norm = W.norm_radio(c3, "Budget norm", "attack_norm", LINF, options=[LINF, L2],
                    help="ℓ∞ limits the change of every single value; ℓ2 limits the total energy of the change.")
if norm.is_inf:
    epsilon = W.linf_budget_slider(c4, "Budget ε (in 1/255 steps)", "attack_budget_linf", 4,
                                   help="No pixel value changes by more than ε/255.")
    c4.caption(f"every value changes by at most {epsilon * 255:.0f}/255 = {epsilon:.4f}")
else:
    epsilon = float(state.widget(c4.slider, "Budget ε (ℓ2, pixel units)", "attack_budget_l2", 1.0, min_value=0.1,
                                 max_value=10.0, step=0.1))
    c4.caption(f"≈ {L2.per_pixel(epsilon, ctx.dim) * 255:.2f}/255 per value if spread evenly "
               f"over all {ctx.dim:,} values")

c8, c9, c10, c11 = st.columns([2.4, 1, 1.3, 1])
sigma = W.sigma_slider(ctx, c8, "attack_sigma", 0.15)
samples = state.widget(c9.select_slider, "Map samples T", "attack_samples", 32,
                       options=[1, 2, 4, 8, 16, 32, 64, 128],
                       help="Noise samples of the smoothed maps that are compared (clean and attacked).")
cell = W.cell_slider(ctx, c10, "attack_cell", 16)
k = W.k_slider(c11, "attack_k", 5.0, label="Top-k share")
with st.expander("Attack strength and seed"):
    c5, c6, c7 = st.columns([1, 1, 0.8])
    steps = state.widget(c5.slider, "Attack steps", "attack_steps", 10, min_value=1, max_value=50, step=1,
                         help="Projected gradient steps; more steps = stronger attack, proportionally slower.")
    eot = state.widget(c6.slider, "EOT samples per step", "attack_eot", 4, min_value=1, max_value=32, step=1,
                       help="Expectation over transformation: fresh noise draws averaged in each step when "
                            "attacking a smoothed method.")
    seed = W.seed_input(c7, "attack_seed")
st.caption("Defaults from the study (docs/results.md): with 16×16-px cells and T = 32 the smoothed maps agree "
           "with themselves (no-attack floor about 0.8), so what the attack does stands out from sampling noise.")

if not methods:
    st.info("Select at least one method to attack.", icon=":material/info:")
    st.stop()
map_settings = W.settings_or_stop(lambda: MapSettings(method="rrs", sigma=sigma, samples=int(samples), cell=cell,
                                                      k=k, seed=seed))
attack_settings = W.settings_or_stop(lambda: AttackSettings(objective=objective, norm=norm, epsilon=epsilon,
                                                            steps=int(steps), eot=int(eot), seed=seed))
A.break_scale(ctx, methods, map_settings, attack_settings)
per_method = A.predict(ctx, methods, map_settings, attack_settings)

run_key = (ctx.model_key, ctx.image_digest, ctx.size, tuple(methods), map_settings, attack_settings)
go = state.run_gate("attack", run_key, "Run attack", "Attack every selected method with these settings.")
if runs.stopped("attack") or not go:
    st.info(f"Press **Run attack** to attack {len(methods)} method(s) with {steps} steps each — "
            f"{predict.predicted_text(sum(per_method.values()))}. A Stop button (or changing a setting) "
            "cancels it.", icon=":material/info:")
    st.stop()

# --------------------------------------------------- the images, then each method as it arrives
images = st.container()
opacity = W.opacity_slider("attack_opacity", 0.6)
results, outcomes = A.run_methods(ctx, methods, map_settings, attack_settings, per_method, opacity)
if not results:
    st.stop()
state.mark_done("attack", run_key)
with images:
    shown = A.images(ctx, results)

# ------------------------------------------------------------- summary, guarantee, export
rows = A.summary(ctx, results, outcomes, seed, sigma, cell, k)
A.guarantee_scale(ctx, map_settings, epsilon, norm)
A.exports(ctx, results, rows, shown)
