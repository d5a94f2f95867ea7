"""Rényi divergences without cancellation near ``α → 1`` (method.md "Numerical traps").

The textbook form ``(log N − α log M)/(α − 1)`` of the threshold objective (method.md §4)
subtracts two numbers close to 0 and divides by ``α − 1``: for relative gaps of 1e-5…1e-8
between competing cells an audit found radii up to 760× too large. Here the divergence is
written as a sum of *non-negative* terms,

    Σ_i p_i x_i^α = 1 + Σ_i p_i f(x_i),   f(x) = x^α − 1 − α (x − 1) ≥ 0,   x_i = q_i / p_i,

(using ``Σ p_i (x_i − 1) = 0``), so ``D_α(Q‖P) = log1p(Σ_i p_i f(x_i)) / (α − 1)``. Each
``f(1 + u)`` is computed to a few ulps relative: by its binomial series
``(α − 1) Σ_{j≥2} [α(α−2)…(α−j+1)/j!] u^j`` when ``|u|, |αu| ≤ ½`` (no cancellation: the
``α − 1`` factor is exact), else as ``expm1(α log1p u) − αu`` (relative error at most about
``4·eps/(α − 1)`` there), in log space so that large ``α`` does not overflow. A sum of
non-negative terms has no cancellation, so the divergence carries the same relative
accuracy (tested against 60-digit arithmetic).
"""
from __future__ import annotations

import numpy as np

__all__ = ["log_f", "divergence_at"]

_SERIES_TERMS = 90


def log_f(u, alpha: float) -> np.ndarray:
    """``log f(1 + u)`` with ``f(x) = x^α − 1 − α(x − 1)``, elementwise, for ``u ≥ −1``.

    ``−inf`` where ``u == 0``; finite (no overflow) up to ``u = 1e300``.
    """
    u = np.asarray(u, dtype=float)
    alpha = float(alpha)
    out = np.full(u.shape, -np.inf)
    series = (np.abs(u) <= 0.5) & (np.abs(alpha * u) <= 0.5)
    if series.any():
        us = u[series]
        term = 0.5 * alpha * us * us
        total = term.copy()
        for j in range(2, _SERIES_TERMS):
            term = term * ((alpha - j) / (j + 1)) * us
            total = total + term
            if not np.any(np.abs(term) > 1e-18 * np.abs(total)):
                break
        with np.errstate(divide="ignore"):
            out[series] = np.log(alpha - 1.0) + np.log(np.maximum(total, 0.0))
    direct = ~series
    if direct.any():
        ud = u[direct]
        with np.errstate(divide="ignore", over="ignore", invalid="ignore"):
            y = alpha * np.log1p(ud)
            small = np.log(np.maximum(np.expm1(np.minimum(y, 600.0)) - alpha * ud, 0.0))
            # f = x^α (1 − (1 + αu) x^{−α}); the bracket is in (0, 1] since f ≥ 0
            large = y + np.log1p(-np.minimum((1.0 + alpha * ud) * np.exp(-y), 1.0))
        out[direct] = np.where(y > 600.0, large, small)
    return out


def divergence_at(p_cells, q_cells, rest, alpha: float, mask=None) -> np.ndarray:
    """Stable ``D_α(Q‖P)`` for a batch of problems, one per row.

    ``P`` is the row of ``p_cells`` plus ``rest`` (mass on cells left unchanged, lumped:
    they all share ``x = 1/M``), with ``Σ p_cells + rest = 1``; ``Q ∝ q̃`` with ``q̃ = q_cells``
    on the changed cells and ``q̃ = p`` elsewhere. ``mask`` (same shape) marks the entries of
    ``p_cells`` that exist (rows may have different numbers of changed cells). Returns
    ``inf`` where ``Q`` puts mass on a zero-probability cell or cannot be normalised.
    """
    p = np.atleast_2d(np.asarray(p_cells, dtype=float))
    q = np.atleast_2d(np.asarray(q_cells, dtype=float))
    mask = np.ones(p.shape, dtype=bool) if mask is None else np.atleast_2d(np.asarray(mask, dtype=bool))
    rest = np.broadcast_to(np.asarray(rest, dtype=float), p.shape[:1]).copy()
    p = np.where(mask, p, 0.0)
    q = np.where(mask, q, 0.0)
    diff = q - p
    dm = diff.sum(1)
    m = 1.0 + dm
    infinite = np.any(mask & (p <= 0) & (q > 0), axis=1) | (m <= 0)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        u = (np.where(p > 0, diff / np.where(p > 0, p, 1.0), 0.0) - dm[:, None]) / m[:, None]
        lt = np.where(mask & (p > 0), np.log(np.where(p > 0, p, 1.0)) + log_f(u, alpha), -np.inf)
        lr = np.where(rest > 0, np.log(np.where(rest > 0, rest, 1.0)) + log_f(-dm / m, alpha), -np.inf)
        log_s = np.logaddexp(np.logaddexp.reduce(lt, axis=1) if lt.shape[1] else -np.inf, lr)
        val = np.where(log_s > 30.0, log_s + np.log1p(np.exp(-np.minimum(log_s, 700.0))),
                       np.log1p(np.exp(np.minimum(log_s, 30.0)))) / (alpha - 1.0)
    val = np.where(infinite | np.isnan(val), np.inf, val)
    return np.maximum(val, 0.0)
