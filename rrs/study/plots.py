"""The study's plots and display names (PNG files under the results folder).

Every plot shows means with 95% confidence intervals (:mod:`rrs.study.stats`) read from the
summary table; method names and labels come from :func:`rrs.study.config.method_label`.
"""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from .config import METHOD_NAMES, method_label

__all__ = ["METHOD_LABELS", "METHOD_COLORS", "CERT_LABELS", "ORDER", "PLOTS", "fmt_budget", "cellname",
           "select", "methods_in", "plot_budget", "plot_T", "plot_accuracy", "plot_radius", "plot_cells"]

METHOD_LABELS = {m: method_label(m) for m in METHOD_NAMES}
METHOD_COLORS = {"vanilla": "#7f7f7f", "smoothgrad": "#1f77b4", "sparsified": "#2ca02c",
                 "rrs-topk": "#d62728", "rrs-exp": "#ff7f0e"}
CERT_LABELS = {"rdp-plugin": "RDP exact, plug-in", "rdp-finite": "RDP exact, finite-sample (1−η)",
               "cdf-plugin": "Gaussian-CDF, plug-in", "cdf-finite": "Gaussian-CDF, finite-sample (1−η)",
               "equal-level": "equal-level form (not a certificate for β<1)"}
ORDER = list(METHOD_NAMES)


def cellname(cell) -> str:
    return "pixel" if int(cell) == 1 else f"{int(cell)}×{int(cell)}"


def fmt_budget(norm, eps) -> str:
    if eps is None or (isinstance(eps, float) and math.isnan(eps)):
        return "–"
    if norm == "linf":
        return f"ℓ∞ {eps * 255:.3g}/255"
    return f"ℓ2 {eps:.3g}"


def select(df, **kw):
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


def methods_in(df):
    present = set(df["method"].dropna())
    return [m for m in ORDER if m in present]


def _save(fig, path: Path, files: list):
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    files.append(path)


def plot_budget(summary, cfg, path, files):
    import matplotlib.pyplot as plt
    s = select(summary, experiment="robustness")
    panels = [(cell, T, norm) for cell, T in cfg.robustness_T for norm in ("linf", "l2")
              if any(n == norm for n, _ in cfg.budgets_for(cell))]
    if s.empty or not panels:
        return
    ncols = min(2, len(panels))
    nrows = -(-len(panels) // ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(5.2 * ncols, 3.6 * nrows), squeeze=False)
    for ax in axes.flat[len(panels):]:
        ax.set_visible(False)
    for ax, (cell, T, norm) in zip(axes.flat, panels):
        methods = methods_in(s)
        scale = 255 if norm == "linf" else 1
        top = max([e for n, e in cfg.budgets_for(cell) if n == norm] or [1.0]) * scale
        for idx, method in enumerate(methods):
            t = 1 if method == "vanilla" else T
            c = METHOD_COLORS[method]
            # small horizontal offsets keep the methods' error bars apart
            off = (idx - (len(methods) - 1) / 2) * 0.02 * top
            d = select(s, method=method, cell=cell, T=t, norm=norm, attack="standard", metric="intersection")
            d = d.sort_values("budget")
            if d.empty:
                continue
            _errorbar(ax, d["budget"].to_numpy(float) * scale + off, d, color=c, marker="o",
                      label=METHOD_LABELS[method])
            strong = select(s, method=method, cell=cell, T=t, norm=norm, attack="strong", metric="intersection")
            if not strong.empty:
                _errorbar(ax, strong["budget"].to_numpy(float) * scale + off, strong, color=c, marker="x",
                          linestyle="none", markersize=9)
            f = select(s, method=method, cell=cell, T=t, metric="floor_intersection")
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
    s = select(summary, experiment="robustness", cell=cfg.T_cell)
    if s.empty:
        return
    norm, eps = cfg.T_budget
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    for method in methods_in(s):
        c = METHOD_COLORS[method]
        ts = [1] if method == "vanilla" else list(cfg.T_values)
        a = select(s, method=method, T=ts, norm=norm, budget=eps, attack="standard", metric="intersection").sort_values("T")
        f = select(s, method=method, T=ts, metric="floor_intersection").sort_values("T")
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
    ax.set_title(f"Robustness vs computation: {fmt_budget(norm, eps)}, "
                 f"{'pixel' if cfg.T_cell == 1 else f'{cfg.T_cell}-px patch'} cells\n"
                 "solid = attacked, dashed = no-attack floor", fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    _save(fig, path, files)
    plt.close(fig)


def plot_accuracy(summary, cfg, path, files):
    import matplotlib.pyplot as plt
    s = select(summary, experiment="accuracy")
    if s.empty:
        return
    cells = list(cfg.accuracy_cells)
    fig, axes = plt.subplots(1, len(cells), figsize=(5.2 * len(cells), 3.8), squeeze=False)
    for j, cell in enumerate(cells):
        ax = axes[0][j]
        for method in methods_in(s):
            c = METHOD_COLORS[method]
            d = select(s, method=method, cell=cell, metric="intersection_vs_reference").sort_values("T")
            if d.empty:
                continue
            _errorbar(ax, d["T"].to_numpy(float), d, color=c, marker="o", label=METHOD_LABELS[method])
            h = select(s, method=method, cell=cell, metric="reference_half_agreement")
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
    s = select(summary, experiment="certificates", metric="radius")
    if s.empty:
        return
    cells = list(cfg.cert_cells)
    fig, axes = plt.subplots(1, len(cells), figsize=(5.0 * len(cells), 4.0), squeeze=False)
    styles = {"rdp-plugin": "-", "rdp-finite": "-.", "cdf-plugin": ":", "cdf-finite": (0, (1, 3)),
              "equal-level": "--"}
    for j, cell in enumerate(cells):
        ax = axes[0][j]
        for method in methods_in(s):
            for cert, ls in styles.items():
                d = select(s, method=method, cell=cell, certificate=cert).sort_values("beta")
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
    if select(s, experiment=["robustness", "certificates"]).empty:
        return
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.0))
    ax = axes[0]
    norm, eps = cfg.budgets[0]
    cells = [c for c, _ in cfg.robustness_T]
    width = 0.8 / max(1, len(cells))
    methods = methods_in(select(s, experiment="robustness"))
    for i, (cell, T) in enumerate(cfg.robustness_T):
        xs = np.arange(len(methods)) + i * width
        att, flo = [], []
        for method in methods:
            t = 1 if method == "vanilla" else T
            a = select(s, experiment="robustness", method=method, cell=cell, T=t, norm=norm, budget=eps,
                     attack="standard", metric="intersection")
            f = select(s, experiment="robustness", method=method, cell=cell, T=t, metric="floor_intersection")
            att.append(float(a["mean"].iloc[0]) if len(a) else np.nan)
            flo.append(float(f["mean"].iloc[0]) if len(f) else np.nan)
        label = "pixel" if cell == 1 else f"{cell}×{cell}"
        ax.bar(xs, flo, width * 0.95, color="none", edgecolor="k", linestyle="--", label=f"floor, {label} (T={T})")
        ax.bar(xs, att, width * 0.95, alpha=0.6, label=f"attacked, {label} (T={T})")
    ax.set_xticks(np.arange(len(methods)) + width * (len(cells) - 1) / 2)
    ax.set_xticklabels([METHOD_LABELS[m].replace(" ", "\n", 1) for m in methods], fontsize=7)
    ax.set_ylim(0, 1.05)
    ax.set_ylabel("top-k intersection")
    ax.set_title(f"Attacked vs floor, {fmt_budget(norm, eps)}", fontsize=10)
    ax.legend(fontsize=7)
    ax = axes[1]
    beta = sorted(cfg.cert_betas)[len(cfg.cert_betas) // 2]
    c = select(s, experiment="certificates", metric="radius", beta=beta)
    for method in methods_in(c):
        for cert in ("rdp-plugin", "rdp-finite", "cdf-plugin", "cdf-finite"):
            d = select(c, method=method, certificate=cert).sort_values("cell")
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




#: Every plot of the report with its file name, in the report's order.
PLOTS = ((plot_budget, "robustness_budget.png"), (plot_T, "robustness_T.png"),
         (plot_accuracy, "accuracy_T.png"), (plot_radius, "radius_beta.png"),
         (plot_cells, "pixel_vs_patch.png"))
