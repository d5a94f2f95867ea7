"""The Certify page's app layer (plain Python, no streamlit): what the page shows around the
certify workflow, which lives in the library (:mod:`rrs.workflows.certify`: plan, sampling,
certificates per checkpoint, :class:`~rrs.workflows.certify.AnytimeView`;
:mod:`rrs.workflows.advice`: verdict, suggestions, pilots, "try to break it").

* :data:`SCHEME_TEXT`, :data:`T_OPTIONS` — labels of the schemes, the sample budgets offered.
* :func:`predicted_time` — the predicted seconds of a run (a 4-sample pilot measures the rate
  the first time).
* :func:`radius_scale`, :func:`slider_range`, :func:`widget_token` — the radius slider: its
  unit, its bounds from finite radii only, and a key that names the result it belongs to.
* :func:`status` — the line above the numbers (stopped, from the cache, complete).
* :func:`curves`, :func:`table_rows` — the radius-versus-β series with their colours and the table.
* :func:`export_json` and :func:`export_csv_rows` — the export record.
"""
from __future__ import annotations

import hashlib
import math
import time

import numpy as np

from rrs.compute.policy import calibrate, predict_seconds
from rrs.settings import SCHEMES, CertifySettings, MapSettings
from rrs.timing import RATES, format_seconds, sample_key
from rrs.workflows.advice import radius_text, validity_text
from rrs.workflows.certify import AnytimeView, RunPlan, Sampled
from ui import plots as P

from . import predict

from .compute import CERTIFY_BETAS
from .compute import pixel_cell as cell_px

__all__ = ["SCHEME_TEXT", "T_OPTIONS", "predict_seconds", "predicted_time", "radius_scale", "slider_range",
           "widget_token", "status", "curves", "table_rows", "export_json", "export_header", "export_csv_rows",
           "pixel_cell", "certify_settings"]

#: The finite-sample schemes (:data:`rrs.settings.SCHEMES`, method.md §5): label and one plain line each.
SCHEME_TEXT = {
    "selection": ("Separate selection batch",
                  "T/8 samples choose the top-k cells; the other 7T/8 prove them (one-sided bounds only "
                  "where the proof needs them)."),
    "bonferroni": ("Bonferroni (all samples)",
                   "All T samples choose the top-k cells and prove them; two-sided bounds for every cell."),
}
assert set(SCHEME_TEXT) == set(SCHEMES)
#: Sample budgets offered on the page (doubling, so every T is a checkpoint schedule).
T_OPTIONS = [64, 128, 256, 512, 1024, 2048, 4096, 8192, 16384, 32768, 65536]


def predicted_time(model, x, settings: MapSettings, plan: RunPlan, device: str) -> tuple[float | None, str]:
    """``(seconds, caption)`` for a run of ``plan``: its samples at the rate measured here (a
    4-sample pilot the first time these settings run on this device) and the certificates of
    its checkpoints (:func:`ui.predict.predict_anytime_certificates`)."""
    if RATES.rate(sample_key(model, x[None], settings)) is None:
        calibrate(model, x, settings)
    totals = plan.totals()

    def upto(j: int) -> float:           # sampling and certifying up to checkpoint j (1-based)
        return (predict_seconds(model, x, settings, totals[j - 1])
                + predict.predict_anytime_certificates(x, settings, "selection" if plan.selection else "bonferroni", j))
    secs = upto(len(totals))
    first = f" · first cells at T = {totals[0]:,} in {format_seconds(upto(1))}" if len(totals) > 1 else ""
    return secs, (f"predicted {format_seconds(secs)} on {device}{first} · checkpoints at T = "
                  + ", ".join(f"{t:,}" for t in totals))


def pixel_cell(sampled: Sampled) -> int:
    """Cell side in pixels for drawing (a Grad-CAM feature cell spans several pixels)."""
    return cell_px(sampled.settings.effective_cell, sampled.grid[0], sampled.input_size)


def radius_scale(view: AnytimeView) -> float:
    """Display unit of radii: ℓ∞ radii in 1/255 steps, others as they are."""
    return 255.0 if view.norm.is_inf else 1.0


def slider_range(view: AnytimeView, kind: str, beta: float) -> tuple[float, float]:
    """(max, default) of the radius slider in display units, from finite radii only (∞ never
    reaches a widget). The default is just below the guaranteed radius (a radius r guarantees
    changes of size < r); with none, below the smallest per-cell radius, so the region shows
    every cell the verdict counts."""
    scale = radius_scale(view)
    pool = np.concatenate([view.cell_radii(kind, True), view.cell_radii(kind, False), view.important,
                           [view.guaranteed(beta)]])
    pool = pool[np.isfinite(pool) & (pool > 0)]
    top = float(pool.max()) if pool.size else {1.0: 1.0, 2.0: 0.05}.get(view.norm.p, 1 / 255)
    smax = float(f"{top * 1.25 * scale:.2g}")
    fin = view.cell_radii(kind, True)
    fin = fin[np.isfinite(fin) & (fin > 0)]
    default = 0.99 * (view.guaranteed(beta) or (float(fin.min()) if fin.size else top / 2))
    return smax, float(min(max(default * scale, smax / 200), smax))


def widget_token(*parts) -> str:
    """A short hash naming one result, for widget keys: a new run gets a fresh radius slider at
    its own guaranteed radius (a slider whose bounds change under a fixed key was reset to 0)."""
    return hashlib.sha1(repr(parts).encode()).hexdigest()[:10]


def status(sampled: Sampled, eta: float, from_cache: bool) -> tuple[str, str]:
    """``(kind, text)`` of the status line: ``"warning"`` (stopped), ``"info"`` (from the cache)
    or ``"caption"`` (complete)."""
    when = time.strftime("%H:%M", time.localtime(sampled.started))
    cost = f"{sampled.elapsed:.1f} s on {sampled.device} ({sampled.rate:.1f} samples/s)"
    if not sampled.complete:
        return "warning", (f"Stopped at T = {sampled.samples_done:,} of {sampled.plan.total:,}, valid: "
                           f"{validity_text(float(eta))}. η is split over the checkpoints, so stopping early costs "
                           f"nothing in validity. Sampling took {cost}. Press **Certify** to run again.")
    if from_cache:
        return "info", f"From the cache: computed earlier (at {when}) in {cost}; shown now without sampling again."
    n = len(sampled.checkpoints)
    return "caption", (f":material/check_circle: Complete: T = {sampled.samples_done:,} in {n} "
                       f"checkpoint{'s' * (n != 1)}, {cost}, at {when}.")


def curves(view: AnytimeView) -> list[dict]:
    """Radius-versus-β series in display units. The equal-level form comes first (drawn
    underneath, thin grey); plug-in lines are solid with circles, finite-sample dotted with diamonds."""
    eta, scale = view.eta, radius_scale(view)
    spec = [("equal_level", "equal-level form — not a certificate for β<1", "#9a9a9a", "dash", "x", 1.5),
            ("rdp_plugin", "RDP exact, plug-in (estimate)", P.CERTIFIED, "solid", "circle", 3),
            ("cdf_plugin", "Gaussian-CDF, plug-in (estimate)", P.TOPK, "solid", "circle", 3),
            ("rdp_finite", f"RDP exact, finite-sample (1−η = {1 - eta:g})", P.CERTIFIED, "dot", "diamond", 2.5),
            ("cdf_finite", f"Gaussian-CDF, finite-sample (1−η = {1 - eta:g})", P.TOPK, "dot", "diamond", 2.5)]
    out = []
    for group, name, color, dash, marker, width in spec:
        certs = getattr(view.report, group)
        if certs:
            betas = [c.beta for c in certs]
            out.append({"name": name, "beta": betas, "radius": [view.radius(group, b) * scale for b in betas],
                        "color": color, "dash": dash, "marker": marker, "width": width, "group": group})
    return out


def table_rows(view: AnytimeView, series: list[dict], beta: float) -> list[dict]:
    """The table beside the curves: each certificate's radius at ``beta`` in display units."""
    rows = []
    for c in series:
        r = view.radius(c["group"], beta)
        name = c["name"].replace(" — not a certificate for β<1", " (not a certificate for β<1)")
        rows.append({"certificate": name, f"radius at β = {beta:.0%}": radius_text(r, view.norm, None)
                     if math.isinf(r) else f"{r * radius_scale(view):.4g}"})
    return rows


def _view_info(view: AnytimeView, radius: float, kind: str, from_cache: bool) -> dict:
    s = view.sampled
    return {"radius_drawn": radius, "region_certificate": kind, "scheme": s.scheme,
            "status": "complete" if s.complete else f"stopped at T = {s.samples_done}, valid",
            "samples_done": s.samples_done, "from_cache": from_cache}


def export_csv_rows(view: AnytimeView, beta: float = 1.0) -> list[dict]:
    """The CSV body: one row per certificate, then one per cell."""
    return ([{"table": "certificate", **r} for r in view.rows()]
            + [{"table": "cell", **r} for r in view.cell_rows(beta)])


def export_header(view: AnytimeView, radius: float, kind: str, from_cache: bool, provenance: dict) -> dict:
    """The CSV header: settings, status and provenance."""
    return {"settings": view.sampled.settings, "certify": view.settings,
            **_view_info(view, radius, kind, from_cache), "provenance": provenance}


def export_json(view: AnytimeView, verdict, radius: float, kind: str, beta: float,
                from_cache: bool) -> tuple[dict, dict]:
    """``(settings, result)`` of the JSON export (:func:`ui.export.to_json`)."""
    s = view.sampled
    settings = {"map": s.settings, "certify": view.settings, **_view_info(view, radius, kind, from_cache)}
    result = {"certificates": view.rows(), "cells": view.cell_rows(beta), "history": list(view.history),
              "stays_important": {"tau": view.tau, "eta": float(view.eta), "radii_finite": view.important.tolist(),
                                  "radii_plugin": view.important_plugin.tolist()},
              "k": s.k, "n": s.n, "dim": view.dim,
              "verdict": {"level": verdict.level, "whole_set": verdict.whole, "per_cell": verdict.cells},
              "elapsed_s": s.elapsed, "device": s.device, "samples_used": s.samples_done,
              "selection_samples": s.plan.selection}
    return settings, result


def certify_settings(norm, eta: float, scheme: str) -> CertifySettings:
    """The page's certificate settings: its norm, η and scheme at the tabulated β levels."""
    return CertifySettings(norm=norm, eta=float(eta), betas=CERTIFY_BETAS, scheme=scheme)
