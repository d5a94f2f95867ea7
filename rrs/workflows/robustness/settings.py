"""The robustness profile's settings (:class:`RobustnessSettings`: the budget sweep, the attack
at each budget, the checks), its default ranges and the confirmation's seed offset."""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ... import checks
from ...settings import L2, AttackSettings, MapSettings, Norm, _Settings

__all__ = ["RobustnessSettings", "method_settings", "CONFIRM_SEED_OFFSET", "DEFAULT_RANGES"]

#: The confirmation's noise seed is the map's seed plus this (fresh: the floors use s, s + 1).
CONFIRM_SEED_OFFSET = 101
#: Default sweep ranges per norm (pixel units): ℓ2 0.01 … 2, ℓ∞ 0.1/255 … 8/255.
DEFAULT_RANGES = {"l2": (0.01, 2.0), "linf": (0.1 / 255, 8 / 255)}
#: Overlaps closer than this are equal (top-k overlaps are multiples of 1/k).
_TOL = 1e-9

# =========================================================================== settings

@dataclass(frozen=True)
class RobustnessSettings(_Settings):
    """A robustness profile: the budget sweep, the attack at each budget and the checks.

    Args:
        norm: ``l2`` or ``linf`` (the attack's threat ball and the certificates' norm).
        low, high: the smallest and largest budget of the geometric sweep (pixel units;
            default :data:`DEFAULT_RANGES` for the norm).
        budgets: number of budgets in the sweep (≥ 2).
        steps: PGD steps per budget (warm starts carry the progress along the sweep).
        eot: noise draws per attack step on smoothed maps.
        bisection: bisection steps between the last held and the first broken budget.
        sweep_samples: ``T`` of a smoothed map measured along the sweep (at most the map's T).
        confirm_samples: ``T`` of the confirmation of a smoothed map's break (fresh seed).
        seed: the attack's seed (EOT noise).
        warm_start: start each budget's attack from the previous budget's adversarial point
            (``False``: from the image, the baseline that ``bench/robustness.py`` times).
    """

    norm: Norm = L2
    low: float | None = None
    high: float | None = None
    budgets: int = 8
    steps: int = 10
    eot: int = 2
    bisection: int = 3
    sweep_samples: int = 64
    confirm_samples: int = 256
    seed: int = 0
    warm_start: bool = True

    def __post_init__(self):
        norm = Norm.parse(self.norm)
        if norm.p not in (2.0, math.inf):
            raise ValueError(f"the robustness profile supports ℓ2 and ℓ∞ budgets, got {norm.label}")
        object.__setattr__(self, "norm", norm)
        lo, hi = DEFAULT_RANGES[norm.key]
        low = lo if self.low is None else checks.positive("low (smallest budget)", self.low)
        high = hi if self.high is None else checks.positive("high (largest budget)", self.high)
        if self.low is not None:
            object.__setattr__(self, "low", low)
        if self.high is not None:
            object.__setattr__(self, "high", high)
        if not low < high:
            raise ValueError(f"the smallest budget must be below the largest, got {low:g} and {high:g}")
        if norm.is_inf and high > 1:
            raise ValueError(f"an ℓ∞ budget above 1 covers all of [0, 1]; got high={high:g}")
        object.__setattr__(self, "budgets", checks.integer("budgets", self.budgets, low=2))
        object.__setattr__(self, "steps", checks.integer("steps", self.steps))
        object.__setattr__(self, "eot", checks.integer("eot", self.eot))
        object.__setattr__(self, "bisection", checks.integer("bisection", self.bisection, low=0))
        object.__setattr__(self, "sweep_samples", checks.integer("sweep_samples", self.sweep_samples))
        object.__setattr__(self, "confirm_samples", checks.integer("confirm_samples", self.confirm_samples))
        object.__setattr__(self, "seed", checks.integer("seed", self.seed, low=0))
        object.__setattr__(self, "warm_start", bool(self.warm_start))

    @property
    def grid(self) -> tuple:
        """The sweep's budgets: ``budgets`` geometric steps from ``low`` to ``high``."""
        lo, hi = DEFAULT_RANGES[self.norm.key]
        lo = lo if self.low is None else self.low
        hi = hi if self.high is None else self.high
        return tuple(float(v) for v in np.geomspace(lo, hi, self.budgets))

    def attack(self, epsilon: float) -> AttackSettings:
        """The top-k attack at one budget."""
        return AttackSettings(objective="topk", norm=self.norm, epsilon=float(epsilon), steps=self.steps,
                              eot=self.eot, seed=self.seed)


def method_settings(base: MapSettings, methods) -> tuple:
    """One :class:`MapSettings` per method name, everything else from ``base``."""
    return tuple(base.replace(method=m) for m in methods)

