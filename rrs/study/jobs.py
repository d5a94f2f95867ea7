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
import socket
import time

import numpy as np
import torch

from ..metrics import tie_aware_intersection, topk_intersection
from ..settings import L2, AttackSettings, CertifySettings, MapSettings
from .config import METHOD_NAMES, SMOOTHED, EvalConfig, EvaluationError
from .bench import speed_rows
from .inputs import resolve_device
from .jobbase import SCHEMAS, base_job, derive_seed, job_key, map_settings, prepare, seeded
from .store import row
from .strength import KINDS as _STRENGTH_KINDS
from .strength import strength_jobs
from .worth import KINDS as _WORTH_KINDS
from .worth import worth_jobs
from .version import code_version

__all__ = ["SCHEMAS", "job_key", "derive_seed", "map_settings", "build_jobs", "estimate_cost", "job_cost", "run_job",
           "describe", "torch_threads"]


def _robustness(cfg, image, method, cell, T, budgets, strength):
    for s in range(cfg.seeds):
        ms = seeded(cfg, image, method, map_settings(cfg, method, cell, T), s)
        floor = dict(base_job(cfg, "floor", image, method), seed=s, map=ms.to_dict())
        yield floor
        for norm, eps in budgets:
            att = AttackSettings(objective="topk", norm=norm, epsilon=float(eps), steps=strength.steps,
                                 eot=strength.eot, random_start=strength.random_start,
                                 restarts=strength.restarts)
            att = att.replace(seed=derive_seed(cfg.base_seed, "attack", cfg.model, image, method, ms.to_dict(),
                                               att.to_dict()))
            yield dict(base_job(cfg, "attack", image, method), seed=s, map=ms.to_dict(), strength=strength.name,
                       attack=att.to_dict())


def _robustness_jobs(cfg, image, methods):
    strong = cfg.strong_attack is not None and image in cfg.strong_image_names
    for cell, T in cfg.robustness_T:
        for method in methods:
            yield from _robustness(cfg, image, method, cell, T, cfg.budgets_for(cell), cfg.attack)
            if strong and cell in cfg.strong_cells and cfg.strong_for(method):
                yield from _robustness(cfg, image, method, cell, T, cfg.strong_budgets, cfg.strong_attack)
    for T in cfg.T_values:
        for method in methods:
            yield from _robustness(cfg, image, method, cfg.T_cell, T, [tuple(cfg.T_budget)], cfg.attack)
            if strong and T in cfg.strong_T_values and cfg.strong_for(method):
                yield from _robustness(cfg, image, method, cfg.T_cell, T, [tuple(cfg.T_budget)], cfg.strong_attack)


def _accuracy_jobs(cfg, image, methods):
    # One job per (image, method, cell): the expensive reference is computed once and compared
    # with maps of every T and seed. ``map``: one half of the reference (seeds s and s + 1).
    for cell in cfg.accuracy_cells:
        for method in methods:
            if method in SMOOTHED:
                half = map_settings(cfg, method, cell, cfg.accuracy_T_ref // 2)
                yield dict(base_job(cfg, "accuracy", image, method), map=seeded(cfg, image, method, half, "ref").to_dict(),
                           T_ref=int(cfg.accuracy_T_ref), T_values=[int(t) for t in cfg.accuracy_T_values],
                           seeds=cfg.seeds)


def _certify_jobs(cfg, image, methods):
    for cell in cfg.cert_cells:
        for method in methods:
            if method in cfg.cert_methods:
                cs = CertifySettings(norm=L2, eta=cfg.cert_eta, betas=tuple(cfg.cert_betas),
                                     cell_radii=method.startswith("rrs"))
                for s in range(cfg.seeds if cfg.cert_seeds is None else cfg.cert_seeds):
                    ms = seeded(cfg, image, method, map_settings(cfg, method, cell, cfg.cert_T), s)
                    yield dict(base_job(cfg, "certify", image, method), seed=s, map=ms.to_dict(), certify=cs.to_dict())


def build_jobs(cfg: EvalConfig) -> list[dict]:
    """Every job of the study, deduplicated, in a cache-friendly order (image-major)."""
    cfg.validate()
    methods = [m for m in METHOD_NAMES if m in cfg.methods]
    builders = {"robustness": _robustness_jobs, "accuracy": _accuracy_jobs, "certificates": _certify_jobs,
                "strength": strength_jobs,
                "schemes": lambda c, i, m: worth_jobs(c, i, m, ("schemes",)),
                "profile": lambda c, i, m: worth_jobs(c, i, m, ("profile",))}
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


def _step_cost(method: str, eot: int) -> float:
    """Gradients of one PGD step (bench/attack.py on EfficientNet-Lite0)."""
    return 4.0 if method == "vanilla" else 3.0 * eot + 1.5


def job_cost(j: dict) -> float:
    """Rough cost of one job in plain-gradient evaluations (see :func:`estimate_cost`)."""
    kind, T = j["kind"], j.get("map", {}).get("samples", 1)
    if kind == "floor":
        return 2.0 * T
    if kind == "attack":
        a = j["attack"]
        return a["steps"] * a.get("restarts", 1) * _step_cost(j["method"], a["eot"]) + 4 * T
    if kind == "accuracy":
        return float(j["T_ref"] + j["seeds"] * sum(j["T_values"]))
    if kind in ("certify", "scheme"):
        return float(T)
    if kind == "gradvar":
        return 2.0 * T + 3.0 * j["draws"] * (1 + j["attack_eot"]["eot"])
    if kind == "convergence":
        steps, eot = j["checkpoints"][-1], j["attack"]["eot"]
        return 2.0 * T + steps * _step_cost(j["method"], eot) + 2 * T * (len(j["checkpoints"]) - 1)
    if kind == "profile":
        from ..workflows.robustness import RobustnessSettings, predicted_gradients
        maps = [MapSettings.from_dict(m) for m in j["maps"].values()]
        return float(predicted_gradients(maps, RobustnessSettings.from_dict(j["robustness"])))
    return 0.0


def estimate_cost(jobs: list[dict]) -> float:
    """Rough cost of ``jobs`` in plain-gradient evaluations (for planning a run).

    Attack steps are counted as in ``bench/attack.py`` on EfficientNet-Lite0: ≈ 4 gradients per
    raw-gradient step and ≈ 3 per EOT sample (+ 1.5 for the label check) per smoothed step,
    times the restarts; every map costs T gradients (an attack measures three: clean, floor and
    attacked); a robustness profile costs :func:`rrs.workflows.robustness.predicted_gradients`.
    """
    return float(sum(job_cost(j) for j in jobs))


def describe(job: dict) -> str:
    """A short label of a job (progress bars)."""
    m, a = job.get("map", {}), job.get("attack", {})
    bits = [job["kind"], job.get("image"), job.get("method"), f"cell={m['cell']}" if m else None,
            f"T={m['samples']}" if m else None, a.get("norm"), f"{a['epsilon']:.4g}" if a else None]
    return " ".join(str(b) for b in bits if b is not None)


# ------------------------------------------------------------------------ job kinds

def _job_floor(job, device, image_array=None):
    from ..floor import no_attack_floor
    model, x, target, settings = prepare(job, device, image_array)
    t0 = time.perf_counter()
    fl = no_attack_floor(model, x, settings, target=target)
    seconds = (time.perf_counter() - t0) / 2  # two maps of T samples (seeds s, s + 1)
    extra = {"k": fl.k, "n_cells": fl.map_a.numel()}
    return [row(job, "robustness", "floor_intersection", fl.topk_intersection, **extra),
            row(job, "robustness", "floor_intersection_index", topk_intersection(fl.map_a, fl.map_b, fl.k), **extra),
            row(job, "robustness", "floor_spearman", fl.spearman, **extra),
            row(job, "robustness", "map_seconds", seconds, **extra)]


def _job_attack(job, device, image_array=None):
    from ..attacks import attack
    model, x, target, settings = prepare(job, device, image_array)
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
    model, x, target, half = prepare(job, device, image_array)
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
    model, x, target, settings = prepare(job, device, image_array)
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
          "certify": _job_certify, "speed": _job_speed, **_STRENGTH_KINDS, **_WORTH_KINDS}


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
