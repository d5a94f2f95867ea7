"""The Certify page's computations (plain Python, no streamlit): the anytime run, its
certificates at any threat norm, the plain-language verdict, suggestions that are predicted to
help, and "try to break it".

* :func:`plan_run` — the sample schedule: an optional separate selection batch (``T/8``, the
  ``"selection"`` scheme of method.md §5), then estimation samples in doubling checkpoints.
* :func:`sample_anytime` — draws the samples (:func:`rrs.smoothing.smooth` for the selection
  batch, :func:`rrs.smoothing.smooth_stream` for the checkpoints, one generator) and yields a
  :class:`Sampled` after every checkpoint. Sampling does not depend on the threat norm or η,
  so the page keeps a :class:`Sampled` and certifies it again when those change.
* :func:`certify_sampled` — replays an :class:`rrs.certify.AnytimeCertifier` over the
  checkpoints (``η_j = η·2^{−(j+1)}``): every statement of every checkpoint holds at once with
  probability ≥ 1 − η, so the best finite-sample radius so far — whole-set per β and per cell —
  is valid whenever the run stops (method.md §5, "Anytime validity"). Also the "stays
  important" certificate (method.md §6b) at the same schedule.
* :func:`verdict`, :func:`suggestions`, :func:`break_it`.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, field, replace

import numpy as np
import torch

from rrs import metrics
from ui import plots as P
from rrs.certify import AnytimeCertifier, CellStats, certify, merge_stats, stays_important
from rrs.settings import AttackSettings, CertifySettings, MapSettings, Norm
from rrs.smoothing import generator_for, smooth, smooth_stream
from rrs.timing import RATES, sample_key

from rrs.compute.policy import batch_size_for
from .budgets import device_label
from .compute import pixel_cell, predict

__all__ = ["SCHEMES", "T_OPTIONS", "RunPlan", "plan_run", "Checkpoint", "Sampled", "sample_anytime",
           "AnytimeView", "certify_sampled", "Verdict", "verdict", "Suggestion", "project", "suggestions",
           "BreakResult", "break_it", "radius_text", "predict_seconds"]

#: The finite-sample schemes (method.md §5): label and one plain line each.
SCHEMES = {
    "selection": ("Separate selection batch",
                  "T/8 samples choose the top-k cells; the other 7T/8 prove them (one-sided bounds only "
                  "where the proof needs them)."),
    "bonferroni": ("Bonferroni (all samples)",
                   "All T samples choose the top-k cells and prove them; two-sided bounds for every cell."),
}
#: Sample budgets offered on the page (doubling, so every T is a checkpoint schedule).
T_OPTIONS = [64, 128, 256, 512, 1024, 2048, 4096, 8192, 16384, 32768, 65536]
#: The first checkpoint has at least this many estimation samples.
T0_MIN = 64


# ------------------------------------------------------------------------------ plan

@dataclass(frozen=True)
class RunPlan:
    """``total`` samples: ``selection`` of them first (0 for Bonferroni), then estimation
    checkpoints ``checkpoints`` (cumulative estimation counts ``t0·2^j``; the last is
    ``total − selection``)."""

    total: int
    selection: int
    checkpoints: tuple
    t0: int

    def totals(self) -> tuple:
        """Samples drawn (selection included) at each checkpoint."""
        return tuple(self.selection + c for c in self.checkpoints)


def plan_run(total: int, scheme: str, t0_min: int = T0_MIN) -> RunPlan:
    """The checkpoint schedule of an anytime run of ``total`` samples."""
    total = int(total)
    if total < 2:
        raise ValueError(f"T must be at least 2 samples, got {total}")
    if scheme not in SCHEMES:
        raise ValueError(f"scheme must be one of {tuple(SCHEMES)}, got {scheme!r}")
    selection = max(1, total // 8) if scheme == "selection" else 0
    est = total - selection
    j = 0
    while est % 2 ** (j + 1) == 0 and est // 2 ** (j + 1) >= t0_min:
        j += 1
    t0 = est // 2 ** j
    return RunPlan(total, selection, tuple(t0 * 2 ** i for i in range(j + 1)), t0)


def predict_seconds(model, x, settings: MapSettings, samples: int) -> float | None:
    """Predicted seconds for ``samples`` noisy attributions at the rate measured on this device
    (:data:`rrs.timing.RATES`; ``None`` before any measurement)."""
    return RATES.predict(sample_key(model, x[None] if x.dim() == 3 else x, settings), samples)


# --------------------------------------------------------------------------- sampling

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
    """The samples of one anytime run (everything but the certificates).

    ``selection``: the separate selection batch (``None`` for Bonferroni); ``checkpoints``:
    those reached so far; ``complete``: the last planned checkpoint was reached (otherwise the
    run was stopped and the certificates are those of the last checkpoint reached, still valid).
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
    device: str
    selection: CellStats | None
    checkpoints: tuple = ()
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
    def pixel_cell(self) -> int:
        """Cell side in pixels for drawing (a Grad-CAM feature cell spans several pixels)."""
        return pixel_cell(self.settings.effective_cell, self.grid[0], self.input_size)

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


def sample_anytime(model, x: torch.Tensor, settings: MapSettings, scheme: str = "selection", progress=None,
                   batch_size: int | None = None):
    """Draw the samples of an anytime RRS run; yield a :class:`Sampled` after each checkpoint.

    One generator (:func:`rrs.smoothing.generator_for` ``(model, settings.seed)``): first the
    selection batch (``scheme="selection"``), then the estimation samples. Checkpoint ``j``'s
    statistics are exactly those of a fresh ``smooth`` with that many samples continuing the
    same generator, so certifying them equals a fresh :func:`rrs.certify.certify` at ``η_j``.

    Args:
        progress: optional ``progress(done, total)`` over all samples.
        batch_size: noise samples per forward/backward pass (default: the app's batch for this
            input; the maps do not depend on it). :func:`ui.jobs.anytime` passes the batch the
            compute scheduler admits.
    """
    if settings.method != "rrs":
        raise ValueError("certificates here are for RRS maps; set the method to RRS")
    plan = plan_run(settings.samples, scheme)
    start = time.perf_counter()
    xb = x[None] if x.dim() == 3 else x
    target, _, conf = predict(model, xb[0])
    gen = generator_for(model, settings.seed)
    batch = batch_size or batch_size_for(xb, settings.attribution)
    selection = None
    if plan.selection:
        sub = None if progress is None else (lambda d, t: progress(d, plan.total))
        sel = smooth(model, x, settings.replace(samples=plan.selection), target=target, generator=gen,
                     batch_size=batch, progress=sub)
        selection = sel.stats()
        grid = sel.grid
    sampled = None
    sub = None if progress is None else (lambda d, t: progress(plan.selection + d, plan.total))
    for res in smooth_stream(model, x, settings.replace(samples=plan.checkpoints[-1]), target=target,
                             checkpoints=list(plan.checkpoints), generator=gen, batch_size=batch, progress=sub):
        elapsed = time.perf_counter() - start
        total = plan.selection + res.samples
        cp = Checkpoint(int(res.samples), int(total), res.stats(), elapsed, total / max(elapsed, 1e-9))
        if sampled is None:
            grid = res.grid
            k = settings.k_for(grid[0] * grid[1])
            sampled = Sampled(settings, scheme, plan, target, model.categories[target], float(conf), tuple(grid),
                              k, int(x.shape[-1]), device_label(model), selection)
        sampled = replace(sampled, checkpoints=sampled.checkpoints + (cp,))
        yield sampled


# ---------------------------------------------------------------------- certificates

def radius_text(radius: float, norm: Norm, dim: int | None = None, plugin: bool = False) -> str:
    """A radius in plain units (ℓ∞ in 1/255 steps; ℓ1/ℓ2 with the per-value equivalent);
    ``inf`` as "unbounded at this T (plug-in)" — never a number."""
    r = float(radius)
    if math.isinf(r):
        return "unbounded at this T (plug-in)"
    if math.isnan(r):
        return "not available"
    if norm.is_inf:
        return f"{r * 255:.3g}/255 (ℓ∞)"
    text = f"{r:.3g} ({norm.label})"
    if dim:
        text += f" ≈ {norm.per_pixel(r, dim) * 255:.2g}/255 per value"
    return text


@dataclass(frozen=True)
class AnytimeView:
    """Every certificate of a :class:`Sampled` run at one :class:`CertifySettings`.

    Finite-sample numbers are the best over the checkpoints reached (valid at once with
    probability ≥ 1 − η by the η split; with the selection scheme the whole-set and the
    per-cell families each hold with probability ≥ 1 − η). Plug-in numbers are those of the
    last checkpoint (pooled samples), an estimate and not a guarantee.

    ``history``: one dict per checkpoint (``total``, ``eta_j``, whole-set radius at β = 1,
    cells certified). ``best``: ``{group: {β: radius}}`` for ``rdp_finite``/``cdf_finite``.
    ``cells_finite``: ``{"rdp"|"cdf": (n,) radii}`` (max over checkpoints). ``important`` /
    ``important_plugin``: the "stays important" radii (n,) (finite: max over checkpoints).
    """

    sampled: Sampled
    settings: CertifySettings
    report: object                  # the last checkpoint's CertificationReport
    history: tuple
    best: dict
    cells_finite: dict
    important: np.ndarray
    important_plugin: np.ndarray
    tau: float
    elapsed: float

    @property
    def norm(self) -> Norm:
        return self.settings.norm

    @property
    def eta(self) -> float:
        return self.settings.eta

    @property
    def dim(self) -> int:
        return self.sampled.dim

    @property
    def selected(self) -> np.ndarray:
        return self.report.selected

    def radius(self, group: str, beta: float) -> float:
        """Whole-set radius of ``group`` at ``beta``: finite groups best so far, plug-in groups
        (and the equal-level form) of the last checkpoint; 0 when not computed."""
        if group in self.best:
            return float(self.best[group].get(_beta_key(beta), 0.0))
        for c in getattr(self.report, group):
            if abs(c.beta - beta) < 1e-9:
                return float(c.radius)
        return 0.0

    def guaranteed(self, beta: float) -> float:
        """The page's headline: best finite-sample whole-set radius (RDP or Gaussian-CDF)."""
        return max(self.radius("rdp_finite", beta), self.radius("cdf_finite", beta))

    def plugin(self, beta: float) -> float:
        return max(self.radius("rdp_plugin", beta), self.radius("cdf_plugin", beta))

    def cell_radii(self, kind: str = "best", finite: bool = True) -> np.ndarray:
        """``(n,)`` per-cell radii: ``"rdp"``, ``"cdf"`` or ``"best"`` (their maximum; both sound)."""
        n = self.sampled.n
        if finite:
            rdp, cdf = self.cells_finite.get("rdp"), self.cells_finite.get("cdf")
        else:
            rdp = None if self.report.cells_plugin is None else self.report.cells_plugin.radii
            cdf = None if self.report.cdf_cells_plugin is None else self.report.cdf_cells_plugin.radii
        rdp = np.zeros(n) if rdp is None else np.asarray(rdp, dtype=float)
        if kind == "rdp" or cdf is None:
            return rdp
        cdf = np.asarray(cdf, dtype=float)
        return cdf if kind == "cdf" else np.maximum(rdp, cdf)

    def shown_cells(self, finite: bool = True) -> np.ndarray:
        """Cells drawn: finite — the certified top-k set plus any cell certified at a
        checkpoint; plug-in — the top-k of the pooled map (what the plug-in certificates certify)."""
        n = self.sampled.n
        mask = np.zeros(n, dtype=bool)
        if finite:
            mask[self.selected] = True
            mask |= self.cell_radii("best", True) > 0
        else:
            order = np.lexsort((np.arange(n), -np.asarray(self.sampled.pooled().mean, dtype=float)))
            mask[order[:self.sampled.k]] = True
        return mask

    def categories(self, radius: float, kind: str = "best", finite: bool = True) -> np.ndarray:
        """``(rows, cols)``: 2 = certified at ``radius``, 1 = in the top-k but not, 0 = other."""
        shown = self.shown_cells(finite)
        cat = np.where(shown, 1, 0)
        cat[shown & (self.cell_radii(kind, finite) > radius)] = 2
        return cat.reshape(self.sampled.grid)

    def radius_grid(self, kind: str = "best", finite: bool = True) -> np.ndarray:
        """Per-cell radii ``(rows, cols)``, NaN for cells not drawn (``inf`` kept: unbounded)."""
        out = np.where(self.shown_cells(finite), self.cell_radii(kind, finite), np.nan)
        return out.reshape(self.sampled.grid)

    def important_grid(self, finite: bool = True) -> np.ndarray:
        """"Stays important" radii ``(rows, cols)``, NaN where 0 (not drawn)."""
        r = self.important if finite else self.important_plugin
        return np.where(r > 0, r, np.nan).reshape(self.sampled.grid)

    def important_region(self, radius: float, finite: bool = True) -> np.ndarray:
        """``(rows, cols)`` categories for the "stays important" region: 2 = stays important at
        ``radius``, 1 = important now (score above τ) but not certified at ``radius``."""
        r = self.important if finite else self.important_plugin
        score = np.asarray(self.sampled.pooled().mean, dtype=float) / float(self.sampled.pooled().value_bound)
        cat = np.where(score > self.tau, 1, 0)
        cat[r > radius] = 2
        return cat.reshape(self.sampled.grid)

    def curves(self) -> list[dict]:
        """Radius-versus-β series. The equal-level form comes first (drawn underneath, thin
        grey); plug-in lines are solid with circles, finite-sample dotted with diamonds."""
        spec = [("equal_level", "equal-level form — not a certificate for β<1", "#9a9a9a", "dash", "x", 1.5),
                ("rdp_plugin", "RDP exact, plug-in (estimate)", P.CERTIFIED, "solid", "circle", 3),
                ("cdf_plugin", "Gaussian-CDF, plug-in (estimate)", P.TOPK, "solid", "circle", 3),
                ("rdp_finite", f"RDP exact, finite-sample (1−η = {1 - self.eta:g})", P.CERTIFIED, "dot",
                 "diamond", 2.5),
                ("cdf_finite", f"Gaussian-CDF, finite-sample (1−η = {1 - self.eta:g})", P.TOPK, "dot",
                 "diamond", 2.5)]
        out = []
        for group, name, color, dash, marker, width in spec:
            certs = getattr(self.report, group)
            if certs:
                betas = [c.beta for c in certs]
                radii = [self.radius(group, b) for b in betas]
                out.append({"name": name, "beta": betas, "radius": radii, "color": color, "dash": dash,
                            "marker": marker, "width": width, "group": group})
        return out

    def rows(self) -> list[dict]:
        """One row per (certificate, β) for the exports; finite rows are the best so far."""
        rows = []
        for r in self.report.rows():
            group = ("rdp" if r["kind"] == "rdp" else "cdf" if r["kind"] == "gaussian-cdf" else "equal_level")
            if r["kind"] != "equal-level":
                group += "_finite" if r["finite_sample"] else "_plugin"
            radius = self.radius(group, r["beta"])
            rows.append({**r, "radius": radius, "unbounded": math.isinf(radius),
                         "radius_per_value": self.norm.per_pixel(radius, self.dim) if math.isfinite(radius)
                         else math.inf, "scheme": self.sampled.scheme if r["finite_sample"] else None,
                         "eta": self.eta if r["finite_sample"] else None})
        return rows

    def cell_rows(self) -> list[dict]:
        """One row per cell drawn or important: top-k radii and the "stays important" radius."""
        cols = self.sampled.grid[1]
        mean = np.asarray(self.sampled.pooled().mean, dtype=float)
        fin, plug = self.cell_radii("best", True), self.cell_radii("best", False)
        keep = self.shown_cells(True) | (self.important > 0) | (self.important_plugin > 0)
        in_topk = np.zeros(mean.size, dtype=bool)
        in_topk[np.asarray(self.selected, dtype=int)] = True
        return [{"cell": int(i), "row": int(i) // cols, "col": int(i) % cols, "map_value": float(mean[i]),
                 "in_topk": bool(in_topk[i]), "topk_radius_finite": float(fin[i]),
                 "topk_radius_plugin": float(plug[i]), "stays_important_radius_finite": float(self.important[i]),
                 "stays_important_radius_plugin": float(self.important_plugin[i])} for i in np.flatnonzero(keep)]


def _beta_key(beta: float) -> float:
    return round(float(beta), 9)


def certify_sampled(sampled: Sampled, settings: CertifySettings, tau: float = 0.5) -> AnytimeView:
    """Certify every checkpoint of ``sampled`` at ``η_j = η·2^{−(j+1)}`` (the anytime split)
    and keep the best so far. Guarantee: with probability ≥ 1 − η every finite-sample statement
    of every checkpoint holds at once (per family for the selection scheme, see
    :func:`rrs.certify.certify`), so the best radius per β and per cell is valid now."""
    if not sampled.checkpoints:
        raise ValueError("no checkpoint reached yet")
    start = time.perf_counter()
    s = sampled.settings
    noise = s.noise_model()
    norm = float(settings.norm)
    cert = AnytimeCertifier(sampled.k, noise, t0=sampled.plan.t0, eta=settings.eta, betas=settings.betas,
                            norm=norm, dim=sampled.dim, per_cell=True, scheme=sampled.scheme,
                            selection=sampled.selection)
    n = sampled.n
    cells = {"rdp": np.zeros(n), "cdf": None}
    best = {"rdp_finite": {}, "cdf_finite": {}}
    important = np.zeros(n)
    history = []
    report = None
    for i, cp in enumerate(sampled.checkpoints):
        report = cert.update(cp.stats)
        eta_j = cert.eta_at(cert.checkpoint_index(cp.samples))
        for group in best:
            for c in getattr(report, group):
                key = _beta_key(c.beta)
                best[group][key] = max(best[group].get(key, 0.0), float(c.radius))
        if report.cells_finite is not None:
            cells["rdp"] = np.maximum(cells["rdp"], report.cells_finite.radii)
        if report.cdf_cells_finite is not None:
            prev = np.zeros(n) if cells["cdf"] is None else cells["cdf"]
            cells["cdf"] = np.maximum(prev, report.cdf_cells_finite.radii)
        imp = stays_important(sampled.pooled(i), noise, tau=tau, eta=eta_j, norm=norm, dim=sampled.dim)
        important = np.maximum(important, imp.radii)
        fin_cells = np.maximum(cells["rdp"], cells["cdf"] if cells["cdf"] is not None else 0.0)
        history.append({"checkpoint": i, "total": cp.total, "estimation": cp.samples, "eta_j": eta_j,
                        "elapsed_s": cp.elapsed,
                        "whole_set_beta1": max(best["rdp_finite"].get(1.0, 0.0), best["cdf_finite"].get(1.0, 0.0)),
                        "cells_certified": int((fin_cells > 0).sum()),
                        "stays_important": int((important > 0).sum())})
    plug = stays_important(sampled.pooled(), noise, tau=tau, norm=norm, dim=sampled.dim, finite_sample=False)
    return AnytimeView(sampled, settings, report, tuple(history), best, cells, important, plug.radii, float(tau),
                       time.perf_counter() - start)


# ---------------------------------------------------------------------------- verdict

@dataclass(frozen=True)
class Verdict:
    """``level``: ``"ok"`` (whole set ≥ one 8-bit step per value), ``"tiny"`` (something
    certified, below that) or ``"vacuous"``; ``whole`` and ``cells``: one plain line each."""

    level: str
    whole: str
    cells: str

    @property
    def text(self) -> str:
        return f"{self.whole} {self.cells}"


def verdict(view: AnytimeView, beta: float = 1.0) -> Verdict:
    """Plain-language judgement of the finite-sample certificates at ``beta``.

    The level is decided on the change *per input value* (ℓ2 and ℓ1 radii spread evenly, ℓ∞
    as is), so the same certificate gets the same level in every norm."""
    k = view.sampled.k
    whole = view.guaranteed(beta)
    radii = view.cell_radii("best", True)
    certified = radii[radii > 0]
    per_value = view.norm.per_pixel(whole, view.dim) if whole > 0 else 0.0
    text = lambda r: radius_text(r, view.norm, view.dim)  # noqa: E731
    conf = f"probability ≥ {1 - view.eta:.0%}"
    need = math.ceil(beta * k - 1e-9)
    what = f"all {k}" if need == k else f"at least {need} of the {k}"
    t = view.sampled.samples_done
    if whole > 0:
        line = (f"Whole top-k set: for every change smaller than {text(whole)}, {what} top cells stay in the "
                f"top-k together ({conf}).")
        if per_value * 255 < 1:
            line += " Real but tiny: less than one 8-bit step (1/255) per pixel value."
    else:
        line = (f"Whole top-k set: no size of change can be guaranteed yet at T = {t:,} for {what} top cells "
                "together — the set is only as stable as its least stable cell.")
    if certified.size:
        cells = (f"Per cell: {certified.size} of the {k} top cells {'is' if certified.size == 1 else 'are each'} "
                 f"guaranteed on {'its' if certified.size == 1 else 'their'} own (largest "
                 f"{text(float(certified.max()))}, {conf}) — each stays in the top-k; others may swap places.")
    else:
        cells = f"Per cell: none of the {k} top cells is guaranteed on its own yet at T = {t:,}."
    if whole > 0 and per_value * 255 >= 1:
        level = "ok"
    elif whole > 0 or certified.size:
        level = "tiny"
    else:
        level = "vacuous"
    return Verdict(level, line, cells)


# ------------------------------------------------------------------------ suggestions

@dataclass(frozen=True)
class Suggestion:
    """A "try this": ``updates`` to the page settings, the predicted finite-sample numbers
    (whole-set radius at the page's β, cells certified on their own) and seconds."""

    label: str
    updates: dict
    radius: float
    cells: int
    seconds: float | None
    now_radius: float
    now_cells: int


def project(pooled: CellStats, sampled: Sampled, settings: CertifySettings, total: int, beta: float,
            map_settings: MapSettings | None = None) -> tuple[float, int]:
    """Predicted finite-sample numbers of a run of ``total`` samples, taking ``pooled`` (the
    current map, or a pilot's) as the true expectation: the last checkpoint's certificate at
    its ``η_J`` with the counts scaled to that many samples. An estimate, not a certificate.

    Returns ``(whole-set radius at beta, cells certified on their own)``."""
    s = map_settings or sampled.settings
    plan = plan_run(total, sampled.scheme)
    eta_j = settings.eta * 2.0 ** (-len(plan.checkpoints))
    n = np.asarray(pooled.mean).size
    k = s.k_for(n)
    est = replace(pooled, samples=int(plan.checkpoints[-1]))
    sel = replace(pooled, samples=int(plan.selection)) if plan.selection else None
    rep = certify(est, k, s.noise_model(), betas=(float(beta),), norm=float(settings.norm), dim=sampled.dim,
                  eta=eta_j, scheme=sampled.scheme, selection=sel)
    whole = max([c.radius for c in rep.rdp_finite + rep.cdf_finite] + [0.0])
    cells = np.zeros(n)
    for cc in (rep.cells_finite, rep.cdf_cells_finite):
        if cc is not None:
            cells = np.maximum(cells, cc.radii)
    return float(whole), int((cells > 0).sum())


def _better(radius, cells, now_radius, now_cells) -> bool:
    if now_radius > 0 or radius > 0:
        return radius > now_radius * 1.05
    return cells > now_cells


def suggestions(view: AnytimeView, beta: float, cap: int, cell_options=(), pilots: dict | None = None) -> list:
    """The "try this" list: each predicted to raise the certificate, with its predicted time.

    * more samples (4× T, up to ``cap``): projected from the current map (:func:`project`);
    * a coarser cell size or another σ: projected from a short pilot map in ``pilots``
      (``{label: (updates, pooled CellStats, MapSettings)}``, computed by the page on request);
    * a smaller β (0.8): read off the current certificate (no sampling).
    Offered only when the prediction beats the current whole-set radius at ``beta`` (or, when
    that is 0 everywhere, the number of cells certified on their own).
    """
    s, sampled = view.sampled.settings, view.sampled
    now_r = view.guaranteed(beta)
    now_c = int((view.cell_radii("best", True) > 0).sum())
    rate = sampled.rate
    secs = (lambda t: t / rate) if rate > 0 else (lambda t: None)
    out = []
    more = min(cap, 4 * s.samples)
    if more > s.samples:
        r, c = project(sampled.pooled(), sampled, view.settings, more, beta)
        if _better(r, c, now_r, now_c):
            out.append(Suggestion(f"Use T = {more:,} samples", {"samples": more}, r, c, secs(more), now_r, now_c))
    for label, (updates, pooled, pilot_settings) in (pilots or {}).items():
        r, c = project(pooled, sampled, view.settings, s.samples, beta, pilot_settings)
        if _better(r, c, now_r, now_c):
            out.append(Suggestion(label, updates, r, c, secs(s.samples), now_r, now_c))
    if beta > 0.8:
        r = view.guaranteed(0.8)
        if r > now_r * 1.05:
            out.append(Suggestion("Allow 20% of the top-k to change (β = 0.8)", {"beta": 0.8}, r, now_c, 0.0,
                                  now_r, now_c))
    return out


def pilot_candidates(settings: MapSettings, cell_options) -> dict:
    """Settings worth a pilot: the next coarser cell size, and σ × 1.6 and σ / 1.6 (in range)."""
    out = {}
    coarser = [c for c in cell_options if c > settings.cell]
    if coarser and settings.attribution != "gradcam":
        out[f"Use coarser {min(coarser)}-px cells"] = {"cell": int(min(coarser))}
    for sigma in (round(settings.sigma * 1.6, 2), round(settings.sigma / 1.6, 2)):
        if 0.01 <= sigma <= 0.5 and sigma != settings.sigma:
            out[f"Try σ = {sigma:g}"] = {"sigma": float(sigma)}
    return out


def run_pilots(model, x, settings: MapSettings, cell_options, samples: int = 32, progress=None,
               batch_size: int | None = None) -> dict:
    """Short pilot maps (``samples`` each, same seed) for :func:`pilot_candidates`;
    ``{label: (updates, pooled CellStats, MapSettings)}`` for :func:`suggestions`
    (``batch_size``: default the app's batch; the maps do not depend on it)."""
    out = {}
    cands = pilot_candidates(settings, cell_options)
    for i, (label, updates) in enumerate(cands.items()):
        ps = settings.replace(samples=int(samples), **updates)
        sub = None if progress is None else (lambda d, t, i=i: progress(i * samples + d, len(cands) * samples))
        res = smooth(model, x, ps, batch_size=batch_size or batch_size_for(x[None], ps.attribution), progress=sub)
        out[label] = (updates, res.stats(), ps)
    return out


# ------------------------------------------------------------------- try to break it

@dataclass(frozen=True)
class BreakResult:
    """The interpretation attack at the certified radius and at ``factor`` × it.

    ``source``: which radius was attacked (``"whole-set finite-sample"``, ``"per-cell
    finite-sample"`` or ``"per-cell plug-in (estimate)"``); ``claimed``: the cells the
    certificate says stay at that radius; per budget ``(epsilon, held, intersection, floor,
    label_kept)``: how many claimed cells are still in the attacked map's top-k, the top-k
    intersection clean → attacked and its no-attack floor."""

    source: str
    radius: float
    claimed: tuple
    norm: Norm
    factor: float
    budgets: tuple
    eval_samples: int
    elapsed: float

    def lines(self, dim: int) -> list[str]:
        """Plain sentences computed from the numbers."""
        c = len(self.claimed)
        out = []
        for i, (eps, held, inter, floor, kept) in enumerate(self.budgets):
            size = radius_text(eps, self.norm, dim)
            label = "" if kept else " (the attack could not keep the label)"
            if i == 0:
                verb = (f"all {c} certified cell{'s' * (c != 1)} held" if held == c else
                        f"only {held} of {c} certified cells held")
                out.append(f"At the certified radius {size} ({self.source}): {verb} in the top-k; "
                           f"top-k overlap {inter:.2f} (no-attack floor {floor:.2f}){label}.")
            else:
                lost = c - held
                what = (f"{lost} of the {c} certified cells were pushed out" if lost else
                        f"all {c} certified cell{'s' * (c != 1)} still held (the attack found no way out)")
                out.append(f"At {self.factor:g}× that budget ({size}), beyond the guarantee: {what}; top-k "
                           f"overlap {inter:.2f} (floor {floor:.2f}){label}.")
        return out


def break_plan(view: AnytimeView, beta: float, kind: str = "best") -> tuple[str, float, np.ndarray]:
    """``(source, radius, claimed cells)`` for :func:`break_it`: the whole-set finite radius
    when > 0 (claimed: the top-k set), else the largest per-cell finite radius (claimed: cells
    with at least that radius), else the same with plug-in radii (an estimate, said so)."""
    whole = view.guaranteed(beta)
    fin = view.cell_radii(kind, True)
    plug = view.cell_radii(kind, False)
    if whole > 0 and beta >= 1.0:
        return "whole-set finite-sample", whole, np.asarray(view.selected)
    for source, radii in (("per-cell finite-sample", fin), ("per-cell plug-in (estimate)", plug)):
        finite = radii[np.isfinite(radii) & (radii > 0)]
        if finite.size:
            r = float(finite.max())
            return source, r, np.flatnonzero(radii >= r)
    return "none", 0.0, np.zeros(0, dtype=int)


BREAK_EOT = 2     # noise draws per attack step of "Try to break it"


def break_it(model, x, view: AnytimeView, beta: float = 1.0, kind: str = "best", factor: float = 10.0,
             eval_samples: int = 64, steps: int = 5, eot: int = BREAK_EOT, progress=None,
             batch_size: int | None = None) -> BreakResult:
    """Run the top-k interpretation attack (:func:`rrs.attacks.attack`, the page's norm) at
    the certified radius and at ``factor`` × it; count the claimed cells that stay in the top-k.

    The attacked map is a Monte Carlo estimate with ``eval_samples`` samples (seed s + 1), so
    it is compared with the no-attack floor at the same ``T``."""
    from rrs.attacks import attack

    norm = view.norm
    if not (norm.is_inf or norm.p == 2.0):
        raise ValueError("the attack supports ℓ2 and ℓ∞ budgets; switch the threat norm to ℓ2 or ℓ∞")
    source, radius, claimed = break_plan(view, beta, kind)
    if radius <= 0:
        raise ValueError("nothing is certified yet (not even as a plug-in estimate): run with more samples first")
    start = time.perf_counter()
    settings = view.sampled.settings.replace(samples=int(min(eval_samples, view.sampled.settings.samples)))
    budgets = []
    for i, eps in enumerate((radius * (1 - 1e-6), radius * factor)):
        if norm.is_inf:
            eps = min(eps, 1.0)
        sub = None if progress is None else (lambda d, t, i=i: progress(i + d / max(t, 1), 2))
        res = attack(model, x, settings, AttackSettings(objective="topk", norm=norm, epsilon=float(eps), steps=steps,
                                                        eot=eot, seed=int(settings.seed)),
                     target=view.sampled.target, progress=sub,
                     batch_size=batch_size or batch_size_for(x[None], settings.attribution))
        top = set(metrics.topk_indices(res.attacked_map.double().numpy(), view.sampled.k).tolist())
        held = sum(int(c) in top for c in claimed)
        budgets.append((float(eps), held, float(res.topk_intersection), float(res.floor.topk_intersection),
                        bool(res.label_preserved)))
    return BreakResult(source, radius, tuple(int(c) for c in claimed), norm, float(factor), tuple(budgets),
                       int(settings.samples), time.perf_counter() - start)
