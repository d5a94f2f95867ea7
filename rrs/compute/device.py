"""The GPU backend's choices: batch sizes from free memory and bf16 where it agrees with fp32.

On the CPU nothing changes (the app's fixed batches, fp32). On CUDA:

* :func:`batch_size` — noisy inputs per pass from ``torch.cuda.mem_get_info`` (half of the free
  memory, divided by the measured per-sample need of :mod:`rrs.compute.memory`), instead of 16;
  smoothing is batch-invariant, so this changes the speed, never the map;
* :func:`precision` — ``"bf16"`` autocast when the device supports it and a bf16 RRS map agrees
  with the fp32 map at least as well as two fp32 maps with different noise (the no-attack floor;
  the check of ``bench/precision.py``, run once per model on the device), else ``"fp32"``.
  ``RRS_PRECISION=fp32|bf16`` overrides. A certificate holds for the map actually computed, so a
  bf16 map's certificate is about the bf16 map; the result's settings record the precision.
"""
from __future__ import annotations

import os
import threading

import torch

from ..smoothing import model_device

from . import memory as M
from .policy import attribution_batch

__all__ = ["device_of", "batch_size", "precision", "bf16_agrees"]

_AGREES: dict = {}
_LOCK = threading.Lock()


def device_of(model) -> torch.device:
    return model_device(model)


def batch_size(model, x: torch.Tensor, attribution: str, default: int, free: int | None = None,
               cap: int = 1024) -> int:
    """Batch for ``model`` on its device: ``default`` off CUDA; on CUDA from ``free`` bytes
    (default: ``torch.cuda.mem_get_info``) — half of it over the per-sample need."""
    dev = device_of(model)
    if dev.type != "cuda" and free is None:
        return int(default)
    if free is None:
        free, _ = torch.cuda.mem_get_info(dev)
    cost = M.JobCost("map", getattr(model, "name", ""), int(x.shape[-1]), batch=1)
    per = cost.factor * M.PER_SAMPLE_224
    return attribution_batch(int(max(1, min(cap, (free / 2 - M.FIXED) // per))), attribution)


def bf16_agrees(model, x: torch.Tensor, samples: int = 16, cell: int = 16) -> bool:
    """Whether a bf16 RRS map of ``x`` agrees with fp32 (same noise) at least as well as the
    fp32 no-attack floor (seeds 0 and 1): tie-aware top-k intersection (once per model)."""
    from rrs.floor import no_attack_floor
    from rrs.metrics import tie_aware_intersection
    from rrs.settings import MapSettings
    from rrs.smoothing import smooth

    key = (getattr(model, "name", id(model)), str(device_of(model)))
    with _LOCK:
        if key in _AGREES:
            return _AGREES[key]
    fp32 = MapSettings(method="rrs", samples=samples, cell=cell, seed=0)
    a = smooth(model, x, fp32).map[0]
    b = smooth(model, x, fp32.replace(precision="bf16")).map[0]
    k = fp32.k_for(a.numel())
    ok = tie_aware_intersection(a, b, k) >= no_attack_floor(model, x, fp32, map_a=a).topk_intersection
    with _LOCK:
        _AGREES[key] = bool(ok)
    return bool(ok)


def precision(model, x: torch.Tensor | None = None) -> str:
    """``"bf16"`` on a CUDA device with bf16 where it agrees with fp32 (:func:`bf16_agrees`),
    else ``"fp32"``; ``RRS_PRECISION`` overrides."""
    forced = os.environ.get("RRS_PRECISION", "").strip().lower()
    if forced in ("fp32", "bf16"):
        return forced
    dev = device_of(model)
    if dev.type != "cuda" or not torch.cuda.is_bf16_supported():
        return "fp32"
    if x is None:
        return "fp32"
    return "bf16" if bf16_agrees(model, x) else "fp32"
