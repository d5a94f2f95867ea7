"""The method registry and the per-sample transforms of the smoothing methods (method.md §2).

One place holds each interpretation method's name, label and properties
(:data:`METHODS`); the command line, the app and the study read their names and texts from
here. A smoothing method is a small object with its *hard* per-sample transform (what
:func:`rrs.smoothing.smooth` averages) and its *soft*, differentiable counterpart (what
:mod:`rrs.attacks` differentiates through), so maps and attacks share one definition:

* :class:`Identity` — SmoothGrad (Smilkov et al. 2017), optionally divided by the sample's max.
* :class:`Sparsify` — Sparsified SmoothGrad (Levine, Singla, Feizi 2019).
* :class:`RankScore` — Rényi-Robust-Smooth's rank re-scaling ``ρ(a)_i = v_{rank(a)_i}``
  (Liu et al. 2022); its soft version is a sum of sigmoids around the rank thresholds.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

__all__ = ["MethodInfo", "METHODS", "RAW_METHODS", "SMOOTH_METHODS", "method_info", "label",
           "Transform", "Identity", "Sparsify", "RankScore", "rank_transform", "sparsify"]


@dataclass(frozen=True)
class MethodInfo:
    """What a front end needs to know about a method.

    ``kind``: ``"raw"`` (a base attribution) or ``"smoothed"`` (averages noisy maps of a base).
    ``certificate``: which certificates apply to its map (``"rdp"`` — the top-k certificate of
    method.md §4 — and/or ``"cdf"`` — the Gaussian-CDF ones of §6), empty when none.
    """

    name: str
    label: str
    short: str
    kind: str
    summary: str
    certificate: tuple = ()

    @property
    def smoothed(self) -> bool:
        return self.kind == "smoothed"


METHODS: dict[str, MethodInfo] = {m.name: m for m in (
    MethodInfo("vanilla", "Vanilla gradient", "Gradient", "raw",
               "the gradient of the class score with respect to each pixel"),
    MethodInfo("input_x_gradient", "Input × gradient", "Input×grad", "raw",
               "the gradient times the pixel value"),
    MethodInfo("integrated_gradients", "Integrated gradients", "Int. gradients", "raw",
               "gradients averaged along a path from a black image to the input"),
    MethodInfo("gradcam", "Grad-CAM", "Grad-CAM", "raw",
               "feature maps of the last convolution weighted by their gradients (a coarse map)"),
    MethodInfo("smoothgrad", "SmoothGrad", "SmoothGrad", "smoothed",
               "the average of the base map over noisy copies of the image", ("cdf",)),
    MethodInfo("sparsified", "Sparsified SmoothGrad", "Sparsified", "smoothed",
               "the average of clipped, sparsified noisy maps (Levine et al. 2019)", ("cdf",)),
    MethodInfo("rrs", "RRS (Rényi-Robust-Smooth)", "RRS", "smoothed",
               "the average of rank scores of noisy maps: a probability over cells (Liu et al. 2022)",
               ("rdp", "cdf")),
)}
RAW_METHODS = tuple(n for n, m in METHODS.items() if not m.smoothed)
SMOOTH_METHODS = tuple(n for n, m in METHODS.items() if m.smoothed)


def method_info(name: str) -> MethodInfo:
    """The registry entry of ``name`` (a clear ValueError for an unknown name)."""
    try:
        return METHODS[name]
    except (KeyError, TypeError):
        raise ValueError(f"unknown method {name!r}; choose one of {', '.join(METHODS)}") from None


def label(name: str) -> str:
    """The display label of a method."""
    return method_info(name).label


# ---------------------------------------------------------------------------- transforms

def _log_threshold(sorted_desc: torch.Tensor, rank: int) -> torch.Tensor:
    """Log of the geometric midpoint between the ``rank``-th and the next value, per row."""
    n = sorted_desc.shape[1]
    hi = sorted_desc[:, rank - 1]
    lo = sorted_desc[:, min(rank, n - 1)]
    tiny = torch.finfo(sorted_desc.dtype).tiny
    return 0.5 * (hi.clamp_min(tiny).log() + lo.clamp_min(tiny).log())


def _soft_above(a: torch.Tensor, top: torch.Tensor, rank: int, temperature: float) -> torch.Tensor:
    """A sigmoid in log value: ≈ 1 for cells above the ``rank``-th value, ≈ 0 below."""
    log_a = a.clamp_min(torch.finfo(a.dtype).tiny).log()
    thr = _log_threshold(top, rank)[:, None]
    return torch.sigmoid((log_a - thr) / temperature)


class Transform:
    """A per-sample map transform: ``hard`` for smoothing, ``soft`` for attacks.

    Both take ``(B, n)`` non-negative cell maps. ``value_bound`` bounds every per-sample value
    (``None`` when unbounded); ``binary``: every value is 0 or ``value_bound``.
    """

    value_bound: float | None = None
    binary: bool = False

    def hard(self, a: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def soft(self, a: torch.Tensor, temperature: float = 0.5) -> torch.Tensor:
        raise NotImplementedError


class Identity(Transform):
    """SmoothGrad's (and a raw method's) transform: the map, or the map over its max."""

    def __init__(self, normalize: bool = False):
        self.normalize = bool(normalize)
        self.value_bound = 1.0 if self.normalize else None

    def hard(self, a):
        return a / a.amax(1, keepdim=True).clamp_min(1e-30) if self.normalize else a

    def soft(self, a, temperature=0.5):
        return self.hard(a)


def sparsify(a: torch.Tensor, tau: float = 0.1, phi: float = 0.01) -> torch.Tensor:
    """Levine et al.'s per-sample transform of ``(B, n)`` maps: values in ``[0, 1]``."""
    return Sparsify(a.shape[1], tau, phi).hard(a)


class Sparsify(Transform):
    """Clip at the top-``φ`` value, divide by it, keep the top-``τ`` fraction (Levine et al.)."""

    value_bound = 1.0

    def __init__(self, n: int, tau: float = 0.1, phi: float = 0.01):
        if not (0 < tau <= 1) or not (0 < phi <= 1):
            raise ValueError(f"tau and phi must be in (0, 1], got tau={tau!r}, phi={phi!r}")
        self.keep = max(1, math.ceil(tau * n))
        self.clip_rank = max(1, math.ceil(phi * n))

    def hard(self, a):
        top = torch.topk(a, max(self.keep, self.clip_rank), dim=1)
        clip = top.values[:, self.clip_rank - 1:self.clip_rank]
        scaled = torch.where(clip > 0, torch.minimum(a, clip) / clip.clamp_min(1e-30), torch.zeros_like(a))
        mask = torch.zeros_like(a, dtype=torch.bool)
        mask.scatter_(1, top.indices[:, :self.keep], True)
        return scaled * mask

    def soft(self, a, temperature=0.5):
        clip = torch.topk(a, self.clip_rank, dim=1).values[:, -1:].clamp_min(1e-30)
        scaled = torch.minimum(a, clip) / clip
        if self.keep >= a.shape[1]:
            return scaled
        top = torch.topk(a.detach(), min(a.shape[1], self.keep + 1), dim=1).values
        return scaled * _soft_above(a, top, self.keep, temperature)


def _topk_indicator(a: torch.Tensor, k: int) -> torch.Tensor:
    """1 on the ``k`` largest entries of each row of ``a`` (ties: lower index first), else 0."""
    kth = torch.topk(a, k, dim=1, sorted=False).values.amin(1, keepdim=True)
    above = a > kth
    tied = a == kth
    missing = k - above.sum(1, keepdim=True)
    chosen = above | (tied & (torch.cumsum(tied, dim=1) <= missing))
    return chosen.to(a.dtype)


def rank_transform(a: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """``ρ(a)_i = v_{rank(a)_i}`` row-wise for ``a`` of shape ``(B, n)``; ties by index.

    A top-k' uniform ``v`` only needs the top-k' set, found with ``torch.topk`` and an index
    tie-break at the k'-th value; any other ``v`` needs the full stable sort. Both give
    exactly the same result (tested on maps full of ties).
    """
    v = v.to(a.dtype)
    kp = int(torch.count_nonzero(v))
    if 0 < kp < a.shape[1] and bool(torch.all(v[:kp] == v[0])):
        return _topk_indicator(a, kp) * v[0]
    order = torch.argsort(a, dim=1, descending=True, stable=True)
    out = torch.empty_like(a)
    out.scatter_(1, order, v.expand_as(a))
    return out


def _rank_levels(v: np.ndarray, max_levels: int):
    """Write ``v_rank = Σ_j w_j·1[rank ≤ r_j]`` with at most ``max_levels`` steps.

    Exact when ``v`` has at most ``max_levels`` distinct drops (top-k' uniform: one step);
    otherwise the steps sit at equal quantiles of the total drop.
    """
    drops = v - np.append(v[1:], 0.0)
    nz = np.flatnonzero(drops > 1e-15)
    if nz.size <= max_levels:
        return nz + 1, drops[nz]
    cum = np.cumsum(drops) / drops.sum()
    qs = (np.arange(max_levels) + 0.5) / max_levels
    return np.searchsorted(cum, qs) + 1, np.full(max_levels, drops.sum() / max_levels)


class RankScore(Transform):
    """RRS: each cell gets the score of its rank, ``ρ(a)_i = v_{rank(a)_i}`` (method.md §2).

    ``v`` is a validated scoring vector (non-increasing, non-negative, sums to 1). The soft
    version replaces each step of ``v`` by a sigmoid in log cell value around the step's rank
    threshold (at most ``max_levels`` steps), so it can be differentiated.
    """

    def __init__(self, v, max_levels: int = 16):
        from .scoring import validate_scoring

        self.v = validate_scoring(v)
        self.value_bound = float(self.v[0])
        self.binary = bool(np.all((self.v == self.v[0]) | (self.v == 0)))
        self.ranks, self.weights = _rank_levels(self.v, int(max_levels))
        self._tensors: dict = {}

    def _v(self, a: torch.Tensor) -> torch.Tensor:
        key = (a.device, a.dtype)
        if key not in self._tensors:
            self._tensors[key] = torch.as_tensor(self.v, device=a.device, dtype=a.dtype)
        return self._tensors[key]

    def hard(self, a):
        if a.shape[1] != self.v.size:
            raise ValueError(f"the scoring vector has {self.v.size} entries but the map has {a.shape[1]} cells")
        return rank_transform(a, self._v(a))

    def soft(self, a, temperature=0.5):
        n = a.shape[1]
        need = int(min(n, self.ranks.max() + 1))
        top = torch.topk(a.detach(), need, dim=1).values
        out = torch.zeros_like(a)
        for r, w in zip(self.ranks.tolist(), self.weights.tolist()):
            if r >= n:
                out = out + w  # every cell has rank ≤ n
            else:
                out = out + w * _soft_above(a, top, r, temperature)
        return out
