"""What a certify run means and what to try next (plain Python, no streamlit).

* :func:`radius_text` — a radius in plain units.
* :func:`verdict` — the plain-language judgement of an :class:`~rrs.workflows.certify.AnytimeView`;
  :func:`validity_text` — with what probability its statements hold (the top-k family and
  the "stays important" family each spend their own η).
* :func:`suggestions` — changes predicted to raise the certificate (:func:`project` from the
  current map, or from short pilot maps: :func:`pilot_candidates`, :func:`run_pilots`).
* :func:`break_it` — "try to break it": the top-k interpretation attack at the certified
  radius and beyond (:func:`break_plan` chooses the radius and the claimed cells).
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, replace

import numpy as np

from .. import metrics
from ..certify import CellStats, certify
from ..settings import AttackSettings, CertifySettings, MapSettings, Norm
from ..smoothing import smooth
from .certify import AnytimeView, Sampled, combine_cells, plan_run, report_cells

__all__ = ["radius_text", "Verdict", "verdict", "validity_text", "Suggestion", "project", "suggestions",
           "pilot_candidates", "run_pilots", "BreakResult", "break_plan", "break_it", "BREAK_EOT",
           "ContrastResult", "contrast_settings", "attack_settings", "contrast_at_radius", "contrast_certified",
           "break_radii"]


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


def validity_text(eta: float) -> str:
    """With what probability the finite-sample statements of a run hold: the top-k
    certificates (whole set and per cell) together at ``1 − η``; the "stays important"
    certificates, a second family with its own η, also at ``1 − η``; both families at once at
    ``1 − 2η`` (union bound, method.md §5 "Anytime validity")."""
    return (f"every top-k certificate shown holds with probability ≥ {1 - eta:.0%}, and so does every "
            f"\"stays important\" certificate; both families together with probability ≥ {1 - 2 * eta:.0%} "
            "(each spends its own η)")


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
    eta_j = plan.eta_at(len(plan.checkpoints) - 1, settings.eta)
    n = np.asarray(pooled.mean).size
    k = s.k_for(n)
    est = replace(pooled, samples=int(plan.checkpoints[-1]))
    sel = replace(pooled, samples=int(plan.selection)) if plan.selection else None
    rep = certify(est, k, s.noise_model(), settings.replace(betas=(float(beta),), eta=eta_j, cell_radii=True,
                                                            scheme=sampled.scheme), dim=sampled.dim, selection=sel)
    whole = max([c.radius for c in rep.rdp_finite + rep.cdf_finite] + [0.0])
    cells = combine_cells(*report_cells(rep, True), "best", n)
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
               batch_size: int = 16) -> dict:
    """Short pilot maps (``samples`` each, same seed) for :func:`pilot_candidates`;
    ``{label: (updates, pooled CellStats, MapSettings)}`` for :func:`suggestions`
    (``batch_size``: noisy inputs per pass; the maps do not depend on it)."""
    out = {}
    cands = pilot_candidates(settings, cell_options)
    for i, (label, updates) in enumerate(cands.items()):
        ps = settings.replace(samples=int(samples), **updates)
        sub = None if progress is None else (lambda d, t, i=i: progress(i * samples + d, len(cands) * samples))
        res = smooth(model, x, ps, batch_size=batch_size, progress=sub)
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
    when > 0 (claimed: the top-k set that certificate is about, :meth:`AnytimeView.certified_set`),
    else the largest per-cell finite radius (claimed: cells with at least that radius), else
    the same with plug-in radii (an estimate, said so)."""
    whole = view.guaranteed(beta)
    fin = view.cell_radii(kind, True)
    plug = view.cell_radii(kind, False)
    if whole > 0 and beta >= 1.0:
        return "whole-set finite-sample", whole, view.certified_set(beta)
    for source, radii in (("per-cell finite-sample", fin), ("per-cell plug-in (estimate)", plug)):
        finite = radii[np.isfinite(radii) & (radii > 0)]
        if finite.size:
            r = float(finite.max())
            return source, r, np.flatnonzero(radii >= r)
    return "none", 0.0, np.zeros(0, dtype=int)


BREAK_EOT = 2     # noise draws per attack step of "Try to break it"


def break_it(model, x, view: AnytimeView, beta: float = 1.0, kind: str = "best", factor: float = 10.0,
             eval_samples: int = 64, steps: int = 5, eot: int = BREAK_EOT, progress=None,
             batch_size: int = 16) -> BreakResult:
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
                     batch_size=batch_size)
        top = set(metrics.topk_indices(res.attacked_map.double().numpy(), view.sampled.k).tolist())
        held = sum(int(c) in top for c in claimed)
        budgets.append((float(eps), held, float(res.topk_intersection), float(res.floor.topk_intersection),
                        bool(res.label_preserved)))
    return BreakResult(source, radius, tuple(int(c) for c in claimed), norm, float(factor), tuple(budgets),
                       int(settings.samples), time.perf_counter() - start)


# ------------------------------------------------- the contrast: raw map vs certified map

@dataclass(frozen=True)
class ContrastResult:
    """The raw base map and the certified RRS map attacked at the certified radius
    (:func:`contrast_at_radius`), side by side.

    ``source``/``radius``/``claimed``: as :func:`break_plan`; ``raw`` and ``smoothed``: one
    :class:`rrs.workflows.robustness.Panel` each (the smoothed map's reference is the
    certified map itself, so its top-k cells are the certified ones); ``provable``: the
    claimed cells (certified to stay for every change below ``radius``)."""

    source: str
    radius: float
    claimed: tuple
    norm: Norm
    raw: object
    smoothed: object
    elapsed: float

    @property
    def provable(self) -> int:
        return len(self.claimed)

    def sentence(self, profile=None) -> str:
        """The one line from the numbers (:func:`rrs.workflows.robustness.sentence`); with a
        robustness profile of the smoothed map, how far it in fact held."""
        from .robustness import sentence

        sm = None if profile is None else profile.method(self.smoothed.settings.method)
        return sentence(self.raw.lost, self.raw.k, self.provable, self.smoothed.lost,
                        kept_up_to=None if sm is None else sm.held_radius,
                        broken=True if sm is None else sm.broken)


def contrast_settings(view: AnytimeView, base: str):
    """``(raw MapSettings, certified MapSettings, RobustnessSettings)`` of the contrast and of
    the break-radius profile on the Certify page's view (:func:`attack_settings`)."""
    return attack_settings(view.sampled.settings, view.norm, base)


def attack_settings(smoothed: MapSettings, norm: Norm, base: str):
    """``(raw MapSettings, smoothed, RobustnessSettings)``: the raw ``base`` map at the
    smoothed map's cells and top-k, and the top-k attack in ``norm`` (``BREAK_EOT`` noise draws
    per step on the smoothed map, its attacked map measured with at most 64 samples)."""
    from .robustness import RobustnessSettings

    norm = Norm.parse(norm)
    if not (norm.is_inf or norm.p == 2.0):
        raise ValueError("the attack supports ℓ2 and ℓ∞ budgets; switch the threat norm to ℓ2 or ℓ∞")
    raw = MapSettings(method=base, cell=smoothed.cell, k=smoothed.k, seed=smoothed.seed)
    rs = RobustnessSettings(norm=norm, steps=10, eot=BREAK_EOT, sweep_samples=min(64, smoothed.samples),
                            confirm_samples=min(256, smoothed.samples), seed=int(smoothed.seed))
    return raw, smoothed, rs


def _contrast(model, x, smoothed: MapSettings, norm: Norm, base: str, plan: tuple, reference, target,
              progress, batch_size) -> ContrastResult:
    """Both maps attacked just below the certified radius of ``plan`` = ``(source, radius, claimed)``
    (the certificate is for changes smaller than the radius)."""
    from .robustness import contrast

    raw, smoothed, rs = attack_settings(smoothed, norm, base)
    source, radius, claimed = plan
    if radius <= 0:
        raise ValueError("nothing is certified yet (not even as a plug-in estimate): run with more samples first")
    start = time.perf_counter()
    eps = radius * (1 - 1e-6)
    if rs.norm.is_inf:
        eps = min(eps, 1.0)
    panels = contrast(model, x, (raw, smoothed), eps, rs, target=target, references={smoothed.method: reference},
                      batch_size=batch_size, progress=progress)
    return ContrastResult(source, float(radius), tuple(int(c) for c in claimed), rs.norm, panels[0], panels[1],
                          time.perf_counter() - start)


def contrast_at_radius(model, x, view: AnytimeView, base: str, beta: float = 1.0, kind: str = "best",
                       progress=None, batch_size: int = 16) -> ContrastResult:
    """Attack the raw ``base`` map and the Certify page's certified map at the radius of
    :func:`break_plan`; the certified map's reference is the view's map itself."""
    import torch

    reference = torch.as_tensor(view.sampled.map(), dtype=torch.float32)
    return _contrast(model, x, view.sampled.settings, view.norm, base, break_plan(view, beta, kind), reference,
                     view.sampled.target, progress, batch_size)


def contrast_certified(model, x, settings: MapSettings, cert: CertifySettings, base: str = "vanilla",
                       progress=None, batch_size: int = 16) -> ContrastResult:
    """The same contrast from scratch (the Learn page): certify ``settings``
    (:func:`rrs.workflows.robustness.certify_method`, β = 1), then attack the raw ``base`` map
    and the certified map at the whole-set radius when > 0, else the largest per-cell radius."""
    from .. import checks
    from ..smoothing import model_device
    from .robustness import certify_method

    x = checks.image(x).detach().to(model_device(model))
    c = certify_method(model, x.squeeze(0), settings, cert, batch_size=batch_size)
    if c.radius:
        plan = ("whole-set finite-sample", c.radius, c.selected)
    else:
        r = c.cell_radius or 0.0
        plan = ("per-cell finite-sample", r, tuple(np.flatnonzero(c.cell_radii >= r)) if r > 0 else ())
    if plan[1] <= 0:
        raise ValueError(f"nothing is certified at T = {settings.samples:,}: the Certify page can run more samples")
    return _contrast(model, x, settings, cert.norm, base, plan, c.reference, None, progress, batch_size)


def break_radii(model, x, view: AnytimeView, base: str, progress=None, batch_size: int = 16):
    """Each map's empirical break radius (:func:`rrs.workflows.robustness.robustness_profile`
    of the raw ``base`` map and the certified map, in the view's norm)."""
    from .robustness import robustness_profile

    raw, smoothed, rs = contrast_settings(view, base)
    cert = CertifySettings(norm=view.norm, eta=view.eta, scheme=view.sampled.scheme)
    return robustness_profile(model, x, (raw, smoothed), rs, cert, target=view.sampled.target, progress=progress,
                              batch_size=batch_size)
