"""Per-cell "stays important" certificate (method.md §6b; Anani et al., ICML 2025).

For a cell with smoothed score ``h_i ∈ [0, 1]`` (for RRS ``m_i / v_1``; for top-k' uniform
scoring the share of noise draws with the cell in the top-k') and a lower bound
``h_i^lo``, every ``x'`` within the radius keeps ``h_i(x') > τ``. This says nothing about the
cell's rank among the smoothed map's cells (that is §4); it is a different, weaker question
with much larger radii at small ``T``.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
from scipy import stats as _stats

from .. import checks
from ..noise import Gaussian, Noise, check_norm
from .core import CellStats, _alphas, _check_eta, _check_noise, _check_stats, certified_region, one_sided_bounds

__all__ = ["ImportanceCertificate", "stays_important"]


@dataclass(frozen=True)
class ImportanceCertificate:
    """Per-cell radii of "``h_i(x') > τ`` for every ``‖x' − x‖_norm < radii[i]``".

    ``score``: ``h = mean / v_1``; ``lower``: the bound it was certified from (``score`` for
    the plug-in version); ``bound``: ``"gaussian-cdf"`` (Gaussian noise) or ``"rdp"``
    (probability preservation, any noise with an RDP curve); ``interval``: the
    confidence-interval family or ``"plug-in"``; ``eta``: failure probability (``None`` for
    plug-in); ``simultaneous``: the bounds hold for all cells at once (Bonferroni over ``n``)
    rather than per cell. ``radii`` is ``inf`` only for plug-in cells with ``h = 1``
    (``unbounded``).
    """

    radii: np.ndarray
    score: np.ndarray = field(repr=False)
    lower: np.ndarray = field(repr=False)
    tau: float = 0.5
    bound: str = "gaussian-cdf"
    interval: str = "plug-in"
    eta: float | None = None
    simultaneous: bool = True
    norm: float = 2.0
    finite_sample: bool = False

    @property
    def unbounded(self) -> np.ndarray:
        return np.isinf(self.radii)

    def region(self, radius: float) -> np.ndarray:
        """Boolean mask (n,) of cells certified to stay important at ``radius``."""
        return certified_region(self.radii, radius)


def stays_important(stats: CellStats, noise: Noise, tau: float = 0.5, eta: float = 0.05,
                    method: str = "auto", norm=2, dim=None, *, finite_sample: bool = True,
                    simultaneous: bool = True, bound: str = "auto", alphas=None) -> ImportanceCertificate:
    """Per-cell radii within which each cell's smoothed score stays above ``tau``.

    Guarantee (``finite_sample=True``): with probability ≥ 1 − η over the sampling, for every
    cell ``i`` (all at once when ``simultaneous``) and every ``x'`` with
    ``‖x' − x‖_norm < radii[i]``: ``h_i(x') > τ``, where ``h_i = E[per-sample value_i] / v_1``.

    * Gaussian noise (``bound="gaussian-cdf"``, the default for it): ``radius_i =
      σ(Φ⁻¹(h_i^lo) − Φ⁻¹(τ))`` in ℓ2, 0 when ``h_i^lo ≤ τ`` (Salman et al. 2019; any
      ``[0,1]``-valued smoothed function); ℓ_d with d > 2 through ``‖·‖₂ ≤ N^{1/2−1/d}‖·‖_d``.
    * Any noise with an RDP curve (``bound="rdp"``, the default for Laplace): RDP probability
      preservation ``p ≤ (e^ε q)^{(α−1)/α}`` (Mironov 2017, Prop. 10) for the post-processed
      event "Bernoulli(ρ_i/v_1) = 1" gives ``h_i(x') ≥ (h_i^lo)^{α/(α−1)} e^{−ε(α, L)}``; for
      its complement it gives ``1 − h_i(x') ≤ (e^{ε(α, L)} (1 − h_i^lo))^{(α−1)/α}``. Both are
      sound, so ``radius_i = sup_α max {L : ε(α, L) < (α/(α−1)) log h_i^lo − log τ},
      {L : ε(α, L) < (α/(α−1)) log(1 − τ) − log(1 − h_i^lo)}`` (the complement reaches the
      exact one-dimensional Laplace radius as α → ∞; see :func:`_rdp_radii`).

    Args:
        stats: per-cell statistics (bounded values, ``value_bound = v_1``).
        noise: the smoothing noise; ``tau``: threshold in ``(0, 1)``, default ½.
        eta, method: failure probability and interval family (one-sided lower bounds,
            Clopper–Pearson for binary samples, else empirical Bernstein; see
            :func:`rrs.certify.one_sided_bounds`), at ``η/n`` each when ``simultaneous``.
        norm, dim: threat model; ``finite_sample=False`` gives the plug-in version.
        alphas: Rényi orders for ``bound="rdp"``.
    """
    _check_stats(stats, bounded=True)
    _check_noise(noise)
    norm = check_norm(norm)
    tau = checks.probability("tau", tau)
    if bound == "auto":
        bound = "gaussian-cdf" if isinstance(noise, Gaussian) else "rdp"
    if bound not in ("gaussian-cdf", "rdp"):
        raise ValueError(f"bound must be 'auto', 'gaussian-cdf' or 'rdp', got {bound!r}")
    if bound == "gaussian-cdf" and not isinstance(noise, Gaussian):
        raise ValueError("the Gaussian-CDF bound holds for Gaussian noise only; use bound='rdp'")
    v1 = float(stats.value_bound)
    score = np.clip(np.asarray(stats.mean, dtype=float) / v1, 0.0, 1.0)
    n = score.size
    if finite_sample:
        eta = _check_eta(eta)
        if method == "auto":
            method = "clopper-pearson" if stats.binary else "bernstein"
        lower = np.clip(one_sided_bounds(stats, eta / n if simultaneous else eta, method)[0] / v1, 0.0, 1.0)
        interval = method
    else:
        lower, interval, eta = score.copy(), "plug-in", None
    if bound == "gaussian-cdf":
        with np.errstate(invalid="ignore"):
            shift = _stats.norm.ppf(lower) - _stats.norm.ppf(tau)
        radii = np.where(lower > tau, shift, 0.0) * noise.sigma / noise._l2_factor(norm, dim)
    else:
        radii = _rdp_radii(lower, tau, noise, norm, dim, alphas)
    return ImportanceCertificate(radii, score, lower, tau, bound, interval, eta, bool(simultaneous), norm,
                                 bool(finite_sample))


def _rdp_radii(lower, tau, noise, norm, dim, alphas):
    """Per-cell radii from RDP probability preservation, the larger of two sound bounds.

    With ``ε = ε(α, L)`` and ``E`` the post-processed event "Bernoulli(ρ_i/v_1) = 1"
    (``P_x(E) = h ≥ h^lo``), Mironov's Prop. 10 in both directions (the noise is symmetric, so
    ``D_α`` is the same for ``x → x'`` and ``x' → x``) gives two valid conditions for
    ``h(x') > τ``:

    * the event: ``h(x') ≥ (h^lo)^{α/(α−1)} e^{−ε} > τ`` ⇔ ``ε < α/(α−1) log h^lo − log τ``;
    * its complement: ``1 − h(x') ≤ (e^ε (1 − h^lo))^{(α−1)/α} < 1 − τ`` ⇔
      ``ε < α/(α−1) log(1 − τ) − log(1 − h^lo)``.

    The complement is much tighter for ``h`` near 1 (as ``α → ∞`` it reaches the exact
    one-dimensional Laplace radius); the event can win for ``h`` just above ``τ``.
    """
    alphas = _alphas(alphas)
    values, inverse = np.unique(lower, return_inverse=True)   # at most T + 1 values for CP
    radii = np.zeros(values.size)
    live = values > tau
    if live.any():
        v = values[live]
        a = alphas[None, :]
        power = a / (a - 1.0)
        with np.errstate(divide="ignore"):
            event = power * np.log(v)[:, None] - math.log(tau)                  # ε must stay below
            complement = power * math.log1p(-tau) - np.log1p(-v)[:, None]
        budget = np.concatenate([event, complement], axis=1)
        budget = np.where(np.isposinf(budget), np.inf, budget)
        ok = budget > 0
        r = np.zeros(budget.shape)
        if ok.any():
            aa = np.broadcast_to(np.concatenate([a, a], axis=1), budget.shape)[ok]
            r[ok] = np.asarray(noise.radius_for_epsilon(aa, budget[ok], norm=norm, dim=dim), dtype=float)
        radii[live] = r.max(1)
        radii[live & (values >= 1.0)] = np.inf
    return radii[inverse].reshape(lower.shape)
