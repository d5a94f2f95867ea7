"""Workflows: settings objects in, frozen results out — one per concept, used alike by the
app (``ui/``), the command line (:mod:`rrs.cli`), the benches (``bench/``) and the study.

* :mod:`rrs.workflows.certify` — certify an RRS map: select (the run plan and its selection
  batch), sample (checkpoints), bound (every certificate at every checkpoint, anytime-valid),
  report (:class:`~rrs.workflows.certify.AnytimeView`).
* :mod:`rrs.workflows.advice` — what a certify run means and what to try next: the verdict,
  suggestions with pilot maps, and "try to break it".
* :mod:`rrs.workflows.robustness` — what a certificate is worth: the attacked top-k overlap
  along a warm-started budget sweep, each method's empirical break radius (bisection,
  confirmed with fresh samples for smoothed maps), the certified radius on the same axis,
  and the raw-vs-certified contrast at one budget (a package: settings, results, profile,
  contrast, sentence, cost).

Submodules are imported on use (``from rrs.workflows import certify``); nothing heavy here.
"""
