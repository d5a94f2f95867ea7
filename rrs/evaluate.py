"""The evaluation study: robustness under attack, accuracy versus T, certificates, speed.

Reproduces the claims of Liu, Chen, Liu, Xia, Gan (*Certifiably Robust Interpretation via
Rényi Differential Privacy*, AI 2022) on this project's models, next to SmoothGrad
(Smilkov et al. 2017), Sparsified SmoothGrad (Levine, Singla, Feizi 2019) and the vanilla
gradient, following method.md §2–§7:

1. **robustness** — top-k intersection and Spearman correlation between the clean map and
   the map of an image attacked by the top-k attack (Ghorbani et al. 2019, PGD with EOT on
   the smoothed methods, ``rrs.attacks.attack``), at several ℓ∞ and ℓ2 budgets, pixel and
   patch cells, several ``T``; always next to the *no-attack floor* (the same metric between
   two clean runs with different seeds), because finite ``T`` makes smoothed maps differ
   from run to run by themselves.
2. **accuracy** — top-k intersection between a ``T``-sample map and a high-``T`` reference.
3. **certificates** — certified ℓ2 radius versus β (RDP exact plug-in and finite-sample, the
   equal-level form, Gaussian-CDF) for pixel and patch cells, and the time to certify a map.
4. **speed** — the ratios printed by ``bench/smoothing.py`` and ``bench/attack.py``.

The study is a grid of independent *jobs*; a job is a JSON-serialisable dict of parameters and
:func:`run_job` turns it into result rows (plain numbers). Each finished job is stored as
``<out>/jobs/<key>.json``, ``key`` a stable hash of its parameters, so an interrupted run resumes
without recomputing anything. Jobs run in-process by default and as Ray tasks with ``ray=True``
or ``ray_address=...`` (Ray is imported only then). Randomness: every map and attack draws
from a ``torch.Generator`` seeded by a hash of (base seed, job parameters), so the same
parameters give the same numbers in-process and on Ray.
"""
from __future__ import annotations

import argparse
import contextlib
import dataclasses
import datetime as _dt
import functools
import hashlib
import json
import math
import os
import platform
import re
import socket
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

__all__ = ["EvalConfig", "AttackSetting", "EvaluationError", "PRESETS", "METHOD_NAMES", "EXPERIMENTS",
           "config_for", "build_jobs", "estimate_cost", "tie_aware_intersection", "job_key", "derive_seed", "run_job", "run_grid", "run_evaluation",
           "load_rows", "load_summary", "register_cli", "main", "EvaluationResult"]

#: Per job kind: bump when a job's meaning changes, so stored results of the old meaning are
#: not reused. Version 2 of the map-comparing jobs reports the tie-aware intersection.
SCHEMAS = {"floor": 2, "attack": 2, "accuracy": 2, "certify": 1, "speed": 1}

EXPERIMENTS = ("robustness", "accuracy", "certificates")
#: Methods compared: the raw gradient, the two smoothing baselines, RRS with two scoring
#: families (top-k' uniform with k' = ⌈n/10⌉, and exponential decay with length = k cells).
METHOD_NAMES = ("vanilla", "smoothgrad", "sparsified", "rrs-topk", "rrs-exp")
SMOOTHED = ("smoothgrad", "sparsified", "rrs-topk", "rrs-exp")
#: Methods whose map has values in a known range, so certificates apply.
CERT_METHODS = ("rrs-topk", "rrs-exp", "sparsified")

ROOT = Path(__file__).resolve().parent.parent


class EvaluationError(ValueError):
    """A bad evaluation setting or an unusable output directory (plain-language message)."""


# ----------------------------------------------------------------------------- settings

@dataclass(frozen=True)
class AttackSetting:
    """One strength of the top-k attack: PGD ``steps`` with ``eot_samples`` noise draws per step."""

    name: str
    steps: int
    eot_samples: int
    random_start: bool = False


@dataclass(frozen=True)
class EvalConfig:
    """Every setting of one evaluation run (all budgets in pixel units; ℓ∞ 4/255 = 0.0157).

    Attributes:
        model: registry name (``efficientnet-lite0`` default, ``tiny`` for the tiny CNN).
        images: image names (bundled samples, or ``shape-i`` for the tiny model's shapes).
        seeds: repetitions per setting (seed indices ``0..seeds-1``); base_seed: mixed into
            every generator seed.
        sigma: Gaussian noise std for every smoothed method (matched across methods).
        k_fraction: top-k size as a fraction of the cells (``k = max(1, round(f·n))``).
        methods: subset of :data:`METHOD_NAMES`.
        robustness_T: cell size → ``T`` used for the robustness-versus-budget grid.
        budgets: ``(norm, epsilon)`` pairs, norm ``"linf"`` or ``"l2"``; patch_budgets: the
            budgets for patch cells (``None``: the same).
        attack / strong_attack: the standard and the stronger attack;
        strong_budgets: budgets (at pixel cells unless ``strong_cells``) for the strong one.
        T_values / T_cell / T_budget: the robustness-versus-T grid.
        accuracy_*: the accuracy-versus-T grid (reference map with ``accuracy_T_ref`` samples,
            split in two halves whose agreement is also reported).
        cert_*: the certificate grid (norm ℓ2, failure probability ``cert_eta``; ``cert_seeds``
            repetitions, ``None`` = ``seeds``).
        bench: run ``bench/smoothing.py`` and ``bench/attack.py`` when present.
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
    attack: AttackSetting = AttackSetting("standard", 8, 4)
    strong_attack: AttackSetting | None = AttackSetting("strong", 20, 8)
    strong_budgets: tuple = (("linf", 4 / 255),)
    strong_cells: tuple = (1, 16)
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
    bench: bool = True
    experiments: tuple = ("robustness", "accuracy", "certificates")
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
        if self.accuracy_T_ref < 2:
            raise EvaluationError("accuracy_T_ref must be ≥ 2 (it is split in two halves)")
        return self

    def to_json(self) -> dict:
        return json.loads(json.dumps(dataclasses.asdict(self)))


# Fixed, named image sets: the study always uses the same images in the same order.
ALL_SAMPLES = ("astronaut", "brick", "camera", "chelsea", "clock", "coffee", "coins", "gravel",
               "horse", "hubble", "retina", "rocket")
QUICK_SAMPLES = ("coffee", "chelsea", "astronaut")


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
            attack=AttackSetting("standard", 5, 2),
            strong_attack=AttackSetting("strong", 8, 4),
            strong_budgets=(("linf", 4 / 255),), strong_cells=(16,),
            T_values=(1, 4, 8), T_cell=1, T_budget=("linf", 4 / 255),
            accuracy_T_ref=64, accuracy_T_values=(1, 4, 16), accuracy_cells=(16,),
            cert_T=128, cert_cells=(1, 8, 16), cert_methods=("rrs-topk", "sparsified"), bench=False)
    if name == "test":
        # Seconds on the tiny model: used by tests/test_evaluate.py.
        images = tuple(f"shape-{i}" for i in range(2))
        return EvalConfig(
            model=model, images=images, seeds=2, preset="test",
            methods=("vanilla", "smoothgrad", "rrs-topk"),
            robustness_T=((1, 4), (4, 8)), budgets=(("linf", 8 / 255), ("l2", 0.5)),
            attack=AttackSetting("standard", 2, 2), strong_attack=AttackSetting("strong", 3, 2),
            strong_budgets=(("linf", 8 / 255),), strong_cells=(4,),
            T_values=(1, 2, 4), T_cell=1, T_budget=("linf", 8 / 255),
            accuracy_T_ref=32, accuracy_T_values=(1, 4), accuracy_cells=(1, 4),
            cert_T=64, cert_cells=(1, 4), cert_methods=("rrs-topk", "sparsified"), bench=False)
    raise EvaluationError(f"unknown preset {name!r}; choose 'quick', 'full' or 'test'")


PRESETS = ("quick", "full", "test")


# ----------------------------------------------------------------------------- job grid

def job_key(params: dict) -> str:
    """Stable 16-hex-digit key of a job's parameters (same parameters → same file)."""
    blob = json.dumps(params, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def derive_seed(*parts) -> int:
    """A 63-bit generator seed from any JSON-serialisable parts (stable across processes)."""
    blob = json.dumps(parts, sort_keys=True, separators=(",", ":"), default=str)
    return int.from_bytes(hashlib.sha256(blob.encode()).digest()[:8], "big") & (2 ** 63 - 1)


def _common(cfg: EvalConfig, image: str) -> dict:
    return {"model": cfg.model, "image": image, "sigma": cfg.sigma,
            "k_fraction": cfg.k_fraction, "base_seed": cfg.base_seed}


def build_jobs(cfg: EvalConfig) -> list[dict]:
    """Every job of the study, deduplicated, in a cache-friendly order (image-major)."""
    cfg.validate()
    methods = [m for m in METHOD_NAMES if m in cfg.methods]
    jobs: dict[str, dict] = {}

    def add(p):
        p = dict(p, schema=SCHEMAS[p["kind"]])
        jobs.setdefault(job_key(p), p)

    def robustness(image, method, cell, T, norm, eps, setting):
        T = 1 if method == "vanilla" else int(T)
        for s in range(cfg.seeds):
            base = dict(_common(cfg, image), method=method, cell=int(cell), T=T, seed=s)
            add(dict(base, kind="floor"))
            add(dict(base, kind="attack", norm=norm, epsilon=float(eps), attack=setting.name,
                     steps=setting.steps, eot_samples=setting.eot_samples,
                     random_start=setting.random_start))

    want = set(cfg.experiments)
    for image in cfg.images:
        if "robustness" in want:
            _robustness_jobs(cfg, image, methods, robustness)
        if "accuracy" in want:
            _accuracy_jobs(cfg, image, methods, add)
        if "certificates" in want:
            _certify_jobs(cfg, image, methods, add)
    out = list(jobs.values())
    if cfg.bench:
        out.append({"schema": SCHEMAS["speed"], "kind": "speed", "model": cfg.model})
    return out


def _robustness_jobs(cfg, image, methods, robustness):
    for cell, T in cfg.robustness_T:
        for method in methods:
            budgets = cfg.budgets if cell == 1 or cfg.patch_budgets is None else cfg.patch_budgets
            for norm, eps in budgets:
                robustness(image, method, cell, T, norm, eps, cfg.attack)
            if cfg.strong_attack is not None and cell in cfg.strong_cells:
                for norm, eps in cfg.strong_budgets:
                    robustness(image, method, cell, T, norm, eps, cfg.strong_attack)
    for T in cfg.T_values:
        for method in methods:
            robustness(image, method, cfg.T_cell, T, cfg.T_budget[0], cfg.T_budget[1], cfg.attack)


def _accuracy_jobs(cfg, image, methods, add):
    # One job per (image, method, cell): the expensive reference map is computed once and
    # compared with maps of every T and seed.
    for cell in cfg.accuracy_cells:
        for method in methods:
            if method in SMOOTHED:
                add(dict(_common(cfg, image), kind="accuracy", method=method, cell=int(cell),
                         T_ref=int(cfg.accuracy_T_ref), T_values=[int(t) for t in cfg.accuracy_T_values],
                         seeds=cfg.seeds))


def _certify_jobs(cfg, image, methods, add):
    for cell in cfg.cert_cells:
        for method in methods:
            if method in cfg.cert_methods:
                for s in range(cfg.seeds if cfg.cert_seeds is None else cfg.cert_seeds):
                    add(dict(_common(cfg, image), kind="certify", method=method, cell=int(cell),
                             T=int(cfg.cert_T), betas=[float(b) for b in cfg.cert_betas],
                             eta=float(cfg.cert_eta), seed=s))


def estimate_cost(jobs: list[dict]) -> float:
    """Rough cost of ``jobs`` in plain-gradient evaluations (for planning a run).

    Attack steps are counted as in ``bench/attack.py`` on EfficientNet-Lite0: ≈ 4 gradients per
    raw-gradient step and ≈ 3 per EOT sample (+ 1.5 for the label check) per smoothed step;
    every map costs T gradients (the attack measures two, the job one more).
    """
    total = 0.0
    for j in jobs:
        kind, T = j.get("kind"), j.get("T", 1)
        if kind == "floor":
            total += 2 * T
        elif kind == "attack":
            step = 4.0 if j["method"] == "vanilla" else 3.0 * j["eot_samples"] + 1.5
            total += j["steps"] * step + 3 * T
        elif kind == "accuracy":
            total += j["T_ref"] + j["seeds"] * sum(j["T_values"])
        elif kind == "certify":
            total += T
    return total


# ------------------------------------------------------------------- models and images

def _resolve_device(device) -> str:
    if device in (None, "", "auto"):
        return "cuda" if torch.cuda.is_available() else "cpu"
    return str(device)


@functools.lru_cache(maxsize=4)
def get_model(name: str, device: str = "cpu"):
    """The classifier ``name`` (``rrs.models`` registry) on ``device``, loaded once per process."""
    from . import models
    return models.load_model(name, device=device)


def sample_names() -> list[str]:
    """Names of the bundled sample images."""
    from .images import list_samples
    return [name for name, _ in list_samples()]


def _is_image_file(image: str) -> bool:
    from .images import IMAGE_SUFFIXES
    return Path(image).suffix.lower() in IMAGE_SUFFIXES and Path(image).is_file()


@functools.lru_cache(maxsize=64)
def _image_array(image: str, size: int) -> np.ndarray:
    from .images import load_image, load_sample, to_tensor
    if image.startswith("shape-"):
        return _shape_image(int(image.split("-", 1)[1]), size)
    if _is_image_file(image):
        return to_tensor(load_image(image), size).numpy()
    return to_tensor(load_sample(image), size).numpy()


def _user_images(entry: str) -> list[str]:
    """The image files named by ``entry`` (a file, or a folder's image files in name order),
    each checked by loading it: a bad file is an :class:`EvaluationError` naming it."""
    from .images import IMAGE_SUFFIXES, ImageError, load_image
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


def _shape_image(index: int, size: int) -> np.ndarray:
    """Synthetic shape image number ``index`` for the tiny model (``rrs.tiny.make_shapes``)."""
    from . import tiny
    # The evaluation's shape images are one fixed draw (generator seed 2022) of at least 12
    # images, so image i is the same whatever else is evaluated.
    count = max(12, index + 1)
    x, _ = tiny.make_shapes(count, size=size, generator=torch.Generator().manual_seed(2022))
    return x[index].detach().float().cpu().numpy()


def get_image(model, image: str) -> torch.Tensor:
    """The image ``(3, S, S)`` in ``[0, 1]`` at the model's input size."""
    size = int(getattr(model, "input_size", 224))
    return torch.from_numpy(_image_array(image, size).copy())


# ------------------------------------------------------------------------------ maps

def topk_membership(m, k: int) -> np.ndarray:
    """Probability that each cell is in the top-k of ``m`` when ties are broken uniformly at random.

    Cells above the k-th value have probability 1; the ``t`` cells equal to it share the
    ``r`` remaining places (probability ``r/t`` each); cells below have 0.
    """
    v = np.asarray(m.detach().double().cpu().numpy() if hasattr(m, "detach") else m, dtype=float).reshape(-1)
    kth = np.partition(v, v.size - k)[v.size - k]
    above, tied = v > kth, v == kth
    return above + tied * ((k - above.sum()) / tied.sum())


def tie_aware_intersection(a, b, k: int) -> float:
    """Expected ``|top_k(a) ∩ top_k(b)| / k`` with ties broken uniformly at random (independently).

    Equals :func:`rrs.metrics.topk_intersection` when neither map has a tie at its k-th value.
    Smoothed maps with few samples have many ties — an RRS map with top-k' uniform scoring
    and T=1 takes only two values — and breaking them by index (the library's deterministic
    rule) makes two unrelated maps agree on the low-index cells, inflating the intersection.
    """
    return float(np.dot(topk_membership(a, k), topk_membership(b, k)) / k)


def _k_for(n: int, fraction: float) -> int:
    return int(min(n - 1, max(1, round(fraction * n))))


def _grid(model, cell: int) -> tuple[int, int]:
    from .attributions import cell_grid
    s = int(getattr(model, "input_size", 224))
    return cell_grid(s, s, int(cell))


def _scoring(method: str, n: int, k: int):
    from .scoring import exponential, topk_uniform
    if method == "rrs-topk":
        return topk_uniform(n, max(1, math.ceil(n / 10)))
    if method == "rrs-exp":
        return exponential(n, float(k))
    return None


def _smooth_kwargs(method: str, n: int, k: int) -> dict:
    if method in ("rrs-topk", "rrs-exp"):
        return {"method": "rrs", "scoring": _scoring(method, n, k)}
    return {"method": method}


def compute_map(model, x, target, method: str, cell: int, T: int, sigma: float, seed: int,
                n: int, k: int):
    """One map of ``method`` for image ``x`` (3, H, W): the ``SmoothResult`` (smoothed
    methods) or ``None`` and the raw ``(rows, cols)`` map (vanilla)."""
    from .noise import Gaussian
    from .smoothing import raw_map, smooth
    if method == "vanilla":
        return None, raw_map(model, x[None], target, base="vanilla", cell=cell)[0].cpu()
    gen = torch.Generator().manual_seed(int(seed))
    res = smooth(model, x[None], target, base="vanilla", noise=Gaussian(sigma), samples=int(T),
                 batch_size=min(int(T), 16), cell=int(cell), generator=gen, **_smooth_kwargs(method, n, k))
    return res, res.map[0].cpu()


def _map_seed(p: dict, which: str) -> int:
    return derive_seed(p["base_seed"], "map", p["model"], p["image"], p["method"], p["cell"], p["T"],
                       p["sigma"], p["seed"], which)


def _setting(p: dict) -> dict:
    keys = ("image", "method", "cell", "T", "seed", "norm", "epsilon", "attack")
    return {k: p.get(k) for k in keys}


def _row(p: dict, experiment: str, metric: str, value, **extra) -> dict:
    r = {"experiment": experiment, "image": p.get("image"), "method": p.get("method"),
         "cell": p.get("cell"), "T": p.get("T"), "seed": p.get("seed"), "norm": p.get("norm"),
         "budget": p.get("epsilon"), "attack": p.get("attack"), "certificate": None, "beta": None,
         "metric": metric, "value": None if value is None else float(value)}
    r.update(extra)
    return r


# ------------------------------------------------------------------------------- jobs

def _prepare(p: dict, device: str, image_array=None):
    model = get_model(p["model"], device)
    x = torch.from_numpy(np.asarray(image_array, dtype=np.float32).copy()) if image_array is not None \
        else get_image(model, p["image"])
    dev = next(model.parameters()).device
    x = x.to(dev)
    with torch.no_grad():
        target = model(x[None]).argmax(1)
    rows, cols = _grid(model, p["cell"])
    n = rows * cols
    return model, x, target, n, _k_for(n, p["k_fraction"])


def _job_floor(p, device, image_array=None):
    from .metrics import spearman, topk_intersection
    model, x, target, n, k = _prepare(p, device, image_array)
    _, a = compute_map(model, x, target, p["method"], p["cell"], p["T"], p["sigma"], _map_seed(p, "a"), n, k)
    _, b = compute_map(model, x, target, p["method"], p["cell"], p["T"], p["sigma"], _map_seed(p, "b"), n, k)
    return [_row(p, "robustness", "floor_intersection", tie_aware_intersection(a, b, k), k=k, n_cells=n),
            _row(p, "robustness", "floor_intersection_index", topk_intersection(a, b, k), k=k, n_cells=n),
            _row(p, "robustness", "floor_spearman", spearman(a, b), k=k, n_cells=n)]


def _attack_fn():
    try:
        from .attacks import attack
    except ImportError:
        raise EvaluationError("rrs.attacks is not available yet: the robustness experiment needs it") from None
    return attack


def _job_attack(p, device, image_array=None):
    from .metrics import spearman, topk_intersection
    from .noise import Gaussian
    attack = _attack_fn()
    model, x, target, n, k = _prepare(p, device, image_array)
    method = p["method"]
    att_method = {"rrs-topk": "rrs", "rrs-exp": "rrs"}.get(method, method)
    gen = torch.Generator().manual_seed(derive_seed(p["base_seed"], "attack", _setting(p), p["steps"],
                                                    p["eot_samples"], p["model"], p["sigma"]))
    t0 = time.perf_counter()
    # The attacker sees the clean map measured with T samples and seed a (the same map as the
    # floor's first run) and attacks its top-k set with EOT on fresh noise.
    res = attack(model, x, method=att_method, objective="topk", norm=p["norm"], epsilon=p["epsilon"],
                 steps=p["steps"], k=k, cell=p["cell"], target=target,
                 noise=None if method == "vanilla" else Gaussian(p["sigma"]),
                 samples=p["T"], eot_samples=p["eot_samples"], random_start=p["random_start"],
                 scoring=_scoring(method, n, k), generator=gen, eval_seed=_map_seed(p, "a"),
                 batch_size=min(int(p["T"]), 16))
    seconds = time.perf_counter() - t0
    clean_a, att_a = res.clean_map.detach().cpu(), res.attacked_map.detach().cpu()
    x_adv = res.x_adv.detach().to(x.device).reshape(x.shape)
    # The reported attacked map uses seed b, the same noise as the floor's second clean run
    # (common random numbers), so attacked − floor measures the attack, not Monte Carlo noise,
    # and the attacker never saw the noise it is measured with.
    _, att_b = compute_map(model, x_adv, target, method, p["cell"], p["T"], p["sigma"], _map_seed(p, "b"), n, k)
    with torch.no_grad():
        adv_label = int(model(x_adv[None]).argmax(1)[0])
    extra = {"k": k, "n_cells": n}
    return [
        _row(p, "robustness", "intersection", tie_aware_intersection(clean_a, att_b, k), **extra),
        _row(p, "robustness", "intersection_index", topk_intersection(clean_a, att_b, k), **extra),
        _row(p, "robustness", "spearman", spearman(clean_a, att_b), **extra),
        _row(p, "robustness", "intersection_same_noise", tie_aware_intersection(clean_a, att_a, k), **extra),
        _row(p, "robustness", "label_preserved", float(adv_label == int(target[0])), **extra),
        _row(p, "robustness", "perturbation_l2", float((x_adv - x).norm()), **extra),
        _row(p, "robustness", "perturbation_linf", float((x_adv - x).abs().max()), **extra),
        _row(p, "robustness", "attack_seconds", seconds, **extra),
    ]


def _job_accuracy(p, device, image_array=None):
    model, x, target, n, k = _prepare(p, device, image_array)
    half = p["T_ref"] // 2
    rows = []
    q = dict(p, T=half, seed="ref")
    ra, ref_a = compute_map(model, x, target, p["method"], p["cell"], half, p["sigma"], _map_seed(q, "a"), n, k)
    rb, ref_b = compute_map(model, x, target, p["method"], p["cell"], half, p["sigma"], _map_seed(q, "b"), n, k)
    ref = (ref_a + ref_b) / 2  # = the map with T_ref samples (a mean of means of equal size)
    rows.append(_row(dict(p, T=p["T_ref"]), "accuracy", "reference_half_agreement",
                     tie_aware_intersection(ref_a, ref_b, k), k=k, n_cells=n, T_ref=p["T_ref"]))
    for s in range(p["seeds"]):
        for T in p["T_values"]:
            q = dict(p, T=T, seed=s)
            _, m = compute_map(model, x, target, p["method"], p["cell"], T, p["sigma"], _map_seed(q, "acc"), n, k)
            rows.append(_row(q, "accuracy", "intersection_vs_reference", tie_aware_intersection(m, ref, k),
                             k=k, n_cells=n, T_ref=p["T_ref"]))
    return rows


def _job_certify(p, device, image_array=None):
    from .certify import certify
    model, x, target, n, k = _prepare(p, device, image_array)
    t0 = time.perf_counter()
    res, _ = compute_map(model, x, target, p["method"], p["cell"], p["T"], p["sigma"], _map_seed(p, "cert"), n, k)
    smooth_seconds = time.perf_counter() - t0
    t0 = time.perf_counter()
    rep = certify(res.stats(0), k, res.noise, betas=tuple(p["betas"]), norm=2, eta=p["eta"],
                  rrs_map=p["method"].startswith("rrs"), per_cell=p["method"].startswith("rrs"))
    cert_seconds = time.perf_counter() - t0
    extra = {"k": k, "n_cells": n, "norm": "l2"}
    rows = []
    groups = (("rdp-plugin", rep.rdp_plugin), ("rdp-finite", rep.rdp_finite), ("cdf-plugin", rep.cdf_plugin),
              ("cdf-finite", rep.cdf_finite), ("equal-level", rep.equal_level))
    for name, certs in groups:
        for c in certs:
            rows.append(_row(p, "certificates", "radius", c.radius, certificate=name, beta=float(c.beta),
                             is_certificate=bool(c.is_certificate), **extra))
    if rep.cells_plugin is not None:
        sel = rep.cells_plugin.radii[rep.cells_plugin.selected]
        rows.append(_row(p, "certificates", "cell_radius_median", float(np.median(sel)),
                         certificate="rdp-plugin", **extra))
    rows.append(_row(p, "certificates", "certify_seconds", cert_seconds, **extra))
    rows.append(_row(p, "certificates", "smooth_seconds", smooth_seconds, **extra))
    return rows


def parse_bench_output(p: dict, script: str, text: str) -> list[dict]:
    """Result rows from the printed output of ``bench/<script>.py`` (see :func:`_job_speed`)."""
    import re
    num = r"([0-9]+(?:\.[0-9]+)?)"
    rows = []
    for line in text.splitlines():
        table = re.match(rf"^(\S.*?)\s+{num}\s+{num}\s+{num}\s*$", line)
        if table:
            name = f"{script}: {table.group(1).strip()}"
            if script == "attack":
                rows.append(_row(p, "speed", "cpu_seconds", float(table.group(2)), certificate=name))
                rows.append(_row(p, "speed", "ratio_to_gradient_cpu", float(table.group(4)), certificate=name))
            else:
                rows.append(_row(p, "speed", "seconds", float(table.group(2)), certificate=name))
                rows.append(_row(p, "speed", "ratio_to_bare_loop", float(table.group(3)), certificate=name))
                rows.append(_row(p, "speed", "ratio_to_captum", float(table.group(4)), certificate=name))
            continue
        cert = re.search(rf"{num} s without per-cell radii, {num} s with per-cell radii", line)
        if cert:
            rows.append(_row(p, "speed", "certify_seconds", float(cert.group(1)),
                             certificate=f"{script}: certify one map, without per-cell radii"))
            rows.append(_row(p, "speed", "certify_seconds", float(cert.group(2)),
                             certificate=f"{script}: certify one map, with per-cell radii"))
    return rows


def _job_speed(p, device, image_array=None):
    """Run the benchmarks in ``bench/`` (when present) and keep the numbers they print.

    ``bench/smoothing.py`` prints a table ``name seconds ×bare ×captum`` and the certificate
    time; ``bench/attack.py`` a table ``name CPU-s wall-s ÷grad``. Those numbers become rows
    and each script's output (tail) is stored with them.
    """
    import subprocess
    rows = []
    for script in ("smoothing", "attack"):
        path = ROOT / "bench" / f"{script}.py"
        if not path.exists():
            continue
        t0 = time.perf_counter()
        proc = subprocess.run([sys.executable, str(path)], capture_output=True, text=True, cwd=str(ROOT),
                              env=dict(os.environ, PYTHONPATH=str(ROOT)), timeout=3600)
        seconds = time.perf_counter() - t0
        if proc.returncode != 0:
            rows.append(_row(p, "speed", "bench_failed", 1.0, certificate=script,
                             note=(proc.stderr or proc.stdout).strip()[-600:]))
            continue
        rows += parse_bench_output(p, script, proc.stdout)
        rows.append(_row(p, "speed", "bench_seconds", seconds, certificate=script,
                         note=proc.stdout.strip()[-2500:]))
    return rows


_KINDS = {"floor": _job_floor, "attack": _job_attack, "accuracy": _job_accuracy,
          "certify": _job_certify, "speed": _job_speed}


def run_job(params: dict, device: str | None = None, image_array=None, threads: int | None = None) -> dict:
    """Run one job: a plain function of its parameters returning ``{"rows": [...], ...}``.

    Args:
        params: a job from :func:`build_jobs`.
        device: torch device for the model (default: CUDA when available, else CPU).
        image_array: optional ``(3, S, S)`` array of the image (used by Ray tasks on machines
            without the bundled files); by default loaded by name.
        threads: torch CPU threads for this job (restored afterwards); ``None`` leaves them.
    """
    kind = params.get("kind")
    if kind not in _KINDS:
        raise EvaluationError(f"unknown job kind {kind!r}")
    t0 = time.perf_counter()
    with _torch_threads(threads):
        rows = _KINDS[kind](params, _resolve_device(device), image_array)
    return {"key": job_key(params), "params": params, "rows": rows,
            "elapsed": time.perf_counter() - t0, "host": socket.gethostname(),
            "finished": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")}


# ------------------------------------------------------------------------ grid runner

@contextlib.contextmanager
def _torch_threads(n):
    """Temporarily set torch's intra-op threads (tiny models run fastest on one thread, and
    oversubscribed threads on a shared machine slow everything down)."""
    old = torch.get_num_threads()
    if n is not None and int(n) != old:
        torch.set_num_threads(int(n))
    try:
        yield
    finally:
        if torch.get_num_threads() != old:
            torch.set_num_threads(old)


def default_threads(model: str) -> int | None:
    """Threads per job: 1 for the tiny model (its tensors are too small to split), else torch's
    default."""
    return 1 if model == "tiny" else None


def _job_path(out: Path, key: str) -> Path:
    return out / "jobs" / f"{key}.json"


def _save_job(out: Path, result: dict) -> None:
    path = _job_path(out, result["key"])
    tmp = path.with_suffix(f".tmp{os.getpid()}")
    tmp.write_text(json.dumps(result, indent=1, default=_json_default))
    os.replace(tmp, path)  # atomic: an interrupted write never leaves a half file behind


def _json_default(o):
    if isinstance(o, (np.floating, np.integer)):
        return o.item()
    if isinstance(o, np.bool_):
        return bool(o)
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")


def _load_job(out: Path, key: str) -> dict | None:
    path = _job_path(out, key)
    if not path.exists():
        return None
    try:
        data = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return None  # a damaged file is recomputed
    return data if data.get("key") == key else None


def _describe(p: dict) -> str:
    bits = [p.get("kind"), p.get("image"), p.get("method"), f"cell={p.get('cell')}" if "cell" in p else None,
            f"T={p.get('T')}" if "T" in p else None, p.get("norm"),
            f"{p['epsilon']:.4g}" if "epsilon" in p else None]
    return " ".join(str(b) for b in bits if b is not None)


def _ray_module():
    try:
        import ray
    except ImportError:
        raise EvaluationError("Ray is not installed: pip install -r requirements-cluster.txt") from None
    return ray


def _run_ray(pending, out, ray_address, device, threads, progress, executed_cb):
    ray = _ray_module()
    started_here = False
    if not ray.is_initialized():
        kwargs = {"include_dashboard": False, "log_to_driver": False}
        if ray_address:
            # A cluster gets the code and the small assets (tiny model weights) shipped with the
            # tasks; the images travel as arrays. Its nodes need requirements.txt installed.
            kwargs["runtime_env"] = {"working_dir": str(ROOT),
                                     "excludes": [".venv", ".git", "docs", "tests", "pages", "ui", "bench",
                                                  "**/__pycache__", "*.png", "*.jpg"]}
            try:
                ray.init(address=ray_address, **kwargs)
            except ConnectionError as exc:
                raise EvaluationError(
                    f"could not connect to the Ray cluster at {ray_address} ({exc}); check the address "
                    "(`ray status` on the head node) and, if the cluster uses token authentication, set "
                    "RAY_AUTH_MODE=token with its token available (~/.ray/auth_token or RAY_AUTH_TOKEN)") from None
        else:
            kwargs["runtime_env"] = {"env_vars": {"PYTHONPATH": str(ROOT)}}
            ray.init(address="local", **kwargs)  # always a fresh local instance, never a stale one
        started_here = True
    try:
        gpus = 1 if torch.cuda.is_available() else 0
        remote = ray.remote(num_cpus=1, num_gpus=gpus, max_retries=1)(run_job)
        images = {}
        futures = {}
        for p in pending:
            arr = None
            if "image" in p:
                ik = (p["model"], p["image"])
                if ik not in images:
                    model = get_model(p["model"], "cpu")
                    images[ik] = ray.put(get_image(model, p["image"]).numpy())
                arr = images[ik]
            futures[remote.remote(p, None if device in (None, "auto") else device, arr, threads or 1)] = p
        remaining = list(futures)
        while remaining:
            done, remaining = ray.wait(remaining, num_returns=1)
            result = ray.get(done[0])
            _save_job(out, result)
            executed_cb(result)
            if progress is not None:
                progress.set_postfix_str(_describe(futures[done[0]])[:60])
                progress.update(1)
    finally:
        if started_here:
            ray.shutdown()


def run_grid(jobs: list[dict], out, resume: bool = True, ray: bool = False, ray_address: str | None = None,
             device: str | None = None, show_progress: bool = True, threads: int | None = None) -> dict:
    """Run every job not already stored under ``out/jobs``; return execution counts.

    Args:
        jobs: from :func:`build_jobs`.
        out: output directory (created).
        resume: reuse stored results (default); ``False`` recomputes everything.
        ray / ray_address: run as Ray tasks (local ``ray.init`` or the given cluster).
        device: torch device for in-process jobs.
        threads: torch threads per job (Ray tasks: 1 unless given; one CPU per task).
    Returns:
        ``{"executed": n, "cached": m, "results": [job result dicts in the order of jobs]}``.
    """
    out = Path(out)
    (out / "jobs").mkdir(parents=True, exist_ok=True)
    results: dict[str, dict] = {}
    pending = []
    for p in jobs:
        key = job_key(p)
        stored = _load_job(out, key) if resume else None
        if stored is not None:
            results[key] = stored
        elif key not in {job_key(q) for q in pending}:
            pending.append(p)
    cached = len(results)
    executed = []

    def record(result):
        results[result["key"]] = result
        executed.append(result["key"])

    bar = None
    if show_progress and pending:
        from tqdm.auto import tqdm
        bar = tqdm(total=len(pending), desc="evaluate", unit="job", dynamic_ncols=True)
    try:
        if pending and (ray or ray_address):
            _run_ray(pending, out, ray_address, device, threads, bar, record)
        else:
            for p in pending:
                if bar is not None:
                    bar.set_postfix_str(_describe(p)[:60])
                result = run_job(p, device, threads=threads)
                _save_job(out, result)
                record(result)
                if bar is not None:
                    bar.update(1)
    finally:
        if bar is not None:
            bar.close()
    return {"executed": len(executed), "cached": cached,
            "results": [results[job_key(p)] for p in jobs if job_key(p) in results]}


# --------------------------------------------------------------------- the whole study

def machine_info() -> dict:
    """CPU model, cores, load, library versions and the date (for the report)."""
    cpu = platform.processor() or ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        load = os.getloadavg()
    except OSError:
        load = None
    return {"cpu": cpu, "cores": os.cpu_count(), "torch_threads": torch.get_num_threads(),
            "torch": torch.__version__, "python": platform.python_version(), "numpy": np.__version__,
            "platform": platform.platform(), "cuda": torch.cuda.is_available(),
            "loadavg": list(load) if load else None,
            "date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")}


@dataclass
class EvaluationResult:
    """What :func:`run_evaluation` produced: counts, tables and the files written."""

    executed: int
    cached: int
    rows: "object"        # pandas.DataFrame of every result row
    summary: "object"     # pandas.DataFrame (see load_summary)
    files: list = field(default_factory=list)
    seconds: float = 0.0


def rows_frame(results: list[dict]):
    """All result rows of the given job results as one pandas DataFrame."""
    import pandas as pd
    rows = [r for res in results for r in res["rows"]]
    return pd.DataFrame(rows)


def run_evaluation(cfg: EvalConfig, out="docs/results", report: str | Path | None = None, resume: bool = True,
                   ray: bool = False, ray_address: str | None = None, device: str | None = None,
                   show_progress: bool = True, notes: str | None = None,
                   threads: int | None = None) -> EvaluationResult:
    """Run (or resume) the whole study and write tables, plots and the markdown report.

    Args:
        cfg: the settings (see :func:`config_for`).
        out: directory for ``jobs/``, CSV/JSON tables and PNG plots.
        report: markdown path (default: ``<out>.md`` next to the directory, e.g.
            ``docs/results.md`` for ``docs/results``).
        resume, ray, ray_address, device, threads: see :func:`run_grid` (threads default:
            :func:`default_threads`).
    """
    from . import report as _report
    cfg.validate()
    out = Path(out)
    report = Path(report) if report is not None else out.parent / f"{out.name}.md"
    t0 = time.perf_counter()
    start_info = machine_info()
    jobs = build_jobs(cfg)
    threads = default_threads(cfg.model) if threads is None else threads
    grid = run_grid(jobs, out, resume=resume, ray=ray, ray_address=ray_address, device=device,
                    show_progress=show_progress, threads=threads)
    seconds = time.perf_counter() - t0
    info = machine_info()
    run = {"config": cfg.to_json(), "jobs": len(jobs), "executed": grid["executed"], "cached": grid["cached"],
           "wall_seconds": round(seconds, 1), "ray": bool(ray or ray_address), "device": _resolve_device(device), "threads": threads,
           "machine": info, "loadavg_start": start_info["loadavg"], "argv": sys.argv[1:], "notes": notes}
    with open(out / "runs.jsonl", "a") as fh:
        fh.write(json.dumps(run) + "\n")
    rows = rows_frame(grid["results"])
    files = _report.write_outputs(rows, out, report, cfg, run)
    return EvaluationResult(grid["executed"], grid["cached"], rows, _report.summarize(rows), files, seconds)


def load_rows(path=None):
    """Every stored result row under ``path/jobs`` (or ``path/rows.csv``) as a DataFrame
    (default path: the repository's ``docs/results``); ``None`` when there are none."""
    import pandas as pd
    path = ROOT / "docs" / "results" if path is None else Path(path)
    files = sorted((path / "jobs").glob("*.json")) if (path / "jobs").is_dir() else []
    if files:
        rows = []
        for f in files:
            try:
                rows.extend(json.loads(f.read_text())["rows"])
            except (OSError, json.JSONDecodeError, KeyError):
                continue
        return pd.DataFrame(rows)
    if (path / "rows.csv").exists():
        return pd.read_csv(path / "rows.csv")
    return None


def load_summary(path=None):
    """The stored summary table for the app's Compare page, or ``None`` when there is none.

    ``path``: the results directory (or its ``summary.csv``); default the repository's
    ``docs/results``.

    Columns: experiment, method, cell, T, norm, budget, attack, certificate, beta, metric,
    mean, ci_low, ci_high, n (number of images; the CI is a t-interval over per-image means
    of the seeds, see docs/results.md).
    """
    import pandas as pd
    path = ROOT / "docs" / "results" if path is None else Path(path)
    csv = path / "summary.csv" if path.is_dir() else path
    if not csv.exists():
        return None
    try:
        df = pd.read_csv(csv)
    except (OSError, ValueError):
        return None
    return df if len(df) else None


# -------------------------------------------------------------------------------- CLI

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
        if len(images) == 1 and str(images[0]).isdigit():
            count = int(images[0])
            pool = list(cfg.images) if count <= len(cfg.images) else (
                [f"shape-{i}" for i in range(count)] if model == "tiny" else list(ALL_SAMPLES))
            if count < 1 or count > len(pool):
                raise EvaluationError(f"--images: between 1 and {len(pool)} images are available, got {count}")
            changes["images"] = tuple(pool[:count])
        else:
            known = set(sample_names())
            chosen = []
            for name in images:
                name = str(name)
                if Path(name).is_dir() or _is_image_file(name):
                    chosen += _user_images(name)
                elif name not in known and not (model == "tiny" and re.fullmatch(r"shape-\d+", name)):
                    raise EvaluationError(f"--images: {name!r} is neither a bundled sample (have: "
                                          f"{', '.join(sorted(known))}) nor an image file or folder")
                else:
                    chosen.append(name)
            changes["images"] = tuple(dict.fromkeys(chosen))
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


def add_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    parser.add_argument("--quick", action="store_true",
                        help="small preset (3 images, 1 seed, short attacks): < 15 min on 2 CPU cores")
    parser.add_argument("--preset", choices=PRESETS, default=None, help="settings preset (default: full; --quick = quick)")
    parser.add_argument("--model", default="efficientnet-lite0",
                        help="model name (default efficientnet-lite0; 'tiny' = the tiny CNN on synthetic shapes)")
    parser.add_argument("--out", default="docs/results", help="output directory (default docs/results)")
    parser.add_argument("--report", default=None, help="markdown report path (default <out>.md)")
    parser.add_argument("--images", nargs="+", default=None,
                        help="bundled sample names, image files or folders of images, or one number = "
                             "the first N images of the preset")
    parser.add_argument("--seeds", type=int, default=None, help="repetitions per setting")
    parser.add_argument("--T", dest="T_values", type=int, nargs="+", default=None,
                        help="noise-sample counts for the robustness- and accuracy-versus-T experiments "
                             "(default: the preset's)")
    parser.add_argument("--methods", nargs="+", choices=METHOD_NAMES, default=None, help="methods to compare")
    parser.add_argument("--experiments", nargs="+", choices=EXPERIMENTS, default=None,
                        help="experiments to run (default: all three; speed via --bench)")
    parser.add_argument("--seed", type=int, default=0, help="base random seed (default 0)")
    parser.add_argument("--device", default=None, help="torch device (default: cuda if available, else cpu)")
    parser.add_argument("--ray", action="store_true", help="run jobs as tasks on a local Ray instance")
    parser.add_argument("--ray-address", default=None, help="run jobs on the Ray cluster at ADDR")
    parser.add_argument("--no-resume", action="store_true", help="recompute jobs already stored in --out")
    parser.add_argument("--bench", dest="bench", action="store_true", default=None,
                        help="also run bench/smoothing.py and bench/attack.py (default: full preset only)")
    parser.add_argument("--no-bench", dest="bench", action="store_false")
    parser.add_argument("--notes", default=None, help="free text recorded with this run (e.g. machine load)")
    parser.add_argument("--threads", type=int, default=None,
                        help="torch threads per job (default: 1 for the tiny model, else torch's default)")
    parser.add_argument("--dry-run", action="store_true",
                        help="only print the number of jobs (and how many are stored) and the estimated cost")
    parser.add_argument("--quiet", "-q", action="store_true", help="no progress bars")
    parser.add_argument("--debug", action="store_true", help="show the full traceback on errors")
    return parser


def run_from_args(args) -> int:
    """Entry point of ``python -m rrs evaluate`` (returns the exit code)."""
    preset = args.preset or ("quick" if args.quick else "full")
    cfg = config_for(preset, args.model, args.images, args.seeds, args.seed, args.methods, args.bench,
                     args.experiments, getattr(args, "T_values", None))
    if args.dry_run:
        jobs = build_jobs(cfg)
        stored = [j for j in jobs if _load_job(Path(args.out), job_key(j)) is not None]
        todo = [j for j in jobs if j not in stored]
        print(f"evaluate (dry run): preset {cfg.preset}, model {cfg.model}, {len(cfg.images)} images, "
              f"{len(jobs)} jobs ({len(stored)} stored in {args.out}); to compute ≈ {estimate_cost(todo):,.0f} "
              "gradient evaluations")
        return 0
    res = run_evaluation(cfg, args.out, args.report, resume=not args.no_resume, ray=args.ray,
                         ray_address=args.ray_address, device=args.device, notes=args.notes,
                         show_progress=not args.quiet, threads=args.threads)
    print(f"evaluate: {res.executed} jobs run, {res.cached} reused, {res.seconds:.0f} s; wrote "
          f"{len(res.files)} files under {args.out}")
    return 0


def register_cli(subparsers):
    """Add the ``evaluate`` subcommand to an ``argparse`` subparsers object."""
    parser = subparsers.add_parser(
        "evaluate", help="run the evaluation study (robustness, accuracy, certificates, speed)",
        description="Regenerate docs/results.md and docs/results/: top-k attack robustness with "
                    "no-attack floors, accuracy versus T, certified radii, speed. Resumes from "
                    "stored per-job results.")
    add_arguments(parser)
    parser.set_defaults(func=run_from_args, handler=run_from_args)
    return parser


def main(argv=None) -> int:
    parser = add_arguments(argparse.ArgumentParser(prog="python -m rrs.evaluate"))
    args = parser.parse_args(argv)
    try:
        return run_from_args(args)
    except ValueError as exc:  # EvaluationError and the library's ValueErrors: one clear line
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
