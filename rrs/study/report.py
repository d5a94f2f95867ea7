"""The study's report: CSV/JSON tables, plots and the markdown document (docs/results.md).

:func:`write_outputs` writes everything from the result rows; the numbers come from
:mod:`rrs.study.stats` (means with 95% intervals, Holm-corrected win/tie/lose verdicts) and the
figures from :mod:`rrs.study.plots`.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from .. import jsonio
from .decisive import findings as _decisive_findings
from .decisive import sections as _decisive_sections
from .decisive import write_tables as _decisive_tables
from .plots import CERT_LABELS, METHOD_LABELS, PLOTS, cellname, fmt_budget, methods_in, select
from .sections import ci_text as _ci
from .sections import md_table as _table
from .sections import section_accuracy as _section_accuracy
from .sections import section_certificates as _section_certificates
from .sections import section_speed as _section_speed
from .stats import ALPHA, best_vs_best, paired_comparisons, summarize
from .store import read_runs
from .version import check_current

__all__ = ["write_outputs", "write_markdown", "HOLM_TEXT"]

#: How the verdicts are made (the report's Settings section and docs state the same).
HOLM_TEXT = (f"Win/tie/lose: a two-sided paired t-test per comparison (per-image differences, seed-averaged), "
             f"with Holm's step-down correction for multiplicity at family-wise α = {ALPHA:g}. The family is every "
             "comparison of one table: for the paired comparisons, all settings (cell, T, budget, attack) × "
             "RRS variant × other method; for the paper's claims, all settings of the best-RRS-versus-best-"
             "baseline table. A win or loss needs a Holm-adjusted p ≤ α; the intervals shown are unadjusted "
             "95% intervals, so an interval that excludes 0 can still be a tie.")


def _robust_table(s, cfg, cell, T, norm, eps, attack):
    rows = []
    for method in methods_in(s):
        t = 1 if method == "vanilla" else T
        q = dict(experiment="robustness", method=method, cell=cell, T=t)
        att = select(s, **q, norm=norm, budget=eps, attack=attack, metric="intersection")
        if att.empty:
            continue
        rows.append([METHOD_LABELS[method], t, _ci(att), _ci(select(s, **q, metric="floor_intersection")),
                     _ci(select(s, **q, norm=norm, budget=eps, attack=attack, metric="drop")),
                     _ci(select(s, **q, norm=norm, budget=eps, attack=attack, metric="intersection_same_noise")),
                     _ci(select(s, **q, norm=norm, budget=eps, attack=attack, metric="spearman")),
                     _ci(select(s, **q, metric="floor_spearman")),
                     _ci(select(s, **q, norm=norm, budget=eps, attack=attack, metric="label_preserved"), 2),
                     int(att["n"].iloc[0])])
    return _table(["method", "T", "attacked ∩", "floor ∩", "drop (floor − attacked)", "attacked ∩ (same noise)",
                   "attacked Spearman", "floor Spearman", "label kept", "n"], rows)



def _claims(rows, cfg) -> list[str]:
    """The paper's two robustness claims, judged from the Holm-corrected best-versus-best table."""
    out = []
    bvb = best_vs_best(rows)
    if bvb.empty:
        return out
    counts = bvb["verdict"].value_counts().to_dict()
    rel = bvb["rel"].to_numpy(float)
    per = "; ".join(f"{cellname(r['cell'])} T={int(r['T'])} {fmt_budget(r['norm'], r['budget'])}: "
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
               f"(paired t-test, Holm-corrected over the {len(bvb)} settings at α = {ALPHA:g}). {verdict}")
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
                   f"baseline, attacked intersection at {fmt_budget(*cfg.T_budget)}, {cellname(cfg.T_cell)} "
                   f"cells: {parts}. {verdict}")
    return out


def _findings(summary, rows, cfg) -> list[str]:
    """Plain statements generated from the numbers (the paper's claims, floors and drops, labels, accuracy, certificates)."""
    out = _claims(rows, cfg)
    fl = select(summary, experiment="robustness", metric="drop", attack="standard")
    floor = select(summary, experiment="robustness", metric="floor_intersection")
    if not fl.empty:
        parts = []
        for method in methods_in(fl):
            d, f = fl[fl.method == method], floor[floor.method == method]
            parts.append(f"{METHOD_LABELS[method]}: floor {f['mean'].min():.2f}–{f['mean'].max():.2f}, "
                         f"drop {d['mean'].min():.2f}–{d['mean'].max():.2f}")
        out.append("**How much is attack and how much is sampling noise** (range of means over settings; "
                   "drop = floor − attacked): " + "; ".join(parts) + ". A smoothed method's attacked number "
                   "can never exceed its floor by more than noise, so a high attacked intersection needs a high "
                   "floor first — that is what larger T and patch cells buy.")
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
    acc = select(summary, experiment="accuracy", metric="intersection_vs_reference")
    if not acc.empty:
        parts = []
        for cell in sorted(set(acc["cell"].dropna())):
            a = acc[acc.cell == cell]
            tmax = a["T"].max()
            best = a[a["T"] == tmax].sort_values("mean", ascending=False)
            parts.append(f"{cellname(cell)} cells at T={int(tmax)}: " + ", ".join(
                f"{METHOD_LABELS[r['method']]} {r['mean']:.2f}" for _, r in best.iterrows()))
        out.append("**Accuracy versus a high-T reference** — " + "; ".join(parts) + ".")
    cert = select(summary, experiment="certificates", metric="radius")
    if not cert.empty:
        for cell in sorted(set(cert["cell"].dropna())):
            c = cert[(cert.cell == cell)]
            def mx(kind, rrs_only=False):
                d = c[c.certificate == kind]
                if rrs_only:
                    d = d[d.method.str.startswith("rrs")]
                return float(d["mean"].max()) if len(d) else 0.0
            fin = mx("rdp-finite")
            out.append(f"**Certificates, {cellname(cell)} cells** (T={cfg.cert_T}, σ={cfg.sigma}, ℓ2): largest mean "
                       f"radius over β and methods — RDP plug-in {mx('rdp-plugin'):.3g}, RDP finite-sample "
                       f"{fin:.3g}{' (vacuous everywhere at this T)' if fin == 0 else ''}, Gaussian-CDF plug-in "
                       f"{mx('cdf-plugin'):.3g}, Gaussian-CDF finite-sample {mx('cdf-finite'):.3g}.")
        atk = [float(e) for c, _ in cfg.robustness_T for n, e in cfg.budgets_for(c) if n == "l2"]
        # Only the finite-sample radii are certificates: a plug-in radius is an estimate.
        finite = cert[cert.certificate.isin(["rdp-finite", "cdf-finite"])]["mean"]
        top = float(finite.max()) if len(finite) else 0.0
        if atk and "robustness" in cfg.experiments:
            scale = (f"the largest mean finite-sample certified radius ({top:.3g}) is {min(atk) / top:.0f}× smaller "
                     "than the smallest ℓ2 attack budget, so no certificate here covers the attacks that were run"
                     if top > 0 else "no finite-sample certified radius is positive")
            out.append(f"For scale: the ℓ2 attack budgets are {', '.join(f'{e:g}' for e in atk)} (pixel units); "
                       f"{scale}.")
    out += _decisive_findings(summary, rows, cfg)
    return out


def _command(run, cfg) -> str:
    """The command line that regenerates this report (the run's own, less --notes/--quiet)."""
    argv = list(run.get("argv") or [])
    if not argv:
        return "evaluate" + (" --quick" if cfg.preset == "quick" else "")
    if argv[0] != "evaluate":  # run as python -m rrs.study
        argv = ["evaluate"] + argv
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
           "parameters, see `rrs.study.jobs.derive_seed`).",
           f"- Target class: the model's prediction on the clean image. Base attribution: vanilla gradient; "
           f"cells: sum of |gradient| over the cell's pixels and channels. Top-k: k = {cfg.k_fraction:.0%} of the cells.",
           f"- Smoothing: Gaussian noise σ = {cfg.sigma} (pixel units) for all smoothed methods, the same T for all; "
           "Sparsified SmoothGrad τ=0.1, φ=0.01; RRS top-k' uniform with k' = ⌈n/10⌉; RRS exponential "
           "v_r ∝ exp(−(r−1)/k).",
           f"- Attack: top-k objective (Ghorbani et al.), PGD, standard = {cfg.attack.steps} steps with "
           f"{cfg.attack.eot} EOT noise samples per step" + (
               f"; strong = {cfg.strong_attack.steps} steps with {cfg.strong_attack.eot} EOT samples at "
               + ", ".join(fmt_budget(n, e) for n, e in cfg.strong_budgets) + " on cells "
               + ", ".join(str(c) for c in cfg.strong_cells) if cfg.strong_attack else "") +
           ". Noise seeds as in `rrs.floor`: the clean map and the floor's first run use the map's seed s "
           "(`MapSettings.seed`), the floor's second run and the attacked map use s + 1 (common random numbers), "
           "so `drop` isolates the attack; `attacked ∩ (same noise)` uses seed s on the attacked image.",
           f"- Budgets: " + ", ".join(fmt_budget(n, e) for n, e in cfg.budgets) + (
               f" (patch cells: {', '.join(fmt_budget(n, e) for n, e in cfg.patch_budgets)})"
               if cfg.patch_budgets is not None else "") +
           f"; cells/T: " + ", ".join(f"{'pixel' if c == 1 else f'{c}×{c}'} T={t}" for c, t in cfg.robustness_T) +
           f"; vs T: T ∈ {list(cfg.T_values)} at {fmt_budget(*cfg.T_budget)}, cell {cfg.T_cell}.",
           f"- Accuracy: reference map with T={cfg.accuracy_T_ref} samples (two independent halves, whose "
           f"agreement is reported as ★), T ∈ {list(cfg.accuracy_T_values)}, cells {list(cfg.accuracy_cells)}.",
           f"- Certificates: T={cfg.cert_T}, ℓ2 threat, η={cfg.cert_eta}, β ∈ {list(cfg.cert_betas)}, "
           f"cells {list(cfg.cert_cells)} (RDP: `rrs.certify.certify`, Clopper–Pearson/Hoeffding with "
           "Bonferroni over cells for finite-sample).",
           "- Statistics: mean and 95% confidence interval; seeds of one image are averaged and a Student-t "
           "interval is taken over images (with one image: over seeds). Bounded metrics are clipped to their "
           "range. " + HOLM_TEXT + " Attack runs "
           "that could not keep the label are left out of the map metrics (counted under `label kept`).", ""]
    m = run["machine"]
    md += ["## Machine and runs", "",
           f"- CPU: {m['cpu']} ({m['cores']} cores), CUDA: {m['cuda']}; torch {m['torch']}, numpy {m['numpy']}, "
           f"Python {m['python']}; {m['platform']}.",
           f"- Code version of every row: {run.get('code', 'unrecorded')} (`rrs.study.version`: rrs's version and a hash "
           "of the sources that determine results; stored jobs of another version are recomputed, never mixed in).",
           f"- {run['jobs']} jobs in this study; the runs that computed them (each job is computed once and "
           "stored; later runs reuse it):"]
    hist = read_runs(out) or [run]
    for h in hist:
        same_study = (h.get("config", {}).get("model"), tuple(h.get("config", {}).get("images", ()))) == \
            (cfg.model, tuple(cfg.images))
        # a run of another code version computed rows this report does not use (they are stale)
        if h.get("executed", 0) == 0 or ("config" in h and not same_study) or h.get("code") != run.get("code"):
            continue
        md.append(f"  - {h['machine']['date']}: {h['executed']} jobs computed ({h['cached']} reused) in "
                  f"{h['wall_seconds']:.0f} s wall, {'Ray' if h.get('ray') else 'in-process'}, device "
                  f"{h.get('device')}, torch threads {h.get('threads') or h['machine'].get('torch_threads')}; load "
                  f"average (1/5/15 min) at start {_fmt_load(h.get('loadavg_start'))}, at end "
                  f"{_fmt_load(h['machine'].get('loadavg'))}" + (f"; {h['notes']}" if h.get("notes") else "") + ".")
    md += [f"- The study's own jobs keep {run.get('threads') or m.get('torch_threads')} torch threads busy: a load "
           "average well above that means other work shared the machine and wall times include contention; "
           "per-job times are in `jobs/*.json` (`elapsed`).", ""]

    md += _section_robustness(s, rows, cfg) if "robustness" in cfg.experiments else []
    md += _section_accuracy(s, cfg) if "accuracy" in cfg.experiments else []
    md += _section_certificates(s, rows, cfg) if "certificates" in cfg.experiments else []
    md += _section_speed(s, rows)
    md += _decisive_sections(s, rows, cfg)
    md += ["## Plots", ""]
    for p in pngs:
        md += [f"![{p.stem}]({rel(p)})", ""]
    path.write_text("\n".join(md))


def _section_robustness(s, rows, cfg):
    md = ["## 1. Robustness under the top-k attack (with no-attack floors)", "",
           "∩ = top-k intersection with the clean map (1 = same top-k set), *tie-aware*: the expected value "
           "when ties at the k-th value are broken uniformly at random (`rrs.metrics.tie_aware_intersection`). "
           "Smoothed maps with few samples have many ties (an RRS map with top-k' uniform scoring takes only "
           "T+1 values), and the library's deterministic index tie-break would make unrelated maps agree on "
           "low-index cells; the index-tie-break values are in `summary.csv` as `intersection_index` / "
           "`floor_intersection_index`. floor = the same metric between two clean runs with different seeds — "
           "what sampling noise alone does.", ""]
    for cell, T in cfg.robustness_T:
        for norm, eps in cfg.budgets_for(cell):
            md += [f"### {'Pixel' if cell == 1 else f'{cell}×{cell} patch'} cells, T={T}, {fmt_budget(norm, eps)}, standard attack", "",
                   _robust_table(s, cfg, cell, T, norm, eps, "standard"), ""]
        if cfg.strong_attack is not None and cell in cfg.strong_cells:
            for norm, eps in cfg.strong_budgets:
                md += [f"### {'Pixel' if cell == 1 else f'{cell}×{cell} patch'} cells, T={T}, {fmt_budget(norm, eps)}, "
                       f"strong attack ({cfg.strong_attack.steps} steps × {cfg.strong_attack.eot} EOT)", "",
                       _robust_table(s, cfg, cell, T, norm, eps, "strong"), ""]
    comp = paired_comparisons(rows, "intersection")
    if not comp.empty:
        md += ["### Paired comparisons (attacked intersection, RRS − other)", "",
               f"Verdicts Holm-corrected over the {len(comp)} comparisons of this table at family-wise "
               f"α = {ALPHA:g} (p: paired t-test; p (Holm): adjusted).", "",
               _table(["cell", "T", "budget", "attack", "RRS", "other", "RRS", "other", "Δ [95% CI]", "ratio", "p",
                       "p (Holm)", "verdict"],
                      [[int(r["cell"]), int(r["T"]), fmt_budget(r["norm"], r["budget"]), r["attack"],
                        METHOD_LABELS[r["rrs"]], METHOD_LABELS[r["other"]], f"{r['rrs_mean']:.3f}",
                        f"{r['other_mean']:.3f}", f"{r['diff']:+.3f} [{r['ci_low']:+.3f}, {r['ci_high']:+.3f}]",
                        f"{r['ratio']:.2f}", f"{r['p_value']:.3g}", f"{r['p_holm']:.3g}", r["verdict"]]
                       for _, r in comp.iterrows()]), ""]
    md += ["## 2. Robustness versus computation (T)", "",
           f"{fmt_budget(*cfg.T_budget)}, standard attack, {'pixel' if cfg.T_cell == 1 else f'{cfg.T_cell}-px patch'} cells. "
           "Each cell: attacked ∩ / floor ∩.", ""]
    header = ["method"] + [f"T={t}" for t in cfg.T_values]
    trows = []
    for method in methods_in(select(s, experiment="robustness")):
        line = [METHOD_LABELS[method]]
        for t in cfg.T_values:
            tt = 1 if method == "vanilla" else t
            a = select(s, experiment="robustness", method=method, cell=cfg.T_cell, T=tt, norm=cfg.T_budget[0],
                     budget=cfg.T_budget[1], attack="standard", metric="intersection")
            f = select(s, experiment="robustness", method=method, cell=cfg.T_cell, T=tt, metric="floor_intersection")
            line.append(f"{_ci(a)} / {_ci(f)}" if len(a) else "–")
        trows.append(line)
        if cfg.strong_attack is not None and cfg.strong_T_values and method != "vanilla":
            line = [f"{METHOD_LABELS[method]}, strong attack"]
            for t in cfg.T_values:
                a = select(s, experiment="robustness", method=method, cell=cfg.T_cell, T=t, norm=cfg.T_budget[0],
                           budget=cfg.T_budget[1], attack="strong", metric="intersection")
                line.append(_ci(a) if len(a) else "–")
            trows.append(line)
    md += [_table(header, trows), ""]
    return md


def _fmt_load(load) -> str:
    return "–" if not load else "/".join(f"{x:.1f}" for x in load)


def write_outputs(rows, out, report_path, cfg, run) -> list:
    """Write rows.csv, summary.csv/json, comparisons.csv, PNG plots and the markdown report.

    Refuses (:class:`~rrs.study.config.EvaluationError`, before writing anything) rows computed
    by another code version than this one (:func:`rrs.study.version.check_current`)."""
    check_current(rows, _command(run, cfg))
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
    jsonio.write(out / "settings.json", {"config": cfg.to_json(), "run": run})
    files.append(out / "settings.json")
    pngs = []
    for fn, name in PLOTS:
        before = len(files)
        fn(summary, cfg, out / name, files)
        pngs += files[before:]
    pngs += _decisive_tables(summary, rows, cfg, out, files)
    write_markdown(summary, rows, cfg, run, report_path, out, pngs)
    files.append(report_path)
    return files

