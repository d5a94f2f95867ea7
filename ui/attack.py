"""The Attack page's views: each method's attack as it arrives, the adversarial images, the
summary of every method against its floor, the budget next to the guarantee, and the export.

The page (``pages/3_Attack.py``) lays out its controls and calls one function per result.
"""
from __future__ import annotations

import streamlit as st

from rrs.figures import attack_png, topk_mask
from rrs.methods import METHODS
from rrs.settings import AttackSettings, CertifySettings, MapSettings

from . import caching, export, runs, state, story
from . import predict as times
from . import plots as P
from . import widgets as W
from .compute import CERTIFY_BETAS, as_array, working_image

__all__ = ["predict", "break_scale", "run_methods", "images", "method_section", "summary", "guarantee_scale",
           "exports"]

#: The break-radius sweep of the Attack page spans the budget slider's range.
SWEEP_HIGH = {"l2": 10.0, "linf": 32 / 255}


def break_scale(ctx, methods: list, map_settings: MapSettings, attack: AttackSettings) -> None:
    """Where the chosen budget falls: each method's break radius and the certified radius on the
    budget's scale (a robustness profile of these settings, computed on demand and kept for
    the session, so moving the budget slider redraws it without recomputing)."""
    from rrs.timing import format_seconds
    from rrs.workflows.robustness import RobustnessSettings, method_settings

    from . import jobs

    norm = attack.norm
    rs = RobustnessSettings(norm=norm, high=SWEEP_HIGH[norm.key], budgets=9, steps=attack.steps, eot=attack.eot,
                            sweep_samples=map_settings.samples, confirm_samples=max(64, 4 * map_settings.samples),
                            seed=attack.seed)
    ms = method_settings(map_settings, methods)
    store = st.session_state.setdefault("attack.profile", {})
    key = (ctx.model_key, ctx.image_digest, ctx.size, ms, rs)
    if key not in store:
        with runs.measuring():
            secs = times.predict_robustness(ctx.model, ctx.x, ms, rs, budgets=len(rs.grid) + rs.bisection)
        if not st.button(f"Show where this budget falls: each method's break radius ({format_seconds(secs)})",
                         key="attack_radii", icon=":material/straighten:",
                         help="Attacks each method at a sweep of budgets (each starting from the previous one's "
                              "result), narrows down the smallest budget that pushes a top cell out, and certifies "
                              "the smoothed maps; computed once for these settings, then every budget is placed "
                              "on it."):
            return
        prof = W.with_progress("Finding each method's break radius", jobs.robustness, ctx.model, ctx.x, ms, rs)
        if prof is None:
            return
        store[key] = prof
        n = len(rs.grid) + rs.bisection
        times.record_robustness(ctx.model, ctx.x, n, times.predict_robustness(ctx.model, ctx.x, ms, rs, budgets=n,
                                                                              prior=True), prof.elapsed)
    fig, caption, said = story.break_scale(store[key], attack.epsilon)
    W.figure(fig, "attack_break_scale", caption)
    st.markdown(f":material/straighten: {said}")



def predict(ctx, methods: list, map_settings: MapSettings, attack: AttackSettings) -> dict:
    """Predicted seconds per method (:func:`ui.predict.predict_attack`)."""
    with runs.measuring():
        return {m: times.predict_attack(ctx.model, ctx.x, map_settings.replace(method=m), attack) for m in methods}


def run_methods(ctx, methods: list, map_settings: MapSettings, attack: AttackSettings, predicted: dict,
                opacity: float) -> tuple[dict, dict]:
    """Attack each method in turn (Stop button while it runs) and show each method's result as
    soon as it arrives (:func:`method_section`). Returns ``(results, outcomes)`` by method."""
    results, outcomes = {}, {}
    with runs.stoppable("attack"):
        for i, method in enumerate(methods):
            settings_m = map_settings.replace(method=method)
            out = runs.run(f"Attacking {METHODS[method].label} ({i + 1}/{len(methods)})", caching.attack, ctx,
                           settings_m, attack, predicted=predicted[method])
            if out.value is None:
                continue
            results[method], outcomes[method] = out.value, out
            if not out.cached:
                times.record_attack(ctx.model, ctx.x, settings_m, attack, out.elapsed)
                W.scroll_here(f"attack-{method}")      # each result in view as it arrives
            method_section(ctx, method, out.value, out, opacity)
    return results, outcomes


def images(ctx, results: dict):
    """The clean image, the adversarial image made against the chosen method and the change;
    returns the method shown."""
    shown = state.widget(st.radio, "Show the adversarial image made against", "attack_shown", list(results)[0],
                     options=list(results), format_func=W.method_label, horizontal=True)
    res = results[shown]
    ra = res.result
    diff, gain = P.difference_image(ctx.x, ra.x_adv)
    # (keyed: on a narrow screen the change wraps below, no wider than the two images above it)
    i1, i2, i3 = st.container(key="attack_images").columns(3)
    i1.image(ctx.picture, width="stretch",
             caption=f"Clean image — the model says {res.clean_name} ({ra.clean_confidence:.1%})")
    i2.image(working_image(ra.x_adv), width="stretch",
             caption=f"Adversarial image — the model says {res.adv_name} ({ra.adv_confidence:.1%})")
    i3.image(diff, width="stretch", caption=f"The change, amplified ×{gain:.0f} (grey = unchanged): "
                                            f"ℓ∞ = {ra.linf * 255:.2f}/255, ℓ2 = {ra.l2:.3f}")
    return shown


def method_section(ctx, method: str, res, outcome, opacity: float) -> None:
    """One method: its clean and attacked maps on one scale, the top-k intersection against its
    floor, the rank order and the label badge."""
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
        # both maps keep their (identical) colour bar, so the two pictures are the same size
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
        st.caption("from cache" if outcome.cached else f"attack took {res.elapsed:.1f} s")


_TABLE_FORMAT = ("floor", "attacked", "Spearman", "confidence after", "ℓ∞ (/255)", "ℓ2", "time (s)")


def summary(ctx, results: dict, outcomes: dict, seed: int, sigma: float, cell: int, k: float) -> list[dict]:
    """Every method's attacked top-k intersection against its floor (bars and cards), the
    takeaway computed from them, the table and the provenance line; returns the rows."""
    if not all(o.cached for o in outcomes.values()):
        W.scroll_here("attack-summary")        # the comparison in view once the last method is in
    st.subheader("Methods compared")
    rows = [res.row() for res in results.values()]
    series = [{"name": "no-attack floor (two clean seeds)", "values": [r["no_attack_floor"] for r in rows],
               "color": P.PALETTE[5]},
              {"name": "under attack", "values": [r["attacked_topk_intersection"] for r in rows],
               "color": P.PALETTE[3]}]
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
    st.dataframe(table, hide_index=True, width="stretch", height="content",
                 column_config={c: st.column_config.NumberColumn(format="%.2f") for c in _TABLE_FORMAT})
    first = next(iter(results.values()))
    total = runs.Outcome(None, sum(r["elapsed_s"] for r in rows))
    total.cached = all(o.cached for o in outcomes.values())
    runs.provenance(ctx, total, first.device, seed,
                    f"{first.attack_settings.describe(ctx.dim)}; maps: σ = {sigma:g}, T = {first.map_settings.samples}, "
                    f"cell {cell} px, top {k * 100:g}%")
    return rows


def guarantee_scale(ctx, map_settings: MapSettings, epsilon: float, norm) -> None:
    """The attack budget next to the RRS certificate of the same map settings, on one scale."""
    st.subheader("The attack and the guarantee on one scale")
    cert_map = W.with_progress("Certifying the RRS map of these settings", caching.map_result, ctx, map_settings)
    if cert_map is None or cert_map.stats is None:
        return
    cert = caching.certificate(ctx, cert_map, CertifySettings(norm=norm, eta=0.05, betas=CERTIFY_BETAS))
    times.record_certificate(ctx.model, ctx.x, map_settings, cert.elapsed)
    guaranteed = max(cert.radius("rdp_finite", 1.0), cert.radius("cdf_finite", 1.0))
    estimate = max(cert.radius("rdp_plugin", 1.0), cert.radius("cdf_plugin", 1.0))
    fig, caption = story.budget_scale(epsilon, guaranteed, estimate, norm, ctx.dim)
    st.markdown(f"RRS certificate of these map settings (T = {cert_map.samples_used}, all {cert_map.k} top-k cells "
                f"at once, {norm.label}) next to the attack budget:")
    W.figure(fig, "attack_scale", caption)


def exports(ctx, results: dict, rows: list[dict], shown: str) -> None:
    """PNG of every method, the adversarial image, CSV and JSON (settings to recompute)."""
    first = next(iter(results.values()))
    settings = {"methods": list(results), "map": {m: res.map_settings for m, res in results.items()},
                "attack": first.attack_settings}
    labels = {m: METHODS[m].label for m in results}
    footer = (f"{first.attack_settings.describe(ctx.dim)} · image {ctx.image_name} ({ctx.image_digest}) · "
              f"{ctx.model_key}")

    def png() -> bytes:
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

    x_adv = results[shown].result.x_adv
    json_results = {"methods": {m: {**res.row(), "history": list(res.result.history)} for m, res in results.items()}}
    W.exports(f"rrs_attack_{ctx.image_name}", "attack_export", png=png,
              extra_png=("Adversarial image", lambda: P.image_png(x_adv), f"adversarial_{shown}"),
              csv=export.to_csv(rows, header={**settings, "provenance": ctx.provenance()}),
              json_text=export.to_json("attack", settings, json_results, ctx.provenance()))
