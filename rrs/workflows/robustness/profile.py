"""The robustness profile: break radii of attacked maps next to certified radii (issue 15).

For one image and a set of methods (raw and smoothed maps, each a :class:`MapSettings`):

* :func:`robustness_profile` — the attacked top-k overlap along a geometric budget sweep
  (:class:`RobustnessSettings`), **warm-started**: the attack at budget ``b_i`` starts from the
  adversarial point of ``b_{i−1}`` (inside the larger ball, so no projection is even needed);
  the **empirical break radius** (the smallest budget at which the top-k attack pushes a
  top-k cell out while keeping the label), refined by bisection between the last held and
  the first broken budget; for smoothed maps the **certified radius** (finite-sample, β = 1
  whole set, and the largest per-cell radius, :func:`rrs.certify.certify`) on the same axis.
* :func:`certify_method` — a smoothed map's finite-sample certificate (β = 1 and per cell).
* ``_Method`` — one method's prepared state and its attack at one budget (shared with
  :func:`rrs.workflows.robustness.contrast.contrast`, the single-budget version).

Reading a smoothed map's attack (a Monte Carlo estimate). With ``s`` the map's seed, the
reference map is the map of ``x`` at the certificate's ``T`` (seed ``s``; its top-k cells are
the cells attacked). The attacked map is measured with ``sweep_samples`` at seed ``s + 1`` and
compared with the no-attack floor at the same seed and ``T`` (:func:`rrs.floor.no_attack_floor`,
common random numbers): a budget is a *candidate* break when the attacked overlap with the
reference is below that floor. A candidate is **confirmed** with ``confirm_samples`` at a
fresh seed ``s + CONFIRM_SEED_OFFSET`` (clean and attacked maps with the same noise): the
attacked overlap must again be below the clean map's, and at least one top-k cell that the
clean map keeps under that noise must be out of the attacked map's top-k. Unconfirmed
candidates count as held, so sampling noise is not counted as a break. Raw maps are
deterministic (floor 1): any top-k cell out is a break.

Sweep monotonicity: every budget's ball contains the previous one, so the reported overlap
at ``b_i`` is the lowest found at any budget ``≤ b_i`` (when the attack from the warm start
ends at a higher overlap, the warm start itself is kept). Early exit: a raw attack stops as
soon as every top-k cell is out (sweep) or one is (bisection); a budget whose warm start
already has every top-k cell out is not attacked again.
"""
from __future__ import annotations

import math
import time

import numpy as np
import torch

from ... import attacks, checks
from ...certify import certify, merge_stats
from ...floor import no_attack_floor
from ...metrics import tie_aware_intersection, topk_indices
from ...settings import CertifySettings, MapSettings
from ...smoothing import generator_for, interpretation_map, model_device, smooth
from .results import Certified, MethodProfile, RobustnessProfile
from .settings import _TOL, CONFIRM_SEED_OFFSET, RobustnessSettings

__all__ = ["robustness_profile", "certify_method"]


# ====================================================================== certificates

def certify_method(model, x, settings: MapSettings, cert: CertifySettings, *, target=None,
                   batch_size: int = 16, progress=None) -> Certified:
    """The finite-sample certificate of a smoothed map (``settings.samples`` draws, seed
    ``s``; the ``cert.scheme`` of method.md §5), at β = 1 and per cell.

    With the selection scheme the first ``T/8`` draws choose ``K̂`` and the rest prove it,
    on one generator, so the pooled reference is the ``T``-sample map of seed ``s``."""
    if not settings.smoothed:
        raise ValueError(f"{settings.info.label} is not a smoothed map: it has no certificate")
    t0 = time.perf_counter()
    cert = cert.replace(betas=(1.0,), cell_radii=True)
    if cert.scheme == "bonferroni":
        res = smooth(model, x, settings, target=target, batch_size=batch_size, progress=progress)
        stats, selection, est = res.stats(0), None, res
    else:
        if settings.samples < 16:
            raise ValueError("the selection scheme needs T ≥ 16 (T/8 samples choose the top-k set)")
        g = generator_for(model, settings.seed)
        first = settings.samples // 8
        sel = smooth(model, x, settings.replace(samples=first), target=target, generator=g, batch_size=batch_size)
        est = smooth(model, x, settings.replace(samples=settings.samples - first), target=target, generator=g,
                     batch_size=batch_size, progress=progress)
        stats, selection = merge_stats(sel.stats(0), est.stats(0)), sel.stats(0)
    reference = torch.as_tensor(stats.mean, dtype=torch.float32).reshape(est.grid)
    k = settings.k_for(reference.numel())
    certifiable = bool(settings.info.certificate) and est.value_bound is not None
    if not certifiable:
        return Certified(reference, tuple(int(i) for i in topk_indices(reference, k)), None, None,
                         settings.samples, time.perf_counter() - t0)
    report = certify(est.stats(0) if selection is not None else stats, k, est.noise, dim=est.dim,
                     rrs_map=settings.method == "rrs", settings=cert, selection=selection)
    whole = max([c.radius for c in report.rdp_finite + report.cdf_finite if c.beta == 1.0] or [0.0])
    n = reference.numel()
    radii = np.zeros(n)
    for cells in (report.cells_finite, report.cdf_cells_finite):
        if cells is not None:
            radii = np.maximum(radii, np.asarray(cells.radii, dtype=float))
    return Certified(reference, tuple(int(i) for i in report.selected), float(whole), radii,
                     settings.samples, time.perf_counter() - t0)


# ============================================================================= sweep

class _Method:
    """One method's prepared state: the reference map, its top-k cells, the measured
    settings, the floor and the cached confirmation map."""

    def __init__(self, model, x, settings: MapSettings, rs: RobustnessSettings, target, batch_size,
                 reference: torch.Tensor | None):
        self.model, self.x, self.settings, self.rs = model, x, settings, rs
        self.target, self.batch_size = target, batch_size
        self.smoothed = settings.smoothed
        self.measured = (settings.replace(samples=min(rs.sweep_samples, settings.samples)) if self.smoothed
                         else settings)
        self.map_gradients = 0
        self.attack_gradients = 0
        if reference is None:
            reference = interpretation_map(model, x, settings, target=target, batch_size=batch_size)
            self.map_gradients += settings.samples if self.smoothed else 1
        self.reference = reference.detach().cpu()
        self.k = settings.k_for(self.reference.numel())
        self.top = topk_indices(self.reference, self.k)
        self.floor = no_attack_floor(model, x, self.measured, target=target, batch_size=batch_size,
                                     map_a=self.reference)
        self.map_gradients += self.measured.samples if self.smoothed else 0
        self._confirm_clean = None

    def fallen(self, attacked, clean=None) -> tuple:
        """Top-k cells of the reference out of ``attacked``'s top-k (and, for a smoothed map,
        inside the top-k of ``clean``, the clean map under the same noise)."""
        out = set(topk_indices(attacked, self.k).tolist())
        keep = None if clean is None else set(topk_indices(clean, self.k).tolist())
        return tuple(int(i) for i in self.top if i not in out and (keep is None or i in keep))

    def run(self, epsilon: float, init, until_all: bool):
        """The attack at ``epsilon`` from ``init``; returns ``(result, overlap, fallen)``."""
        reference, k = self.reference, self.k

        def all_out(m):
            return tie_aware_intersection(reference, m, k) <= _TOL

        def one_out(m):
            return tie_aware_intersection(reference, m, k) < 1 - _TOL
        until = None if self.smoothed else (all_out if until_all else one_out)
        r = attacks.attack(self.model, self.x, self.measured, self.rs.attack(epsilon), target=self.target,
                           batch_size=self.batch_size, init=init, until=until, clean_map=reference,
                           floor=self.floor)
        eot = self.rs.eot if self.smoothed else 1
        self.attack_gradients += len(r.history) * eot
        checks_ = r.accepted_steps + r.rejected_steps + 1
        self.map_gradients += 2 * self.measured.samples if self.smoothed else checks_
        clean = self.floor.map_b if self.smoothed else None
        return r, float(r.topk_intersection), self.fallen(r.attacked_map, clean)

    def candidate(self, r, overlap: float) -> bool:
        """Looks broken: label kept and the overlap below the floor (raw: below 1)."""
        return bool(r.label_preserved) and overlap < self.floor.topk_intersection - _TOL

    def confirm(self, x_adv) -> tuple:
        """``(confirmed, overlap, floor, fallen)`` at ``confirm_samples``, fresh seed, same noise
        for the clean and attacked maps (raw maps: always confirmed, nothing to sample)."""
        if not self.smoothed:
            return True, math.nan, 1.0, ()
        s = self.settings.replace(samples=self.rs.confirm_samples,
                                  seed=self.settings.seed + CONFIRM_SEED_OFFSET)
        if self._confirm_clean is None:
            self._confirm_clean = interpretation_map(self.model, self.x, s, target=self.target,
                                                     batch_size=self.batch_size)
            self.map_gradients += s.samples
        attacked = interpretation_map(self.model, x_adv, s, target=self.target, batch_size=self.batch_size)
        self.map_gradients += s.samples
        clean = self._confirm_clean
        overlap = tie_aware_intersection(self.reference, attacked, self.k)
        floor = tie_aware_intersection(self.reference, clean, self.k)
        fallen = self.fallen(attacked, clean)
        return (overlap < floor - _TOL and bool(fallen)), overlap, floor, fallen


def _profile_one(model, x, settings: MapSettings, rs: RobustnessSettings, cert: CertifySettings | None,
                 target, batch_size, progress) -> MethodProfile:
    timings = {}
    t = time.perf_counter()
    certified = None
    if settings.smoothed and cert is not None and settings.info.certificate:
        if not (cert.norm.p == rs.norm.p):
            raise ValueError(f"the certificate's norm {cert.norm.label} differs from the sweep's {rs.norm.label}")
        certified = certify_method(model, x.squeeze(0), settings, cert, target=target, batch_size=batch_size)
    timings["certify"] = time.perf_counter() - t
    st = _Method(model, x, settings, rs, target, batch_size, None if certified is None else certified.reference)
    if certified is not None:
        st.map_gradients += certified.samples

    rows = []            # (budget, overlap, spearman, label_kept, fallen, candidate)
    confirmations = []
    phase = {"sweep": 0.0, "confirm": 0.0, "bisection": 0.0}
    point = None         # warm start: the previous budget's adversarial point
    prev = None          # (overlap, spearman, label, fallen, x_adv) carried when better
    held, broken_at = (0.0, None), None   # (budget, point)
    grid = rs.grid
    for i, eps in enumerate(grid):
        t = time.perf_counter()
        if rs.warm_start and prev is not None and prev[2] and prev[0] <= _TOL:
            overlap, rho, kept, fallen, x_adv = prev          # every top-k cell is already out
        else:
            r, overlap, fallen = st.run(eps, point if rs.warm_start else None, until_all=True)
            rho, kept, x_adv = float(r.spearman), bool(r.label_preserved), r.x_adv
            if prev is not None and prev[2] and (prev[0] < overlap or not kept):
                overlap, rho, kept, fallen, x_adv = prev
        cand = kept and overlap < st.floor.topk_intersection - _TOL
        phase["sweep"] += time.perf_counter() - t
        if cand and broken_at is None:
            t = time.perf_counter()
            ok, co, cf, cfallen = st.confirm(x_adv)
            if st.smoothed:
                confirmations.append((eps, co, cf, ok))
            phase["confirm"] += time.perf_counter() - t
            if ok:
                broken_at = (eps, x_adv, cfallen if st.smoothed else fallen)
        if broken_at is None:
            held = (eps, x_adv)
        rows.append((eps, overlap, rho, kept, fallen, cand))
        prev, point = (overlap, rho, kept, fallen, x_adv), x_adv
        if progress is not None:
            progress(i + 1, len(grid) + rs.bisection)

    bisection = []
    t, confirm_before = time.perf_counter(), phase["confirm"]
    if broken_at is not None:
        lo, lo_point = held
        hi, hi_point, hi_fallen = broken_at
        for j in range(rs.bisection):
            mid = math.sqrt(lo * hi) if lo > 0 else hi / 2
            r, overlap, fallen = st.run(mid, hi_point if rs.warm_start else None, until_all=False)
            ok = st.candidate(r, overlap)
            if ok and st.smoothed:
                tc = time.perf_counter()
                ok, co, cf, cfallen = st.confirm(r.x_adv)
                confirmations.append((mid, co, cf, ok))
                phase["confirm"] += time.perf_counter() - tc
                fallen = cfallen
            bisection.append((mid, bool(ok)))
            if ok:
                hi, hi_point, hi_fallen = mid, r.x_adv, fallen
            else:
                lo = mid
            if progress is not None:
                progress(len(grid) + j + 1, len(grid) + rs.bisection)
        broken_at = (hi, hi_point, hi_fallen)
        held = (lo, None)
    phase["bisection"] = time.perf_counter() - t - (phase["confirm"] - confirm_before)
    timings.update(phase)
    return MethodProfile(
        settings=settings, k=st.k, top_cells=tuple(int(i) for i in st.top),
        budgets=tuple(r[0] for r in rows), overlap=tuple(r[1] for r in rows), spearman=tuple(r[2] for r in rows),
        label_kept=tuple(r[3] for r in rows), fallen=tuple(tuple(r[4]) for r in rows),
        candidate=tuple(bool(r[5]) for r in rows), floor=float(st.floor.topk_intersection),
        sweep_samples=st.measured.samples if st.smoothed else 0, broken=broken_at is not None,
        break_radius=None if broken_at is None else float(broken_at[0]), held_radius=float(held[0]),
        fallen_at_break=() if broken_at is None else tuple(int(c) for c in broken_at[2]),
        bisection=tuple(bisection), confirmations=tuple(confirmations),
        certified_radius=None if certified is None else certified.radius,
        certified_cell_radius=None if certified is None else certified.cell_radius,
        cell_radii=() if certified is None or certified.cell_radii is None else
        tuple((int(c), float(certified.cell_radii[c])) for c in certified.selected),
        selected=() if certified is None else certified.selected,
        cost={"map": int(st.map_gradients), "attack": int(st.attack_gradients)}, timings=timings)


def robustness_profile(model, x, methods, settings: RobustnessSettings | None = None,
                       certify: CertifySettings | None = None, *, target=None, progress=None,
                       batch_size: int = 16) -> RobustnessProfile:
    """The robustness profile of ``x`` for every method (see the module docstring).

    Args:
        model: classifier on pixel-space inputs in ``[0, 1]``.
        x: one image ``(C, H, W)`` in ``[0, 1]``.
        methods: :class:`MapSettings`, one per method (:func:`method_settings` builds them
            from one base); smoothed maps are certified at their own ``samples``.
        settings: the sweep (:class:`RobustnessSettings`; default ℓ2).
        certify: the certificates of the smoothed maps (default ``CertifySettings(norm=the
            sweep's norm)``); ``None``-valued radii for methods without certificate.
        target: class explained (default: the predicted class).
        progress: optional ``progress(done, total)`` over all methods' budgets.
    """
    settings = RobustnessSettings() if settings is None else settings
    if not isinstance(settings, RobustnessSettings):
        raise ValueError(f"settings must be RobustnessSettings, got {type(settings).__name__}")
    methods = tuple(methods)
    if not methods or not all(isinstance(m, MapSettings) for m in methods):
        raise ValueError("methods must be one or more rrs.MapSettings (see method_settings)")
    certify = CertifySettings(norm=settings.norm) if certify is None else certify
    start = time.perf_counter()
    device = model_device(model)
    x = checks.image(x).detach().to(device)
    if target is None:
        with torch.no_grad():
            target = int(model(x).argmax(1))
    per = len(settings.grid) + settings.bisection
    out = []
    for i, s in enumerate(methods):
        sub = None if progress is None else (lambda d, t, i=i: progress(i * per + d, len(methods) * per))
        out.append(_profile_one(model, x, s, settings, certify, int(target), batch_size, sub))
    return RobustnessProfile(settings, certify, tuple(out), int(target), time.perf_counter() - start)
