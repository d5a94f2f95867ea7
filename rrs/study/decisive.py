"""The report's decisive sections: how strong the attacks were, claim 2 at matched cost, every
certificate scheme, and certified radius versus break radius (issue 17).

:func:`sections` returns the markdown sections, :func:`findings` the plain statements for the
Findings list, :func:`write_tables` the CSV files and the drop-versus-steps plot. Numbers come
from the result rows (:mod:`rrs.study.strength`, :mod:`rrs.study.worth`, :mod:`rrs.study.matched`).
"""
from __future__ import annotations

import math

import numpy as np

from .matched import cost_curves, matched_verdicts
from .plots import METHOD_COLORS, METHOD_LABELS, cellname, fmt_budget
from .sections import md_table
from .stats import ALPHA, mean_ci, valid_rows

__all__ = ["sections", "findings", "write_tables", "convergence_table", "profile_table", "CONVERGED_TOL"]

#: The attack has converged on the image when the drop changes by at most this much between
#: the last two step counts for every method.
CONVERGED_TOL = 0.02


def _rows(rows, experiment, metric=None):
    if rows is None or rows.empty or "experiment" not in rows:
        return rows.iloc[:0] if rows is not None else None
    r = rows[rows.experiment == experiment]
    return r if metric is None else r[r.metric == metric]


def _methods(df):
    order = list(METHOD_LABELS)
    return sorted(set(df["method"].dropna()) & set(order), key=order.index)


def _f(v, digits=3):
    return "–" if v is None or not np.isfinite(v) else f"{v:.{digits}g}"


def _mci(values, digits=3):
    m, lo, hi, n = mean_ci(values)
    if n == 0:
        return "–"
    return f"{m:.{digits}f}" if n == 1 or lo == hi else f"{m:.{digits}f} [{lo:.{digits}f}, {hi:.{digits}f}]"


# ------------------------------------------------------------------------- strength

def convergence_table(rows):
    """``steps × method`` attacked overlap and drop on the convergence image (a DataFrame)."""
    import pandas as pd
    r = _rows(rows, "strength")
    if r is None or r.empty or "steps" not in r:
        return pd.DataFrame(columns=["steps", "method", "intersection", "drop", "label_kept"])
    r = r[r.metric.isin(["convergence_intersection", "convergence_drop", "convergence_label_kept"])]
    if r.empty:
        return pd.DataFrame(columns=["steps", "method", "intersection", "drop", "label_kept"])
    t = r.pivot_table(index=["steps", "method"], columns="metric", values="value", aggfunc="mean").reset_index()
    return t.rename(columns={"convergence_intersection": "intersection", "convergence_drop": "drop",
                             "convergence_label_kept": "label_kept"})


def _converged(conv) -> tuple[bool | None, list]:
    """Whether every method's drop moved by ≤ :data:`CONVERGED_TOL` over the last two step counts."""
    if conv.empty:
        return None, []
    steps = sorted(set(conv["steps"]))
    if len(steps) < 2:
        return None, []
    a, b = steps[-2], steps[-1]
    moved = []
    for m in _methods(conv):
        da = conv[(conv.method == m) & (conv.steps == a)]["drop"]
        db = conv[(conv.method == m) & (conv.steps == b)]["drop"]
        if len(da) and len(db):
            moved.append((m, float(db.iloc[0] - da.iloc[0])))
    return all(abs(d) <= CONVERGED_TOL for _, d in moved), moved


def _strength_section(rows, cfg):
    if cfg.strong_attack is None:
        return []
    st = cfg.strong_attack
    imgs = cfg.strong_image_names
    md = ["## 6. How strong the attacks were", "",
          f"Standard attack: {cfg.attack.steps} PGD steps × {cfg.attack.eot} EOT draws, one run. Strong attack: "
          f"{st.steps} steps × {st.eot} EOT draws × {st.restarts} restart(s) (the first from the image, the others "
          f"from random points of the ball; the best label-keeping run is kept), on {len(imgs)} of "
          f"{len(cfg.images)} images ({', '.join(imgs)}) at " + ", ".join(fmt_budget(n, e) for n, e in cfg.strong_budgets)
          + f" on {', '.join(cellname(c) for c in cfg.strong_cells)} cells"
          + (f" and in the robustness-versus-T grid at T ∈ {list(cfg.strong_T_values)}" if cfg.strong_T_values else "")
          + ". Its tables are in sections 1 and 2 (attack `strong`).", ""]
    gv = _rows(rows, "strength")
    keys = ("gradient_noise_ratio", "gradient_noise_ratio_at_eot", "gradient_noise_per_draw", "eot_needed",
            "eot_needed_path")
    gv = gv[gv.metric.isin(keys)] if gv is not None else gv
    if gv is not None and not gv.empty:
        md += ["### EOT sized by the attack gradient's variance", "",
               f"At the clean image, {cfg.gradvar_draws} independent attack gradients per image and smoothed method "
               "(`rrs.attacks.variance`): ρ = tr Σ / ‖μ‖² (per-draw covariance over squared mean, both unbiased "
               f"estimates) is the gradient's noise-to-signal ratio; averaging E draws divides it by E. ρ at the EOT "
               "used is measured directly (the attack averages soft maps, not gradients, so 1/E is only a model); "
               "per draw: the single-draw ρ, or E × ρ(E) where single draws show no detectable signal (inf). EOT "
               f"needed in one step: the smallest power of two with ρ/E ≤ {cfg.gradvar_target:g}; along the attack, "
               f"whose {st.steps} × {st.restarts} steps each draw fresh noise: ρ/(E·steps) ≤ {cfg.gradvar_target:g}. "
               "Medians over images.", "",
               md_table(["method", "ρ (one draw)", f"ρ at EOT {st.eot}", "ρ per draw (used)", "EOT needed (one step)",
                         "EOT needed (whole attack)", "EOT used", "images"],
                        [[METHOD_LABELS[m]] + [_f(float(np.median(gv[(gv.method == m) & (gv.metric == k)]["value"])))
                                               for k in keys] + [st.eot, gv[gv.method == m]["image"].nunique()]
                         for m in _methods(gv)]), ""]
    conv = convergence_table(rows)
    if not conv.empty:
        image = rows[rows.metric == "convergence_drop"]["image"].iloc[0]
        steps = sorted(set(conv["steps"]))
        md += [f"### Drop versus PGD steps on {image}", "",
               f"The strong setting's budget, EOT {st.eot}, fixed step 2.5·ε/{st.steps}, one run continued from its "
               "own adversarial point; each cell: drop (floor − attacked ∩). A drop that stops changing means the "
               "attack has converged for that map.", "",
               md_table(["method"] + [f"{int(s)} steps" for s in steps],
                        [[METHOD_LABELS[m]] + [_f(float(conv[(conv.method == m) & (conv.steps == s)]["drop"].mean()), 2)
                                               for s in steps] for m in _methods(conv)]), ""]
    return md


# ---------------------------------------------------------------------- matched cost

def _matched(rows, cfg):
    if "robustness" not in cfg.experiments:
        return None, None
    curves = cost_curves(rows, cfg.T_cell, cfg.T_budget[0], cfg.T_budget[1])
    if curves.empty:
        return None, None
    return curves, [matched_verdicts(curves, "gradients"), matched_verdicts(curves, "seconds")]


def _matched_section(rows, cfg):
    curves, tables = _matched(rows, cfg)
    if curves is None:
        return []
    md = ["## 7. Claim 2 at matched cost", "",
          f"Attacked ∩ at {fmt_budget(*cfg.T_budget)}, {cellname(cfg.T_cell)} cells, standard attack, against what the "
          "map costs: gradient evaluations per map (T; machine-independent) and, secondary, the measured seconds per "
          "map on this machine (shared, so noisy). Means over images.", "",
          md_table(["method", "T", "gradients", "seconds per map", "attacked ∩"],
                   [[METHOD_LABELS[m], int(t), int(g["gradients"].iloc[0]), _f(float(g["seconds"].mean())),
                     _mci(g["value"])] for (m, t), g in curves.groupby(["method", "T"], sort=False)
                    if m in METHOD_LABELS]), ""]
    for table, unit in zip(tables, ("gradient evaluations", "seconds")):
        if table.empty:
            continue
        md += [f"### Verdict at equal cost ({unit})", "",
               f"Better RRS variant vs better baseline, read at each cost level by interpolation in log(cost) "
               f"(`rrs.study.matched`); paired t-test over images, Holm-corrected over the {len(table)} levels at "
               f"α = {ALPHA:g}.", "",
               md_table(["cost", "RRS", "baseline", "RRS ∩", "baseline ∩", "ratio", "Δ [95% CI]", "p", "p (Holm)",
                         "verdict"],
                        [[_f(r["level"]), METHOD_LABELS[r["rrs"]], METHOD_LABELS[r["base"]], f"{r['rrs_mean']:.3f}",
                          f"{r['base_mean']:.3f}", _f(r["ratio"]),
                          f"{r['diff']:+.3f} [{r['ci_low']:+.3f}, {r['ci_high']:+.3f}]", f"{r['p_value']:.3g}",
                          f"{r['p_holm']:.3g}", r["verdict"]] for _, r in table.iterrows()]), ""]
    return md


# --------------------------------------------------------------------------- schemes

def _schemes_section(rows, cfg):
    r = _rows(rows, "schemes")
    if r is None or r.empty:
        return []
    md = ["## 8. Every certificate scheme", "",
          f"RRS maps, T={cfg.scheme_T}, σ={cfg.sigma}, ℓ2, η={cfg.cert_eta}, the app's schemes: Bonferroni (intervals "
          "for every cell from all T samples) and selection (a separate T/8 batch fixes the top-k set); each fixed-T "
          "(the last checkpoint alone at the full η) and anytime-valid (doubling checkpoints with η_j = η·2^−(j+1), "
          "best so far); and \"stays important\" (method.md §6b: each cell's score stays above τ = 0.5). Means over "
          f"{r['image'].nunique()} images with 95% intervals; radii in pixel units.", ""]
    for cell in sorted(set(r["cell"].dropna())):
        c = r[r.cell == cell]
        k = int(c["k"].iloc[0]) if "k" in c else 0
        certs = list(dict.fromkeys(c[c.metric == "radius"]["certificate"]))
        betas = sorted(set(c[c.metric == "radius"]["beta"].dropna()), reverse=True)
        lines = []
        for m in _methods(c):
            for cert in certs:
                d = c[(c.method == m) & (c.certificate == cert)]
                per = lambda metric, b=None: d[(d.metric == metric) & ((d.beta == b) if b is not None else True)]
                lines.append([METHOD_LABELS[m], cert] + [_mci(per("radius", b)["value"]) for b in betas]
                             + [_mci(per("cells_certified")["value"], 2), _mci(per("cell_radius_median")["value"]),
                                _mci(per("stays_important_cells")["value"], 2),
                                _mci(per("stays_important_median")["value"])])
        md += [f"### {cellname(cell)} cells (k = {k})", "",
               md_table(["method", "scheme"] + [f"whole set β={b:g}" for b in betas]
                        + ["top-k cells certified", "their median radius", "cells staying important",
                           "their median radius"], lines), ""]
    return md


# ------------------------------------------------------------------------- profile

def profile_table(rows):
    """Per image and method: break radius, held radius, certified radii, gap, contradictions."""
    import pandas as pd
    r = _rows(rows, "profile")
    cols = ["image", "method", "broken", "break_radius", "held_radius", "certified_radius", "certified_cell_radius",
            "gap", "cell_gap", "contradictions", "floor", "gradients"]
    if r is None or r.empty:
        return pd.DataFrame(columns=cols)
    t = r[r.method != "all"].pivot_table(index=["image", "method"], columns="metric", values="value",
                                         aggfunc="first", dropna=False).reset_index()
    for c in cols:
        if c not in t:
            t[c] = math.nan
    return t[cols]


def _profile_section(rows, cfg):
    t = profile_table(rows)
    if t.empty:
        return []
    md = ["## 9. Certificate versus attack", "",
          f"Robustness profile (`rrs.workflows.robustness.robustness_profile`, ℓ2) of each image: the top-k attack "
          f"({cfg.profile_steps} PGD steps × {cfg.profile_eot} EOT per budget, warm-started along {cfg.profile_budgets} "
          f"budgets up to {cfg.profile_high:g}, {cfg.profile_bisection} bisection steps, breaks of smoothed maps "
          f"confirmed with {cfg.profile_confirm_samples} fresh samples) gives the **break radius** (smallest budget "
          f"that pushes a top-k cell out keeping the label; `>h`: not broken up to h); the finite-sample "
          f"**certified radius** (whole set at β = 1, and the largest per cell) of the T={cfg.profile_T} map "
          f"({cellname(cfg.profile_cell)} cells); **gap** = break ÷ certified (≥ 1 when sound; how loose the "
          "certificate is). A certified radius above the break radius would be a soundness failure (`contradictions`).",
          ""]
    methods = _methods(t)
    header = ["image"] + [f"{METHOD_LABELS[m]} {h}" for m in methods for h in
                          (("break",) if t[t.method == m]["certified_radius"].isna().all()
                           else ("break", "certified (set / cell)", "gap"))]
    lines = []
    for image, g in t.groupby("image", sort=False):
        line = [image]
        for m in methods:
            d = g[g.method == m]
            if d.empty:
                line += ["–"] * (1 if t[t.method == m]["certified_radius"].isna().all() else 3)
                continue
            d = d.iloc[0]
            line.append(_f(d["break_radius"]) if d["broken"] == 1 else f">{_f(d['held_radius'])}")
            if not t[t.method == m]["certified_radius"].isna().all():
                line += [f"{_f(d['certified_radius'])} / {_f(d['certified_cell_radius'])}", _f(d["gap"])]
        lines.append(line)
    md += [md_table(header, lines), ""]
    return md


def sections(summary, rows, cfg) -> list:
    """The markdown lines of sections 6–9 (those whose experiments ran)."""
    rows = valid_rows(rows)
    md = []
    md += _strength_section(rows, cfg) if "strength" in cfg.experiments or "robustness" in cfg.experiments else []
    md += _matched_section(rows, cfg)
    md += _schemes_section(rows, cfg) if "schemes" in cfg.experiments else []
    md += _profile_section(rows, cfg) if "profile" in cfg.experiments else []
    return md


# ------------------------------------------------------------------------- findings

def findings(summary, rows, cfg) -> list:
    """Plain statements: attack strength and convergence, claim 2 at matched cost, schemes, gaps."""
    out = []
    rows = valid_rows(rows)
    from .plots import select
    strong = select(summary, experiment="robustness", metric="drop", attack="strong") if len(summary) else summary
    if cfg.strong_attack is not None and strong is not None and not strong.empty:
        st = cfg.strong_attack
        std = select(summary, experiment="robustness", metric="drop", attack="standard")
        parts = []
        for m in _methods(strong):
            d = strong[strong.method == m]
            s = select(std, method=m, cell=list(d["cell"]), T=list(d["T"]), norm=list(d["norm"]), budget=list(d["budget"]))
            parts.append(f"{METHOD_LABELS[m]} {d['mean'].mean():.2f}" + (f" (standard {s['mean'].mean():.2f})" if len(s) else ""))
        out.append(f"**Attack strength.** Strong attack = {st.steps} PGD steps × {st.eot} EOT × {st.restarts} restarts "
                   f"on {len(cfg.strong_image_names)} images (standard {cfg.attack.steps} × {cfg.attack.eot}); mean drop "
                   "under it: " + "; ".join(parts) + ".")
    conv = convergence_table(rows)
    done, moved = _converged(conv)
    if done is not None:
        steps = sorted(set(conv["steps"]))
        change = "; ".join(f"{METHOD_LABELS[m]} {d:+.2f}" for m, d in moved)
        out.append(f"**Did the attack converge?** Drop change from {int(steps[-2])} to {int(steps[-1])} steps: {change}. "
                   + ("Converged on this image (every change ≤ "
                      f"{CONVERGED_TOL:g})." if done else "Not converged on this image for every method: more steps "
                      "could lower the attacked numbers further, so those ties and wins are against an attack that "
                      "had not saturated."))
    gv = _rows(rows, "strength", "eot_needed")
    path = _rows(rows, "strength", "eot_needed_path")
    rho = _rows(rows, "strength", "gradient_noise_per_draw")
    if gv is not None and not gv.empty and cfg.strong_attack is not None:
        need, need_path = float(np.median(gv["value"])), float(np.median(path["value"]))
        used = cfg.strong_attack.eot
        out.append(f"**EOT sized by the gradient's variance.** Median noise-to-signal ratio of one attack-gradient draw "
                   f"ρ ≈ {_f(float(np.median(rho['value'])))}: one step would need EOT ≈ {need:g} to reach ρ/E ≤ "
                   f"{cfg.gradvar_target:g}, the whole strong attack EOT ≈ {need_path:g} (ρ/(E·steps)); it used {used}"
                   + (" — enough along the attack." if used >= need_path else " — fewer: even summed over its steps the "
                      "EOT noise exceeds the signal, so the strong attack is still noise-limited and its drops are "
                      "lower bounds on what a stronger attacker achieves."))
    curves, tables = _matched(rows, cfg)
    for table, unit in zip(tables or [], ("gradient evaluations", "seconds per map")):
        if table.empty:
            continue
        c = table["verdict"].value_counts().to_dict()
        per = "; ".join(f"{_f(r['level'])}: ×{_f(r['ratio'], 3)} ({r['verdict']})" for _, r in table.iterrows())
        rep = ("Reproduced (RRS ≥ 2× and significantly better at every level)." if (table.ratio >= 2).all()
               and (table.verdict == "wins").all() else "Not reproduced at matched cost: " +
               ("RRS is significantly better at some levels but well short of 2×." if c.get("wins") else
                "no significant advantage for RRS."))
        out.append(f"**Claim 2 at matched cost ({unit}).** Better RRS ÷ better baseline: {per} "
                   f"(Holm over {len(table)} levels). {rep}")
    sch = _rows(rows, "schemes", "radius")
    if sch is not None and not sch.empty:
        b1 = sch[sch.beta == 1.0].groupby("certificate")["value"].mean()
        out.append("**Certificate schemes** (mean whole-set radius at β = 1, ℓ2): "
                   + "; ".join(f"{k} {_f(v)}" for k, v in b1.items()) + ".")
    t = profile_table(rows)
    if not t.empty:
        parts = []
        for m in _methods(t):
            d = t[t.method == m]
            text = f"{METHOD_LABELS[m]} broken on {int((d.broken == 1).sum())}/{len(d)} images"
            if (d.broken == 1).any():
                text += f" (median break radius {_f(float(np.nanmedian(d['break_radius'])))})"
            if not d["certified_radius"].isna().all():
                text += (f", median certified radius {_f(float(np.nanmedian(d['certified_radius'])))} whole set / "
                         f"{_f(float(np.nanmedian(d['certified_cell_radius'])))} per cell")
                gaps = d["gap"].dropna()
                if len(gaps):
                    text += f", median gap ×{_f(float(np.median(gaps)))}"
            parts.append(text)
        bad = int(np.nansum(t["contradictions"]))
        contrast = _raw_versus_certified(t)
        out.append("**Certificate versus attack** (ℓ2): " + "; ".join(parts) + ". " + contrast
                   + ("No attack broke a certified claim (sound on every image)." if bad == 0 else
                      f"**{bad} certified claims were broken by an attack: a soundness failure to investigate.**"))
    return out


def _raw_versus_certified(t) -> str:
    """What the certificate is worth beside the raw map: on how many images the certified map's
    best cell is certified beyond the budget that already breaks the raw (vanilla) map."""
    raw = t[(t.method == "vanilla") & (t.broken == 1)].set_index("image")["break_radius"]
    if raw.empty:
        return ""
    parts = []
    for m in _methods(t):
        cert = t[t.method == m].set_index("image")["certified_cell_radius"].dropna()
        both = cert.index.intersection(raw.index)
        if m == "vanilla" or not len(both):
            continue
        beyond = int((cert[both] > raw[both]).sum())
        parts.append(f"{METHOD_LABELS[m]} on {beyond}/{len(both)}")
    if not parts:
        return ""
    return ("An image's smoothed map has a cell certified beyond the radius that already breaks its raw gradient "
            "map (median raw break radius " + _f(float(raw.median())) + ", often the sweep's smallest budget, so "
            "an upper bound): " + "; ".join(parts) + ". ")


# ---------------------------------------------------------------------------- files

def write_tables(summary, rows, cfg, out, files: list) -> list:
    """CSV tables (convergence, matched cost, profile) and the drop-versus-steps plot; returns the PNGs."""
    rows = valid_rows(rows)
    pngs = []
    conv = convergence_table(rows)
    if not conv.empty:
        conv.to_csv(out / "convergence.csv", index=False)
        files.append(out / "convergence.csv")
        import matplotlib.pyplot as plt
        fig, ax = plt.subplots(figsize=(5.5, 3.6))
        for m in _methods(conv):
            d = conv[conv.method == m].sort_values("steps")
            ax.plot(d["steps"], d["drop"], marker="o", color=METHOD_COLORS.get(m), label=METHOD_LABELS[m])
        ax.set_xlabel("PGD steps (cumulative)")
        ax.set_ylabel("drop = floor − attacked ∩")
        ax.set_title("Drop versus attack steps (one image)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
        fig.tight_layout()
        fig.savefig(out / "convergence.png", dpi=90)
        plt.close(fig)
        files.append(out / "convergence.png")
        pngs.append(out / "convergence.png")
    curves, tables = _matched(rows, cfg)
    if curves is not None:
        curves.to_csv(out / "matched_cost_curves.csv", index=False)
        import pandas as pd
        pd.concat([t for t in tables], ignore_index=True).to_csv(out / "matched_cost.csv", index=False)
        files += [out / "matched_cost_curves.csv", out / "matched_cost.csv"]
    t = profile_table(rows)
    if not t.empty:
        t.to_csv(out / "profile.csv", index=False)
        files.append(out / "profile.csv")
    return pngs
