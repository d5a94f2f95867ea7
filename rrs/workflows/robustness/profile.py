"""What a guarantee is worth: break radii of attacked maps next to certified radii (issue 15).

For one image and a set of methods (raw and smoothed maps, each a :class:`MapSettings`):

* :func:`robustness_profile` — the attacked top-k overlap along a geometric budget sweep
  (:class:`RobustnessSettings`), **warm-started**: the attack at budget ``b_i`` starts from the
  adversarial point of ``b_{i−1}`` (inside the larger ball, so no projection is even needed);
  the **empirical break radius** (the smallest budget at which the top-k attack pushes a
  top-k cell out while keeping the label), refined by bisection between the last held and
  the first broken budget; for smoothed maps the **certified radius** (finite-sample, β = 1
  whole set, and the largest per-cell radius, :func:`rrs.certify.certify`) on the same axis.
* :func:`contrast` — the cheap single-budget version for the pages: every method attacked at
  one budget (e.g. the certified radius): which top cells fell, clean and attacked maps, the
  attacked image, the label.
* :func:`sentence` — the one-line story computed from those numbers.

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
from dataclasses import dataclass, field

import numpy as np
import torch

from ... import attacks, checks
from ...certify import certify, merge_stats
from ...floor import no_attack_floor
from ...metrics import spearman as _spearman
from ...metrics import tie_aware_intersection, topk_indices
from ...settings import L2, AttackSettings, CertifySettings, MapSettings, Norm, _Settings
from ...smoothing import generator_for, interpretation_map, model_device, smooth

__all__ = ["RobustnessSettings", "MethodProfile", "RobustnessProfile", "Certified", "Panel",
           "robustness_profile", "certify_method", "contrast", "sentence", "method_settings",
           "CONFIRM_SEED_OFFSET", "DEFAULT_RANGES", "predicted_gradients"]

#: The confirmation's noise seed is the map's seed plus this (fresh: the floors use s, s + 1).
CONFIRM_SEED_OFFSET = 101
#: Default sweep ranges per norm (pixel units): ℓ2 0.01 … 2, ℓ∞ 0.1/255 … 8/255.
DEFAULT_RANGES = {"l2": (0.01, 2.0), "linf": (0.1 / 255, 8 / 255)}
_TOL = 1e-9


# =========================================================================== settings

@dataclass(frozen=True)
class RobustnessSettings(_Settings):
    """A robustness profile: the budget sweep, the attack at each budget and the checks.

    Args:
        norm: ``l2`` or ``linf`` (the attack's threat ball and the certificates' norm).
        low, high: the smallest and largest budget of the geometric sweep (pixel units;
            default :data:`DEFAULT_RANGES` for the norm).
        budgets: number of budgets in the sweep (≥ 2).
        steps: PGD steps per budget (warm starts carry the progress along the sweep).
        eot: noise draws per attack step on smoothed maps.
        bisection: bisection steps between the last held and the first broken budget.
        sweep_samples: ``T`` of a smoothed map measured along the sweep (at most the map's T).
        confirm_samples: ``T`` of the confirmation of a smoothed map's break (fresh seed).
        seed: the attack's seed (EOT noise).
        warm_start: start each budget's attack from the previous budget's adversarial point
            (``False``: from the image, the baseline that ``bench/robustness.py`` times).
    """

    norm: Norm = L2
    low: float | None = None
    high: float | None = None
    budgets: int = 8
    steps: int = 10
    eot: int = 2
    bisection: int = 3
    sweep_samples: int = 64
    confirm_samples: int = 256
    seed: int = 0
    warm_start: bool = True

    def __post_init__(self):
        norm = Norm.parse(self.norm)
        if norm.p not in (2.0, math.inf):
            raise ValueError(f"the robustness profile supports ℓ2 and ℓ∞ budgets, got {norm.label}")
        object.__setattr__(self, "norm", norm)
        lo, hi = DEFAULT_RANGES[norm.key]
        low = lo if self.low is None else checks.positive("low (smallest budget)", self.low)
        high = hi if self.high is None else checks.positive("high (largest budget)", self.high)
        if self.low is not None:
            object.__setattr__(self, "low", low)
        if self.high is not None:
            object.__setattr__(self, "high", high)
        if not low < high:
            raise ValueError(f"the smallest budget must be below the largest, got {low:g} and {high:g}")
        if norm.is_inf and high > 1:
            raise ValueError(f"an ℓ∞ budget above 1 covers all of [0, 1]; got high={high:g}")
        object.__setattr__(self, "budgets", checks.integer("budgets", self.budgets, low=2))
        object.__setattr__(self, "steps", checks.integer("steps", self.steps))
        object.__setattr__(self, "eot", checks.integer("eot", self.eot))
        object.__setattr__(self, "bisection", checks.integer("bisection", self.bisection, low=0))
        object.__setattr__(self, "sweep_samples", checks.integer("sweep_samples", self.sweep_samples))
        object.__setattr__(self, "confirm_samples", checks.integer("confirm_samples", self.confirm_samples))
        object.__setattr__(self, "seed", checks.integer("seed", self.seed, low=0))
        object.__setattr__(self, "warm_start", bool(self.warm_start))

    @property
    def grid(self) -> tuple:
        """The sweep's budgets: ``budgets`` geometric steps from ``low`` to ``high``."""
        lo, hi = DEFAULT_RANGES[self.norm.key]
        lo = lo if self.low is None else self.low
        hi = hi if self.high is None else self.high
        return tuple(float(v) for v in np.geomspace(lo, hi, self.budgets))

    def attack(self, epsilon: float) -> AttackSettings:
        """The top-k attack at one budget."""
        return AttackSettings(objective="topk", norm=self.norm, epsilon=float(epsilon), steps=self.steps,
                              eot=self.eot, seed=self.seed)


def method_settings(base: MapSettings, methods) -> tuple:
    """One :class:`MapSettings` per method name, everything else from ``base``."""
    return tuple(base.replace(method=m) for m in methods)


# ============================================================================ results

@dataclass(frozen=True)
class Certified:
    """A smoothed map's finite-sample certificate (:func:`certify_method`).

    ``reference``: the map at the certificate's ``T`` (seed ``s``), whose top-k cells are
    attacked; ``selected``: the certified top-k set ``K̂``; ``radius``: the whole-set β = 1
    radius (best of RDP and Gaussian-CDF, 0 when none); ``cell_radii``: ``(n,)`` per-cell
    radii (best of both; 0 outside ``K̂``). ``radius`` is ``None`` when the method has no
    certificate (plain SmoothGrad: unbounded values)."""

    reference: torch.Tensor
    selected: tuple
    radius: float | None
    cell_radii: np.ndarray | None
    samples: int
    elapsed: float

    @property
    def cell_radius(self) -> float | None:
        """The largest per-cell radius."""
        return None if self.cell_radii is None else float(np.max(self.cell_radii, initial=0.0))

    def provably_kept(self, epsilon: float) -> int:
        """Top-k cells certified to stay for every change of norm ``< radius`` with radius > ``epsilon``."""
        return 0 if self.cell_radii is None else int(np.sum(self.cell_radii > epsilon))


@dataclass(frozen=True)
class MethodProfile:
    """One method's robustness profile (see the module docstring).

    Per budget (``budgets``, ascending): ``overlap`` (tie-aware top-k intersection of the
    attacked map with the reference map), ``spearman``, ``label_kept``, ``fallen`` (top-k
    cells pushed out) and ``candidate`` (the budget looked broken before confirmation).
    ``floor``: the overlap without attack at the sweep's ``T`` (1 for raw maps).
    ``broken``: a confirmed break was found; then ``break_radius`` is the smallest budget
    (sweep and bisection) with a confirmed break and ``held_radius`` the largest tested budget
    below it that held (0 when the first budget broke); otherwise ``break_radius`` is ``None``
    and ``held_radius`` the largest budget ("not broken up to ``held_radius``").
    ``fallen_at_break``: cells out at the break (confirmed ones for smoothed maps).
    ``certified_radius`` (whole set, β = 1) and ``certified_cell_radius`` (largest per cell):
    finite-sample radii of smoothed maps (``None`` for raw maps or without certificate);
    ``cell_radii``: ``(cell, radius)`` for the certified top-k set. ``cost``: gradient
    evaluations by kind (``map`` — real-model attributions; ``attack`` — surrogate double
    backward samples); ``timings``: seconds by phase.
    """

    settings: MapSettings
    k: int
    top_cells: tuple
    budgets: tuple
    overlap: tuple
    spearman: tuple
    label_kept: tuple
    fallen: tuple
    candidate: tuple
    floor: float
    sweep_samples: int
    broken: bool
    break_radius: float | None
    held_radius: float
    fallen_at_break: tuple
    bisection: tuple = ()            # (budget, broken) per bisection step
    confirmations: tuple = ()        # (budget, overlap, floor, confirmed) per confirmation
    certified_radius: float | None = None
    certified_cell_radius: float | None = None
    cell_radii: tuple = ()
    selected: tuple = ()
    cost: dict = field(default_factory=dict)
    timings: dict = field(default_factory=dict)

    @property
    def method(self) -> str:
        return self.settings.method

    @property
    def gap(self) -> float | None:
        """Break radius ÷ whole-set certified radius (the certificate's tightness; ≥ 1 when sound)."""
        if not self.broken or not self.certified_radius:
            return None
        return self.break_radius / self.certified_radius

    @property
    def cell_gap(self) -> float | None:
        """Break radius (first cell out) ÷ the largest per-cell certified radius."""
        if not self.broken or not self.certified_cell_radius:
            return None
        return self.break_radius / self.certified_cell_radius

    def contradictions(self) -> tuple:
        """Certified claims that the confirmed break contradicts (a soundness failure; empty
        when sound): the whole-set radius above the break radius, or a cell pushed out at the
        break whose per-cell radius is above the break radius."""
        if not self.broken:
            return ()
        b, out = self.break_radius, []
        if self.certified_radius is not None and self.certified_radius > b:
            out.append(f"whole-set radius {self.certified_radius:.4g} > break radius {b:.4g}")
        radii = dict(self.cell_radii)
        out += [f"cell {c}: certified radius {radii[c]:.4g} > break radius {b:.4g}"
                for c in self.fallen_at_break if radii.get(c, 0.0) > b]
        return tuple(out)

    def to_dict(self) -> dict:
        from ...jsonio import plain

        out = plain({f: getattr(self, f) for f in self.__dataclass_fields__})
        out["gap"], out["cell_gap"] = plain(self.gap), plain(self.cell_gap)
        return out

    @classmethod
    def from_dict(cls, data: dict) -> "MethodProfile":
        data = dict(data)
        data.pop("gap", None)
        data.pop("cell_gap", None)
        data["settings"] = MapSettings.from_dict(data["settings"])

        def tup(v):
            return tuple(tup(i) for i in v) if isinstance(v, list) else v
        for name in ("top_cells", "budgets", "overlap", "spearman", "label_kept", "fallen", "candidate",
                     "fallen_at_break", "bisection", "confirmations", "cell_radii", "selected"):
            data[name] = tup(data.get(name, []))
        for name in ("certified_radius", "certified_cell_radius", "break_radius"):
            if isinstance(data.get(name), str):
                data[name] = float(data[name])
        return cls(**data)


@dataclass(frozen=True)
class RobustnessProfile:
    """The profile of every method on one image: ``methods`` in the order asked, with the
    settings that made them (``settings``, ``certify``), the explained class and timings."""

    settings: RobustnessSettings
    certify: CertifySettings | None
    methods: tuple
    target: int
    elapsed: float

    def method(self, name: str) -> MethodProfile:
        for m in self.methods:
            if m.method == name:
                return m
        raise KeyError(name)

    def to_dict(self) -> dict:
        return {"settings": self.settings.to_dict(),
                "certify": None if self.certify is None else self.certify.to_dict(),
                "methods": [m.to_dict() for m in self.methods], "target": self.target, "elapsed": self.elapsed}

    @classmethod
    def from_dict(cls, data: dict) -> "RobustnessProfile":
        cert = data.get("certify")
        return cls(RobustnessSettings.from_dict(data["settings"]),
                   None if cert is None else CertifySettings.from_dict(cert),
                   tuple(MethodProfile.from_dict(m) for m in data["methods"]), int(data["target"]),
                   float(data["elapsed"]))


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


# ========================================================================== prediction

#: One attack step's surrogate double backward, in plain gradients (bench/attack.py).
ATTACK_STEP_GRADIENTS = 4.4


def predicted_gradients(methods, settings: RobustnessSettings) -> float:
    """The profile's cost in plain gradient samples, an upper estimate (raw attacks usually
    stop early): per budget and bisection step ``steps × (eot × 4.4 + 1)`` and two measured
    maps of ``sweep_samples``; smoothed maps also their certificate (``T``), the floor and
    about two confirmations of ``confirm_samples`` plus its clean map."""
    n = len(settings.grid) + settings.bisection
    total = 0.0
    for s in methods:
        if not s.smoothed:
            total += n * settings.steps * (ATTACK_STEP_GRADIENTS + 1) + 1
            continue
        t = min(settings.sweep_samples, s.samples)
        total += s.samples + t + n * (settings.steps * (settings.eot * ATTACK_STEP_GRADIENTS + 1) + 2 * t)
        total += 3 * settings.confirm_samples
    return total


# ========================================================================== contrast

@dataclass(frozen=True)
class Panel:
    """One method attacked at one budget (:func:`contrast`): the image, the maps, the cells.

    ``top_cells``: the clean map's top-k; ``fallen``: those pushed out of the attacked map's
    top-k (smoothed maps: among the cells the clean map keeps under the same noise);
    ``overlap``/``floor``: attacked and no-attack top-k overlap; ``held``: no cell fell
    beyond the floor with the label kept."""

    settings: MapSettings
    epsilon: float
    norm: Norm
    k: int
    top_cells: tuple
    fallen: tuple
    clean_map: torch.Tensor
    attacked_map: torch.Tensor
    attacked_image: torch.Tensor
    label_kept: bool
    overlap: float
    floor: float
    spearman: float
    elapsed: float

    @property
    def lost(self) -> int:
        return len(self.fallen)

    @property
    def held(self) -> bool:
        return not (self.label_kept and self.overlap < self.floor - _TOL)


def contrast(model, x, methods, epsilon: float, settings: RobustnessSettings | None = None, *, target=None,
             references: dict | None = None, batch_size: int = 16, progress=None) -> tuple:
    """Every method attacked once at ``epsilon`` (the page's "raw vs certified" contrast).

    Raw maps stop as soon as every top-k cell is out. ``references``: optional
    ``{method: map}`` of clean maps already computed (e.g. the certified map at its ``T``),
    whose top-k cells are attacked. Returns one :class:`Panel` per method."""
    settings = RobustnessSettings() if settings is None else settings
    device = model_device(model)
    x = checks.image(x).detach().to(device)
    if target is None:
        with torch.no_grad():
            target = int(model(x).argmax(1))
    panels = []
    for i, s in enumerate(methods):
        t0 = time.perf_counter()
        ref = None if references is None else references.get(s.method)
        st = _Method(model, x, s, settings, int(target), batch_size, ref)
        r, overlap, fallen = st.run(float(epsilon), None, until_all=True)
        panels.append(Panel(s, float(epsilon), settings.norm, st.k, tuple(int(c) for c in st.top), fallen,
                            st.reference, r.attacked_map, r.x_adv, bool(r.label_preserved), overlap,
                            float(st.floor.topk_intersection), float(r.spearman), time.perf_counter() - t0))
        if progress is not None:
            progress(i + 1, len(methods))
    return tuple(panels)


def _cells(n: int) -> str:
    return f"{n} cell" + ("s" if n != 1 else "")


def sentence(raw_lost: int, k: int, provable: int, smoothed_lost: int = 0, *, kept_up_to: float | None = None,
             broken: bool = True) -> str:
    """The one-line story from the numbers, e.g. "At this size of change the raw map lost all 5
    of its top cells; the smoothed map provably keeps 1 and in fact kept all 5 up to 1.3".

    Args:
        raw_lost: top-k cells the raw map lost at this budget; ``k``: the top-k size.
        provable: smoothed map's cells certified at this budget (per-cell radii above it).
        smoothed_lost: the smoothed map's cells pushed out at this budget (confirmed).
        kept_up_to: the largest budget at which the smoothed map kept all its cells (its
            held radius); ``broken``: whether a larger budget broke it (else "not broken up to").
    """
    raw = ("lost all " + str(k) if raw_lost >= k else f"lost {raw_lost} of {k}" if raw_lost else
           f"kept all {k}")
    out = f"At this size of change the raw map {raw} of its top cells; the smoothed map "
    out += (f"provably keeps {provable}" if provable else "has no guarantee for any cell at this size")
    if smoothed_lost:
        out += f" and lost {smoothed_lost} of {k} to the attack"
    elif kept_up_to is not None:
        up = f"{kept_up_to:.2g}"
        out += (f" and in fact kept all {k} up to {up}" if broken else
                f" and in fact kept all {k} up to {up}, the largest change tried")
    else:
        out += f" and in fact kept all {k}"
    return out + "."
