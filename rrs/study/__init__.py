"""The evaluation study: robustness under attack, accuracy versus T, certificates, speed.

Reproduces the claims of Liu, Chen, Liu, Xia, Gan (*Certifiably Robust Interpretation via
Rényi Differential Privacy*, AI 2022) on this project's models, next to SmoothGrad
(Smilkov et al. 2017), Sparsified SmoothGrad (Levine, Singla, Feizi 2019) and the vanilla
gradient, following method.md §2–§7:

1. **robustness** — tie-aware top-k intersection and Spearman correlation between the clean map
   and the map of an image attacked by the top-k attack (Ghorbani et al. 2019, PGD with EOT on
   the smoothed methods, :func:`rrs.attacks.attack`), at several ℓ∞ and ℓ2 budgets, pixel and
   patch cells, several ``T``; always next to the no-attack floor (:mod:`rrs.floor`).
2. **accuracy** — top-k intersection between a ``T``-sample map and a high-``T`` reference.
3. **certificates** — certified ℓ2 radius versus β for pixel and patch cells, and the time to
   certify a map.
4. **strength** — the attack gradient's variance (which sizes EOT) and drop versus PGD steps
   (:mod:`~rrs.study.strength`); the strong attack: ≥ 100 steps with restarts.
5. **schemes** — every certificate scheme (selection, Bonferroni, fixed-T and anytime, "stays
   important"); **profile** — break radius versus certified radius per image
   (:mod:`~rrs.study.worth`); claim 2 at matched cost (:mod:`~rrs.study.matched`).
6. **speed** — the ``measure`` functions of :mod:`rrs.benchmarks` (printed by ``bench/smoothing.py``, ``bench/attack.py``).

Layout: :mod:`~rrs.study.config` (settings, presets, images), :mod:`~rrs.study.jobs` (the job
grid, keys, seeds, one function per job kind), :mod:`~rrs.study.store` (the job store),
:mod:`~rrs.study.version` (the code version stamped on each job; stale jobs are recomputed and a
report never mixes versions),
:mod:`~rrs.study.runner` (in-process and Ray), :mod:`~rrs.study.stats` (intervals, Holm-corrected
verdicts), :mod:`~rrs.study.plots`, :mod:`~rrs.study.report`, :mod:`~rrs.study.sections` and
:mod:`~rrs.study.decisive` (tables, figures, docs/results.md), :mod:`~rrs.study.plan` (cost and
predicted time), :mod:`~rrs.study.bench` (speed), :mod:`~rrs.study.cli` (command line).
"""
from .config import AttackStrength, EvalConfig, EvaluationError, PRESETS, config_for
from .jobs import build_jobs, derive_seed, estimate_cost, job_key, run_job
from .runner import EvaluationResult, run_evaluation, run_grid
from .store import load_rows, load_summary

__all__ = ["AttackStrength", "EvalConfig", "EvaluationError", "PRESETS", "config_for", "build_jobs",
           "derive_seed", "estimate_cost", "job_key", "run_job", "EvaluationResult", "run_evaluation",
           "run_grid", "load_rows", "load_summary"]
