"""Claim 2 at matched cost: attacked overlap versus what the defender's map costs.

The paper's second claim is about constrained computation ("twice more robust when the
computational resources are highly constrained"). The robustness-versus-T grid gives, per
image and method, the attacked top-k overlap at several ``T``; :func:`cost_curves` puts each
point at its cost — **gradient evaluations** per map (``T``; 1 for the raw gradient: machine
independent) and, as a secondary axis, the measured **seconds** per map (``map_seconds`` rows of
the floor jobs: the wall clock of this machine, load included). :func:`at_cost` reads each
(image, method) curve at a given cost by linear interpolation in ``log(cost)`` (never
extrapolated: outside a curve's measured range the value is missing), and
:func:`matched_verdicts` compares, at each cost level, the better RRS variant with the better
of SmoothGrad / Sparsified SmoothGrad (chosen by mean over images) by the per-image paired
difference: two-sided t-test, Holm's step-down correction over the levels of the table
(:func:`rrs.study.stats.verdicts`).
"""
from __future__ import annotations

import math

import numpy as np

from .stats import ALPHA, RRS_VARIANTS, mean_ci, paired_p_value, valid_rows, verdicts

__all__ = ["cost_curves", "interpolate_log", "at_cost", "matched_verdicts", "levels_for", "BASELINES"]

BASELINES = ("smoothgrad", "sparsified")


def cost_curves(rows, cell, norm, budget, attack: str = "standard"):
    """Per image, method and ``T``: the seed-averaged attacked overlap (``value``), its cost in
    gradient evaluations (``gradients``) and the mean seconds per map (``seconds``, NaN when not
    measured), at one setting of the robustness-versus-T grid."""
    import pandas as pd
    cols = ["image", "method", "T", "gradients", "seconds", "value"]
    if rows is None or rows.empty or "metric" not in rows:
        return pd.DataFrame(columns=cols)
    r = valid_rows(rows)
    on_cell = r["cell"].astype(float) == float(cell)
    att = r[(r.metric == "intersection") & on_cell & (r.norm == norm) & (r.attack == attack)
            & np.isclose(pd.to_numeric(r.budget, errors="coerce").fillna(-1.0), float(budget))]
    if att.empty:
        return pd.DataFrame(columns=cols)
    per = att.groupby(["image", "method", "T"], as_index=False)["value"].mean()
    sec = r[(r.metric == "map_seconds") & on_cell].groupby(["image", "method", "T"], as_index=False)["value"].mean()
    per = per.merge(sec.rename(columns={"value": "seconds"}), on=["image", "method", "T"], how="left")
    per["gradients"] = np.where(per["method"] == "vanilla", 1.0, per["T"].astype(float))
    return per[cols].sort_values(["image", "method", "T"]).reset_index(drop=True)


def interpolate_log(costs, values, at: float) -> float:
    """``values`` at cost ``at``: linear in ``log(cost)`` between the measured points (the mean
    of repeated costs), NaN outside ``[min cost, max cost]`` or without points."""
    c = np.asarray(costs, dtype=float)
    v = np.asarray(values, dtype=float)
    ok = np.isfinite(c) & np.isfinite(v) & (c > 0)
    c, v = c[ok], v[ok]
    if c.size == 0 or not (at > 0):
        return math.nan
    uc = np.unique(c)
    uv = np.array([v[c == x].mean() for x in uc])
    if at < uc[0] * (1 - 1e-12) or at > uc[-1] * (1 + 1e-12):
        return math.nan
    return float(np.interp(math.log(at), np.log(uc), uv))


def at_cost(curves, column: str, level: float):
    """``{method: {image: value at cost level}}`` from :func:`cost_curves` (``column`` =
    ``"gradients"`` or ``"seconds"``); missing where the level is outside a curve."""
    out: dict = {}
    for (image, method), g in curves.groupby(["image", "method"], sort=True):
        value = interpolate_log(g[column], g["value"], level)
        if np.isfinite(value):
            out.setdefault(method, {})[image] = value
    return out


def levels_for(curves, column: str, count: int = 4) -> list:
    """Cost levels shared by every (image, smoothed method) curve: for ``gradients`` the
    measured ``T`` values; for ``seconds`` ``count`` geometric levels across the common range."""
    sm = curves[curves.method != "vanilla"].dropna(subset=[column])
    if sm.empty:
        return []
    if column == "gradients":
        return sorted(float(t) for t in set(sm["gradients"]))
    g = sm.groupby(["image", "method"])[column]
    lo, hi = float(g.min().max()), float(g.max().min())
    if not (0 < lo <= hi):
        return []
    return [float(v) for v in np.geomspace(lo, hi, count)] if hi > lo else [lo]


def matched_verdicts(curves, column: str = "gradients", levels=None, alpha: float = ALPHA):
    """At each cost level: better RRS variant versus better baseline, per-image paired
    difference, unadjusted 95% CI, t-test p-value, Holm-adjusted p over the levels, verdict."""
    import pandas as pd
    cols = ["cost", "level", "rrs", "base", "rrs_mean", "base_mean", "ratio", "diff", "ci_low", "ci_high", "n",
            "p_value", "p_holm", "verdict"]
    levels = levels_for(curves, column) if levels is None else list(levels)
    out = []
    for level in levels:
        vals = at_cost(curves, column, level)
        rrs = [m for m in RRS_VARIANTS if vals.get(m)]
        base = [m for m in BASELINES if vals.get(m)]
        if not rrs or not base:
            continue
        a = max(rrs, key=lambda m: np.mean(list(vals[m].values())))
        b = max(base, key=lambda m: np.mean(list(vals[m].values())))
        images = sorted(set(vals[a]) & set(vals[b]))
        if not images:
            continue
        d = np.array([vals[a][i] - vals[b][i] for i in images])
        m, lo, hi, n = mean_ci(d)
        am, bm = float(np.mean([vals[a][i] for i in images])), float(np.mean([vals[b][i] for i in images]))
        out.append(dict(cost=column, level=float(level), rrs=a, base=b, rrs_mean=am, base_mean=bm,
                        ratio=am / bm if bm > 0 else math.nan, diff=m, ci_low=lo, ci_high=hi, n=n,
                        p_value=paired_p_value(d)))
    df = pd.DataFrame(out, columns=cols)
    verdict, adjusted = verdicts(df["diff"].to_numpy(float), df["p_value"].to_numpy(float), alpha=alpha)
    df["p_holm"], df["verdict"] = adjusted, verdict
    return df
