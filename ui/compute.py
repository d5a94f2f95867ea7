"""The computations behind the app's pages (plain Python: no streamlit here).

A page builds the library's settings objects (:class:`rrs.settings.MapSettings`,
:class:`~rrs.settings.AttackSettings`, :class:`~rrs.settings.CertifySettings`) from its
widgets and calls one function here; the function returns a frozen result that carries its
numbers, the settings it actually used (after the app's budgets, :mod:`ui.budgets`), the
time it took and the device, so a page can show it, cache it (the settings are the cache
key) and export it for recomputation.

* :func:`compute_map` — a raw or smoothed interpretation map (Explain page).
* :func:`map_certificates` — every certificate of an RRS map at one threat norm (the Attack
  page's scale and Learn; the Certify page runs the anytime workflow,
  :mod:`rrs.workflows.certify`).
* :func:`attack_method` — an interpretation attack on one method with its no-attack floor
  (Attack page); :func:`compare_vs_t` — the same and the certificates versus ``T``.
"""
from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass

import numpy as np
import torch

from rrs import metrics
from rrs.certify import CertificationReport, certify
from rrs.figures import topk_mask
from rrs.methods import METHODS
from rrs.settings import AttackSettings, CertifySettings, MapSettings, Norm
from rrs.smoothing import CellStats, model_device, raw_map, smooth
from rrs.workflows.certify import combine_cells, report_cells

from rrs.compute.policy import batch_size_for
from .budgets import device_label, plan_eot, plan_samples

__all__ = ["CERTIFY_BETAS", "MapResult", "CertifyResult", "MethodAttack", "compute_map",
           "map_certificates", "attack_method", "compare_vs_t", "image_digest", "working_image",
           "noise_preview", "as_array", "predict", "pixel_cell", "contrast_at"]

#: The overlap levels β the Certify page tabulates.
CERTIFY_BETAS = (1.0, 0.95, 0.9, 0.85, 0.8, 0.75, 0.7, 0.65, 0.6, 0.55, 0.5)


# ------------------------------------------------------------------------- small helpers

def image_digest(data: bytes) -> str:
    """Short sha256 of an image's bytes (the cache key and the provenance of a result)."""
    return hashlib.sha256(data).hexdigest()[:16]


def working_image(x: torch.Tensor) -> np.ndarray:
    """The ``(3, S, S)`` model input as an ``(S, S, 3)`` uint8 array for display."""
    arr = x.detach().float().clamp(0, 1).mul(255).round().byte().permute(1, 2, 0).cpu().numpy()
    return np.ascontiguousarray(arr)


def noise_preview(x: torch.Tensor, sigma: float, noise: str = "gaussian", seed: int = 0) -> np.ndarray:
    """The image with one noise draw of standard deviation ``sigma`` (the maps' noise,
    :meth:`MapSettings.noise_model`), clipped for display, as uint8 HWC."""
    dist = MapSettings(noise=noise, sigma=float(sigma)).noise_model()
    delta = dist.sample(tuple(x.shape), generator=torch.Generator().manual_seed(int(seed)))
    return working_image((x.detach().cpu() + delta).clamp(0, 1))


def as_array(cell_map) -> np.ndarray:
    """A map (tensor or array) as a float64 numpy array."""
    if isinstance(cell_map, torch.Tensor):
        return cell_map.detach().double().cpu().numpy()
    return np.asarray(cell_map, dtype=float)


def pixel_cell(cell: int, rows: int, size: int) -> int:
    """Cell side in pixels for drawing a ``rows``-row map over a ``size``-pixel image."""
    # pixel cells tile the image exactly (ragged border); a coarser grid (Grad-CAM's feature
    # map) is spread over the image: ceil(size / rows) pixels per cell
    return int(cell) if rows * int(cell) >= size else -(-int(size) // int(rows))


def predict(model, x) -> tuple[int, str, float]:
    """The predicted class of one image ``(3, S, S)``: ``(index, name, probability)``."""
    with torch.no_grad():
        probs = model(x[None].to(model_device(model))).softmax(1)[0]
    conf, idx = probs.max(0)
    return int(idx), model.categories[int(idx)], float(conf)


# --------------------------------------------------------------------------- the maps

@dataclass(frozen=True)
class MapResult:
    """An interpretation map with its raw counterpart and provenance.

    ``settings`` are the settings actually used (``samples`` capped by
    :func:`ui.budgets.plan_samples`; ``message`` then says so): ``settings.to_dict()`` read back
    with ``MapSettings.from_dict`` recomputes ``map``. ``map`` and ``raw`` are ``(rows, cols)``
    float64 arrays (raw = the base attribution at the clean image); ``k`` top cells; ``stats``
    the per-cell sample statistics (smoothed maps with bounded values only); ``elapsed``
    seconds; ``device`` a label such as ``"CPU"``.
    """

    settings: MapSettings
    map: np.ndarray
    raw: np.ndarray
    k: int
    target: int
    label: str
    confidence: float
    elapsed: float
    device: str
    input_size: int
    stats: CellStats | None = None
    message: str = ""

    @property
    def cell(self) -> int:
        return self.settings.effective_cell

    @property
    def samples_used(self) -> int:
        return self.settings.samples if self.settings.smoothed else 1

    @property
    def grid(self) -> tuple[int, int]:
        return tuple(self.map.shape)

    @property
    def n(self) -> int:
        return int(self.map.size)

    @property
    def pixel_cell(self) -> int:
        """Cell side in pixels for drawing (a Grad-CAM feature cell spans several pixels)."""
        return pixel_cell(self.cell, self.map.shape[0], self.input_size)

    @property
    def dim(self) -> int:
        return 3 * self.input_size * self.input_size

    def topk_mask(self, which: str = "map") -> np.ndarray:
        return topk_mask(self.map if which == "map" else self.raw, self.k)

    def raw_agreement(self) -> float:
        """Tie-aware top-k intersection between the raw and the selected map (a smoothed map
        with few samples has many ties; rrs.metrics.tie_aware_intersection, method.md §7)."""
        return metrics.tie_aware_intersection(self.raw, self.map, self.k)

    def rows(self) -> list[dict]:
        """One row per cell (for CSV export)."""
        top = self.topk_mask()
        rows, cols = self.grid
        return [{"row": r, "col": c, "value": float(self.map[r, c]), "raw": float(self.raw[r, c]),
                 "in_topk": bool(top[r, c])} for r in range(rows) for c in range(cols)]

    def summary(self) -> dict:
        return {"label": self.label, "class_id": self.target, "confidence": self.confidence,
                "cells": self.n, "grid": list(self.grid), "k": self.k, "cell_px": self.cell,
                "samples_used": self.samples_used, "raw_vs_map_topk_intersection": self.raw_agreement(),
                "elapsed_s": self.elapsed, "device": self.device, "input_size": self.input_size}


def compute_map(model, x: torch.Tensor, settings: MapSettings, progress=None,
                target: int | None = None, batch_size: int | None = None) -> MapResult:
    """The map chosen by ``settings`` for the image ``x`` ``(3, S, S)`` in ``[0, 1]``.

    The smoothed map is :func:`rrs.smoothing.smooth` with noise seed ``settings.seed``, i.e.
    :func:`rrs.smoothing.interpretation_map`, plus the statistics its certificates need.

    Args:
        progress: optional ``progress(done, total)`` over noise samples.
        target: class to explain (default the predicted class).
        batch_size: noisy inputs per pass (default :func:`rrs.compute.policy.batch_size_for`; result-neutral).
    """
    start = time.perf_counter()
    message = ""
    if settings.smoothed:
        samples, message = plan_samples(settings.samples, model)
        settings = settings.replace(samples=samples)
    pred, label, conf = predict(model, x)
    if target is not None and int(target) != pred:
        target, label = int(target), model.categories[int(target)]
    else:
        target = pred
    raw = raw_map(model, x, settings, target=target)[0].double().cpu().numpy()
    stats = None
    if settings.smoothed:
        res = smooth(model, x, settings, target=target,
                     batch_size=batch_size or batch_size_for(x, settings.attribution),
                     progress=progress)
        m = res.map[0].double().cpu().numpy()
        stats = res.stats(0) if res.value_bound is not None else None
    else:
        m = raw
        if progress is not None:
            progress(1, 1)
    return MapResult(settings, m, raw, settings.k_for(m.size), target, label, conf,
                     time.perf_counter() - start, device_label(model), int(x.shape[-1]), stats, message)


# -------------------------------------------------------------------------- certificates

@dataclass(frozen=True)
class CertifyResult:
    """Every certificate of one RRS map for one :class:`CertifySettings` (plug-in and finite-sample)."""

    map_result: MapResult
    settings: CertifySettings
    report: CertificationReport
    cdf_plugin: np.ndarray | None     # (n,) per-cell Gaussian-CDF radii
    cdf_finite: np.ndarray | None
    elapsed: float

    @property
    def norm(self) -> Norm:
        return self.settings.norm

    @property
    def eta(self) -> float:
        return self.settings.eta

    @property
    def dim(self) -> int:
        return self.map_result.dim

    def cell_radii(self, kind: str = "best", finite: bool = True) -> np.ndarray:
        """``(n,)`` per-cell radii: ``"rdp"``, ``"cdf"`` or ``"best"`` (their maximum: both
        are sound, method.md §6; :func:`rrs.workflows.certify.combine_cells`)."""
        return combine_cells(*report_cells(self.report, finite), kind, self.map_result.n)

    def categories(self, radius: float, kind: str = "best", finite: bool = True) -> np.ndarray:
        """``(rows, cols)``: 2 = certified at ``radius``, 1 = in the top-k but not, 0 = other."""
        radii = self.cell_radii(kind, finite)
        cat = np.zeros(radii.size, dtype=int)
        cat[self.report.selected] = 1
        cat[(radii > radius) & (cat == 1)] = 2
        return cat.reshape(self.map_result.grid)

    def radius(self, group: str, beta: float) -> float:
        """The radius of certificate ``group`` (``rdp_plugin``, ``rdp_finite``, ``cdf_plugin``,
        ``cdf_finite``, ``equal_level``) at ``beta`` (0 when not computed)."""
        for c in getattr(self.report, group):
            if abs(c.beta - beta) < 1e-9:
                return float(c.radius)
        return 0.0


def map_certificates(map_result: MapResult, settings: CertifySettings | None = None) -> CertifyResult:
    """All certificates of an RRS map (from :func:`compute_map`) for ``settings`` (threat norm,
    η, the β levels; default ℓ2, η = 0.05, :data:`CERTIFY_BETAS`).

    The RDP certificates (exact ``D*``, plug-in and finite-sample), the equal-level form and
    the per-cell Gaussian-CDF radii (same simultaneous intervals) come from
    :func:`rrs.certify.certify`.
    """
    settings = CertifySettings(betas=CERTIFY_BETAS) if settings is None else settings
    s = map_result.settings
    if s.method != "rrs" or map_result.stats is None:
        raise ValueError("certificates here are for RRS maps; set the method to RRS")
    start = time.perf_counter()
    report = certify(map_result.stats, map_result.k, s.noise_model(), settings, dim=map_result.dim)
    cdf_plugin = None if report.cdf_cells_plugin is None else report.cdf_cells_plugin.radii
    cdf_finite = None if report.cdf_cells_finite is None else report.cdf_cells_finite.radii
    return CertifyResult(map_result, settings, report, cdf_plugin, cdf_finite, time.perf_counter() - start)


# ------------------------------------------------------------------------------ attacks

@dataclass(frozen=True)
class MethodAttack:
    """One method attacked: the library's ``AttackResult`` (which holds the settings used and
    the no-attack floor) with the app's provenance and messages.

    ``result.floor`` compares the clean maps at noise seeds ``s`` and ``s + 1``
    (:func:`rrs.floor.no_attack_floor`); the attacked map is measured at seed ``s + 1``.
    """

    result: object
    elapsed: float
    device: str
    input_size: int
    message: str = ""

    @property
    def map_settings(self) -> MapSettings:
        return self.result.map_settings

    @property
    def attack_settings(self) -> AttackSettings:
        return self.result.attack_settings

    @property
    def method(self) -> str:
        return self.map_settings.method

    @property
    def floor(self) -> float:
        return float(self.result.floor.topk_intersection)

    @property
    def k(self) -> int:
        return int(self.result.k)

    @property
    def cell(self) -> int:
        return self.map_settings.effective_cell

    @property
    def clean_name(self) -> str:
        return self.result.clean_class_name

    @property
    def adv_name(self) -> str:
        return self.result.adv_class_name

    @property
    def pixel_cell(self) -> int:
        """Cell side in pixels for drawing (a Grad-CAM feature cell spans several pixels)."""
        return pixel_cell(self.cell, int(self.result.clean_map.shape[0]), self.input_size)

    def row(self) -> dict:
        r = self.result
        return {"method": METHODS[self.method].label, "method_id": self.method,
                "no_attack_floor": self.floor, "attacked_topk_intersection": float(r.topk_intersection),
                "drop": self.floor - float(r.topk_intersection),
                "spearman": float(r.spearman), "kendall": float(r.kendall),
                "floor_spearman": float(r.floor.spearman),
                "label_before": self.clean_name, "label_after": self.adv_name,
                "confidence_before": float(r.clean_confidence), "confidence_after": float(r.adv_confidence),
                "label_preserved": bool(r.label_preserved), "l2": float(r.l2), "linf": float(r.linf),
                "linf_255": float(r.linf) * 255, "k": self.k, "elapsed_s": self.elapsed}


def _target_map(shape: tuple[int, int]) -> torch.Tensor:
    """A target for the targeted attack: all mass in the bottom-right quarter."""
    rows, cols = shape
    t = torch.zeros(rows, cols)
    t[rows // 2:, cols // 2:] = 1.0
    return t / t.sum()


def attack_method(model, x: torch.Tensor, settings: MapSettings, attack: AttackSettings,
                  progress=None, batch_size: int | None = None) -> MethodAttack:
    """Attack the map ``settings`` describes (:func:`rrs.attacks.attack`), with its floor.

    The attacker sees the clean map at noise seed ``s = settings.seed``; the attacked map and
    the floor's second run use seed ``s + 1``. T and the EOT samples are capped by the app's
    budgets (the result's settings are the ones used; ``message`` says what was capped).

    Args:
        progress: optional ``progress(done, total)``.
    """
    from rrs.attacks import attack as run_attack

    start = time.perf_counter()
    messages = []
    if settings.smoothed:
        samples, m1 = plan_samples(settings.samples, model)
        eot, m2 = plan_eot(attack.eot, x, model)
        settings, attack = settings.replace(samples=samples), attack.replace(eot=eot)
        messages += [m1, m2]
    target_map = None
    if attack.objective == "targeted":
        target_map = _target_map(tuple(raw_map(model, x, settings)[0].shape))
    result = run_attack(model, x, settings, attack, target_map=target_map, progress=progress,
                        batch_size=batch_size or batch_size_for(x, settings.attribution))
    if result.message:
        messages.append(result.message)
    elif not result.label_preserved:
        messages.append("The attack could not keep the label.")
    return MethodAttack(result, time.perf_counter() - start, device_label(model), int(x.shape[-1]),
                        " ".join(m for m in messages if m))


def compare_vs_t(model, x: torch.Tensor, methods, ts, settings: MapSettings, attack: AttackSettings,
                 certify_settings: CertifySettings, progress=None, batch_size: int | None = None) -> dict:
    """Robustness versus computation on one image (the paper's trade-off, live).

    For every smoothed method in ``methods`` and every ``T`` in ``ts``: the attacked top-k
    intersection (the attacker uses EOT; maps use ``T`` samples) and the no-attack floor.
    Raw methods do not depend on ``T`` and are attacked once. For RRS also the certified
    radius at each β of ``certify_settings`` (RDP and Gaussian-CDF, plug-in and finite-sample)
    versus ``T``.

    Returns ``{"attack": rows, "certify": rows, "elapsed": seconds}``.
    """
    ts = sorted({int(t) for t in ts})
    methods = list(methods)
    jobs = [(m, t) for m in methods for t in (ts if METHODS[m].smoothed else ts[:1])]
    total = len(jobs) + len(ts)   # certified radius vs T is always for RRS
    start = time.perf_counter()
    attack_rows, cert_rows = [], []
    for i, (m, t) in enumerate(jobs):
        sub = None if progress is None else (lambda d, tot, i=i: progress(i + d / max(tot, 1), total))
        res = attack_method(model, x, settings.replace(method=m, samples=t), attack, sub, batch_size)
        row = {**res.row(), "T": t}
        attack_rows.append(row)
        if not METHODS[m].smoothed:
            attack_rows += [{**row, "T": t2} for t2 in ts[1:]]
    for j, t in enumerate(ts):
        sub = None if progress is None else (lambda d, tot, j=j: progress(len(jobs) + j + d / max(tot, 1), total))
        cr = map_certificates(compute_map(model, x, settings.replace(method="rrs", samples=t), progress=sub,
                                     batch_size=batch_size),
                         certify_settings)
        for beta in certify_settings.betas:
            cert_rows.append({"T": t, "beta": beta, "norm": cr.norm.label,
                              **{g: cr.radius(g, beta) for g in ("rdp_plugin", "rdp_finite", "cdf_plugin",
                                                                 "cdf_finite")}})
    return {"attack": attack_rows, "certify": cert_rows, "elapsed": time.perf_counter() - start}


# ------------------------------------------------------------------- the Learn page's contrast

def contrast_at(model, x: torch.Tensor, map_result: MapResult, radius: float, claimed: tuple, norm,
                base: str = "vanilla", progress=None, batch_size: int = 16):
    """The raw ``base`` map and the certified RRS map of ``map_result`` attacked with one budget
    just below ``radius`` (the certificate is for changes smaller than it): the radius a page
    reported from this map's own certificate, ``claimed`` the cells it certified there. The
    certified map's reference is ``map_result``'s map, so its top-k cells are the certificate's.
    A :class:`rrs.workflows.advice.ContrastResult`, from the library's own contrast step (the
    one the Certify page's "Try to break it" runs: the budget just below the radius, the
    attack settings, the refusal of a radius of 0), given this plan and reference."""
    from rrs.workflows import advice as WA

    plan = ("per-cell finite-sample", float(radius), tuple(int(c) for c in claimed))
    reference = torch.as_tensor(np.asarray(map_result.map), dtype=torch.float32)
    return WA._contrast(model, x, map_result.settings, norm, base, plan, reference, map_result.target,
                        progress, batch_size)
