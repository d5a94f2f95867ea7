"""Argument checks shared by the library: each returns the clean value or raises a ValueError
whose message names the argument, what it must be and what it got (never a traceback deep
inside torch or numpy)."""
from __future__ import annotations

import math

import numpy as np
import torch

__all__ = ["integer", "positive", "fraction", "probability", "non_negative", "choice", "array", "image_batch",
           "image"]


def integer(name: str, value, low: int = 1, high: int | None = None) -> int:
    """``value`` as an int in ``[low, high]``; floats are accepted only when whole."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        if not (isinstance(value, (float, np.floating)) and float(value).is_integer()):
            raise ValueError(f"{name} must be a whole number ≥ {low}, got {value!r}")
    value = int(value)
    if value < low or (high is not None and value > high):
        bound = f"in {low}..{high}" if high is not None else f"≥ {low}"
        raise ValueError(f"{name} must be {bound}, got {value}")
    return value


def positive(name: str, value, upper: float | None = None) -> float:
    """``value`` as a finite float ``> 0`` (and ``≤ upper`` when given)."""
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a positive number, got {value!r}") from None
    if isinstance(value, bool) or not math.isfinite(v) or v <= 0:
        raise ValueError(f"{name} must be a finite number > 0, got {value!r}")
    if upper is not None and v > upper:
        raise ValueError(f"{name} must be at most {upper:g}, got {v:g}")
    return v


def non_negative(name: str, value) -> float:
    """``value`` as a finite float ``≥ 0``."""
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a number ≥ 0, got {value!r}") from None
    if isinstance(value, bool) or not math.isfinite(v) or v < 0:
        raise ValueError(f"{name} must be a finite number ≥ 0, got {value!r}")
    return v


def fraction(name: str, value, closed_low: bool = False) -> float:
    """``value`` in ``(0, 1]`` (``[0, 1]`` with ``closed_low``)."""
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a number in (0, 1], got {value!r}") from None
    if not math.isfinite(v) or v > 1 or v < 0 or (v == 0 and not closed_low):
        raise ValueError(f"{name} must be in {'[' if closed_low else '('}0, 1], got {value!r}")
    return v


def probability(name: str, value) -> float:
    """``value`` strictly between 0 and 1 (a failure probability such as η)."""
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a number in (0, 1), got {value!r}") from None
    if not 0 < v < 1:
        raise ValueError(f"{name} must be in (0, 1), got {value!r}")
    return v


def array(name: str, value, above: float | None = None, at_least: float | None = None) -> np.ndarray:
    """``value`` as a finite float array with every entry ``> above`` / ``≥ at_least``."""
    a = np.asarray(value, dtype=float)
    bad = ~np.isfinite(a)
    if above is not None:
        bad |= a <= above
    if at_least is not None:
        bad |= a < at_least
    if np.any(bad):
        bound = f" and > {above:g}" if above is not None else f" and ≥ {at_least:g}" if at_least is not None else ""
        raise ValueError(f"{name} must be finite{bound}, got {value!r}")
    return a


def choice(name: str, value, options) -> str:
    """``value`` if it is one of ``options`` (listed in the message otherwise)."""
    if value not in options:
        raise ValueError(f"{name} must be one of {', '.join(map(repr, options))}; got {value!r}")
    return value


def image_batch(x) -> torch.Tensor:
    """A ``(B, C, H, W)`` tensor from ``(C, H, W)`` or ``(B, C, H, W)``, finite values."""
    if not isinstance(x, torch.Tensor):
        raise ValueError(f"x must be a torch tensor, got {type(x).__name__}")
    if x.dim() == 3:
        x = x[None]
    if x.dim() != 4:
        raise ValueError(f"x must be (C, H, W) or (B, C, H, W), got shape {tuple(x.shape)}")
    if not torch.isfinite(x).all():
        raise ValueError("x has non-finite values")
    return x


def image(x) -> torch.Tensor:
    """One image in pixel space ``[0, 1]`` as a ``(1, C, H, W)`` tensor."""
    if isinstance(x, torch.Tensor) and x.dim() == 4 and x.shape[0] != 1:
        raise ValueError(f"expected one image (C, H, W) or (1, C, H, W), got a batch of {x.shape[0]}")
    x = image_batch(x)
    if x.min() < 0 or x.max() > 1:
        raise ValueError("x must be in pixel space [0, 1] (normalisation lives inside the model)")
    return x
