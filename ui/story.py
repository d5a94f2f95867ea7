"""The app's story in plain words, computed from the numbers (plain Python: no streamlit).

Every sentence here is built from the numbers it talks about, so a text can never disagree
with the figure beside it: the "what this shows" line under an attack, the label badge, the
Learn page's certificate step, the attack-budget-versus-guarantee scale, readable names for
tables and stored results, and predicted times in words (the predictions themselves are
:mod:`rrs.compute.policy`'s, from the rates measured on this device).
"""
from __future__ import annotations

import math

import numpy as np
import plotly.graph_objects as go

from rrs.methods import METHODS
from rrs.settings import Norm

from . import plots as P

__all__ = ["COLUMNS", "readable_rows", "stored_series_name", "STORED_METRICS", "label_badge", "attack_takeaway", "floor_caption", "plugin_caption", "budget_scale", "certificate_story", "region_difference", "kept_words", "guarantee_caption"]

# ------------------------------------------------------------------------ readable names

#: Column names for people (raw keys of the compute rows -> table headers).
COLUMNS = {
    "method": "Method", "T": "Noise samples T", "no_attack_floor": "No-attack floor",
    "attacked_topk_intersection": "Top-k kept under attack", "drop": "Drop below the floor",
    "spearman": "Rank correlation", "kendall": "Kendall τ", "label_preserved": "Label kept",
    "confidence_before": "Confidence before", "confidence_after": "Confidence after",
    "linf_255": "Largest change (/255)", "l2": "Size of the change (ℓ2)", "elapsed_s": "Time (s)",
    "beta": "β", "norm": "Norm",
    "rdp_plugin": "RDP estimate (plug-in)", "rdp_finite": "RDP guarantee (finite-sample)",
    "cdf_plugin": "Gaussian-CDF estimate (plug-in)", "cdf_finite": "Gaussian-CDF guarantee (finite-sample)",
    # stored study results
    "experiment": "Experiment", "cell": "Cell size (px)", "budget": "Attack budget", "attack": "Attack",
    "certificate": "Certificate", "metric": "Measure", "mean": "Mean", "ci_low": "95% CI low",
    "ci_high": "95% CI high", "n": "Runs averaged", "n_images": "Images", "n_seeds": "Seeds per image",
    "ci_method": "Interval",
}

#: Stored study metrics for people.
STORED_METRICS = {
    "intersection": "top-k kept under attack", "floor_intersection": "no-attack floor (top-k)",
    "drop": "drop below the floor", "intersection_same_noise": "top-k kept under attack (same noise)",
    "intersection_index": "top-k kept under attack (index ties)",
    "floor_intersection_index": "no-attack floor (index ties)", "spearman": "rank correlation under attack",
    "floor_spearman": "no-attack rank correlation", "label_preserved": "share of attacks that kept the label",
    "perturbation_l2": "size of the change (ℓ2)", "perturbation_linf": "largest change per value",
    "attack_seconds": "attack time (s)", "radius": "certified radius", "cell_radius_median":
    "median per-cell radius", "certify_seconds": "certificate time (s)", "smooth_seconds": "smoothing time (s)",
    "intersection_vs_reference": "agreement with a T=64 reference", "reference_half_agreement":
    "agreement of the reference's halves",
}


def readable_rows(rows: list[dict], keys: list[str]) -> list[dict]:
    """``rows`` restricted to ``keys`` (in that order) under :data:`COLUMNS` names."""
    return [{COLUMNS.get(k, k): r.get(k) for k in keys} for r in rows]


def _present(v) -> bool:
    return v is not None and not (isinstance(v, float) and math.isnan(v)) and str(v) != "nan"


def stored_series_name(key: dict) -> str:
    """A stored result's series in words, e.g. ``"RRS (exponential), 16×16 cells, ℓ∞ 4/255"``."""
    from rrs.study.config import method_label
    from rrs.study.plots import CERT_LABELS, fmt_budget
    parts = []
    if _present(key.get("method")):
        parts.append(method_label(str(key["method"])))
    if _present(key.get("cell")):
        c = int(float(key["cell"]))
        parts.append("pixel cells" if c == 1 else f"{c}×{c} cells")
    if _present(key.get("budget")):
        parts.append(fmt_budget(key.get("norm"), float(key["budget"])))
    elif _present(key.get("norm")):
        parts.append({"linf": "ℓ∞", "l2": "ℓ2", "l1": "ℓ1"}.get(str(key["norm"]), str(key["norm"])))
    if _present(key.get("certificate")):
        parts.append(CERT_LABELS.get(str(key["certificate"]), str(key["certificate"])))
    if _present(key.get("beta")):
        parts.append(f"β = {float(key['beta']):g}")
    return ", ".join(parts) or "all"


# ------------------------------------------------------------------------------- attacks

def label_badge(kept: bool, before: float, after: float, big_drop: float = 0.25) -> tuple[str, str, str]:
    """``(text, colour, icon)`` of the label badge: green only when the label and most of the
    confidence stayed; amber when the label stayed but the confidence fell by more than
    ``big_drop`` (e.g. 94% → 14%); red when the label changed."""
    change = f"confidence {before:.0%} → {after:.0%}"
    if not kept:
        return f"label changed, {change}", "red", ":material/close:"
    if before - after > big_drop:
        return f"label kept, {change}", "orange", ":material/warning:"
    return f"label kept, {change}", "green", ":material/check:"


def _points(floor: float, attacked: float) -> int:
    """The drop from ``floor`` to ``attacked`` in percentage points, from the rounded percents
    the sentence shows (so "kept 46% … floor of 80%" says 34 points, never 35)."""
    return int(f"{floor * 100:.0f}") - int(f"{attacked * 100:.0f}")


def _drop_words(points: int) -> str:
    if points == 0:
        return "no drop"
    if points > 0:
        return f"a drop of {points} percentage point{'s' if points != 1 else ''}"
    return f"{-points} percentage point{'s' if points != -1 else ''} above its floor"


def attack_takeaway(rows: list[dict]) -> str:
    """One line saying what the attack results show, computed from the rows of
    :meth:`ui.compute.MethodAttack.row` (method, floor, attacked intersection, label kept).

    Every method is named with its drop from its own no-attack floor, in percentage points
    (a difference of two shares), the largest drop first."""
    if not rows:
        return ""
    pts = {r["method"]: _points(r["no_attack_floor"], r["attacked_topk_intersection"]) for r in rows}
    order = sorted(rows, key=lambda r: -pts[r["method"]])

    def part(r):
        flipped = "" if r.get("label_preserved", True) else ", though the label changed"
        return (f"{r['method']} kept {r['attacked_topk_intersection']:.0%} of its top cells against a "
                f"no-attack floor of {r['no_attack_floor']:.0%} ({_drop_words(pts[r['method']])}{flipped})")
    if len(rows) == 1:
        verdict = ("the attack moved it well beyond sampling noise" if pts[rows[0]["method"]] > 10 else
                   "the attack did little beyond what sampling noise does anyway")
        return f"What this shows: {part(rows[0])} — {verdict}."
    kept = [r for r in order if r.get("label_preserved", True)] or order
    most, least = kept[0], kept[-1]
    if pts[most["method"]] - pts[least["method"]] < 5:
        verdict = "the attack moved every method about equally"
    else:
        def names(points):           # ties are named together, never one of them at random
            return " and ".join(r["method"] for r in kept if pts[r["method"]] == points)
        verdict = f"{names(pts[most['method']])} dropped the most, {names(pts[least['method']])} the least"
        if least["no_attack_floor"] < 0.5:
            verdict += (", but its map is unsteady even without an attack (low floor): more noise samples T "
                        "or larger cells raise the floor")
    return f"What this shows: {'; '.join(part(r) for r in order)} — {verdict}."


def floor_caption(rows: list[dict]) -> str:
    """The caption of Compare's attacked-versus-floor chart, from its rows (``method``,
    ``method_id``, ``T``, ``no_attack_floor``, ``attacked_topk_intersection``).

    The floor is the agreement of two clean runs with different noise seeds: what an attack
    that does nothing would score, up to sampling noise. Both are Monte Carlo estimates, so at
    small T an attacked value can lie above its floor; the caption names such points."""
    above = [r for r in rows if r["attacked_topk_intersection"] > r["no_attack_floor"] + 1e-9
             and METHODS[r["method_id"]].smoothed]
    head = ("Higher = the map keeps its top cells. Solid = under attack; dotted = the same method's no-attack "
            "floor (two clean runs with different seeds): what an attack that does nothing would score, up to "
            "sampling noise. Both are estimates from T noisy copies")
    if not above:
        return f"{head}; here every attacked line is at or below its floor."
    worst = max(above, key=lambda r: r["attacked_topk_intersection"] - r["no_attack_floor"])
    by_method: dict = {}
    for r in sorted(above, key=lambda r: r["T"]):
        by_method.setdefault(METHODS[r["method_id"]].short, []).append(str(r["T"]))
    points = "; ".join(f"{m} at T = {_and(ts)}" for m, ts in by_method.items())
    return (f"{head}, so at small T an attacked line can lie above its floor — here {points} (e.g. "
            f"{worst['attacked_topk_intersection']:.2f} under attack vs a floor of {worst['no_attack_floor']:.2f} "
            f"for {METHODS[worst['method_id']].short} at T = {worst['T']}): there the attack moved the map less "
            "than a second noise seed does.")


def _and(items: list[str]) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def _trend(ys: list[float]) -> str:
    first, last = ys[0], ys[-1]
    if first == last or (math.isfinite(first) and math.isfinite(last)
                         and abs(last - first) <= 1e-9 * max(abs(first), abs(last), 1e-300)):
        return "stays at"
    return "rises" if last > first else "falls"


def _value(v: float) -> str:
    return "∞" if math.isinf(v) else f"{v:.3g}"


def guarantee_caption(series: list[dict]) -> str:
    """What Compare's guarantee chart shows, from its series (``x`` = T, ``y`` = radius)."""
    ts = sorted({t for s in series for t in s["x"]})
    top = max((float(v) for s in series for v in s["y"] if v is not None), default=0.0)
    if top <= 0:
        more = ("; add T = 64 or 128 above (slower)" if ts and ts[-1] < 64 else
                "; the Certify page runs thousands")
        return (f"It is 0 at every T here, up to T = {ts[-1] if ts else 0}: proving that the ranks are stable "
                f"needs many more samples{more}.")
    first = min(t for s in series for t, v in zip(s["x"], s["y"]) if v is not None and float(v) > 0)
    return (f"It needs many samples to prove that the ranks are stable: here it is 0 below T = {first} and at "
            f"most {top:.3g} up to T = {ts[-1]}." if first > ts[0] else
            f"Here it is positive from T = {first} on, at most {top:.3g} up to T = {ts[-1]}.")


def plugin_caption(series: list[dict]) -> str:
    """The caption of Compare's plug-in chart: which way each estimate moves with T, read from
    the series drawn (``name``, ``x`` = T, ``y``)."""
    parts = []
    for s in series:
        pts = sorted((t, float(v) if v is not None else math.inf) for t, v in zip(s["x"], s["y"]))
        if not pts:
            continue
        # an unbounded estimate (∞) is not drawn: the caption says so, and reads the trend from
        # the points on the chart
        unbounded = [t for t, v in pts if not math.isfinite(v)]
        pts = [(t, v) for t, v in pts if math.isfinite(v)]
        name = s["name"].replace(", plug-in", "")     # the caption says plug-in once
        lead = f"the {name} estimate "
        if unbounded:
            where = "every T" if not pts else "T = " + ", ".join(str(t) for t in unbounded)
            lead += f"is unbounded (∞, not drawn) at {where}"
            if not pts:
                parts.append(lead)
                continue
            lead += ", then "
        xs, ys = [t for t, _ in pts], [v for _, v in pts]
        trend = _trend(ys)
        if len(pts) == 1:
            parts.append(f"{lead}is {_value(ys[0])} at T = {xs[0]}")
        elif trend == "stays at":
            parts.append(f"{lead}stays at {_value(ys[0])} from T = {xs[0]} to {xs[-1]}")
        else:
            parts.append(f"{lead}{trend} from {_value(ys[0])} at T = {xs[0]} to {_value(ys[-1])} at T = {xs[-1]}")
    here = ("Here " + "; ".join(parts) + ". ") if parts else ""
    return (f"The plug-in value treats the T-sample map as exact, so it is not a guarantee. {here}With very few "
            "samples the sampled ranks can look more certain than they are, so an estimate at small T can be too "
            "high — more samples do not make the map worse.")


def budget_scale(budget: float, radius: float, plugin: float, norm: Norm, dim: int,
                 title: str | None = None) -> tuple[go.Figure, str]:
    """The attack budget and the certified radius on one logarithmic scale.

    Two rows for ℓ1/ℓ2 (the norm's own units, and the change per pixel value when spread
    evenly over all ``dim`` values, in 1/255 steps); one row for ℓ∞ (per value). Radius 0
    (nothing certified) is drawn at the left edge and an unbounded one at the right edge,
    labelled so. Returns the figure and its caption, both from the same numbers.
    """
    rows = [(f"size in {norm.label}", 1.0)] if not norm.is_inf else []
    rows.append(("per pixel value (/255)", None))
    marks = [("guarantee (finite-sample)", radius, P.CERTIFIED, "diamond"),
             ("estimate (plug-in, not a guarantee)", plugin, P.TOPK, "circle-open"),
             ("attack budget", budget, "#D55E00", "x")]

    def value(v, scale):
        return v if scale is not None else norm.per_pixel(v, dim) * 255
    positive = [value(v, s) for _, v, *_ in marks for _, s in rows if v > 0 and math.isfinite(v)]
    lo = 10 ** (math.floor(math.log10(min(positive))) - 1) if positive else 1e-3
    hi = 10 ** (math.ceil(math.log10(max(positive))) + 1) if positive else 10
    fig = go.Figure()
    for name, v, color, symbol in marks:
        # 0 and ∞ sit on the axis' edges, their labels inside the plot (at lo × 2 a 0 read as 0.002)
        xs = [lo if v <= 0 else hi if not math.isfinite(v) else value(v, s) for _, s in rows]
        text = ["0" if v <= 0 else "∞" if not math.isfinite(v) else f"{value(v, s):.3g}" for _, s in rows]
        where = "top right" if v <= 0 else "top left" if not math.isfinite(v) else "top center"
        fig.add_trace(go.Scatter(x=xs, y=[r for r, _ in rows], mode="markers+text", name=name, text=text,
                                 textposition=where, cliponaxis=False,
                                 marker=dict(size=15, color=color, symbol=symbol, line=dict(width=2, color=color)),
                                 hovertemplate="%{y}: %{text}<extra>" + name + "</extra>"))
    fig.update_xaxes(type="log", range=[math.log10(lo), math.log10(hi)], gridcolor="#e5e5e5",
                     title="size of the change (log scale: each grid line is ×10)", dtick=1)
    fig.update_yaxes(autorange="reversed")
    fig.update_layout(height=170 + 50 * len(rows), font=P._FONT,
                      margin=dict(l=10, r=10, t=60 if title else 40, b=10),
                      title=dict(text=title or "", x=0.02, font=dict(size=15)),
                      legend=dict(orientation="h", yanchor="bottom", y=1.02, x=0),
                      plot_bgcolor="white", paper_bgcolor="rgba(0,0,0,0)")
    return fig, _scale_caption(budget, radius, plugin, norm, dim)


def _scale_caption(budget: float, radius: float, plugin: float, norm: Norm, dim: int) -> str:
    def both(v):
        per = norm.per_pixel(v, dim) * 255
        return f"{per:.3g}/255 per value" if norm.is_inf else f"{v:.3g} ({norm.label}, ≈ {per:.2g}/255 per value)"
    if radius > 0 and not math.isfinite(radius):
        return f"The guarantee is unbounded here, so it covers the attack of {both(budget)} too."
    if radius > 0:
        ratio = budget / radius
        head = f"The guarantee covers changes up to {both(radius)}; the attack used {both(budget)}"
        if ratio > 1:
            return (f"{head} — {ratio:,.0f}× larger, so the guarantee says nothing about this attack: "
                    "it is outside the certified ball.")
        return f"{head} — inside the certified ball, so the certified top cells cannot have been pushed out."
    if plugin > 0 and not math.isfinite(plugin):
        est = (" The plug-in estimate is unbounded (∞): with so few noisy copies the sampled ranks look "
               "certain, which says nothing — more noise samples T make it meaningful.")
    elif plugin > 0:
        est = (f" Even the plug-in estimate (not a guarantee), {both(plugin)}, is "
               f"{budget / plugin:,.0f}× smaller than the attack." if plugin < budget else
               f" The plug-in estimate, {both(plugin)}, would cover it, but it is not a guarantee.")
    else:
        est = ""
    return (f"Nothing is guaranteed with these noise samples (radius 0), so the guarantee says nothing about "
            f"the attack of {both(budget)}.{est}")


# ------------------------------------------------------------------------- certificates

def _budget_value(r: float, norm: Norm) -> str:
    return f"{r * 255:.3g}/255" if norm.is_inf else f"{r:.3g}"


def break_scale(profile, epsilon: float) -> tuple:
    """Where an attack budget falls among each method's break radius and the certified radius
    of a :class:`rrs.workflows.robustness.RobustnessProfile` (same norm): ``(figure,
    caption, sentence)``, every number from the profile."""
    norm = profile.settings.norm
    scale = 255.0 if norm.is_inf else 1.0
    rows, above, below = [], [], []
    for i, m in enumerate(profile.methods):
        name = METHODS[m.method].short
        r = m.break_radius if m.broken else m.held_radius
        rows.append({"name": name, "broken": m.broken, "radius": r * scale, "color": P.PALETTE[i % len(P.PALETTE)]})
        if m.broken:
            (above if m.break_radius <= epsilon else below).append(
                f"{name}'s break radius {_budget_value(m.break_radius, norm)}")
        elif m.held_radius >= epsilon:
            below.append(f"the largest change tried on {name} ({_budget_value(m.held_radius, norm)}, not broken)")
        else:
            above.append(f"the largest change tried on {name} ({_budget_value(m.held_radius, norm)})")
    cert = [(m, m.certified_radius or 0.0, "whole top-k set") for m in profile.methods if m.certified_radius]
    cert = cert or [(m, m.certified_cell_radius, "best single cell") for m in profile.methods
                    if m.certified_cell_radius]
    certified = 0.0
    if cert:
        m, certified, what = max(cert, key=lambda c: c[1])
        (above if certified <= epsilon else below).append(
            f"{METHODS[m.method].short}'s certified radius {_budget_value(certified, norm)} ({what})")
    x_title = "budget (ℓ∞, in 1/255)" if norm.is_inf else f"budget ({norm.label}, pixel units)"
    fig = P.break_radius_figure(rows, certified * scale, x_title, budget=epsilon * scale,
                                height=140 + 45 * len(rows))
    caption = ("× = the smallest budget at which the top-k attack pushed a top cell out (label kept); ▶ = not "
               "broken up to the largest budget tried; dashed = the certified radius"
               + ("" if certified else " (none at these settings)") + "; black = your budget.")
    said = f"This budget, {_budget_value(epsilon, norm)}, is "
    parts = []
    if above:
        parts.append("above " + _join(above))
    if below:
        parts.append("below " + _join(below))
    said += " and ".join(parts) + "."
    if not cert:
        said += " Nothing is certified at these settings, so no certified radius is on the scale."
    return fig, caption, said


def _join(items: list) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def kept_words(p, unit: str = "cells") -> str:
    """What an attacked panel (:class:`rrs.workflows.robustness.Panel`) kept, in words that agree
    with its overlap. A smoothed map's top cell counts as pushed out only when the clean map
    under the same noise keeps it (``Panel.fallen``), so its overlap can be below 1 with nothing
    pushed out: ties and noise move it even without an attack (the floor says how much)."""
    if p.lost >= p.k:
        return f"lost all {p.k} of its top {unit}"
    if p.lost:
        return f"lost {p.lost} of its {p.k} top {unit}"
    if p.settings.smoothed and p.overlap < 1 - 1e-9:
        return (f"the attack pushed none of its {p.k} top {unit} out (overlap {p.overlap:.2f}: noise and ties "
                f"alone give {p.floor:.2f} without an attack)")
    return f"kept all {p.k} of its top {unit}"


def contrast_story(res, dim: int) -> str:
    """The Learn page's contrast (:class:`rrs.workflows.advice.ContrastResult`) in words a
    class reads from the back of the room, every number from ``res``."""
    from rrs.workflows.advice import radius_text

    raw, sm, k, kept = res.raw, res.smoothed, res.raw.k, res.provable
    size = radius_text(res.radius, res.norm, dim)
    if raw.lost >= k:
        out = (f"The same small change ({size}) that wipes out **all {k}** of the plain map's top patches "
               f"provably cannot move **{kept}** of the smoothed map's")
    elif raw.lost:
        out = (f"The same small change ({size}) pushes **{raw.lost} of the {k}** top patches out of the plain "
               f"map, and provably cannot move **{kept}** of the smoothed map's")
    else:
        out = (f"This small change ({size}) did not push any of the plain map's {k} top patches out this time; "
               f"it provably cannot move **{kept}** of the smoothed map's")
    if sm.lost:
        out += f" — the attack moved {sm.lost} other{'s' if sm.lost != 1 else ''}, which had no guarantee."
    else:
        out += f", and in fact moved none of its {k}."
    return out


def certificate_story(cr) -> dict:
    """The Learn page's certificate step: one radius ``L``, the figure's title, caption and
    the text beside it, all about the same per-cell statement.

    ``cr`` is a :class:`ui.compute.CertifyResult`. The finite-sample per-cell radii (each
    holds with probability ≥ 1 − η) are used when any top-k cell has a positive one;
    otherwise the plug-in radii, and every text then says "estimate". ``L`` is just below the
    median positive radius of the top-k cells, so the figure shows some cells blue and some
    orange. Returns ``radius``, ``finite``, ``certified`` (cells blue at ``L``), ``k``,
    ``categories`` (for :func:`ui.plots.region_figure`), ``title``, ``caption``, ``text``.
    """
    selected = np.asarray(cr.report.selected)
    k = int(selected.size)
    finite = bool(np.any(cr.cell_radii("best", finite=True)[selected] > 0))
    radii = cr.cell_radii("best", finite=finite)[selected]
    positive = np.sort(radii[radii > 0])
    radius = float(positive[len(positive) // 2]) * 0.9 if positive.size else 0.0
    cats = cr.categories(radius, "best", finite=finite)
    certified = int((cats == 2).sum())
    size = f"{cr.norm.label} size {radius:.3g}"
    # the radius with its per-value equivalent, as the Certify page writes it
    per_value = cr.norm.per_pixel(radius, cr.dim) * 255
    full = size if cr.norm.is_inf else f"{size} (≈ {per_value:.2g}/255 per pixel value)"
    if finite:
        title = f"Guaranteed at {size}: {certified} of {k} patches"
        caption = (f"Blue = guaranteed (probability ≥ {1 - cr.eta:.0%}) to stay among the {k} most important "
                   f"patches for any change up to {full}; orange = in the top {k}, not guaranteed at that size.")
        text = (f"**{certified} of the {k} most important patches** {'is' if certified == 1 else 'are'} guaranteed to stay in the top {k} for "
                f"*any* change of the picture up to {cr.norm.label} size **{radius:.3g}** (≈ {per_value:.2g}/255 "
                f"per pixel value if spread evenly) — each patch on its own, with probability ≥ {1 - cr.eta:.0%} "
                "over the noise draws.")
    elif radius > 0:
        title = f"Estimate at {size}: {certified} of {k} patches"
        caption = (f"Blue = would stay among the {k} most important patches for any change up to "
                   f"{full} if the sampled map were exact (an estimate, not a "
                   f"guarantee); orange = in the top {k}, not covered at that size.")
        text = (f"With {cr.map_result.samples_used:,} noisy copies **nothing can be guaranteed yet**. Taking the "
                f"sampled map as exact (an *estimate*), **{certified} of the {k} most important patches** "
                f"would stay in the top {k} for any change up to {cr.norm.label} size **{radius:.3g}** "
                f"(≈ {per_value:.2g}/255 per pixel value).")
    else:
        title = f"Nothing certified: 0 of {k} patches"
        caption = f"Orange = the {k} most important patches; none is covered even by the estimate."
        text = (f"With {cr.map_result.samples_used:,} noisy copies no patch can be shown to stay in the top {k}, "
                "not even as an estimate: the map changes too much between noise draws.")
    return {"radius": radius, "finite": finite, "certified": certified, "k": k, "categories": cats,
            "title": title, "caption": caption, "text": text}


def importance_meaning(scoring: str) -> str:
    """What the "stays important" score ``h_i = m_i / v_1`` of a cell is, in plain words, for an
    RRS map with this scoring family (method.md §6b): a share of noise draws only for top-k′
    uniform scoring, where every per-draw value is ``v_1`` or 0."""
    if scoring == "topk":
        return "the share of noise draws that put the cell in the top-k′"
    return ("the cell's smoothed score as a share of the largest score a cell can get (the average over "
            "noise draws of its rank score divided by the top rank's score)")


def _cells(idx, cols: int, most: int = 4) -> str:
    """Cells by their row and column as the figures' hover labels name them (from 0)."""
    named = [f"row {int(i) // cols}, col {int(i) % cols}" for i in idx[:most]]
    more = len(idx) - len(named)
    return _join(named + ([f"{more} more"] if more else []))


def region_difference(view, beta: float) -> str | None:
    """Why Certify's plug-in and guaranteed panels outline different cells, from the two sets
    (``None`` when they outline the same ones).

    The plug-in panel outlines the top-k of the map from every sample (the certificate an
    estimate would give); the guaranteed panel the set its finite-sample certificate is about
    (:meth:`rrs.workflows.certify.AnytimeView.certified_set`): with a separate selection batch
    the top-k of those first samples alone, fixed before the rest prove it (method.md §5);
    with Bonferroni the top-k at the checkpoint that reached the guarantee. Cells certified on
    their own at a checkpoint are drawn there too."""
    s = view.sampled
    plug, fin = view.shown_cells(False), view.shown_cells(True, beta)
    if np.array_equal(plug, fin):
        return None
    cols, k = s.grid[1], s.k
    in_set = np.zeros_like(fin)
    in_set[np.asarray(view.certified_set(beta), dtype=int)] = True
    only_plug, only_set, own = (np.flatnonzero(plug & ~fin), np.flatnonzero(in_set & ~plug),
                                np.flatnonzero(fin & ~in_set & ~plug))
    total = s.samples_done
    parts = []
    if only_plug.size:
        parts.append(f"{_cells(only_plug, cols)} {'is' if only_plug.size == 1 else 'are'} in the plug-in top {k} "
                     "only")
    if only_set.size:
        parts.append(f"{_cells(only_set, cols)} {'is' if only_set.size == 1 else 'are'} in the guaranteed set only")
    said = "The two panels outline different cells: " + "; ".join(parts) + "." if parts else ""
    try:
        best = view.whole_set(beta)
    except ValueError:
        best = None
    if s.scheme == "selection":
        why = (f" The plug-in panel ranks the map from all {total:,} samples; the guarantee is about the top {k} "
               f"of the first {s.plan.selection:,} samples alone (the selection batch), chosen before the other "
               f"{total - s.plan.selection:,} prove it — a set chosen by the same samples that prove it would not "
               "be a sound guarantee.")
    elif best is not None and best.radius > 0 and best.checkpoint != len(s.checkpoints) - 1:
        at = s.checkpoints[best.checkpoint].total
        why = (f" The plug-in panel ranks the map from all {total:,} samples; the guarantee is about the top {k} "
               f"at checkpoint {best.checkpoint + 1} ({at:,} samples), where it was reached, and stays valid.")
    else:
        why = (f" The plug-in panel ranks the map from all {total:,} samples; the guarantee is about the top {k} "
               "the certificate chose from the same samples (ties broken differently).")
    if own.size:
        why += (f" {_cells(own, cols)} {'is' if own.size == 1 else 'are'} outlined on the right because "
                f"{'it was' if own.size == 1 else 'they were'} certified on {'its' if own.size == 1 else 'their'} "
                "own at one of the checkpoints.")
    return (said + why).strip()
