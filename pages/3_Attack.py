"""Attack: move the interpretation map with a tiny change of the image, method by method."""
import streamlit as st

from ui import plots as P
from rrs.figures import attack_png, topk_mask
from rrs.methods import METHODS
from rrs.settings import L2, LINF, OBJECTIVES, AttackSettings, CertifySettings, MapSettings
from ui import caching, export, runs, sidebar, state, story
from ui import widgets as W
from ui.compute import CERTIFY_BETAS, as_array, working_image

ctx = sidebar.page("Attack", "An **interpretation attack** changes the image by an amount too small to see, "
                   "keeping the model's answer, but moving the map. Each method is attacked on its own; its "
                   "**no-attack floor** — how much two clean runs with different noise seeds agree — shows "
                   "how much of a change is the attack and how much is just sampling noise.")

# ------------------------------------------------------------------------------ controls
methods = W.methods_multiselect(st, "Methods to attack", "attack_methods", ["vanilla", "smoothgrad", "rrs"],
                                help="Each selected method gets its own attack.")
c2, c3, c4 = st.columns([1.4, 1, 1.6])
objective = state.widget(c2.selectbox, "Attack objective", "attack_objective", "topk", options=list(OBJECTIVES),
                         format_func=OBJECTIVES.get)
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
per_method = {m: story.predict_attack(ctx.model, ctx.x, map_settings.replace(method=m), attack_settings)
              for m in methods}

run_key = (ctx.model_key, ctx.image_digest, ctx.size, tuple(methods), map_settings, attack_settings)
go = state.run_gate("attack", run_key, "Run attack", "Attack every selected method with these settings.")
if runs.stopped("attack") or not go:
    st.info(f"Press **Run attack** to attack {len(methods)} method(s) with {steps} steps each — "
            f"{story.predicted_text(sum(per_method.values()))}. A Stop button (or changing a setting) "
            "cancels it.", icon=":material/info:")
    st.stop()

results, outcomes = {}, {}
with runs.stoppable("attack"):
    for i, method in enumerate(methods):
        settings_m = map_settings.replace(method=method)
        out = runs.run(f"Attacking {METHODS[method].label} ({i + 1}/{len(methods)})", caching.attack, ctx,
                       settings_m, attack_settings, predicted=per_method[method])
        if out.value is not None:
            results[method], outcomes[method] = out.value, out
            if not out.cached:
                story.record_attack(ctx.model, ctx.x, settings_m, attack_settings, out.elapsed)
if not results:
    st.stop()
state.mark_done("attack", run_key)

# ---------------------------------------------------------------------------- the images
shown = state.widget(st.radio, "Show the adversarial image made against", "attack_shown", list(results)[0],
                     options=list(results), format_func=W.method_label, horizontal=True)
res_shown = results[shown]
ra = res_shown.result
diff, gain = P.difference_image(ctx.x, ra.x_adv)
i1, i2, i3 = st.columns(3)
i1.image(ctx.picture, width="stretch",
         caption=f"Clean image — the model says {res_shown.clean_name} ({ra.clean_confidence:.1%})")
i2.image(working_image(ra.x_adv), width="stretch",
         caption=f"Adversarial image — the model says {res_shown.adv_name} ({ra.adv_confidence:.1%})")
i3.image(diff, width="stretch", caption=f"The change, amplified ×{gain:.0f} (grey = unchanged): "
                                        f"ℓ∞ = {ra.linf * 255:.2f}/255, ℓ2 = {ra.l2:.3f}")

# ------------------------------------------------------------------------ method by method
opacity = W.opacity_slider("attack_opacity", 0.6)
for method, res in results.items():
    r = res.result
    st.markdown(f"##### {METHODS[method].label}")
    if res.message:
        st.warning(res.message, icon=":material/warning:")
    clean, attacked = as_array(r.clean_map), as_array(r.attacked_map)
    zmax = P.display_scale(clean, attacked)
    a, b = st.columns(2, gap="medium")
    with a:
        fig = P.map_figure(ctx.picture, clean, res.pixel_cell, opacity, zmax=zmax,
                           topk_mask=topk_mask(clean, res.k), title="Clean map", height=330)
        fig.update_traces(showscale=False, selector=dict(type="heatmap"))      # one scale, shown on the right
        W.figure(fig, f"attack_clean_{method}", "Bright = where the model looked on the clean image; orange = top-k cells.")
    with b:
        W.figure(P.map_figure(working_image(r.x_adv), attacked, res.pixel_cell, opacity, zmax=zmax,
                              topk_mask=topk_mask(attacked, res.k), title="Attacked map", height=330),
                 f"attack_adv_{method}", "The same method on the adversarial image, same colour scale.")
    c1, c2, c3 = st.columns([1.15, 0.9, 1.3])
    W.metric(c1, "Top-k intersection", f"{r.topk_intersection:.2f}",
             f"{r.topk_intersection - res.floor:+.2f} vs floor {res.floor:.2f}", good_up=True,
             help="Share of the clean top-k cells still in the top-k after the attack, against the no-attack "
                  "floor (two clean runs with different noise seeds).")
    W.metric(c2, "Rank order", f"{r.spearman:.2f}", f"Kendall τ {r.kendall:.2f}",
             help="Spearman rank correlation between the clean and the attacked map (1 = same order).")
    with c3.container(border=True):
        st.markdown(f"**Label** {res.clean_name} → {res.adv_name}")
        text, color, icon = story.label_badge(r.label_preserved, r.clean_confidence, r.adv_confidence)
        # the badge wraps its text in two lines (label; confidence change) so a narrow card never cuts it
        st.markdown(f":{color}-badge[{icon} {text.split(', ')[0]}]  \n:{color}-badge[{text.split(', ', 1)[1]}]")
        st.caption("from cache" if outcomes[method].cached else f"attack took {res.elapsed:.1f} s")

# ----------------------------------------------------------------------------- summary
st.subheader("Methods compared")
rows = [res.row() for res in results.values()]
series = [{"name": "no-attack floor (two clean seeds)", "values": [r["no_attack_floor"] for r in rows],
           "color": P.PALETTE[5]},
          {"name": "under attack", "values": [r["attacked_topk_intersection"] for r in rows], "color": P.PALETTE[3]}]
left, right = st.columns([1.1, 1], gap="medium")
with left:
    W.figure(P.bars_figure([METHODS[r["method_id"]].short for r in rows], series), "attack_bars",
             "Higher = steadier. The gap between a method's two bars is what the attack did; a low floor "
             "means the map varies by itself from run to run.")
with right:
    for r in rows:
        W.metric(st, METHODS[r["method_id"]].short, f"{r['attacked_topk_intersection']:.2f}",
                 f"{r['attacked_topk_intersection'] - r['no_attack_floor']:+.2f} vs floor {r['no_attack_floor']:.2f}",
                 good_up=True, help=f"{r['method']}: top-k intersection under attack, against its no-attack floor.")
st.markdown(story.attack_takeaway(rows))
table = [{"method": r["method"], "floor": r["no_attack_floor"], "attacked": r["attacked_topk_intersection"],
          "Spearman": r["spearman"], "label kept": r["label_preserved"], "confidence after": r["confidence_after"],
          "ℓ∞ (/255)": r["linf_255"], "ℓ2": r["l2"], "time (s)": r["elapsed_s"]} for r in rows]
st.dataframe(table, hide_index=True, width="stretch",
             column_config={k: st.column_config.NumberColumn(format="%.2f")
                            for k in ("floor", "attacked", "Spearman", "confidence after", "ℓ∞ (/255)", "ℓ2",
                                      "time (s)")})
first = next(iter(results.values()))
all_cached = all(o.cached for o in outcomes.values())
total = runs.Outcome(None, sum(r["elapsed_s"] for r in rows))
total.cached = all_cached
runs.provenance(ctx, total, first.device, seed,
                f"{first.attack_settings.describe(ctx.dim)}; maps: σ = {sigma:g}, T = {first.map_settings.samples}, "
                f"cell {cell} px, top {k * 100:g}%")

# ----------------------------------------------------------- the guarantee on the same scale
st.subheader("The attack and the guarantee on one scale")
cert_map = W.with_progress("Certifying the RRS map of these settings", caching.map_result, ctx, map_settings)
if cert_map is not None and cert_map.stats is not None:
    cert = caching.certificate(ctx, cert_map, CertifySettings(norm=norm, eta=0.05, betas=CERTIFY_BETAS))
    guaranteed = max(cert.radius("rdp_finite", 1.0), cert.radius("cdf_finite", 1.0))
    estimate = max(cert.radius("rdp_plugin", 1.0), cert.radius("cdf_plugin", 1.0))
    fig, caption = story.budget_scale(epsilon, guaranteed, estimate, norm, ctx.dim)
    st.markdown(f"RRS certificate of these map settings (T = {cert_map.samples_used}, all {cert_map.k} top-k cells "
                f"at once, {norm.label}) next to the attack budget:")
    W.figure(fig, "attack_scale", caption)

# -------------------------------------------------------------------------------- export
settings = {"methods": list(results), "map": {m: res.map_settings for m, res in results.items()},
            "attack": first.attack_settings}
labels = {m: METHODS[m].label for m in results}
footer = f"{first.attack_settings.describe(ctx.dim)} · image {ctx.image_name} ({ctx.image_digest}) · {ctx.model_key}"


def _attack_png() -> bytes:
    metrics_text = {labels[m]: f"top-k ∩ {res.result.topk_intersection:.2f} (floor {res.floor:.2f})"
                    for m, res in results.items()}
    # Grad-CAM's feature grid is stretched over the image (cell=None), pixel cells align exactly
    cells = {labels[m]: (None if res.map_settings.attribution == "gradcam" else res.cell)
             for m, res in results.items()}
    return attack_png(ctx.x, {labels[m]: res.result.x_adv for m, res in results.items()},
                      {labels[m]: res.result.clean_map for m, res in results.items()},
                      {labels[m]: res.result.attacked_map for m, res in results.items()},
                      k=first.k, metrics=metrics_text, cell=cells,
                      title=f"{ctx.image_name}: interpretation attack", caption=footer)


json_results = {"methods": {m: {**res.row(), "history": list(res.result.history)} for m, res in results.items()}}
W.exports(f"rrs_attack_{ctx.image_name}", "attack_export", png=_attack_png,
          extra_png=("Adversarial image", lambda: P.image_png(ra.x_adv), f"adversarial_{shown}"),
          csv=export.to_csv(rows, header={**settings, "provenance": ctx.provenance()}),
          json_text=export.to_json("attack", settings, json_results, ctx.provenance()))
