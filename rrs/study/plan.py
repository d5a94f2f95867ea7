"""Planning a study run: its cost in gradient evaluations and the time it should take here.

:func:`rrs.study.jobs.estimate_cost` counts each job in plain-gradient evaluations (machine
independent); :func:`gradient_seconds` measures what one costs on this machine now (a short
SmoothGrad map of the model on the first image); :func:`plan_line` is the sentence printed
before a run starts (and by ``--dry-run``).
"""
from __future__ import annotations

import time
from collections import Counter

__all__ = ["gradient_seconds", "plan_line"]


def gradient_seconds(cfg, device=None, samples: int = 8, threads: int | None = None) -> float:
    """Seconds per plain-gradient evaluation of ``cfg.model`` here and now: a SmoothGrad map of
    ``samples`` noise draws on ``cfg.images[0]`` (after a warm-up map of the same batch: a warm-up
    of one draw left the first batched pass's allocations in the timing, and the plan of
    2026-12-03's ``make eval`` said 117 min for an 80-min run), divided by ``samples``."""
    from ..smoothing import interpretation_map
    from .inputs import get_image, get_model, resolve_device
    from .jobbase import map_settings
    from .jobs import torch_threads
    model = get_model(cfg.model, resolve_device(device))
    x = get_image(model, cfg.images[0])
    settings = map_settings(cfg, "smoothgrad", 1, samples)
    with torch_threads(threads):
        interpretation_map(model, x, settings)
        t0 = time.perf_counter()
        interpretation_map(model, x, settings)
        return (time.perf_counter() - t0) / samples


def plan_line(jobs: list, rate: float | None, workers: int = 1, measured: bool = True) -> str:
    """``"<n> jobs (kinds) ≈ <G> gradient evaluations ≈ <minutes> min at <rate> s per gradient"``."""
    from .jobs import estimate_cost
    cost = estimate_cost(jobs)
    kinds = ", ".join(f"{n} {k}" for k, n in Counter(j["kind"] for j in jobs).most_common())
    text = f"{len(jobs)} jobs ({kinds}) ≈ {cost:,.0f} gradient evaluations"
    if rate is not None and rate > 0:
        minutes = cost * rate / 60 / max(1, int(workers))
        text += (f" ≈ {minutes:,.0f} min at {rate * 1000:.0f} ms per gradient"
                 + (f" over {workers} workers" if workers > 1 else "")
                 + (" (measured now)" if measured else " (given)"))
    return text
