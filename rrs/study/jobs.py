"""The study's jobs: the grid, stable keys and seeds, and one function per job kind.

A job is a JSON-serialisable dict. Its ``map`` entry is :meth:`rrs.settings.MapSettings.to_dict`
(attack jobs also carry ``attack`` = :meth:`rrs.settings.AttackSettings.to_dict`, certificate
jobs ``certify`` = :meth:`rrs.settings.CertifySettings.to_dict`), so a job record reads the same
settings as a command-line or app export. :func:`run_job` turns a job into result rows (plain
numbers). Randomness: the noise seed ``s`` of a map (``MapSettings.seed``) is a SHA-256 hash of
the base seed and the job's parameters, so the same parameters give the same numbers in-process
and on Ray; the floor compares seeds ``s`` and ``s + 1`` (:func:`rrs.floor.floor_seeds`) and an
attack measures its attacked map with seed ``s + 1`` too (common random numbers), so
``floor − attacked`` isolates the attack.
"""
from __future__ import annotations

import contextlib
import datetime as _dt
import hashlib
import json
import socket
import time

import numpy as np
import torch

from ..metrics import tie_aware_intersection, topk_intersection
from ..settings import L2, AttackSettings, CertifySettings, MapSettings
from .config import METHOD_NAMES, SMOOTHED, EvalConfig, EvaluationError
from .bench import speed_rows
from .inputs import get_image, get_model, resolve_device
from .store import row
from .version import code_version

__all__ = ["SCHEMAS", "job_key", "derive_seed", "map_settings", "build_jobs", "estimate_cost", "run_job",
           "describe", "torch_threads"]

#: Per job kind: bump when a job's meaning changes, so stored results of the old meaning are not
#: reused. Floor/attack/accuracy 3 and certify 2: noise seeds ``s``/``s + 1`` from MapSettings.seed
#: (rrs.floor) and settings dicts in the job; speed 2: rows from ``bench.*.measure``.
SCHEMAS = {"floor": 3, "attack": 3, "accuracy": 3, "certify": 2, "speed": 2}


def job_key(params: dict) -> str:
    """Stable 16-hex-digit key of a job's parameters (same parameters → same file)."""
    blob = json.dumps(params, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def derive_seed(*parts) -> int:
    """A 63-bit seed from any JSON-serialisable parts (stable across processes and machines)."""
    blob = json.dumps(parts, sort_keys=True, separators=(",", ":"), default=str)
    return int.from_bytes(hashlib.sha256(blob.encode()).digest()[:8], "big") & (2 ** 63 - 1)


# ------------------------------------------------------------------------------ grid

def map_settings(cfg: EvalConfig, method: str, cell: int, T: int, seed: int = 0) -> MapSettings:
    """The map settings of a study method (``vanilla``, ``smoothgrad``, ``sparsified``,
    ``rrs-topk`` = RRS with top-k′ uniform scoring, k′ = ⌈n/10⌉, ``rrs-exp`` = RRS with
    exponential scoring of decay length k cells). Vanilla always has T = 1."""
    common = dict(base="vanilla", noise="gaussian", sigma=cfg.sigma, cell=int(cell), k=cfg.k_fraction,
                  seed=int(seed))
    if method == "vanilla":
        return MapSettings(method="vanilla", samples=1, **common)
    if method == "rrs-topk":
        return MapSettings(method="rrs", samples=int(T), scoring="topk", scoring_param=0.1, **common)
    if method == "rrs-exp":
        return MapSettings(method="rrs", samples=int(T), scoring="exponential", scoring_param=cfg.k_fraction,
                           **common)
    if method in ("smoothgrad", "sparsified"):
        return MapSettings(method=method, samples=int(T), tau=0.1, phi=0.01, **common)
    raise EvaluationError(f"unknown study method {method!r}")


def _seeded(cfg: EvalConfig, image: str, method: str, settings: MapSettings, *salt) -> MapSettings:
    """``settings`` with its noise seed derived from the base seed and everything else."""
    seed = derive_seed(cfg.base_seed, "map", cfg.model, image, method, settings.replace(seed=0).to_dict(), *salt)
    return settings.replace(seed=seed)


def _base(cfg: EvalConfig, kind: str, image: str, method: str) -> dict:
    return {"kind": kind, "schema": SCHEMAS[kind], "model": cfg.model, "image": image, "method": method,
            "base_seed": cfg.base_seed}


def _robustness(cfg, image, method, cell, T, budgets, strength):
    for s in range(cfg.seeds):
        ms = _seeded(cfg, image, method, map_settings(cfg, method, cell, T), s)
        floor = dict(_base(cfg, "floor", image, method), seed=s, map=ms.to_dict())
        yield floor
        for norm, eps in budgets:
            att = AttackSettings(objective="topk", norm=norm, epsilon=float(eps), steps=strength.steps,
                                 eot=strength.eot, random_start=strength.random_start)
            att = att.replace(seed=derive_seed(cfg.base_seed, "attack", cfg.model, image, method, ms.to_dict(),
                                               att.to_dict()))
            yield dict(_base(cfg, "attack", image, method), seed=s, map=ms.to_dict(), strength=strength.name,
                       attack=att.to_dict())


def _robustness_jobs(cfg, image, methods):
    for cell, T in cfg.robustness_T:
        for method in methods:
            yield from _robustness(cfg, image, method, cell, T, cfg.budgets_for(cell), cfg.attack)
            if cfg.strong_attack is not None and cell in cfg.strong_cells:
                yield from _robustness(cfg, image, method, cell, T, cfg.strong_budgets, cfg.strong_attack)
    for T in cfg.T_values:
        for method in methods:
            yield from _robustness(cfg, image, method, cfg.T_cell, T, [tuple(cfg.T_budget)], cfg.attack)


def _accuracy_jobs(cfg, image, methods):
    # One job per (image, method, cell): the expensive reference is computed once and compared
    # with maps of every T and seed. ``map``: one half of the reference (seeds s and s + 1).
    for cell in cfg.accuracy_cells:
        for method in methods:
            if method in SMOOTHED:
                half = map_settings(cfg, method, cell, cfg.accuracy_T_ref // 2)
                yield dict(_base(cfg, "accuracy", image, method), map=_seeded(cfg, image, method, half, "ref").to_dict(),
                           T_ref=int(cfg.accuracy_T_ref), T_values=[int(t) for t in cfg.accuracy_T_values],
                           seeds=cfg.seeds)


def _certify_jobs(cfg, image, methods):
    for cell in cfg.cert_cells:
        for method in methods:
            if method in cfg.cert_methods:
                cs = CertifySettings(norm=L2, eta=cfg.cert_eta, betas=tuple(cfg.cert_betas),
                                     cell_radii=method.startswith("rrs"))
                for s in range(cfg.seeds if cfg.cert_seeds is None else cfg.cert_seeds):
                    ms = _seeded(cfg, image, method, map_settings(cfg, method, cell, cfg.cert_T), s)
                    yield dict(_base(cfg, "certify", image, method), seed=s, map=ms.to_dict(), certify=cs.to_dict())


def build_jobs(cfg: EvalConfig) -> list[dict]:
    """Every job of the study, deduplicated, in a cache-friendly order (image-major)."""
    cfg.validate()
    methods = [m for m in METHOD_NAMES if m in cfg.methods]
    builders = {"robustness": _robustness_jobs, "accuracy": _accuracy_jobs, "certificates": _certify_jobs}
    jobs: dict[str, dict] = {}
    for image in cfg.images:
        for experiment, build in builders.items():
            if experiment in cfg.experiments:
                for job in build(cfg, image, methods):
                    jobs.setdefault(job_key(job), job)
    out = list(jobs.values())
    if cfg.bench:
        out.append({"kind": "speed", "schema": SCHEMAS["speed"], "model": cfg.model})
    return out


def estimate_cost(jobs: list[dict]) -> float:
    """Rough cost of ``jobs`` in plain-gradient evaluations (for planning a run).

    Attack steps are counted as in ``bench/attack.py`` on EfficientNet-Lite0: ≈ 4 gradients per
    raw-gradient step and ≈ 3 per EOT sample (+ 1.5 for the label check) per smoothed step;
    every map costs T gradients (an attack measures three: clean, floor and attacked).
    """
    total = 0.0
    for j in jobs:
        kind, T = j["kind"], j.get("map", {}).get("samples", 1)
        if kind == "floor":
            total += 2 * T
        elif kind == "attack":
            a = j["attack"]
            step = 4.0 if j["method"] == "vanilla" else 3.0 * a["eot"] + 1.5
            total += a["steps"] * step + 4 * T
        elif kind == "accuracy":
            total += j["T_ref"] + j["seeds"] * sum(j["T_values"])
        elif kind == "certify":
            total += T
    return total


def describe(job: dict) -> str:
    """A short label of a job (progress bars)."""
    m, a = job.get("map", {}), job.get("attack", {})
    bits = [job["kind"], job.get("image"), job.get("method"), f"cell={m['cell']}" if m else None,
            f"T={m['samples']}" if m else None, a.get("norm"), f"{a['epsilon']:.4g}" if a else None]
    return " ".join(str(b) for b in bits if b is not None)


# ------------------------------------------------------------------------------ rows

def _prepare(job: dict, device: str, image_array=None):
    """Model, image ``(3, S, S)`` on the model's device, predicted class ``(1,)`` and settings."""
    from ..smoothing import model_device, predict_target
    model = get_model(job["model"], device)
    x = (torch.from_numpy(np.asarray(image_array, dtype=np.float32).copy()) if image_array is not None
         else get_image(model, job["image"])).to(model_device(model))
    return model, x, predict_target(model, x[None]), MapSettings.from_dict(job["map"])


# ------------------------------------------------------------------------ job kinds

def _job_floor(job, device, image_array=None):
    from ..floor import no_attack_floor
    model, x, target, settings = _prepare(job, device, image_array)
    fl = no_attack_floor(model, x, settings, target=target)
    extra = {"k": fl.k, "n_cells": fl.map_a.numel()}
    return [row(job, "robustness", "floor_intersection", fl.topk_intersection, **extra),
            row(job, "robustness", "floor_intersection_index", topk_intersection(fl.map_a, fl.map_b, fl.k), **extra),
            row(job, "robustness", "floor_spearman", fl.spearman, **extra)]


def _job_attack(job, device, image_array=None):
    from ..attacks import attack
    model, x, target, settings = _prepare(job, device, image_array)
    res = attack(model, x, settings, AttackSettings.from_dict(job["attack"]), target=target)
    clean, attacked = res.clean_map.detach().cpu(), res.attacked_map.detach().cpu()
    k = res.k
    extra = {"k": k, "n_cells": clean.numel()}
    # intersection: clean map (seed s) vs attacked map (seed s + 1, the floor's second seed);
    # same noise: the attacked map with the attacker's own seed s.
    return [row(job, "robustness", "intersection", res.topk_intersection, **extra),
            row(job, "robustness", "intersection_index", topk_intersection(clean, attacked, k), **extra),
            row(job, "robustness", "spearman", res.spearman, **extra),
            row(job, "robustness", "intersection_same_noise",
                tie_aware_intersection(clean, res.attacked_map_same_noise.detach().cpu(), k), **extra),
            row(job, "robustness", "label_preserved", float(bool(res.label_preserved)), **extra),
            row(job, "robustness", "perturbation_l2", res.l2, **extra),
            row(job, "robustness", "perturbation_linf", res.linf, **extra),
            row(job, "robustness", "attack_seconds", res.elapsed, **extra)]


def _job_accuracy(job, device, image_array=None):
    from ..floor import no_attack_floor
    from ..smoothing import interpretation_map
    model, x, target, half = _prepare(job, device, image_array)
    # The reference: two independent halves (seeds s, s + 1: a floor pair) averaged = a T_ref map.
    fl = no_attack_floor(model, x, half, target=target)
    ref, k = (fl.map_a + fl.map_b) / 2, fl.k
    extra = {"k": k, "n_cells": ref.numel(), "T_ref": job["T_ref"]}
    rows = [row(job, "accuracy", "reference_half_agreement", fl.topk_intersection, **dict(extra, T=job["T_ref"]))]
    for s in range(job["seeds"]):
        for T in job["T_values"]:
            seed = derive_seed(job["base_seed"], "accuracy", job["model"], job["image"], job["method"],
                               job["map"], int(T), s)
            m = interpretation_map(model, x, half.replace(samples=int(T), seed=seed), target=target)
            rows.append(row(job, "accuracy", "intersection_vs_reference", tie_aware_intersection(m, ref, k),
                            **dict(extra, T=int(T), seed=s)))
    return rows


def _job_certify(job, device, image_array=None):
    from ..certify import certify
    from ..smoothing import smooth
    model, x, target, settings = _prepare(job, device, image_array)
    cs = CertifySettings.from_dict(job["certify"])
    if cs.scheme != "bonferroni":
        # One batch of T samples per job; the selection scheme would need its own selection batch.
        raise EvaluationError(f"the study certifies with the Bonferroni scheme only, got scheme={cs.scheme!r} "
                              "(for the selection scheme use `python -m rrs certify --scheme selection`)")
    res = smooth(model, x[None], settings, target=target)
    k = settings.k_for(res.map[0].numel())
    t0 = time.perf_counter()
    rep = certify(res.stats(0), k, res.noise, cs, rrs_map=settings.method == "rrs")
    cert_seconds = time.perf_counter() - t0
    extra = {"k": k, "n_cells": res.map[0].numel(), "norm": cs.norm.key}
    rows = []
    for name, certs in (("rdp-plugin", rep.rdp_plugin), ("rdp-finite", rep.rdp_finite),
                        ("cdf-plugin", rep.cdf_plugin), ("cdf-finite", rep.cdf_finite),
                        ("equal-level", rep.equal_level)):
        for c in certs:
            rows.append(row(job, "certificates", "radius", c.radius, certificate=name, beta=float(c.beta),
                            is_certificate=bool(c.is_certificate), **extra))
    if rep.cells_plugin is not None:
        sel = rep.cells_plugin.radii[rep.cells_plugin.selected]
        rows.append(row(job, "certificates", "cell_radius_median", float(np.median(sel)),
                        certificate="rdp-plugin", **extra))
    rows.append(row(job, "certificates", "certify_seconds", cert_seconds, **extra))
    rows.append(row(job, "certificates", "smooth_seconds", res.elapsed, **extra))
    return rows


def _job_speed(job, device, image_array=None):
    return speed_rows(job)


_KINDS = {"floor": _job_floor, "attack": _job_attack, "accuracy": _job_accuracy,
          "certify": _job_certify, "speed": _job_speed}


@contextlib.contextmanager
def torch_threads(n: int | None):
    """Temporarily set torch's intra-op threads (``None`` leaves them): tiny models run fastest
    on one thread, and oversubscribed threads on a shared machine slow everything down."""
    old = torch.get_num_threads()
    if n is not None and int(n) != old:
        torch.set_num_threads(int(n))
    try:
        yield
    finally:
        if torch.get_num_threads() != old:
            torch.set_num_threads(old)


def run_job(params: dict, device: str | None = None, image_array=None, threads: int | None = None) -> dict:
    """Run one job: a plain function of its parameters returning ``{"key", "params", "rows", "code", …}``
    (``code``: :func:`rrs.study.version.code_version` of the process that ran it).

    Args:
        params: a job from :func:`build_jobs`.
        device: torch device for the model (default: CUDA when available, else CPU).
        image_array: optional ``(3, S, S)`` array of the image (Ray tasks on machines without
            the bundled files); by default loaded by name.
        threads: torch CPU threads for this job (restored afterwards); ``None`` leaves them.
    """
    kind = params.get("kind")
    if kind not in _KINDS:
        raise EvaluationError(f"unknown job kind {kind!r}")
    t0 = time.perf_counter()
    with torch_threads(threads):
        rows = _KINDS[kind](params, resolve_device(device), image_array)
    return {"key": job_key(params), "params": params, "rows": rows, "code": code_version(),
            "elapsed": time.perf_counter() - t0, "host": socket.gethostname(),
            "finished": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")}
