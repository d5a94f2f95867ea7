"""A robustness profile's predicted cost in plain gradient samples (the CLI announces it, the
bench compares it with the count the profile reports)."""
from __future__ import annotations

from .settings import RobustnessSettings

__all__ = ["predicted_gradients", "ATTACK_STEP_GRADIENTS"]

#: One attack step's surrogate double backward, in plain gradients (bench/attack.py).
ATTACK_STEP_GRADIENTS = 4.4


def predicted_gradients(methods, settings: RobustnessSettings) -> float:
    """The profile's cost in plain gradient samples, an upper estimate (raw attacks usually
    stop early): per budget and bisection step ``steps × (eot × 4.4 + 1)`` and two measured
    maps of ``sweep_samples``; smoothed maps also their certificate (``T``), the floor and
    about two confirmations of ``confirm_samples`` plus its clean map."""
    n = len(settings.grid) + settings.bisection
    total = 0.0
    for s in methods:
        if not s.smoothed:
            total += n * settings.steps * (ATTACK_STEP_GRADIENTS + 1) + 1
            continue
        t = min(settings.sweep_samples, s.samples)
        total += s.samples + t + n * (settings.steps * (settings.eot * ATTACK_STEP_GRADIENTS + 1) + 2 * t)
        total += 3 * settings.confirm_samples
    return total
