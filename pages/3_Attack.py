"""Attack: move the interpretation map with a tiny change of the image, method by method."""
import streamlit as st

from rrs import plots as P
from rrs import session as S
from ui import common as ui

ctx = ui.page("Attack", "An **interpretation attack** changes the image by an amount too small to see, "
              "keeping the model's answer, but moving the map. Each method is attacked on its own; its "
              "**no-attack floor** — how much two clean runs with different noise seeds agree — shows "
              "how much of a change is the attack and how much is just sampling noise.")

# ------------------------------------------------------------------------------ controls
c1, c2, c3 = st.columns([2.2, 1.6, 1])
methods = ui.widget(c1.multiselect, "Methods to attack", "attack_methods", ["vanilla", "smoothgrad", "rrs"],
                    options=list(S.METHOD_LABELS), format_func=S.METHOD_LABELS.get,
                    help="Each selected method gets its own attack.")
objective = ui.widget(c2.selectbox, "Attack objective", "attack_objective", "topk", options=list(S.OBJECTIVES),
                      format_func=S.OBJECTIVES.get)
norm = ui.widget(c3.radio, "Budget norm", "attack_norm", "linf", options=["linf", "l2"],
                 format_func={"linf": "ℓ∞", "l2": "ℓ2"}.get, horizontal=True,
                 help="ℓ∞ limits the change of every single value; ℓ2 limits the total energy of the change.")

c4, c5, c6, c7 = st.columns([1.6, 1, 1, 0.8])
dim = 3 * ctx.size * ctx.size
if norm == "linf":
    budget = ui.widget(c4.slider, "Budget ε (in 1/255 steps)", "attack_budget_linf", 4, min_value=1, max_value=32,
                       step=1, help="No pixel value changes by more than ε/255.")
    c4.caption(f"every value changes by at most {budget}/255 = {budget / 255:.4f}")
else:
    budget = ui.widget(c4.slider, "Budget ε (ℓ2, pixel units)", "attack_budget_l2", 1.0, min_value=0.1,
                       max_value=10.0, step=0.1)
    c4.caption(f"≈ {S.per_pixel_equivalent(budget, 2.0, dim) * 255:.2f}/255 per value if spread evenly "
               f"over all {dim:,} values")
steps = ui.widget(c5.slider, "Attack steps", "attack_steps", 10, min_value=1, max_value=50, step=1,
                  help="Projected gradient steps; more steps = stronger attack, proportionally slower.")
eot = ui.widget(c6.slider, "EOT samples per step", "attack_eot", 4, min_value=1, max_value=32, step=1,
                help="Expectation over transformation: fresh noise draws averaged in each step when attacking "
                     "a smoothed method.")
seed = ui.widget(c7.number_input, "Seed", "attack_seed", 0, min_value=0, max_value=2**31 - 1, step=1)

c8, c9, c10, c11 = st.columns([2.4, 1, 1.3, 1])
sigma = ui.sigma_slider(ctx, c8, "attack_sigma", 0.15)
samples = ui.widget(c9.select_slider, "Map samples T", "attack_samples", 16, options=[1, 2, 4, 8, 16, 32, 64, 128],
                    help="Noise samples of the smoothed maps that are compared (clean and attacked).")
cell = ui.widget(c10.select_slider, "Cell size", "attack_cell", 8, options=ui.cells_options(ctx.size),
                 format_func=ui.cell_label)
k_percent = ui.widget(c11.slider, "Top-k share", "attack_k", 5.0, min_value=1.0, max_value=50.0, step=1.0,
                      format="%g%%")

if not methods:
    st.info("Select at least one method to attack.", icon=":material/info:")
    st.stop()
try:
    map_settings = S.MapSettings(method="rrs", sigma=float(sigma), samples=int(samples), cell=int(cell),
                                 k_percent=float(k_percent), seed=int(seed))
    attack_settings = S.AttackSettings(objective=objective, norm=norm, budget=float(budget), steps=int(steps),
                                       eot=int(eot), seed=int(seed))
except ValueError as e:
    st.error(str(e), icon=":material/error:")
    st.stop()

run_key = (ctx.model_key, ctx.image_digest, ctx.size, tuple(methods), map_settings, attack_settings)
if not ui.run_gate("attack", run_key, "Run attack", "Attack every selected method with these settings."):
    st.info(f"Press **Run attack** to attack {len(methods)} method(s) with {steps} steps each. "
            "Changing a setting while it runs cancels it.", icon=":material/info:")
    st.stop()

results = {}
for i, method in enumerate(methods):
    res = ui.run(f"Attacking {S.METHOD_LABELS[method]} ({i + 1}/{len(methods)})", ui.cached_attack, ctx.model_key,
                 ctx.image_digest, ctx.size, method, map_settings, attack_settings, _model=ctx.model, _x=ctx.x)
    if res is not None:
        results[method] = res
if not results:
    st.stop()
ui.mark_done("attack", run_key)

# ---------------------------------------------------------------------------- the images
shown = ui.widget(st.radio, "Show the adversarial image made against", "attack_shown", list(results)[0],
                  options=list(results), format_func=S.METHOD_LABELS.get, horizontal=True)
ra = results[shown].result
diff, gain = P.difference_image(ctx.x, ra.x_adv)
i1, i2, i3 = st.columns(3)
res_shown = results[shown]
i1.image(ctx.picture, width="stretch",
         caption=f"Clean image — the model says {res_shown.clean_name} ({ra.clean_confidence:.1%})")
i2.image(S.working_image(ra.x_adv), width="stretch",
         caption=f"Adversarial image — the model says {res_shown.adv_name} ({ra.adv_confidence:.1%})")
i3.image(diff, width="stretch", caption=f"The change, amplified ×{gain:.0f} (grey = unchanged): "
                                        f"ℓ∞ = {ra.linf * 255:.2f}/255, ℓ2 = {ra.l2:.3f}")

# ------------------------------------------------------------------------ method by method
opacity = ui.opacity_slider("attack_opacity", 0.6)
for method, res in results.items():
    r = res.result
    st.markdown(f"##### {S.METHOD_LABELS[method]}")
    if res.message:
        st.warning(res.message, icon=":material/warning:")
    clean, attacked = S.as_array(r.clean_map), S.as_array(r.attacked_map)
    zmax = P.display_scale(clean, attacked)
    a, b, c = st.columns([1, 1, 0.8], gap="medium")
    with a:
        ui.figure(P.map_figure(ctx.picture, clean, res.pixel_cell, opacity, zmax=zmax,
                               topk_mask=S.topk_mask(clean, res.k), title="Clean map", height=330),
                  f"attack_clean_{method}", "Bright = where the model looked on the clean image; orange = top-k cells.")
    with b:
        ui.figure(P.map_figure(S.working_image(r.x_adv), attacked, res.pixel_cell, opacity, zmax=zmax,
                               topk_mask=S.topk_mask(attacked, res.k), title="Attacked map", height=330),
                  f"attack_adv_{method}", "The same method on the adversarial image, same colour scale.")
    with c:
        ui.metric(st, "Top-k intersection", f"{r.topk_intersection:.2f}",
                  f"{r.topk_intersection - res.floor:+.2f} vs no-attack floor {res.floor:.2f}", good_up=True,
                  help="Share of the clean top-k cells still in the top-k after the attack.")
        ui.metric(st, "Spearman rank correlation", f"{r.spearman:.2f}", f"Kendall τ {r.kendall:.2f}")
        with st.container(border=True):
            st.markdown(f"**Label** {res.clean_name} → {res.adv_name}")
            if r.label_preserved:
                st.badge("label kept", icon=":material/check:", color="green")
            else:
                st.badge("label changed", icon=":material/close:", color="red")
            st.caption(f"confidence {r.clean_confidence:.1%} → {r.adv_confidence:.1%} · {res.elapsed:.1f} s")

# ----------------------------------------------------------------------------- summary
st.subheader("Methods compared")
rows = [res.row() for res in results.values()]
cats = [S.METHOD_LABELS[m] for m in results]
series = [{"name": "no-attack floor (two clean seeds)", "values": [r["no_attack_floor"] for r in rows],
           "color": P.PALETTE[5]},
          {"name": "under attack", "values": [r["attacked_topk_intersection"] for r in rows], "color": P.PALETTE[3]}]
left, right = st.columns([1.3, 1], gap="medium")
with left:
    ui.figure(P.bars_figure(cats, series), "attack_bars",
              "Higher = steadier. The gap between a method's two bars is what the attack did; a low floor "
              "means the map varies by itself from run to run.")
with right:
    for r in rows:
        ui.metric(st, r["method"], f"{r['attacked_topk_intersection']:.2f}",
                  f"{r['attacked_topk_intersection'] - r['no_attack_floor']:+.2f} vs floor {r['no_attack_floor']:.2f}",
                  good_up=True)
table = [{"method": r["method"], "floor": r["no_attack_floor"], "attacked": r["attacked_topk_intersection"],
          "Spearman": r["spearman"], "label kept": r["label_preserved"], "confidence after": r["confidence_after"],
          "ℓ∞ (/255)": r["linf_255"], "ℓ2": r["l2"], "time (s)": r["elapsed_s"]} for r in rows]
st.dataframe(table, hide_index=True, width="stretch",
             column_config={k: st.column_config.NumberColumn(format="%.2f")
                            for k in ("floor", "attacked", "Spearman", "confidence after", "ℓ∞ (/255)", "ℓ2",
                                      "time (s)")})
elapsed = sum(r["elapsed_s"] for r in rows)
ui.provenance(ctx, elapsed, next(iter(results.values())).device, seed,
              f"{attack_settings.describe(dim)}; maps: σ = {sigma:g}, T = {samples}, cell {cell} px, top {k_percent:g}%")

# -------------------------------------------------------------------------------- export
settings = {"methods": list(results), "map": ui.settings_dict(map_settings),
            "attack": ui.settings_dict(attack_settings), "epsilon_pixel_units": attack_settings.epsilon}
clean_maps = {S.METHOD_LABELS[m]: res.result.clean_map for m, res in results.items()}
adv_maps = {S.METHOD_LABELS[m]: res.result.attacked_map for m, res in results.items()}
adv_images = {S.METHOD_LABELS[m]: res.result.x_adv for m, res in results.items()}
k_used = next(iter(results.values())).k
footer = f"{attack_settings.describe(dim)} · image {ctx.image_name} ({ctx.image_digest}) · {ctx.model_key}"


def _attack_png() -> bytes:
    try:
        from rrs.figures import attack_png
    except ImportError:
        panels = []
        for m, res in results.items():
            panels += [{"title": f"{S.METHOD_LABELS[m]}: clean", "map": res.result.clean_map},
                       {"title": f"{S.METHOD_LABELS[m]}: attacked", "map": res.result.attacked_map}]
        return P.maps_png(ctx.picture, panels, next(iter(results.values())).pixel_cell, footer=footer, columns=2)
    metrics_text = {S.METHOD_LABELS[m]: f"top-k ∩ {res.result.topk_intersection:.2f} (floor {res.floor:.2f})"
                    for m, res in results.items()}
    # Grad-CAM's feature grid is stretched over the image (cell=None), pixel cells align exactly
    cells = {S.METHOD_LABELS[m]: (None if res.map_settings.attribution == "gradcam" else res.cell)
             for m, res in results.items()}
    return attack_png(ctx.x, adv_images, clean_maps, adv_maps, k=k_used, metrics=metrics_text, cell=cells,
                      title=f"{ctx.image_name}: interpretation attack", caption=footer)


json_results = {"methods": {m: {**res.row(), "history": list(res.result.history)} for m, res in results.items()}}
ui.exports(f"rrs_attack_{ctx.image_name}", "attack_export", png=_attack_png,
           extra_png=("Adversarial image", lambda: P.image_png(ra.x_adv), f"adversarial_{shown}"),
           csv=S.to_csv(rows, header={**settings, "provenance": ctx.provenance()}),
           json_text=S.to_json("attack", settings, json_results, ctx.provenance()))
