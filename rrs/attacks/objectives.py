"""The objectives an interpretation attack minimises (method.md §7).

Every objective is a loss on the *normalised* map ``p = m / Σ m`` (flat, sums to 1):

* ``"topk"``: ``Σ_{i∈K} p_i``, the mass left on the clean map's top-``k`` cells ``K``
  (Ghorbani, Abid, Zou 2019);
* ``"mass_center"``: ``−‖c(p) − c(p_clean)‖₂``, moving the map's centre of mass (in cells);
* ``"targeted"`` (Dombrowski et al. 2019): ``n·Σ_i (p_i − t_i)²``, pulling the map toward a
  normalised target map ``t`` (e.g. a region the user draws).

:class:`Objective` is built on the real map's grid and :meth:`Objective.resized` gives the
same objective on a lower working grid (``AttackSettings.work_size``).
"""
from __future__ import annotations

import copy

import torch
import torch.nn.functional as F

from ..metrics import topk_indices

__all__ = ["Objective"]


class Objective:
    """The loss to minimise on a normalised map, for the real grid or a work grid.

    Args:
        name: ``"topk"``, ``"mass_center"`` or ``"targeted"``.
        clean_p: the clean map, normalised (:func:`_normalised`).
        grid: ``(rows, cols)`` of the map.
        k: the top-k size (``"topk"``).
        target_map: ``(rows, cols)`` non-negative target (``"targeted"``), else ``None``.
        device: where the loss is computed.
    """

    def __init__(self, name: str, clean_p: torch.Tensor, grid, k: int, target_map, device):
        self.name = name
        self.grid = grid
        rows, cols = grid
        self.k = k
        self.topk = torch.zeros(rows * cols, device=device)
        self.topk[torch.as_tensor(topk_indices(clean_p, k).copy(), device=device)] = 1.0
        self.target = None
        if target_map is not None:
            t = target_map.to(device).reshape(-1)
            self.target = t / t.sum()
        self.clean_center = _center(clean_p.to(device).reshape(rows, cols))
        self.direction = None

    def resized(self, grid) -> "Objective":
        """The same objective on another grid (a lower working resolution)."""
        if tuple(grid) == tuple(self.grid):
            return self
        other = copy.copy(self)
        other.grid = tuple(grid)
        rows, cols = self.grid
        mask = self.topk.reshape(1, 1, rows, cols)
        other.topk = F.interpolate(mask, size=grid, mode="area").reshape(-1)
        if self.target is not None:
            t = F.interpolate(self.target.reshape(1, 1, rows, cols), size=grid, mode="area").reshape(-1)
            other.target = t / t.sum()
        return other

    def __call__(self, p: torch.Tensor) -> torch.Tensor:
        """Loss of ``p`` (flat, sums to 1) on this objective's grid."""
        if self.name == "topk":
            return (p * self.topk).sum()
        if self.name == "targeted":
            return ((p - self.target) ** 2).sum() * p.numel()
        rows, cols = self.grid
        scale = torch.tensor([rows, cols], device=p.device, dtype=p.dtype)
        shift = (_center(p.reshape(rows, cols)) - self.clean_center) * scale   # in cells
        if self.direction is None or shift.detach().norm() > 1e-3:
            d = shift.detach()
            if d.norm() <= 1e-3:
                # no displacement yet (raw maps start at the clean map): push away from
                # the image centre, a fixed and reproducible direction
                d = (self.clean_center - 0.5) * scale
                if d.norm() <= 1e-6:
                    d = torch.tensor([0.0, 1.0], device=p.device, dtype=p.dtype)
            self.direction = d / d.norm()
        # −⟨shift, u⟩ with u = shift/‖shift‖ held fixed: the gradient of −‖shift‖ where the
        # shift is non-zero, and a defined one where it is zero
        return -(shift * self.direction.to(p.dtype)).sum()

    def value(self, p: torch.Tensor) -> float:
        """The reported objective: top-k mass, −displacement in cells, or target distance."""
        with torch.no_grad():
            if self.name == "mass_center":
                rows, cols = self.grid
                scale = torch.tensor([rows, cols], device=p.device, dtype=p.dtype)
                return -float(((_center(p.reshape(rows, cols)) - self.clean_center) * scale).norm()) + 0.0
            return float(self(p))


def _center(p2d: torch.Tensor) -> torch.Tensor:
    """Centre of mass of a ``(rows, cols)`` map in unit coordinates (cell centres)."""
    rows, cols = p2d.shape
    r = (torch.arange(rows, device=p2d.device, dtype=p2d.dtype) + 0.5) / rows
    c = (torch.arange(cols, device=p2d.device, dtype=p2d.dtype) + 0.5) / cols
    total = p2d.sum().clamp_min(1e-30)
    return torch.stack([(p2d.sum(1) * r).sum() / total, (p2d.sum(0) * c).sum() / total])


def _normalised(m: torch.Tensor) -> torch.Tensor:
    """``m`` flattened, negative values clipped, divided by its sum (a probability vector)."""
    m = m.reshape(-1).clamp_min(0)
    return m / m.sum().clamp_min(1e-30)

