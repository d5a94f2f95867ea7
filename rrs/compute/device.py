"""The device's choices: batch sizes from free memory, and bf16 where it agrees with fp32.

* :func:`batch_size` — on CUDA, noisy inputs per pass from ``torch.cuda.mem_get_info`` (half of
  the free memory, divided by the measured per-sample need of :mod:`rrs.compute.memory`),
  instead of 16; smoothing is batch-invariant, so this changes the speed, never the map. On the
  CPU the app's fixed batches.
* :func:`precision` — ``"bf16"`` autocast where the device computes bf16 natively (CUDA with
  bf16; a CPU with AMX or AVX-512 BF16, :func:`cpu_bf16_fast`) and a measured check on the
  actual model passes (:func:`check_precision`: a bf16 RRS map agrees with the fp32 map of the
  same noise at least as well as two fp32 maps with different noise — the no-attack floor — in
  top-k intersection and in Spearman rank correlation), run once per model
  and device; else ``"fp32"``. ``RRS_PRECISION=fp32|bf16`` overrides. :func:`resolve` applies
  it to a job's settings, so the result's settings record the precision used.

A certificate holds for the smoothed map of the function actually computed (method.md §5,
"Precision"): a bf16 map's certificate is about the bf16 map, and everything that checks it
(the attacked map, the floor) uses the same settings.
"""
from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass

import torch

from ..settings import PRECISIONS, MapSettings
from ..smoothing import model_device

from . import memory as M
from .policy import attribution_batch

__all__ = ["device_of", "batch_size", "precision", "bf16_agrees", "cpu_bf16_fast", "device_supports_bf16",
           "PrecisionCheck", "check_precision", "check_settings", "last_check", "forced_precision", "resolve"]

_CHECKS: dict = {}
_LOCK = threading.Lock()
_MEASURING = threading.Lock()


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


def cpu_bf16_fast() -> bool:
    """Whether this CPU computes bf16 natively (AMX tiles or AVX-512 BF16): only there can bf16
    autocast be faster than fp32 (elsewhere it is emulated and slower)."""
    cpu = getattr(torch, "cpu", None)
    for name in ("_is_amx_tile_supported", "_is_avx512_bf16_supported"):
        fn = getattr(cpu, name, None)
        try:
            if fn is not None and fn():
                return True
        except Exception:  # pragma: no cover - private torch helpers moved
            continue
    return False


def device_supports_bf16(model) -> bool:
    """bf16 autocast is worth trying on ``model``'s device (CUDA with bf16, or a CPU with AMX /
    AVX-512 BF16)."""
    dev = device_of(model)
    if dev.type == "cuda":
        return bool(torch.cuda.is_bf16_supported())
    return dev.type == "cpu" and cpu_bf16_fast()


@dataclass(frozen=True)
class PrecisionCheck:
    """The measured agreement (and speed) of bf16 against fp32 on one model and image.

    A short RRS map (``settings``: vanilla gradient, about 14×14 cells, k = 5%, T = 16, seed 0)
    in fp32 and in bf16 with the *same* noise is compared with the fp32 no-attack floor (the
    fp32 maps of seeds 0 and 1). ``agrees``: the bf16-vs-fp32 tie-aware top-k intersection is
    at least the floor's AND the bf16-vs-fp32 Spearman rank correlation is at least the floor's
    — bf16 moves the map less than drawing fresh noise does. ``precision``: ``"bf16"`` when it
    agrees, else ``"fp32"`` (a deterministic choice: same model, image and device, same answer).
    ``*_seconds``: per sample, the fastest of the map's batches of 4 after a warm-up batch (a
    busy machine slows some batches, never speeds one up) — recorded, not decisive: where the
    hardware computes bf16 natively it is faster on real models, while timing a tiny model's
    millisecond batches on a shared machine is noise.
    """

    model: str
    device: str
    settings: MapSettings
    topk: float
    spearman: float
    floor_topk: float
    floor_spearman: float
    fp32_seconds: float
    bf16_seconds: float

    @property
    def agrees(self) -> bool:
        return self.topk >= self.floor_topk and self.spearman >= self.floor_spearman

    @property
    def speedup(self) -> float:
        return self.fp32_seconds / self.bf16_seconds if self.bf16_seconds > 0 else float("nan")

    @property
    def precision(self) -> str:
        return "bf16" if self.agrees else "fp32"

    def to_dict(self) -> dict:
        return {"model": self.model, "device": self.device, "precision": self.precision, "agrees": self.agrees,
                "bf16_speedup": self.speedup, "bf16_vs_fp32_topk": self.topk, "bf16_vs_fp32_spearman": self.spearman,
                "floor_topk": self.floor_topk, "floor_spearman": self.floor_spearman,
                "fp32_seconds": self.fp32_seconds, "bf16_seconds": self.bf16_seconds,
                "settings": self.settings.to_dict()}


def check_settings(x: torch.Tensor, samples: int = 16) -> MapSettings:
    """The check's map: RRS of the vanilla gradient, T = ``samples``, about 14×14 cells."""
    return MapSettings(method="rrs", samples=int(samples), cell=max(1, int(x.shape[-1]) // 14), seed=0)


def _key(model) -> tuple:
    return (str(getattr(model, "name", None) or type(model).__name__), id(model), str(device_of(model)))


def check_precision(model, x: torch.Tensor, samples: int = 16, refresh: bool = False) -> PrecisionCheck:
    """Measure bf16 against fp32 on ``model`` and the image ``x`` (:class:`PrecisionCheck`);
    run once per model and device, then cached (``refresh`` measures again)."""
    key = _key(model)
    with _MEASURING:                       # one measurement at a time: the first visitors share it
        with _LOCK:
            if key in _CHECKS and not refresh:
                return _CHECKS[key]
        out = _measure(model, x, key, samples)
        with _LOCK:
            _CHECKS[key] = out
        return out


def _measure(model, x, key, samples) -> PrecisionCheck:
    from rrs.floor import no_attack_floor
    from rrs.metrics import spearman, tie_aware_intersection
    from rrs.smoothing import smooth

    fp32 = check_settings(x, samples)
    bf16 = fp32.replace(precision="bf16")
    batch = 4
    for s in (fp32, bf16):                                   # warm-up: kernels of this batch shape
        smooth(model, x, s.replace(samples=batch), batch_size=batch)
    times, maps = {}, {}
    for s in (fp32, bf16):
        marks = [time.perf_counter()]
        maps[s.precision] = smooth(model, x, s, batch_size=batch,
                                   progress=lambda done, total: marks.append(time.perf_counter())).map[0]
        # the fastest batch: a busy machine slows some batches, never speeds one up
        times[s.precision] = min(b - a for a, b in zip(marks, marks[1:])) / batch
    a, b = maps["fp32"], maps["bf16"]
    k = fp32.k_for(a.numel())
    floor = no_attack_floor(model, x, fp32, map_a=a)
    return PrecisionCheck(key[0], key[2], fp32, tie_aware_intersection(a, b, k), spearman(a, b),
                          floor.topk_intersection, floor.spearman, times["fp32"], times["bf16"])


def bf16_agrees(model, x: torch.Tensor, samples: int = 16) -> bool:
    """Whether a bf16 RRS map of ``x`` agrees with fp32 within the no-attack floor
    (:class:`PrecisionCheck`, once per model)."""
    return check_precision(model, x, samples).agrees


def last_check(model) -> PrecisionCheck | None:
    """The cached :class:`PrecisionCheck` of ``model`` (``None`` before one ran)."""
    with _LOCK:
        return _CHECKS.get(_key(model))


def forced_precision() -> str | None:
    """``RRS_PRECISION`` (``fp32`` or ``bf16``) when set, else ``None``."""
    forced = os.environ.get("RRS_PRECISION", "").strip().lower()
    return forced if forced in PRECISIONS else None


def precision(model, x: torch.Tensor | None = None) -> str:
    """The precision of smoothed maps on ``model``'s device: ``RRS_PRECISION`` when set; else
    ``"bf16"`` where the device computes bf16 natively (CUDA with bf16; a CPU with AMX or
    AVX-512 BF16) and the measured check on ``x`` passes (:func:`check_precision`: agrees
    within the no-attack floor), else ``"fp32"``. Without ``x`` and before any
    check: ``"fp32"``."""
    forced = forced_precision()
    if forced is not None:
        return forced
    if not device_supports_bf16(model):
        return "fp32"
    if x is None:
        done = last_check(model)
        return "fp32" if done is None else done.precision
    return check_precision(model, x).precision


def resolve(model, x: torch.Tensor, settings: MapSettings) -> MapSettings:
    """``settings`` with the precision this device uses for it: ``RRS_PRECISION`` when set; an
    explicit ``"bf16"`` is kept; the default ``"fp32"`` becomes :func:`precision`. Raw maps are
    returned unchanged (they are one gradient, and attacks differentiate them)."""
    if not settings.smoothed:
        return settings
    forced = forced_precision()
    if forced is not None:
        return settings.replace(precision=forced)
    if settings.precision == "bf16":
        return settings
    return settings.replace(precision=precision(model, x))
