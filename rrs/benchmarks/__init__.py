"""Speed measurements as functions returning numbers: the ``bench/`` scripts print them and the
evaluation study's speed experiment (:mod:`rrs.study.bench`) stores them as rows.

:mod:`rrs.benchmarks.smoothing` (maps against a bare loop and Captum, certificates) and
:mod:`rrs.benchmarks.attack` (attack steps in plain gradients). Each has ``measure(quick=False,
…) -> {…, "rows": [{"name": str, <number>: float, …}]}`` and ``print_table(result)``.
"""
