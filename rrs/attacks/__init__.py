"""Attacks on interpretation maps: move the map, keep the label (method.md §7).

Ghorbani, Abid, Zou (2019), *Interpretation of Neural Networks is Fragile*: find ``x'`` in an
ℓ∞ or ℓ2 ball around ``x`` whose predicted class is that of ``x`` but whose interpretation
map differs. The package is laid out as the attack is built:

* :mod:`rrs.attacks.surrogate` — the smooth (softplus) copy of the model whose second
  derivatives the attack follows, with BatchNorm folding and a fast double backward;
* :mod:`rrs.attacks.objectives` — top-k, mass-centre and targeted losses on normalised maps;
* :mod:`rrs.attacks.pgd` — projection, steps, random start and the PGD loop with the label
  rule: :func:`attack`;
* :mod:`rrs.attacks.result` — :class:`AttackResult`;
* :mod:`rrs.attacks.variance` — how noisy the EOT attack gradient is (sizes EOT).

The no-attack floor every attacked number is read against lives in :mod:`rrs.floor`.
"""
from .objectives import Objective
from .pgd import attack, project, random_start, unit_step
from .result import AttackResult
from .surrogate import SmoothClamp, SurrogateModel, smooth_clamp, surrogate_model

__all__ = ["attack", "AttackResult", "surrogate_model", "SurrogateModel", "smooth_clamp", "SmoothClamp",
           "Objective", "project", "random_start", "unit_step"]
