"""Plain-Python computations behind the app's pages (no streamlit here).

Each page of the app lays out widgets and calls one function of this module with a frozen
settings dataclass; the function returns a frozen result that carries its numbers, its
settings, the time it took and the device, so a page can show it, cache it (every field of
the settings is part of the cache key) and export it for recomputation.

* :func:`compute_map` — a raw or smoothed interpretation map (Explain page).
* :func:`certify_map` — every certificate of an RRS map at one threat norm (Certify page).
* :func:`attack_method` — an interpretation attack on one method plus its no-attack floor
  (Attack page); :func:`compare_vs_t` — the same and the certificates versus ``T``.

Budgets are checked up front (:func:`plan_samples`, :func:`plan_eot`): a request beyond what
this machine can do in reasonable time or memory is capped, with a plain message saying so.
"""
from __future__ import annotations

import csv
import hashlib
import io
import json
import math
import time
from dataclasses import asdict, dataclass, replace

import numpy as np
import torch

from . import metrics as _metrics
from .certify import CellStats, CertificationReport, certify
from .noise import Gaussian, Laplace
from .scoring import make_scoring
from .smoothing import model_device, raw_map, smooth

__all__ = [
    "METHOD_LABELS", "BASE_LABELS", "RAW_METHODS", "SMOOTH_METHODS", "SCORING_LABELS",
    "SCORING_PARAMS", "NORMS", "OBJECTIVES", "BudgetError", "MapSettings", "MapResult",
    "AttackSettings", "MethodAttack", "CertifyResult", "Verdict", "device_label",
    "image_digest", "working_image", "topk_mask", "as_array", "noise_preview", "plan_samples", "plan_eot", "batch_size_for",
    "compute_map", "certify_map", "attack_method",
    "compare_vs_t", "format_radius", "radius_unit", "per_pixel_equivalent", "to_json", "to_csv",
    "MAX_SAMPLES", "MAX_EOT",
]

METHOD_LABELS = {
    "vanilla": "Vanilla gradient",
    "input_x_gradient": "Input × gradient",
    "integrated_gradients": "Integrated gradients",
    "gradcam": "Grad-CAM",
    "smoothgrad": "SmoothGrad",
    "sparsified": "Sparsified SmoothGrad",
    "rrs": "RRS (Rényi-Robust-Smooth)",
}
BASE_LABELS = {k: METHOD_LABELS[k] for k in ("vanilla", "input_x_gradient", "integrated_gradients", "gradcam")}
RAW_METHODS = tuple(BASE_LABELS)
SMOOTH_METHODS = ("smoothgrad", "sparsified", "rrs")

SCORING_LABELS = {"topk": "Top-k′ uniform", "exponential": "Exponential decay",
                  "linear": "Linear decay", "power": "Power law"}
#: Per family: (label, min, max, default, step). k′ and τ are percentages of the cells so a
#: setting keeps its meaning when the cell size (hence n) changes.
SCORING_PARAMS = {
    "topk": ("k′ — cells sharing the score (% of cells)", 1.0, 50.0, 10.0, 1.0),
    "exponential": ("decay length τ (% of cells)", 0.5, 50.0, 5.0, 0.5),
    "linear": ("k′ — score reaches 0 after (% of cells)", 1.0, 50.0, 10.0, 1.0),
    "power": ("exponent γ", 0.2, 3.0, 1.0, 0.1),
}
NORMS = {"ℓ1": 1.0, "ℓ2": 2.0, "ℓ∞": math.inf}
OBJECTIVES = {"topk": "Top-k (push the map off its top cells)",
              "mass_center": "Mass centre (move the map's centre)",
              "targeted": "Targeted (pull the map towards the opposite corner)"}

#: Largest number of noise samples the app computes in one request (per device kind).
MAX_SAMPLES = {"cpu": 8192, "gpu": 65536}
#: Largest number of EOT samples per attack step at 224×224 (second-order graphs are big).
MAX_EOT = {"cpu": 16, "gpu": 64}
#: Bytes one EOT sample at 224×224 costs in the attack's double-backward pass. Measured on
#: EfficientNet-Lite0 (CPU, peak RSS of one RRS attack step): ~150 MB per extra sample
#: (1 → 4 → 8 samples: +250 / +744 / +1355 MB); 250 MB leaves headroom for bigger models.
#: Scales with the pixel count.
_BYTES_PER_2ND_ORDER_224 = 250 * 2 ** 20


class BudgetError(ValueError):
    """A request beyond what the app does interactively, with what to do instead."""


# ------------------------------------------------------------------------- small helpers

def device_label(model) -> str:
    """``"CPU"`` or ``"GPU (name)"`` for the device the model's parameters live on."""
    dev = model_device(model)
    if dev.type == "cuda":
        try:
            return f"GPU ({torch.cuda.get_device_name(dev)})"
        except Exception:  # pragma: no cover - depends on the driver
            return "GPU"
    if dev.type == "mps":
        return "GPU (Apple MPS)"
    return "CPU"


def _device_kind(model) -> str:
    return "cpu" if model_device(model).type == "cpu" else "gpu"


def image_digest(data: bytes) -> str:
    """Short sha256 of an image's bytes (the cache key and the provenance of a result)."""
    return hashlib.sha256(data).hexdigest()[:16]


def working_image(x: torch.Tensor) -> np.ndarray:
    """The ``(3, S, S)`` model input as an ``(S, S, 3)`` uint8 array for display."""
    arr = x.detach().float().clamp(0, 1).mul(255).round().byte().permute(1, 2, 0).cpu().numpy()
    return np.ascontiguousarray(arr)


def noise_preview(x: torch.Tensor, sigma: float, noise: str = "gaussian", seed: int = 0) -> np.ndarray:
    """The image with one noise draw at level ``sigma`` (clipped for display), uint8 HWC."""
    g = torch.Generator().manual_seed(int(seed))
    dist = _noise(noise, sigma)
    delta = dist.sample(tuple(x.shape), generator=g)
    return working_image((x.detach().cpu() + delta).clamp(0, 1))


def topk_mask(cell_map, k: int) -> np.ndarray:
    """Boolean ``(rows, cols)`` mask of the ``k`` largest cells (ties by index, as in rrs.metrics)."""
    m = cell_map.detach().double().cpu().numpy() if hasattr(cell_map, "detach") else np.asarray(cell_map, float)
    mask = np.zeros(m.size, dtype=bool)
    mask[_metrics.topk_indices(m, int(k))] = True
    return mask.reshape(m.shape)


def as_array(cell_map) -> np.ndarray:
    """A map (tensor or array) as a float64 numpy array."""
    if hasattr(cell_map, "detach"):
        return cell_map.detach().double().cpu().numpy()
    return np.asarray(cell_map, dtype=float)


def _noise(kind: str, sigma: float):
    if kind == "gaussian":
        return Gaussian(float(sigma))
    if kind == "laplace":
        # same standard deviation as the Gaussian of this σ (Laplace std = √2·b)
        return Laplace(float(sigma) / math.sqrt(2.0))
    raise ValueError(f"noise must be 'gaussian' or 'laplace', got {kind!r}")


def plan_samples(samples: int, model, what: str = "noise samples") -> tuple[int, str]:
    """Cap a requested number of samples at what the app computes interactively.

    Returns ``(samples_to_use, message)``; the message is empty when nothing was capped.
    """
    if isinstance(samples, bool) or int(samples) != samples or samples < 1:
        raise BudgetError(f"The number of {what} must be a whole number ≥ 1, got {samples!r}.")
    cap = MAX_SAMPLES[_device_kind(model)]
    samples = int(samples)
    if samples > cap:
        return cap, (f"T = {samples:,} {what} is more than the app computes in one go on this "
                     f"{device_label(model)}; it was capped at {cap:,}. For longer runs use the "
                     "command line (python -m rrs certify … --samples N).")
    return samples, ""


def plan_eot(eot: int, x: torch.Tensor, model, memory_bytes: int | None = None) -> tuple[int, str]:
    """Cap EOT samples per attack step so the second-order graph fits in memory."""
    if isinstance(eot, bool) or int(eot) != eot or eot < 1:
        raise BudgetError(f"EOT samples must be a whole number ≥ 1, got {eot!r}.")
    eot = int(eot)
    pixels = x.shape[-1] * x.shape[-2]
    per = _BYTES_PER_2ND_ORDER_224 * pixels / (224 * 224)
    cap = MAX_EOT[_device_kind(model)] * max(1, int((224 * 224) / pixels))
    if memory_bytes is None:
        memory_bytes = _free_memory(model)
    if memory_bytes is not None:
        # use at most half of what is free now: other sessions share the machine
        cap = min(cap, max(1, int(memory_bytes / 2 // per)))
    if eot > cap:
        return cap, (f"{eot} EOT samples per step would need about {eot * per / 2**30:.1f} GB for "
                     f"second-order gradients at {x.shape[-1]}×{x.shape[-2]}; capped at {cap}.")
    return eot, ""


def _free_memory(model) -> int | None:
    """Free memory in bytes on the model's device (None when unknown)."""
    dev = model_device(model)
    try:
        if dev.type == "cuda":
            free, _ = torch.cuda.mem_get_info(dev)
            return int(free)
        return _available_host_memory()
    except (AttributeError, ValueError, OSError, RuntimeError):
        return None


def _available_host_memory() -> int:
    """Memory the OS can hand out now: Linux's MemAvailable (free pages plus reclaimable page
    cache), else the free pages. Free pages alone are small on a machine that just read
    gigabytes of files, though that cache is released on demand."""
    import os
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return int(os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))


def batch_size_for(x: torch.Tensor, base: str, model=None) -> int:
    """Noisy inputs per forward pass: 16 at 224×224 (8 for integrated gradients, which runs
    16 interpolants per input), more for small inputs; never changes a result."""
    pixels = x.shape[-1] * x.shape[-2]
    size = max(1, int(16 * (224 * 224) / pixels))
    if base == "integrated_gradients":
        size = max(1, size // 8)
    return int(min(size, 256))


def radius_unit(norm: float) -> str:
    return {1.0: "ℓ1", 2.0: "ℓ2"}.get(float(norm), "ℓ∞")


def per_pixel_equivalent(radius: float, norm: float, dim: int) -> float:
    """The change of every input value that has this norm (ℓ2: L/√N, ℓ1: L/N, ℓ∞: L)."""
    if math.isinf(norm):
        return float(radius)
    return float(radius) / float(dim) ** (1.0 / float(norm))


def format_radius(radius: float, norm: float, dim: int | None = None) -> str:
    """A radius in plain units: ℓ∞ in 1/255 steps, ℓ1/ℓ2 in pixel units plus the per-value
    change it equals when spread evenly over all ``dim`` values."""
    r = float(radius)
    if math.isinf(norm):
        return f"{r * 255:.3g}/255 (ℓ∞)"
    text = f"{r:.3g} ({radius_unit(norm)})"
    if dim:
        text += f" ≈ {per_pixel_equivalent(r, norm, dim) * 255:.2g}/255 per value"
    return text


# --------------------------------------------------------------------------- the maps

@dataclass(frozen=True)
class MapSettings:
    """Everything that decides an interpretation map (all of it is the cache key).

    ``method``: a raw attribution (``vanilla``, ``input_x_gradient``, ``integrated_gradients``,
    ``gradcam``) or a smoothing (``smoothgrad``, ``sparsified``, ``rrs``) of ``base``.
    ``sigma``: noise level in pixel units (Gaussian σ, or the Laplace with that std).
    ``samples``: T. ``cell``: cell side in pixels (Grad-CAM always uses its feature grid).
    ``k_percent``: top-k as a percentage of the cells. ``scoring``/``scoring_param``: the RRS
    scoring family and its parameter (see :data:`SCORING_PARAMS`). ``seed``: noise seed.
    """

    method: str = "rrs"
    base: str = "vanilla"
    sigma: float = 0.15
    samples: int = 16
    cell: int = 8
    k_percent: float = 5.0
    scoring: str = "topk"
    scoring_param: float = 10.0
    seed: int = 0
    noise: str = "gaussian"

    def __post_init__(self):
        if self.method not in METHOD_LABELS:
            raise ValueError(f"method must be one of {list(METHOD_LABELS)}, got {self.method!r}")
        if self.base not in BASE_LABELS:
            raise ValueError(f"base must be one of {list(BASE_LABELS)}, got {self.base!r}")
        if not (math.isfinite(self.sigma) and self.sigma > 0):
            raise ValueError(f"σ must be > 0, got {self.sigma!r}")
        if not 0 < self.k_percent < 100:
            raise ValueError(f"k must be between 0 and 100 % of the cells, got {self.k_percent!r}")
        if self.scoring not in SCORING_PARAMS:
            raise ValueError(f"scoring must be one of {list(SCORING_PARAMS)}, got {self.scoring!r}")

    @property
    def smoothed(self) -> bool:
        return self.method in SMOOTH_METHODS

    @property
    def attribution(self) -> str:
        """The base attribution actually computed (the method itself when raw)."""
        return self.base if self.smoothed else self.method

    def effective_cell(self) -> int:
        """Grad-CAM maps live on the feature grid, so their cell is one feature cell."""
        return 1 if self.attribution == "gradcam" else int(self.cell)

    def k_for(self, n: int) -> int:
        return int(min(max(1, round(self.k_percent / 100.0 * n)), n - 1))

    def scoring_vector(self, n: int) -> np.ndarray:
        if self.scoring in ("topk", "linear"):
            param = int(min(max(1, round(self.scoring_param / 100.0 * n)), n))
        elif self.scoring == "exponential":
            param = max(self.scoring_param / 100.0 * n, 1e-3)
        else:
            param = float(self.scoring_param)
        return make_scoring(self.scoring, n, param)

    def noise_obj(self):
        return _noise(self.noise, self.sigma)

    def describe(self) -> str:
        """The settings in one line (for captions and provenance)."""
        parts = [METHOD_LABELS[self.method]]
        if self.smoothed:
            parts.append(f"of {BASE_LABELS[self.base].lower()}")
            parts.append(f"σ = {self.sigma:g} ({self.noise})")
            parts.append(f"T = {self.samples}")
            if self.method == "rrs":
                label = SCORING_PARAMS[self.scoring][0].split(" (")[0].split(" —")[0]
                parts.append(f"scoring {SCORING_LABELS[self.scoring].lower()} ({label} {self.scoring_param:g}"
                             f"{'' if self.scoring == 'power' else '%'})")
        parts.append(f"cell {self.effective_cell()} px" if self.attribution != "gradcam" else "Grad-CAM grid")
        parts.append(f"top {self.k_percent:g}%")
        parts.append(f"seed {self.seed}")
        return ", ".join(parts)


@dataclass(frozen=True)
class MapResult:
    """An interpretation map with its raw counterpart and provenance.

    ``map`` and ``raw`` are ``(rows, cols)`` float64 arrays (raw = the base attribution at
    the clean image); ``k`` top cells; ``stats`` the per-cell sample statistics (smoothed
    maps only); ``elapsed`` seconds; ``device`` a label such as ``"CPU"``.
    """

    settings: MapSettings
    map: np.ndarray
    raw: np.ndarray
    k: int
    cell: int
    target: int
    label: str
    confidence: float
    elapsed: float
    device: str
    input_size: int
    samples_used: int
    stats: CellStats | None = None
    message: str = ""

    @property
    def grid(self) -> tuple[int, int]:
        return tuple(self.map.shape)

    @property
    def n(self) -> int:
        return int(self.map.size)

    @property
    def pixel_cell(self) -> int:
        """Cell side in pixels for drawing (a Grad-CAM feature cell spans several pixels)."""
        return _pixel_cell(self.cell, self.map.shape[0], self.input_size)

    @property
    def dim(self) -> int:
        return 3 * self.input_size * self.input_size

    def topk_mask(self, which: str = "map") -> np.ndarray:
        return topk_mask(self.map if which == "map" else self.raw, self.k)

    def raw_agreement(self) -> float:
        """Top-k intersection between the raw and the selected map."""
        return _metrics.topk_intersection(self.raw, self.map, self.k)

    def rows(self) -> list[dict]:
        """One row per cell (for CSV export)."""
        rows, cols = self.grid
        top = self.topk_mask()
        out = []
        for r in range(rows):
            for c in range(cols):
                out.append({"row": r, "col": c, "value": float(self.map[r, c]),
                            "raw": float(self.raw[r, c]), "in_topk": bool(top[r, c])})
        return out

    def summary(self) -> dict:
        return {"label": self.label, "class_id": self.target, "confidence": self.confidence,
                "cells": self.n, "grid": list(self.grid), "k": self.k, "cell_px": self.cell,
                "samples_used": self.samples_used, "raw_vs_map_topk_intersection": self.raw_agreement(),
                "elapsed_s": self.elapsed, "device": self.device, "input_size": self.input_size}


def _pixel_cell(cell: int, rows: int, size: int) -> int:
    # pixel cells tile the image exactly (ragged border); a coarser grid (Grad-CAM's feature
    # map) is spread over the image: ceil(size / rows) pixels per cell
    return int(cell) if rows * int(cell) >= size else -(-int(size) // int(rows))


def _predict(model, x) -> tuple[int, str, float]:
    with torch.no_grad():
        probs = model(x[None].to(model_device(model))).softmax(1)[0]
    conf, idx = probs.max(0)
    cats = getattr(model, "categories", None)
    name = cats[int(idx)] if cats else f"class {int(idx)}"
    return int(idx), name, float(conf)


def compute_map(model, x: torch.Tensor, settings: MapSettings, progress=None,
                target: int | None = None) -> MapResult:
    """The map chosen by ``settings`` for the image ``x`` ``(3, S, S)`` in ``[0, 1]``.

    Args:
        progress: optional ``progress(done, total)`` over noise samples.
        target: class to explain (default the predicted class).
    """
    start = time.perf_counter()
    samples, message = plan_samples(settings.samples, model) if settings.smoothed else (1, "")
    pred, label, conf = _predict(model, x)
    target = pred if target is None else int(target)
    if target != pred:
        cats = getattr(model, "categories", None)
        label = cats[target] if cats else f"class {target}"
    cell = settings.effective_cell()
    base = settings.attribution
    raw = raw_map(model, x, target=target, base=base, cell=cell)[0].double().cpu().numpy()
    stats = None
    if settings.smoothed:
        n = raw.size
        scoring = settings.scoring_vector(n) if settings.method == "rrs" else None
        gen = torch.Generator(device=model_device(model)).manual_seed(int(settings.seed))
        res = smooth(model, x, target=target, method=settings.method, base=base,
                     noise=settings.noise_obj(), samples=samples,
                     batch_size=batch_size_for(x, base), cell=cell, scoring=scoring,
                     normalize=False, generator=gen, progress=progress)
        m = res.map[0].double().cpu().numpy()
        stats = res.stats(0) if res.value_bound is not None else None
    else:
        m = raw
        if progress is not None:
            progress(1, 1)
    if not np.all(np.isfinite(m)):
        raise ValueError("the map has non-finite values (the model's gradient overflowed); "
                         "try a smaller σ or another method")
    k = settings.k_for(m.size)
    return MapResult(settings, m, raw, k, cell, target, label, conf, time.perf_counter() - start,
                     device_label(model), int(x.shape[-1]), samples, stats, message)


# -------------------------------------------------------------------------- certificates

@dataclass(frozen=True)
class Verdict:
    """How useful a certificate is, in plain words, and what would make it stronger.

    ``level`` is ``"vacuous"`` (radius 0), ``"tiny"`` (below one 8-bit step, 1/255) or
    ``"ok"``; ``suggestions`` are ``(button label, {setting: value})`` pairs.
    """

    level: str
    text: str
    suggestions: tuple = ()


@dataclass(frozen=True)
class CertifyResult:
    """Every certificate of one RRS map at one threat norm (plug-in and finite-sample)."""

    map_result: MapResult
    norm: float
    eta: float
    report: CertificationReport
    cdf_plugin: np.ndarray | None     # (n,) per-cell Gaussian-CDF radii
    cdf_finite: np.ndarray | None
    elapsed: float

    @property
    def dim(self) -> int:
        return self.map_result.dim

    @property
    def unit(self) -> str:
        return radius_unit(self.norm)

    def cell_radii(self, kind: str = "best", finite: bool = True) -> np.ndarray:
        """``(n,)`` per-cell radii: ``"rdp"``, ``"cdf"`` or ``"best"`` (their maximum: both
        are sound, method.md §6)."""
        cells = self.report.cells_finite if finite else self.report.cells_plugin
        rdp = cells.radii if cells is not None else np.zeros(self.map_result.n)
        cdf = self.cdf_finite if finite else self.cdf_plugin
        if kind == "rdp" or cdf is None:
            return rdp
        if kind == "cdf":
            return cdf
        return np.maximum(rdp, cdf)

    def categories(self, radius: float, kind: str = "best", finite: bool = True) -> np.ndarray:
        """``(rows, cols)``: 2 = certified at ``radius``, 1 = in the top-k but not, 0 = other."""
        shape = self.map_result.grid
        radii = self.cell_radii(kind, finite)
        cat = np.zeros(radii.size, dtype=int)
        cat[self.report.selected] = 1
        cat[(radii > radius) & (cat == 1)] = 2
        return cat.reshape(shape)

    def radius_grid(self, kind: str = "best", finite: bool = True) -> np.ndarray:
        """Per-cell radii as ``(rows, cols)`` with NaN outside the top-k (not drawn)."""
        radii = self.cell_radii(kind, finite).astype(float)
        out = np.full(radii.size, np.nan)
        out[self.report.selected] = radii[self.report.selected]
        return out.reshape(self.map_result.grid)

    def radius(self, group: str, beta: float) -> float:
        """The radius of certificate ``group`` (``rdp_plugin``, ``rdp_finite``, ``cdf_plugin``,
        ``cdf_finite``, ``equal_level``) at ``beta`` (0 when not computed)."""
        for c in getattr(self.report, group):
            if abs(c.beta - beta) < 1e-9:
                return float(c.radius)
        return 0.0

    def curves(self) -> list[dict]:
        """Radius-versus-β series for the figure, certificates first, the equal-level form last."""
        from .plots import CERTIFIED, LOST, PALETTE, TOPK
        spec = [("rdp_plugin", "RDP exact, plug-in", CERTIFIED, False),
                ("rdp_finite", f"RDP exact, finite-sample (1−η = {1 - self.eta:g})", PALETTE[5], False),
                ("cdf_plugin", "Gaussian-CDF, plug-in", TOPK, False),
                ("cdf_finite", f"Gaussian-CDF, finite-sample (1−η = {1 - self.eta:g})", PALETTE[3], False),
                ("equal_level", "equal-level form — not a certificate for β<1", LOST, True)]
        out = []
        for group, name, color, dash in spec:
            certs = getattr(self.report, group)
            if certs:
                out.append({"name": name, "beta": [c.beta for c in certs],
                            "radius": [c.radius for c in certs], "color": color, "dash": dash,
                            "group": group})
        return out

    def rows(self) -> list[dict]:
        rows = self.report.rows()
        for r in rows:
            r["radius_per_value"] = per_pixel_equivalent(r["radius"], self.norm, self.dim)
        return rows

    def verdict(self, beta: float = 1.0, cell_options=(1, 2, 4, 8, 16, 32)) -> Verdict:
        """Plain-language judgement of the finite-sample certificate at ``beta``.

        ``cell_options``: the cell sizes the caller can offer (the coarsest larger one is
        suggested when the certificate is weak).
        """
        s = self.map_result.settings
        best = max(self.radius("rdp_finite", beta), self.radius("cdf_finite", beta))
        plug = max(self.radius("rdp_plugin", beta), self.radius("cdf_plugin", beta))
        suggestions = []
        cap = MAX_SAMPLES["cpu"] if self.map_result.device == "CPU" else MAX_SAMPLES["gpu"]
        if s.samples < cap:
            more = int(min(cap, max(4 * s.samples, 1024)))
            suggestions.append((f"Use {more:,} samples", {"samples": more}))
        coarser = max((c for c in cell_options if c > s.cell), default=None)
        if s.attribution != "gradcam" and coarser is not None:
            suggestions.append((f"Use coarser {coarser}-px cells", {"cell": int(coarser)}))
        if s.sigma < 0.5:
            suggestions.append((f"Try σ = {min(0.5, round(s.sigma * 1.6, 2)):g}",
                                {"sigma": float(min(0.5, round(s.sigma * 1.6, 2)))}))
        if beta >= 1.0:
            suggestions.append(("Allow 20% of the top-k to change (β = 0.8)", {"beta": 0.8}))
        what = (f"{len(self.report.selected)} top cells of a {self.map_result.grid[0]}×"
                f"{self.map_result.grid[1]} map")
        if best <= 0:
            why = ("the map's top cells change too much from one noise draw to the next, and "
                   f"{s.samples:,} samples are too few to prove they are stable with "
                   f"{1 - self.eta:.0%} confidence")
            if plug > 0:
                why += (f" (taking the {s.samples:,}-sample map as exact — the plug-in value — "
                        f"would give {format_radius(plug, self.norm, self.dim)}, but that is not a "
                        "guarantee)")
            return Verdict("vacuous", f"No radius can be certified for the {what}: {why}. "
                           "What would help:", tuple(suggestions))
        if best < 1 / 255:
            return Verdict("tiny", f"The certificate is real but tiny: {format_radius(best, self.norm, self.dim)} — "
                           "less than changing a single pixel value by one 8-bit step (1/255). "
                           "What would make it larger:", tuple(suggestions))
        how_many = (f"any of the {what}" if beta >= 1.0 else
                    f"more than {100 * (1 - beta):.0f}% of the {what}")
        return Verdict("ok", f"Guaranteed: no change of size below {format_radius(best, self.norm, self.dim)} "
                       f"can push {how_many} out of the top-k "
                       f"(with probability ≥ {1 - self.eta:.0%} over the sampling).", ())


def certify_map(map_result: MapResult, norm: float = 2.0, eta: float = 0.05,
                betas=(1.0, 0.95, 0.9, 0.85, 0.8, 0.75, 0.7, 0.65, 0.6, 0.55, 0.5)) -> CertifyResult:
    """All certificates of an RRS map (from :func:`compute_map`) against the ℓ_``norm`` threat.

    The RDP certificates (exact ``D*``, plug-in and finite-sample) and the equal-level form
    come from :func:`rrs.certify.certify`, as do the per-cell Gaussian-CDF radii (same
    simultaneous intervals).
    """
    s = map_result.settings
    if s.method != "rrs" or map_result.stats is None:
        raise ValueError("certificates here are for RRS maps; set the method to RRS")
    start = time.perf_counter()
    noise = s.noise_obj()
    stats = map_result.stats
    k = map_result.k
    report = certify(stats, k, noise, betas=betas, norm=norm, dim=map_result.dim, eta=eta)
    cdf_plugin = None if report.cdf_cells_plugin is None else report.cdf_cells_plugin.radii
    cdf_finite = None if report.cdf_cells_finite is None else report.cdf_cells_finite.radii
    return CertifyResult(map_result, float(norm), float(eta), report, cdf_plugin, cdf_finite,
                         time.perf_counter() - start)


# ------------------------------------------------------------------------------ attacks

@dataclass(frozen=True)
class AttackSettings:
    """An interpretation attack: ``objective``, ``norm`` (``"linf"``/``"l2"``), ``budget``
    (ℓ∞: in 1/255 steps; ℓ2: in pixel units), PGD ``steps``, EOT samples per step (smoothed
    methods), ``random_start`` and the attack's ``seed``."""

    objective: str = "topk"
    norm: str = "linf"
    budget: float = 4.0
    steps: int = 10
    eot: int = 4
    random_start: bool = False
    seed: int = 0

    def __post_init__(self):
        if self.objective not in OBJECTIVES:
            raise ValueError(f"objective must be one of {list(OBJECTIVES)}, got {self.objective!r}")
        if self.norm not in ("linf", "l2"):
            raise ValueError(f"norm must be 'linf' or 'l2', got {self.norm!r}")
        if not (self.budget > 0):
            raise ValueError(f"the budget must be > 0, got {self.budget!r}")
        if int(self.steps) != self.steps or self.steps < 1:
            raise ValueError(f"steps must be a whole number ≥ 1, got {self.steps!r}")

    @property
    def epsilon(self) -> float:
        """The budget in pixel units."""
        return self.budget / 255.0 if self.norm == "linf" else float(self.budget)

    def describe(self, dim: int | None = None) -> str:
        if self.norm == "linf":
            b = f"ℓ∞ ≤ {self.budget:g}/255"
        else:
            b = f"ℓ2 ≤ {self.budget:g}"
            if dim:
                b += f" (≈ {per_pixel_equivalent(self.budget, 2.0, dim) * 255:.2g}/255 per value)"
        return (f"{OBJECTIVES[self.objective].split(' (')[0]} attack, {b}, {self.steps} steps, "
                f"{self.eot} EOT samples, seed {self.seed}")


@dataclass(frozen=True)
class MethodAttack:
    """One method attacked: the library's ``AttackResult`` plus the no-attack floor.

    ``floor`` is the top-k intersection between two clean runs of the method with different
    seeds (1 for deterministic raw methods): what sampling noise alone does.
    """

    method: str
    map_settings: MapSettings
    attack_settings: AttackSettings
    result: object
    floor: float
    floor_spearman: float
    k: int
    cell: int
    elapsed: float
    device: str
    clean_name: str = ""
    adv_name: str = ""
    message: str = ""

    @property
    def pixel_cell(self) -> int:
        """Cell side in pixels for drawing (a Grad-CAM feature cell spans several pixels)."""
        return _pixel_cell(self.cell, int(self.result.clean_map.shape[0]), int(self.result.x_adv.shape[-1]))

    def row(self) -> dict:
        r = self.result
        return {"method": METHOD_LABELS[self.method], "method_id": self.method,
                "no_attack_floor": self.floor, "attacked_topk_intersection": float(r.topk_intersection),
                "drop": self.floor - float(r.topk_intersection),
                "spearman": float(r.spearman), "kendall": float(r.kendall),
                "floor_spearman": self.floor_spearman,
                "label_before": self.clean_name or str(r.clean_label),
                "label_after": self.adv_name or str(r.adv_label),
                "confidence_before": float(r.clean_confidence), "confidence_after": float(r.adv_confidence),
                "label_preserved": bool(r.label_preserved), "l2": float(r.l2), "linf": float(r.linf),
                "linf_255": float(r.linf) * 255, "k": self.k, "elapsed_s": self.elapsed}


def _label_name(model, label) -> str:
    cats = getattr(model, "categories", None)
    if isinstance(label, str):
        return label
    try:
        return cats[int(label)] if cats else f"class {int(label)}"
    except (IndexError, TypeError, ValueError):
        return str(label)


def _target_map(shape: tuple[int, int]) -> torch.Tensor:
    """A target for the targeted attack: all mass in the bottom-right quarter."""
    rows, cols = shape
    t = torch.zeros(rows, cols)
    t[rows // 2:, cols // 2:] = 1.0
    return t / t.sum()


def attack_method(model, x: torch.Tensor, method: str, map_settings: MapSettings,
                  attack_settings: AttackSettings, progress=None) -> MethodAttack:
    """Attack ``method``'s map of ``x`` (:func:`rrs.attacks.attack`) and measure its floor.

    Args:
        map_settings: σ, T (map samples), cell, k, scoring and the measuring seed
            (``method`` is overridden); the clean and attacked maps share that seed, the
            no-attack floor uses seeds ``seed+1`` and ``seed+2``.
        attack_settings: objective, norm, budget, steps, EOT samples and the attack's seed.
        progress: optional ``progress(done, total)`` over the attack steps then the floor.
    """
    from .attacks import attack, no_attack_floor
    settings = replace(map_settings, method=method)
    start = time.perf_counter()
    eot, message = plan_eot(attack_settings.eot, x, model) if settings.smoothed else (1, "")
    samples, msg2 = plan_samples(settings.samples, model) if settings.smoothed else (1, "")
    message = " ".join(m for m in (message, msg2) if m)
    cell = settings.effective_cell()
    device = model_device(model)
    clean_raw = raw_map(model, x, base=settings.attribution, cell=cell)[0]
    n = clean_raw.numel()
    k = settings.k_for(n)
    common = dict(k=k, cell=cell, base=settings.base if settings.smoothed else "vanilla",
                  batch_size=batch_size_for(x, settings.attribution))
    if settings.smoothed:
        common.update(noise=settings.noise_obj(), samples=samples)
        if settings.method == "rrs":
            common["scoring"] = settings.scoring_vector(n)
    name = method if settings.smoothed else settings.attribution
    steps = int(attack_settings.steps)
    total = steps + 1

    def step_progress(done, tot):
        if progress is not None:
            progress(min(done, tot) * steps / max(tot, 1), total)

    result = attack(model, x, method=name, objective=attack_settings.objective, norm=attack_settings.norm,
                    epsilon=attack_settings.epsilon, steps=steps, eot_samples=eot,
                    random_start=bool(attack_settings.random_start),
                    target_map=_target_map(tuple(clean_raw.shape)) if attack_settings.objective == "targeted" else None,
                    generator=torch.Generator(device=device).manual_seed(int(attack_settings.seed)),
                    progress=step_progress, eval_seed=int(settings.seed), **common)
    floor = no_attack_floor(model, x, method=name, seeds=(settings.seed + 1, settings.seed + 2), **common)
    if progress is not None:
        progress(total, total)
    if result.message:
        message = " ".join(m for m in (message, result.message) if m)
    elif not result.label_preserved:
        message = " ".join(m for m in (message, "The attack could not keep the label.") if m)
    return MethodAttack(method, settings, attack_settings, result, float(floor.topk_intersection),
                        float(floor.spearman), int(result.k), cell, time.perf_counter() - start,
                        device_label(model), result.clean_class_name or _label_name(model, result.clean_label),
                        result.adv_class_name or _label_name(model, result.adv_label), message)


def compare_vs_t(model, x: torch.Tensor, methods, ts, map_settings: MapSettings,
                 attack_settings: AttackSettings, beta: float = 1.0, norm: float = 2.0,
                 eta: float = 0.05, progress=None) -> dict:
    """Robustness versus computation on one image (the paper's trade-off, live).

    For every smoothed method in ``methods`` and every ``T`` in ``ts``: the attacked top-k
    intersection (the attacker uses EOT; maps use ``T`` samples) and the no-attack floor.
    Raw methods do not depend on ``T`` and are attacked once. For RRS also the certified
    radius at ``beta`` (RDP and Gaussian-CDF, plug-in and finite-sample) versus ``T``.

    Returns ``{"attack": rows, "certify": rows, "elapsed": seconds}``.
    """
    ts = sorted({int(t) for t in ts})
    methods = list(methods)
    jobs = [(m, t) for m in methods for t in (ts if m in SMOOTH_METHODS else ts[:1])]
    cert_jobs = ts  # certified radius vs T is always for RRS, whatever methods are attacked
    total = len(jobs) + len(cert_jobs)
    start = time.perf_counter()
    attack_rows, cert_rows = [], []
    for i, (m, t) in enumerate(jobs):
        sub = None if progress is None else (lambda d, tot, i=i: progress(i + d / max(tot, 1), total))
        res = attack_method(model, x, m, replace(map_settings, samples=t), attack_settings, sub)
        row = res.row()
        row["T"] = t
        attack_rows.append(row)
        if m not in SMOOTH_METHODS:
            for t2 in ts[1:]:
                attack_rows.append({**row, "T": t2})
    for j, t in enumerate(cert_jobs):
        sub = None if progress is None else (lambda d, tot, j=j: progress(len(jobs) + j + d / max(tot, 1), total))
        mr = compute_map(model, x, replace(map_settings, method="rrs", samples=t), progress=sub)
        cr = certify_map(mr, norm=norm, eta=eta, betas=(float(beta),))
        cert_rows.append({"T": t, "beta": float(beta), "norm": radius_unit(norm),
                          "rdp_plugin": cr.radius("rdp_plugin", beta), "rdp_finite": cr.radius("rdp_finite", beta),
                          "cdf_plugin": cr.radius("cdf_plugin", beta), "cdf_finite": cr.radius("cdf_finite", beta)})
    return {"attack": attack_rows, "certify": cert_rows, "elapsed": time.perf_counter() - start}


# ------------------------------------------------------------------------------ export

def _plain(o):
    if isinstance(o, (np.floating, np.integer)):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, torch.Tensor):
        return o.detach().cpu().tolist()
    if hasattr(o, "__dataclass_fields__"):
        return asdict(o)
    if isinstance(o, float) and not math.isfinite(o):
        return str(o)
    return str(o)


def to_json(page: str, settings: dict, results: dict, provenance: dict) -> str:
    """A self-describing JSON export: page, settings (enough to recompute), numbers, provenance."""
    doc = {"rrs_export": 1, "page": page, "settings": settings, "provenance": provenance,
           "results": results}
    return json.dumps(_finite(doc), indent=2, default=_plain, ensure_ascii=False)


def _finite(o):
    if isinstance(o, float) and not math.isfinite(o):
        return "inf" if o > 0 else ("-inf" if o < 0 else "nan")
    if isinstance(o, dict):
        return {k: _finite(v) for k, v in o.items()}
    if isinstance(o, (list, tuple)):
        return [_finite(v) for v in o]
    return o


def to_csv(rows: list[dict], header: dict | None = None) -> str:
    """Rows as CSV; ``header`` settings become leading ``# key: value`` comment lines."""
    buf = io.StringIO()
    if header:
        for key, value in header.items():
            buf.write(f"# {key}: {json.dumps(_finite(value), default=_plain, ensure_ascii=False)}\n")
    if rows:
        fields = list(dict.fromkeys(k for r in rows for k in r))
        writer = csv.DictWriter(buf, fieldnames=fields)
        writer.writeheader()
        for r in rows:
            writer.writerow({k: _plain(v) if isinstance(v, (np.generic, np.ndarray)) else v for k, v in r.items()})
    return buf.getvalue()
