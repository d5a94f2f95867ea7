"""Certify an RRS map: select, sample, bound, report (method.md §5, §6b).

1. **Select** — :func:`plan_run` fixes the sample schedule before any sample is drawn: with the
   ``"selection"`` scheme a separate batch of ``T/8`` samples (:func:`selection_size`, the one
   T/8 rule) chooses the top-k set; the rest are estimation samples, certified at doubling
   checkpoints ``T₀·2^j`` (anytime) or once at the end (``anytime=False``, the command line).
2. **Sample** — :func:`sample_run` draws them on one generator
   (:func:`rrs.smoothing.generator_for` ``(model, seed)``): the selection batch with
   :func:`rrs.smoothing.smooth`, then the estimation samples with
   :func:`rrs.smoothing.smooth_stream`, yielding a :class:`Sampled` after every checkpoint.
   Sampling does not depend on the threat norm or η, so a :class:`Sampled` can be certified
   again when those change.
3. **Bound** — :func:`certify_sampled` replays an :class:`rrs.certify.AnytimeCertifier` over the
   checkpoints (``η_j = η·2^{−(j+1)}``), so the best finite-sample radius so far — whole set
   per β (kept with the top-k set it certifies) and per cell — is valid whenever the run
   stops; and the "stays important" certificate (method.md §6b) at the same schedule.
   :func:`certify_checkpoint` is the fixed-``T`` certificate of one checkpoint.
4. **Report** — :class:`AnytimeView`: every certificate of the run at one
   :class:`~rrs.settings.CertifySettings`, read per β, per cell, per kind.

:func:`certify_run` does 1–4 in one call. Nothing here imports streamlit.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, field, replace

import numpy as np
import torch

from ..certify import AnytimeCertifier, CellStats, CertificationReport, certify, merge_stats, stays_important
from ..certify.anytime import AnytimeBest
from ..settings import SCHEMES, CertifySettings, MapSettings
from ..smoothing import generator_for, model_device, smooth, smooth_stream

__all__ = ["T0_MIN", "SELECTION_MIN", "RunPlan", "selection_size", "plan_run", "Checkpoint", "Sampled",
           "sample_run", "certify_checkpoint", "report_cells", "combine_cells", "AnytimeView",
           "certify_sampled", "certify_run"]

#: The first checkpoint has at least this many estimation samples: about 3× the earliest count at
#: which a finite-sample certificate can be non-empty at the pages' defaults
#: (:func:`rrs.certify.budget.earliest_samples`: 10–12 for the top 10% of 49–196 cells at η = 0.05,
#: first checkpoint), so the first certified cells come at T ≈ 184 of 1024 (240 with 64) and the
#: fast preset's T = 128 has a checkpoint at 72. Each extra checkpoint halves the η of the last
#: one: at T = 1024 the last checkpoint certifies at η/32 instead of η/16 (``bench/eta_split.py``
#: measures the radius this costs).
T0_MIN = 32
#: The selection scheme needs at least this many samples (T/8 ≥ 2 of them choose the top-k set).
SELECTION_MIN = 16


# ------------------------------------------------------------------------------ select

@dataclass(frozen=True)
class RunPlan:
    """``total`` samples: ``selection`` of them first (0 for Bonferroni), then estimation
    checkpoints ``checkpoints`` (cumulative estimation counts ``t0·2^j``; the last is
    ``total − selection``). ``anytime``: certified at every checkpoint with the η split
    (otherwise one checkpoint, certified at the full η)."""

    total: int
    selection: int
    checkpoints: tuple
    t0: int
    anytime: bool = True

    def totals(self) -> tuple:
        """Samples drawn (selection included) at each checkpoint."""
        return tuple(self.selection + c for c in self.checkpoints)

    def eta_at(self, j: int, eta: float) -> float:
        """Failure probability spent at checkpoint ``j``: ``η·2^{−(j+1)}`` (anytime) or ``η``."""
        return eta * 2.0 ** (-(j + 1)) if self.anytime else eta


def selection_size(total: int, scheme: str) -> int:
    """Samples of the separate selection batch: ``T/8`` for ``"selection"``, 0 for Bonferroni."""
    if scheme not in SCHEMES:
        raise ValueError(f"scheme must be one of {SCHEMES}, got {scheme!r}")
    if scheme == "bonferroni":
        return 0
    if total < SELECTION_MIN:
        raise ValueError(f"the selection scheme needs T ≥ {SELECTION_MIN} samples (T/8 of them choose the "
                         f"top-k set), got T = {total}")
    return total // 8


def plan_run(total: int, scheme: str, anytime: bool = True, t0_min: int = T0_MIN) -> RunPlan:
    """The sample schedule of a run of ``total`` samples: the selection batch, then doubling
    checkpoints (the first with at least ``t0_min`` estimation samples; one checkpoint when
    ``anytime`` is false)."""
    if isinstance(total, bool) or int(total) != total or total < 2:
        raise ValueError(f"T must be at least 2 samples, got {total!r}")
    total = int(total)
    selection = selection_size(total, scheme)
    est = total - selection
    j = 0
    while anytime and est % 2 ** (j + 1) == 0 and est // 2 ** (j + 1) >= t0_min:
        j += 1
    t0 = est // 2 ** j
    return RunPlan(total, selection, tuple(t0 * 2 ** i for i in range(j + 1)), t0, bool(anytime))


# ------------------------------------------------------------------------------ sample

@dataclass(frozen=True)
class Checkpoint:
    """One checkpoint: ``samples`` estimation samples (``stats``), ``total`` drawn so far,
    the seconds since the run started and the sampling rate measured so far (samples/s)."""

    samples: int
    total: int
    stats: CellStats
    elapsed: float
    rate: float


@dataclass(frozen=True)
class Sampled:
    """The samples of one run (everything but the certificates).

    ``selection``: the separate selection batch (``None`` for Bonferroni); ``checkpoints``:
    those reached so far; ``complete``: the last planned checkpoint was reached (otherwise the
    run was stopped and the certificates are those of the checkpoints reached, still valid).
    ``scoring``: the RRS scoring vector; ``device``: a label the caller may set.
    """

    settings: MapSettings
    scheme: str
    plan: RunPlan
    target: int
    label: str
    confidence: float
    grid: tuple
    k: int
    input_size: int
    selection: CellStats | None
    checkpoints: tuple = ()
    scoring: np.ndarray | None = None
    device: str = ""
    started: float = field(default_factory=time.time)

    @property
    def complete(self) -> bool:
        return len(self.checkpoints) == len(self.plan.checkpoints)

    @property
    def last(self) -> Checkpoint:
        return self.checkpoints[-1]

    @property
    def samples_done(self) -> int:
        return self.last.total if self.checkpoints else self.plan.selection

    @property
    def elapsed(self) -> float:
        return self.last.elapsed if self.checkpoints else 0.0

    @property
    def rate(self) -> float:
        return self.last.rate if self.checkpoints else 0.0

    @property
    def dim(self) -> int:
        return 3 * self.input_size * self.input_size

    @property
    def n(self) -> int:
        return int(self.grid[0] * self.grid[1])

    @property
    def flat(self) -> bool:
        """All cells of the map are equal: there is no top-k to certify."""
        m = np.asarray(self.pooled().mean, dtype=float)
        return bool(np.ptp(m) <= 1e-12 * max(1.0, float(np.abs(m).max())))

    def pooled(self, index: int = -1) -> CellStats:
        """Selection and estimation samples of checkpoint ``index`` together (the map shown)."""
        est = self.checkpoints[index].stats
        return est if self.selection is None else merge_stats(self.selection, est)

    def map(self, index: int = -1) -> np.ndarray:
        return np.asarray(self.pooled(index).mean, dtype=float).reshape(self.grid)

    def next_seconds(self) -> float | None:
        """Predicted seconds to the next checkpoint at the rate measured so far."""
        if self.complete or not self.checkpoints or self.rate <= 0:
            return None
        nxt = self.plan.totals()[len(self.checkpoints)]
        return (nxt - self.samples_done) / self.rate


def sample_run(model, x: torch.Tensor, settings: MapSettings, certify_settings: CertifySettings, *,
               plan: RunPlan | None = None, target: int | None = None, batch_size: int = 16, progress=None):
    """Draw the samples of a certify run; yield a :class:`Sampled` after each checkpoint.

    One generator (:func:`rrs.smoothing.generator_for` ``(model, settings.seed)``): first the
    selection batch (``certify_settings.scheme == "selection"``), then the estimation samples.
    Checkpoint ``j``'s statistics are exactly those of a fresh ``smooth`` with that many
    samples continuing the same generator, so certifying them equals a fresh
    :func:`rrs.certify.certify` at ``η_j``; with Bonferroni and one checkpoint the map is
    :func:`rrs.smoothing.interpretation_map`'s.

    Args:
        plan: the schedule (default :func:`plan_run` ``(settings.samples, scheme)``, anytime).
        target: class to explain (default the predicted class).
        batch_size: noise samples per forward/backward pass (result-neutral).
        progress: optional ``progress(done, total)`` over all samples.
    """
    if settings.method != "rrs":
        raise ValueError("certificates here are for RRS maps; set the method to RRS")
    scheme = certify_settings.scheme
    plan = plan_run(settings.samples, scheme) if plan is None else plan
    if plan.total != settings.samples or plan.selection != selection_size(plan.total, scheme):
        raise ValueError(f"the plan ({plan.total} samples, {plan.selection} for selection) does not match "
                         f"T = {settings.samples} with the {scheme} scheme")
    start = time.perf_counter()
    xb = x[None] if x.dim() == 3 else x
    with torch.no_grad():
        probs = model(xb[:1].to(model_device(model))).softmax(1)[0]
    target = int(probs.argmax()) if target is None else int(target)
    label, conf = model.categories[target], float(probs[target])
    gen = generator_for(model, settings.seed)
    selection = None
    if plan.selection:
        sub = None if progress is None else (lambda d, t: progress(d, plan.total))
        selection = smooth(model, x, settings.replace(samples=plan.selection), target=target, generator=gen,
                           batch_size=batch_size, progress=sub).stats()
    sampled = None
    sub = None if progress is None else (lambda d, t: progress(plan.selection + d, plan.total))
    for res in smooth_stream(model, x, settings.replace(samples=plan.checkpoints[-1]), target=target,
                             checkpoints=list(plan.checkpoints), generator=gen, batch_size=batch_size, progress=sub):
        elapsed = time.perf_counter() - start
        total = plan.selection + res.samples
        cp = Checkpoint(int(res.samples), int(total), res.stats(), elapsed, total / max(elapsed, 1e-9))
        if sampled is None:
            grid = tuple(int(g) for g in res.grid)
            sampled = Sampled(settings, scheme, plan, target, label, conf, grid, settings.k_for(grid[0] * grid[1]),
                              int(x.shape[-1]), selection, scoring=res.scoring)
        sampled = replace(sampled, checkpoints=sampled.checkpoints + (cp,))
        yield sampled


# ------------------------------------------------------------------------------- bound

def _check_scheme(sampled: Sampled, settings: CertifySettings) -> None:
    if settings.scheme != sampled.scheme:
        raise ValueError(f"these samples were drawn for the {sampled.scheme} scheme; certify them with "
                         f"CertifySettings(scheme={sampled.scheme!r}), got {settings.scheme!r}")


def certify_checkpoint(sampled: Sampled, settings: CertifySettings, index: int = -1,
                       bound_method: str = "auto") -> CertificationReport:
    """The certificates of checkpoint ``index`` alone, at the η its plan spends there (the full
    η for a plan with ``anytime=False``): what the command line reports."""
    _check_scheme(sampled, settings)
    j = range(len(sampled.checkpoints))[index]
    cp = sampled.checkpoints[j]
    return certify(cp.stats, sampled.k, sampled.settings.noise_model(),
                   settings.replace(eta=sampled.plan.eta_at(j, settings.eta)), dim=sampled.dim,
                   selection=sampled.selection, bound_method=bound_method)


def report_cells(report: CertificationReport, finite: bool = True) -> tuple:
    """``(rdp, cdf)`` per-cell radii ``(n,)`` of one report (``None`` where not computed)."""
    rdp = report.cells_finite if finite else report.cells_plugin
    cdf = report.cdf_cells_finite if finite else report.cdf_cells_plugin
    return (None if rdp is None else rdp.radii), (None if cdf is None else cdf.radii)


def combine_cells(rdp, cdf, kind: str, n: int) -> np.ndarray:
    """Per-cell radii ``(n,)`` of ``kind``: ``"rdp"``, ``"cdf"`` or ``"best"`` (their maximum:
    both are sound, method.md §6); 0 where not computed."""
    if kind not in ("best", "rdp", "cdf"):
        raise ValueError(f"kind must be 'best', 'rdp' or 'cdf', got {kind!r}")
    rdp = np.zeros(n) if rdp is None else np.asarray(rdp, dtype=float)
    if kind == "rdp" or cdf is None:
        return rdp
    cdf = np.asarray(cdf, dtype=float)
    return cdf if kind == "cdf" else np.maximum(rdp, cdf)


_KIND = {"rdp_finite": "rdp", "cdf_finite": "gaussian-cdf"}


@dataclass(frozen=True)
class AnytimeView:
    """Every certificate of a :class:`Sampled` run at one :class:`CertifySettings`.

    Finite-sample numbers are the best so far of ``certifier`` (an
    :class:`rrs.certify.AnytimeCertifier` replayed over the checkpoints reached): all top-k
    statements hold at once with probability ≥ 1 − η. The "stays important" radii
    (``important``, max over checkpoints) are a second family that spends its own η, so the
    two families together hold with probability ≥ 1 − 2η. Plug-in numbers are those of the
    last checkpoint (pooled samples), an estimate and not a guarantee.

    ``history``: one dict per checkpoint (``total``, ``eta_j``, whole-set radius at β = 1,
    cells certified, cells that stay important).
    """

    sampled: Sampled
    settings: CertifySettings
    certifier: AnytimeCertifier
    history: tuple
    important: np.ndarray
    important_plugin: np.ndarray
    tau: float
    elapsed: float

    @property
    def report(self) -> CertificationReport:
        """The last checkpoint's report (plug-in certificates, the equal-level form)."""
        return self.certifier.history[-1][3]

    @property
    def norm(self):
        return self.settings.norm

    @property
    def eta(self) -> float:
        return self.settings.eta

    @property
    def dim(self) -> int:
        return self.sampled.dim

    def whole_set(self, beta: float, kind: str | None = None) -> AnytimeBest:
        """The best finite-sample whole-set certificate so far at ``beta`` with the top-k set it
        certifies and its checkpoint (both kinds, or ``"rdp"``/``"gaussian-cdf"``)."""
        return self.certifier.best_at(beta, kind)

    def certified_set(self, beta: float = 1.0) -> np.ndarray:
        """The top-k set the whole-set guarantee at ``beta`` is about: the set of the winning
        checkpoint (Bonferroni picks it anew at each checkpoint), else the last checkpoint's."""
        try:
            best = self.whole_set(beta)
        except ValueError:
            best = None
        if best is not None and best.radius > 0:
            return np.asarray(best.selected)
        return np.asarray(self.report.selected)

    def radius(self, group: str, beta: float) -> float:
        """Whole-set radius of ``group`` at ``beta``: finite groups best so far, plug-in groups
        (and the equal-level form) of the last checkpoint; 0 when not computed."""
        if group in _KIND:
            try:
                return float(self.whole_set(beta, _KIND[group]).radius)
            except ValueError:
                return 0.0
        for c in getattr(self.report, group):
            if abs(c.beta - beta) < 1e-9:
                return float(c.radius)
        return 0.0

    def guaranteed(self, beta: float) -> float:
        """The headline: best finite-sample whole-set radius (RDP or Gaussian-CDF) so far."""
        return max(self.radius("rdp_finite", beta), self.radius("cdf_finite", beta))

    def plugin(self, beta: float) -> float:
        return max(self.radius("rdp_plugin", beta), self.radius("cdf_plugin", beta))

    def cell_radii(self, kind: str = "best", finite: bool = True) -> np.ndarray:
        """``(n,)`` per-cell radii (:func:`combine_cells`): finite — best so far per cell;
        plug-in — the last checkpoint's."""
        if finite:
            rdp, cdf = self.certifier.best_cells("rdp"), self.certifier.best_cells("gaussian-cdf")
        else:
            rdp, cdf = report_cells(self.report, False)
        return combine_cells(rdp, cdf, kind, self.sampled.n)

    def shown_cells(self, finite: bool = True, beta: float = 1.0) -> np.ndarray:
        """Cells drawn: finite — the certified top-k set (:meth:`certified_set`) plus any cell
        certified on its own at a checkpoint; plug-in — the top-k of the pooled map (what the
        plug-in certificates certify)."""
        n = self.sampled.n
        mask = np.zeros(n, dtype=bool)
        if finite:
            mask[self.certified_set(beta)] = True
            mask |= self.cell_radii("best", True) > 0
        else:
            order = np.lexsort((np.arange(n), -np.asarray(self.sampled.pooled().mean, dtype=float)))
            mask[order[:self.sampled.k]] = True
        return mask

    def categories(self, radius: float, kind: str = "best", finite: bool = True, beta: float = 1.0) -> np.ndarray:
        """``(rows, cols)``: 2 = certified at ``radius``, 1 = in the top-k but not, 0 = other."""
        shown = self.shown_cells(finite, beta)
        cat = np.where(shown, 1, 0)
        cat[shown & (self.cell_radii(kind, finite) > radius)] = 2
        return cat.reshape(self.sampled.grid)

    def radius_grid(self, kind: str = "best", finite: bool = True, beta: float = 1.0) -> np.ndarray:
        """Per-cell radii ``(rows, cols)``, NaN for cells not drawn (``inf`` kept: unbounded)."""
        out = np.where(self.shown_cells(finite, beta), self.cell_radii(kind, finite), np.nan)
        return out.reshape(self.sampled.grid)

    def important_grid(self, finite: bool = True) -> np.ndarray:
        """"Stays important" radii ``(rows, cols)``, NaN where 0 (not drawn)."""
        r = self.important if finite else self.important_plugin
        return np.where(r > 0, r, np.nan).reshape(self.sampled.grid)

    def important_region(self, radius: float, finite: bool = True) -> np.ndarray:
        """``(rows, cols)`` categories for the "stays important" region: 2 = stays important at
        ``radius``, 1 = important now (score above τ) but not certified at ``radius``."""
        r = self.important if finite else self.important_plugin
        pooled = self.sampled.pooled()
        score = np.asarray(pooled.mean, dtype=float) / float(pooled.value_bound)
        cat = np.where(score > self.tau, 1, 0)
        cat[r > radius] = 2
        return cat.reshape(self.sampled.grid)

    def rows(self) -> list[dict]:
        """One row per (certificate, β) for the exports; finite rows are the best so far, with
        the checkpoint that certified them and the top-k set they are about."""
        rows = []
        for r in self.report.rows():
            group = ("rdp" if r["kind"] == "rdp" else "cdf" if r["kind"] == "gaussian-cdf" else "equal_level")
            if r["kind"] != "equal-level":
                group += "_finite" if r["finite_sample"] else "_plugin"
            radius = self.radius(group, r["beta"])
            row = {**r, "radius": radius, "unbounded": math.isinf(radius),
                   "radius_per_value": self.norm.per_pixel(radius, self.dim) if math.isfinite(radius) else math.inf,
                   "scheme": self.sampled.scheme if r["finite_sample"] else None,
                   "eta": self.eta if r["finite_sample"] else None}
            if r["finite_sample"]:
                best = self.whole_set(r["beta"], _KIND[group])
                row["checkpoint"] = int(best.checkpoint)
                row["certified_set"] = ([] if best.selected is None else
                                        [int(c) for c in np.asarray(best.selected)])
            rows.append(row)
        return rows

    def cell_rows(self, beta: float = 1.0) -> list[dict]:
        """One row per cell drawn or important: top-k radii and the "stays important" radius."""
        cols = self.sampled.grid[1]
        mean = np.asarray(self.sampled.pooled().mean, dtype=float)
        fin, plug = self.cell_radii("best", True), self.cell_radii("best", False)
        keep = self.shown_cells(True, beta) | (self.important > 0) | (self.important_plugin > 0)
        in_topk = np.zeros(mean.size, dtype=bool)
        in_topk[np.asarray(self.certified_set(beta), dtype=int)] = True
        return [{"cell": int(i), "row": int(i) // cols, "col": int(i) % cols, "map_value": float(mean[i]),
                 "in_topk": bool(in_topk[i]), "topk_radius_finite": float(fin[i]),
                 "topk_radius_plugin": float(plug[i]), "stays_important_radius_finite": float(self.important[i]),
                 "stays_important_radius_plugin": float(self.important_plugin[i])} for i in np.flatnonzero(keep)]


def certify_sampled(sampled: Sampled, settings: CertifySettings, tau: float = 0.5) -> AnytimeView:
    """Certify every checkpoint of ``sampled`` at ``η_j = η·2^{−(j+1)}`` (the anytime split)
    with one :class:`rrs.certify.AnytimeCertifier` and view its best so far; also "stays
    important" at each checkpoint at the same ``η_j`` (its own family, method.md §6b).
    ``settings.scheme`` must be the scheme the samples were drawn for."""
    if not sampled.checkpoints:
        raise ValueError("no checkpoint reached yet")
    _check_scheme(sampled, settings)
    if not sampled.plan.anytime:
        raise ValueError("this run has one checkpoint certified at the full η; use certify_checkpoint")
    start = time.perf_counter()
    noise = sampled.settings.noise_model()
    norm = float(settings.norm)
    cert = AnytimeCertifier(sampled.k, noise, settings.replace(cell_radii=True), t0=sampled.plan.t0,
                            dim=sampled.dim, selection=sampled.selection)
    important = np.zeros(sampled.n)
    history = []
    for i, cp in enumerate(sampled.checkpoints):
        cert.update(cp.stats)
        eta_j = cert.eta_at(cert.checkpoint_index(cp.samples))
        imp = stays_important(sampled.pooled(i), noise, tau=tau, eta=eta_j, norm=norm, dim=sampled.dim)
        important = np.maximum(important, imp.radii)
        cells = combine_cells(cert.best_cells("rdp"), cert.best_cells("gaussian-cdf"), "best", sampled.n)
        whole = cert.best_at(1.0).radius if 1.0 in cert.betas else 0.0
        history.append({"checkpoint": i, "total": cp.total, "estimation": cp.samples, "eta_j": eta_j,
                        "elapsed_s": cp.elapsed, "whole_set_beta1": float(whole),
                        "cells_certified": int((cells > 0).sum()), "stays_important": int((important > 0).sum())})
    plug = stays_important(sampled.pooled(), noise, tau=tau, norm=norm, dim=sampled.dim, finite_sample=False)
    return AnytimeView(sampled, settings, cert, tuple(history), important, plug.radii, float(tau),
                       time.perf_counter() - start)


def certify_run(model, x: torch.Tensor, settings: MapSettings, certify_settings: CertifySettings, *,
                batch_size: int = 16, progress=None) -> AnytimeView:
    """Select, sample, bound, report in one call: the anytime run of ``settings.samples``
    samples to its last checkpoint, viewed at ``certify_settings``."""
    sampled = None
    for sampled in sample_run(model, x, settings, certify_settings, batch_size=batch_size, progress=progress):
        pass
    return certify_sampled(sampled, certify_settings)
