"""The Compare page's views: the live comparison versus T (attacked top-k intersection with
each method's floor, the RRS guarantee and its plug-in estimate) and the stored results of
the evaluation study. Every caption is computed from the numbers its chart draws
(:func:`ui.story.floor_caption`, :func:`ui.story.plugin_caption`).

The page (``pages/4_Compare.py``) lays out its controls and calls :func:`predict`,
:func:`live` and :func:`stored`.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import streamlit as st

from rrs.methods import METHODS
from rrs.settings import AttackSettings, CertifySettings, MapSettings

from . import caching, export, runs, state, story
from . import predict as times
from . import plots as P
from . import widgets as W

__all__ = ["Request", "predict", "run", "live", "stored", "results_dir"]


@dataclass(frozen=True)
class Request:
    """Everything a live comparison depends on (the cache key with the image and model)."""

    methods: tuple
    ts: tuple
    map: MapSettings
    attack: AttackSettings
    certify: CertifySettings

    @property
    def jobs(self) -> int:
        return sum(len(self.ts) if METHODS[m].smoothed else 1 for m in self.methods) + len(self.ts)

    def attacked(self):
        """``(method, T)`` of every attack (a raw method once: it does not use T)."""
        return [(m, t) for m in self.methods for t in (self.ts if METHODS[m].smoothed else self.ts[:1])]


def predict(ctx, req: Request) -> float:
    """Predicted seconds: every attack and every certified RRS map (:mod:`ui.predict`)."""
    with runs.measuring():
        return (sum(times.predict_attack(ctx.model, ctx.x, req.map.replace(method=m, samples=int(t)), req.attack)
                    for m, t in req.attacked())
                + sum(times.predict_map(ctx.model, ctx.x, req.map.replace(samples=int(t)))
                      + times.predict_certificate(ctx.model, ctx.x, req.map) for t in req.ts))


def run(ctx, req: Request, predicted: float):
    """The comparison (Stop button while it runs); records the attacks' times for the next
    prediction. Returns the :class:`ui.runs.Outcome`."""
    with runs.stoppable("compare"):
        outcome = runs.run(f"Running {req.jobs} attacks and certificates", caching.compare, ctx, req.methods,
                           req.ts, req.map, req.attack, req.certify, predicted=predicted)
    if outcome.value is not None and not outcome.cached:
        for r in outcome.value["attack"]:
            if (r["method_id"], r["T"]) in req.attacked():
                times.record_attack(ctx.model, ctx.x, req.map.replace(method=r["method_id"], samples=r["T"]),
                                    req.attack, r["elapsed_s"])
    return outcome


def _attack_chart(methods, arows: list[dict]) -> list[dict]:
    series = []
    for i, m in enumerate(methods):
        mine = sorted((r for r in arows if r["method_id"] == m), key=lambda r: r["T"])
        color = P.PALETTE[i % len(P.PALETTE)]
        series.append({"name": f"{METHODS[m].short} — under attack", "x": [r["T"] for r in mine],
                       "y": [r["attacked_topk_intersection"] for r in mine], "color": color})
        series.append({"name": f"{METHODS[m].short} — no-attack floor", "x": [r["T"] for r in mine],
                       "y": [r["no_attack_floor"] for r in mine], "color": color, "dash": "dot"})
    W.figure(P.lines_figure(series, "noise samples T (log scale)", "share of top-k cells kept", y_range=(0, 1.05),
                            title="Under attack, and without (floor)"), "compare_attack", story.floor_caption(arows))
    return series


def _radius_series(crows: list[dict], scale: float) -> tuple[list, list]:
    xs = [r["T"] for r in crows]
    finite = [{"name": "RDP, finite-sample", "x": xs, "y": [r["rdp_finite"] * scale for r in crows],
               "color": P.CERTIFIED},
              {"name": "Gaussian-CDF, finite-sample", "x": xs, "y": [r["cdf_finite"] * scale for r in crows],
               "color": P.PALETTE[2], "dash": "dash"}]
    plugin = [{"name": "RDP, plug-in", "x": xs, "y": [r["rdp_plugin"] * scale for r in crows], "color": P.TOPK},
              {"name": "Gaussian-CDF, plug-in", "x": xs, "y": [r["cdf_plugin"] * scale for r in crows],
               "color": P.PALETTE[3], "dash": "dash"}]
    return finite, plugin


def live(ctx, req: Request, outcome) -> None:
    """The live comparison: cards at the largest T, the attacked-versus-floor chart, the
    guarantee and the plug-in estimate versus T, the table, provenance and export."""
    out = outcome.value
    arows, crows = out["attack"], out["certify"]
    norm, beta = req.certify.norm, req.certify.betas[0]
    unit = "1/255, ℓ∞" if norm.is_inf else f"{norm.label}, pixel units"
    scale = 255.0 if norm.is_inf else 1.0
    flipped = sorted({f"{r['method']} (T = {r['T']})" for r in arows if not r["label_preserved"]})
    if flipped:
        st.warning("No step of the attack kept the label for: " + ", ".join(flipped) + ". Their "
                   "numbers show the strongest label-flipping candidate; try a smaller budget or more "
                   "steps.", icon=":material/warning:")
    best = {m: max((r for r in arows if r["method_id"] == m), key=lambda r: r["T"]) for m in req.methods}
    mcols = st.columns(min(len(req.methods), 4) + 1)
    for col, m in zip(mcols, req.methods):
        r = best[m]
        W.metric(col, f"{METHODS[m].short}, T = {r['T']}" if METHODS[m].smoothed else METHODS[m].short,
                 f"{r['attacked_topk_intersection']:.2f}",
                 f"{r['attacked_topk_intersection'] - r['no_attack_floor']:+.2f} vs floor {r['no_attack_floor']:.2f}",
                 good_up=True, help=f"{METHODS[m].label}: top-k intersection under attack at the largest T.")
    last = crows[-1]
    W.metric(mcols[-1], f"Guarantee, T = {last['T']}", f"{max(last['rdp_finite'], last['cdf_finite']) * scale:.3g}",
             f"estimate {max(last['rdp_plugin'], last['cdf_plugin']) * scale:.3g}",
             help=f"Certified radius of RRS ({unit}) at β = {beta:.0%}: finite-sample guarantee; the delta is "
                  "the plug-in estimate, which is not a guarantee.")
    finite, plugin = _radius_series(crows, scale)
    left, right = st.columns(2, gap="medium")
    with left:
        series = _attack_chart(req.methods, arows)
    with right:
        W.figure(P.lines_figure(finite, "noise samples T (log scale)", f"guaranteed radius ({unit})",
                                title=f"Guarantee of RRS, β = {beta:.0%}"), "compare_certify",
                 f"The real guarantee (holds with probability ≥ {1 - req.certify.eta:.0%}): 0 means nothing is "
                 "guaranteed yet. " + story.guarantee_caption(finite))
    W.figure(P.lines_figure(plugin, "noise samples T (log scale)", f"estimated radius ({unit})",
                            title="Estimate only (plug-in): not a guarantee", height=300), "compare_plugin",
             story.plugin_caption(plugin))
    W.table(story.readable_rows(arows, ["method", "T", "no_attack_floor", "attacked_topk_intersection",
                                        "spearman", "label_preserved", "linf_255", "elapsed_s"]),
            keep=tuple(story.COLUMNS[k] for k in ("method", "T", "no_attack_floor", "attacked_topk_intersection")))
    m = req.map
    runs.provenance(ctx, outcome, ctx.device, m.seed,
                    f"{req.attack.describe()}; maps σ = {m.sigma:g}, cell {m.cell} px, top {m.k * 100:g}%; "
                    f"certificate β = {beta:.0%}, {norm.label}, η = {req.certify.eta:g}")
    settings = {"methods": list(req.methods), "T": list(req.ts), "map": m, "attack": req.attack,
                "certify": req.certify}
    footer = f"{req.attack.describe()} · σ={m.sigma:g} · image {ctx.image_name} ({ctx.image_digest})"
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


# ------------------------------------------------------------------------- stored results

def results_dir() -> Path:
    """Where the evaluation study's results are read: ``RRS_RESULTS`` or ``docs/results``."""
    return Path(os.environ.get("RRS_RESULTS", Path(__file__).resolve().parent.parent / "docs" / "results"))


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


def stored() -> None:
    """The stored evaluation results: pick an experiment and a measure, see it versus T."""
    from rrs.study import load_summary
    st.divider()
    st.subheader("Stored evaluation results")
    try:
        summary = load_summary(results_dir())
    except Exception as e:  # a damaged results file must not break the page
        st.warning(f"The stored results could not be read: {e}", icon=":material/warning:")
        summary = None
    if summary is None or len(summary) == 0:
        st.info("No stored results yet — run `make eval` (or `python -m rrs evaluate --quick`) to create them; "
                "they appear here next to the live numbers.", icon=":material/info:")
        return
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
        series = []
        for i, (key, g) in enumerate(sub.groupby(group_cols, dropna=False)):
            g = g.sort_values("T")
            key = key if isinstance(key, tuple) else (key,)
            series.append({"name": story.stored_series_name(dict(zip(group_cols, key))), "x": list(g["T"]),
                           "y": list(g["mean"]), "color": P.PALETTE[i % len(P.PALETTE)]})
        label = story.STORED_METRICS.get(metric, metric)
        W.figure(P.lines_figure(series[:12], "noise samples T (log scale)", label, title=f"Stored: {exp} — {label}"),
                 "compare_stored", "Means over the evaluation's images and seeds (see docs/results.md for "
                                   "the 95% confidence intervals and settings).")
        view = view[view["metric"] == metric]
    W.table(_readable_summary(view.dropna(axis=1, how="all")), keep=(story.COLUMNS["method"], story.COLUMNS["mean"]))
