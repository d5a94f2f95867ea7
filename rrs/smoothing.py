"""Smoothed interpretation maps: SmoothGrad, Sparsified SmoothGrad and Rényi-Robust-Smooth.

All three average a per-sample transform of the noisy cell map ``a(x + δ_t)`` over ``T``
noise draws (method.md §2):

* ``smoothgrad`` (Smilkov et al. 2017): the map itself (optionally divided by its max, so
  values lie in ``[0, 1]`` and the Gaussian-CDF certificate applies).
* ``sparsified`` (Levine, Singla, Feizi 2019): clip at the top-``φ`` value, divide by it,
  keep only the top-``τ`` fraction.
* ``rrs`` (Liu, Chen, Liu, Xia, Gan 2022): replace each value by ``v_{rank}`` of a scoring
  vector; the expectation is a probability vector over cells, certified in ``rrs.certify``.

Accumulation is streaming (running sums of values and squares), so memory does not grow with
``T``; noise for sample ``t`` is drawn by its own call on the generator, so the result does not
depend on ``batch_size``.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass

import numpy as np
import torch

from .attributions import cell_grid, get_attribution, to_cells
from .certify import CellStats
from .noise import Gaussian, Noise
from .scoring import topk_uniform, validate_scoring

__all__ = ["smooth", "raw_map", "SmoothResult", "METHODS", "rank_transform", "sparsify",
           "default_scoring", "predict_target", "model_device"]

METHODS = ("smoothgrad", "sparsified", "rrs")


@dataclass(frozen=True)
class SmoothResult:
    """A smoothed map and what its certificates need.

    ``map``: ``(B, rows, cols)`` Monte Carlo mean of the per-sample values (for RRS a
    probability vector per image); ``sq_mean``: mean of squared per-sample values;
    ``value_bound``: upper bound of per-sample values (``v_1`` for RRS, 1 for Sparsified or
    normalised SmoothGrad, ``None`` for plain SmoothGrad); ``binary``: per-sample values are
    0 or ``value_bound`` (top-k' uniform RRS).
    """

    method: str
    base: str
    map: torch.Tensor
    sq_mean: torch.Tensor
    samples: int
    value_bound: float | None
    binary: bool
    noise: Noise
    cell: int
    input_shape: tuple
    target: torch.Tensor
    elapsed: float
    scoring: np.ndarray | None = None

    @property
    def grid(self) -> tuple[int, int]:
        return tuple(self.map.shape[-2:])

    @property
    def dim(self) -> int:
        """Input dimensions ``N = C·H·W`` (for ℓ_d threat models with d > 2)."""
        return int(np.prod(self.input_shape))

    def flat(self, index: int = 0) -> np.ndarray:
        """The map of image ``index`` as a flat float64 vector (cells in row-major order)."""
        return self.map[index].detach().double().cpu().reshape(-1).numpy()

    def stats(self, index: int = 0) -> CellStats:
        """Per-cell sample statistics of image ``index`` for :func:`rrs.certify.certify`."""
        mean = self.flat(index)
        if self.method == "rrs":
            mean = mean / mean.sum()  # float32 accumulation drift; the exact map sums to 1
        sq = self.sq_mean[index].detach().double().cpu().reshape(-1).numpy()
        return CellStats(mean, sq, self.samples, self.value_bound, self.binary)


def model_device(model) -> torch.device:
    try:
        return next(model.parameters()).device
    except StopIteration:
        return torch.device("cpu")


def predict_target(model, x: torch.Tensor) -> torch.Tensor:
    """The predicted class of each input (the default target)."""
    with torch.no_grad():
        return model(x).argmax(1)


def default_scoring(n: int) -> np.ndarray:
    """Top-k' uniform scoring with ``k' = ⌈n/10⌉`` (binary per-sample values)."""
    return topk_uniform(n, max(1, math.ceil(n / 10)))


def rank_transform(a: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """``ρ(a)_i = v_{rank(a)_i}`` row-wise for ``a`` of shape ``(B, n)``; ties by index.

    A top-k' uniform ``v`` (``v_r = c`` for ``r ≤ k'``, else 0) only needs the top-k' set, found
    with ``torch.topk`` and an index tie-break at the k'-th value; any other ``v`` needs the
    full stable sort. Both give exactly the same result (tested on maps full of ties).
    """
    v = v.to(a.dtype)
    kp = int(torch.count_nonzero(v))
    if 0 < kp < a.shape[1] and bool(torch.all(v[:kp] == v[0])):
        return _topk_indicator(a, kp) * v[0]
    order = torch.argsort(a, dim=1, descending=True, stable=True)
    out = torch.empty_like(a)
    out.scatter_(1, order, v.expand_as(a))
    return out


def _topk_indicator(a: torch.Tensor, k: int) -> torch.Tensor:
    """1 on the ``k`` largest entries of each row of ``a`` (ties: lower index first), else 0."""
    kth = torch.topk(a, k, dim=1, sorted=False).values.amin(1, keepdim=True)
    above = a > kth
    tied = a == kth
    missing = k - above.sum(1, keepdim=True)
    chosen = above | (tied & (torch.cumsum(tied, dim=1) <= missing))
    return chosen.to(a.dtype)


def sparsify(a: torch.Tensor, tau: float = 0.1, phi: float = 0.01) -> torch.Tensor:
    """Levine et al.'s per-sample transform of ``(B, n)`` maps: values in ``[0, 1]``."""
    n = a.shape[1]
    keep = max(1, math.ceil(tau * n))
    clip_rank = max(1, math.ceil(phi * n))
    top = torch.topk(a, max(keep, clip_rank), dim=1)
    clip = top.values[:, clip_rank - 1:clip_rank]
    scaled = torch.where(clip > 0, torch.minimum(a, clip) / clip.clamp_min(1e-30), torch.zeros_like(a))
    mask = torch.zeros_like(a, dtype=torch.bool)
    mask.scatter_(1, top.indices[:, :keep], True)
    return scaled * mask


def _check_input(x):
    if not isinstance(x, torch.Tensor):
        raise ValueError(f"x must be a torch tensor, got {type(x).__name__}")
    if x.dim() == 3:
        x = x[None]
    if x.dim() != 4:
        raise ValueError(f"x must be (C, H, W) or (B, C, H, W), got shape {tuple(x.shape)}")
    if not torch.isfinite(x).all():
        raise ValueError("x has non-finite values")
    return x


def _check_target(model, x, target):
    if target is None:
        return predict_target(model, x)
    t = torch.as_tensor(target, device=x.device).long().reshape(-1)
    if t.numel() == 1:
        t = t.expand(x.shape[0])
    if t.numel() != x.shape[0]:
        raise ValueError(f"target must be one class or one per image ({x.shape[0]}), got {t.numel()}")
    return t


def raw_map(model, x, target=None, base: str = "vanilla", cell: int = 1, reduction: str = "sum",
            base_kwargs: dict | None = None) -> torch.Tensor:
    """The un-smoothed cell map ``a(x)``: shape ``(B, rows, cols)``."""
    x = _check_input(x).to(model_device(model))
    target = _check_target(model, x, target)
    attr = get_attribution(base)(model, x, target, **(base_kwargs or {}))
    return to_cells(attr, cell, reduction).detach()


def smooth(model, x, target=None, method: str = "rrs", base: str = "vanilla",
           noise: Noise | None = None, samples: int = 16, batch_size: int = 16, cell: int = 1,
           reduction: str = "sum", scoring=None, tau: float = 0.1, phi: float = 0.01,
           normalize: bool = False, generator: torch.Generator | None = None,
           progress=None, base_kwargs: dict | None = None) -> SmoothResult:
    """Smooth any base attribution by averaging over ``samples`` noise draws.

    Args:
        model: classifier taking pixel-space inputs in ``[0, 1]`` (normalisation inside).
        x: ``(C, H, W)`` or ``(B, C, H, W)`` image(s) in ``[0, 1]``.
        target: class index or ``(B,)`` indices; default the predicted class.
        method: ``"smoothgrad"``, ``"sparsified"`` or ``"rrs"``.
        base: a name in ``rrs.attributions.ATTRIBUTIONS``.
        noise: ``Gaussian``/``Laplace`` (default ``Gaussian(0.15)``).
        samples: ``T ≥ 1``; batch_size: noisy inputs per forward pass (result-neutral).
        cell, reduction: cell size in pixels (or feature cells for Grad-CAM) and reduction.
        scoring: RRS scoring vector of length ``n`` or a callable ``n -> vector``
            (default top-k' uniform with ``k' = ⌈n/10⌉``).
        tau, phi: Sparsified SmoothGrad's keep and clip fractions.
        normalize: SmoothGrad only: divide each sample by its max (values in ``[0, 1]``).
        generator: ``torch.Generator`` for reproducible noise.
        progress: optional callable ``progress(done, total)``.
    """
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    if isinstance(samples, bool) or int(samples) != samples or samples < 1:
        raise ValueError(f"samples (T) must be an integer ≥ 1, got {samples!r}")
    if isinstance(batch_size, bool) or int(batch_size) != batch_size or batch_size < 1:
        raise ValueError(f"batch_size must be an integer ≥ 1, got {batch_size!r}")
    if not (0 < tau <= 1) or not (0 < phi <= 1):
        raise ValueError(f"tau and phi must be in (0, 1], got tau={tau!r}, phi={phi!r}")
    noise = Gaussian(0.15) if noise is None else noise
    if not isinstance(noise, Noise):
        raise ValueError(f"noise must be rrs.Gaussian or rrs.Laplace, got {type(noise).__name__}")
    samples, batch_size = int(samples), int(batch_size)
    attribution = get_attribution(base)
    device = model_device(model)
    x = _check_input(x).to(device)
    target = _check_target(model, x, target)
    b = x.shape[0]
    start = time.perf_counter()

    total = sq_total = None
    v = None
    per_pass = max(1, batch_size // b)
    done = 0
    while done < samples:
        m = min(per_pass, samples - done)
        deltas = [noise.sample(x.shape, generator=generator, device=device, dtype=x.dtype) for _ in range(m)]
        noisy = (x[None] + torch.stack(deltas)).reshape(m * b, *x.shape[1:])
        attr = attribution(model, noisy, target.repeat(m), **(base_kwargs or {}))
        a = to_cells(attr.detach(), cell, reduction).reshape(m * b, -1)
        if v is None and method == "rrs":
            vec = scoring(a.shape[1]) if callable(scoring) else (
                default_scoring(a.shape[1]) if scoring is None else scoring)
            vec = validate_scoring(vec, n=a.shape[1])
            v = torch.as_tensor(vec, device=device, dtype=a.dtype)
        if method == "rrs":
            vals = rank_transform(a, v)
        elif method == "sparsified":
            vals = sparsify(a, tau, phi)
        else:
            vals = a / a.amax(1, keepdim=True).clamp_min(1e-30) if normalize else a
        vals = vals.reshape(m, b, -1).double()
        s, s2 = vals.sum(0), (vals * vals).sum(0)
        total = s if total is None else total + s
        sq_total = s2 if sq_total is None else sq_total + s2
        done += m
        if progress is not None:
            progress(done, samples)

    rows, cols = _grid_of(attr, cell)
    mean = (total / samples).float().reshape(b, rows, cols)
    sq_mean = (sq_total / samples).float().reshape(b, rows, cols)
    if method == "rrs":
        bound, binary, vec = float(v[0]), bool(torch.all((v == v[0]) | (v == 0))), v.cpu().double().numpy()
    elif method == "sparsified":
        bound, binary, vec = 1.0, False, None
    else:
        bound, binary, vec = (1.0 if normalize else None), False, None
    return SmoothResult(method, base, mean, sq_mean, samples, bound, binary, noise, int(cell),
                        tuple(x.shape[1:]), target.detach().cpu(), time.perf_counter() - start, vec)


def _grid_of(attr: torch.Tensor, cell: int) -> tuple[int, int]:
    return cell_grid(attr.shape[-2], attr.shape[-1], int(cell))
