"""How big a batch and how long a computation: the one place for the batch rules and the
rate-based time predictions (plain Python; the app, the command line and the benches use it).
The app's per-job-kind predictions (maps, attacks, certificates fitted to the jobs finished
here, under the app's caps on T and EOT) build on these rates in :mod:`ui.story`.

Batches never change a result (the noise is drawn per sample from one generator), only the
speed and the memory. Times are predicted from the rates measured on this device
(:data:`rrs.timing.RATES`, recorded by every smoothing run), never from a constant.
"""
from __future__ import annotations

import time

import torch

from ..smoothing import smooth
from ..timing import RATES, sample_key

__all__ = ["IG_BATCH_DIVISOR", "attribution_batch", "batch_size_for", "calibrate", "PILOT_SAMPLES", "sample_rate",
           "predict_seconds"]

# ---------------------------------------------------------------------------- batches

#: Integrated gradients runs its path steps for every noisy input, so one input costs several
#: gradients: its batch is this many times smaller.
IG_BATCH_DIVISOR = 8


def attribution_batch(size: int, attribution: str) -> int:
    """``size`` noisy inputs per pass, divided for attributions that cost more per input."""
    if attribution == "integrated_gradients":
        return max(1, int(size) // IG_BATCH_DIVISOR)
    return int(size)


def batch_size_for(x: torch.Tensor, attribution: str) -> int:
    """Noisy inputs per forward pass off CUDA: 16 at 224×224 (2 for integrated gradients), more
    for small inputs, at most 256; never changes a result (on CUDA
    :func:`rrs.compute.device.batch_size` sizes it from free memory)."""
    pixels = x.shape[-1] * x.shape[-2]
    size = max(1, int(16 * (224 * 224) / pixels))
    return int(min(attribution_batch(size, attribution), 256))


# ---------------------------------------------------------------------------- times

def calibrate(model, x: torch.Tensor, settings, samples: int = 4, batch_size: int = 4) -> float:
    """Measure samples per second with a short pilot (recorded in :data:`rrs.timing.RATES`)."""
    pilot = settings.replace(method="smoothgrad", samples=int(samples))
    key = sample_key(model, x, pilot)
    t0 = time.perf_counter()
    smooth(model, x, pilot, batch_size=batch_size)
    seconds = time.perf_counter() - t0
    RATES.record(key, samples, seconds)
    return samples / seconds


#: Noisy samples of the pilot that measures the sample rate when none is known (in one batch,
#: so the rate is the batched one maps run at).
PILOT_SAMPLES = 8


def sample_rate(model, x, settings) -> float:
    """Noisy samples per second for ``settings`` here: measured, else from a batched pilot of
    :data:`PILOT_SAMPLES` (after one warm-up pass: the first pass allocates)."""
    rate = RATES.rate(sample_key(model, x, settings))
    if rate is None:
        n = min(PILOT_SAMPLES, batch_size_for(x, settings.attribution))
        calibrate(model, x, settings, samples=n, batch_size=n)
        rate = calibrate(model, x, settings, samples=n, batch_size=n)
    return float(rate)


def predict_seconds(model, x, settings, samples: int) -> float | None:
    """Seconds for ``samples`` noisy samples of ``settings`` at the rate measured here
    (``None`` before any measurement; nothing is run). ``x``: ``(3, H, W)`` or ``(1, 3, H, W)``."""
    return RATES.predict(sample_key(model, x[None] if x.dim() == 3 else x, settings), samples)
