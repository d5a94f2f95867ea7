"""Smoothed interpretation maps: SmoothGrad, Sparsified SmoothGrad and Rényi-Robust-Smooth.

All three average a per-sample transform of the noisy cell map ``a(x + δ_t)`` over ``T``
noise draws (method.md §2); the transforms live in :mod:`rrs.methods`, the settings in
:class:`rrs.settings.MapSettings`.

Accumulation is streaming (running sums of values and squares), so memory does not grow with
``T``; noise for sample ``t`` is drawn by its own call on the generator, so the result does not
depend on ``batch_size``. :func:`smooth_stream` yields the map at checkpoints while samples
arrive (anytime certification, method.md §5).
"""
from __future__ import annotations

import time
from contextlib import nullcontext
from dataclasses import dataclass

import numpy as np
import torch

from . import checks
from .attributions import get_attribution, to_cells
from .methods import Transform
from .noise import Noise
from .settings import MapSettings
from .timing import RATES, sample_key

__all__ = ["smooth", "smooth_stream", "raw_map", "interpretation_map", "SmoothResult", "CellStats",
           "predict_target", "model_device", "generator_for"]


@dataclass(frozen=True)
class CellStats:
    """What certificates need from a smoothed map: per-cell sample means and second moments.

    ``mean`` is the Monte Carlo map (for RRS a probability vector), ``sq_mean`` the mean of
    squared per-sample values, ``samples`` the number ``T`` of noise draws, ``value_bound``
    an upper bound on every per-sample cell value (``v_1`` for RRS, 1 for Sparsified
    SmoothGrad) and ``binary`` whether every per-sample value is 0 or ``value_bound``.
    """

    mean: np.ndarray
    sq_mean: np.ndarray
    samples: int
    value_bound: float | None
    binary: bool = False


@dataclass(frozen=True)
class SmoothResult:
    """A smoothed map and what its certificates need.

    ``map``: ``(B, rows, cols)`` Monte Carlo mean of the per-sample values (for RRS a
    probability vector per image); ``sq_mean``: mean of squared per-sample values;
    ``samples``: the T actually drawn (fewer than ``settings.samples`` for a checkpoint of
    :func:`smooth_stream`); ``value_bound``: upper bound of per-sample values (``v_1`` for RRS,
    1 for Sparsified or normalised SmoothGrad, ``None`` for plain SmoothGrad); ``binary``:
    per-sample values are 0 or ``value_bound`` (top-k' uniform RRS).
    """

    settings: MapSettings
    map: torch.Tensor
    sq_mean: torch.Tensor
    samples: int
    value_bound: float | None
    binary: bool
    noise: Noise
    input_shape: tuple
    target: torch.Tensor
    elapsed: float
    scoring: np.ndarray | None = None

    @property
    def method(self) -> str:
        return self.settings.method

    @property
    def base(self) -> str:
        return self.settings.attribution

    @property
    def cell(self) -> int:
        return self.settings.effective_cell

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
            # float32 storage drift: the exact map sums to 1 and no cell exceeds v_1
            mean = np.minimum(mean / mean.sum(), self.value_bound)
        sq = self.sq_mean[index].detach().double().cpu().reshape(-1).numpy()
        return CellStats(mean, sq, self.samples, self.value_bound, self.binary)


def model_device(model) -> torch.device:
    for p in model.parameters():
        return p.device
    return torch.device("cpu")


def generator_for(model, seed: int) -> torch.Generator:
    """The noise generator every front end uses: on the model's device, seeded with ``seed``."""
    return torch.Generator(device=model_device(model)).manual_seed(int(seed))


def predict_target(model, x: torch.Tensor) -> torch.Tensor:
    """The predicted class of each input (the default target)."""
    with torch.no_grad():
        return model(x).argmax(1)


def _target(model, x, target):
    if target is None:
        return predict_target(model, x)
    t = torch.as_tensor(target, device=x.device).long().reshape(-1)
    if t.numel() == 1:
        t = t.expand(x.shape[0])
    if t.numel() != x.shape[0]:
        raise ValueError(f"target must be one class or one per image ({x.shape[0]}), got {t.numel()}")
    return t


def _cells(model, x, target, settings: MapSettings) -> torch.Tensor:
    """``(B, rows, cols)`` cell maps of a batch; a clear error for non-finite attributions."""
    autocast = (torch.autocast(x.device.type, dtype=torch.bfloat16) if settings.precision == "bf16"
                else nullcontext())
    if x.device.type in ("cpu", "cuda") and x.shape[-1] > 1:
        x = x.contiguous(memory_format=torch.channels_last)
    with autocast:
        attr = get_attribution(settings.attribution)(model, x, target, **settings.attribution_kwargs)
    attr = attr.detach()
    if attr.dtype in (torch.bfloat16, torch.float16):
        attr = attr.float()
    a = to_cells(attr, settings.effective_cell, settings.reduction)
    if not torch.isfinite(a).all():
        raise ValueError(f"the {settings.info.label if not settings.smoothed else settings.attribution} "
                         "attribution has non-finite values (NaN or inf) for this input; the model's "
                         "gradient overflowed — try fp32 precision, a smaller σ or another model")
    return a


def raw_map(model, x, settings: MapSettings | None = None, *, target=None) -> torch.Tensor:
    """The un-smoothed cell map ``a(x)`` of ``settings.attribution``: shape ``(B, rows, cols)``."""
    settings = MapSettings(method="vanilla") if settings is None else settings
    x = checks.image_batch(x).to(model_device(model))
    target = _target(model, x, target)
    return _cells(model, x, target, settings)


def smooth_stream(model, x, settings: MapSettings | None = None, *, checkpoints=None, target=None,
                  generator: torch.Generator | None = None, batch_size: int = 16, progress=None):
    """Yield the smoothed map after each checkpoint (sample counts, ascending, last = T).

    The maps at each checkpoint are exactly what :func:`smooth` returns with that many
    samples and the same generator (the noise of sample ``t`` does not depend on the batch).
    ``checkpoints`` defaults to ``[settings.samples]``.
    """
    settings = MapSettings() if settings is None else settings
    if not settings.smoothed:
        raise ValueError(f"{settings.info.label} is not a smoothing method; use raw_map")
    total = settings.samples
    marks = sorted({checks.integer("checkpoint", c) for c in (checkpoints or [total])} | {total})
    if marks[-1] > total:
        raise ValueError(f"checkpoints must be at most T = {total}, got {marks[-1]}")
    batch_size = checks.integer("batch_size", batch_size)
    noise = settings.noise_model()
    device = model_device(model)
    x = checks.image_batch(x).to(device)
    target = _target(model, x, target)
    generator = generator_for(model, settings.seed) if generator is None else generator
    b = x.shape[0]
    rate_key = sample_key(model, x, settings)
    start = last = time.perf_counter()
    transform: Transform | None = None
    total_sum = sq_sum = None
    per_pass = max(1, batch_size // b)
    done = 0
    for mark in marks:
        while done < mark:
            m = min(per_pass, mark - done)
            deltas = [noise.sample(x.shape, generator=generator, device=device, dtype=x.dtype) for _ in range(m)]
            noisy = (x[None] + torch.stack(deltas)).reshape(m * b, *x.shape[1:])
            a = _cells(model, noisy, target.repeat(m), settings)
            rows_cols = tuple(a.shape[-2:])
            a = a.reshape(a.shape[0], -1)
            if transform is None:
                transform = settings.transform(a.shape[1])
            vals = transform.hard(a).reshape(m, b, -1).double()
            s, s2 = vals.sum(0), (vals * vals).sum(0)
            total_sum = s if total_sum is None else total_sum + s
            sq_sum = s2 if sq_sum is None else sq_sum + s2
            done += m
            now = time.perf_counter()
            RATES.record(rate_key, m * b, now - last)
            last = now
            if progress is not None:
                progress(done, total)
        yield SmoothResult(settings, (total_sum / done).float().reshape(b, *rows_cols),
                           (sq_sum / done).float().reshape(b, *rows_cols), done, transform.value_bound,
                           transform.binary, noise, tuple(x.shape[1:]), target.detach().cpu(),
                           time.perf_counter() - start, getattr(transform, "v", None))


def smooth(model, x, settings: MapSettings | None = None, *, target=None,
           generator: torch.Generator | None = None, batch_size: int = 16, progress=None) -> SmoothResult:
    """Smooth a base attribution by averaging a per-sample transform over ``T`` noise draws.

    Args:
        model: classifier taking pixel-space inputs in ``[0, 1]`` (normalisation inside).
        x: ``(C, H, W)`` or ``(B, C, H, W)`` image(s) in ``[0, 1]``.
        settings: :class:`rrs.settings.MapSettings` with a smoothing ``method``
            (default: RRS of the vanilla gradient, Gaussian σ = 0.15, T = 16).
        target: class index or ``(B,)`` indices; default the predicted class.
        generator: noise generator (default :func:`generator_for` ``(model, settings.seed)``).
        batch_size: noisy inputs per forward pass (result-neutral).
        progress: optional callable ``progress(done, total)``.
    """
    last = None
    for last in smooth_stream(model, x, settings, target=target, generator=generator,
                              batch_size=batch_size, progress=progress):
        pass
    return last


def interpretation_map(model, x, settings: MapSettings, *, target=None, batch_size: int = 16,
                       progress=None, seed: int | None = None) -> torch.Tensor:
    """The ``(rows, cols)`` map of one image for ``settings``: raw, or smoothed with noise seed
    ``settings.seed`` (or ``seed``). The one definition of "the map" for every front end."""
    if not settings.smoothed:
        return raw_map(model, x, settings, target=target)[0].cpu()
    s = settings if seed is None else settings.replace(seed=int(seed))
    return smooth(model, x, s, target=target, batch_size=batch_size, progress=progress).map[0].cpu()
