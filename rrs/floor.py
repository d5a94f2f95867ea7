"""The no-attack floor: how much a map agrees with itself under fresh noise (method.md §7).

A smoothed map computed from finite ``T`` differs from run to run without any attack, so an
attacked agreement must be read next to this floor. One definition for the app, the command
line and the study: the tie-aware top-k intersection (:func:`rrs.metrics.tie_aware_intersection`)
between the clean map with noise seed ``s`` and the clean map with seed ``s + 1``, where
``s = settings.seed``. An attack measures its attacked map with seed ``s + 1`` too (common
random numbers), so ``attacked − floor`` measures the attack, not Monte Carlo noise.
Raw (deterministic) methods have floor 1.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from .metrics import kendall, spearman, tie_aware_intersection
from .settings import MapSettings
from .smoothing import interpretation_map

__all__ = ["NoAttackFloor", "no_attack_floor", "floor_seeds"]


def floor_seeds(settings: MapSettings) -> tuple[int, int]:
    """The two noise seeds compared by the floor: the map's own and the next one."""
    return settings.seed, settings.seed + 1


@dataclass(frozen=True)
class NoAttackFloor:
    """Agreement between two clean runs of one method with seeds ``seeds``."""

    settings: MapSettings
    k: int
    topk_intersection: float
    spearman: float
    kendall: float
    seeds: tuple
    map_a: torch.Tensor
    map_b: torch.Tensor

    @property
    def method(self) -> str:
        return self.settings.method


def no_attack_floor(model, x, settings: MapSettings, *, target=None, batch_size: int = 16,
                    map_a: torch.Tensor | None = None) -> NoAttackFloor:
    """The floor of ``settings`` on image ``x`` (``map_a``: the seed-``s`` map if already computed)."""
    seed_a, seed_b = floor_seeds(settings)
    if map_a is None:
        map_a = interpretation_map(model, x, settings, target=target, batch_size=batch_size)
    map_b = map_a if not settings.smoothed else interpretation_map(
        model, x, settings, target=target, batch_size=batch_size, seed=seed_b)
    k = settings.k_for(map_a.numel())
    return NoAttackFloor(settings, k, tie_aware_intersection(map_a, map_b, k), spearman(map_a, map_b),
                         kendall(map_a, map_b), (seed_a, seed_b), map_a.cpu(), map_b.cpu())
