"""Noise distributions for smoothing and their Rényi-DP curves (method.md §3).

Each noise knows how to sample itself (with an explicit ``torch.Generator``) and its RDP
curve ``ε(α, L)``: the largest Rényi divergence of order ``α`` between the noise and the
noise shifted by any vector of ℓ_d norm at most ``L``. All sizes are in pixel units.

References: I. Mironov, *Rényi Differential Privacy*, CSF 2017 (Gaussian and Laplace
mechanisms); A. Liu et al., *Certifiably Robust Interpretation via Rényi Differential
Privacy*, Artificial Intelligence 2022.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from . import checks

__all__ = ["Gaussian", "Laplace", "Noise", "check_norm"]


def check_norm(norm) -> float:
    """Return ``norm`` as a float ``d ≥ 1`` (``inf`` allowed) or raise a clear ValueError."""
    try:
        d = float(norm)
    except (TypeError, ValueError):
        raise ValueError(f"norm must be a number ≥ 1 or 'inf', got {norm!r}") from None
    if math.isnan(d) or d < 1:
        raise ValueError(f"norm must be ≥ 1 (1, 2, any real d ≥ 1 or inf), got {norm!r}")
    return d


def _check_alpha(alpha) -> np.ndarray:
    return checks.array("alpha", alpha, above=1.0)


def _check_radius(radius) -> np.ndarray:
    return checks.array("radius", radius, at_least=0.0)


def _dim_factor(norm: float, exponent_at_inf: float, threshold: float, dim) -> float:
    """Factor ``c`` with ``‖δ‖_ref ≤ c·‖δ‖_d`` for the reference norm of a noise.

    For ``d ≤ threshold`` the reference norm is dominated by ``‖·‖_d`` (``c = 1``); above it,
    Hölder gives ``c = N^{exponent_at_inf − 1/d}`` with ``N`` input dimensions.
    """
    if norm <= threshold:
        return 1.0
    if dim is None:
        raise ValueError(f"dim (number of input dimensions) is needed for the ℓ_{norm:g} threat model")
    if int(dim) != dim or dim < 1:
        raise ValueError(f"dim must be a positive integer, got {dim!r}")
    inv_d = 0.0 if math.isinf(norm) else 1.0 / norm
    return float(dim) ** (exponent_at_inf - inv_d)


def _to_scalar(x: np.ndarray):
    return float(x) if np.ndim(x) == 0 else x


class Noise:
    """Base class: a zero-mean noise with a sampler and an RDP curve."""

    name = "noise"

    def sample(self, shape, generator: torch.Generator | None = None, device=None,
               dtype=torch.float32) -> torch.Tensor:
        raise NotImplementedError

    def rdp_epsilon(self, alpha, radius, norm=2, dim=None):
        raise NotImplementedError

    def radius_for_epsilon(self, alpha, epsilon, norm=2, dim=None):
        """Largest ``L`` with ``ε(α, L) ≤ epsilon`` (vectorised over ``alpha``/``epsilon``)."""
        raise NotImplementedError

    @property
    def scale_value(self) -> float:
        raise NotImplementedError


def _generator_device(generator, device):
    return generator.device if generator is not None else (device or "cpu")


@dataclass(frozen=True)
class Gaussian(Noise):
    """Isotropic Gaussian noise ``N(0, σ² I)`` in pixel units.

    Args:
        sigma: standard deviation per input dimension, > 0.
    """

    sigma: float
    name = "gaussian"

    def __post_init__(self):
        if not (isinstance(self.sigma, (int, float)) and math.isfinite(self.sigma) and self.sigma > 0):
            raise ValueError(f"sigma must be a finite number > 0, got {self.sigma!r}")

    @property
    def scale_value(self) -> float:
        return float(self.sigma)

    def sample(self, shape, generator=None, device=None, dtype=torch.float32):
        """Draw noise of ``shape``; drawn on the generator's device, returned on ``device``."""
        z = torch.randn(shape, generator=generator, device=_generator_device(generator, device), dtype=dtype)
        return (z * self.sigma).to(device) if device is not None else z * self.sigma

    def _l2_factor(self, norm, dim) -> float:
        return _dim_factor(check_norm(norm), 0.5, 2.0, dim)

    def rdp_epsilon(self, alpha, radius, norm=2, dim=None):
        """``ε(α, L) = α (c L)² / (2σ²)`` with ``c = 1`` for ``d ≤ 2`` else ``N^{1/2−1/d}``."""
        a, r = _check_alpha(alpha), _check_radius(radius)
        c = self._l2_factor(norm, dim)
        return _to_scalar(a * (c * r) ** 2 / (2.0 * self.sigma ** 2))

    def radius_for_epsilon(self, alpha, epsilon, norm=2, dim=None):
        """Largest ``L`` with ``ε(α, L) ≤ epsilon`` (``inf`` for ``epsilon = inf``)."""
        a = _check_alpha(alpha)
        e = np.asarray(epsilon, dtype=float)
        if np.any(np.isnan(e)):
            raise ValueError("epsilon must not be NaN")
        e = np.maximum(e, 0.0)
        c = self._l2_factor(norm, dim)
        return _to_scalar(self.sigma * np.sqrt(2.0 * e / a) / c)


@dataclass(frozen=True)
class Laplace(Noise):
    """I.i.d. Laplace noise with scale ``b`` per input dimension (pixel units).

    Args:
        scale: the Laplace scale ``b`` (standard deviation ``√2·b``), > 0.
    """

    scale: float
    name = "laplace"

    def __post_init__(self):
        if not (isinstance(self.scale, (int, float)) and math.isfinite(self.scale) and self.scale > 0):
            raise ValueError(f"scale must be a finite number > 0, got {self.scale!r}")

    @property
    def scale_value(self) -> float:
        return float(self.scale)

    def sample(self, shape, generator=None, device=None, dtype=torch.float32):
        """Draw noise by inverting the CDF of uniform draws (one uniform per value)."""
        u = torch.rand(shape, generator=generator, device=_generator_device(generator, device), dtype=dtype)
        u = u - 0.5
        # 1 - 2|u| lies in (0, 1]; clamp keeps log finite when u == -0.5 exactly.
        z = -self.scale * torch.sign(u) * torch.log1p(-2.0 * u.abs()).clamp_min(-80.0)
        return z.to(device) if device is not None else z

    def _l1_factor(self, norm, dim) -> float:
        return _dim_factor(check_norm(norm), 1.0, 1.0, dim)

    @staticmethod
    def _curve(a: np.ndarray, s: np.ndarray) -> np.ndarray:
        """Mironov's Prop. 6 for a 1-D shift of ``s`` scales, without cancellation near α → 1.

        ``ε = log1p(c (α g₁ + g₂) / (2α − 1)) / c`` with ``c = α − 1``,
        ``g₁ = (e^{cs} − 1 − cs)/c ≥ 0`` and ``g₂ = e^{−αs} − 1 + αs ≥ 0`` (a rearrangement of
        ``log[α/(2α−1) e^{cs} + c/(2α−1) e^{−αs}] / c``: both parts are non-negative, so nothing
        cancels); for large ``cs`` the log-space form, which has no cancellation there.
        """
        a, s = np.broadcast_arrays(np.asarray(a, dtype=float), np.asarray(s, dtype=float))
        c = a - 1.0
        with np.errstate(over="ignore", invalid="ignore"):
            g1 = _exp_minus_1_minus_x(c * s) / c
            g2 = _exp_minus_1_minus_x(-a * s)
            stable = np.log1p(c * (a * g1 + g2) / (2 * a - 1)) / c
            log_terms = np.logaddexp(np.log(a / (2 * a - 1)) + c * s, np.log(c / (2 * a - 1)) - a * s)
            direct = log_terms / c
        return np.where(c * s <= 30.0, stable, direct)

    def _inverse_curve(self, a: np.ndarray, e: np.ndarray) -> np.ndarray:
        """Largest 1-D shift ``s`` (in scales) with ``ε₁(α; s) ≤ e``.

        Bracket: ``max(e, √(2e/α)) ≤ s ≤ √(3e)`` (``e ≤ 1/3``) or ``≤ e + 1``, from
        ``s + e^{−s} − 1 = ε₁(1; s) ≤ ε₁(α; s) ≤ min(s, αs²/2)`` (pure DP and zCDP bounds).
        Newton from the upper end converges monotonically from above (the curve is convex and
        increasing); the result is then nudged down until ``ε₁(α; s) ≤ e`` holds in floating
        point, and never below the proven lower end.
        """
        a, e = np.broadcast_arrays(np.asarray(a, dtype=float), np.asarray(e, dtype=float))
        inf, zero = np.isinf(e), e <= 0
        e = np.where(inf | zero, 1.0, e)
        lo = np.maximum(e, np.sqrt(2 * e / a))
        x = np.maximum(np.where(3 * e <= 1, np.sqrt(3 * e), e + 1.0), lo)
        c = a - 1.0
        for _ in range(40):
            g = -np.expm1(-(2 * a - 1) * x)
            slope = a * g / (a + c * (1 - g))       # dε₁/ds
            step = (self._curve(a, x) - e) / np.maximum(slope, 1e-300)
            x_new = np.maximum(x - np.maximum(step, 0.0), lo)
            done = np.all(x - x_new <= 1e-15 * x)
            x = x_new
            if done:
                break
        for j in range(8):
            bad = self._curve(a, x) > e
            if not bad.any():
                break
            x = np.where(bad, np.maximum(x * (1 - 4e-16 * 10 ** j), lo), x)
        return np.where(inf, np.inf, np.where(zero, 0.0, x))

    def _factors(self, norm, dim):
        """The valid curves for an ℓ_d threat (method.md §3), as ``(kind, factor)`` pairs.

        * ``"l1"``: Mironov's curve at ``N^{1−1/d} L`` (all of an ℓ1 budget on one coordinate is
          the worst case, since the 1-D curve is convex with ε(α, 0) = 0);
        * ``"zcdp"``: ``α (c L)² / (2b²)`` with ``c = 1`` for ``d ≤ 2`` else ``N^{1/2−1/d}``: per
          coordinate ε-DP ⇒ (ε²/2)-zCDP (Bun & Steinke 2016), additive over coordinates;
        * ``"linf"``: ``N · ε₁(α; L/b)``, valid for every ``d`` since ``|δ_i| ≤ ‖δ‖_d ≤ L``; exact
          for ``d = ∞`` (every coordinate shifted by ``L``).
        """
        d = check_norm(norm)
        if dim is not None and (isinstance(dim, bool) or int(dim) != dim or dim < 1):
            raise ValueError(f"dim must be a positive integer, got {dim!r}")
        out = []
        if d <= 1 or dim is not None:
            out.append(("l1", self._l1_factor(d, dim)))
        if d <= 2 or dim is not None:
            out.append(("zcdp", _dim_factor(d, 0.5, 2.0, dim)))
        if dim is not None and d > 1:
            out.append(("linf", float(dim)))
        if not out:
            raise ValueError(f"dim (number of input dimensions) is needed for the ℓ_{d:g} threat model")
        return out

    def rdp_epsilon(self, alpha, radius, norm=1, dim=None):
        """``ε(α, L)``: the minimum of the valid curves for the ℓ_d threat (method.md §3).

        ℓ1: Mironov (2017, Prop. 6), exact. ℓ2: ``min(α L²/(2b²), ℓ1 conversion, ℓ∞ bound)``
        (``dim`` optional: without it only the zCDP curve). ℓ∞: exactly ``N·ε₁(α; L/b)``.
        """
        a, r = _check_alpha(alpha), _check_radius(radius)
        a, s = np.broadcast_arrays(a, r / self.scale)
        best = np.full(a.shape, np.inf)
        for kind, c in self._factors(norm, dim):
            if kind == "l1":
                eps = self._curve(a, c * s)
            elif kind == "zcdp":
                eps = a * (c * s) ** 2 / 2.0
            else:
                eps = c * self._curve(a, s)
            best = np.minimum(best, eps)
        return _to_scalar(np.maximum(best, 0.0))

    def radius_for_epsilon(self, alpha, epsilon, norm=1, dim=None):
        """Largest ``L`` with ``ε(α, L) ≤ epsilon`` for the minimum curve of :meth:`rdp_epsilon`:
        the largest of the curves' own inverses (``inf`` for ``epsilon = inf``)."""
        a = _check_alpha(alpha)
        e = np.asarray(epsilon, dtype=float)
        if np.any(np.isnan(e)):
            raise ValueError("epsilon must not be NaN")
        e = np.maximum(e, 0.0)
        a, e = np.broadcast_arrays(a, e)
        best = np.zeros(a.shape)
        for kind, c in self._factors(norm, dim):
            if kind == "l1":
                s = self._inverse_curve(a, e) / c
            elif kind == "zcdp":
                s = np.sqrt(2.0 * e / a) / c
            else:
                s = self._inverse_curve(a, e / c)
            best = np.maximum(best, s)
        return _to_scalar(best * self.scale)


def _exp_minus_1_minus_x(x: np.ndarray) -> np.ndarray:
    """``e^x − 1 − x`` to a few ulps relative (Taylor series for |x| < ½)."""
    x = np.asarray(x, dtype=float)
    shape = x.shape
    x = x.reshape(-1)
    with np.errstate(over="ignore"):
        out = np.expm1(x) - x
    small = np.abs(x) < 0.5
    if small.any():
        xs = x[small]
        term = xs * xs / 2.0
        total = term.copy()
        for j in range(3, 20):   # 0.5^19/19! < 1e-22
            term = term * xs / j
            total = total + term
        out[small] = total
    return out.reshape(shape)
