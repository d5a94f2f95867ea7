"""The earliest sample count at which a finite-sample certificate can be non-empty.

A finite-sample top-k certificate (method.md §5) needs, for some certified cell ``i``, a lower
confidence bound on ``m_i`` strictly above the upper bound of its ``k``-th strongest competitor:
if the bounds overlap, the confidence box holds a map in which ``i`` leaves the top-k without
any perturbation, so its radius — and every whole-set radius that needs ``i`` — is 0. This is
necessary for every certificate of :func:`rrs.certify.certify` (RDP and Gaussian-CDF, whole set
and per cell), and for the Gaussian-CDF per-cell certificate it is also sufficient.

With top-k′ uniform RRS scores (per-sample values 0 or ``v_1``: Clopper–Pearson bounds) the most
favourable data are *perfect counts*: the ``k`` cells of the top-k are chosen in every one of
the ``T`` samples and no other cell more often than it must be. Then the lower bound of a
top cell is ``v_1·γ^{1/T}`` (Clopper–Pearson at ``T`` of ``T``) with ``γ`` the one-sided level
of the scheme; with ``k′ ≤ k`` the other cells are never chosen and their upper bound is
``v_1·(1 − γ^{1/T})``. So no certificate can be non-empty before

    ``γ^{1/T} > 1/2``, i.e. ``T > log₂(1/γ)``,  ``T_min = ⌊log₂(1/γ)⌋ + 1``,

and with Gaussian noise a per-cell certificate is non-empty from ``T_min`` on (for real maps
later: they are not perfect). With ``k′ > k`` every sample also chooses ``k′ − k`` other cells,
at least ``⌈T(k′ − k)/(n − k)⌉`` times for the most chosen of them; ``T_min`` is then found by
a scan over ``T`` with those Clopper–Pearson bounds.

The level ``γ`` (:func:`bound_level`): ``η_j / (2k + 1 + k0_max)`` for the separate selection
batch (``k0_max`` from the smallest β of the report), ``η_j / (2n)`` for Bonferroni, where
``η_j = η·2^{−(j+1)}`` at anytime checkpoint ``j`` (``checkpoint=None``: a fixed-T certificate,
``η_j = η``). The sample count is the *estimation* count; the selection scheme draws its
selection batch on top.
"""
from __future__ import annotations

import math

from scipy import stats as _stats

from .. import checks
from .core import SCHEMES, displaced_count

__all__ = ["bound_level", "earliest_samples"]


def bound_level(k: int, n: int, eta: float = 0.05, scheme: str = "selection", betas=(1.0,),
                checkpoint: int | None = 0, rrs_map: bool = True) -> float:
    """The one-sided level of each confidence bound of :func:`rrs.certify.certify` (at anytime
    checkpoint ``checkpoint``: ``η·2^{−(j+1)}``; ``None``: a fixed-T certificate at ``η``)."""
    k, n = checks.integer("k", k), checks.integer("n (cells)", n, low=2)
    if not 1 <= k < n:
        raise ValueError(f"k must be in 1..{n - 1} for {n} cells, got {k}")
    eta = checks.probability("eta", eta)
    if scheme not in SCHEMES:
        raise ValueError(f"scheme must be one of {SCHEMES}, got {scheme!r}")
    eta_j = eta if checkpoint is None else eta * 2.0 ** (-(checks.integer("checkpoint", checkpoint, low=0) + 1))
    if scheme == "bonferroni":
        return eta_j / (2 * n)
    k0s = [displaced_count(k, float(b)) for b in betas]
    k0_max = max((k0 for k0 in k0s if k0 <= n - k), default=0) if rrs_map else 0
    return eta_j / (2 * k + 1 + k0_max)


def earliest_samples(k: int, n: int, eta: float = 0.05, scheme: str = "selection", betas=(1.0,),
                     checkpoint: int | None = 0, scoring_count: int | None = None, rrs_map: bool = True,
                     t_max: int = 10 ** 7) -> int:
    """The smallest estimation sample count ``T`` at which a finite-sample certificate of the
    top-``k`` of ``n`` cells can be non-empty (see the module docstring): below it every
    finite-sample radius is 0 whatever the map; from it on, perfect counts give a per-cell
    Gaussian-CDF radius > 0.

    Args:
        k, n: top-k size and number of cells.
        eta, scheme, betas, checkpoint, rrs_map: as in :func:`bound_level`.
        scoring_count: ``k′`` of the top-k′ scores (default ``k``).
        t_max: give up (``ValueError``) beyond this many samples.
    """
    level = bound_level(k, n, eta, scheme, betas, checkpoint, rrs_map)
    kp = k if scoring_count is None else checks.integer("scoring_count", scoring_count)
    if kp > n:
        raise ValueError(f"scoring_count must be at most n = {n}, got {kp}")
    if kp <= k:
        t = max(1, math.floor(math.log2(1.0 / level)) + 1)
        while t > 1 and level ** (1.0 / (t - 1)) > 0.5:      # guard the float log at the boundary
            t -= 1
        while level ** (1.0 / t) <= 0.5:
            t += 1
        return t
    for t in range(1, int(t_max) + 1):
        c = math.ceil(t * (kp - k) / (n - k) - 1e-12)          # the most-chosen other cell
        upper = 1.0 if c >= t else float(_stats.beta.ppf(1 - level, c + 1, t - c))
        if level ** (1.0 / t) > upper:
            return t
    raise ValueError(f"no certificate can be non-empty up to T = {t_max} (k′ = {kp} of n = {n} cells, k = {k})")
