"""The outcome of one interpretation attack (method.md §7)."""
from __future__ import annotations

from dataclasses import dataclass

import torch

from ..floor import NoAttackFloor
from ..settings import AttackSettings, MapSettings, Norm

__all__ = ["AttackResult"]


@dataclass(frozen=True)
class AttackResult:
    """Outcome of one interpretation attack (method.md §7).

    Maps are ``(rows, cols)`` CPU tensors measured on the *real* model with
    :func:`rrs.smoothing.interpretation_map`. With ``s = map_settings.seed``: ``clean_map`` is
    the map of ``x`` at noise seed ``s`` (what the attacker sees), ``attacked_map`` the map of
    ``x_adv`` at seed ``s + 1`` and ``attacked_map_same_noise`` at seed ``s`` (the seed the
    attack chose its best iterate with). ``topk_intersection`` (tie-aware), ``spearman`` and
    ``kendall`` compare ``clean_map`` with ``attacked_map``, exactly as ``floor`` (the
    no-attack floor, :func:`rrs.floor.no_attack_floor`) compares the clean maps at seeds ``s``
    and ``s + 1``: common random numbers, so ``attacked − floor`` measures the attack and not
    Monte Carlo noise. Raw methods are deterministic (both seeds give the same map).

    ``l2``/``linf`` are perturbation norms in pixel units. ``history`` holds the surrogate
    objective at every step (the quantity minimised; for ``mass_center`` the negated
    displacement in cells); ``clean_objective`` / ``adv_objective`` are the same objective on
    ``clean_map`` / ``attacked_map``. ``label_preserved`` is False only when no step kept the
    label (then ``x_adv`` is the first candidate step, which changes the label, and
    ``message`` says so) or when ``keep_label=False`` was asked. ``accepted_steps`` /
    ``rejected_steps`` count PGD steps (a step is rejected when even ``max_backtracks``
    halvings change the label), ``shortened_steps`` the accepted ones that needed halving.
    """

    x_adv: torch.Tensor
    clean_map: torch.Tensor
    attacked_map: torch.Tensor
    k: int
    topk_intersection: float
    spearman: float
    kendall: float
    l2: float
    linf: float
    clean_label: int
    adv_label: int
    clean_confidence: float
    adv_confidence: float
    label_preserved: bool
    message: str
    history: tuple
    accepted_steps: int
    rejected_steps: int
    shortened_steps: int
    clean_objective: float
    adv_objective: float
    clean_class_name: str
    adv_class_name: str
    elapsed: float
    map_settings: MapSettings
    attack_settings: AttackSettings
    floor: NoAttackFloor
    attacked_map_same_noise: torch.Tensor

    # what the settings say, for tables
    @property
    def method(self) -> str:
        return self.map_settings.method

    @property
    def base(self) -> str:
        return self.map_settings.attribution

    @property
    def objective(self) -> str:
        return self.attack_settings.objective

    @property
    def norm(self) -> Norm:
        return self.attack_settings.norm

    @property
    def epsilon(self) -> float:
        return self.attack_settings.epsilon

    @property
    def steps(self) -> int:
        return self.attack_settings.steps

    @property
    def step_size(self) -> float:
        return self.attack_settings.step

    @property
    def eot_samples(self) -> int:
        """Noise draws per step (1 for a raw, deterministic map)."""
        return self.attack_settings.eot if self.map_settings.smoothed else 1

    @property
    def samples(self) -> int:
        """``T`` of the measured maps (0 for a raw map)."""
        return self.map_settings.samples if self.map_settings.smoothed else 0

    def rows(self) -> list[tuple[str, object]]:
        """(name, value) pairs for a results table or CSV."""
        keys = ("method", "base", "objective", "norm", "epsilon", "steps", "step_size",
                "eot_samples", "samples", "k", "topk_intersection", "spearman", "kendall",
                "l2", "linf", "clean_label", "adv_label", "clean_confidence", "adv_confidence",
                "label_preserved", "accepted_steps", "rejected_steps", "shortened_steps", "clean_objective",
                "adv_objective", "elapsed", "message")
        rows = [(k, getattr(self, k)) for k in keys]
        rows.insert(keys.index("topk_intersection") + 1, ("no_attack_floor", self.floor.topk_intersection))
        return [(k, v.key if isinstance(v, Norm) else v) for k, v in rows]
