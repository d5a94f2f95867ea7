"""Scoring vectors for Rényi-Robust-Smooth (method.md §2).

A scoring vector ``v ∈ R^n`` is non-increasing, non-negative and sums to 1; RRS replaces
each noisy map by ``ρ(a)_i = v_{rank(a)_i}``. Every constructor returns a validated 1-D
float64 numpy array of length ``n``.
"""
from __future__ import annotations

import math

import numpy as np

from . import checks

__all__ = ["topk_uniform", "exponential", "linear", "power", "from_values", "make_scoring",
           "FAMILIES", "validate_scoring", "default_scoring"]


def _check_n(n) -> int:
    return checks.integer("n (number of cells)", n, low=2)


def validate_scoring(v, n: int | None = None, name: str = "scoring") -> np.ndarray:
    """Check that ``v`` is a valid scoring vector and return it as float64.

    Raises ValueError naming ``name`` when ``v`` is not 1-D, has the wrong length, has
    non-finite or negative entries, is not non-increasing, or does not sum to 1.
    """
    arr = np.asarray(v, dtype=float)
    if arr.ndim != 1 or arr.size < 2:
        raise ValueError(f"{name} must be a 1-D vector with at least 2 entries, got shape {arr.shape}")
    if n is not None and arr.size != n:
        raise ValueError(f"{name} has {arr.size} entries but the map has {n} cells")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} has non-finite entries")
    if np.any(arr < 0):
        raise ValueError(f"{name} has negative entries")
    if np.any(np.diff(arr) > 1e-12):
        raise ValueError(f"{name} must be non-increasing (v_1 ≥ v_2 ≥ … ≥ v_n)")
    total = arr.sum()
    if abs(total - 1.0) > 1e-6:
        raise ValueError(f"{name} must sum to 1, sums to {total:.6g}")
    return arr / total


def topk_uniform(n: int, k: int) -> np.ndarray:
    """``v_r = 1/k`` for ``r ≤ k``, else 0 (the paper's default family)."""
    n = _check_n(n)
    k = checks.integer("k'", k, high=n)
    v = np.zeros(n)
    v[:k] = 1.0 / k
    return v


def exponential(n: int, tau: float) -> np.ndarray:
    """``v_r ∝ exp(−(r−1)/τ)``: smooth decay with length ``τ`` cells."""
    n = _check_n(n)
    tau = checks.positive("tau", tau)
    v = np.exp(-np.arange(n) / tau)
    return v / v.sum()


def linear(n: int, k: int) -> np.ndarray:
    """``v_r ∝ (k − r + 1)`` for ``r ≤ k``, 0 after: linear decay to 0 at rank ``k+1``."""
    n = _check_n(n)
    k = checks.integer("k'", k, high=n)
    v = np.zeros(n)
    v[:k] = np.arange(k, 0, -1, dtype=float)
    return v / v.sum()


def power(n: int, gamma: float) -> np.ndarray:
    """``v_r ∝ r^{−γ}``: heavy-tailed power-law decay."""
    n = _check_n(n)
    gamma = checks.positive("gamma", gamma)
    v = np.arange(1, n + 1, dtype=float) ** (-gamma)
    return v / v.sum()


def default_scoring(n: int) -> np.ndarray:
    """Top-k' uniform scoring with ``k' = ⌈n/10⌉`` (binary per-sample values)."""
    return topk_uniform(n, max(1, math.ceil(n / 10)))


def from_values(values, n: int | None = None) -> np.ndarray:
    """A user-given vector, validated (non-increasing, non-negative, sums to 1)."""
    return validate_scoring(values, n=n, name="scoring values")


FAMILIES = {
    "topk": topk_uniform,
    "exponential": exponential,
    "linear": linear,
    "power": power,
}


def make_scoring(family: str, n: int, param) -> np.ndarray:
    """Build a scoring vector by family name: ``topk`` (param k'), ``exponential`` (τ),
    ``linear`` (k'), ``power`` (γ) or ``values`` (param = the vector itself)."""
    if family == "values":
        return from_values(param, n)
    if family not in FAMILIES:
        raise ValueError(f"scoring family must be one of {sorted(FAMILIES) + ['values']}, got {family!r}")
    return FAMILIES[family](n, param)
