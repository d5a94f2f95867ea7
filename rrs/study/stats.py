"""Statistics of the study: confidence intervals, paired comparisons, Holm-corrected verdicts.

Every number is a mean with a 95% confidence interval. Seeds of the same image are first
averaged, then a Student-t interval is taken over the per-image means (images are the
independent units; seeds of one image share the image and are not independent). With a single
image the seeds are the units instead. Intervals of bounded metrics are clipped to the
metric's range (e.g. intersections to [0, 1]).

Paired comparisons (RRS − other) use the per-image differences the same way: a two-sided
one-sample t-test of the mean difference gives a p-value per comparison. Many comparisons are
made at once, so the win/tie/lose verdicts control the *family-wise* error rate with Holm's
step-down method (Holm 1979) at α = :data:`ALPHA`: the family is every comparison in one table
(:func:`paired_comparisons`: all settings × RRS variants × other methods for one metric;
:func:`best_vs_best`: all settings of the table). A comparison is a win or a loss only when
its Holm-adjusted p-value is ≤ α; the intervals shown are the unadjusted 95% intervals.
"""
from __future__ import annotations

import math

import numpy as np

__all__ = ["ALPHA", "KEYS", "RANGES", "mean_ci", "paired_p_value", "holm", "verdicts", "valid_rows",
           "with_drop", "summarize", "paired_comparisons", "best_vs_best", "RRS_VARIANTS"]

#: Family-wise error rate of the win/tie/lose verdicts (Holm's step-down method).
ALPHA = 0.05
#: Columns identifying one reported quantity.
KEYS = ["experiment", "method", "cell", "T", "norm", "budget", "attack", "certificate", "beta", "steps", "metric"]
RANGES = {"intersection": (0, 1), "floor_intersection": (0, 1), "intersection_index": (0, 1),
          "floor_intersection_index": (0, 1), "intersection_same_noise": (0, 1),
          "intersection_vs_reference": (0, 1), "reference_half_agreement": (0, 1),
          "label_preserved": (0, 1), "spearman": (-1, 1), "floor_spearman": (-1, 1),
          "drop": (-1, 1), "radius": (0, math.inf), "cell_radius_median": (0, math.inf)}
RRS_VARIANTS = ("rrs-topk", "rrs-exp")


def _finite(values) -> np.ndarray:
    return np.asarray([v for v in values if v is not None and np.isfinite(v)], dtype=float)


def mean_ci(values, level: float = 0.95, bounds=None) -> tuple[float, float, float, int]:
    """Mean and Student-t confidence interval of independent values: ``(mean, lo, hi, n)``.

    With one value (or no spread) the interval is the mean itself.
    """
    from scipy import stats
    x = _finite(values)
    n = x.size
    if n == 0:
        return float("nan"), float("nan"), float("nan"), 0
    m = float(x.mean())
    if n == 1 or float(x.std()) == 0.0:
        lo = hi = m
    else:
        half = float(stats.t.ppf(0.5 + level / 2, n - 1) * x.std(ddof=1) / math.sqrt(n))
        lo, hi = m - half, m + half
    if bounds is not None:
        lo, hi = max(lo, bounds[0]), min(hi, bounds[1])
    return m, lo, hi, n


def paired_p_value(diffs) -> float:
    """Two-sided p-value of the one-sample t-test of mean difference 0 (the test that matches
    :func:`mean_ci`: p < 0.05 exactly when the 95% interval excludes 0). Fewer than two
    differences: 1 (nothing can be concluded); no spread: 0 when the mean differs from 0."""
    from scipy import stats
    d = _finite(diffs)
    if d.size < 2:
        return 1.0
    sd = float(d.std(ddof=1))
    if sd == 0.0:
        return 0.0 if float(d.mean()) != 0.0 else 1.0
    t = float(d.mean()) / (sd / math.sqrt(d.size))
    return float(2 * stats.t.sf(abs(t), d.size - 1))


def holm(pvalues, alpha: float = ALPHA) -> tuple[np.ndarray, np.ndarray]:
    """Holm's step-down adjustment: ``(adjusted p-values, rejected)`` in the input order.

    With the p-values sorted, ``p_(1) ≤ … ≤ p_(m)``, the adjusted value of ``p_(i)`` is
    ``max_{j ≤ i} min(1, (m − j + 1)·p_(j))``; a hypothesis is rejected when its adjusted
    value is ≤ ``alpha``. This controls the family-wise error rate at ``alpha`` under any
    dependence between the tests.
    """
    p = np.asarray(pvalues, dtype=float).reshape(-1)
    if np.any(~np.isfinite(p)) or np.any((p < 0) | (p > 1)):
        raise ValueError("p-values must be numbers in [0, 1]")
    m = p.size
    order = np.argsort(p, kind="stable")
    scaled = np.minimum(1.0, (m - np.arange(m)) * p[order])
    adjusted = np.empty(m)
    adjusted[order] = np.maximum.accumulate(scaled)
    return adjusted, adjusted <= alpha


def verdicts(diffs, pvalues, higher_is_better=True, alpha: float = ALPHA) -> tuple[list[str], np.ndarray]:
    """``wins``/``loses``/``ties`` per comparison from Holm-adjusted p-values (and the
    adjusted values): a win or loss needs adjusted p ≤ ``alpha``; its sign decides which."""
    adjusted, reject = holm(pvalues, alpha) if len(pvalues) else (np.zeros(0), np.zeros(0, bool))
    out = []
    for d, r in zip(diffs, reject):
        out.append("ties" if not r or d == 0 else ("wins" if (d > 0) == higher_is_better else "loses"))
    return out, adjusted


# ------------------------------------------------------------------------------ rows

_ATTACK_KEY = ["image", "method", "cell", "T", "seed", "norm", "budget", "attack"]
_ATTACK_METRICS = ("intersection", "intersection_index", "spearman", "intersection_same_noise",
                   "perturbation_l2", "perturbation_linf")


def valid_rows(rows):
    """Drop the map metrics of attack runs that could not keep the label.

    Ghorbani et al.'s attack is only meaningful when the prediction stays the same; when
    ``rrs.attacks.attack`` finds no label-preserving step it returns a label-changing point,
    whose map change is not an interpretation attack. Such runs keep their
    ``label_preserved`` row (so the report counts them) and lose the rest.
    """
    if rows is None or rows.empty or "metric" not in rows:
        return rows
    lab = rows[(rows.metric == "label_preserved") & (rows.value < 1)]
    if lab.empty:
        return rows
    bad = set(map(tuple, lab[_ATTACK_KEY].astype(str).to_numpy()))
    key = rows[_ATTACK_KEY].astype(str).apply(tuple, axis=1)
    drop = key.isin(bad) & rows.metric.isin(_ATTACK_METRICS)
    return rows[~drop.to_numpy()]


def with_drop(rows):
    """Add ``drop = floor − attacked`` rows (same image, method, cell, T, seed)."""
    import pandas as pd
    if rows is None or rows.empty or "metric" not in rows:
        return rows
    att = rows[rows.metric == "intersection"]
    flo = rows[rows.metric == "floor_intersection"]
    if att.empty or flo.empty:
        return rows
    on = ["image", "method", "cell", "T", "seed"]
    f = flo[on + ["value"]].rename(columns={"value": "floor"})
    j = att.merge(f, on=on, how="inner")
    j = j.assign(value=j["floor"] - j["value"], metric="drop").drop(columns=["floor"])
    return pd.concat([rows, j], ignore_index=True)


def _units(group):
    """Per-image means over seeds; the seeds themselves when there is only one image."""
    if group["image"].nunique() >= 2:
        return group.groupby("image", sort=False)["value"].mean().to_numpy()
    return group["value"].to_numpy()


def summarize(rows):
    """Mean, 95% CI and n for every reported quantity (columns: :data:`KEYS` + mean, ci_low,
    ci_high, n, n_images, n_seeds, ci_method)."""
    import pandas as pd
    cols = KEYS + ["mean", "ci_low", "ci_high", "n", "n_images", "n_seeds", "ci_method"]
    if rows is None or len(rows) == 0:
        return pd.DataFrame(columns=cols)
    rows = with_drop(valid_rows(rows.copy()))
    for k in KEYS + ["image", "seed"]:
        if k not in rows:
            rows[k] = None
    out = []
    for key, g in rows.groupby(KEYS, dropna=False, sort=False):
        m, lo, hi, n = mean_ci(_units(g), bounds=RANGES.get(key[-1]))
        if n == 0:
            continue  # no finite value (e.g. a noise-to-signal ratio that is inf everywhere)
        method = "t-interval over images (seed-averaged)" if g["image"].nunique() >= 2 else "t-interval over seeds"
        out.append(dict(zip(KEYS, key), mean=m, ci_low=lo, ci_high=hi, n=n,
                        n_images=int(g["image"].nunique()), n_seeds=int(g["seed"].nunique()), ci_method=method))
    df = pd.DataFrame(out, columns=cols)
    for k in KEYS:
        df[k] = df[k].where(df[k].notna(), None)
    return df


def _paired(g, per, a, b):
    """Paired differences ``a − b`` over images (over seeds when there is one image)."""
    d = (per[a] - per[b]).dropna()
    if d.size == 1:
        ga = g[g.method == a].set_index("seed")["value"]
        gb = g[g.method == b].set_index("seed")["value"]
        d = (ga - gb).dropna()
    return d.to_numpy(float)


def paired_comparisons(rows, metric: str = "intersection", alpha: float = ALPHA):
    """Per setting, paired differences ``RRS − other`` of ``metric`` (mean, unadjusted 95% CI,
    t-test p-value, Holm-adjusted p-value over the whole table, verdict).

    ``verdict``: ``wins``/``loses`` when the Holm-adjusted p-value is ≤ ``alpha`` and the
    difference favours RRS / the other method (for ``drop`` lower is better), else ``ties``.
    """
    import pandas as pd
    rows = with_drop(valid_rows(rows))
    cols = ["cell", "T", "norm", "budget", "attack", "metric", "rrs", "other", "rrs_mean", "other_mean",
            "diff", "ci_low", "ci_high", "n", "ratio", "p_value", "p_holm", "verdict"]
    if rows is None or rows.empty:
        return pd.DataFrame(columns=cols)
    r = rows[rows.metric == metric]
    setting = ["cell", "T"] if metric.startswith("floor") else ["cell", "T", "norm", "budget", "attack"]
    out = []
    for key, g in r.groupby(setting, dropna=False, sort=True):
        per = g.groupby(["method", "image"])["value"].mean().unstack("method")
        for a in RRS_VARIANTS:
            if a not in per:
                continue
            for b in per.columns:
                if b in RRS_VARIANTS:
                    continue
                d = _paired(g, per, a, b)
                if d.size == 0:
                    continue
                m, lo, hi, n = mean_ci(d)
                am, bm = float(per[a].mean()), float(per[b].mean())
                out.append(dict(zip(setting, key), metric=metric, rrs=a, other=b, rrs_mean=am, other_mean=bm,
                                diff=m, ci_low=lo, ci_high=hi, n=n, ratio=am / bm if bm > 0 else float("nan"),
                                p_value=paired_p_value(d)))
    df = pd.DataFrame(out, columns=cols)
    verdict, adjusted = verdicts(df["diff"].to_numpy(float), df["p_value"].to_numpy(float),
                                 higher_is_better=metric != "drop", alpha=alpha)
    df["p_holm"], df["verdict"] = adjusted, verdict
    return df


def best_vs_best(rows, metric: str = "intersection", attack: str = "standard", alpha: float = ALPHA):
    """Per setting: the better RRS variant against the better of SmoothGrad / Sparsified
    SmoothGrad (chosen by mean), with the per-image paired difference, its 95% CI, its t-test
    p-value and the Holm-adjusted p-value over the settings of the table.

    Columns: cell, T, norm, budget, rrs, base, rrs_mean, base_mean, rel (rrs/base − 1),
    ratio, diff, ci_low, ci_high, n, p_value, p_holm, verdict (wins / ties / loses).
    """
    import pandas as pd
    cols = ["cell", "T", "norm", "budget", "rrs", "base", "rrs_mean", "base_mean", "rel", "ratio", "diff",
            "ci_low", "ci_high", "n", "p_value", "p_holm", "verdict"]
    if rows is None or rows.empty:
        return pd.DataFrame(columns=cols)
    rows = valid_rows(rows)
    r = rows[(rows.metric == metric) & (rows.attack == attack)]
    out = []
    for key, g in r.groupby(["cell", "T", "norm", "budget"], dropna=False, sort=True):
        unit = "image" if g["image"].nunique() >= 2 else "seed"
        per = g.groupby(["method", unit])["value"].mean().unstack("method")
        rrs = [m for m in RRS_VARIANTS if m in per]
        base = [m for m in ("smoothgrad", "sparsified") if m in per]
        if not rrs or not base:
            continue
        a = max(rrs, key=lambda m: per[m].mean())
        b = max(base, key=lambda m: per[m].mean())
        d = (per[a] - per[b]).dropna().to_numpy()
        m, lo, hi, n = mean_ci(d)
        am, bm = float(per[a].mean()), float(per[b].mean())
        out.append(dict(zip(["cell", "T", "norm", "budget"], key), rrs=a, base=b, rrs_mean=am, base_mean=bm,
                        rel=am / bm - 1 if bm > 0 else float("nan"), ratio=am / bm if bm > 0 else float("nan"),
                        diff=m, ci_low=lo, ci_high=hi, n=n, p_value=paired_p_value(d)))
    df = pd.DataFrame(out, columns=cols)
    verdict, adjusted = verdicts(df["diff"].to_numpy(float), df["p_value"].to_numpy(float), alpha=alpha)
    df["p_holm"], df["verdict"] = adjusted, verdict
    return df
