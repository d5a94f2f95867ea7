"""What the app computes in one request (plain Python, no streamlit).

Budgets are checked up front: a request beyond what this machine does interactively in
reasonable time or memory is capped, with a plain message saying so (:func:`plan_samples`,
:func:`plan_eot`). These are the app's limits, not the library's: the command line runs any
``T`` and any number of EOT samples.
"""
from __future__ import annotations

import torch

from rrs.smoothing import model_device

__all__ = ["MAX_SAMPLES", "MAX_EOT", "BudgetError", "device_label", "device_kind", "plan_samples",
           "plan_eot", "available_host_memory"]

#: Largest number of noise samples the app computes in one request (per device kind).
MAX_SAMPLES = {"cpu": 8192, "gpu": 65536}
#: Largest number of EOT samples per attack step at 224×224 (second-order graphs are big).
MAX_EOT = {"cpu": 16, "gpu": 64}
#: Bytes one EOT sample at 224×224 costs in the attack's double-backward pass. Measured on
#: EfficientNet-Lite0 (CPU, peak RSS of one RRS attack step): ~150 MB per extra sample
#: (1 → 4 → 8 samples: +250 / +744 / +1355 MB); 250 MB leaves headroom for bigger models.
#: Scales with the pixel count.
_BYTES_PER_2ND_ORDER_224 = 250 * 2 ** 20


class BudgetError(ValueError):
    """A request beyond what the app does interactively, with what to do instead."""


def device_label(model) -> str:
    """``"CPU"`` or ``"GPU (name)"`` for the device the model's parameters live on."""
    dev = model_device(model)
    if dev.type == "cuda":
        try:
            return f"GPU ({torch.cuda.get_device_name(dev)})"
        except RuntimeError:  # pragma: no cover - depends on the driver
            return "GPU"
    if dev.type == "mps":
        return "GPU (Apple MPS)"
    return "CPU"


def device_kind(model) -> str:
    """``"cpu"`` or ``"gpu"``: which column of :data:`MAX_SAMPLES` / :data:`MAX_EOT` applies."""
    return "cpu" if model_device(model).type == "cpu" else "gpu"


def _whole(what: str, value) -> int:
    if isinstance(value, bool) or int(value) != value or value < 1:
        raise BudgetError(f"The number of {what} must be a whole number ≥ 1, got {value!r}.")
    return int(value)


def plan_samples(samples: int, model, what: str = "noise samples") -> tuple[int, str]:
    """Cap a requested number of samples at what the app computes interactively.

    Returns ``(samples_to_use, message)``; the message is empty when nothing was capped.
    """
    samples = _whole(what, samples)
    cap = MAX_SAMPLES[device_kind(model)]
    if samples > cap:
        return cap, (f"T = {samples:,} {what} is more than the app computes in one go on this "
                     f"{device_label(model)}; it was capped at {cap:,}. For longer runs use the "
                     "command line (python -m rrs certify … --samples N).")
    return samples, ""


def plan_eot(eot: int, x: torch.Tensor, model, memory_bytes: int | None = None) -> tuple[int, str]:
    """Cap EOT samples per attack step so the second-order graph fits in memory.

    ``memory_bytes``: memory for this request (default: the budget of the process-wide compute
    scheduler, :mod:`rrs.compute`, which admits concurrent jobs against it — a fixed number, so
    the cap does not depend on what other sessions run now); at most half of it is used.
    """
    if isinstance(eot, bool) or int(eot) != eot or eot < 1:
        raise BudgetError(f"EOT samples must be a whole number ≥ 1, got {eot!r}.")
    eot = int(eot)
    pixels = x.shape[-1] * x.shape[-2]
    per = _BYTES_PER_2ND_ORDER_224 * pixels / (224 * 224)
    cap = MAX_EOT[device_kind(model)] * max(1, int((224 * 224) / pixels))
    if memory_bytes is None:
        memory_bytes = _job_memory(model)
    if memory_bytes is not None:
        cap = min(cap, max(1, int(memory_bytes / 2 // per)))
    if eot > cap:
        return cap, (f"{eot} EOT samples per step would need about {eot * per / 2**30:.1f} GB for "
                     f"second-order gradients at {x.shape[-1]}×{x.shape[-2]}; capped at {cap}.")
    return eot, ""


def _job_memory(model) -> int | None:
    """The compute scheduler's memory budget for the model's device (None when unknown)."""
    from rrs.compute import get_scheduler
    try:
        return get_scheduler(model_device(model).type).budget
    except (ValueError, OSError, RuntimeError):
        return _free_memory(model)


def _free_memory(model) -> int | None:
    """Free memory in bytes on the model's device (None when unknown)."""
    from rrs.compute.memory import available_memory

    try:
        return available_memory(str(model_device(model)))
    except (ValueError, OSError, RuntimeError):
        return None


def available_host_memory() -> int:
    """Memory the OS can hand out now: Linux's MemAvailable (free pages plus reclaimable page
    cache; :func:`rrs.compute.memory.available_memory`). Free pages alone are small on a machine
    that just read gigabytes of files, though that cache is released on demand."""
    from rrs.compute.memory import available_memory

    return available_memory("cpu")
