"""Tables, plots and the markdown report of the evaluation study (``rrs.evaluate``).

Statistics: every number is a mean with a 95% confidence interval. Seeds of the same image
are first averaged, then a Student-t interval is taken over the per-image means (images are
the independent units; seeds of one image share the image and are not independent). With a
single image the seeds are the units instead. Intervals of bounded metrics are clipped to the
metric's range (e.g. intersections to [0, 1]). Paired comparisons between methods use the
per-image differences the same way.
"""
from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np

__all__ = ["summarize", "paired_comparisons", "best_vs_best", "valid_rows", "write_outputs", "mean_ci", "KEYS"]

#: Columns identifying one reported quantity.
KEYS = ["experiment", "method", "cell", "T", "norm", "budget", "attack", "certificate", "beta", "metric"]

_RANGES = {"intersection": (0, 1), "floor_intersection": (0, 1), "intersection_index": (0, 1),
           "floor_intersection_index": (0, 1), "intersection_same_noise": (0, 1),
           "intersection_vs_reference": (0, 1), "reference_half_agreement": (0, 1),
           "label_preserved": (0, 1), "spearman": (-1, 1), "floor_spearman": (-1, 1),
           "drop": (-1, 1), "radius": (0, math.inf), "cell_radius_median": (0, math.inf)}

METHOD_LABELS = {"vanilla": "Vanilla gradient", "smoothgrad": "SmoothGrad",
                 "sparsified": "Sparsified SmoothGrad", "rrs-topk": "RRS (top-k' uniform)",
                 "rrs-exp": "RRS (exponential)"}
METHOD_COLORS = {"vanilla": "#7f7f7f", "smoothgrad": "#1f77b4", "sparsified": "#2ca02c",
                 "rrs-topk": "#d62728", "rrs-exp": "#ff7f0e"}
CERT_LABELS = {"rdp-plugin": "RDP exact, plug-in", "rdp-finite": "RDP exact, finite-sample (1−η)",
               "cdf-plugin": "Gaussian-CDF, plug-in", "cdf-finite": "Gaussian-CDF, finite-sample (1−η)",
               "equal-level": "equal-level form (not a certificate for β<1)"}
ORDER = ["vanilla", "smoothgrad", "sparsified", "rrs-topk", "rrs-exp"]


def mean_ci(values, level: float = 0.95, bounds=None) -> tuple[float, float, float, int]:
    """Mean and Student-t confidence interval of independent values: ``(mean, lo, hi, n)``.

    With one value (or no spread) the interval is the mean itself.
    """
    from scipy import stats
    x = np.asarray([v for v in values if v is not None and np.isfinite(v)], dtype=float)
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


_ATTACK_KEY = ["image", "method", "cell", "T", "seed", "norm", "budget", "attack"]
_ATTACK_METRICS = ("intersection", "intersection_index", "spearman", "intersection_same_noise", "perturbation_l2", "perturbation_linf")


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


def _with_drop(rows):
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
    rows = _with_drop(valid_rows(rows.copy()))
    for k in KEYS + ["image", "seed"]:
        if k not in rows:
            rows[k] = None
    out = []
    for key, g in rows.groupby(KEYS, dropna=False, sort=False):
        units = _units(g)
        m, lo, hi, n = mean_ci(units, bounds=_RANGES.get(key[-1]))
        method = "t-interval over images (seed-averaged)" if g["image"].nunique() >= 2 else "t-interval over seeds"
        out.append(dict(zip(KEYS, key), mean=m, ci_low=lo, ci_high=hi, n=n,
                        n_images=int(g["image"].nunique()), n_seeds=int(g["seed"].nunique()), ci_method=method))
    df = pd.DataFrame(out, columns=cols)
    for k in KEYS:
        df[k] = df[k].where(df[k].notna(), None)
    return df


def paired_comparisons(rows, metric: str = "intersection"):
    """Per-setting paired differences ``RRS − other`` of ``metric`` over images (mean, 95% CI).

    ``verdict`` is ``wins``/``loses`` when the interval excludes 0 in RRS's favour/against it
    (for ``drop`` lower is better), ``ties`` otherwise.
    """
    import pandas as pd
    rows = _with_drop(valid_rows(rows))
    cols = ["cell", "T", "norm", "budget", "attack", "metric", "rrs", "other", "rrs_mean", "other_mean",
            "diff", "ci_low", "ci_high", "n", "ratio", "verdict"]
    if rows is None or rows.empty:
        return pd.DataFrame(columns=cols)
    r = rows[rows.metric == metric]
    if metric.startswith("floor"):
        setting = ["cell", "T"]
    else:
        setting = ["cell", "T", "norm", "budget", "attack"]
    out = []
    for key, g in r.groupby(setting, dropna=False, sort=True):
        per = g.groupby(["method", "image"])["value"].mean().unstack("method")
        for a in ("rrs-topk", "rrs-exp"):
            if a not in per:
                continue
            for b in per.columns:
                if b in ("rrs-topk", "rrs-exp"):
                    continue
                d = (per[a] - per[b]).dropna()
                if d.empty:
                    continue
                if d.size == 1:  # one image: fall back to seeds (paired by seed)
                    ga = g[g.method == a].set_index("seed")["value"]
                    gb = g[g.method == b].set_index("seed")["value"]
                    d = (ga - gb).dropna()
                m, lo, hi, n = mean_ci(d.to_numpy())
                better_high = metric != "drop"
                if n < 2 or lo <= 0 <= hi:
                    verdict = "ties"
                elif (lo > 0) == better_high:
                    verdict = "wins"
                else:
                    verdict = "loses"
                am, bm = float(per[a].mean()), float(per[b].mean())
                out.append(dict(zip(setting, key), metric=metric, rrs=a, other=b, rrs_mean=am, other_mean=bm,
                                diff=m, ci_low=lo, ci_high=hi, n=n,
                                ratio=am / bm if bm > 0 else float("nan"), verdict=verdict))
    return pd.DataFrame(out, columns=cols)


# ------------------------------------------------------------------------------ plots

def _budgets_for(cfg, cell):
    return cfg.budgets if cell == 1 or cfg.patch_budgets is None else cfg.patch_budgets


def _fmt_budget(norm, eps) -> str:
    if eps is None or (isinstance(eps, float) and math.isnan(eps)):
        return "–"
    if norm == "linf":
        return f"ℓ∞ {eps * 255:.3g}/255"
    return f"ℓ2 {eps:.3g}"


def _sel(df, **kw):
    m = np.ones(len(df), dtype=bool)
    for k, v in kw.items():
        col = df[k]
        if v is None:
            m &= col.isna().to_numpy()
        elif isinstance(v, (list, tuple, set)):
            m &= col.isin(list(v)).to_numpy()
        else:
            m &= (col == v).to_numpy()
    return df[m]


def _errorbar(ax, x, d, **kw):
    y = d["mean"].to_numpy(float)
    lo = np.clip(y - d["ci_low"].to_numpy(float), 0, None)
    hi = np.clip(d["ci_high"].to_numpy(float) - y, 0, None)
    ax.errorbar(x, y, yerr=[lo, hi], capsize=3, **kw)


def _methods(df):
    present = set(df["method"].dropna())
    return [m for m in ORDER if m in present]


def _save(fig, path: Path, files: list):
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    files.append(path)


def plot_budget(summary, cfg, path, files):
    import matplotlib.pyplot as plt
    s = _sel(summary, experiment="robustness")
    panels = [(cell, T, norm) for cell, T in cfg.robustness_T for norm in ("linf", "l2")
              if any(n == norm for n, _ in _budgets_for(cfg, cell))]
    if s.empty or not panels:
        return
    ncols = min(2, len(panels))
    nrows = -(-len(panels) // ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(5.2 * ncols, 3.6 * nrows), squeeze=False)
    for ax in axes.flat[len(panels):]:
        ax.set_visible(False)
    for ax, (cell, T, norm) in zip(axes.flat, panels):
        methods = _methods(s)
        scale = 255 if norm == "linf" else 1
        top = max([e for n, e in _budgets_for(cfg, cell) if n == norm] or [1.0]) * scale
        for idx, method in enumerate(methods):
            t = 1 if method == "vanilla" else T
            c = METHOD_COLORS[method]
            # small horizontal offsets keep the methods' error bars apart
            off = (idx - (len(methods) - 1) / 2) * 0.02 * top
            d = _sel(s, method=method, cell=cell, T=t, norm=norm, attack="standard", metric="intersection")
            d = d.sort_values("budget")
            if d.empty:
                continue
            _errorbar(ax, d["budget"].to_numpy(float) * scale + off, d, color=c, marker="o",
                      label=METHOD_LABELS[method])
            strong = _sel(s, method=method, cell=cell, T=t, norm=norm, attack="strong", metric="intersection")
            if not strong.empty:
                _errorbar(ax, strong["budget"].to_numpy(float) * scale + off, strong, color=c, marker="x",
                          linestyle="none", markersize=9)
            f = _sel(s, method=method, cell=cell, T=t, metric="floor_intersection")
            if not f.empty:
                ax.axhline(float(f["mean"].iloc[0]), color=c, linestyle="--", linewidth=1, alpha=0.8)
        ax.set_ylim(-0.03, 1.03)
        ax.set_xlabel("budget (ℓ∞, ×1/255)" if norm == "linf" else "budget (ℓ2, pixel units)")
        ax.set_ylabel("top-k intersection")
        ax.set_title(f"{'pixel' if cell == 1 else f'{cell}×{cell} patch'} cells, T={T}", fontsize=10)
        ax.grid(alpha=0.3)
    axes[0][0].legend(fontsize=7, loc="upper left")
    fig.suptitle("Top-k intersection under attack (o = standard, x = strong attack; bars = 95% CI) vs "
                 "no-attack floor (dashed)", fontsize=10)
    _save(fig, path, files)
    plt.close(fig)


def plot_T(summary, cfg, path, files):
    import matplotlib.pyplot as plt
    s = _sel(summary, experiment="robustness", cell=cfg.T_cell)
    if s.empty:
        return
    norm, eps = cfg.T_budget
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    for method in _methods(s):
        c = METHOD_COLORS[method]
        ts = [1] if method == "vanilla" else list(cfg.T_values)
        a = _sel(s, method=method, T=ts, norm=norm, budget=eps, attack="standard", metric="intersection").sort_values("T")
        f = _sel(s, method=method, T=ts, metric="floor_intersection").sort_values("T")
        if method == "vanilla" and not a.empty:
            ax.axhline(float(a["mean"].iloc[0]), color=c, label=METHOD_LABELS[method] + " (attacked)")
            continue
        if not a.empty:
            _errorbar(ax, a["T"].to_numpy(float), a, color=c, marker="o", label=METHOD_LABELS[method])
        if not f.empty:
            ax.plot(f["T"].to_numpy(float), f["mean"].to_numpy(float), color=c, linestyle="--", linewidth=1)
    ax.set_xscale("log", base=2)
    ax.set_ylim(-0.03, 1.03)
    ax.set_xlabel("T (noise samples per map)")
    ax.set_ylabel("top-k intersection")
    ax.set_title(f"Robustness vs computation: {_fmt_budget(norm, eps)}, "
                 f"{'pixel' if cfg.T_cell == 1 else f'{cfg.T_cell}-px patch'} cells\n"
                 "solid = attacked, dashed = no-attack floor", fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    _save(fig, path, files)
    plt.close(fig)


def plot_accuracy(summary, cfg, path, files):
    import matplotlib.pyplot as plt
    s = _sel(summary, experiment="accuracy")
    if s.empty:
        return
    cells = list(cfg.accuracy_cells)
    fig, axes = plt.subplots(1, len(cells), figsize=(5.2 * len(cells), 3.8), squeeze=False)
    for j, cell in enumerate(cells):
        ax = axes[0][j]
        for method in _methods(s):
            c = METHOD_COLORS[method]
            d = _sel(s, method=method, cell=cell, metric="intersection_vs_reference").sort_values("T")
            if d.empty:
                continue
            _errorbar(ax, d["T"].to_numpy(float), d, color=c, marker="o", label=METHOD_LABELS[method])
            h = _sel(s, method=method, cell=cell, metric="reference_half_agreement")
            if not h.empty:
                ax.plot([cfg.accuracy_T_ref / 2], [float(h["mean"].iloc[0])], marker="*", color=c, markersize=10)
        ax.set_xscale("log", base=2)
        ax.set_ylim(-0.03, 1.03)
        ax.set_xlabel("T")
        ax.set_ylabel(f"top-k intersection with T={cfg.accuracy_T_ref} reference")
        ax.set_title(f"{'pixel' if cell == 1 else f'{cell}×{cell} patch'} cells (★ = two halves of the reference)",
                     fontsize=9)
        ax.grid(alpha=0.3)
    axes[0][0].legend(fontsize=7)
    _save(fig, path, files)
    plt.close(fig)


def plot_radius(summary, cfg, path, files):
    import matplotlib.pyplot as plt
    s = _sel(summary, experiment="certificates", metric="radius")
    if s.empty:
        return
    cells = list(cfg.cert_cells)
    fig, axes = plt.subplots(1, len(cells), figsize=(5.0 * len(cells), 4.0), squeeze=False)
    styles = {"rdp-plugin": "-", "rdp-finite": "-.", "cdf-plugin": ":", "cdf-finite": (0, (1, 3)),
              "equal-level": "--"}
    for j, cell in enumerate(cells):
        ax = axes[0][j]
        for method in _methods(s):
            for cert, ls in styles.items():
                d = _sel(s, method=method, cell=cell, certificate=cert).sort_values("beta")
                if d.empty:
                    continue
                _errorbar(ax, d["beta"].to_numpy(float), d, color=METHOD_COLORS[method], linestyle=ls,
                          marker=".", label=f"{METHOD_LABELS[method]} — {CERT_LABELS[cert]}")
        ax.set_xlabel("β (fraction of the top-k that must stay)")
        ax.set_ylabel("certified ℓ2 radius (pixel units)")
        ax.set_title(f"{'pixel' if cell == 1 else f'{cell}×{cell} patch'} cells, T={cfg.cert_T}", fontsize=10)
        ax.grid(alpha=0.3)
    handles, labels = axes[0][0].get_legend_handles_labels()
    if handles:
        fig.legend(handles, labels, fontsize=7, loc="lower center", ncol=2, bbox_to_anchor=(0.5, 0.0))
    fig.tight_layout(rect=(0, 0.08 + 0.025 * len(labels) / 2, 1, 1))
    fig.savefig(path, dpi=80)
    files.append(path)
    plt.close(fig)


def plot_cells(summary, cfg, path, files):
    """Pixel versus patch cells: floor/attacked intersection and a certified radius."""
    import matplotlib.pyplot as plt
    s = summary
    if _sel(s, experiment=["robustness", "certificates"]).empty:
        return
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.0))
    ax = axes[0]
    norm, eps = cfg.budgets[0]
    cells = [c for c, _ in cfg.robustness_T]
    width = 0.8 / max(1, len(cells))
    methods = _methods(_sel(s, experiment="robustness"))
    for i, (cell, T) in enumerate(cfg.robustness_T):
        xs = np.arange(len(methods)) + i * width
        att, flo = [], []
        for method in methods:
            t = 1 if method == "vanilla" else T
            a = _sel(s, experiment="robustness", method=method, cell=cell, T=t, norm=norm, budget=eps,
                     attack="standard", metric="intersection")
            f = _sel(s, experiment="robustness", method=method, cell=cell, T=t, metric="floor_intersection")
            att.append(float(a["mean"].iloc[0]) if len(a) else np.nan)
            flo.append(float(f["mean"].iloc[0]) if len(f) else np.nan)
        label = "pixel" if cell == 1 else f"{cell}×{cell}"
        ax.bar(xs, flo, width * 0.95, color="none", edgecolor="k", linestyle="--", label=f"floor, {label} (T={T})")
        ax.bar(xs, att, width * 0.95, alpha=0.6, label=f"attacked, {label} (T={T})")
    ax.set_xticks(np.arange(len(methods)) + width * (len(cells) - 1) / 2)
    ax.set_xticklabels([METHOD_LABELS[m].replace(" ", "\n", 1) for m in methods], fontsize=7)
    ax.set_ylim(0, 1.05)
    ax.set_ylabel("top-k intersection")
    ax.set_title(f"Attacked vs floor, {_fmt_budget(norm, eps)}", fontsize=10)
    ax.legend(fontsize=7)
    ax = axes[1]
    beta = sorted(cfg.cert_betas)[len(cfg.cert_betas) // 2]
    c = _sel(s, experiment="certificates", metric="radius", beta=beta)
    for method in _methods(c):
        for cert in ("rdp-plugin", "rdp-finite", "cdf-plugin", "cdf-finite"):
            d = _sel(c, method=method, certificate=cert).sort_values("cell")
            if d.empty:
                continue
            _errorbar(ax, d["cell"].to_numpy(float), d, color=METHOD_COLORS[method], marker="o",
                      linestyle={"rdp-plugin": "-", "rdp-finite": "-.", "cdf-plugin": ":",
                                 "cdf-finite": (0, (1, 3))}[cert],
                      label=f"{METHOD_LABELS[method]} — {CERT_LABELS[cert]}")
    ax.set_xscale("log", base=2)
    ax.set_xlabel("cell size (pixels per side)")
    ax.set_ylabel(f"certified ℓ2 radius at β={beta:g}")
    ax.set_title(f"Certified radius vs cell size (T={cfg.cert_T})", fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=6)
    _save(fig, path, files)
    plt.close(fig)


# ---------------------------------------------------------------------------- markdown

def _ci(d, digits=3) -> str:
    if d is None or len(d) == 0:
        return "–"
    r = d.iloc[0]
    if not np.isfinite(r["mean"]):
        return "–"
    if abs(r["ci_high"] - r["ci_low"]) <= 1e-12 * max(1.0, abs(r["mean"])):
        return f"{r['mean']:.{digits}g}" if abs(r["mean"]) < 1e-3 and r["mean"] != 0 else f"{r['mean']:.{digits}f}"
    if abs(r["mean"]) < 1e-2 and r["mean"] != 0:
        return f"{r['mean']:.2e} [{r['ci_low']:.2e}, {r['ci_high']:.2e}]"
    return f"{r['mean']:.{digits}f} [{r['ci_low']:.{digits}f}, {r['ci_high']:.{digits}f}]"


def _table(header, rows) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in r) + " |" for r in rows]
    return "\n".join(lines)


def _robust_table(s, cfg, cell, T, norm, eps, attack):
    rows = []
    for method in _methods(s):
        t = 1 if method == "vanilla" else T
        q = dict(experiment="robustness", method=method, cell=cell, T=t)
        att = _sel(s, **q, norm=norm, budget=eps, attack=attack, metric="intersection")
        if att.empty:
            continue
        rows.append([METHOD_LABELS[method], t, _ci(att), _ci(_sel(s, **q, metric="floor_intersection")),
                     _ci(_sel(s, **q, norm=norm, budget=eps, attack=attack, metric="drop")),
                     _ci(_sel(s, **q, norm=norm, budget=eps, attack=attack, metric="intersection_same_noise")),
                     _ci(_sel(s, **q, norm=norm, budget=eps, attack=attack, metric="spearman")),
                     _ci(_sel(s, **q, metric="floor_spearman")),
                     _ci(_sel(s, **q, norm=norm, budget=eps, attack=attack, metric="label_preserved"), 2),
                     int(att["n"].iloc[0])])
    return _table(["method", "T", "attacked ∩", "floor ∩", "drop (floor − attacked)", "attacked ∩ (same noise)",
                   "attacked Spearman", "floor Spearman", "label kept", "n"], rows)


def best_vs_best(rows, metric: str = "intersection", attack: str = "standard"):
    """Per setting: the better RRS variant against the better of SmoothGrad / Sparsified
    SmoothGrad (chosen by mean), with the per-image paired difference and its 95% CI.

    Columns: cell, T, norm, budget, rrs, base, rrs_mean, base_mean, rel (rrs/base − 1),
    ratio, diff, ci_low, ci_high, n, verdict (wins / ties / loses).
    """
    import pandas as pd
    cols = ["cell", "T", "norm", "budget", "rrs", "base", "rrs_mean", "base_mean", "rel", "ratio", "diff",
            "ci_low", "ci_high", "n", "verdict"]
    if rows is None or rows.empty:
        return pd.DataFrame(columns=cols)
    rows = valid_rows(rows)
    r = rows[(rows.metric == metric) & (rows.attack == attack)]
    out = []
    for key, g in r.groupby(["cell", "T", "norm", "budget"], dropna=False, sort=True):
        unit = "image" if g["image"].nunique() >= 2 else "seed"
        per = g.groupby(["method", unit])["value"].mean().unstack("method")
        rrs = [m for m in ("rrs-topk", "rrs-exp") if m in per]
        base = [m for m in ("smoothgrad", "sparsified") if m in per]
        if not rrs or not base:
            continue
        a = max(rrs, key=lambda m: per[m].mean())
        b = max(base, key=lambda m: per[m].mean())
        d = (per[a] - per[b]).dropna().to_numpy()
        m, lo, hi, n = mean_ci(d)
        verdict = "ties" if n < 2 or lo <= 0 <= hi else ("wins" if lo > 0 else "loses")
        am, bm = float(per[a].mean()), float(per[b].mean())
        out.append(dict(zip(["cell", "T", "norm", "budget"], key), rrs=a, base=b, rrs_mean=am, base_mean=bm,
                        rel=am / bm - 1 if bm > 0 else float("nan"), ratio=am / bm if bm > 0 else float("nan"),
                        diff=m, ci_low=lo, ci_high=hi, n=n, verdict=verdict))
    return pd.DataFrame(out, columns=cols)


def _cellname(cell) -> str:
    return "pixel" if int(cell) == 1 else f"{int(cell)}×{int(cell)}"


def _findings(summary, rows, cfg) -> list[str]:
    """Plain statements generated from the numbers (wins / ties / losses and the paper's claims)."""
    out = []
    bvb = best_vs_best(rows)
    if not bvb.empty:
        counts = bvb["verdict"].value_counts().to_dict()
        rel = bvb["rel"].to_numpy(float)
        per = "; ".join(f"{_cellname(r['cell'])} T={int(r['T'])} {_fmt_budget(r['norm'], r['budget'])}: "
                        f"{r['rrs_mean']:.2f} vs {r['base_mean']:.2f} ({r['rel']:+.0%}, {r['verdict']})"
                        for _, r in bvb.iterrows())
        med = float(np.nanmedian(rel))
        wins, losses = counts.get("wins", 0), counts.get("loses", 0)
        if med >= 0.08 and wins >= max(1, len(bvb) // 2) and losses == 0:
            verdict = "Reproduced on this model."
        elif med > 0 and losses == 0:
            verdict = ("Not clearly reproduced: RRS is ahead on average, but the gain is smaller than 10% or "
                       "not significant in most settings.")
        elif losses > wins:
            verdict = "Not reproduced: RRS is significantly behind in more settings than it is ahead."
        else:
            verdict = "Not reproduced: no consistent advantage for RRS."
        out.append(f"**Paper claim 1 — RRS about 10% more robust than existing methods.** Attacked top-k "
                   f"intersection of the better RRS variant vs the better of SmoothGrad / Sparsified SmoothGrad "
                   f"(same σ, same T, standard attack), per setting: {per}. Median relative difference "
                   f"{med:+.0%}; significant wins {wins}, ties {counts.get('ties', 0)}, losses {losses} "
                   f"(95% CI of the per-image paired difference). {verdict}")
        small = bvb[(bvb.cell == cfg.T_cell) & (bvb["T"] <= 4) & (bvb.norm == cfg.T_budget[0])
                    & np.isclose(bvb.budget.astype(float), cfg.T_budget[1])]
        if not small.empty:
            ratios = small["ratio"].to_numpy(float)
            parts = "; ".join(f"T={int(r['T'])}: {r['rrs_mean']:.2f} vs {r['base_mean']:.2f} = ×{r['ratio']:.2f} "
                              f"({r['verdict']})" for _, r in small.iterrows())
            medr = float(np.nanmedian(ratios))
            verdict = ("Reproduced on this model." if medr >= 1.8 and (small.verdict == "wins").all() else
                       "Partly: RRS is more robust at small T, but well short of 2×." if medr > 1.1
                       and not (small.verdict == "loses").any() else "Not reproduced on this model.")
            out.append(f"**Paper claim 2 — RRS about twice as robust at small T.** Better RRS variant ÷ better "
                       f"baseline, attacked intersection at {_fmt_budget(*cfg.T_budget)}, {_cellname(cfg.T_cell)} "
                       f"cells: {parts}. {verdict}")
    fl = _sel(summary, experiment="robustness", metric="drop", attack="standard")
    floor = _sel(summary, experiment="robustness", metric="floor_intersection")
    if not fl.empty:
        parts = []
        for method in _methods(fl):
            d, f = fl[fl.method == method], floor[floor.method == method]
            parts.append(f"{METHOD_LABELS[method]}: floor {f['mean'].min():.2f}–{f['mean'].max():.2f}, "
                         f"drop {d['mean'].min():.2f}–{d['mean'].max():.2f}")
        out.append("**How much is attack and how much is sampling noise** (range of means over settings; "
                   "drop = floor − attacked): " + "; ".join(parts) + ". A smoothed method's attacked number "
                   "can never exceed its floor by more than noise, so a high attacked intersection needs a high "
                   "floor first — that is what larger T and patch cells buy.")
    strong = _sel(summary, experiment="robustness", metric="drop", attack="strong")
    if not strong.empty:
        parts = []
        for method in _methods(strong):
            d = strong[strong.method == method]
            std = _sel(fl, method=method, cell=list(d["cell"]), T=list(d["T"]), norm=list(d["norm"]),
                       budget=list(d["budget"]))
            parts.append(f"{METHOD_LABELS[method]} {d['mean'].mean():.2f}"
                         + (f" (standard {std['mean'].mean():.2f})" if len(std) else ""))
        out.append("**Stronger attack** (more steps and EOT samples) — mean drop: " + "; ".join(parts) + ".")
    lab = rows[rows.metric == "label_preserved"] if "metric" in rows else rows.iloc[:0]
    if not lab.empty:
        failed = lab[lab.value < 1]
        text = f"The attack kept the label in {len(lab) - len(failed)} of {len(lab)} runs"
        if len(failed):
            per_image = failed.groupby("image").size().sort_values(ascending=False)
            text += (f"; the other {len(failed)} (images: " + ", ".join(f"{i} ({n})" for i, n in per_image.items())
                     + ") found no label-preserving step — typically an image the model classifies with low "
                     "confidence — and are left out of the robustness statistics (their `label kept` is 0)")
        out.append(text + ".")
    acc = _sel(summary, experiment="accuracy", metric="intersection_vs_reference")
    if not acc.empty:
        parts = []
        for cell in sorted(set(acc["cell"].dropna())):
            a = acc[acc.cell == cell]
            tmax = a["T"].max()
            best = a[a["T"] == tmax].sort_values("mean", ascending=False)
            parts.append(f"{_cellname(cell)} cells at T={int(tmax)}: " + ", ".join(
                f"{METHOD_LABELS[r['method']]} {r['mean']:.2f}" for _, r in best.iterrows()))
        out.append("**Accuracy versus a high-T reference** — " + "; ".join(parts) + ".")
    cert = _sel(summary, experiment="certificates", metric="radius")
    if not cert.empty:
        for cell in sorted(set(cert["cell"].dropna())):
            c = cert[(cert.cell == cell)]
            def mx(kind, rrs_only=False):
                d = c[c.certificate == kind]
                if rrs_only:
                    d = d[d.method.str.startswith("rrs")]
                return float(d["mean"].max()) if len(d) else 0.0
            fin = mx("rdp-finite")
            out.append(f"**Certificates, {_cellname(cell)} cells** (T={cfg.cert_T}, σ={cfg.sigma}, ℓ2): largest mean "
                       f"radius over β and methods — RDP plug-in {mx('rdp-plugin'):.3g}, RDP finite-sample "
                       f"{fin:.3g}{' (vacuous everywhere at this T)' if fin == 0 else ''}, Gaussian-CDF plug-in "
                       f"{mx('cdf-plugin'):.3g}, Gaussian-CDF finite-sample {mx('cdf-finite'):.3g}.")
        atk = [float(e) for c, _ in cfg.robustness_T for n, e in _budgets_for(cfg, c) if n == "l2"]
        top = float(cert[cert.certificate != "equal-level"]["mean"].max())
        if atk and "robustness" in cfg.experiments:
            scale = (f"the largest mean certified radius ({top:.3g}) is {min(atk) / top:.0f}× smaller than the "
                     "smallest ℓ2 attack budget, so no certificate here covers the attacks that were run"
                     if top > 0 else "no certified radius is positive")
            out.append(f"For scale: the ℓ2 attack budgets are {', '.join(f'{e:g}' for e in atk)} (pixel units); "
                       f"{scale}.")
    return out


def _command(run, cfg) -> str:
    """The command line that regenerates this report (the run's own, less --notes/--quiet)."""
    argv = list(run.get("argv") or [])
    if not argv:
        return "evaluate" + (" --quick" if cfg.preset == "quick" else "")
    out, skip = [], False
    for a in argv:
        if skip:
            skip = False
        elif a == "--notes":
            skip = True
        elif a not in ("--quiet", "--debug") and not a.startswith("--notes="):
            out.append(a)
    return " ".join(out)


def write_markdown(summary, rows, cfg, run, path: Path, out: Path, pngs) -> None:
    s = summary
    rel = lambda p: Path(p).relative_to(path.parent).as_posix() if Path(p).is_relative_to(path.parent) else str(p)
    md = ["# Evaluation results", "",
          f"Generated by `python -m rrs {_command(run, cfg)}` "
          f"(preset **{cfg.preset}**, model **{cfg.model}**) on {run['machine']['date']}. Regenerate with the same "
          "command; finished jobs are stored in `" + rel(out / 'jobs') + "` and reused (delete it or pass "
          "`--no-resume` to recompute). Raw rows: `" + rel(out / 'rows.csv') + "`; summary with CIs: `"
          + rel(out / 'summary.csv') + "`; paired comparisons: `" + rel(out / 'comparisons.csv') + "`.", ""]
    notes = out / "notes.md"
    md += ["## Findings", ""]
    md += [f"- {f}" for f in _findings(s, rows, cfg)]
    if notes.exists():
        md += ["", "### Notes written after the run", "", notes.read_text().strip()]
    md += ["", "## Settings", "",
           f"- Images ({len(cfg.images)}): {', '.join(cfg.images)}; seeds per setting: {cfg.seeds} "
           f"(base seed {cfg.base_seed}; every generator seed is a SHA-256 hash of the base seed and the job's "
           "parameters, see `rrs.evaluate.derive_seed`).",
           f"- Target class: the model's prediction on the clean image. Base attribution: vanilla gradient; "
           f"cells: sum of |gradient| over the cell's pixels and channels. Top-k: k = {cfg.k_fraction:.0%} of the cells.",
           f"- Smoothing: Gaussian noise σ = {cfg.sigma} (pixel units) for all smoothed methods, the same T for all; "
           "Sparsified SmoothGrad τ=0.1, φ=0.01; RRS top-k' uniform with k' = ⌈n/10⌉; RRS exponential "
           "v_r ∝ exp(−(r−1)/k).",
           f"- Attack: top-k objective (Ghorbani et al.), PGD, standard = {cfg.attack.steps} steps with "
           f"{cfg.attack.eot_samples} EOT noise samples per step" + (
               f"; strong = {cfg.strong_attack.steps} steps with {cfg.strong_attack.eot_samples} EOT samples at "
               + ", ".join(_fmt_budget(n, e) for n, e in cfg.strong_budgets) + " on cells "
               + ", ".join(str(c) for c in cfg.strong_cells) if cfg.strong_attack else "") +
           ". The clean map and the floor's first run use seed a; the floor's second run and the attacked map "
           "use seed b (common random numbers), so `drop` isolates the attack. `attacked ∩ (same noise)` reuses "
           "seed a on the attacked image.",
           f"- Budgets: " + ", ".join(_fmt_budget(n, e) for n, e in cfg.budgets) + (
               f" (patch cells: {', '.join(_fmt_budget(n, e) for n, e in cfg.patch_budgets)})"
               if cfg.patch_budgets is not None else "") +
           f"; cells/T: " + ", ".join(f"{'pixel' if c == 1 else f'{c}×{c}'} T={t}" for c, t in cfg.robustness_T) +
           f"; vs T: T ∈ {list(cfg.T_values)} at {_fmt_budget(*cfg.T_budget)}, cell {cfg.T_cell}.",
           f"- Accuracy: reference map with T={cfg.accuracy_T_ref} samples (two independent halves, whose "
           f"agreement is reported as ★), T ∈ {list(cfg.accuracy_T_values)}, cells {list(cfg.accuracy_cells)}.",
           f"- Certificates: T={cfg.cert_T}, ℓ2 threat, η={cfg.cert_eta}, β ∈ {list(cfg.cert_betas)}, "
           f"cells {list(cfg.cert_cells)} (RDP: `rrs.certify.certify`, Clopper–Pearson/Hoeffding with "
           "Bonferroni over cells for finite-sample).",
           "- Statistics: mean and 95% confidence interval; seeds of one image are averaged and a Student-t "
           "interval is taken over images (with one image: over seeds). Bounded metrics are clipped to their "
           "range. Win/tie/lose: 95% t-interval of the per-image paired difference excludes 0 or not. Attack runs "
           "that could not keep the label are left out of the map metrics (counted under `label kept`).", ""]
    m = run["machine"]
    md += ["## Machine and runs", "",
           f"- CPU: {m['cpu']} ({m['cores']} cores), CUDA: {m['cuda']}; torch {m['torch']}, numpy {m['numpy']}, "
           f"Python {m['python']}; {m['platform']}.",
           f"- {run['jobs']} jobs in this study; the runs that computed them (each job is computed once and "
           "stored; later runs reuse it):"]
    runs_file = out / "runs.jsonl"
    hist = [json.loads(x) for x in runs_file.read_text().splitlines() if x.strip()] if runs_file.exists() else [run]
    for h in hist:
        same_study = (h.get("config", {}).get("model"), tuple(h.get("config", {}).get("images", ()))) == \
            (cfg.model, tuple(cfg.images))
        if h.get("executed", 0) == 0 or ("config" in h and not same_study):
            continue
        md.append(f"  - {h['machine']['date']}: {h['executed']} jobs computed ({h['cached']} reused) in "
                  f"{h['wall_seconds']:.0f} s wall, {'Ray' if h.get('ray') else 'in-process'}, device "
                  f"{h.get('device')}, torch threads {h.get('threads') or h['machine'].get('torch_threads')}; load "
                  f"average (1/5/15 min) at start {_fmt_load(h.get('loadavg_start'))}, at end "
                  f"{_fmt_load(h['machine'].get('loadavg'))}" + (f"; {h['notes']}" if h.get("notes") else "") + ".")
    md += ["- The machine (2 cores) was shared with other work during these runs, so wall times include "
           "contention; per-job times are in `jobs/*.json` (`elapsed`).", ""]

    md += _section_robustness(s, rows, cfg) if "robustness" in cfg.experiments else []
    md += _section_accuracy(s, cfg) if "accuracy" in cfg.experiments else []
    md += _section_certificates(s, rows, cfg) if "certificates" in cfg.experiments else []
    md += _section_speed(s, rows)
    md += ["## Plots", ""]
    for p in pngs:
        md += [f"![{p.stem}]({rel(p)})", ""]
    path.write_text("\n".join(md))


def _section_robustness(s, rows, cfg):
    md = ["## 1. Robustness under the top-k attack (with no-attack floors)", "",
           "∩ = top-k intersection with the clean map (1 = same top-k set), *tie-aware*: the expected value "
           "when ties at the k-th value are broken uniformly at random (`rrs.evaluate.tie_aware_intersection`). "
           "Smoothed maps with few samples have many ties (an RRS map with top-k' uniform scoring takes only "
           "T+1 values), and the library's deterministic index tie-break would make unrelated maps agree on "
           "low-index cells; the index-tie-break values are in `summary.csv` as `intersection_index` / "
           "`floor_intersection_index`. floor = the same metric between two clean runs with different seeds — "
           "what sampling noise alone does.", ""]
    for cell, T in cfg.robustness_T:
        for norm, eps in _budgets_for(cfg, cell):
            md += [f"### {'Pixel' if cell == 1 else f'{cell}×{cell} patch'} cells, T={T}, {_fmt_budget(norm, eps)}, standard attack", "",
                   _robust_table(s, cfg, cell, T, norm, eps, "standard"), ""]
        if cfg.strong_attack is not None and cell in cfg.strong_cells:
            for norm, eps in cfg.strong_budgets:
                md += [f"### {'Pixel' if cell == 1 else f'{cell}×{cell} patch'} cells, T={T}, {_fmt_budget(norm, eps)}, "
                       f"strong attack ({cfg.strong_attack.steps} steps × {cfg.strong_attack.eot_samples} EOT)", "",
                       _robust_table(s, cfg, cell, T, norm, eps, "strong"), ""]
    comp = paired_comparisons(rows, "intersection")
    if not comp.empty:
        md += ["### Paired comparisons (attacked intersection, RRS − other)", "",
               _table(["cell", "T", "budget", "attack", "RRS", "other", "RRS", "other", "Δ [95% CI]", "ratio", "verdict"],
                      [[int(r["cell"]), int(r["T"]), _fmt_budget(r["norm"], r["budget"]), r["attack"],
                        METHOD_LABELS[r["rrs"]], METHOD_LABELS[r["other"]], f"{r['rrs_mean']:.3f}",
                        f"{r['other_mean']:.3f}", f"{r['diff']:+.3f} [{r['ci_low']:+.3f}, {r['ci_high']:+.3f}]",
                        f"{r['ratio']:.2f}", r["verdict"]] for _, r in comp.iterrows()
                       if r["other"] != "vanilla" or True]), ""]
    md += ["## 2. Robustness versus computation (T)", "",
           f"{_fmt_budget(*cfg.T_budget)}, standard attack, {'pixel' if cfg.T_cell == 1 else f'{cfg.T_cell}-px patch'} cells. "
           "Each cell: attacked ∩ / floor ∩.", ""]
    header = ["method"] + [f"T={t}" for t in cfg.T_values]
    trows = []
    for method in _methods(_sel(s, experiment="robustness")):
        line = [METHOD_LABELS[method]]
        for t in cfg.T_values:
            tt = 1 if method == "vanilla" else t
            a = _sel(s, experiment="robustness", method=method, cell=cfg.T_cell, T=tt, norm=cfg.T_budget[0],
                     budget=cfg.T_budget[1], attack="standard", metric="intersection")
            f = _sel(s, experiment="robustness", method=method, cell=cfg.T_cell, T=tt, metric="floor_intersection")
            line.append(f"{_ci(a)} / {_ci(f)}" if len(a) else "–")
        trows.append(line)
    md += [_table(header, trows), ""]
    return md


def _section_accuracy(s, cfg):
    md = ["## 3. Accuracy of the smoothed map versus T", "",
           f"Top-k intersection between a T-sample map and the T={cfg.accuracy_T_ref} reference of the same method; "
           f"last column: agreement of the reference's two independent halves (T={cfg.accuracy_T_ref // 2} each), "
           "an upper bound on how well a reference this size pins down the top-k.", ""]
    for cell in cfg.accuracy_cells:
        header = ["method"] + [f"T={t}" for t in cfg.accuracy_T_values] + ["reference halves"]
        arows = []
        for method in _methods(_sel(s, experiment="accuracy", cell=cell)):
            line = [METHOD_LABELS[method]]
            for t in cfg.accuracy_T_values:
                line.append(_ci(_sel(s, experiment="accuracy", method=method, cell=cell, T=t,
                                     metric="intersection_vs_reference")))
            line.append(_ci(_sel(s, experiment="accuracy", method=method, cell=cell, metric="reference_half_agreement")))
            arows.append(line)
        md += [f"### {'Pixel' if cell == 1 else f'{cell}×{cell} patch'} cells", "", _table(header, arows), ""]
    return md


def _section_certificates(s, rows, cfg):
    md = ["## 4. Certified radius versus β", "",
           f"Certified ℓ2 radius (pixel units) at T={cfg.cert_T}, σ={cfg.sigma}, η={cfg.cert_eta}. Finite-sample "
           "radii hold with probability ≥ 1−η; plug-in radii treat the Monte Carlo map as exact. The equal-level "
           "form is shown for comparison only: for β<1 (k0 ≥ 2) it is not a certificate.", ""]
    for cell in cfg.cert_cells:
        header = ["method", "certificate"] + [f"β={b:g}" for b in cfg.cert_betas]
        crows = []
        for method in _methods(_sel(s, experiment="certificates", cell=cell)):
            for cert in CERT_LABELS:
                d = _sel(s, experiment="certificates", method=method, cell=cell, certificate=cert, metric="radius")
                if d.empty:
                    continue
                crows.append([METHOD_LABELS[method], CERT_LABELS[cert]] +
                             [_ci(_sel(d, beta=b)) for b in cfg.cert_betas])
        timing = _sel(s, experiment="certificates", cell=cell, metric="certify_seconds")
        k = rows[(rows.experiment == "certificates") & (rows.cell == cell)]["k"] if "k" in rows else []
        n = rows[(rows.experiment == "certificates") & (rows.cell == cell)]["n_cells"] if "n_cells" in rows else []
        md += [f"### {'Pixel' if cell == 1 else f'{cell}×{cell} patch'} cells"
               + (f" (n = {int(n.iloc[0])} cells, k = {int(k.iloc[0])})" if len(n) else ""), "",
               _table(header, crows), ""]
        if not timing.empty:
            md += ["Certificate time per map (all certificates of the row set above, incl. per-cell radii for RRS): "
                   + "; ".join(f"{METHOD_LABELS[r['method']]} {r['mean']:.3f} s" for _, r in timing.iterrows()), ""]
    return md


def _section_speed(s, rows):
    md = ["## 5. Speed", ""]
    sp = _sel(s, experiment="speed")
    if sp.empty:
        md += ["The benchmarks (`bench/smoothing.py`, `bench/attack.py`) were not part of this run "
               "(`--bench` adds them; `make bench` runs them alone). Certificate times are in section 4; the "
               "attack cost per job is in `rows.csv` (metric `attack_seconds`).", ""]
    else:
        table = sp[sp.metric != "bench_seconds"].pivot_table(index="certificate", columns="metric", values="mean",
                                                             sort=False)
        labels = {"seconds": "wall s", "ratio_to_bare_loop": "× bare loop", "ratio_to_captum": "× Captum",
                  "cpu_seconds": "CPU s", "ratio_to_gradient_cpu": "÷ one gradient (CPU)",
                  "certify_seconds": "certificate s"}
        metrics = [m for m in labels if m in table.columns]
        md += ["Numbers printed by the project's benchmarks (run as part of this study with `--bench`; the "
               "machine was shared, see the outputs below for threads and settings):", "",
               _table(["benchmark"] + [labels[m] for m in metrics],
                      [[name] + [("–" if not np.isfinite(v) else f"{v:.3g}") for v in r[metrics].to_numpy(float)]
                       for name, r in table.iterrows()]), ""]
        for _, r in rows[(rows.experiment == "speed") & (rows.metric == "bench_seconds")].iterrows():
            if isinstance(r.get("note"), str):
                md += [f"`bench/{r['certificate']}.py` output (tail):", "", "```", r["note"], "```", ""]
    att = _sel(s, experiment="robustness", metric="attack_seconds", attack="standard")
    if not att.empty:
        md += ["Mean attack time per image (standard attack, seconds): " + "; ".join(
            f"{METHOD_LABELS[m]} {att[att.method == m]['mean'].mean():.1f}" for m in _methods(att)) + ".", ""]
    return md


def _fmt_load(load) -> str:
    return "–" if not load else "/".join(f"{x:.1f}" for x in load)


def write_outputs(rows, out, report_path, cfg, run) -> list:
    """Write rows.csv, summary.csv/json, comparisons.csv, PNG plots and the markdown report."""
    import matplotlib
    matplotlib.use("Agg", force=False)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    report_path = Path(report_path)
    report_path.parent.mkdir(parents=True, exist_ok=True)
    files = []
    rows.to_csv(out / "rows.csv", index=False)
    files.append(out / "rows.csv")
    summary = summarize(rows)
    summary.to_csv(out / "summary.csv", index=False)
    (out / "summary.json").write_text(summary.to_json(orient="records", indent=1))
    files += [out / "summary.csv", out / "summary.json"]
    comp = paired_comparisons(rows, "intersection")
    comp.to_csv(out / "comparisons.csv", index=False)
    files.append(out / "comparisons.csv")
    (out / "settings.json").write_text(json.dumps({"config": cfg.to_json(), "run": run}, indent=1))
    files.append(out / "settings.json")
    pngs = []
    for fn, name in ((plot_budget, "robustness_budget.png"), (plot_T, "robustness_T.png"),
                     (plot_accuracy, "accuracy_T.png"), (plot_radius, "radius_beta.png"),
                     (plot_cells, "pixel_vs_patch.png")):
        before = len(files)
        fn(summary, cfg, out / name, files)
        pngs += files[before:]
    write_markdown(summary, rows, cfg, run, report_path, out, pngs)
    files.append(report_path)
    return files
