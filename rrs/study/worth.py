"""What the study's certificates are worth: every certificate scheme the app offers, and the
certified radius next to the radius an attack needs (the break radius).

* ``scheme`` jobs (one per image, RRS method, cell and scheme of :data:`rrs.settings.SCHEMES`):
  one anytime run of ``scheme_T`` samples (:func:`rrs.workflows.certify.sample_run`, the
  app's Certify page), certified three ways: at the last checkpoint alone at the full η (the
  fixed-T certificate the command line reports), anytime-valid (best so far over the doubling
  checkpoints, :func:`rrs.workflows.certify.certify_sampled`) and "stays important" (method.md
  §6b). Rows: whole-set radius per β (``certificate`` = ``"<scheme>, fixed T"`` or
  ``"<scheme>, anytime"``), top-k cells with a positive per-cell radius and their median
  radius, cells that provably stay important and their median radius.
* ``profile`` jobs (one per image): :func:`rrs.workflows.robustness.robustness_profile` (ℓ2)
  of the profile methods; rows per method: break radius (or the largest budget that held),
  certified radius (whole set at β = 1 and the largest per cell), gap = break ÷ certified,
  contradictions (a certified claim the attack broke: must be 0) and the gradients it cost.
"""
from __future__ import annotations

import numpy as np

from ..settings import L2, SCHEMES, CertifySettings
from .config import EvalConfig
from .jobbase import base_job, derive_seed, map_settings, prepare, seeded
from .store import row

__all__ = ["worth_jobs", "job_scheme", "job_profile", "KINDS", "SCHEMAS", "profile_settings"]



def profile_settings(cfg: EvalConfig, seed: int = 0):
    """The profile's :class:`rrs.workflows.robustness.RobustnessSettings` (ℓ2 sweep)."""
    from ..workflows.robustness import RobustnessSettings
    return RobustnessSettings(norm="l2", high=float(cfg.profile_high), budgets=int(cfg.profile_budgets),
                              steps=int(cfg.profile_steps), eot=int(cfg.profile_eot),
                              bisection=int(cfg.profile_bisection), sweep_samples=int(cfg.profile_sweep_samples),
                              confirm_samples=int(cfg.profile_confirm_samples), seed=int(seed))


def worth_jobs(cfg: EvalConfig, image: str, methods, experiments=("schemes", "profile")) -> list:
    """The ``scheme`` jobs (experiment ``schemes``) and the ``profile`` job (``profile``) of ``image``."""
    out = []
    if "schemes" in experiments and image in cfg.first(cfg.scheme_images):
        for cell in cfg.scheme_cells:
            for method in cfg.scheme_methods:
                if method not in methods:
                    continue
                ms = seeded(cfg, image, method, map_settings(cfg, method, cell, cfg.scheme_T), "scheme")
                for scheme in SCHEMES:
                    cs = CertifySettings(norm=L2, eta=cfg.cert_eta, betas=tuple(cfg.cert_betas), scheme=scheme)
                    out.append(dict(base_job(cfg, "scheme", image, method),
                                    map=ms.to_dict(), certify=cs.to_dict()))
    chosen = [m for m in cfg.profile_methods if m in methods]
    if "profile" in experiments and chosen and image in cfg.first(cfg.profile_images):
        maps = {m: seeded(cfg, image, m, map_settings(cfg, m, cfg.profile_cell, 1 if m == "vanilla" else cfg.profile_T),
                          "profile").to_dict() for m in chosen}
        rs = profile_settings(cfg, derive_seed(cfg.base_seed, "profile", cfg.model, image) % 2 ** 31)
        out.append(dict(base_job(cfg, "profile", image, "all"), maps=maps,
                        robustness=rs.to_dict(), certify=CertifySettings(norm=L2, eta=cfg.cert_eta).to_dict()))
    return out


def _radius(report, beta, groups=("rdp_finite", "cdf_finite")) -> float:
    best = 0.0
    for g in groups:
        for c in getattr(report, g):
            if abs(c.beta - beta) < 1e-9:
                best = max(best, float(c.radius))
    return best


def _median(values) -> float:
    v = np.asarray(values, dtype=float)
    return float(np.median(v)) if v.size else 0.0


def job_scheme(job, device, image_array=None):
    from ..certify import certify, stays_important
    from ..workflows.certify import certify_sampled, combine_cells, report_cells, sample_run
    model, x, target, settings = prepare(job, device, image_array)
    cs = CertifySettings.from_dict(job["certify"])
    sampled = None
    for sampled in sample_run(model, x, settings, cs, target=int(target)):
        pass
    noise, norm = settings.noise_model(), float(cs.norm)
    fixed = certify(sampled.checkpoints[-1].stats, sampled.k, noise, cs.replace(cell_radii=True), dim=sampled.dim,
                    selection=sampled.selection)
    view = certify_sampled(sampled, cs)
    important = stays_important(sampled.pooled(), noise, eta=cs.eta, norm=norm, dim=sampled.dim)
    extra = {"k": sampled.k, "n_cells": sampled.n, "norm": cs.norm.key, "scheme": cs.scheme,
             "checkpoints": len(sampled.checkpoints)}
    label = cs.scheme
    rows = []
    for beta in cs.betas:
        rows.append(row(job, "schemes", "radius", _radius(fixed, beta), certificate=f"{label}, fixed T",
                        beta=float(beta), **extra))
        rows.append(row(job, "schemes", "radius", view.guaranteed(beta), certificate=f"{label}, anytime",
                        beta=float(beta), **extra))
    sel = np.asarray(fixed.selected, dtype=int)
    for name, cells in (("fixed T", combine_cells(*report_cells(fixed, True), "best", sampled.n)),
                        ("anytime", view.cell_radii("best", True))):
        pos = cells[sel][cells[sel] > 0]
        rows.append(row(job, "schemes", "cells_certified", pos.size, certificate=f"{label}, {name}", **extra))
        rows.append(row(job, "schemes", "cell_radius_median", _median(pos), certificate=f"{label}, {name}", **extra))
    for name, radii in (("fixed T", important.radii), ("anytime", view.important)):
        pos = np.asarray(radii, dtype=float)
        pos = pos[pos > 0]
        rows.append(row(job, "schemes", "stays_important_cells", pos.size, certificate=f"{label}, {name}", **extra))
        rows.append(row(job, "schemes", "stays_important_median", _median(pos), certificate=f"{label}, {name}",
                        **extra))
    rows.append(row(job, "schemes", "certify_seconds", view.elapsed + sampled.last.elapsed, certificate=label,
                    **extra))
    return rows


def _num(v):
    return None if v is None else float(v)


def job_profile(job, device, image_array=None):
    import torch

    from ..settings import MapSettings
    from ..workflows.robustness import RobustnessSettings, robustness_profile
    first = dict(job, map=next(iter(job["maps"].values())))
    model, x, target, _ = prepare(first, device, image_array)
    names = list(job["maps"])
    settings = [MapSettings.from_dict(job["maps"][m]) for m in names]
    rs = RobustnessSettings.from_dict(job["robustness"])
    prof = robustness_profile(model, x, settings, rs, CertifySettings.from_dict(job["certify"]),
                              target=int(torch.as_tensor(target).reshape(-1)[0]))
    rows = []
    for name, m in zip(names, prof.methods):
        extra = {"method": name, "cell": m.settings.cell, "T": m.settings.samples, "norm": "l2", "k": m.k}
        rows += [row(job, "profile", "broken", float(m.broken), **extra),
                 row(job, "profile", "held_radius", m.held_radius, **extra),
                 row(job, "profile", "floor", m.floor, **extra),
                 row(job, "profile", "contradictions", len(m.contradictions()), **extra),
                 row(job, "profile", "gradients", sum(m.cost.values()), **extra)]
        if m.broken:
            rows.append(row(job, "profile", "break_radius", m.break_radius, **extra))
        if m.certified_radius is not None:
            rows += [row(job, "profile", "certified_radius", m.certified_radius, **extra),
                     row(job, "profile", "certified_cell_radius", _num(m.certified_cell_radius), **extra)]
            if m.gap is not None:
                rows.append(row(job, "profile", "gap", m.gap, **extra))
            if m.cell_gap is not None:
                rows.append(row(job, "profile", "cell_gap", m.cell_gap, **extra))
    rows.append(row(job, "profile", "profile_seconds", prof.elapsed, method="all"))
    return rows


KINDS = {"scheme": job_scheme, "profile": job_profile}
