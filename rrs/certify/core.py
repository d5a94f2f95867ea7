"""Certified top-k robustness of smoothed interpretation maps (method.md §4–§6).

Three certificates, all for the β-top-k property "at least ⌈βk⌉ of the top-k cells stay in
the top-k under every perturbation of ℓ_d size at most L":

* **RDP (exact)** — Liu et al. 2022 with the exact minimal Rényi divergence ``D*_α`` of
  method.md §4 (a one-dimensional threshold problem, solved exactly here). Valid for any
  noise with an RDP curve (Gaussian, Laplace) and any ℓ_d threat.
* **Gaussian-CDF** — Salman et al. 2019 / Levine et al. 2019, per cell, for Gaussian noise
  and maps with values in ``[0, v_1]`` (RRS, Sparsified SmoothGrad, normalised SmoothGrad).
* **Equal-level form** — the closed form obtained by forcing all displaced cells to one
  level. It is *not* a certificate for ``k0 ≥ 2`` (it over-estimates ``D*``); it is
  provided for comparison only and every result produced from it says so.

Each certificate exists in a *plug-in* version (treating the Monte Carlo map as the exact
expectation) and a *finite-sample* version that holds with probability ≥ 1 − η over the
sampling, using simultaneous per-cell confidence intervals (§5).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

import numpy as np
import torch
from scipy import stats as _stats

from .. import checks
from ..noise import Gaussian, Noise, check_norm
from ..settings import SCHEMES, CertifySettings
from ..smoothing import CellStats
from .stable import divergence_at

__all__ = [
    "min_renyi_divergence", "equal_level_divergence", "displaced_count",
    "Certificate", "CellCertificate", "CellStats", "CertificationReport",
    "certified_radius", "certified_radius_from_bounds", "cell_radii", "cell_radii_from_bounds",
    "certified_region", "probability_bounds", "gaussian_cdf_overlap", "gaussian_cdf_radius", "gaussian_cdf_cell_radii",
    "equal_level_radius", "certify", "DEFAULT_ALPHAS", "SCHEMES", "one_sided_bounds", "merge_stats",
]

#: Rényi orders searched for the RDP certificate; any order gives a sound bound, the grid
#: only decides how close to the supremum over α the reported radius is.
DEFAULT_ALPHAS = 1.0 + np.geomspace(1e-3, 2e3, 72)


# --------------------------------------------------------------------------- validation

def _as_prob(p, name="p") -> np.ndarray:
    if isinstance(p, torch.Tensor):
        p = p.detach().cpu().double().numpy()
    arr = np.asarray(p, dtype=float)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be a 1-D probability vector, got shape {arr.shape}")
    if arr.size < 2:
        raise ValueError(f"{name} must have at least 2 cells")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} has non-finite entries")
    if np.any(arr < -1e-12):
        raise ValueError(f"{name} has negative entries")
    total = arr.sum()
    if abs(total - 1.0) > 1e-6:
        raise ValueError(f"{name} must sum to 1 (a probability vector), sums to {total:.6g}")
    return np.clip(arr, 0.0, None) / total


def _check_k(k, n) -> int:
    return checks.integer("k", k, low=1, high=n - 1)


def _check_beta(beta) -> float:
    return checks.fraction("beta", beta)


def _check_alpha(alpha) -> float:
    return float(checks.array("alpha", alpha, above=1.0))


def _alphas(alphas) -> np.ndarray:
    """The Rényi orders to search (default :data:`DEFAULT_ALPHAS`): a non-empty set of α > 1."""
    if alphas is None:
        return DEFAULT_ALPHAS
    a = checks.array("alphas", np.atleast_1d(alphas), above=1.0)
    if a.size == 0:
        raise ValueError("alphas must hold at least one Rényi order α > 1")
    return a


def displaced_count(k: int, beta: float) -> int:
    """``k0 = k − ⌈βk⌉ + 1``: how many top-k cells must leave to break β-top-k robustness."""
    beta = _check_beta(beta)
    # The small tolerance keeps e.g. beta=0.3, k=10 at ⌈3⌉ = 3 despite float error.
    return k - int(math.ceil(beta * k - 1e-9)) + 1


def _sorted_desc(p: np.ndarray) -> np.ndarray:
    """Indices sorting ``p`` from largest to smallest, ties broken by index (method.md §1)."""
    return np.lexsort((np.arange(p.size), -p))


# --------------------------------------------------------------------- D*_α (the core)

class _Threshold:
    """``min_r D_α(Q_r ‖ P)`` where ``A`` cells are clipped down to ``r`` and ``B`` cells raised.

    ``Q_r ∝ q̃`` with ``q̃_a = min(p_a, r)``, ``q̃_b = max(p_b, r)`` and the remaining mass
    ``rest`` unchanged (method.md §4). On each interval between consecutive values of
    ``A ∪ B`` the active sets are fixed and the objective
    ``(log(C + S r^α) − α log(C + m r)) / (α − 1)`` has a single stationary point
    ``r* = (m/S)^{1/(α−1)}``; the exact minimum is the least value over all breakpoints and
    all in-interval stationary points. Everything is in log space, so tiny ``p`` and large
    ``α`` do not overflow.
    """

    def __init__(self, a_vals, b_vals, rest: float):
        self.a = np.sort(np.asarray(a_vals, dtype=float))[::-1]   # descending
        self.b = np.sort(np.asarray(b_vals, dtype=float))          # ascending
        self.rest = max(float(rest), 0.0)
        self.broken = self.b[0] >= self.a[0]  # some B already ties or beats all of A
        if self.broken:
            return
        lo, hi = self.b[0], self.a[0]
        v = np.unique(np.concatenate([self.a, self.b]))
        self.points = v[(v >= lo) & (v <= hi)]
        with np.errstate(divide="ignore"):
            self.log_a = np.log(self.a)
            self.log_b = np.log(self.b)
            self.log_points = np.log(self.points)
        self.sum_a = np.concatenate([[0.0], np.cumsum(self.a)])
        self.sum_b = np.concatenate([[0.0], np.cumsum(self.b)])
        a_asc = self.a[::-1]
        # active counts at a breakpoint r: A cells strictly above r, B cells strictly below r
        self.ia_pt = self.a.size - np.searchsorted(a_asc, self.points, side="right")
        self.ib_pt = np.searchsorted(self.b, self.points, side="left")
        # active counts inside the interval (points[t], points[t+1])
        self.ia_iv = self.a.size - np.searchsorted(a_asc, self.points[:-1], side="right")
        self.ib_iv = np.searchsorted(self.b, self.points[:-1], side="right")

    def _log_r_star(self, alpha, lse_a, lse_b):
        """Stationary point (log) of each interval's objective: ``(m/S)^{1/(α−1)}``."""
        ia, ib = self.ia_iv, self.ib_iv
        log_s = np.logaddexp(lse_a[ia], lse_b[ib])
        with np.errstate(divide="ignore", invalid="ignore"):
            return (np.log(ia + ib) - log_s) / (alpha - 1.0)

    def at(self, alpha: float, r) -> np.ndarray:
        """The objective ``D_α(Q_r‖P)`` at thresholds ``r`` (stable form, see ``stable``)."""
        r = np.atleast_1d(np.asarray(r, dtype=float))
        qa = np.minimum(self.a[None, :], r[:, None])
        qb = np.maximum(self.b[None, :], r[:, None])
        p = np.concatenate([np.broadcast_to(self.a, qa.shape), np.broadcast_to(self.b, qb.shape)], 1)
        q = np.concatenate([qa, qb], 1)
        return divergence_at(p, q, self.rest, alpha)

    def argmin(self, alpha: float) -> np.ndarray:
        """Candidate thresholds that include the exact minimiser.

        On the interval ``(points[t], points[t+1])`` the objective's derivative has the sign
        of ``r − r*_t``; as ``r`` crosses a breakpoint a cell equal to ``r`` enters or leaves
        the power mean ``r*``, which moves it towards ``r`` without crossing it. So the sign
        of ``r − r*(r)`` changes once (from − to +): the objective is quasi-convex in ``r`` and
        its minimiser lies in the first interval not decreasing throughout. Neighbouring
        candidates are returned too, so a comparison decided by rounding cannot lose it.
        """
        if self.points.size == 1:
            return self.points.copy()
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            lse_a = np.concatenate([[-np.inf], np.logaddexp.accumulate((1.0 - alpha) * self.log_a)])
            lse_b = np.concatenate([[-np.inf], np.logaddexp.accumulate((1.0 - alpha) * self.log_b)])
        lrs = self._log_r_star(alpha, lse_a, lse_b)
        lrs = np.where(np.isnan(lrs), -np.inf, lrs)
        decreasing = lrs >= self.log_points[1:]
        t = int(np.argmin(decreasing)) if not decreasing.all() else self.points.size - 1
        cands = [self.points[max(t - 1, 0):t + 2]]
        for s in range(max(t - 1, 0), min(t + 2, lrs.size)):
            cands.append([np.exp(np.clip(lrs[s], self.log_points[s], self.log_points[s + 1]))])
        return np.unique(np.concatenate(cands))

    def value(self, alpha: float) -> float:
        if self.broken:
            return 0.0
        alpha = float(alpha)
        return max(float(np.min(self.at(alpha, self.argmin(alpha)))), 0.0)


def _split(p_sorted_vals_desc: np.ndarray, k: int, k0: int):
    a = p_sorted_vals_desc[k - k0:k]
    b = p_sorted_vals_desc[k:k + k0]
    return a, b, 1.0 - a.sum() - b.sum()


def _check_k0(k0, k, n) -> int:
    return checks.integer("k0", k0, low=1, high=min(k, n - k))


def min_renyi_divergence(p, k: int, k0: int, alpha: float) -> float:
    """Exact ``D*_α(P; k, k0)``: the least Rényi divergence ``D_α(Q‖P)`` over all ``Q`` that
    push at least ``k0`` of ``P``'s top-``k`` cells out of the top-``k`` (ties count as out).

    Args:
        p: 1-D probability vector (numpy array or torch tensor), ``n ≥ 2`` cells.
        k: size of the top set, ``1 ≤ k ≤ n − 1``.
        k0: cells that must be displaced, ``1 ≤ k0 ≤ min(k, n − k)``.
        alpha: Rényi order, ``> 1``.
    Returns:
        ``D*_α ≥ 0`` (``inf`` when breaking is impossible without creating mass on a
        zero-probability cell).
    """
    p = _as_prob(p)
    k = _check_k(k, p.size)
    k0 = _check_k0(k0, k, p.size)
    alpha = _check_alpha(alpha)
    vals = p[_sorted_desc(p)]
    return _Threshold(*_split(vals, k, k0)).value(alpha)


def equal_level_divergence(p, k: int, k0: int, alpha: float) -> float:
    """The equal-level closed form ``−log(1 − P_S + 2k0·(mean_S p^{1−α})^{1/(1−α)})``.

    NOT a certificate for ``k0 ≥ 2``: it forces all ``2k0`` displaced cells to one level and
    so over-estimates the true minimum ``D*_α`` (method.md §4). Equal to ``D*_α`` for k0 = 1.
    """
    p = _as_prob(p)
    k = _check_k(k, p.size)
    k0 = _check_k0(k0, k, p.size)
    alpha = _check_alpha(alpha)
    a, b, _ = _split(p[_sorted_desc(p)], k, k0)
    return _equal_level(a, b, k0, alpha)


def _equal_level(a, b, k0, alpha) -> float:
    s = np.concatenate([a, b])
    if np.any(s <= 0):
        if np.all(b <= 0) and np.any(a > 0):
            return float("inf")
        return 0.0
    log_mean = np.logaddexp.reduce((1.0 - alpha) * np.log(s)) - math.log(s.size)
    level = math.exp(log_mean / (1.0 - alpha))
    return max(-math.log1p(2 * k0 * level - s.sum()), 0.0)


# ------------------------------------------------------------------------ results

@dataclass(frozen=True)
class Certificate:
    """A certified radius for β-top-k robustness.

    Guarantee (when ``is_certificate``): for every ``x'`` with ``‖x' − x‖_norm < radius``,
    at least ``⌈βk⌉`` of the ``k`` selected cells are in the top-``k`` of the smoothed map at
    ``x'`` — exactly for ``finite_sample=False`` (plug-in: the Monte Carlo map is taken as the
    true expectation) and with probability ≥ ``1 − eta`` over the sampling otherwise.
    """

    kind: str                 # "rdp", "gaussian-cdf" or "equal-level"
    beta: float
    k: int
    k0: int
    radius: float
    norm: float
    alpha: float | None = None       # the Rényi order achieving the radius (RDP forms)
    divergence: float | None = None  # D*_α at that order
    finite_sample: bool = False
    eta: float | None = None
    is_certificate: bool = True
    scheme: str | None = None        # finite-sample: "bonferroni" or "selection" (method.md §5)

    @property
    def unbounded(self) -> bool:
        """``radius == inf``: no perturbation can break the property (plug-in only, e.g. ``D*``
        infinite because breaking needs mass on a zero cell). Show as "unbounded at this T
        (plug-in)", never as a number."""
        return math.isinf(self.radius)

    @property
    def label(self) -> str:
        base = {"rdp": "RDP (exact)", "gaussian-cdf": "Gaussian-CDF",
                "equal-level": "equal-level form"}[self.kind]
        base += " finite-sample" if self.finite_sample else " plug-in"
        if not self.is_certificate:
            base += " (not a certificate for β<1)"
        return base


@dataclass(frozen=True)
class CellCertificate:
    """Per-cell certified radii for the selected top-k cells.

    ``radii[i] > L`` means cell ``i`` provably stays in the top-k under every perturbation
    of norm ``< L`` (plug-in or with probability ≥ 1 − eta, as flagged). Cells outside the
    selected set have radius 0.
    """

    radii: np.ndarray      # (n,) float
    selected: np.ndarray   # (k,) int indices of the top-k cells
    k: int
    norm: float
    finite_sample: bool = False
    eta: float | None = None
    scheme: str | None = None

    @property
    def unbounded(self) -> np.ndarray:
        """Boolean mask (n,) of cells with an infinite radius (plug-in only: e.g. a cell present
        in every sample has an infinite Gaussian-CDF radius). Radii are ``inf`` there, never a
        huge finite number."""
        return np.isinf(self.radii)

    def region(self, radius: float) -> np.ndarray:
        """Boolean mask (n,) of the cells certified at ``radius``."""
        return certified_region(self.radii, radius)


# ------------------------------------------------------------------ radius search

def _radius_from_divergences(noise: Noise, alphas, divs, norm, dim):
    """Largest L over the α grid with ε(α, L) ≤ D*_α; returns (radius, alpha, divergence)."""
    divs = np.asarray(divs, dtype=float)
    # D* = inf (breaking needs mass on a zero cell) gives radius inf, flagged as unbounded
    radii = np.asarray(noise.radius_for_epsilon(alphas, divs, norm=norm, dim=dim), dtype=float)
    i = int(np.argmax(radii))
    return float(radii[i]), float(alphas[i]), float(divs[i])


def _check_noise(noise):
    if not isinstance(noise, Noise):
        raise ValueError(f"noise must be rrs.Gaussian or rrs.Laplace, got {type(noise).__name__}")


def _rdp_radius(problem: _Threshold, noise, norm, dim, alphas):
    divs = [problem.value(a) for a in alphas]
    return _radius_from_divergences(noise, alphas, divs, norm, dim)


def certified_radius(p, k: int, beta: float, noise: Noise, norm=2, dim=None,
                     alphas=None) -> Certificate:
    """Plug-in RDP certified radius of β-top-k robustness for the probability map ``p``.

    Robust at ``L`` iff some ``α > 1`` has ``ε(α, L) < D*_α(p; k, k0)``; the radius is the
    supremum of such ``L`` over the ``alphas`` grid (method.md §4).
    Args:
        p: (n,) probability vector (the RRS map ``m(x)``).
        k, beta: the property; ``k0 = k − ⌈βk⌉ + 1``.
        noise: ``Gaussian`` or ``Laplace`` used for smoothing.
        norm: threat ℓ_d norm (1, 2, any real ≥ 1, or ``inf``); ``dim`` = number of input
            dimensions ``C·H·W``, needed where the RDP curve depends on it.
    """
    p = _as_prob(p)
    k = _check_k(k, p.size)
    _check_noise(noise)
    norm = check_norm(norm)
    return _rdp_plugin(p[_sorted_desc(p)], k, beta, noise, norm, dim, alphas)


def _rdp_plugin(vals_desc, k, beta, noise, norm, dim, alphas) -> Certificate:
    k0 = displaced_count(k, beta)
    alphas = _alphas(alphas)
    radius, alpha, div = _rdp_radius(_Threshold(*_split(vals_desc, k, k0)), noise, norm, dim, alphas)
    return Certificate("rdp", float(beta), k, k0, radius, norm, alpha, div)


def _box_problem(lower, upper, selected, k0) -> _Threshold | None:
    inside = np.zeros(lower.size, dtype=bool)
    inside[selected] = True
    a = np.sort(lower[inside])[:k0]
    b = np.sort(upper[~inside])[::-1][:k0]
    rest = 1.0 - a.sum() - b.sum()
    if rest < 0:
        return None  # the box is too wide to say anything: vacuous
    return _Threshold(a, b, rest)


def _check_bounds(lower, upper, selected, k):
    lower = np.asarray(lower, dtype=float)
    upper = np.asarray(upper, dtype=float)
    if lower.ndim != 1 or lower.shape != upper.shape:
        raise ValueError(f"p_lower and p_upper must be 1-D of the same length, got {lower.shape} and {upper.shape}")
    if not (np.all(np.isfinite(lower)) and np.all(np.isfinite(upper))):
        raise ValueError("p_lower and p_upper must be finite")
    if np.any(lower > upper + 1e-12):
        raise ValueError("p_lower must be ≤ p_upper in every cell")
    k = _check_k(k, lower.size)
    selected = np.asarray(selected, dtype=int).ravel()
    if selected.size != k or np.unique(selected).size != k or selected.min() < 0 or selected.max() >= lower.size:
        raise ValueError(f"selected must hold {k} distinct cell indices in 0..{lower.size - 1}")
    return lower, upper, selected, k


def certified_radius_from_bounds(p_lower, p_upper, selected, k: int, beta: float, noise: Noise,
                                 norm=2, dim=None, alphas=None, eta=None) -> Certificate:
    """Finite-sample RDP radius from simultaneous per-cell intervals (method.md §5).

    If ``[p_lower_i, p_upper_i]`` contain the true map for all cells at once (probability
    ≥ 1 − η), the returned radius certifies ``|top_k(m(x')) ∩ selected| ≥ ⌈βk⌉`` for all
    ``x'`` in the ball with that probability. A radius of 0 means vacuous.
    """
    lower, upper, selected, k = _check_bounds(p_lower, p_upper, selected, k)
    _check_noise(noise)
    norm = check_norm(norm)
    k0 = displaced_count(k, beta)
    if k0 > lower.size - k:
        raise ValueError(f"beta too small: need {k0} cells outside the top-{k}, only {lower.size - k}")
    alphas = _alphas(alphas)
    problem = _box_problem(lower, upper, selected, k0)
    if problem is None:
        return Certificate("rdp", float(beta), k, k0, 0.0, norm, None, 0.0, True, eta)
    radius, alpha, div = _rdp_radius(problem, noise, norm, dim, alphas)
    return Certificate("rdp", float(beta), k, k0, radius, norm, alpha, div, True, eta)


# --------------------------------------------------------------- per-cell radii

def _cell_divergences(u, a, last, rest, alpha):
    """Vectorised per-cell ``D*_α`` (``A = {i}``, ``B`` = the ``k`` strongest competitors).

    ``u``: the ``k + 1`` largest competitor values, descending (plug-in: the map itself;
    finite-sample: upper bounds). For cell ``i``: its value ``a[i]`` (plug-in value or lower
    bound), ``B_i = u[0..last[i]]`` minus ``i`` itself, ``rest[i] = 1 − a_i − Σ B_i``. Cells of
    ``B_i`` at or above ``a_i`` are never raised, so only the tail below ``a_i`` matters and
    ``i``'s own entry never enters it.

    On each interval between consecutive values the objective has one stationary point
    ``r*`` (the power mean of order ``1 − α`` of the active values) and its derivative has
    the sign of ``r − r*``; as ``r`` grows, cells entering or leaving the active set move
    ``r*`` towards ``r``, so the sign changes once: the objective is quasi-convex in ``r``
    and a binary search over intervals finds the minimum exactly.
    """
    u = np.asarray(u, dtype=float)
    a = np.asarray(a, dtype=float)
    last = np.asarray(last, dtype=int)
    kk = u.size - 1
    with np.errstate(divide="ignore", over="ignore", invalid="ignore"):
        log_u = np.log(u)
        w = (1.0 - alpha) * log_u
        wa = (1.0 - alpha) * np.log(a)
        # suffix log-sum-exp / sums over u[t..end] for end = kk (full) and kk - 1 (short)
        def suffix(end):
            lse = np.full(kk + 2, -np.inf)
            sm = np.zeros(kk + 2)
            lse[:end + 1] = np.logaddexp.accumulate(w[:end + 1][::-1])[::-1]
            sm[:end + 1] = np.cumsum(u[:end + 1][::-1])[::-1]
            return lse, sm
        lse_full, sum_full = suffix(kk)
        lse_short, sum_short = suffix(kk - 1) if kk >= 1 else suffix(0)
    full = last == kk
    start = np.searchsorted(-u, -a, side="right")   # u[0..start-1] >= a
    t_lo = np.maximum(start - 1, 0)
    t_hi = last - 1

    def piece(t):
        tt = np.clip(t, 0, kk)
        lse_b = np.where(full, lse_full[tt + 1], lse_short[tt + 1])
        sum_b = np.where(full, sum_full[tt + 1], sum_short[tt + 1])
        m = 1.0 + (last - tt)
        with np.errstate(divide="ignore", over="ignore", invalid="ignore"):
            log_sum = np.logaddexp(wa, lse_b)
            log_r_star = (np.log(m) - log_sum) / (alpha - 1.0)
            top = np.where(tt <= start - 1, np.log(a), log_u[tt])
        const = 1.0 - a - sum_b
        return m, log_sum, const, log_r_star, top

    lo, hi = t_lo.copy(), t_hi.copy()
    for _ in range(int(np.ceil(np.log2(kk + 2))) + 1):
        active = lo < hi
        if not active.any():
            break
        mid = (lo + hi + 1) // 2
        _, _, _, lrs, top = piece(mid)
        decreasing = lrs >= top
        lo = np.where(active & ~decreasing, mid, lo)
        hi = np.where(active & decreasing, mid - 1, hi)
    m, log_sum, const, lrs, top = piece(lo)
    with np.errstate(divide="ignore", over="ignore", invalid="ignore"):
        log_r = np.clip(lrs, log_u[np.clip(lo + 1, 0, kk)], top)
        log_n = np.logaddexp(np.log(np.maximum(const, 0.0)), alpha * log_r + log_sum)
        log_m = np.log(np.maximum(const, 0.0) + m * np.exp(log_r))
        val = (log_n - alpha * log_m) / (alpha - 1.0)
    val = np.where(np.isnan(val), np.inf, val)
    # (log N − α log M) cancels when it is small against its parts (method.md, numerical
    # traps): there, re-evaluate at the same threshold in the stable form, O(k) per cell.
    redo = np.flatnonzero(np.isfinite(val) & ((alpha - 1.0) * val < 1e-4))
    if redo.size:
        val[redo] = _cell_value_stable(u, a[redo], last[redo], lo[redo], np.exp(log_r[redo]), alpha)
    # the weakest competitor has zero mass: only r = 0 (cell i emptied) is finite
    u_last = u[np.clip(last, 0, kk)]
    with np.errstate(divide="ignore"):
        at_zero = -np.log1p(-np.minimum(a, 1.0))
    val = np.where(u_last <= 0, np.minimum(val, at_zero), val)
    val = np.where(start > last, 0.0, val)          # already tied or beaten
    val = np.where(rest < -1e-12, 0.0, val)         # box too wide: vacuous
    return np.maximum(val, 0.0)


def _cell_value_stable(u, a, last, lo, r, alpha, chunk: int = 256):
    """Per-cell objective at threshold ``r`` in the stable form: cell ``i`` lowered to ``r``,
    competitors ``u[lo+1 .. last]`` (those below ``r``) raised to it."""
    idx = np.arange(u.size)
    out = np.empty(a.size)
    for s in range(0, a.size, chunk):
        sl = slice(s, s + chunk)
        mask_b = (idx[None, :] > lo[sl, None]) & (idx[None, :] <= last[sl, None])
        rr = r[sl]
        p = np.concatenate([a[sl, None], np.broadcast_to(u, mask_b.shape)], 1)
        q = np.concatenate([np.minimum(a[sl], rr)[:, None], np.maximum(u[None, :], rr[:, None])], 1)
        mask = np.concatenate([np.ones((mask_b.shape[0], 1), dtype=bool), mask_b], 1)
        rest = 1.0 - a[sl] - np.where(mask_b, u[None, :], 0.0).sum(1)
        out[sl] = divergence_at(p, q, np.maximum(rest, 0.0), alpha, mask)
    return out


def _cell_radius_search(u, a, last, rest, noise, norm, dim, alphas, stride: int = 4):
    """Per-cell radius ``max_α L_i(α)`` over the ``alphas`` grid.

    Two passes: every ``stride``-th order first, then the orders between a cell's best
    coarse neighbours, for that cell only. Any α gives a sound radius, so this only affects
    how close to the grid maximum the result is: a cell's radius is unimodal in α except
    for radii below ~1e-5 noise scales, where D*_α is at float precision near α → 1 (tested
    against the full scan). ``stride=1`` scans the whole grid.
    """
    alphas = _alphas(alphas)
    best = np.zeros(a.size)

    def update(j, cells):
        d = _cell_divergences(u, a[cells], last[cells], rest[cells], alphas[j])
        r = np.asarray(noise.radius_for_epsilon(np.full(d.size, alphas[j]), d, norm=norm, dim=dim))
        better = r > best[cells]
        best[cells[better]] = r[better]
        return better

    everyone = np.arange(a.size)
    coarse = np.unique(np.r_[np.arange(0, alphas.size, max(1, int(stride))), alphas.size - 1])
    best_j = np.full(a.size, coarse[0])
    for j in coarse:
        best_j[everyone[update(j, everyone)]] = j
    if coarse.size < alphas.size:
        pos = np.searchsorted(coarse, best_j)
        lo = coarse[np.maximum(pos - 1, 0)]
        hi = coarse[np.minimum(pos + 1, coarse.size - 1)]
        for j in np.setdiff1d(np.arange(alphas.size), coarse):
            cells = np.flatnonzero((lo < j) & (j < hi))
            if cells.size:
                update(j, cells)
    return best


def cell_radii(p, k: int, noise: Noise, norm=2, dim=None, alphas=None) -> CellCertificate:
    """Plug-in per-cell certified radii for the top-``k`` cells of the probability map ``p``.

    Cell ``i`` leaves the top-k only if ``k`` other cells reach its level; the cheapest such
    set is the ``k`` largest other cells (method.md §4, "per-cell certificate").
    """
    p = _as_prob(p)
    k = _check_k(k, p.size)
    _check_noise(noise)
    norm = check_norm(norm)
    return _cell_radii_sorted(p, _sorted_desc(p), k, noise, norm, dim, alphas)


def _cell_radii_sorted(p, order, k, noise, norm, dim, alphas) -> CellCertificate:
    u = p[order[:k + 1]]
    a = u[:k]
    rest = 1.0 - u.sum() + np.zeros(k)
    radii = _cell_radius_search(u, a, np.full(k, k), rest, noise, norm, dim, alphas)
    out = np.zeros(p.size)
    out[order[:k]] = radii
    return CellCertificate(out, order[:k].copy(), k, norm)


def cell_radii_from_bounds(p_lower, p_upper, selected, k: int, noise: Noise, norm=2, dim=None,
                           alphas=None, eta=None) -> CellCertificate:
    """Finite-sample per-cell radii: cell ``i`` at its lower bound, the ``k`` largest upper
    bounds among all other cells raised (sound with probability ≥ 1 − η when the intervals
    hold simultaneously)."""
    lower, upper, selected, k = _check_bounds(p_lower, p_upper, selected, k)
    _check_noise(noise)
    norm = check_norm(norm)
    n = lower.size
    up_order = np.lexsort((np.arange(n), -upper))
    u = upper[up_order[:k + 1]]
    pos = np.full(n, -1)
    pos[up_order[:k + 1]] = np.arange(k + 1)
    in_top = pos[selected] >= 0
    last = np.where(in_top, k, k - 1)
    b_sum = np.where(in_top, u.sum() - upper[selected], u[:k].sum())
    a = lower[selected]
    rest = 1.0 - a - b_sum
    radii = _cell_radius_search(u, a, last, rest, noise, norm, dim, alphas)
    out = np.zeros(n)
    out[selected] = radii
    return CellCertificate(out, selected.copy(), k, norm, True, eta)


def certified_region(radii, radius: float) -> np.ndarray:
    """Cells certified at ``radius``: ``radii > radius`` (a boolean mask)."""
    radius = float(radius)
    if not math.isfinite(radius) or radius < 0:
        raise ValueError(f"radius must be finite and ≥ 0, got {radius!r}")
    return np.asarray(radii) > radius


# ------------------------------------------------------------ confidence intervals

def _check_eta(eta) -> float:
    return checks.probability("eta", eta)


def _check_stats(stats, name: str = "stats", bounded: bool = False) -> CellStats:
    """Reject statistics that would give a silently wrong certificate, with a clear message."""
    if not isinstance(stats, CellStats):
        raise ValueError(f"{name} must be rrs.certify.CellStats (SmoothResult.stats()), got {type(stats).__name__}")
    mean = np.asarray(stats.mean, dtype=float)
    if mean.ndim != 1 or mean.size < 2:
        raise ValueError(f"{name}.mean must be a 1-D map of at least 2 cells, got shape {mean.shape}")
    if not np.all(np.isfinite(mean)):
        raise ValueError(f"{name}.mean has non-finite values (NaN/inf in the attribution?); "
                         "certificates need a finite map")
    if stats.sq_mean is not None:
        sq = np.asarray(stats.sq_mean, dtype=float)
        if sq.shape != mean.shape or not np.all(np.isfinite(sq)):
            raise ValueError(f"{name}.sq_mean must be finite with the shape of the mean")
    if isinstance(stats.samples, bool) or int(stats.samples) != stats.samples or stats.samples < 1:
        raise ValueError(f"{name}.samples must be an integer ≥ 1, got {stats.samples!r}")
    v1 = stats.value_bound
    if v1 is None:
        if bounded:
            raise ValueError("finite-sample bounds need bounded per-sample values "
                             "(RRS, Sparsified SmoothGrad or normalised SmoothGrad)")
    else:
        if not (math.isfinite(float(v1)) and v1 > 0):
            raise ValueError(f"{name}.value_bound must be finite and > 0, got {v1!r}")
        if np.any(mean < -1e-12) or np.any(mean > float(v1) * (1 + 1e-9) + 1e-15):
            raise ValueError(f"{name}.mean must lie in [0, value_bound = {float(v1):g}] "
                             f"(got {mean.min():.3g}…{mean.max():.3g})")
    return stats


def merge_stats(*parts: CellStats) -> CellStats:
    """Pool the statistics of independent batches of the same map (sample-weighted means)."""
    if not parts:
        raise ValueError("merge_stats needs at least one CellStats")
    for s_ in parts:
        _check_stats(s_)
    n = {np.asarray(s_.mean).size for s_ in parts}
    if len(n) != 1 or len({s_.value_bound for s_ in parts}) != 1 or len({bool(s_.binary) for s_ in parts}) != 1:
        raise ValueError("merge_stats: batches must have the same cells, value_bound and binary flag")
    t = np.array([s_.samples for s_ in parts], dtype=float)
    mean = sum(w * np.asarray(s_.mean, dtype=float) for w, s_ in zip(t, parts)) / t.sum()
    sq = sum(w * np.asarray(s_.sq_mean, dtype=float) for w, s_ in zip(t, parts)) / t.sum()
    return CellStats(mean, sq, int(t.sum()), parts[0].value_bound, parts[0].binary)


def one_sided_bounds(stats: CellStats, level: float, method: str = "auto"):
    """Per-cell one-sided bounds ``(lower, upper)``: each ``lower_i`` (each ``upper_i``) fails
    to hold with probability ≤ ``level`` on its own (no correction across cells).

    The building block of both schemes of method.md §5: Bonferroni uses ``level = η/(2n)``,
    the selection batch ``η/(2k + 1 + k0_max)`` (every certificate of one report at once).
    ``method``: ``"clopper-pearson"`` (exact; needs ``stats.binary``), ``"hoeffding"``
    (``v_1·sqrt(log(1/level)/(2T))``), ``"bernstein"`` (empirical Bernstein, Maurer & Pontil
    2009, ``sqrt(2V log(2/level)/T) + 7 v_1 log(2/level)/(3(T−1))``) or ``"auto"``
    (Clopper–Pearson when binary, else empirical Bernstein).
    """
    _check_stats(stats, bounded=True)
    level = float(level)
    if not 0 < level < 1:
        raise ValueError(f"level must be in (0, 1), got {level!r}")
    mean = np.asarray(stats.mean, dtype=float)
    t, v1 = int(stats.samples), float(stats.value_bound)
    if method == "auto":
        method = "clopper-pearson" if stats.binary else "bernstein"
    if method == "clopper-pearson":
        if not stats.binary:
            raise ValueError("clopper-pearson needs per-sample values in {0, value_bound} (top-k' scoring)")
        x = np.clip(np.rint(mean / v1 * t), 0, t)
        # counts take at most T + 1 values: compute each interval once
        xs, inverse = np.unique(x, return_inverse=True)
        with np.errstate(invalid="ignore"):
            lo = np.where(xs > 0, _stats.beta.ppf(level, xs, t - xs + 1), 0.0)
            hi = np.where(xs < t, _stats.beta.ppf(1 - level, xs + 1, t - xs), 1.0)
        return lo[inverse].reshape(x.shape) * v1, hi[inverse].reshape(x.shape) * v1
    if method == "hoeffding":
        half = v1 * math.sqrt(math.log(1 / level) / (2 * t))
        return np.clip(mean - half, 0, v1), np.clip(mean + half, 0, v1)
    if method == "bernstein":
        if t < 2:
            raise ValueError("empirical Bernstein bounds need at least 2 samples")
        if stats.sq_mean is None:
            raise ValueError("empirical Bernstein bounds need stats.sq_mean (the mean of squared sample "
                             "values); give it, or use bound_method='hoeffding'")
        var = np.maximum(np.asarray(stats.sq_mean, dtype=float) - mean ** 2, 0.0) * t / (t - 1)
        log_term = math.log(2 / level)
        half = np.sqrt(2 * var * log_term / t) + 7 * v1 * log_term / (3 * (t - 1))
        return np.clip(mean - half, 0, v1), np.clip(mean + half, 0, v1)
    raise ValueError(f"method must be auto, clopper-pearson, hoeffding or bernstein, got {method!r}")


def probability_bounds(stats: CellStats, eta: float, method: str = "auto"):
    """Simultaneous ``1 − η`` intervals ``(lower, upper)`` for every cell's expectation.

    Bonferroni over all ``n`` cells (each two-sided at ``η/n``, i.e. :func:`one_sided_bounds`
    at ``η/(2n)`` per side). ``method``: ``"clopper-pearson"`` (exact; needs ``stats.binary``),
    ``"hoeffding"`` (``v_1·sqrt(log(2n/η)/(2T))``), ``"bernstein"`` (empirical Bernstein,
    Maurer & Pontil 2009) or ``"auto"`` (Clopper–Pearson when binary, else empirical Bernstein).
    """
    eta = _check_eta(eta)
    _check_stats(stats, bounded=True)
    return one_sided_bounds(stats, eta / (2 * np.asarray(stats.mean).size), method)


# ------------------------------------------------------------- Gaussian-CDF bound

def _l2_radius(radius, norm, dim):
    """Convert an ℓ_d radius to the ℓ2 radius that contains its ball."""
    d = check_norm(norm)
    return radius * Gaussian(1.0)._l2_factor(d, dim)


def gaussian_cdf_cell_radii(lower, upper, selected, k: int, sigma: float, value_bound: float = 1.0,
                            norm=2, dim=None, eta=None) -> CellCertificate:
    """Per-cell Gaussian-CDF radii (Salman et al. 2019 bound applied per cell, method.md §6).

    For values in ``[0, v_1]`` and ``‖δ‖₂ ≤ L``: ``h_i(x') ≥ v_1 Φ(z⁻_i − L/σ)`` and
    ``h_j(x') ≤ v_1 Φ(z⁺_j + L/σ)`` with ``z^∓ = Φ⁻¹(bound/v_1)``. Cell ``i`` stays in the
    top-k while fewer than ``k`` other cells can reach its lower bound, i.e. while
    ``z⁻_i − L/σ > c_i + L/σ`` with ``c_i`` the ``k``-th largest ``z⁺_j`` over ``j ≠ i``; so its
    radius is ``σ (z⁻_i − c_i) / 2`` in ℓ₂ (converted to the threat norm). Pass plug-in values
    as both bounds, or simultaneous 1 − η intervals for the finite-sample version.
    """
    lower, upper, selected, k = _check_bounds(lower, upper, selected, k)
    sigma = checks.positive("sigma", sigma)
    if not (value_bound and value_bound > 0):
        raise ValueError(f"value_bound must be > 0, got {value_bound!r}")
    z_lo = _stats.norm.ppf(np.clip(lower[selected] / value_bound, 0.0, 1.0))
    z_hi = _stats.norm.ppf(np.clip(upper / value_bound, 0.0, 1.0))
    order = np.lexsort((np.arange(z_hi.size), -z_hi))
    rank = np.empty(z_hi.size, dtype=int)
    rank[order] = np.arange(z_hi.size)
    # k-th largest competitor: skip i itself when it sits among the top k upper bounds
    competitor = np.where(rank[selected] < k, z_hi[order[k]], z_hi[order[k - 1]])
    with np.errstate(invalid="ignore"):
        shift = (z_lo - competitor) / 2.0
    shift = np.where(np.isfinite(shift) | (shift > 0), shift, 0.0)
    radii_l2 = np.maximum(shift, 0.0) * float(sigma)
    out = np.zeros(lower.size)
    out[selected] = radii_l2 / Gaussian(1.0)._l2_factor(check_norm(norm), dim)
    return CellCertificate(out, selected.copy(), k, check_norm(norm), eta is not None, eta)


def gaussian_cdf_overlap(lower, upper, selected, k: int, sigma: float, radius: float,
                         value_bound: float = 1.0, norm=2, dim=None) -> np.ndarray:
    """Boolean mask over ``selected``: cells certified to stay in the top-k at ``radius``."""
    cells = gaussian_cdf_cell_radii(lower, upper, selected, k, sigma, value_bound, norm, dim)
    return certified_region(cells.radii, radius)[cells.selected]


def _radius_for_overlap(cell_radii_sel: np.ndarray, k: int, beta: float) -> float:
    """Largest L at which at least ⌈βk⌉ cells have radius > L: the ⌈βk⌉-th largest radius."""
    need = k - displaced_count(k, beta) + 1
    return float(np.sort(cell_radii_sel)[::-1][need - 1])


def gaussian_cdf_radius(lower, upper, selected, k: int, beta: float, sigma: float,
                        value_bound: float = 1.0, norm=2, dim=None) -> float:
    """Largest radius at which the Gaussian-CDF bound certifies ``⌈βk⌉`` of the ``k`` cells."""
    cells = gaussian_cdf_cell_radii(lower, upper, selected, k, sigma, value_bound, norm, dim)
    return _radius_for_overlap(cells.radii[cells.selected], k, beta)


def equal_level_radius(p, k: int, beta: float, noise: Noise, norm=2, dim=None,
                       alphas=None) -> Certificate:
    """Radius from the equal-level closed form — labelled, NOT a certificate when k0 ≥ 2."""
    p = _as_prob(p)
    k = _check_k(k, p.size)
    norm = check_norm(norm)
    _check_noise(noise)
    return _equal_level_plugin(p[_sorted_desc(p)], k, beta, noise, norm, dim, alphas)


def _equal_level_plugin(vals_desc, k, beta, noise, norm, dim, alphas) -> Certificate:
    k0 = displaced_count(k, beta)
    alphas = _alphas(alphas)
    a_vals, b_vals, _ = _split(vals_desc, k, k0)
    divs = [_equal_level(a_vals, b_vals, k0, a) for a in alphas]
    radius, alpha, div = _radius_from_divergences(noise, alphas, divs, norm, dim)
    return Certificate("equal-level", float(beta), k, k0, radius, norm, alpha, div,
                       is_certificate=(k0 == 1))


# ------------------------------------------------------------------- one report

@dataclass(frozen=True)
class CertificationReport:
    """All certificates of one smoothed map at a list of β values (see :func:`certify`).

    ``selected``: the certified top-k set ``K̂`` of the finite-sample certificates (for
    ``scheme="selection"`` chosen on the selection batch); plug-in certificates certify the
    top-k of the plug-in map (their ``CellCertificate.selected``). ``p_lower``/``p_upper``:
    the per-cell bounds used by the per-cell and Gaussian-CDF certificates; ``set_lower``/
    ``set_upper``: those used by the whole-set RDP certificates (the same arrays for
    ``"bonferroni"``). ``scheme``: ``"bonferroni"`` or ``"selection"`` (method.md §5).
    """

    k: int
    norm: float
    eta: float
    betas: tuple
    selected: np.ndarray
    rdp_plugin: tuple            # Certificate per beta
    rdp_finite: tuple
    cdf_plugin: tuple
    cdf_finite: tuple
    equal_level: tuple
    cells_plugin: CellCertificate | None
    cells_finite: CellCertificate | None
    p_lower: np.ndarray = field(repr=False)
    p_upper: np.ndarray = field(repr=False)
    bound_method: str = "auto"
    cdf_cells_plugin: CellCertificate | None = None
    cdf_cells_finite: CellCertificate | None = None
    scheme: str = "bonferroni"
    selection_samples: int = 0
    estimation_samples: int = 0
    set_lower: np.ndarray | None = field(default=None, repr=False)
    set_upper: np.ndarray | None = field(default=None, repr=False)

    def rows(self):
        """One dict per (certificate, β) for tables and exports (``radius`` may be ``inf``:
        see ``unbounded``)."""
        out = []
        for group in (self.rdp_plugin, self.rdp_finite, self.cdf_plugin, self.cdf_finite, self.equal_level):
            for c in group:
                out.append({"certificate": c.label, "kind": c.kind, "finite_sample": c.finite_sample,
                            "is_certificate": c.is_certificate, "beta": c.beta, "k": c.k, "k0": c.k0,
                            "radius": c.radius, "unbounded": c.unbounded, "alpha": c.alpha, "norm": c.norm,
                            "scheme": c.scheme})
        return out


def certify(stats: CellStats, k: int, noise: Noise, settings: CertifySettings | None = None, *, dim=None,
            selection: CellStats | None = None, bound_method: str = "auto", rrs_map: bool = True,
            alphas=None) -> CertificationReport:
    """Every certificate for one smoothed map (method.md §4–§6).

    Guarantee of the finite-sample certificates: with probability ≥ 1 − η over the sampling,
    for every ``x'`` with ``‖x' − x‖_norm`` below the radius, ``|top_k(m(x')) ∩ K̂| ≥ ⌈βk⌉``
    (whole-set) or cell ``i`` stays in ``top_k(m(x'))`` (per cell). With either scheme all of them
    hold at once, so the best of them may be reported.

    Args:
        stats: per-cell sample statistics (``SmoothResult.stats()``); with
            ``settings.scheme == "selection"`` the *estimation* batch.
        k: the top-k size; ``noise``: the smoothing noise.
        settings: a :class:`rrs.settings.CertifySettings` (default ``CertifySettings()``): the
            threat ``norm``, the failure probability ``eta``, the overlap levels ``betas``,
            ``cell_radii`` (also per-cell radii, plug-in and finite-sample RDP) and the
            ``scheme``: ``"bonferroni"`` (``K̂`` = top-k of ``stats``, two-sided intervals at
            ``η/n`` for every cell) or ``"selection"`` (method.md §5, "separate selection
            batch": ``K̂`` and the ordering come from ``selection``, a batch drawn
            independently of ``stats``; one-sided bounds on ``stats`` at ``η/(2k + 1 + k0_max)``,
            one level for the whole-set RDP, per-cell and Gaussian-CDF certificates).
        dim: the input dimension ``N`` (needed for ℓ_d threats other than ℓ2).
        selection: the selection batch's ``CellStats`` (required for, and only used with,
            the selection scheme; e.g. ``smooth(..., samples=T//8)`` followed by an
            independent ``smooth(..., samples=T − T//8)`` on the same generator:
            :func:`rrs.workflows.certify.sample_run` draws both). The plug-in certificates
            use both batches pooled.
        bound_method: interval family (see :func:`one_sided_bounds`).
        rrs_map: the map is an RRS probability vector (enables the RDP certificates);
            otherwise only the Gaussian-CDF ones are computed (RDP needs ``Σ m = 1``).
        alphas: Rényi orders searched (default :data:`DEFAULT_ALPHAS`).
    """
    settings = CertifySettings() if settings is None else settings
    if not isinstance(settings, CertifySettings):
        raise TypeError(f"settings must be a CertifySettings, got {type(settings).__name__}")
    betas, norm, eta = settings.betas, float(settings.norm), settings.eta
    per_cell, scheme = settings.cell_radii, settings.scheme
    _check_stats(stats, bounded=True)
    eta = _check_eta(eta)
    mean = np.asarray(stats.mean, dtype=float)
    n = mean.size
    k = _check_k(k, n)
    _check_noise(noise)
    norm = check_norm(norm)
    rdp_betas = tuple(b for b in betas if displaced_count(k, b) <= n - k)
    if scheme == "bonferroni":
        if selection is not None:
            raise ValueError("selection= is only used with scheme='selection'")
        plug = stats
        selected = _sorted_desc(mean)[:k]
        lower, upper = probability_bounds(stats, eta, bound_method)
        set_lower, set_upper = lower, upper
        n_sel = 0
    else:
        if selection is None:
            raise ValueError("scheme='selection' needs selection=CellStats of a separate first batch "
                             "(drawn independently of stats)")
        _check_stats(selection, "selection")
        plug = merge_stats(selection, stats)
        selected = _sorted_desc(np.asarray(selection.mean, dtype=float))[:k]
        # One level for every bound the report relies on, so that all its finite-sample
        # statements (whole-set RDP, per-cell, Gaussian-CDF) hold at once and may be combined
        # (e.g. the best of RDP and CDF): lower bounds on the k cells of K̂, upper bounds on
        # the k + 1 largest true cells and on the k0_max largest true cells outside K̂.
        k0_max = max((displaced_count(k, b) for b in rdp_betas), default=0) if rrs_map else 0
        lower, upper = one_sided_bounds(stats, eta / (2 * k + 1 + k0_max), bound_method)
        set_lower, set_upper = lower, upper
        n_sel = int(selection.samples)
    v1 = float(stats.value_bound)
    plug_mean = np.asarray(plug.mean, dtype=float)
    plug_order = _sorted_desc(plug_mean)
    rdp_plugin, rdp_finite, equal = (), (), ()
    cells_plugin = cells_finite = None
    if rrs_map:
        p = _as_prob(plug_mean, "RRS map")
        vals = p[plug_order]
        rdp_plugin = tuple(_rdp_plugin(vals, k, b, noise, norm, dim, alphas) for b in rdp_betas)
        rdp_finite = tuple(replace(certified_radius_from_bounds(set_lower, set_upper, selected, k, b, noise, norm,
                                                                dim, alphas, eta), scheme=scheme)
                           for b in rdp_betas)
        equal = tuple(_equal_level_plugin(vals, k, b, noise, norm, dim, alphas) for b in rdp_betas)
        if per_cell:
            cells_plugin = _cell_radii_sorted(p, plug_order, k, noise, norm, dim, alphas)
            cells_finite = replace(cell_radii_from_bounds(lower, upper, selected, k, noise, norm, dim, alphas, eta),
                                   scheme=scheme)
    cdf_plugin = cdf_finite = ()
    cdf_cells_plugin = cdf_cells_finite = None
    if isinstance(noise, Gaussian):
        sel_plug = plug_order[:k]
        cdf_cells_plugin = gaussian_cdf_cell_radii(plug_mean, plug_mean, sel_plug, k, noise.sigma, v1, norm, dim)
        cdf_cells_finite = replace(gaussian_cdf_cell_radii(lower, upper, selected, k, noise.sigma, v1, norm, dim,
                                                           eta=eta), scheme=scheme)
        cdf_plugin = tuple(Certificate("gaussian-cdf", b, k, displaced_count(k, b),
                                       _radius_for_overlap(cdf_cells_plugin.radii[sel_plug], k, b), norm)
                           for b in betas)
        cdf_finite = tuple(Certificate("gaussian-cdf", b, k, displaced_count(k, b),
                                       _radius_for_overlap(cdf_cells_finite.radii[selected], k, b), norm,
                                       finite_sample=True, eta=eta, scheme=scheme) for b in betas)
    return CertificationReport(k, norm, eta, betas, selected, rdp_plugin, rdp_finite, cdf_plugin,
                               cdf_finite, equal, cells_plugin, cells_finite, lower, upper, bound_method,
                               cdf_cells_plugin, cdf_cells_finite, scheme, n_sel, int(stats.samples),
                               set_lower, set_upper)
