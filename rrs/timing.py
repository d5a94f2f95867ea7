"""Measured speeds and predicted times: every long computation says how long it will take.

:data:`RATES` is a process-wide, thread-safe record of how fast this machine computes noisy
attribution samples, keyed by what decides the cost (model, input side, attribution,
precision, device kind). :func:`rrs.smoothing.smooth_stream` records every run, so a prediction
comes from the rate measured on this device, not from a constant. The predictions themselves
(and the pilot that measures a rate when none is known yet) are in :mod:`rrs.compute.policy`.
"""
from __future__ import annotations

import threading
from dataclasses import dataclass

import torch

__all__ = ["RateBook", "RATES", "sample_key", "format_seconds"]


@dataclass
class _Rate:
    units: float = 0.0
    seconds: float = 0.0

    @property
    def per_second(self) -> float | None:
        return self.units / self.seconds if self.seconds > 0 and self.units > 0 else None


class RateBook:
    """Units per second by key, from the most recent work (exponential forgetting, so a machine
    that gets busier is noticed)."""

    def __init__(self, keep: float = 0.5):
        self._rates: dict = {}
        self._lock = threading.Lock()
        self._keep = keep

    def record(self, key, units: float, seconds: float) -> None:
        if units <= 0 or seconds <= 0:
            return
        with self._lock:
            r = self._rates.setdefault(key, _Rate())
            r.units, r.seconds = r.units * self._keep + units, r.seconds * self._keep + seconds

    def rate(self, key) -> float | None:
        with self._lock:
            r = self._rates.get(key)
            return None if r is None else r.per_second

    def predict(self, key, units: float) -> float | None:
        """Seconds for ``units`` more units at the measured rate (``None`` if never measured)."""
        rate = self.rate(key)
        return None if rate is None else float(units) / rate

    def clear(self) -> None:
        with self._lock:
            self._rates.clear()


RATES = RateBook()


def sample_key(model, x: torch.Tensor, settings) -> tuple:
    """What decides the cost of one noisy attribution sample."""
    device = next(model.parameters(), torch.empty(0)).device
    return (getattr(model, "name", type(model).__name__), tuple(x.shape[-2:]), settings.attribution,
            settings.precision, device.type)


def format_seconds(seconds: float | None) -> str:
    """``"about 40 s"``, ``"about 3 min"``, ``"about 2 h"``; ``"unknown"`` when not measured."""
    if seconds is None:
        return "unknown"
    if seconds < 1:
        return "under a second"
    if seconds < 90:
        return f"about {seconds:.0f} s"
    if seconds < 5400:
        return f"about {seconds / 60:.0f} min"
    return f"about {seconds / 3600:.1f} h"
