"""How much memory a job needs, and how much the process may use (the scheduler's budget).

Measured on this machine with ``python bench/memory.py`` (EfficientNet-Lite0, CPU, peak RSS
above the warmed-up model, one thread):

=======  ===========================  ====================  ==========================
size     map, batch 1 / 4 / 16        attack, EOT 1 / 4      per sample  /  per EOT
=======  ===========================  ====================  ==========================
224 px   12 / 247 / 1228 MB           125 / 648 MB           77 MB  /  174 MB
160 px    3 / 131 /  688 MB            73 / 352 MB           43 MB  /   93 MB
112 px    1 /  65 /  333 MB            50 / 158 MB           21 MB  /   36 MB
=======  ===========================  ====================  ==========================

Both scale with the pixel count (84 / 83 / 77 MB per sample and 144–182 MB per EOT sample
when scaled to 224 px), so a job's need is estimated as

    need = fixed + batch · 84 MB · f + eot · 185 MB · f,   f = model factor · pixels / 224²

(:func:`estimate`), with ``fixed`` = 64 MB (the bookkeeping of one job). Other models scale by
their activation memory relative to EfficientNet-Lite0 (:data:`MODEL_FACTOR`, conservative;
unknown models count 3×). The figures are estimates with headroom: the budget is what the
scheduler admits against, so they should err high.
"""
from __future__ import annotations

import functools
import os
import re
from dataclasses import dataclass, replace

__all__ = ["JobCost", "estimate", "fit_batch", "parse_budget", "available_memory", "default_budget",
           "tune_allocator", "give_back_free_memory",
           "MODEL_FACTOR", "BudgetError"]

MB = 2 ** 20
GB = 2 ** 30
FIXED = 64 * MB
PER_SAMPLE_224 = 84 * MB      # forward + input gradient, one noisy input
PER_EOT_224 = 185 * MB        # the attack's double backward, one EOT sample

#: Activation memory relative to EfficientNet-Lite0 at the same input size.
MODEL_FACTOR = {"efficientnet-lite0": 1.0, "efficientnet-lite1": 1.3, "efficientnet-lite2": 1.5,
                "resnet18": 0.8, "resnet50": 2.2, "vgg16": 3.0, "mobilenet_v3_small": 0.4,
                "mobilenet_v3_large": 0.9, "densenet121": 2.5, "tiny": 0.05}
UNKNOWN_FACTOR = 3.0
#: Share of the available memory the scheduler uses by default (the rest is the server's own).
DEFAULT_SHARE = 0.6


class BudgetError(ValueError):
    """A memory budget that cannot be read (e.g. a malformed ``RRS_MEMORY_BUDGET``)."""


@dataclass(frozen=True)
class JobCost:
    """What decides a job's memory: model, input side, batch, EOT samples, second order.

    ``batch``: noisy inputs per forward pass wanted (the scheduler may lower it: smoothing is
    batch-invariant, so a smaller batch gives the same result); ``eot``: EOT samples of the
    attack's second-order step (0 for first-order jobs); ``adaptable``: whether the batch may
    be lowered.
    """

    kind: str
    model: str
    size: int
    batch: int = 16
    eot: int = 0
    adaptable: bool = True

    @property
    def factor(self) -> float:
        return MODEL_FACTOR.get(self.model, UNKNOWN_FACTOR) * (self.size * self.size) / (224 * 224)

    def with_batch(self, batch: int) -> "JobCost":
        return replace(self, batch=int(batch))


def estimate(cost: JobCost, batch: int | None = None) -> int:
    """Bytes the job needs at ``batch`` (default its own)."""
    b = cost.batch if batch is None else int(batch)
    return int(FIXED + cost.factor * (b * PER_SAMPLE_224 + cost.eot * PER_EOT_224))


def fit_batch(cost: JobCost, free: int) -> int | None:
    """The largest batch ≤ ``cost.batch`` whose need fits in ``free`` bytes (``None`` if even
    batch 1 does not; only ``cost.batch`` itself when the batch is not adaptable)."""
    if estimate(cost) <= free:
        return cost.batch
    if not cost.adaptable or estimate(cost, 1) > free:
        return None
    per = cost.factor * PER_SAMPLE_224
    rest = free - FIXED - cost.factor * cost.eot * PER_EOT_224
    b = int(max(1, min(cost.batch, rest // per)))
    while b < cost.batch and estimate(cost, b + 1) <= free:    # exact at the rounding edges
        b += 1
    while b > 1 and estimate(cost, b) > free:
        b -= 1
    return b


_UNITS = {"": 1, "B": 1, "K": 2 ** 10, "KB": 2 ** 10, "KIB": 2 ** 10, "M": MB, "MB": MB, "MIB": MB,
          "G": GB, "GB": GB, "GIB": GB, "T": 2 ** 40, "TB": 2 ** 40, "TIB": 2 ** 40}


def parse_budget(text: str, available: int) -> int:
    """``"8GB"``, ``"512 MB"``, ``"50%"`` (of ``available``) or plain bytes → bytes."""
    s = str(text).strip().upper().replace(" ", "")
    m = re.fullmatch(r"(\d+(?:\.\d+)?)(%|[KMGT]?I?B?)", s)
    if not m:
        raise BudgetError(f"RRS_MEMORY_BUDGET={text!r} is not a memory size: use e.g. '8GB', '512MB' or '50%'")
    value, unit = float(m.group(1)), m.group(2)
    if unit == "%":
        if not 0 < value <= 100:
            raise BudgetError(f"RRS_MEMORY_BUDGET={text!r}: a share must be between 0 and 100%")
        return int(available * value / 100)
    out = int(value * _UNITS[unit])
    if out < 64 * MB:
        raise BudgetError(f"RRS_MEMORY_BUDGET={text!r} is below 64 MB; the app cannot compute anything in that")
    return out


def available_memory(device: str = "cpu") -> int:
    """Memory that can be handed out now: free CUDA memory on ``"cuda"`` (torch.cuda.mem_get_info),
    else Linux's MemAvailable (free pages plus reclaimable page cache)."""
    if str(device).startswith("cuda"):
        import torch
        free, _ = torch.cuda.mem_get_info(torch.device(device))
        return int(free)
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return int(os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))


def default_budget(device: str = "cpu", env: str | None = None, available: int | None = None) -> int:
    """The scheduler's budget: ``RRS_MEMORY_BUDGET`` (size or share of what is available) or
    :data:`DEFAULT_SHARE` of the available memory on ``device`` (or of ``available`` bytes,
    e.g. what a Ray cluster offers)."""
    text = os.environ.get("RRS_MEMORY_BUDGET", "") if env is None else env
    available = available_memory(device) if available is None else int(available)
    if text.strip():
        return parse_budget(text, available)
    return int(available * DEFAULT_SHARE)


# ------------------------------------------------------------------------ the C allocator

_M_ARENA_MAX = -8             # glibc's mallopt parameter number (malloc.h)


@functools.lru_cache(maxsize=1)
def _glibc():
    """The C library if it is glibc (``mallopt``, ``malloc_trim``), else None; looked up once
    (``find_library`` runs ``ldconfig``, too slow for every job)."""
    import ctypes
    import ctypes.util

    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name) if name else None
    except OSError:
        return None
    return libc if libc is not None and hasattr(libc, "mallopt") and hasattr(libc, "malloc_trim") else None


def tune_allocator(arenas: int = 2) -> bool:
    """Bound the memory the C allocator keeps after jobs (glibc only; returns whether it applied).

    Jobs run in the sessions' script threads, and glibc gives each thread its own heap (arena)
    that keeps the peak of the last job it ran: 30 sessions on the default model reached
    +10.6 GB of RSS with one job at a time and a budget of 8 GB. At most ``arenas`` heaps, and
    :func:`give_back_free_memory` after every job (the scheduler calls it), keep the RSS near
    what the running jobs use. (A fixed threshold for separate mappings did as well for memory
    but made attacks 65% slower: every large tensor was mapped and zeroed anew.)"""
    libc = _glibc()
    return libc is not None and libc.mallopt(_M_ARENA_MAX, int(arenas)) == 1


def give_back_free_memory() -> None:
    """Return the allocator's free pages to the system (``malloc_trim``; glibc only)."""
    libc = _glibc()
    if libc is not None:
        libc.malloc_trim(0)
