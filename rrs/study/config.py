"""The study's settings: :class:`EvalConfig`, the presets and the image lists.

All budgets are in pixel units (ℓ∞ 4/255 = 0.0157). A config describes the whole grid; the
per-job settings objects (:class:`rrs.settings.MapSettings`, ``AttackSettings``,
``CertifySettings``) are built from it by :mod:`rrs.study.jobs`.
"""
from __future__ import annotations

import dataclasses
import json
import re
from dataclasses import dataclass
from pathlib import Path

__all__ = ["EvaluationError", "AttackStrength", "EvalConfig", "PRESETS", "EXPERIMENTS", "METHOD_NAMES",
           "SMOOTHED", "CERT_METHODS", "method_label", "ALL_SAMPLES", "QUICK_SAMPLES", "config_for", "sample_names",
           "is_image_file", "user_images"]

#: robustness, accuracy, certificates (Bonferroni RDP/CDF radii versus β); strength: how strong the
#: attack is (the attack gradient's variance that sizes EOT, drop versus PGD steps on one image);
#: schemes: every certificate scheme the app offers; profile: break radius versus certified radius.
EXPERIMENTS = ("robustness", "accuracy", "certificates", "strength", "schemes", "profile")
#: Methods compared: the raw gradient, the two smoothing baselines, RRS with two scoring
#: families (top-k' uniform with k' = ⌈n/10⌉, and exponential decay with length = k cells).
METHOD_NAMES = ("vanilla", "smoothgrad", "sparsified", "rrs-topk", "rrs-exp")
SMOOTHED = ("smoothgrad", "sparsified", "rrs-topk", "rrs-exp")
#: Methods whose map has values in a known range, so certificates apply.
CERT_METHODS = ("rrs-topk", "rrs-exp", "sparsified")
PRESETS = ("quick", "eval", "full", "test")

# Fixed, named image sets: the study always uses the same images in the same order.
ALL_SAMPLES = ("astronaut", "brick", "camera", "chelsea", "clock", "coffee", "coins", "gravel",
               "horse", "hubble", "retina", "rocket")
QUICK_SAMPLES = ("coffee", "chelsea", "astronaut")


_VARIANTS = {"rrs-topk": ("rrs", "top-k' uniform"), "rrs-exp": ("rrs", "exponential")}


def method_label(name: str) -> str:
    """Display label of a study method: the registry's label (``rrs.methods``), with the
    scoring family for the two RRS variants."""
    from ..methods import METHODS
    if name in _VARIANTS:
        base, scoring = _VARIANTS[name]
        return f"{METHODS[base].short} ({scoring})"
    return METHODS[name].label


class EvaluationError(ValueError):
    """A bad evaluation setting or an unusable output directory (plain-language message)."""


@dataclass(frozen=True)
class AttackStrength:
    """One named strength of the top-k attack: PGD ``steps`` with ``eot`` noise draws per step,
    ``restarts`` independent runs (the first from the image, the others from random points of the
    ball; the best label-keeping one is kept)."""

    name: str
    steps: int
    eot: int
    random_start: bool = False
    restarts: int = 1


@dataclass(frozen=True)
class EvalConfig:
    """Every setting of one evaluation run.

    Attributes:
        model: registry name (``efficientnet-lite0`` default, ``tiny`` for the tiny CNN).
        images: image names (bundled samples, image files, or ``shape-i`` for the tiny model).
        seeds: repetitions per setting (indices ``0..seeds-1``); base_seed: mixed into every
            noise seed.
        sigma: Gaussian noise σ (per-coordinate std) for every smoothed method.
        k_fraction: top-k size as a fraction of the cells (``MapSettings.k``).
        methods: subset of :data:`METHOD_NAMES`.
        robustness_T: ``(cell, T)`` pairs of the robustness-versus-budget grid.
        budgets: ``(norm, epsilon)`` pairs, norm ``"linf"`` or ``"l2"``; patch_budgets: the
            budgets for patch cells (``None``: the same).
        attack / strong_attack: the standard and the stronger attack; strong_budgets: its
            budgets, on the cells ``strong_cells`` and in the robustness-versus-T grid at
            ``strong_T_values``; strong_images: on the first this many images (``None``: all);
            strong_methods: for these methods only (``None``: all), also those of the
            drop-versus-steps run.
        T_values / T_cell / T_budget: the robustness-versus-T grid.
        accuracy_*: the accuracy-versus-T grid (reference map with ``accuracy_T_ref`` samples,
            two halves whose agreement is also reported).
        cert_*: the certificate grid (ℓ2, failure probability ``cert_eta``; ``cert_seeds``
            repetitions, ``None`` = ``seeds``).
        gradvar_*: the attack gradient's variance (``strength``): ``gradvar_draws`` single-draw
            gradients per image and smoothed method on the first ``gradvar_images`` images, at
            ``T_cell``; ``gradvar_target`` the noise-to-signal ratio an EOT average must reach.
        convergence_*: drop versus PGD steps (``strength``) on image ``convergence_image`` (an
            index) at the strong setting, cumulative steps ``convergence_steps``.
        scheme_*: every certificate scheme (``schemes``) on RRS maps: ``scheme_T`` samples,
            cells ``scheme_cells``, methods ``scheme_methods``, on the first ``scheme_images``.
        profile_*: break radius versus certified radius (``profile``,
            :func:`rrs.workflows.robustness.robustness_profile`, ℓ2): methods, cell, the maps'
            ``T``, the sweep (``budgets`` up to ``high``, PGD ``steps`` × ``eot``, ``bisection``,
            ``sweep_samples``, ``confirm_samples``), on the first ``profile_images`` (``None``: all).
        bench: run the speed measurements (:mod:`rrs.benchmarks`, printed by ``bench/smoothing.py``, ``bench/attack.py``).
    """

    model: str = "efficientnet-lite0"
    images: tuple = ()
    seeds: int = 2
    base_seed: int = 0
    sigma: float = 0.15
    k_fraction: float = 0.05
    methods: tuple = METHOD_NAMES
    robustness_T: tuple = ((1, 16), (16, 64))
    budgets: tuple = (("linf", 2 / 255), ("linf", 4 / 255), ("linf", 8 / 255),
                      ("l2", 1.0), ("l2", 3.0))
    patch_budgets: tuple | None = None
    attack: AttackStrength = AttackStrength("standard", 8, 4)
    strong_attack: AttackStrength | None = AttackStrength("strong", 20, 8)
    strong_budgets: tuple = (("linf", 4 / 255),)
    strong_cells: tuple = (1, 16)
    strong_T_values: tuple = ()
    strong_images: int | None = None
    strong_methods: tuple | None = None
    T_values: tuple = (1, 2, 4, 8, 16, 32, 64)
    T_cell: int = 1
    T_budget: tuple = ("linf", 4 / 255)
    accuracy_T_ref: int = 512
    accuracy_T_values: tuple = (1, 2, 4, 8, 16, 32, 64)
    accuracy_cells: tuple = (1, 16)
    cert_T: int = 1024
    cert_cells: tuple = (1, 8, 16)
    cert_betas: tuple = (1.0, 0.9, 0.8, 0.7, 0.6, 0.5)
    cert_eta: float = 0.05
    cert_methods: tuple = CERT_METHODS
    cert_seeds: int | None = 1
    gradvar_draws: int = 8
    gradvar_images: int = 2
    gradvar_target: float = 1.0
    convergence_image: int = 0
    convergence_steps: tuple = (0, 10, 25, 50, 100, 200)
    scheme_T: int = 512
    scheme_cells: tuple = (16,)
    scheme_methods: tuple = ("rrs-topk",)
    scheme_images: int | None = None
    profile_methods: tuple = ("vanilla", "sparsified", "rrs-topk")
    profile_cell: int = 16
    profile_T: int = 256
    profile_budgets: int = 6
    profile_high: float = 2.0
    profile_steps: int = 5
    profile_eot: int = 2
    profile_bisection: int = 2
    profile_sweep_samples: int = 32
    profile_confirm_samples: int = 64
    profile_images: int | None = None
    bench: bool = True
    experiments: tuple = EXPERIMENTS
    preset: str = "full"

    def validate(self) -> "EvalConfig":
        bad = [m for m in self.methods if m not in METHOD_NAMES]
        if bad:
            raise EvaluationError(f"unknown method(s) {bad}; choose from {list(METHOD_NAMES)}")
        if not self.images:
            raise EvaluationError("no images to evaluate")
        if self.seeds < 1:
            raise EvaluationError(f"seeds must be ≥ 1, got {self.seeds}")
        if not (self.sigma > 0):
            raise EvaluationError(f"sigma must be > 0, got {self.sigma}")
        if not (0 < self.k_fraction < 1):
            raise EvaluationError(f"k_fraction must be in (0, 1), got {self.k_fraction}")
        for norm, eps in (tuple(self.budgets) + tuple(self.patch_budgets or ()) + tuple(self.strong_budgets)
                          + (tuple(self.T_budget),)):
            if norm not in ("linf", "l2"):
                raise EvaluationError(f"budget norm must be 'linf' or 'l2', got {norm!r}")
            if not (eps > 0):
                raise EvaluationError(f"attack budgets must be > 0, got {eps}")
        for t in tuple(self.T_values) + tuple(self.accuracy_T_values) + (self.accuracy_T_ref, self.cert_T):
            if int(t) != t or t < 1:
                raise EvaluationError(f"sample counts T must be integers ≥ 1, got {t}")
        bad = [e for e in self.experiments if e not in EXPERIMENTS]
        if bad:
            raise EvaluationError(f"unknown experiment(s) {bad}; choose from {list(EXPERIMENTS)}")
        for m in tuple(self.scheme_methods) + tuple(self.profile_methods):
            if m not in METHOD_NAMES:
                raise EvaluationError(f"unknown method {m!r} in the schemes/profile grid")
        if any(not m.startswith("rrs") for m in self.scheme_methods):
            raise EvaluationError("the certificate schemes apply to RRS maps (rrs-topk, rrs-exp)")
        if list(self.convergence_steps) != sorted(set(int(s) for s in self.convergence_steps)):
            raise EvaluationError("convergence_steps must be increasing integers")
        if self.scheme_T < 16:
            raise EvaluationError(f"scheme_T must be ≥ 16 (the selection scheme's T/8 batch), got {self.scheme_T}")
        if self.accuracy_T_ref < 2:
            raise EvaluationError("accuracy_T_ref must be ≥ 2 (it is split in two halves)")
        return self

    def first(self, count: int | None) -> tuple:
        """The first ``count`` images (all when ``None``)."""
        return tuple(self.images) if count is None else tuple(self.images)[:max(0, int(count))]

    @property
    def strong_image_names(self) -> tuple:
        return self.first(self.strong_images)

    def strong_for(self, method: str) -> bool:
        """Whether the strong attack (and the drop-versus-steps run) covers ``method``."""
        return self.strong_methods is None or method in self.strong_methods

    def budgets_for(self, cell: int) -> tuple:
        """The standard attack's budgets at cell size ``cell``."""
        return self.budgets if cell == 1 or self.patch_budgets is None else self.patch_budgets

    def to_json(self) -> dict:
        return json.loads(json.dumps(dataclasses.asdict(self)))

    @classmethod
    def from_json(cls, data: dict) -> "EvalConfig":
        """The config written by :meth:`to_json` (``settings.json``, ``runs.jsonl``), so a report
        can be rewritten from stored rows. Records before the rrs.study package named an attack
        strength's EOT count ``eot_samples``."""
        def strength(d):
            if d is None:
                return None
            d = dict(d)
            if "eot_samples" in d:
                d["eot"] = d.pop("eot_samples")
            return AttackStrength(**d)

        def tuples(v):
            return tuple(tuples(x) for x in v) if isinstance(v, list) else v

        fields = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - fields)
        if unknown:
            raise EvaluationError(f"unknown study setting(s): {', '.join(unknown)}")
        values = {k: tuples(v) for k, v in data.items()}
        for k in ("attack", "strong_attack"):
            if k in data:
                values[k] = strength(data[k])
        return cls(**values)


def _preset(name: str, model: str) -> EvalConfig:
    tiny = model == "tiny"
    if name == "full":
        images = tuple(f"shape-{i}" for i in range(12)) if tiny else ALL_SAMPLES
        return EvalConfig(model=model, images=images, preset="full")
    if name == "quick":
        # Sized for < 15 min on two idle CPU cores with EfficientNet-Lite0 at 224×224 (≈ 11k
        # gradient evaluations at ≈ 65 ms): three images, one seed, short EOT attacks; pixel
        # cells at T=8 under ℓ∞ and ℓ2, 16×16 patch cells (where the floor is meaningful) at
        # T=32 under the standard and a stronger attack; T ∈ {1, 4, 8}; certificates at T=128.
        images = tuple(f"shape-{i}" for i in range(3)) if tiny else QUICK_SAMPLES
        return EvalConfig(
            model=model, images=images, seeds=1, preset="quick",
            robustness_T=((1, 8), (16, 32)),
            budgets=(("linf", 4 / 255), ("l2", 2.0)), patch_budgets=(("linf", 4 / 255),),
            attack=AttackStrength("standard", 5, 2),
            strong_attack=AttackStrength("strong", 8, 4),
            strong_budgets=(("linf", 4 / 255),), strong_cells=(16,),
            T_values=(1, 4, 8), T_cell=1, T_budget=("linf", 4 / 255),
            accuracy_T_ref=64, accuracy_T_values=(1, 4, 16), accuracy_cells=(16,),
            cert_T=128, cert_cells=(1, 8, 16), cert_methods=("rrs-topk", "sparsified"), bench=False,
            experiments=("robustness", "accuracy", "certificates"))
    if name == "eval":
        return _eval_preset(model)
    if name == "test":
        # Seconds on the tiny model: used by tests/test_study.py.
        images = tuple(f"shape-{i}" for i in range(2))
        return EvalConfig(
            model=model, images=images, seeds=2, preset="test",
            methods=("vanilla", "smoothgrad", "rrs-topk"),
            robustness_T=((1, 4), (4, 8)), budgets=(("linf", 8 / 255), ("l2", 0.5)),
            attack=AttackStrength("standard", 2, 2), strong_attack=AttackStrength("strong", 3, 2),
            strong_budgets=(("linf", 8 / 255),), strong_cells=(4,),
            T_values=(1, 2, 4), T_cell=1, T_budget=("linf", 8 / 255),
            accuracy_T_ref=32, accuracy_T_values=(1, 4), accuracy_cells=(1, 4),
            cert_T=64, cert_cells=(1, 4), cert_methods=("rrs-topk", "sparsified"), bench=False,
            gradvar_draws=4, gradvar_images=1, convergence_steps=(0, 3, 6), scheme_T=64, scheme_cells=(4,),
            scheme_images=1, profile_cell=4, profile_T=64, profile_budgets=3, profile_steps=2, profile_eot=1,
            profile_bisection=1, profile_sweep_samples=16, profile_confirm_samples=16, profile_images=1)
    raise EvaluationError(f"unknown preset {name!r}; choose one of {', '.join(PRESETS)}")


def _eval_preset(model: str) -> EvalConfig:
    """The published study (``make eval``), sized for about 75 minutes on two idle CPU cores with
    EfficientNet-Lite0: ≈ 55k gradient evaluations (:func:`rrs.study.jobs.estimate_cost`), at the
    ≈ 84 ms per estimated gradient that the 12-image quick study took here when the machine was
    idle (49.5k in 4150 s); ``evaluate`` prints the estimate at the rate it measures before
    starting. All 12 images, one seed: pixel cells at T=8 and 16×16 patches at T=16 under ℓ∞ 4/255
    with the standard attack (5 steps × 2 EOT), T ∈ {1, 4, 8}; the strong attack (100 PGD steps ×
    2 EOT × 2 restarts) on the first 2 images for the three smoothed baselines' representatives
    (SmoothGrad, Sparsified, RRS top-k′) at the 16×16 setting and at T=4 of the
    robustness-versus-T grid; the attack gradient's variance on those 2 images; drop versus steps
    up to 150 on the first image; accuracy against a T=32 reference; Bonferroni certificates at
    T=64; every certificate scheme at T=256 on 2 images; the certificate-versus-attack profile on
    all 12 (vanilla, Sparsified SmoothGrad, RRS top-k′ at T=256 on 32×32 cells, the Certify page's
    cells, ℓ2 up to 2: at T=64 on 16×16 cells every certified radius was 0 on the images tried)."""
    tiny = model == "tiny"
    images = tuple(f"shape-{i}" for i in range(12)) if tiny else ALL_SAMPLES
    return EvalConfig(
        model=model, images=images, seeds=1, preset="eval",
        robustness_T=((1, 8), (16, 16)),
        budgets=(("linf", 4 / 255),), patch_budgets=(("linf", 4 / 255),),
        attack=AttackStrength("standard", 5, 2),
        strong_attack=AttackStrength("strong", 100, 2, restarts=2),
        strong_budgets=(("linf", 4 / 255),), strong_cells=(16,), strong_T_values=(4,), strong_images=2,
        strong_methods=("smoothgrad", "sparsified", "rrs-topk"),
        T_values=(1, 4, 8), T_cell=1, T_budget=("linf", 4 / 255),
        accuracy_T_ref=32, accuracy_T_values=(1, 4, 16), accuracy_cells=(16,),
        cert_T=64, cert_cells=(16,), cert_methods=("rrs-topk", "sparsified"), bench=False,
        gradvar_draws=16, gradvar_images=2, convergence_image=0, convergence_steps=(0, 10, 25, 50, 100, 150),
        scheme_T=256, scheme_cells=(16,), scheme_methods=("rrs-topk",), scheme_images=2,
        profile_methods=("vanilla", "sparsified", "rrs-topk"), profile_cell=32, profile_T=256, profile_budgets=3,
        profile_high=2.0, profile_steps=4, profile_eot=1, profile_bisection=1, profile_sweep_samples=16,
        profile_confirm_samples=32, profile_images=None)


# ----------------------------------------------------------------------------- images

def sample_names() -> list[str]:
    """Names of the bundled sample images."""
    from ..images import list_samples
    return [name for name, _ in list_samples()]


def is_image_file(image: str) -> bool:
    from ..images import IMAGE_SUFFIXES
    return Path(image).suffix.lower() in IMAGE_SUFFIXES and Path(image).is_file()


def user_images(entry: str) -> list[str]:
    """The image files named by ``entry`` (a file, or a folder's image files in name order),
    each checked by loading it: a bad file is an :class:`EvaluationError` naming it."""
    from ..images import IMAGE_SUFFIXES, ImageError, load_image
    path = Path(entry)
    if path.is_dir():
        files = sorted(str(p) for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
        if not files:
            raise EvaluationError(f"--images: the folder {entry} holds no image files "
                                  f"({', '.join(IMAGE_SUFFIXES)})")
    else:
        files = [str(path)]
    for f in files:
        try:
            load_image(f)
        except ImageError as exc:
            raise EvaluationError(f"--images: {f}: {exc}") from None
    return files


def _choose_images(cfg: EvalConfig, model: str, images) -> tuple:
    if len(images) == 1 and str(images[0]).isdigit():
        count = int(images[0])
        pool = list(cfg.images) if count <= len(cfg.images) else (
            [f"shape-{i}" for i in range(count)] if model == "tiny" else list(ALL_SAMPLES))
        if count < 1 or count > len(pool):
            raise EvaluationError(f"--images: between 1 and {len(pool)} images are available, got {count}")
        return tuple(pool[:count])
    known = set(sample_names())
    chosen = []
    for name in map(str, images):
        if Path(name).is_dir() or is_image_file(name):
            chosen += user_images(name)
        elif name not in known and not (model == "tiny" and re.fullmatch(r"shape-\d+", name)):
            raise EvaluationError(f"--images: {name!r} is neither a bundled sample (have: "
                                  f"{', '.join(sorted(known))}) nor an image file or folder")
        else:
            chosen.append(name)
    return tuple(dict.fromkeys(chosen))


def config_for(preset: str = "full", model: str = "efficientnet-lite0", images=None, seeds=None,
               seed: int = 0, methods=None, bench=None, experiments=None, T_values=None) -> EvalConfig:
    """The preset's settings with overrides.

    ``images``: bundled sample names, image files or folders of images (a folder stands for
    its image files in name order), or one number = the first N images of the preset. Stored
    jobs are keyed by the name or path: after editing an image file, pass ``--no-resume``.
    """
    cfg = _preset(preset, model)
    changes = {"base_seed": int(seed)}
    if images:
        changes["images"] = _choose_images(cfg, model, images)
    if seeds is not None:
        changes["seeds"] = int(seeds)
    if methods:
        changes["methods"] = tuple(methods)
    if bench is not None:
        changes["bench"] = bool(bench)
    if experiments:
        changes["experiments"] = tuple(experiments)
    if T_values:
        # the sample counts of the robustness-versus-T and accuracy-versus-T experiments
        ts = tuple(sorted({int(t) for t in T_values}))
        if ts[-1] >= cfg.accuracy_T_ref:
            raise EvaluationError(f"--T: values must stay below the accuracy reference T={cfg.accuracy_T_ref}")
        changes["T_values"] = ts
        changes["accuracy_T_values"] = ts
    return dataclasses.replace(cfg, **changes).validate()
