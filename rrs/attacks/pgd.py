"""Projected gradient descent on an interpretation map, keeping the label (method.md §7).

Ghorbani, Abid, Zou (2019), *Interpretation of Neural Networks is Fragile*: find ``x'`` with
``‖x' − x‖_d ≤ ε`` and ``argmax f(x') = argmax f(x)`` that changes the interpretation map,
by minimising an objective of :mod:`rrs.attacks.objectives` with sign steps (ℓ∞) or
normalised steps (ℓ2), projection onto the ball and clipping to ``[0, 1]``.

The gradient of the map is taken on the smooth surrogate of :mod:`rrs.attacks.surrogate`;
the label check, the choice of the best iterate and the final measurement use the real model.
Every candidate step that flips the real model's label is shortened (step halving) or
rejected, and a margin term keeps the clean class once its logit margin gets small.
Smoothed maps are attacked with expectation over transformation (``eot`` fresh noise draws
per step, batched in one forward/double-backward pass), differentiating the method's soft
transform (:meth:`rrs.methods.Transform.soft`) while measuring with the real
:func:`rrs.smoothing.interpretation_map`.

The attack runs as named steps: :func:`_validate` → :class:`_Attack` (the prepared state) →
for each restart :meth:`_Attack.start` (random start) → :func:`_step` (one PGD step with
backtracking) → :meth:`_Tally.consider` (keep the best) → :func:`_assemble` (the result).
"""
from __future__ import annotations

import contextlib
import math
import time
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F

from .. import checks
from ..attributions import get_attribution, to_cells
from ..floor import no_attack_floor
from ..metrics import kendall, spearman, tie_aware_intersection
from ..settings import AttackSettings, MapSettings, Norm
from ..smoothing import interpretation_map, model_device
from .objectives import Objective, _normalised
from .result import AttackResult
from .surrogate import surrogate_model

__all__ = ["attack", "project", "unit_step", "random_start"]


# ============================================================================ geometry

def project(x0: torch.Tensor, x: torch.Tensor, norm: Norm, eps: float) -> torch.Tensor:
    """Project ``x`` onto ``{‖x − x0‖ ≤ eps} ∩ [0, 1]``.

    For ℓ∞ the box intersection is exact; for ℓ2 the ball projection comes first and the
    clip can only shrink the perturbation, so the result stays inside both sets.
    """
    delta = x - x0
    if norm.is_inf:
        delta = delta.clamp(-eps, eps)
    else:
        n = delta.flatten(1).norm(dim=1).view(-1, 1, 1, 1)
        delta = delta * torch.clamp(eps / n.clamp_min(1e-30), max=1.0)
    return (x0 + delta).clamp(0.0, 1.0)


def unit_step(g: torch.Tensor, norm: Norm) -> torch.Tensor:
    """The steepest-descent direction of unit ``norm`` for gradient ``g`` (sign for ℓ∞)."""
    if norm.is_inf:
        return g.sign()
    return g / g.flatten(1).norm(dim=1).clamp_min(1e-30).view(-1, 1, 1, 1)


def random_start(x0: torch.Tensor, norm: Norm, eps: float, generator: torch.Generator) -> torch.Tensor:
    """A uniform point of the ``norm`` ball of radius ``eps`` around ``x0``, clipped to [0, 1]."""
    gdev = generator.device
    if norm.is_inf:
        delta = (2 * torch.rand(x0.shape, generator=generator, device=gdev).to(x0.device) - 1) * eps
    else:
        d = torch.randn(x0.shape, generator=generator, device=gdev).to(x0.device)
        d = d / d.flatten(1).norm(dim=1).view(-1, 1, 1, 1)
        r = torch.rand(1, generator=generator, device=gdev).item() ** (1.0 / d[0].numel())
        delta = d * eps * r
    return project(x0, x0 + delta, norm, eps)


# ====================================================================== validation

def _validate(settings, attack_settings, target_map, batch_size):
    """The checked arguments: ``(target_map or None, batch_size)``."""
    if not isinstance(settings, MapSettings):
        raise ValueError(f"settings must be rrs.MapSettings, got {type(settings).__name__}")
    if not isinstance(attack_settings, AttackSettings):
        raise ValueError(f"attack must be rrs.AttackSettings, got {type(attack_settings).__name__}")
    batch_size = checks.integer("batch_size", batch_size)
    if (attack_settings.work_size is not None and settings.method == "rrs"
            and settings.scoring == "custom"):
        raise ValueError("work_size needs an RRS scoring family (topk, linear, exponential, power): "
                         "custom scoring_values are given for the full map's cells")
    if attack_settings.objective != "targeted":
        return None, batch_size
    if target_map is None:
        raise ValueError("the targeted objective needs target_map, a (rows, cols) map of the target region")
    if isinstance(target_map, torch.Tensor):
        target_map = target_map.detach().cpu()
    target_map = torch.as_tensor(np.asarray(target_map, dtype=np.float32))
    if target_map.dim() != 2:
        raise ValueError(f"target_map must be 2-D (rows, cols), got shape {tuple(target_map.shape)}")
    if not torch.isfinite(target_map).all() or (target_map < 0).any() or target_map.sum() <= 0:
        raise ValueError("target_map must be finite, non-negative and not all zero")
    return target_map, batch_size


def _model_dtype(model) -> torch.dtype:
    for p in model.parameters():
        if p.is_floating_point():
            return p.dtype
    return torch.float32


def _work_transform(settings: MapSettings, n_full: int, n_work: int, max_levels: int):
    """The method's transform for a surrogate map of ``n_work`` cells.

    On a lower working grid a scoring parameter given as a count of the full map's cells
    becomes the same fraction of the work grid's cells (top 51 of 1024 → top 51/1024).
    """
    if n_work != n_full and settings.method == "rrs" and settings.scoring != "power" \
            and settings.scoring_param >= 1:
        settings = settings.replace(scoring_param=min(settings.scoring_param / n_full, 1 - 1e-12))
    return settings.transform(n_work, max_levels=max_levels)


# ========================================================================== the state

@dataclass(frozen=True)
class _Check:
    """What the real model says about one input."""

    label: int
    confidence: float
    margin: float
    margin_grad: torch.Tensor | None
    cell_map: torch.Tensor | None  # real raw map (raw methods only)


class _Attack:
    """The prepared state of one attack: the real model's checks and maps, the clean map's
    objective, and the surrogate's gradient (see :func:`attack`)."""

    def __init__(self, model, x0, y, settings: MapSettings, attack_settings: AttackSettings,
                 target_map, batch_size: int, init=None, until=None, clean_map=None):
        self.model, self.x0, self.y = model, x0, y
        self.settings, self.opts, self.batch_size = settings, attack_settings, batch_size
        self.sur = surrogate_model(model, attack_settings.surrogate_beta)
        self.raw = not settings.smoothed
        self.attribution = get_attribution(settings.attribution)
        self.noise = settings.noise_model()
        self.generator = torch.Generator(device=x0.device).manual_seed(attack_settings.seed)
        self.clean = self.check(x0, need_map=False)
        self.init, self.until = init, until
        self.clean_map = (interpretation_map(model, x0, settings, target=y, batch_size=batch_size)
                          if clean_map is None else clean_map)
        self.grid = tuple(self.clean_map.shape)
        self.k = settings.k_for(self.clean_map.numel())
        if target_map is not None and tuple(target_map.shape) != self.grid:
            raise ValueError(f"target_map must have the map's shape {self.grid}, got {tuple(target_map.shape)}")
        clean_p = _normalised(self.clean_map).to(x0.device)
        self.objective = Objective(attack_settings.objective, clean_p, self.grid, self.k, target_map, x0.device)
        self.clean_objective = self.objective.value(clean_p)
        self._work_objective = None
        self._transform = None

    # ------------------------------------------------------------------ real model side
    def check(self, xc, need_map: bool, force_margin: bool = False) -> _Check:
        """Label, confidence and logit margin on the real model (+ the raw map, + the margin
        gradient when the margin is below ``label_margin`` or ``force_margin``)."""
        opts, base = self.opts, self.settings.attribution
        want_margin_grad = opts.keep_label and opts.label_weight > 0
        fused = need_map and base in ("vanilla", "input_x_gradient")  # map from the same backward
        with torch.enable_grad():
            inp = xc.detach().requires_grad_(need_map or want_margin_grad)
            cell_map = None
            if need_map and not fused:
                cell_map = self._cells(self.attribution(self.model, inp, self.y, **self.settings.attribution_kwargs))
            logits = self.model(inp) if inp.requires_grad else self.model(inp.detach())
            y = int(self.y)
            probs = logits.detach().softmax(1)[0]
            others = logits[0].clone()
            others[y] = -math.inf
            margin = logits[0, y] - others.max()
            active = want_margin_grad and (force_margin or float(margin.detach()) < opts.label_margin)
            wanted = ([logits[0, y]] if fused else []) + ([margin] if active else [])
            outs = [torch.autograd.grad(w, inp, retain_graph=i + 1 < len(wanted))[0]
                    for i, w in enumerate(wanted)]
            if fused:
                cell_map = self._cells(outs[0] * inp.detach() if base == "input_x_gradient" else outs[0])
        return _Check(int(probs.argmax()), float(probs[y]), float(margin.detach()),
                      outs[-1] if active else None, cell_map)

    def _cells(self, attr):
        return to_cells(attr.detach(), self.settings.effective_cell, self.settings.reduction)[0]

    def measure(self, xc, seed: int | None = None) -> torch.Tensor:
        """The real map of ``xc`` (noise seed ``seed``, default the map's own)."""
        return interpretation_map(self.model, xc, self.settings, target=self.y,
                                  batch_size=self.batch_size, seed=seed)

    def real_objective(self, cell_map) -> float:
        return self.objective.value(_normalised(cell_map).to(self.x0.device))

    def start(self, restart: int) -> torch.Tensor:
        """The restart's first point: the warm start ``init`` projected onto the ball (first
        restart, when given and it keeps the label), ``x0``, or a uniform point of the ball
        (always after the first restart), shrunk until it keeps the label."""
        opts = self.opts
        if restart == 0 and self.init is not None:
            cand = project(self.x0, self.init, opts.norm, opts.epsilon)
            if not opts.keep_label or self.check(cand, need_map=False).label == self.clean.label:
                return cand
        if not (opts.random_start or restart > 0):
            return self.x0
        for shrink in (1.0, 0.5, 0.25):
            cand = random_start(self.x0, opts.norm, opts.epsilon * shrink, self.generator)
            if not opts.keep_label or self.check(cand, need_map=False).label == self.clean.label:
                return cand
        return self.x0

    # -------------------------------------------------------------- surrogate gradient
    def _surrogate_input(self, xb):
        """The surrogate's batch: ``xb``, or ``eot`` noisy copies; at ``work_size`` if set."""
        inp = xb
        if not self.raw:
            inp = xb + torch.stack([self.noise.sample(xb.shape[1:], generator=self.generator, device=xb.device,
                                                      dtype=xb.dtype) for _ in range(self.opts.eot)])
        if self.opts.work_size is not None:
            size = (self.opts.work_size, self.opts.work_size)
            inp = F.interpolate(inp, size=size, mode="bilinear", align_corners=False)
        return inp

    def _autocast(self):
        """bf16 autocast for the surrogate's forward and double backward when the attacked map
        is computed in bf16 (``settings.precision``, the device's precision policy
        :func:`rrs.compute.device.resolve`); raw maps' attacks stay fp32."""
        if self.settings.precision == "bf16" and not self.raw:
            return torch.autocast(self.x0.device.type, dtype=torch.bfloat16)
        return contextlib.nullcontext()

    def surrogate_grad(self, xc):
        """Gradient of the (EOT) surrogate objective at ``xc`` and its value (one batched
        forward and double backward)."""
        with torch.enable_grad():
            xb = xc.detach().requires_grad_(True)
            inp = self._surrogate_input(xb)
            with self._autocast():
                attr = self.attribution(self.sur, inp, self.y.expand(inp.shape[0]), create_graph=True,
                                        **self.settings.attribution_kwargs)
            attr = attr.float() if attr.dtype in (torch.bfloat16, torch.float16) else attr
            cells = to_cells(attr, self.settings.effective_cell, self.settings.reduction)
            a = cells.flatten(1)
            if self._transform is None:
                self._transform = _work_transform(self.settings, self.clean_map.numel(), a.shape[1],
                                                  self.opts.rank_levels)
                self._work_objective = self.objective.resized(tuple(cells.shape[-2:]))
            p = _normalised(self._transform.soft(a, self.opts.rank_temperature).mean(0))
            loss = self._work_objective(p)
            (g,) = torch.autograd.grad(loss, xb)
        return g, self._work_objective.value(p.detach())

    def direction(self, g_obj, chk: _Check, boost: float = 1.0):
        """Descent direction: normalised objective gradient plus the keep-label term.

        The margin term's weight ramps from 0 (margin ≥ ``label_margin``) to
        ``label_weight`` (margin ≤ 0); after rejected steps (``boost`` > 1) it is at least
        ``label_weight·boost``, so the next step leans towards the clean class.
        """
        d = g_obj / g_obj.norm().clamp_min(1e-30)
        if chk.margin_grad is not None and self.opts.keep_label:
            ramp = min(1.0, max(0.0, (self.opts.label_margin - chk.margin) / self.opts.label_margin))
            if boost > 1:
                ramp = max(ramp, 1.0) * boost
            gm = chk.margin_grad
            d = d - self.opts.label_weight * ramp * gm / gm.norm().clamp_min(1e-30)
        return d


# ============================================================================ the loop

@dataclass(frozen=True)
class _Iterate:
    """A point of the attack: the input, the real model's check, and (when measured) its
    real map at noise seed ``s`` with that map's objective value."""

    x: torch.Tensor
    check: _Check
    cell_map: torch.Tensor | None = None
    objective: float = math.inf


@dataclass
class _Tally:
    """What the restarts accumulate: counts, the surrogate history and the best iterate."""

    total: int
    progress: object = None
    history: list = field(default_factory=list)
    accepted: int = 0
    rejected: int = 0
    shortened: int = 0
    done: int = 0
    best: _Iterate | None = None           # the label-preserving iterate with the lowest objective
    first_flipped: _Iterate | None = None  # the first candidate that changed the label
    stopped: _Iterate | None = None        # the iterate at which ``until`` stopped the attack

    def consider(self, st: "_Attack", xc, chk: _Check, cell_map) -> bool:
        """Keep ``xc`` if the objective of its real map ``cell_map`` is the best so far;
        ``True`` when the early-exit test ``until`` holds there (the attack then stops)."""
        value = st.real_objective(cell_map)
        if self.best is None or value < self.best.objective:
            self.best = _Iterate(xc, chk, cell_map, value)
        if st.until is not None and (not st.opts.keep_label or chk.label == st.clean.label) \
                and st.until(cell_map):
            self.stopped = _Iterate(xc, chk, cell_map, value)
            return True
        return False

    def tick(self):
        self.done += 1
        if self.progress is not None:
            self.progress(self.done, self.total)


def _step(st: _Attack, tally: _Tally, xc, chk: _Check, g, boost: float) -> _Iterate | None:
    """One PGD step with backtracking: the accepted point, or ``None`` when even
    ``max_backtracks`` halvings of the step change the label."""
    opts = st.opts
    d = st.direction(g, chk, boost)
    alpha = opts.step
    for attempt in range(opts.max_backtracks + 1):
        cand = project(st.x0, xc - alpha * unit_step(d, opts.norm), opts.norm, opts.epsilon)
        cchk = st.check(cand, need_map=st.raw)
        if not opts.keep_label or cchk.label == st.clean.label:
            tally.accepted += 1
            tally.shortened += attempt > 0
            return _Iterate(cand, cchk)
        if tally.first_flipped is None:
            tally.first_flipped = _Iterate(cand, cchk)
        alpha /= 2
    tally.rejected += 1
    return None


def _restart(st: _Attack, tally: _Tally, restart: int):
    """One run of ``steps`` PGD steps from :meth:`_Attack.start`; iterates go to ``tally``."""
    opts = st.opts
    xc = st.start(restart)
    chk = st.check(xc, need_map=st.raw)
    cache, boost, measured = None, 1.0, None
    warm = restart == 0 and st.init is not None and xc is not st.x0
    if warm and st.raw and tally.consider(st, xc, chk, chk.cell_map):
        return  # a warm start that already meets ``until``: no step needed
    for step in range(opts.steps):
        g, value = cache if cache is not None else st.surrogate_grad(xc)
        cache = (g, value) if st.raw else None  # deterministic: reuse after a rejected step
        tally.history.append(value)
        moved = _step(st, tally, xc, chk, g, boost)
        if moved is None:
            boost = min(boost * 2.0, 64.0)  # lean harder on the label next time
            if opts.keep_label and chk.margin_grad is None:
                chk = st.check(xc, need_map=st.raw, force_margin=True)
        else:
            xc, chk = moved.x, moved.check
            cache, boost = None, 1.0
            if st.raw:
                stop = tally.consider(st, xc, chk, chk.cell_map)
            elif opts.eval_every and (step + 1) % opts.eval_every == 0:
                stop = tally.consider(st, xc, chk, st.measure(xc))
                measured = xc
            else:
                stop = False
            if stop:
                tally.tick()
                return
        tally.tick()
    if not st.raw and xc is not st.x0 and measured is not xc:
        tally.consider(st, xc, chk, st.measure(xc))


def _chosen(st: _Attack, tally: _Tally) -> tuple[_Iterate, str]:
    """The reported iterate and its message: the iterate that met ``until``, else the best
    label-preserving iterate, else the first label-changing candidate, else ``x0``."""
    if tally.stopped is not None:
        return tally.stopped, ""
    if tally.best is not None:
        changed = not st.opts.keep_label and tally.best.check.label != st.clean.label
        return tally.best, "label not enforced (keep_label=False) and it changed" if changed else ""
    if tally.first_flipped is not None:
        return tally.first_flipped, (
            "no step kept the label: every candidate changed the prediction even after "
            f"{st.opts.max_backtracks} step halvings; the result shows the first label-changing "
            "candidate (try a smaller epsilon or step size, or a larger label_weight)")
    return _Iterate(st.x0, st.clean, st.clean_map), "no step was taken"


def _assemble(st: _Attack, tally: _Tally, elapsed_from: float, floor=None) -> AttackResult:
    """Measure ``x_adv`` at seeds ``s + 1`` and ``s`` and the floor (unless given); build the result."""
    chosen, message = _chosen(st, tally)
    x_adv, chk, seed = chosen.x, chosen.check, st.settings.seed
    attacked = st.measure(x_adv, seed=seed + 1)
    if not st.settings.smoothed:
        same = attacked
    else:
        same = chosen.cell_map if chosen.cell_map is not None else st.measure(x_adv, seed=seed)
    clean = st.clean_map
    if floor is None:
        floor = no_attack_floor(st.model, st.x0, st.settings, target=st.y, batch_size=st.batch_size, map_a=clean)
    delta = (x_adv - st.x0)[0]
    cats = getattr(st.model, "categories", None)

    def name(i):
        return str(cats[i]) if cats is not None and 0 <= i < len(cats) else ""

    return AttackResult(
        x_adv=x_adv[0].detach().cpu(), clean_map=clean, attacked_map=attacked, k=st.k,
        topk_intersection=tie_aware_intersection(clean, attacked, st.k),
        spearman=spearman(clean, attacked), kendall=kendall(clean, attacked),
        l2=float(delta.norm()), linf=float(delta.abs().max()),
        clean_label=st.clean.label, adv_label=chk.label,
        clean_confidence=st.clean.confidence, adv_confidence=chk.confidence,
        label_preserved=chk.label == st.clean.label, message=message, history=tuple(tally.history),
        accepted_steps=tally.accepted, rejected_steps=tally.rejected, shortened_steps=tally.shortened,
        clean_objective=st.clean_objective, adv_objective=st.real_objective(attacked),
        clean_class_name=name(st.clean.label), adv_class_name=name(chk.label),
        elapsed=time.perf_counter() - elapsed_from, map_settings=st.settings, attack_settings=st.opts,
        floor=floor, attacked_map_same_noise=same.detach().cpu())


def attack(model, x, settings: MapSettings, attack: AttackSettings, *, target=None, target_map=None,
           progress=None, batch_size: int = 16, init=None, until=None, clean_map=None,
           floor=None) -> AttackResult:
    """Attack the interpretation map of ``x`` while keeping its label (Ghorbani et al. 2019).

    Projected gradient descent on a surrogate objective (see the module docstring), with the
    label enforced on the real model at every step: a candidate that flips the label is
    retried with half the step (``attack.max_backtracks`` times) and then rejected, and once
    the clean class's logit margin falls below ``attack.label_margin`` the step direction
    also follows the margin gradient with relative weight ``attack.label_weight``.

    Noise seeds, with ``s = settings.seed``: the attacker sees the clean map at seed ``s``
    (:func:`rrs.smoothing.interpretation_map`) and chooses its best iterate by measuring at
    seed ``s``; the reported ``attacked_map`` is measured at seed ``s + 1``, like the second
    run of the no-attack floor (``AttackResult.floor``). The random start and the EOT noise
    come from ``torch.Generator(device).manual_seed(attack.seed)``.

    Args:
        model: classifier on pixel-space inputs in ``[0, 1]`` (e.g. ``rrs.load_default()``).
        x: one image ``(C, H, W)`` (or ``(1, C, H, W)``) in ``[0, 1]``.
        settings: the map attacked (:class:`rrs.settings.MapSettings`; top-k ``k`` included).
        attack: the attack (:class:`rrs.settings.AttackSettings`).
        target: class whose map is attacked (default: the predicted class).
        target_map: ``(rows, cols)`` non-negative map for the ``"targeted"`` objective.
        progress: optional ``progress(done, total)`` called after every step.
        batch_size: noisy inputs per forward pass when measuring smoothed maps.
        init: warm start: the first restart starts at ``init`` projected onto the ball
            (e.g. the adversarial point of a smaller budget, :mod:`rrs.workflows.robustness`);
            ignored when that point changes the label. Default: ``x0`` or a random start.
        until: early exit: ``until(cell_map) -> bool`` is called with the real map of every
            label-keeping iterate that is measured (raw maps: the warm start and every step;
            smoothed maps: every ``eval_every`` steps and the end of a restart); once it holds
            the attack stops and reports that iterate.
        clean_map: the clean map of ``x`` if already computed (the attacker's reference, whose
            top-k cells the ``topk`` objective pushes out); default: computed here.
        floor: the :class:`rrs.floor.NoAttackFloor` to report if already computed.

    Returns:
        :class:`rrs.attacks.AttackResult`.
    """
    start_time = time.perf_counter()
    target_map, batch_size = _validate(settings, attack, target_map, batch_size)
    device = model_device(model)
    x0 = checks.image(x).detach().to(device=device, dtype=_model_dtype(model))
    if target is None:
        with torch.no_grad():
            y = model(x0).argmax(1)
    else:
        y = torch.as_tensor(target, device=device).long().reshape(-1)[:1]
    if init is not None:
        init = checks.image(init).detach().to(device=device, dtype=x0.dtype)
        if init.shape != x0.shape:
            raise ValueError(f"init must have the image's shape {tuple(x0.shape[1:])}, got {tuple(init.shape[1:])}")
    if clean_map is not None:
        clean_map = torch.as_tensor(clean_map).detach().cpu()
    st = _Attack(model, x0, y, settings, attack, target_map, batch_size, init, until, clean_map)
    tally = _Tally(total=attack.steps * attack.restarts, progress=progress)
    for restart in range(attack.restarts):
        _restart(st, tally, restart)
        if tally.stopped is not None:
            break
    return _assemble(st, tally, start_time, floor)
