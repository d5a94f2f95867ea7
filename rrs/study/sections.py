"""The report's sections on accuracy, certificates and speed, and the small formatting helpers
every section uses (:func:`ci_text`, :func:`md_table`); :mod:`rrs.study.report` assembles them."""
from __future__ import annotations

import numpy as np

from .plots import CERT_LABELS, METHOD_LABELS, methods_in, select

__all__ = ["ci_text", "md_table", "section_accuracy", "section_certificates", "section_speed"]


def ci_text(d, digits=3) -> str:
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


def md_table(header, rows) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in r) + " |" for r in rows]
    return "\n".join(lines)


def section_accuracy(s, cfg):
    md = ["## 3. Accuracy of the smoothed map versus T", "",
           f"Top-k intersection between a T-sample map and the T={cfg.accuracy_T_ref} reference of the same method; "
           f"last column: agreement of the reference's two independent halves (T={cfg.accuracy_T_ref // 2} each), "
           "an upper bound on how well a reference this size pins down the top-k.", ""]
    for cell in cfg.accuracy_cells:
        header = ["method"] + [f"T={t}" for t in cfg.accuracy_T_values] + ["reference halves"]
        arows = []
        for method in methods_in(select(s, experiment="accuracy", cell=cell)):
            line = [METHOD_LABELS[method]]
            for t in cfg.accuracy_T_values:
                line.append(ci_text(select(s, experiment="accuracy", method=method, cell=cell, T=t,
                                     metric="intersection_vs_reference")))
            line.append(ci_text(select(s, experiment="accuracy", method=method, cell=cell, metric="reference_half_agreement")))
            arows.append(line)
        md += [f"### {'Pixel' if cell == 1 else f'{cell}×{cell} patch'} cells", "", md_table(header, arows), ""]
    return md


def section_certificates(s, rows, cfg):
    md = ["## 4. Certified radius versus β", "",
           f"Certified ℓ2 radius (pixel units) at T={cfg.cert_T}, σ={cfg.sigma}, η={cfg.cert_eta}. Finite-sample "
           "radii hold with probability ≥ 1−η; plug-in radii treat the Monte Carlo map as exact. The equal-level "
           "form is shown for comparison only: for β<1 (k0 ≥ 2) it is not a certificate.", ""]
    for cell in cfg.cert_cells:
        header = ["method", "certificate"] + [f"β={b:g}" for b in cfg.cert_betas]
        crows = []
        for method in methods_in(select(s, experiment="certificates", cell=cell)):
            for cert in CERT_LABELS:
                d = select(s, experiment="certificates", method=method, cell=cell, certificate=cert, metric="radius")
                if d.empty:
                    continue
                crows.append([METHOD_LABELS[method], CERT_LABELS[cert]] +
                             [ci_text(select(d, beta=b)) for b in cfg.cert_betas])
        timing = select(s, experiment="certificates", cell=cell, metric="certify_seconds")
        k = rows[(rows.experiment == "certificates") & (rows.cell == cell)]["k"] if "k" in rows else []
        n = rows[(rows.experiment == "certificates") & (rows.cell == cell)]["n_cells"] if "n_cells" in rows else []
        md += [f"### {'Pixel' if cell == 1 else f'{cell}×{cell} patch'} cells"
               + (f" (n = {int(n.iloc[0])} cells, k = {int(k.iloc[0])})" if len(n) else ""), "",
               md_table(header, crows), ""]
        if not timing.empty:
            md += ["Certificate time per map (all certificates of the row set above, incl. per-cell radii for RRS): "
                   + "; ".join(f"{METHOD_LABELS[r['method']]} {r['mean']:.3f} s" for _, r in timing.iterrows()), ""]
    return md


def section_speed(s, rows):
    md = ["## 5. Speed", ""]
    sp = select(s, experiment="speed")
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
        md += ["Numbers measured by the project's benchmarks (their `measure` functions, run as part of this "
               "study with `--bench`; the machine was shared, see the tables below for threads and settings):", "",
               md_table(["benchmark"] + [labels[m] for m in metrics],
                      [[name] + [("–" if not np.isfinite(v) else f"{v:.3g}") for v in r[metrics].to_numpy(float)]
                       for name, r in table.iterrows()]), ""]
        for _, r in rows[(rows.experiment == "speed") & (rows.metric == "bench_seconds")].iterrows():
            if isinstance(r.get("note"), str):
                md += [f"`bench/{r['certificate']}.py`:", "", "```", r["note"], "```", ""]
    att = select(s, experiment="robustness", metric="attack_seconds", attack="standard")
    if not att.empty:
        md += ["Mean attack time per image (standard attack, seconds): " + "; ".join(
            f"{METHOD_LABELS[m]} {att[att.method == m]['mean'].mean():.1f}" for m in methods_in(att)) + ".", ""]
    return md
