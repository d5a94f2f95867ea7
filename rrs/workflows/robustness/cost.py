"""A robustness profile's predicted work, from its control flow (:mod:`.profile`), in counts
that :func:`predicted_gradients` (the command line, the bench) turns into plain gradient
samples and :func:`ui.predict.predict_robustness` (the app) into seconds.

What a profile does per method (see :func:`rrs.workflows.robustness.robustness_profile`):

* a smoothed map: its reference map at its own ``T`` (with the certificate when the method
  has one), the floor's second map at the sweep's ``t = min(sweep_samples, T)``, then one
  attack per sweep budget (``steps`` steps of ``eot`` surrogate samples and a label check,
  then two measured maps of ``t``: the best iterate at seed ``s``, the reported map at
  ``s + 1``). A smoothed map rarely loses every top-k cell, so every sweep budget is
  attacked. The bisection runs only after a confirmed break, and each candidate break is
  confirmed with a map of ``confirm_samples`` (plus one clean map at that seed).
* a raw map: one gradient per label check and per measured map, and its attacks stop as soon
  as every top-k cell is out (sweep) or one is (bisection); once every top-k cell is out the
  later sweep budgets are not attacked at all. Raw maps break within the sweep.

The outcome decides part of the work: whether and where the map breaks. The sweep ranges are
chosen for the maps to break inside them (that is what the profile measures), so a break is
charged: a smoothed map's sweep and bisection in full, with a confirmation of the sweep's
break and of each bisection midpoint besides the clean map (unconfirmed candidates of the
sweep stand in for midpoints that do not look broken); a raw map's attacks in full up to a
break equally likely at any sweep budget (half the sweep), and one step per bisection attack
(it starts from the broken point and stops at the first cell out). A map that does not break
skips the bisection: it takes less than predicted.
"""
from __future__ import annotations

from dataclasses import dataclass

from ...settings import MapSettings
from .settings import RobustnessSettings

__all__ = ["ProfileWork", "profile_work", "predicted_gradients", "ATTACK_STEP_GRADIENTS"]

#: One attack step's surrogate double backward, in plain gradients (bench/attack.py).
ATTACK_STEP_GRADIENTS = 4.4


@dataclass(frozen=True)
class ProfileWork:
    """The expected work of one method's profile (or of its attack at one budget).

    ``reference``: samples of the reference map (0 when given); ``certified``: a certificate
    is computed on it; ``floor``: samples of the floor's second map; ``attacks``: expected
    attacks, ``steps`` expected steps in all of them, ``eot`` surrogate samples per step,
    ``maps_per_attack`` measured maps of ``measured`` samples after each attack;
    ``confirmations``: expected maps of ``confirm_samples`` (the clean one included)."""

    settings: MapSettings
    reference: int
    certified: bool
    floor: int
    attacks: float
    steps: float
    eot: int
    measured: int
    maps_per_attack: int
    confirmations: float
    confirm_samples: int


def profile_work(settings: MapSettings, rs: RobustnessSettings, profile: bool = True,
                 reference_given: bool = False) -> ProfileWork:
    """The expected work of ``settings``'s robustness profile (module docstring), or with
    ``profile=False`` of its single attack in :func:`rrs.workflows.robustness.contrast`
    (``reference_given``: the reference map is passed in, as the pages pass the certified map)."""
    n, bisection = len(rs.grid), rs.bisection
    if not settings.smoothed:
        sweep, bisection = (n / 2, bisection) if profile else (1.0, 0)
        return ProfileWork(settings, 0 if reference_given else 1, False, 0, sweep + bisection,
                           sweep * rs.steps + bisection, 1, 1, 1, 0.0, 0)
    t = min(rs.sweep_samples, settings.samples)
    attacks = n + bisection if profile else 1.0
    return ProfileWork(settings, 0 if reference_given else settings.samples,
                       profile and bool(settings.info.certificate), t, attacks, attacks * rs.steps, rs.eot, t, 2,
                       2 + bisection if profile else 0.0, rs.confirm_samples)


def predicted_gradients(methods, settings: RobustnessSettings) -> float:
    """The profile's expected cost in plain gradient samples (:func:`profile_work`): a step
    costs ``eot × ATTACK_STEP_GRADIENTS`` (the surrogate double backward) plus one label check."""
    total = 0.0
    for s in methods:
        w = profile_work(s, settings)
        step = w.eot * ATTACK_STEP_GRADIENTS + 1
        total += (w.reference + w.floor + w.steps * step + w.attacks * w.maps_per_attack * w.measured
                  + w.confirmations * w.confirm_samples)
    return total
