"""Anytime-valid certification at doubling checkpoints (method.md §5, "Anytime validity").

Why it is valid. Checkpoint ``j`` certifies from the first ``T_j = T₀·2^j`` estimation
samples with failure probability ``η_j = η·2^{−(j+1)}``. The sample sizes are fixed in
advance (they do not depend on the data), so each checkpoint's statement is an ordinary
fixed-``T`` certificate at level ``η_j``; by the union bound all checkpoints' statements
hold simultaneously with probability ≥ ``1 − Σ_j η_j > 1 − η``. On that event every
statement made so far is true, so whatever rule decides when to stop — including one that
looks at the certificates, e.g. "stop as soon as the radius looks good" — the best
certificate so far is valid at the stopping time. Re-using fixed-``T`` intervals at full ``η``
after peeking is not valid: each look adds its own chance of failure.

The object is independent of how samples are produced: it takes cumulative
:class:`~rrs.certify.CellStats` (e.g. from :func:`rrs.certify.merge_stats` of successive
``smooth`` calls on one generator).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .core import SCHEMES, CellStats, Certificate, CertificationReport, _check_eta, _check_stats, certify

__all__ = ["AnytimeCertifier", "AnytimeBest"]


@dataclass(frozen=True)
class AnytimeBest:
    """The best finite-sample certificate so far for one β (all checkpoints hold at once with
    probability ≥ 1 − η, so it is valid at any stopping time).

    ``certificate``: the winning :class:`Certificate` (``kind`` "rdp" or "gaussian-cdf"; its
    own ``eta`` is the checkpoint's ``η_j``); ``selected``: the top-k set it certifies;
    ``samples``: estimation samples at that checkpoint; ``checkpoint``: ``j``; ``eta``: the
    overall failure probability.
    """

    beta: float
    radius: float
    certificate: Certificate | None
    selected: np.ndarray | None
    samples: int
    checkpoint: int
    eta: float


class AnytimeCertifier:
    """Certify at ``T₀, 2T₀, 4T₀, …`` with ``η_j = η·2^{−(j+1)}``; keep the best so far.

    Args:
        k, noise, betas, norm, dim, bound_method, rrs_map, per_cell, alphas: as in
            :func:`rrs.certify.certify`.
        t0: the first checkpoint ``T₀`` (estimation samples), ≥ 1.
        eta: overall failure probability over all checkpoints.
        scheme: ``"bonferroni"`` or ``"selection"``; with ``"selection"`` pass the separate
            selection batch as ``selection`` once, here (it fixes ``K̂`` for every checkpoint).

    Call :meth:`update` with the cumulative statistics whenever ``stats.samples`` reaches a
    checkpoint (``next_checkpoint``); checkpoints may be skipped but not revisited.
    """

    def __init__(self, k: int, noise, *, t0: int, eta: float = 0.05, betas=(1.0,), norm=2, dim=None,
                 bound_method: str = "auto", scheme: str = "bonferroni", selection: CellStats | None = None,
                 rrs_map: bool = True, per_cell: bool = False, alphas=None):
        if isinstance(t0, bool) or int(t0) != t0 or t0 < 1:
            raise ValueError(f"t0 must be an integer ≥ 1, got {t0!r}")
        if scheme not in SCHEMES:
            raise ValueError(f"scheme must be one of {SCHEMES}, got {scheme!r}")
        if scheme == "selection":
            if selection is None:
                raise ValueError("scheme='selection' needs the separate selection batch (selection=CellStats)")
            _check_stats(selection, "selection")
        self.k, self.noise, self.t0, self.eta = k, noise, int(t0), _check_eta(eta)
        self.betas = tuple(float(b) for b in betas)
        self._kw = dict(norm=norm, dim=dim, bound_method=bound_method, rrs_map=rrs_map,
                        per_cell=per_cell, alphas=alphas, scheme=scheme, selection=selection)
        self._last = -1
        self._history: list[tuple[int, int, float, CertificationReport]] = []
        self._best = {b: AnytimeBest(b, 0.0, None, None, 0, -1, self.eta) for b in self.betas}

    def eta_at(self, j: int) -> float:
        """``η_j = η·2^{−(j+1)}``: the failure probability spent at checkpoint ``j``."""
        return self.eta * 2.0 ** (-(j + 1))

    def checkpoint_index(self, samples: int) -> int | None:
        """``j`` with ``samples = T₀·2^j``, or ``None`` when ``samples`` is no checkpoint."""
        if samples < self.t0 or samples % self.t0:
            return None
        ratio = samples // self.t0
        return int(math.log2(ratio)) if ratio & (ratio - 1) == 0 else None

    @property
    def next_checkpoint(self) -> int:
        """The next sample count at which :meth:`update` may be called."""
        return self.t0 * 2 ** (self._last + 1)

    @property
    def history(self) -> tuple:
        """``(checkpoint j, samples, η_j, report)`` for every checkpoint certified so far."""
        return tuple(self._history)

    def update(self, stats: CellStats) -> CertificationReport:
        """Certify at a checkpoint (``stats.samples`` must be ``T₀·2^j`` with ``j`` beyond the last
        one) at level ``η_j``; update and return that checkpoint's report."""
        _check_stats(stats)
        j = self.checkpoint_index(int(stats.samples))
        if j is None:
            raise ValueError(f"stats.samples = {stats.samples} is not a checkpoint T0·2^j (T0 = {self.t0}); "
                             f"the next one is {self.next_checkpoint}")
        if j <= self._last:
            raise ValueError(f"checkpoint {j} ({stats.samples} samples) is already past; "
                             f"the next one is {self.next_checkpoint}")
        eta_j = self.eta_at(j)
        report = certify(stats, self.k, self.noise, betas=self.betas, eta=eta_j, **self._kw)
        self._last = j
        self._history.append((j, int(stats.samples), eta_j, report))
        for cert in report.rdp_finite + report.cdf_finite:
            old = self._best[cert.beta]
            if cert.radius > old.radius:
                self._best[cert.beta] = AnytimeBest(cert.beta, cert.radius, cert, report.selected.copy(),
                                                    int(stats.samples), j, self.eta)
        return report

    @property
    def best(self) -> tuple:
        """Per β (in the order given), the :class:`AnytimeBest` so far (radius 0 before any
        certificate)."""
        return tuple(self._best[b] for b in self.betas)
