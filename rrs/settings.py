"""Settings objects: one frozen, validated description of each computation (method.md §8).

The command line, the app and the study build these objects from their own inputs (flags,
widgets, job records) and hand them to the library, so the same settings and seed give the
same map, floor and certificate everywhere. Each object validates itself once, on creation,
with a message that names the setting; ``to_dict``/``from_dict`` read and write the same
JSON that exports, CLI records and study jobs carry.

* :class:`Norm` — a threat norm ℓ_d (``L1``, ``L2``, ``LINF``); one type for attacks,
  certificates and displays.
* :class:`MapSettings` — an interpretation map: method, base attribution, noise, T, cells,
  top-k and the RRS scoring vector, seed.
* :class:`AttackSettings` — an interpretation attack (method.md §7).
* :class:`CertifySettings` — the certificates of a map (method.md §4–§6b).

Sizes are in pixel units. σ has one meaning for every noise family: the per-coordinate
standard deviation. Laplace noise of standard deviation σ has scale ``b = σ/√2``.
Counts that scale with the map (``k``, the scoring parameter of the top-k′, linear and
exponential families) are a *fraction of the cells* when below 1 and a *count* from 1 up.
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import numpy as np

from . import checks
from .methods import METHODS, RAW_METHODS, SMOOTH_METHODS, RankScore, Identity, Sparsify, method_info

__all__ = ["Norm", "L1", "L2", "LINF", "MapSettings", "AttackSettings", "CertifySettings",
           "NOISE_FAMILIES", "SCORING_FAMILIES", "SCORING_DEFAULTS", "PRECISIONS", "OBJECTIVES", "SCHEMES",
           "count_for"]

NOISE_FAMILIES = ("gaussian", "laplace")
SCORING_FAMILIES = ("topk", "exponential", "linear", "power", "custom")
REDUCTIONS = ("sum", "max", "sq")
PRECISIONS = ("fp32", "bf16")
#: The finite-sample schemes of method.md §5: ``"bonferroni"`` (intervals for every cell from
#: all T samples) and ``"selection"`` (a separate first batch of T/8 fixes the top-k set).
SCHEMES = ("bonferroni", "selection")
#: The scoring parameter each family starts from: k′ = 10% of the cells (top-k′, linear), decay
#: length 5% of the cells (exponential), exponent 1 (power).
SCORING_DEFAULTS = {"topk": 0.1, "linear": 0.1, "exponential": 0.05, "power": 1.0, "custom": 1.0}
OBJECTIVES = {"topk": "Top-k (push the map off its top cells)",
              "mass_center": "Mass centre (move the map's centre)",
              "targeted": "Targeted (pull the map towards a target region)"}

_NORM_NAMES = {"1": 1.0, "l1": 1.0, "ℓ1": 1.0, "2": 2.0, "l2": 2.0, "ℓ2": 2.0,
               "inf": math.inf, "linf": math.inf, "ℓ∞": math.inf, "infinity": math.inf, "l∞": math.inf}


@dataclass(frozen=True)
class Norm:
    """The ℓ_d norm of a threat model, ``d ≥ 1`` or ``inf``.

    ``Norm.parse`` takes any of ``"l2"``, ``"ℓ2"``, ``"2"``, ``2``, ``"linf"``, ``"inf"``,
    ``math.inf``, ``"ℓ∞"`` or a Norm. ``float(norm)`` is ``d`` (what the certificates use).
    """

    p: float

    def __post_init__(self):
        p = float(self.p)
        if math.isnan(p) or p < 1:
            raise ValueError(f"a norm must be ℓ_d with d ≥ 1 (1, 2 or inf), got {self.p!r}")
        object.__setattr__(self, "p", p)

    @classmethod
    def parse(cls, value) -> "Norm":
        if isinstance(value, Norm):
            return value
        if isinstance(value, str):
            key = value.strip().lower().replace(" ", "")
            if key in _NORM_NAMES:
                return cls(_NORM_NAMES[key])
            if key.startswith(("l", "ℓ")):
                key = key[1:]
            try:
                return cls(float(key))
            except ValueError:
                raise ValueError(f"unknown norm {value!r}; use l1, l2 or linf") from None
        if isinstance(value, bool):
            raise ValueError(f"unknown norm {value!r}; use l1, l2 or linf")
        try:
            return cls(float(value))
        except (TypeError, ValueError):
            raise ValueError(f"unknown norm {value!r}; use l1, l2 or linf") from None

    def __float__(self) -> float:
        return self.p

    @property
    def is_inf(self) -> bool:
        return math.isinf(self.p)

    @property
    def key(self) -> str:
        """``"l1"``, ``"l2"``, ``"linf"`` (the JSON and command-line spelling)."""
        return "linf" if self.is_inf else f"l{self.p:g}"

    @property
    def label(self) -> str:
        """``"ℓ1"``, ``"ℓ2"``, ``"ℓ∞"`` (the display spelling)."""
        return "ℓ∞" if self.is_inf else f"ℓ{self.p:g}"

    def __str__(self) -> str:
        return self.key

    def per_pixel(self, radius: float, dim: int) -> float:
        """The same change spread evenly over ``dim`` values: ``L / dim^{1/d}`` per value."""
        return float(radius) if self.is_inf else float(radius) / float(dim) ** (1.0 / self.p)


L1, L2, LINF = Norm(1.0), Norm(2.0), Norm(math.inf)


def count_for(value: float, n: int, name: str = "k", upper: int | None = None) -> int:
    """A count for a map of ``n`` cells: ``⌈value·n⌉`` for a fraction ``value < 1``, else
    ``value`` itself; clipped below at 1; ``upper`` (default ``n``) is checked."""
    upper = n if upper is None else upper
    if n < 2:
        raise ValueError(f"the map has only {n} cell; use smaller cells (Grad-CAM cells are feature-map cells)")
    count = max(1, math.ceil(value * n - 1e-9)) if value < 1 else int(round(value))
    if not 1 <= count <= upper:
        raise ValueError(f"{name} = {count} is out of range: the map has {n} cells, so {name} must be in 1..{upper}")
    return count


class _Settings:
    """``to_dict``/``from_dict``/``replace`` shared by the settings dataclasses."""

    def to_dict(self) -> dict:
        out = {}
        for f in dataclasses.fields(self):
            v = getattr(self, f.name)
            if isinstance(v, Norm):
                v = v.key
            elif isinstance(v, tuple):
                v = list(v)
            out[f.name] = v
        return out

    @classmethod
    def from_dict(cls, data: dict):
        """Settings from a dict written by :meth:`to_dict` (unknown keys are an error)."""
        if not isinstance(data, dict):
            raise ValueError(f"{cls.__name__} needs a dict, got {type(data).__name__}")
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - names)
        if unknown:
            raise ValueError(f"unknown {cls.__name__} field(s): {', '.join(unknown)}")
        return cls(**{k: (tuple(v) if isinstance(v, list) else v) for k, v in data.items()})

    def replace(self, **changes):
        return dataclasses.replace(self, **changes)


@dataclass(frozen=True)
class MapSettings(_Settings):
    """Everything that decides an interpretation map (and so its cache key).

    Args:
        method: a raw attribution (``vanilla``, ``input_x_gradient``, ``integrated_gradients``,
            ``gradcam``) or a smoothing (``smoothgrad``, ``sparsified``, ``rrs``) of ``base``.
        base: the attribution that is smoothed (ignored for raw methods).
        noise, sigma: ``"gaussian"`` or ``"laplace"`` noise of standard deviation ``sigma``
            per value, in pixel units (Laplace scale ``σ/√2``).
        samples: ``T``, noise draws per map.
        cell, reduction: cell side in pixels and how a cell's values are reduced
            (``sum``, ``max``, ``sq``). Grad-CAM always uses its feature grid (cell 1).
        k: the top-k size: a fraction of the cells (< 1) or a count.
        scoring, scoring_param, scoring_values: the RRS scoring vector: ``topk`` (``k′``),
            ``linear`` (``k′``), ``exponential`` (decay length τ) — each a fraction of the
            cells or a count — ``power`` (exponent γ), or ``custom`` with ``scoring_values``.
        tau, phi: Sparsified SmoothGrad's keep and clip fractions.
        normalize: SmoothGrad only: divide each noisy map by its max (values in ``[0, 1]``).
        ig_steps: integrated gradients' path steps.
        precision: ``"fp32"``, or ``"bf16"`` to compute the noisy attributions under bfloat16
            autocast (faster on AMX CPUs and GPUs; certificates then hold for that function).
        seed: the noise seed (map ``seed``; the no-attack floor compares it with ``seed + 1``).
    """

    method: str = "rrs"
    base: str = "vanilla"
    noise: str = "gaussian"
    sigma: float = 0.15
    samples: int = 16
    cell: int = 1
    reduction: str = "sum"
    k: float = 0.05
    scoring: str = "topk"
    scoring_param: float = 0.1
    scoring_values: tuple | None = None
    tau: float = 0.1
    phi: float = 0.01
    normalize: bool = False
    ig_steps: int = 16
    precision: str = "fp32"
    seed: int = 0

    def __post_init__(self):
        method_info(self.method)
        if self.base not in RAW_METHODS:
            raise ValueError(f"base must be one of {', '.join(RAW_METHODS)}; got {self.base!r}")
        checks.choice("noise", self.noise, NOISE_FAMILIES)
        object.__setattr__(self, "sigma", checks.positive("σ (sigma)", self.sigma, upper=10.0))
        object.__setattr__(self, "samples", checks.integer("samples (T)", self.samples))
        object.__setattr__(self, "cell", checks.integer("cell", self.cell))
        checks.choice("reduction", self.reduction, REDUCTIONS)
        object.__setattr__(self, "k", checks.positive("k", self.k))
        checks.choice("scoring", self.scoring, SCORING_FAMILIES)
        object.__setattr__(self, "scoring_param", checks.positive("scoring parameter", self.scoring_param))
        if self.scoring == "custom":
            if self.scoring_values is None:
                raise ValueError("the custom scoring family needs scoring_values (a non-increasing vector summing to 1)")
            object.__setattr__(self, "scoring_values", tuple(float(v) for v in self.scoring_values))
        elif self.scoring_values is not None:
            raise ValueError("scoring_values is only for scoring='custom'")
        object.__setattr__(self, "tau", checks.fraction("tau", self.tau))
        object.__setattr__(self, "phi", checks.fraction("phi", self.phi))
        object.__setattr__(self, "normalize", bool(self.normalize))
        object.__setattr__(self, "ig_steps", checks.integer("ig_steps", self.ig_steps))
        checks.choice("precision", self.precision, PRECISIONS)
        object.__setattr__(self, "seed", checks.integer("seed", self.seed, low=0))

    # -- what the settings mean
    @property
    def info(self):
        return METHODS[self.method]

    @property
    def smoothed(self) -> bool:
        return self.method in SMOOTH_METHODS

    @property
    def attribution(self) -> str:
        """The base attribution actually computed (the method itself when raw)."""
        return self.method if self.method in RAW_METHODS else self.base

    @property
    def effective_cell(self) -> int:
        """Grad-CAM maps live on the feature grid, so their cell is one feature cell."""
        return 1 if self.attribution == "gradcam" else self.cell

    @property
    def attribution_kwargs(self) -> dict:
        return {"steps": self.ig_steps} if self.attribution == "integrated_gradients" else {}

    def noise_model(self):
        """The noise distribution: ``Gaussian(σ)`` or ``Laplace(b = σ/√2)`` (std σ)."""
        from .noise import Gaussian, Laplace

        return Gaussian(self.sigma) if self.noise == "gaussian" else Laplace(self.sigma / math.sqrt(2.0))

    def k_for(self, n: int) -> int:
        """The top-k size for a map of ``n`` cells (1..n−1)."""
        return count_for(self.k, n, "k", upper=n - 1)

    def scoring_vector(self, n: int) -> np.ndarray:
        """The RRS scoring vector for ``n`` cells (validated)."""
        from .scoring import make_scoring, validate_scoring

        if self.scoring == "custom":
            return validate_scoring(self.scoring_values, n=n, name="scoring_values")
        if self.scoring in ("topk", "linear"):
            return make_scoring(self.scoring, n, count_for(self.scoring_param, n, "k′ (scoring)"))
        if self.scoring == "exponential":
            tau = self.scoring_param * n if self.scoring_param < 1 else self.scoring_param
            return make_scoring("exponential", n, tau)
        return make_scoring("power", n, self.scoring_param)

    def transform(self, n: int, max_levels: int = 16):
        """The per-sample transform of this method for ``n`` cells (:mod:`rrs.methods`)."""
        if self.method == "rrs":
            return RankScore(self.scoring_vector(n), max_levels=max_levels)
        if self.method == "sparsified":
            return Sparsify(n, self.tau, self.phi)
        return Identity(self.normalize and self.method == "smoothgrad")

    def describe(self) -> str:
        """The settings in one line (captions, provenance)."""
        parts = [self.info.label]
        if self.smoothed:
            parts += [f"of {METHODS[self.base].label.lower()}", f"{self.noise} σ = {self.sigma:g}",
                      f"T = {self.samples}"]
            if self.method == "rrs":
                parts.append(f"{self.scoring} scoring ({self.scoring_param:g})")
        parts.append("Grad-CAM grid" if self.attribution == "gradcam" else f"cell {self.cell} px")
        parts.append(f"top {self.k * 100:g}%" if self.k < 1 else f"top {self.k:g}")
        parts.append(f"seed {self.seed}")
        return ", ".join(parts)


@dataclass(frozen=True)
class AttackSettings(_Settings):
    """An interpretation attack (Ghorbani et al. 2019; method.md §7).

    Args:
        objective: ``topk``, ``mass_center`` or ``targeted``.
        norm, epsilon: the threat ball, ``epsilon`` in pixel units (ℓ∞ 8/255 by default).
        steps, step_size: PGD steps per restart and the step (default ``2.5·ε/steps``).
        eot: fresh noise draws per step for smoothed methods (expectation over transformation).
        restarts, random_start: independent runs (best kept); start from a random point.
        seed: seed of the random start and of the EOT noise.
        keep_label: enforce the label (False only for soundness tests of certificates).
        label_weight, label_margin, max_backtracks: how the label is kept (see rrs.attacks).
        rank_temperature, rank_levels: the soft rank transform of RRS/Sparsified.
        surrogate_beta: softplus β of the surrogate model.
        eval_every: measure the real map every this many steps and keep the best iterate.
        work_size: optional lower resolution for the surrogate map.
    """

    objective: str = "topk"
    norm: Norm = LINF
    epsilon: float = 8 / 255
    steps: int = 10
    step_size: float | None = None
    eot: int = 4
    restarts: int = 1
    random_start: bool = False
    seed: int = 0
    keep_label: bool = True
    label_weight: float = 1.0
    label_margin: float = 1.0
    max_backtracks: int = 3
    rank_temperature: float = 0.5
    rank_levels: int = 16
    surrogate_beta: float = 10.0
    eval_every: int = 0
    work_size: int | None = None

    def __post_init__(self):
        checks.choice("objective", self.objective, tuple(OBJECTIVES))
        norm = Norm.parse(self.norm)
        if norm.p not in (2.0, math.inf):
            raise ValueError(f"attacks support ℓ2 and ℓ∞ budgets, got {norm.label}")
        object.__setattr__(self, "norm", norm)
        eps = checks.positive("epsilon", self.epsilon)
        if norm.is_inf and eps > 1:
            raise ValueError(f"an ℓ∞ budget above 1 covers all of [0, 1]; got epsilon={eps:g}")
        object.__setattr__(self, "epsilon", eps)
        object.__setattr__(self, "steps", checks.integer("steps", self.steps))
        if self.step_size is not None:
            object.__setattr__(self, "step_size", checks.positive("step_size", self.step_size))
        object.__setattr__(self, "eot", checks.integer("eot", self.eot))
        object.__setattr__(self, "restarts", checks.integer("restarts", self.restarts))
        object.__setattr__(self, "seed", checks.integer("seed", self.seed, low=0))
        object.__setattr__(self, "label_weight", checks.non_negative("label_weight", self.label_weight))
        object.__setattr__(self, "label_margin", checks.positive("label_margin", self.label_margin))
        object.__setattr__(self, "max_backtracks", checks.integer("max_backtracks", self.max_backtracks, low=0))
        object.__setattr__(self, "rank_temperature", checks.positive("rank_temperature", self.rank_temperature))
        object.__setattr__(self, "rank_levels", checks.integer("rank_levels", self.rank_levels))
        object.__setattr__(self, "surrogate_beta", checks.positive("surrogate_beta", self.surrogate_beta))
        object.__setattr__(self, "eval_every", checks.integer("eval_every", self.eval_every, low=0))
        if self.work_size is not None:
            object.__setattr__(self, "work_size", checks.integer("work_size", self.work_size, low=8))
        object.__setattr__(self, "random_start", bool(self.random_start))
        object.__setattr__(self, "keep_label", bool(self.keep_label))

    @property
    def step(self) -> float:
        return 2.5 * self.epsilon / self.steps if self.step_size is None else self.step_size

    def describe(self, dim: int | None = None) -> str:
        if self.norm.is_inf:
            budget = f"ℓ∞ ≤ {self.epsilon * 255:.3g}/255"
        else:
            budget = f"{self.norm.label} ≤ {self.epsilon:.3g}"
            if dim:
                budget += f" (≈ {self.norm.per_pixel(self.epsilon, dim) * 255:.2g}/255 per value)"
        return (f"{OBJECTIVES[self.objective].split(' (')[0]} attack, {budget}, {self.steps} steps, "
                f"{self.eot} EOT samples, seed {self.seed}")


@dataclass(frozen=True)
class CertifySettings(_Settings):
    """The certificates of a smoothed map (method.md §4–§6b).

    Args:
        norm: threat norm of the certified radii.
        eta: failure probability of the finite-sample certificates (sound with prob. ≥ 1 − η).
        betas: overlap levels β for the radius-versus-β table.
        cell_radii: also compute per-cell radii (the certified region).
        scheme: the finite-sample scheme (method.md §5): ``"bonferroni"`` (intervals for every
            cell from the same samples) or ``"selection"`` (a separate first batch fixes the
            top-k set; one-sided intervals on the rest).
    """

    norm: Norm = L2
    eta: float = 0.05
    betas: tuple = (1.0, 0.9, 0.8, 0.7, 0.6, 0.5)
    cell_radii: bool = True
    scheme: str = "bonferroni"

    def __post_init__(self):
        object.__setattr__(self, "norm", Norm.parse(self.norm))
        eta = checks.positive("η (eta)", self.eta)
        if eta >= 1:
            raise ValueError(f"η (eta) must be in (0, 1), got {eta:g}")
        object.__setattr__(self, "eta", eta)
        raw = (self.betas,) if isinstance(self.betas, (int, float)) else self.betas
        betas = tuple(float(checks.fraction("β (beta)", b)) for b in raw)
        if not betas:
            raise ValueError("betas must hold at least one overlap level β in (0, 1]")
        object.__setattr__(self, "betas", betas)
        object.__setattr__(self, "cell_radii", bool(self.cell_radii))
        checks.choice("scheme", self.scheme, SCHEMES)
