"""What a guarantee is worth: break radii of attacked maps next to certified radii (issue 15).

One module per concern; every public name is re-exported here, so
``from rrs.workflows.robustness import X`` works for all of them:

* :mod:`~rrs.workflows.robustness.settings` — :class:`RobustnessSettings` (the budget sweep,
  the attack at each budget, the checks), :func:`method_settings`, the default ranges.
* :mod:`~rrs.workflows.robustness.results` — :class:`MethodProfile`,
  :class:`RobustnessProfile` (JSON round trip) and a smoothed map's :class:`Certified`.
* :mod:`~rrs.workflows.robustness.profile` — :func:`robustness_profile` (the warm-started
  sweep, the bisection, the confirmations; its docstring says how a smoothed map's attack is
  read) and :func:`certify_method`.
* :mod:`~rrs.workflows.robustness.contrast` — :func:`contrast`: every method attacked once at
  one budget, one :class:`Panel` each (the pages' raw-versus-certified contrast).
* :mod:`~rrs.workflows.robustness.sentence` — :func:`sentence`, the one-line story.
* :mod:`~rrs.workflows.robustness.cost` — :func:`predicted_gradients`, the profile's cost.
"""
from __future__ import annotations

from .contrast import Panel, contrast
from .cost import ATTACK_STEP_GRADIENTS, predicted_gradients
from .profile import certify_method, robustness_profile
from .results import Certified, MethodProfile, RobustnessProfile
from .sentence import sentence
from .settings import CONFIRM_SEED_OFFSET, DEFAULT_RANGES, RobustnessSettings, method_settings

__all__ = ["RobustnessSettings", "MethodProfile", "RobustnessProfile", "Certified", "Panel",
           "robustness_profile", "certify_method", "contrast", "sentence", "method_settings",
           "CONFIRM_SEED_OFFSET", "DEFAULT_RANGES", "predicted_gradients", "ATTACK_STEP_GRADIENTS"]
