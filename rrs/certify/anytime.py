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

from ..settings import CertifySettings
from .core import CellStats, Certificate, CertificationReport, _check_eta, _check_stats, certify

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
        k, noise: as in :func:`rrs.certify.certify`.
        settings: a :class:`rrs.settings.CertifySettings` (norm, overall η over all
            checkpoints, β levels, per-cell radii, scheme); with ``scheme="selection"`` pass
            the separate selection batch as ``selection`` once, here (it fixes ``K̂`` for every
            checkpoint).
        t0: the first checkpoint ``T₀`` (estimation samples), ≥ 1.
        dim, bound_method, rrs_map, alphas: as in :func:`rrs.certify.certify`.

    Call :meth:`update` with the cumulative statistics whenever ``stats.samples`` reaches a
    checkpoint (``next_checkpoint``); checkpoints may be skipped but not revisited. The best
    so far is kept per β over both kinds (:attr:`best`), per kind (:meth:`best_at`) and per
    cell (:meth:`best_cells`); every whole-set radius is kept together with the top-k set it
    certifies (``AnytimeBest.selected``), which under the Bonferroni scheme can differ from a
    later checkpoint's set.
    """

    KINDS = ("rdp", "gaussian-cdf")

    def __init__(self, k: int, noise, settings: CertifySettings | None = None, *, t0: int, dim=None,
                 selection: CellStats | None = None, bound_method: str = "auto", rrs_map: bool = True,
                 alphas=None):
        settings = CertifySettings() if settings is None else settings
        if isinstance(t0, bool) or int(t0) != t0 or t0 < 1:
            raise ValueError(f"t0 must be an integer ≥ 1, got {t0!r}")
        if settings.scheme == "selection":
            if selection is None:
                raise ValueError("scheme='selection' needs the separate selection batch (selection=CellStats)")
            _check_stats(selection, "selection")
        self.k, self.noise, self.t0, self.eta = k, noise, int(t0), _check_eta(settings.eta)
        self.settings = settings
        self.betas = settings.betas
        self._kw = dict(dim=dim, bound_method=bound_method, rrs_map=rrs_map, alphas=alphas, selection=selection)
        self._last = -1
        self._history: list[tuple[int, int, float, CertificationReport]] = []
        empty = lambda b: AnytimeBest(b, 0.0, None, None, 0, -1, self.eta)  # noqa: E731
        self._best = {b: empty(b) for b in self.betas}
        self._best_kind = {(kind, b): empty(b) for kind in self.KINDS for b in self.betas}
        self._cells: dict[str, np.ndarray | None] = {kind: None for kind in self.KINDS}

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
        report = certify(stats, self.k, self.noise, self.settings.replace(eta=eta_j), **self._kw)
        self._last = j
        self._history.append((j, int(stats.samples), eta_j, report))
        for cert in report.rdp_finite + report.cdf_finite:
            new = AnytimeBest(cert.beta, cert.radius, cert, report.selected.copy(), int(stats.samples), j, self.eta)
            if cert.radius > self._best[cert.beta].radius:
                self._best[cert.beta] = new
            if cert.radius > self._best_kind[(cert.kind, cert.beta)].radius:
                self._best_kind[(cert.kind, cert.beta)] = new
        for kind, cells in (("rdp", report.cells_finite), ("gaussian-cdf", report.cdf_cells_finite)):
            if cells is not None:
                old = self._cells[kind]
                self._cells[kind] = cells.radii.copy() if old is None else np.maximum(old, cells.radii)
        return report

    @property
    def best(self) -> tuple:
        """Per β (in the order given), the :class:`AnytimeBest` so far (radius 0 before any
        certificate)."""
        return tuple(self._best[b] for b in self.betas)

    def best_at(self, beta: float, kind: str | None = None) -> AnytimeBest:
        """The best so far at ``beta`` (one of the β levels): over both kinds, or of ``kind``
        (``"rdp"`` or ``"gaussian-cdf"``)."""
        b = next((b for b in self.betas if abs(b - float(beta)) < 1e-9), None)
        if b is None:
            raise ValueError(f"β = {beta:g} is not one of the certified levels {self.betas}")
        if kind is None:
            return self._best[b]
        if kind not in self.KINDS:
            raise ValueError(f"kind must be one of {self.KINDS}, got {kind!r}")
        return self._best_kind[(kind, b)]

    def best_cells(self, kind: str) -> np.ndarray | None:
        """Per cell, the largest finite-sample radius of ``kind`` (``"rdp"`` or
        ``"gaussian-cdf"``) over the checkpoints so far (each certifies "cell i stays in the
        top-k" at its ``η_j``, so all hold at once); ``None`` when not computed."""
        if kind not in self.KINDS:
            raise ValueError(f"kind must be one of {self.KINDS}, got {kind!r}")
        cells = self._cells[kind]
        return None if cells is None else cells.copy()
