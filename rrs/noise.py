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
    a = np.asarray(alpha, dtype=float)
    if not np.all(np.isfinite(a)) or np.any(a <= 1):
        raise ValueError(f"alpha must be finite and > 1, got {alpha!r}")
    return a


def _check_radius(radius) -> np.ndarray:
    r = np.asarray(radius, dtype=float)
    if not np.all(np.isfinite(r)) or np.any(r < 0):
        raise ValueError(f"radius must be finite and ≥ 0, got {radius!r}")
    return r


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
        a = _check_alpha(alpha)
        e = np.maximum(np.asarray(epsilon, dtype=float), 0.0)
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
        """Mironov's Prop. 6 for a 1-D shift of ``s`` scales, stable in log space."""
        log_terms = np.logaddexp(np.log(a / (2 * a - 1)) + (a - 1) * s,
                                 np.log((a - 1) / (2 * a - 1)) - a * s)
        return log_terms / (a - 1)

    def rdp_epsilon(self, alpha, radius, norm=1, dim=None):
        """``ε(α, L)`` of Mironov (2017, Prop. 6) at shift ``c L / b`` (``c = N^{1−1/d}``)."""
        a, r = _check_alpha(alpha), _check_radius(radius)
        c = self._l1_factor(norm, dim)
        a, s = np.broadcast_arrays(a, c * r / self.scale)
        return _to_scalar(np.maximum(self._curve(a, s), 0.0))

    def radius_for_epsilon(self, alpha, epsilon, norm=1, dim=None):
        a = _check_alpha(alpha)
        e = np.maximum(np.asarray(epsilon, dtype=float), 0.0)
        a, e = np.broadcast_arrays(a, e)
        # ε(α, s) increases in s and ε ≥ (s − log 2)·... grows linearly; bracket then bisect.
        lo = np.zeros(a.shape)
        hi = np.ones(a.shape)
        for _ in range(200):
            grow = self._curve(a, hi) < e
            if not grow.any():
                break
            hi = np.where(grow, hi * 2.0, hi)
        for _ in range(100):
            mid = 0.5 * (lo + hi)
            below = self._curve(a, mid) <= e
            lo = np.where(below, mid, lo)
            hi = np.where(below, hi, mid)
        c = self._l1_factor(norm, dim)
        return _to_scalar(lo * self.scale / c)
