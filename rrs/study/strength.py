"""How strong the study's attacks are: the attack gradient's variance (which sizes EOT) and
drop versus PGD steps on one image (which shows whether the attack has converged).

* ``gradvar`` jobs (one per image and smoothed method, on the first ``gradvar_images``): at the
  strong setting (first strong cell, its ``T``, the first strong budget) ``gradvar_draws``
  single-draw attack gradients and as many at the strong attack's EOT
  (:func:`rrs.attacks.variance.attack_gradients`); rows: the noise-to-signal ratio ρ per draw
  and at that EOT, the EOT that :func:`rrs.attacks.variance.eot_for` asks for to reach
  ``gradvar_target`` in one step (``eot_needed``) and along the whole attack, whose
  ``steps × restarts`` steps each add fresh draws (``eot_needed_path``: ρ / (E · steps) ≤ target),
  and the EOT used.
* ``convergence`` jobs (one per method, image ``convergence_image``): the strong attack run in
  segments with a fixed step size ``2.5·ε / strong.steps``, each segment warm-started at the
  previous one's adversarial point, so the attacked overlap is measured after every cumulative
  step count of ``convergence_steps``; rows ``convergence_intersection`` and
  ``convergence_drop`` (floor − attacked) with the step count in the ``steps`` column.
"""
from __future__ import annotations

import math

from ..settings import AttackSettings
from .config import SMOOTHED, EvalConfig
from .jobbase import base_job, derive_seed, map_settings, prepare, seeded
from .store import row

__all__ = ["strength_jobs", "strong_setting", "job_gradvar", "job_convergence", "KINDS"]



def strong_setting(cfg: EvalConfig) -> tuple:
    """``(cell, T, norm, epsilon)`` of the strong attack's first setting (the one measured here)."""
    cell = cfg.strong_cells[0] if cfg.strong_cells else cfg.robustness_T[0][0]
    T = dict(cfg.robustness_T).get(cell, cfg.robustness_T[0][1])
    norm, eps = cfg.strong_budgets[0]
    return int(cell), int(T), norm, float(eps)


def _attack(cfg, image, method, ms, norm, eps, steps, eot, salt, step_size=None, restarts=1):
    att = AttackSettings(objective="topk", norm=norm, epsilon=eps, steps=int(steps), eot=int(eot),
                         restarts=int(restarts), step_size=step_size)
    return att.replace(seed=derive_seed(cfg.base_seed, "attack", cfg.model, image, method, ms.to_dict(),
                                        att.to_dict(), salt))


def strength_jobs(cfg: EvalConfig, image: str, methods) -> list:
    """The ``gradvar`` and ``convergence`` jobs of ``image`` (the ``strength`` experiment)."""
    if cfg.strong_attack is None:
        return []
    cell, T, norm, eps = strong_setting(cfg)
    strong = cfg.strong_attack
    out = []
    if image in cfg.first(cfg.gradvar_images):
        for method in methods:
            if method in SMOOTHED and cfg.strong_for(method):
                ms = seeded(cfg, image, method, map_settings(cfg, method, cell, T), "gradvar")
                one = _attack(cfg, image, method, ms, norm, eps, 1, 1, "gradvar-1")
                many = _attack(cfg, image, method, ms, norm, eps, 1, strong.eot, "gradvar-eot")
                out.append(dict(base_job(cfg, "gradvar", image, method),
                                map=ms.to_dict(), draws=int(cfg.gradvar_draws), target=float(cfg.gradvar_target),
                                steps=int(strong.steps) * int(strong.restarts),
                                attack=one.to_dict(), attack_eot=many.to_dict(), strength=strong.name))
    images = tuple(cfg.images)
    if 0 <= cfg.convergence_image < len(images) and image == images[cfg.convergence_image]:
        for method in (m for m in methods if cfg.strong_for(m)):
            t = 1 if method == "vanilla" else T
            ms = seeded(cfg, image, method, map_settings(cfg, method, cell, t), "convergence")
            att = _attack(cfg, image, method, ms, norm, eps, 1, strong.eot, "convergence",
                          step_size=2.5 * eps / strong.steps)
            out.append(dict(base_job(cfg, "convergence", image, method),
                            map=ms.to_dict(), attack=att.to_dict(), strength=strong.name,
                            checkpoints=[int(s) for s in cfg.convergence_steps]))
    return out


def job_gradvar(job, device, image_array=None):
    from ..attacks.variance import attack_gradients, eot_for, gradient_noise
    model, x, target, settings = prepare(job, device, image_array)
    one, many = AttackSettings.from_dict(job["attack"]), AttackSettings.from_dict(job["attack_eot"])
    a = gradient_noise(attack_gradients(model, x, settings, one, job["draws"], target=target))
    b = gradient_noise(attack_gradients(model, x, settings, many, job["draws"], target=target))
    extra = {"norm": one.norm.key, "budget": one.epsilon, "attack": job["strength"], "draws": job["draws"]}
    # per-draw ratio: measured on single draws, or (when their signal is not detectable) from the
    # EOT draws under the 1/E model
    rho = a["ratio"] if math.isfinite(a["ratio"]) else many.eot * b["ratio"]
    steps = int(job["steps"])
    return [row(job, "strength", "gradient_noise_ratio", a["ratio"], eot=1, **extra),
            row(job, "strength", "gradient_noise_ratio_at_eot", b["ratio"], eot=many.eot, **extra),
            row(job, "strength", "gradient_noise_per_draw", rho, **extra),
            row(job, "strength", "eot_needed", eot_for(rho, job["target"]), **extra),
            row(job, "strength", "eot_needed_path", eot_for(rho / steps, job["target"]), steps=steps, **extra),
            row(job, "strength", "eot_used", many.eot, **extra)]


def job_convergence(job, device, image_array=None):
    from ..attacks import attack
    from ..floor import no_attack_floor
    model, x, target, settings = prepare(job, device, image_array)
    base = AttackSettings.from_dict(job["attack"])
    fl = no_attack_floor(model, x, settings, target=target)
    extra = {"norm": base.norm.key, "budget": base.epsilon, "attack": job["strength"], "k": fl.k,
             "step_size": base.step_size, "eot": base.eot}
    rows, point, done, seconds = [], None, 0, 0.0
    for steps in job["checkpoints"]:
        if steps == 0:
            value, kept = fl.topk_intersection, 1.0
        else:
            seg = base.replace(steps=steps - done, seed=derive_seed(base.seed, steps))
            res = attack(model, x, settings, seg, target=target, init=point, clean_map=fl.map_a, floor=fl)
            value, kept, seconds = res.topk_intersection, float(bool(res.label_preserved)), seconds + res.elapsed
            if res.label_preserved:
                point = res.x_adv
            done = steps
        rows += [row(job, "strength", "convergence_intersection", value, steps=steps, **extra),
                 row(job, "strength", "convergence_drop", fl.topk_intersection - value, steps=steps, **extra),
                 row(job, "strength", "convergence_label_kept", kept, steps=steps, **extra)]
    rows.append(row(job, "strength", "convergence_seconds", seconds, steps=done, **extra))
    return rows


KINDS = {"gradvar": job_gradvar, "convergence": job_convergence}
