"""How big a batch and how long a computation: the one place for the batch rules and the
rate-based time predictions (plain Python; the app, the command line and the benches use it).

Batches never change a result (the noise is drawn per sample from one generator), only the
speed and the memory. Times are predicted from the rates measured on this device
(:data:`rrs.timing.RATES`, recorded by every smoothing run), never from a constant.
"""
from __future__ import annotations

import time

import torch

from ..smoothing import smooth
from ..timing import RATES, sample_key

__all__ = ["IG_BATCH_DIVISOR", "attribution_batch", "batch_size_for", "calibrate", "sample_rate",
           "predict_seconds", "predict_map", "ATTACK_SECOND_ORDER", "attack_units", "predict_attack",
           "record_attack"]

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


def sample_rate(model, x, settings) -> float:
    """Noisy samples per second for ``settings`` here: measured, else from a 2-sample pilot."""
    rate = RATES.rate(sample_key(model, x, settings))
    if rate is None:
        rate = calibrate(model, x, settings, samples=2, batch_size=2)
    return float(rate)


def predict_seconds(model, x, settings, samples: int) -> float | None:
    """Seconds for ``samples`` noisy samples of ``settings`` at the rate measured here
    (``None`` before any measurement; nothing is run). ``x``: ``(3, H, W)`` or ``(1, 3, H, W)``."""
    return RATES.predict(sample_key(model, x[None] if x.dim() == 3 else x, settings), samples)


def predict_map(model, x, settings) -> float:
    """Seconds to compute the map ``settings`` describes (a pilot measures the rate if needed)."""
    units = settings.samples if settings.smoothed else 1
    return units / sample_rate(model, x, settings)


#: Cost of one second-order EOT step of an attack in noisy-sample units, used only until an
#: attack has been measured on this device (:func:`record_attack` then replaces it).
ATTACK_SECOND_ORDER = 3.0


def attack_units(settings, attack) -> float:
    """An attack's cost in noisy-sample units: its steps (EOT second-order samples and the map
    check) and the three evaluation maps."""
    t = settings.samples if settings.smoothed else 1
    eot = attack.eot if settings.smoothed else 1
    return attack.steps * (eot * ATTACK_SECOND_ORDER + t) + 3 * t


def _attack_key(model, x, settings) -> tuple:
    return ("attack",) + sample_key(model, x, settings)


def predict_attack(model, x, settings, attack) -> float:
    """Seconds for one attacked method (steps, EOT, and the three evaluation maps), from the
    attack rate measured on this device, or from the sample rate before any attack ran."""
    units = attack_units(settings, attack)
    rate = RATES.rate(_attack_key(model, x, settings))
    if rate is None:
        return units / sample_rate(model, x, settings)
    return units / rate


def record_attack(model, x, settings, attack, seconds: float) -> None:
    """Record a finished (not cached) attack so the next prediction uses its measured rate."""
    RATES.record(_attack_key(model, x, settings), attack_units(settings, attack), seconds)
