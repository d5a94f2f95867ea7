"""Compare: robustness versus computation — attacked top-k intersection and certified radius versus T.

Stored results of the evaluation study (``make eval``) are read from ``docs/results`` (or the
folder named by the ``RRS_RESULTS`` environment variable).
"""
import os
from pathlib import Path

import streamlit as st

from ui import plots as P
from rrs.study import load_summary
from rrs.methods import METHODS
from rrs.settings import L2, LINF, AttackSettings, CertifySettings, MapSettings
from ui import caching, export, runs, sidebar, state, story
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


def _attack_chart(arows: list[dict]) -> None:
    series = []
    for i, m in enumerate(methods):
        mine = sorted((r for r in arows if r["method_id"] == m), key=lambda r: r["T"])
        color = P.PALETTE[i % len(P.PALETTE)]
        series.append({"name": f"{METHODS[m].short} — under attack", "x": [r["T"] for r in mine],
                       "y": [r["attacked_topk_intersection"] for r in mine], "color": color})
        series.append({"name": f"{METHODS[m].short} — no-attack floor", "x": [r["T"] for r in mine],
                       "y": [r["no_attack_floor"] for r in mine], "color": color, "dash": "dot"})
    W.figure(P.lines_figure(series, "noise samples T (log scale)", "share of top-k cells kept", y_range=(0, 1.05),
                            title="Under attack, and without (floor)"), "compare_attack",
             "Higher = the map keeps its top cells. Solid = under attack; dotted = the same method's no-attack "
             "floor (two clean runs with different seeds): an attacked line can only be as high as its floor.")
    return series


def _radius_charts(crows: list[dict], unit: str, scale: float) -> tuple[list, list]:
    xs = [r["T"] for r in crows]
    finite = [{"name": "RDP, finite-sample", "x": xs, "y": [r["rdp_finite"] * scale for r in crows],
               "color": P.CERTIFIED},
              {"name": "Gaussian-CDF, finite-sample", "x": xs, "y": [r["cdf_finite"] * scale for r in crows],
               "color": P.PALETTE[2], "dash": "dash"}]
    plugin = [{"name": "RDP, plug-in", "x": xs, "y": [r["rdp_plugin"] * scale for r in crows], "color": P.TOPK},
              {"name": "Gaussian-CDF, plug-in", "x": xs, "y": [r["cdf_plugin"] * scale for r in crows],
               "color": P.PALETTE[3], "dash": "dash"}]
    W.figure(P.lines_figure(finite, "noise samples T (log scale)", f"guaranteed radius ({unit})",
                            title=f"Guarantee of RRS, β = {beta:.0%}"), "compare_certify",
             "The real guarantee (holds with probability ≥ 95%): 0 means nothing is guaranteed yet. It needs many samples to prove the ranks "
             "are stable, so it starts at 0 and grows with T (try T = 64 or 128).")
    return finite, plugin


def _plugin_chart(plugin: list, unit: str) -> None:
    W.figure(P.lines_figure(plugin, "noise samples T (log scale)", f"estimated radius ({unit})",
                            title="Estimate only (plug-in): not a guarantee", height=300), "compare_plugin",
             "The plug-in value treats the T-sample map as exact. With very few samples the map looks "
             "perfectly certain (one noisy copy has no visible noise), so the estimate is largest at small T "
             "and falls as more samples reveal the real noise — more samples do not make the map worse.")


def _live(out: dict, outcome) -> None:
    arows, crows = out["attack"], out["certify"]
    unit = "1/255, ℓ∞" if norm.is_inf else f"{norm.label}, pixel units"
    scale = 255.0 if norm.is_inf else 1.0
    flipped = sorted({f"{r['method']} (T = {r['T']})" for r in arows if not r["label_preserved"]})
    if flipped:
        st.warning("No step of the attack kept the label for: " + ", ".join(flipped) + ". Their "
                   "numbers show the strongest label-flipping candidate; try a smaller budget or more "
                   "steps.", icon=":material/warning:")
    best = {m: max((r for r in arows if r["method_id"] == m), key=lambda r: r["T"]) for m in methods}
    mcols = st.columns(min(len(methods), 4) + 1)
    for col, m in zip(mcols, methods):
        r = best[m]
        W.metric(col, f"{METHODS[m].short}, T = {r['T']}" if METHODS[m].smoothed else METHODS[m].short, f"{r['attacked_topk_intersection']:.2f}",
                 f"{r['attacked_topk_intersection'] - r['no_attack_floor']:+.2f} vs floor {r['no_attack_floor']:.2f}",
                 good_up=True, help=f"{METHODS[m].label}: top-k intersection under attack at the largest T.")
    last = crows[-1]
    W.metric(mcols[-1], f"Guarantee, T = {last['T']}", f"{max(last['rdp_finite'], last['cdf_finite']) * scale:.3g}",
             f"estimate {max(last['rdp_plugin'], last['cdf_plugin']) * scale:.3g}",
             help=f"Certified radius of RRS ({unit}) at β = {beta:.0%}: finite-sample guarantee; the delta is "
                  "the plug-in estimate, which is not a guarantee.")
    left, right = st.columns(2, gap="medium")
    with left:
        series = _attack_chart(arows)
    with right:
        finite, plugin = _radius_charts(crows, unit, scale)
    _plugin_chart(plugin, unit)
    st.dataframe(story.readable_rows(arows, ["method", "T", "no_attack_floor", "attacked_topk_intersection",
                                             "spearman", "label_preserved", "linf_255", "elapsed_s"]),
                 hide_index=True, width="stretch")
    runs.provenance(ctx, outcome, ctx.device, seed,
                    f"{attack_settings.describe()}; maps σ = {sigma:g}, cell {cell} px, top {k * 100:g}%; "
                    f"certificate β = {beta:.0%}, {norm.label}, η = {certify_settings.eta:g}")
    settings = {"methods": methods, "T": sorted(ts), "map": map_settings, "attack": attack_settings,
                "certify": certify_settings}
    footer = f"{attack_settings.describe()} · σ={sigma:g} · image {ctx.image_name} ({ctx.image_digest})"
    W.exports(f"rrs_compare_{ctx.image_name}", "compare_export",
              png=lambda: P.curves_png([{**s, "dash": s.get("dash") == "dot"} for s in series],
                                       "noise samples T", "top-k intersection",
                                       "Robustness under attack versus T", log_x=True, footer=footer),
              extra_png=("PNG radius vs T", lambda: P.curves_png(
                  [{**s, "dash": bool(s.get("dash"))} for s in finite + plugin], "noise samples T",
                  f"certified radius ({unit})", "Certified radius of RRS versus T", log_x=True, footer=footer),
                  "radius_vs_T"),
              csv=export.to_csv(arows + [{"method": "RRS certificate", **r} for r in crows],
                                header={**settings, "provenance": ctx.provenance()}),
              json_text=export.to_json("compare", settings, {"attack": arows, "certify": crows,
                                                             "elapsed_s": out["elapsed"]}, ctx.provenance()))


if not methods or not ts:
    st.info("Select at least one method and one value of T.", icon=":material/info:")
else:
    map_settings = W.settings_or_stop(lambda: MapSettings(method="rrs", sigma=sigma, samples=1, cell=cell, k=k,
                                                          seed=seed))
    attack_settings = W.settings_or_stop(lambda: AttackSettings(objective="topk", norm=LINF, epsilon=epsilon,
                                                                steps=int(steps), eot=int(eot), seed=seed))
    certify_settings = CertifySettings(norm=norm, eta=0.05, betas=(float(beta),))
    args = (tuple(methods), tuple(sorted(ts)), map_settings, attack_settings, certify_settings)
    run_key = (ctx.model_key, ctx.image_digest, ctx.size, *args)
    jobs = sum(len(ts) if METHODS[m].smoothed else 1 for m in methods) + len(ts)
    predicted = (sum(story.predict_attack(ctx.model, ctx.x, map_settings.replace(method=m, samples=int(t)),
                                          attack_settings)
                     for m in methods for t in (sorted(ts) if METHODS[m].smoothed else sorted(ts)[:1]))
                 + sum(story.predict_map(ctx.model, ctx.x, map_settings.replace(samples=int(t))) for t in ts))
    go = state.run_gate("compare", run_key, "Run comparison", "Attack every method at every T and certify RRS at every T.")
    if go and not runs.stopped("compare"):
        with runs.stoppable("compare"):
            outcome = runs.run(f"Running {jobs} attacks and certificates", caching.compare, ctx, *args,
                               predicted=predicted)
        if outcome.value is not None:
            state.mark_done("compare", run_key)
            _live(outcome.value, outcome)
    else:
        st.info(f"Press **Run comparison** for {jobs} attacks and certificates on this image — "
                f"{story.predicted_text(predicted)} (the fast preset in the sidebar makes it shorter).",
                icon=":material/info:")

# ------------------------------------------------------------------------- stored results

def _readable_summary(df):
    """The stored summary with readable values (method names, cells, budgets, measures) and
    column names for people."""
    from rrs.study.config import method_label
    from rrs.study.plots import CERT_LABELS, fmt_budget
    df = df.copy()
    if "method" in df:
        df["method"] = df["method"].map(lambda m: method_label(str(m)) if story._present(m) else m)
    if "budget" in df and "norm" in df:
        df["budget"] = [fmt_budget(n, float(b)) if story._present(b) else "" for n, b in zip(df["norm"], df["budget"])]
        df = df.drop(columns=["norm"])
    if "certificate" in df:
        df["certificate"] = df["certificate"].map(lambda c: CERT_LABELS.get(str(c), c))
    if "metric" in df:
        df["metric"] = df["metric"].map(lambda m: story.STORED_METRICS.get(str(m), m))
    return df.rename(columns=story.COLUMNS)


st.divider()
st.subheader("Stored evaluation results")
results_dir = Path(os.environ.get("RRS_RESULTS", Path(__file__).resolve().parent.parent / "docs" / "results"))
try:
    summary = load_summary(results_dir)
except Exception as e:  # a damaged results file must not break the page
    st.warning(f"The stored results could not be read: {e}", icon=":material/warning:")
    summary = None
if summary is None or len(summary) == 0:
    st.info("No stored results yet — run `make eval` (or `python -m rrs evaluate --quick`) to create them; "
            "they appear here next to the live numbers.", icon=":material/info:")
else:
    experiments = sorted(summary["experiment"].dropna().unique()) if "experiment" in summary else []
    exp = state.widget(st.selectbox, "Experiment", "compare_stored_experiment", experiments[0] if experiments else None,
                       options=experiments) if experiments else None
    view = summary[summary["experiment"] == exp] if exp is not None else summary
    if {"T", "mean", "method", "metric"} <= set(view.columns) and view["T"].notna().any():
        metrics_avail = sorted(view["metric"].dropna().unique())
        metric = state.widget(st.selectbox, "Measure", "compare_stored_metric", metrics_avail[0], options=metrics_avail,
                              format_func=lambda m: story.STORED_METRICS.get(m, m))
        sub = view[(view["metric"] == metric) & view["T"].notna()]
        group_cols = [c for c in ("method", "cell", "norm", "budget", "certificate", "beta") if c in sub.columns]
        stored = []
        for i, (key, g) in enumerate(sub.groupby(group_cols, dropna=False)):
            g = g.sort_values("T")
            key = key if isinstance(key, tuple) else (key,)
            stored.append({"name": story.stored_series_name(dict(zip(group_cols, key))), "x": list(g["T"]),
                           "y": list(g["mean"]), "color": P.PALETTE[i % len(P.PALETTE)]})
        label = story.STORED_METRICS.get(metric, metric)
        W.figure(P.lines_figure(stored[:12], "noise samples T (log scale)", label, title=f"Stored: {exp} — {label}"),
                 "compare_stored", "Means over the evaluation's images and seeds (see docs/results.md for "
                                   "the 95% confidence intervals and settings).")
        view = view[view["metric"] == metric]
    st.dataframe(_readable_summary(view.dropna(axis=1, how="all")), hide_index=True, width="stretch")
