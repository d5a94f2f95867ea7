"""Command line: ``python -m rrs explain|certify|attack|evaluate …``.

* ``explain`` — an interpretation map (raw attribution, SmoothGrad, Sparsified SmoothGrad or
  Rényi-Robust-Smooth, Liu et al. 2022) of one image, as PNG and JSON.
* ``certify`` — an RRS map with its certified top-k radii per β (exact RDP, Gaussian-CDF,
  plug-in and finite-sample; the equal-level form for comparison) and the certified region.
* ``attack`` — the interpretation attack of Ghorbani et al. 2019 against chosen methods
  (``rrs.attacks``), with the no-attack floor next to every attacked number.
* ``evaluate`` — the evaluation study (``rrs.study``).

Every JSON output records the exact settings, seed, device and elapsed time, so a result
can be recomputed. Errors are one line on stderr with a non-zero exit code (2 for bad
input, 1 for an unexpected failure, 130 when interrupted); ``--debug`` or ``RRS_DEBUG=1``
shows the traceback instead.
"""
from __future__ import annotations

import argparse
import csv
import math
import os
import platform
import sys
import time
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import torch

from ..cliargs import betas as _betas
from ..cliargs import count_or_fraction as _count_or_fraction
from ..cliargs import positive_float as _positive_float
from ..cliargs import positive_int as _positive_int
from ..cliargs import probability as _probability
from ..jsonio import dumps
from ..methods import METHODS, RAW_METHODS, SMOOTH_METHODS
from ..smoothing import model_device
from ..settings import (NOISE_FAMILIES, OBJECTIVES, REDUCTIONS, SCHEMES, SCORING_DEFAULTS, AttackSettings,
                       CertifySettings, MapSettings, Norm)

__all__ = ["main", "build_parser", "resolve_model", "resolve_image", "parse_epsilon",
           "parse_norm", "map_settings", "attack_settings", "certify_settings", "EXPLAIN_METHODS"]

EXPLAIN_METHODS = tuple(METHODS)
SCORING_FAMILIES = ("topk", "exponential", "linear", "power")
#: Options that only shape the output of a command, not what is computed.
_OUTPUT_OPTIONS = ("out", "json", "csv", "opacity", "quiet", "debug", "no_compare", "radius", "region")


def _name(method: str) -> str:
    """A method's label in running text (``vanilla gradient``, ``SmoothGrad``, ``RRS``)."""
    info = METHODS[method]
    return info.short if info.name == "rrs" else (info.label if info.smoothed or method == "gradcam"
                                                  else info.label.lower())


class CliError(ValueError):
    """A bad command-line value, reported as one line."""


class _Parser(argparse.ArgumentParser):
    """argparse with one-line errors (the usage is one ``--help`` away)."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


# --------------------------------------------------------------------- value parsers

def parse_epsilon(text: str) -> float:
    """A budget like ``8/255``, ``0.03`` or ``2``; must be a finite number > 0."""
    return _positive_float(str(text).strip())


def parse_norm(text) -> Norm:
    """``1``, ``2``, ``inf`` (or ``linf``/``l2``/``l1``/``ℓ2``) or any number ≥ 1."""
    try:
        return Norm.parse(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be 1, 2, inf or a number ≥ 1, got {text!r}") from None


def _method_list(text: str) -> tuple[str, ...]:
    names = tuple(m for m in str(text).replace(" ", "").split(",") if m)
    bad = [m for m in names if m not in EXPLAIN_METHODS]
    if not names or bad:
        raise argparse.ArgumentTypeError(f"unknown method {', '.join(bad) or text!r}; choose from "
                                         f"{', '.join(EXPLAIN_METHODS)}")
    return names


def map_settings(args, method: str | None = None) -> MapSettings:
    """The :class:`MapSettings` the options of ``args`` describe (``method`` overrides ``--method``)."""
    method = method or args.method
    family = args.scoring
    param = SCORING_DEFAULTS[family] if args.scoring_param is None else args.scoring_param
    return MapSettings(method=method, base=args.base, noise=args.noise, sigma=args.sigma,
                       samples=args.samples, cell=args.cell, reduction=args.reduction,
                       k=0.05 if args.k is None else args.k, scoring=family, scoring_param=param,
                       tau=args.tau, phi=args.phi, normalize=args.normalize,
                       precision=args.precision, seed=args.seed)


def attack_settings(args) -> AttackSettings:
    return AttackSettings(objective=args.objective, norm=args.norm, epsilon=args.epsilon, steps=args.steps,
                          step_size=args.step_size, eot=args.eot_samples, restarts=args.restarts,
                          random_start=args.random_start, seed=args.seed, surrogate_beta=args.surrogate_beta,
                          work_size=args.work_size)


def certify_settings(args) -> CertifySettings:
    return CertifySettings(norm=args.norm, eta=args.eta, betas=args.betas, scheme=args.scheme)


# -------------------------------------------------------------------- model and image

def resolve_model(name: str, device=None, arch: str | None = None):
    """The classifier called ``name`` from the model registry, or a user weight file (with ``arch``)."""
    from .. import models

    if name and Path(name).is_file():
        if not arch:
            raise CliError(f"{name} is a weight file: say which architecture it is with --arch "
                           "(e.g. --arch resnet18)")
        return models.load_user_model(name, arch, device=device)
    return models.load_model(name, device=device)


def resolve_image(spec: str):
    """An image file path, or the name of a bundled sample (e.g. ``coffee``)."""
    from ..images import ImageError, list_samples, load_image, load_sample

    path = Path(spec)
    if path.exists():
        return load_image(path)
    names = [n for n, _ in list_samples()]
    if spec.lower() in names or path.stem.lower() in names and not path.parent.parts:
        return load_sample(spec)
    raise ImageError(f"No file at {spec} and no sample image of that name; samples: {', '.join(names)}.")


@contextmanager
def _progress(args, total: int, desc: str):
    """A tqdm bar on stderr fed by rrs's ``progress(done, total)`` callbacks."""
    if args.quiet:
        yield None
        return
    from tqdm import tqdm

    bar = tqdm(total=total, desc=desc, file=sys.stderr, leave=False, dynamic_ncols=True)

    def update(done, total_=None):
        if total_ is not None and total_ != bar.total:
            bar.total = total_
        bar.update(max(0, int(done) - bar.n))
    try:
        yield update
    finally:
        bar.close()


def _options(args) -> dict:
    """The command-line options that are not part of a settings object (output files etc.)."""
    skip = {"func", "argv"}
    return {k: v for k, v in sorted(vars(args).items()) if k not in skip and not callable(v)
            and (k in _OUTPUT_OPTIONS or k in ("image", "model", "arch", "device", "target", "batch_size"))}


def _record(args, command: str, started: float, model, image, settings: MapSettings, **fields) -> dict:
    """A JSON record: what ran, with which settings (``MapSettings.to_dict()`` and friends), where."""
    from .. import __version__

    rec = {"command": command, "rrs_version": __version__,
           "argv": ["python", "-m", "rrs", *args.argv],
           "settings": settings.to_dict(), "options": _options(args), "seed": settings.seed,
           "device": str(model_device(model)), "model": model.name, "input_size": model.input_size,
           "image": {"name": image.name, "source": args.image, **image.info.as_dict()},
           "torch": torch.__version__, "python": platform.python_version(),
           "platform": platform.platform(), "elapsed_s": None}
    rec.update(fields)
    rec["elapsed_s"] = time.perf_counter() - started
    return rec


def _write_json(path: str, record: dict) -> None:
    Path(path).write_text(dumps(record) + "\n", encoding="utf-8")
    print(f"wrote {path}")


def _write_png(path: str, png: bytes) -> None:
    Path(path).write_bytes(png)
    print(f"wrote {path}")


def _prepare(args):
    """Model, image, model-input tensor, device, target class and prediction."""
    from ..models import predict_topk

    device = None if args.device in (None, "auto") else args.device
    try:
        torch.device(device) if device is not None else None
    except RuntimeError:
        raise CliError(f"unknown device {args.device!r}; use cpu, cuda, cuda:0 or auto") from None
    if device is not None and torch.device(device).type == "cuda" and not torch.cuda.is_available():
        raise CliError("--device cuda was asked for but no GPU is available here; use --device cpu")
    image = resolve_image(args.image)  # a bad image fails before the model is loaded
    model = resolve_model(args.model, device, args.arch)
    _precheck_k(args, model.input_size)
    x = model.prepare(image)
    top5 = predict_topk(model, x, k=min(5, len(model.categories)))
    if args.target is None:
        target = top5[0][0]
    else:
        target = int(args.target)
        if not 0 <= target < len(model.categories):
            raise CliError(f"--target must be a class id in 0..{len(model.categories) - 1}, got {target}")
    return model, image, x, target, top5


def _precheck_k(args, size: int) -> None:
    """Reject an impossible --k before any gradient is computed (pixel-cell grids are known)."""
    from ..attributions import cell_grid

    if args.command == "certify":
        certify_settings(args)
    elif args.command == "attack":
        attack_settings(args)
    methods = args.methods if args.command == "attack" else ("rrs",) if args.command == "certify" else (args.method,)
    for method in methods:
        settings = map_settings(args, method)
        if settings.attribution != "gradcam":
            rows, cols = cell_grid(size, size, settings.effective_cell)
            settings.k_for(rows * cols)


def _print_prediction(model, top5, target) -> None:
    best = top5[0]
    print(f"prediction: {best[1]} (class {best[0]}, p = {best[2]:.3f}); next: "
          + ", ".join(f"{name} {p:.3f}" for _, name, p in top5[1:]))
    if target != best[0]:
        print(f"explaining class {target} ({model.categories[target]}) instead of the prediction")


def _fig_cell(settings: MapSettings):
    # Grad-CAM cells are the feature-map grid, stretched over the image; pixel-based maps use
    # exact cell boundaries.
    return None if settings.attribution == "gradcam" else settings.cell


def _map_for(args, model, x, target, settings: MapSettings, progress=None):
    """(map (rows, cols) tensor, SmoothResult or None) for one settings object."""
    from ..smoothing import raw_map, smooth

    if not settings.smoothed:
        return raw_map(model, x, settings, target=target)[0].cpu(), None
    res = smooth(model, x, settings, target=target, batch_size=args.batch_size, progress=progress)
    return res.map[0].cpu(), res


def _grid_summary(m: torch.Tensor) -> str:
    rows, cols = m.shape
    return f"{rows}×{cols} = {rows * cols} cells"


def _noise_text(s: MapSettings) -> str:
    return f"{s.noise} σ = {s.sigma:g}" + (f" (scale b = {s.noise_model().scale:.4g})" if s.noise == "laplace" else "")


# ----------------------------------------------------------------------------- explain

def cmd_explain(args) -> int:
    from ..figures import comparison_png, overlay_png, topk_mask
    from ..metrics import topk_indices

    started = time.perf_counter()
    model, image, x, target, top5 = _prepare(args)
    _print_prediction(model, top5, target)
    settings = map_settings(args)
    t0 = time.perf_counter()
    with _progress(args, args.samples, settings.info.label) as bar:
        m, res = _map_for(args, model, x, target, settings, bar)
    compute_s = time.perf_counter() - t0
    n = m.numel()
    k = settings.k_for(n)
    label = settings.info.label + (f" over {_name(settings.base)}" if settings.smoothed else "")
    print(f"{label}: {_grid_summary(m)}, top-k with k = {k}"
          + (f", T = {settings.samples}, {_noise_text(settings)}" if res is not None else "")
          + f"; {compute_s:.2f} s on {model_device(model)}")
    raw = None
    if args.out:
        cell = _fig_cell(settings)
        title = f"{label} — {image.name}: {model.categories[target]}"
        if res is not None and not args.no_compare:
            raw_settings = settings.replace(method=settings.base)
            raw = _map_for(args, model, x, target, raw_settings)[0]
            png = comparison_png(x, {f"raw {_name(settings.base)}": raw, settings.info.label: m},
                                 normalize="max", k=k, cell=cell, title=title, opacity=args.opacity,
                                 caption=f"Bright = where the model looked (each map scaled to its max, "
                                         f"shared scale); outlined = top-{k} cells; seed {settings.seed}.")
        else:
            png = overlay_png(x, m, title=title, opacity=args.opacity, topk_mask=topk_mask(m, k), cell=cell,
                              caption=f"Bright = where the model looked; outlined = the top-{k} cells.")
        _write_png(args.out, png)
    if args.json:
        extra = {}
        if res is not None:
            extra = {"samples": res.samples, "value_bound": res.value_bound, "smoothing_elapsed_s": res.elapsed}
            if settings.method == "rrs":
                extra["scoring_vector"] = res.scoring
        record = _record(args, "explain", started, model, image, settings, method=settings.method,
                         base=settings.attribution, target={"id": target, "name": model.categories[target]},
                         prediction=[{"id": i, "name": nm, "p": p} for i, nm, p in top5],
                         grid=list(m.shape), cells=n, k=k, topk_cells=topk_indices(m, k),
                         compute_s=compute_s, map=m, raw_map=raw, **extra)
        _write_json(args.json, record)
    return 0


# ----------------------------------------------------------------------------- certify

def _fmt_radius(r: float) -> str:
    return f"{r:.4g}" if r > 0 else "0"


def _certificate_table(report) -> tuple[list[str], list[tuple[str, list[float]]]]:
    """Rows ``(label, radius per β)`` grouped by certificate kind; missing β as NaN."""
    betas = list(report.betas)
    rows = []
    for group in (report.rdp_plugin, report.rdp_finite, report.cdf_plugin, report.cdf_finite, report.equal_level):
        if not group:
            continue
        by_beta = {c.beta: c for c in group}
        labels = [c.label for c in group]
        # The equal-level form is a certificate at β = 1 only; name the row by its weaker label.
        label = next((c.label for c in group if not c.is_certificate), labels[0])
        rows.append((label, [by_beta[b].radius if b in by_beta else math.nan for b in betas]))
    return [f"β={b:g}" for b in betas], rows


def _print_certificates(report, cert: CertifySettings) -> None:
    header, rows = _certificate_table(report)
    width = max(len(lbl) for lbl, _ in rows) if rows else 20
    print(f"certified {cert.norm.label} radius (pixel units; finite-sample at confidence 1-η = {1 - cert.eta:g}):")
    print("  " + "certificate".ljust(width) + "".join(h.rjust(11) for h in header))
    for lbl, radii in rows:
        print("  " + lbl.ljust(width) + "".join(("–" if math.isnan(r) else _fmt_radius(r)).rjust(11) for r in radii))


def _write_csv(path: str, table: list[dict]) -> None:
    with open(path, "w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(table[0].keys()) if table else ["certificate"])
        writer.writeheader()
        for row in table:
            writer.writerow({key: ("inf" if isinstance(v, float) and math.isinf(v) else v) for key, v in row.items()})
    print(f"wrote {path}")


def cmd_certify(args) -> int:
    from ..figures import overlay_png
    from ..workflows import certify as W

    started = time.perf_counter()
    model, image, x, target, top5 = _prepare(args)
    _print_prediction(model, top5, target)
    settings, cert = map_settings(args, "rrs"), certify_settings(args)
    try:  # the workflow's plan: one checkpoint at T (a T/8 selection batch first with --scheme selection)
        plan = W.plan_run(settings.samples, cert.scheme, anytime=False)
    except ValueError as e:
        raise CliError(f"{e}; use --samples ≥ {W.SELECTION_MIN}") from None
    t0 = time.perf_counter()
    with _progress(args, args.samples, "RRS samples") as bar:
        for sampled in W.sample_run(model, x, settings, cert, plan=plan, target=target,
                                    batch_size=args.batch_size, progress=bar):
            pass
    stats = sampled.pooled()
    m = torch.as_tensor(stats.mean, dtype=torch.float32).reshape(sampled.grid)
    smooth_s = time.perf_counter() - t0
    n = m.numel()
    k = sampled.k
    t1 = time.perf_counter()
    report = W.certify_checkpoint(sampled, cert, bound_method=args.bound_method)
    certify_s = time.perf_counter() - t1
    print(f"RRS over {_name(settings.base)}: {_grid_summary(m)}, k = {k}, T = {settings.samples}, "
          f"{_noise_text(settings)}; map {smooth_s:.2f} s, certificates {certify_s:.2f} s")
    _print_certificates(report, cert)
    cells = report.cells_finite if args.region == "finite" else report.cells_plugin
    region = cells.region(args.radius)
    other = report.cells_plugin if args.region == "finite" else report.cells_finite
    print(f"certified region at L = {args.radius:g}: {int(region.sum())} of {k} top-k cells "
          f"({args.region}); {int(other.region(args.radius).sum())} with the "
          f"{'plug-in' if args.region == 'finite' else 'finite-sample'} radii")
    finite_best = max([c.radius for c in report.rdp_finite + report.cdf_finite] or [0.0])
    if finite_best <= 0:
        print("note: the finite-sample certificates are vacuous (radius 0) at this T; more samples "
              "(--samples), coarser cells (--cell) or another σ would help")
    if args.out:
        shape = tuple(m.shape)
        top = np.zeros(n, dtype=bool)
        top[np.asarray(cells.selected)] = True
        title = f"certified top-{k} at {cert.norm.label} radius {args.radius:g} — {image.name}"
        png = overlay_png(x, m, title=title, opacity=args.opacity, topk_mask=top.reshape(shape),
                          certified_mask=np.asarray(region).reshape(shape), cell=settings.cell,
                          caption=(f"Blue = certified to stay in the top-{k} for any {cert.norm.label} change "
                                   + (f"< {args.radius:g}" if args.radius > 0 else "up to its own positive radius")
                                   + f" ({args.region}); orange = not certified."))
        _write_png(args.out, png)
    table = report.rows()
    if args.csv:
        _write_csv(args.csv, table)
    if args.json:
        record = _record(args, "certify", started, model, image, settings, certify_settings=cert,
                         target={"id": target, "name": model.categories[target]},
                         prediction=[{"id": i, "name": nm, "p": p} for i, nm, p in top5],
                         grid=list(m.shape), cells=n, k=k, samples=stats.samples, scoring_vector=sampled.scoring,
                         smoothing_elapsed_s=smooth_s, certify_elapsed_s=certify_s,
                         certificates=table, selected=np.asarray(report.selected),
                         cell_radii={"plugin": np.asarray(report.cells_plugin.radii),
                                     "finite": np.asarray(report.cells_finite.radii)},
                         region={"radius": args.radius, "kind": args.region, "cells": np.flatnonzero(region)},
                         map=m)
        _write_json(args.json, record)
    return 0


# ------------------------------------------------------------------------------ attack

def _target_box_map(box: str, shape: tuple[int, int], size: int) -> torch.Tensor:
    try:
        x0, y0, x1, y1 = (float(v) for v in box.split(","))
    except ValueError:
        raise CliError(f"--target-box must be x0,y0,x1,y1 in pixels of the {size}×{size} model input, "
                       f"got {box!r}") from None
    if not (0 <= x0 < x1 <= size and 0 <= y0 < y1 <= size):
        raise CliError(f"--target-box {box!r} must lie inside the {size}×{size} model input with x0 < x1, y0 < y1")
    rows, cols = shape
    ys = (torch.arange(rows) + 0.5) * size / rows
    xs = (torch.arange(cols) + 0.5) * size / cols
    mask = ((ys[:, None] >= y0) & (ys[:, None] < y1) & (xs[None] >= x0) & (xs[None] < x1)).float()
    if mask.sum() == 0:
        raise CliError(f"--target-box {box!r} covers no cell centre; make it larger")
    return mask / mask.sum()


def _attack_one(args, model, x, target, settings: MapSettings, att: AttackSettings):
    from ..attacks import attack

    target_map = None
    if att.objective == "targeted":
        if not args.target_box:
            raise CliError("--objective targeted needs --target-box x0,y0,x1,y1 (the region to pull the map to)")
        grid = _map_for(args, model, x, target, settings.replace(method=settings.attribution))[0]
        target_map = _target_box_map(args.target_box, tuple(grid.shape), model.input_size)
    with _progress(args, att.steps * att.restarts, f"attack {settings.method}") as bar:
        return attack(model, x, settings, att, target=target, target_map=target_map, progress=bar,
                      batch_size=args.batch_size)


def _print_attack_table(model, att: AttackSettings, results: dict, eps_text: str) -> None:
    smoothed = any(r.map_settings.smoothed for r in results.values())
    print(f"top-k attack ({att.objective}, {att.norm.label} ε = {eps_text}, {att.steps} steps"
          + (f", EOT {att.eot}" if smoothed else "") + "):")
    print(f"  {'method':<24}{'k':>6}{'floor':>7}{'attacked':>10}{'spearman':>10}{'kendall':>9}  label")
    for method, r in results.items():
        kept = "kept" if r.label_preserved else "CHANGED"
        print(f"  {_name(method):<24}{r.k:>6}{r.floor.topk_intersection:>7.3f}{r.topk_intersection:>10.3f}"
              f"{r.spearman:>10.3f}{r.kendall:>9.3f}  {kept} ({_label(model, r.clean_label)} "
              f"{r.clean_confidence:.2f} → {_label(model, r.adv_label)} {r.adv_confidence:.2f}); "
              f"ℓ2 {r.l2:.3g}, ℓ∞ {r.linf * 255:.2f}/255; {r.elapsed:.1f} s")
        if r.message:
            print(f"    note: {' '.join(str(r.message).split())}")
    print("floor = tie-aware top-k intersection between two clean runs (noise seeds s and s+1; 1 for "
          "deterministic methods); attacked = clean map (seed s) vs attacked map (seed s+1)")


def cmd_attack(args) -> int:
    from ..figures import attack_png

    started = time.perf_counter()
    model, image, x, target, top5 = _prepare(args)
    _print_prediction(model, top5, target)
    att = attack_settings(args)
    results = {m: _attack_one(args, model, x, target, map_settings(args, m), att) for m in args.methods}
    _print_attack_table(model, att, results, args.epsilon_text)
    if args.out:
        lab = {m: METHODS[m].label for m in results}
        png = attack_png(x, {lab[m]: r.x_adv.reshape(x.shape) for m, r in results.items()},
                         {lab[m]: r.clean_map for m, r in results.items()},
                         {lab[m]: r.attacked_map for m, r in results.items()},
                         k={lab[m]: r.k for m, r in results.items()}, normalize="max",
                         metrics={lab[m]: f"top-{r.k} ∩ {r.topk_intersection:.2f} (floor {r.floor.topk_intersection:.2f})"
                                  for m, r in results.items()},
                         cell={lab[m]: _fig_cell(r.map_settings) for m, r in results.items()},
                         title=f"{att.objective} attack, {att.norm.label} ε = {args.epsilon_text} — {image.name}")
        _write_png(args.out, png)
    if args.json:
        per_method = {m: {
            "settings": r.map_settings, "k": r.k, "topk_intersection": r.topk_intersection,
            "no_attack_floor": r.floor.topk_intersection, "floor_seeds": list(r.floor.seeds),
            "spearman": r.spearman, "kendall": r.kendall, "l2": r.l2, "linf": r.linf,
            "clean_label": int(r.clean_label), "adv_label": int(r.adv_label),
            "clean_confidence": r.clean_confidence, "adv_confidence": r.adv_confidence,
            "label_preserved": bool(r.label_preserved), "message": r.message, "history": list(r.history),
            "elapsed_s": r.elapsed, "accepted_steps": r.accepted_steps, "rejected_steps": r.rejected_steps,
            "clean_map": r.clean_map, "attacked_map": r.attacked_map} for m, r in results.items()}
        record = _record(args, "attack", started, model, image, map_settings(args, args.methods[0]),
                         attack_settings=att, epsilon_text=args.epsilon_text,
                         target={"id": target, "name": model.categories[target]},
                         prediction=[{"id": i, "name": nm, "p": p} for i, nm, p in top5], results=per_method)
        _write_json(args.json, record)
    return 0


def _label(model, idx) -> str:
    idx = int(idx)
    return model.categories[idx] if 0 <= idx < len(model.categories) else str(idx)


# ------------------------------------------------------------------------ small commands

def cmd_samples(args) -> int:
    from ..images import list_samples

    for name, path in list_samples():
        print(f"{name:<12} {path}")
    return 0


def cmd_models(args) -> int:
    from ..models import available_models

    for name, ok, message in available_models():
        print(f"{name:<24} {'available' if ok else 'not available'}" + (f" — {message}" if message else ""))
    return 0


# ------------------------------------------------------------------------------ parser

def _common(p: argparse.ArgumentParser, default_cell: int, default_samples: int) -> None:
    p.add_argument("image", help="image file (PNG, JPEG, …) or a bundled sample name (see `python -m rrs samples`)")
    p.add_argument("--model", default="efficientnet-lite0",
                   help="model name (default efficientnet-lite0; see `python -m rrs models`) or a weight file with --arch")
    p.add_argument("--arch", default=None, help="architecture of a weight file given as --model (e.g. resnet18)")
    p.add_argument("--device", default="auto", help="torch device: auto (GPU if present), cpu, cuda, cuda:1 …")
    p.add_argument("--seed", type=int, default=0, help="random seed of the noise (default 0)")
    p.add_argument("--target", type=int, default=None, help="class id to explain (default: the predicted class)")
    p.add_argument("--base", choices=RAW_METHODS, default="vanilla",
                   help="base attribution smoothed by smoothgrad/sparsified/rrs (default vanilla)")
    p.add_argument("--noise", choices=NOISE_FAMILIES, default="gaussian", help="noise distribution (default gaussian)")
    p.add_argument("--sigma", type=_positive_float, default=0.15,
                   help="noise standard deviation per pixel value, in pixel units, for every noise family "
                        "(Laplace: scale b = σ/√2); default 0.15")
    p.add_argument("--precision", choices=("fp32", "bf16"), default="fp32",
                   help="fp32 (default) or bf16 autocast for the noisy attributions (faster on AMX CPUs/GPUs; "
                        "certificates then hold for the bf16 map)")
    p.add_argument("--samples", "-T", type=_positive_int, default=default_samples,
                   help=f"noise samples T for smoothed maps (default {default_samples})")
    p.add_argument("--batch-size", type=_positive_int, default=16, help="noisy inputs per forward pass (result-neutral; default 16)")
    p.add_argument("--cell", type=_positive_int, default=default_cell,
                   help=f"cell size in pixels (Grad-CAM: in feature cells); default {default_cell}")
    p.add_argument("--reduction", choices=REDUCTIONS, default="sum", help="how a cell sums its pixels (default sum)")
    p.add_argument("--scoring", choices=SCORING_FAMILIES, default="topk", help="RRS scoring family (default topk)")
    p.add_argument("--scoring-param", type=_positive_float, default=None,
                   help="scoring parameter: k' for topk/linear, decay length τ for exponential (each a count, "
                        "or a fraction of the cells < 1; defaults 0.1, 0.1, 0.05), γ for power (default 1)")
    p.add_argument("--tau", type=_positive_float, default=0.1, help="Sparsified SmoothGrad keep fraction τ (default 0.1)")
    p.add_argument("--phi", type=_positive_float, default=0.01, help="Sparsified SmoothGrad clip fraction φ (default 0.01)")
    p.add_argument("--k", type=_count_or_fraction, default=None,
                   help="top-k size: a count, or a fraction of the cells < 1 (default 0.05)")
    p.add_argument("--opacity", type=float, default=0.5, help="heatmap opacity in the PNG (default 0.5)")
    p.add_argument("--out", default=None, help="write the figure to this PNG file")
    p.add_argument("--json", default=None, help="write the numbers and exact settings to this JSON file")
    p.add_argument("--quiet", "-q", action="store_true", help="no progress bars")
    p.add_argument("--debug", action="store_true", help="show the full traceback on errors")


def build_parser() -> argparse.ArgumentParser:
    """The ``python -m rrs`` argument parser with every subcommand."""
    parser = _Parser(prog="python -m rrs",
                     description="Robust, certifiable interpretation maps (Rényi-Robust-Smooth): explain, "
                                 "certify, attack and evaluate from the command line.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    p = sub.add_parser("explain", help="compute an interpretation map of one image (PNG + JSON)",
                       description="Compute a raw or smoothed interpretation map of one image and write it "
                                   "as a PNG figure and/or JSON (with the exact settings).")
    _common(p, default_cell=1, default_samples=16)
    p.add_argument("--method", choices=EXPLAIN_METHODS, default="rrs", help="interpretation method (default rrs)")
    p.add_argument("--normalize", action="store_true", help="SmoothGrad: scale each noisy map to max 1")
    p.add_argument("--no-compare", action="store_true", help="smoothed methods: draw only the smoothed map, not raw vs smoothed")
    p.set_defaults(func=cmd_explain)

    p = sub.add_parser("certify", help="certified top-k radii of an RRS map and the certified region",
                       description="Compute an RRS map and its certified top-k radii per β: the exact RDP "
                                   "certificate and the Gaussian-CDF certificate (plug-in and finite-sample with "
                                   "confidence 1-η), and the equal-level form for comparison (not a certificate "
                                   "for β<1). Draws the cells certified at --radius.")
    _common(p, default_cell=16, default_samples=128)
    p.add_argument("--betas", type=_betas, default=(1.0, 0.9, 0.8, 0.7, 0.6, 0.5),
                   help="overlap levels β, comma-separated (default 1,0.9,0.8,0.7,0.6,0.5)")
    p.add_argument("--norm", type=parse_norm, default=Norm(2.0), help="threat model ℓ_d: 1, 2, inf or any number ≥ 1 (default 2)")
    p.add_argument("--eta", type=_probability, default=0.05,
                   help="finite-sample failure probability η in (0, 1) (default 0.05)")
    p.add_argument("--scheme", choices=SCHEMES, default="bonferroni",
                   help="finite-sample scheme: bonferroni (default; intervals for every cell from all T samples) or "
                        "selection (a first batch of T/8 fixes the top-k set, one-sided intervals on the rest; "
                        "usually larger radii, method.md §5)")
    p.add_argument("--bound-method", default="auto", help="per-cell confidence bounds: auto (default), "
                   "clopper-pearson, hoeffding or bernstein (see rrs.certify.probability_bounds)")
    p.add_argument("--radius", type=float, default=0.0,
                   help="draw the cells certified at this radius (pixel units; default 0: any positive radius)")
    p.add_argument("--region", choices=("finite", "plugin"), default="finite",
                   help="per-cell radii used for the drawn region (default finite: holds with prob. ≥ 1-η)")
    p.add_argument("--csv", default=None, help="write the table of radii to this CSV file")
    p.set_defaults(func=cmd_certify, normalize=False)

    p = sub.add_parser("attack", help="attack interpretation maps (Ghorbani et al.) and compare methods",
                       description="Search a perturbation inside the budget that keeps the label but moves the "
                                   "map, for each method; print top-k intersections with the no-attack floor "
                                   "and write a side-by-side PNG and JSON.")
    _common(p, default_cell=1, default_samples=16)
    p.add_argument("--methods", type=_method_list, default=("vanilla", "rrs"),
                   help="comma-separated methods to attack (default vanilla,rrs; any of "
                        + ", ".join(EXPLAIN_METHODS) + ")")
    p.add_argument("--objective", default="topk", choices=tuple(OBJECTIVES),
                   help="attack objective: topk (default), mass_center or targeted (with --target-box)")
    p.add_argument("--norm", default="linf", help="threat model: linf (default) or l2")
    p.add_argument("--epsilon", default="8/255", help="budget in pixel units, e.g. 8/255 for linf or 2 for l2 (default 8/255)")
    p.add_argument("--steps", type=_positive_int, default=10, help="PGD steps (default 10)")
    p.add_argument("--step-size", type=_positive_float, default=None, help="PGD step size (default: set by the attack)")
    p.add_argument("--eot-samples", type=_positive_int, default=4, help="noise samples per step for smoothed methods (default 4)")
    p.add_argument("--random-start", action="store_true", help="start from a random point in the budget")
    p.add_argument("--surrogate-beta", type=_positive_float, default=10.0,
                   help="softplus β of the surrogate model used for second-order gradients (default 10)")
    p.add_argument("--target-box", default=None, help="targeted objective: region x0,y0,x1,y1 in model-input pixels")
    p.add_argument("--restarts", type=_positive_int, default=1, help="independent attack runs, the best kept (default 1)")
    p.add_argument("--work-size", type=_positive_int, default=None,
                   help="compute the attack's surrogate maps at this lower side length (faster; default full size)")
    p.set_defaults(func=cmd_attack, normalize=False)

    p = sub.add_parser("samples", help="list the bundled sample images", description="List the bundled sample images.")
    p.set_defaults(func=cmd_samples)
    p = sub.add_parser("models", help="list the models and whether they are available",
                       description="List the registered models and whether their weights are available here.")
    p.set_defaults(func=cmd_models)

    _register_robustness(sub)

    from ..study.cli import register_cli

    register_cli(sub)
    return parser


# ========================================================================= robustness
# ``python -m rrs robustness``: the robustness profile of rrs.workflows.robustness (issue 15).

def _register_robustness(sub) -> None:
    p = sub.add_parser("robustness", help="break radius of attacked maps next to the certified radius",
                       description="Attack each method's top-k cells along a geometric sweep of budgets "
                                   "(warm-started), find the smallest budget that pushes a top-k cell out "
                                   "(refined by bisection; smoothed maps: confirmed with more samples), and "
                                   "put the finite-sample certified radius of smoothed maps on the same axis. "
                                   "Defaults are the Certify page's: 32-px cells, top 10%%, σ = 0.25, T = 1024.")
    _common(p, default_cell=32, default_samples=1024)
    p.add_argument("--methods", type=_method_list, default=("vanilla", "smoothgrad", "rrs"),
                   help="comma-separated methods (default vanilla,smoothgrad,rrs)")
    p.add_argument("--norm", type=parse_norm, default=Norm(2.0), help="threat model: 2 (default) or inf")
    p.add_argument("--low", type=parse_epsilon, default=None, help="smallest budget (default 0.01 for ℓ2, 0.1/255 for ℓ∞)")
    p.add_argument("--high", type=parse_epsilon, default=None, help="largest budget (default 2 for ℓ2, 8/255 for ℓ∞)")
    p.add_argument("--budgets", type=_positive_int, default=8, help="budgets in the geometric sweep (default 8)")
    p.add_argument("--steps", type=_positive_int, default=10, help="PGD steps per budget (default 10)")
    p.add_argument("--eot-samples", type=_positive_int, default=2, help="noise samples per step for smoothed maps (default 2)")
    p.add_argument("--bisection", type=int, default=3, help="bisection steps below the first broken budget (default 3)")
    p.add_argument("--sweep-samples", type=_positive_int, default=64,
                   help="T of a smoothed map measured along the sweep (default 64)")
    p.add_argument("--confirm-samples", type=_positive_int, default=256,
                   help="T of the confirmation of a smoothed map's break, fresh seed (default 256)")
    p.add_argument("--eta", type=_probability, default=0.05, help="finite-sample failure probability η (default 0.05)")
    p.add_argument("--scheme", choices=("bonferroni", "selection"), default="selection",
                   help="finite-sample scheme of the certificates (default selection, as on the Certify page)")
    p.set_defaults(func=cmd_robustness, normalize=False, sigma=0.25, method="vanilla")


def robustness_settings(args):
    from ..workflows.robustness import RobustnessSettings

    if args.bisection < 0:
        raise CliError(f"--bisection must be ≥ 0, got {args.bisection}")
    return RobustnessSettings(norm=args.norm, low=args.low, high=args.high, budgets=args.budgets, steps=args.steps,
                              eot=args.eot_samples, bisection=args.bisection, sweep_samples=args.sweep_samples,
                              confirm_samples=args.confirm_samples, seed=args.seed)


def _radius_cell(r) -> str:
    return "–" if r is None else _fmt_radius(r)


def cmd_robustness(args) -> int:
    from ..compute.policy import calibrate
    from ..timing import format_seconds
    from ..workflows.robustness import method_settings, predicted_gradients, robustness_profile

    started = time.perf_counter()
    if args.k is None:
        args.k = 0.1
    rs = robustness_settings(args)
    cert = CertifySettings(norm=args.norm, eta=args.eta, betas=(1.0,), scheme=args.scheme)
    model, image, x, target, top5 = _prepare(args)
    _print_prediction(model, top5, target)
    methods = method_settings(map_settings(args, args.methods[0]), args.methods)
    units = predicted_gradients(methods, rs)
    if not args.quiet:
        rate = calibrate(model, x, methods[0].replace(samples=4))
        print(f"robustness profile: {len(methods)} method(s), {rs.budgets} budgets {rs.norm.label} "
              f"{rs.grid[0]:.3g}…{rs.grid[-1]:.3g}; predicted {format_seconds(units / rate)} "
              f"(≈ {units:.0f} gradients)", file=sys.stderr)
    with _progress(args, 1, "robustness") as bar:
        profile = robustness_profile(model, x, methods, rs, cert, target=target, progress=bar,
                                     batch_size=args.batch_size)
    print(f"top-k attack along {rs.norm.label} budgets {rs.grid[0]:.3g}…{rs.grid[-1]:.3g} ({rs.budgets} steps, "
          f"{rs.steps} PGD steps each, warm-started; bisection {rs.bisection}); k = {profile.methods[0].k}:")
    print(f"  {'method':<24}{'break radius':>16}{'certified (set)':>17}{'(best cell)':>13}{'gap':>8}")
    for m in profile.methods:
        brk = f"{m.break_radius:.3g}" if m.broken else f"> {m.held_radius:.3g}"
        gap = m.gap if m.gap is not None else m.cell_gap
        gap_text = "–" if gap is None else f"{gap:.1f}×" + ("" if m.gap is not None else "*")
        print(f"  {_name(m.method):<24}{brk:>16}{_radius_cell(m.certified_radius):>17}"
              f"{_radius_cell(m.certified_cell_radius):>13}{gap_text:>8}")
    print("break radius = smallest budget at which the attack pushed a top-k cell out with the label kept "
          "(\"> B\": not broken up to B); certified = finite-sample radius at confidence "
          f"1-η = {1 - args.eta:g}; gap = break ÷ certified (* ÷ the best-certified cell when the whole set has none)")
    if args.json:
        record = _record(args, "robustness", started, model, image, methods[0], robustness_settings=rs,
                         certify_settings=cert, target={"id": target, "name": model.categories[target]},
                         prediction=[{"id": i, "name": nm, "p": p} for i, nm, p in top5],
                         predicted_gradients=units, profile=profile.to_dict())
        _write_json(args.json, record)
    return 0


# ======================================================================= end robustness


def _finish_args(args) -> None:
    """Checks that need more than one option, and the attack budget's text form."""
    if args.command == "attack":
        args.epsilon_text = str(args.epsilon)
        try:
            args.norm = Norm.parse(args.norm)
            args.epsilon = parse_epsilon(args.epsilon)
        except (ValueError, argparse.ArgumentTypeError) as e:
            raise CliError(f"--norm/--epsilon: {e}") from None
        if args.norm.p not in (2.0, math.inf):
            raise CliError(f"--norm must be linf or l2 for attacks, got {args.epsilon_text and args.norm.key}")
    if args.command == "certify" and (not math.isfinite(args.radius) or args.radius < 0):
        raise CliError(f"--radius must be a finite number ≥ 0, got {args.radius:g}")
    if args.command in ("explain", "certify", "attack") and not (0 <= args.opacity <= 1):
        raise CliError(f"--opacity must be in [0, 1], got {args.opacity:g}")


def main(argv=None) -> int:
    """Run the command line; returns the exit code."""
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    if not argv:
        parser.print_help(sys.stderr)
        return 2
    args = parser.parse_args(argv)
    args.argv = argv
    func = getattr(args, "func", None)
    if func is None:
        parser.print_help(sys.stderr)
        return 2
    debug = getattr(args, "debug", False) or os.environ.get("RRS_DEBUG") == "1"
    prog = f"python -m rrs {args.command}"
    try:
        _finish_args(args)
        return int(func(args) or 0)
    except KeyboardInterrupt:
        print(f"{prog}: interrupted", file=sys.stderr)
        return 130
    except (ValueError, OSError) as exc:  # ImageError, ModelError, CliError and rrs's ValueErrors
        if debug:
            raise
        print(f"{prog}: error: {_one_line(exc)}", file=sys.stderr)
        return 2
    except Exception as exc:  # noqa: BLE001 — never a traceback for the user; --debug shows it
        if debug:
            raise
        print(f"{prog}: error: unexpected {type(exc).__name__}: {_one_line(exc)} "
              "(run again with --debug for details)", file=sys.stderr)
        return 1


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    if isinstance(exc, OSError) and getattr(exc, "filename", None) and str(exc.filename) not in text:
        text += f": {exc.filename}"
    return text
