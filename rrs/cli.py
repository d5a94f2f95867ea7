"""Command line: ``python -m rrs explain|certify|attack|evaluate …``.

* ``explain`` — an interpretation map (raw attribution, SmoothGrad, Sparsified SmoothGrad or
  Rényi-Robust-Smooth, Liu et al. 2022) of one image, as PNG and JSON.
* ``certify`` — an RRS map with its certified top-k radii per β (exact RDP, Gaussian-CDF,
  plug-in and finite-sample; the equal-level form for comparison) and the certified region.
* ``attack`` — the interpretation attack of Ghorbani et al. 2019 against chosen methods
  (``rrs.attacks``), with the no-attack floor next to every attacked number.
* ``evaluate`` — the evaluation study, registered by ``rrs.evaluate.register_cli``.

Every JSON output records the exact settings, seed, device and elapsed time, so a result
can be recomputed. Errors are one line on stderr with a non-zero exit code (2 for bad
input, 1 for an unexpected failure, 130 when interrupted); ``--debug`` or ``RRS_DEBUG=1``
shows the traceback instead.
"""
from __future__ import annotations

import argparse
import csv
import inspect
import json
import math
import os
import platform
import re
import sys
import time
from contextlib import contextmanager
from fractions import Fraction
from pathlib import Path

import numpy as np
import torch

__all__ = ["main", "build_parser", "resolve_model", "resolve_image", "parse_epsilon",
           "parse_norm", "EXPLAIN_METHODS"]

RAW_METHODS = ("vanilla", "input_x_gradient", "integrated_gradients", "gradcam")
SMOOTH_METHODS = ("smoothgrad", "sparsified", "rrs")
EXPLAIN_METHODS = RAW_METHODS + SMOOTH_METHODS
SCORING_FAMILIES = ("topk", "exponential", "linear", "power")
METHOD_LABELS = {"vanilla": "vanilla gradient", "input_x_gradient": "input × gradient",
                 "integrated_gradients": "integrated gradients", "gradcam": "Grad-CAM",
                 "smoothgrad": "SmoothGrad", "sparsified": "Sparsified SmoothGrad", "rrs": "RRS"}


class CliError(ValueError):
    """A bad command-line value, reported as one line."""


class _Parser(argparse.ArgumentParser):
    """argparse with one-line errors (the usage is one ``--help`` away)."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


# --------------------------------------------------------------------- value parsers

def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be an integer ≥ 1, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be an integer ≥ 1, got {value}")
    return value


def _positive_float(text: str) -> float:
    try:
        value = float(Fraction(text)) if "/" in text else float(text)
    except (ValueError, ZeroDivisionError):
        raise argparse.ArgumentTypeError(f"must be a number > 0, got {text!r}") from None
    if not math.isfinite(value) or value <= 0:
        raise argparse.ArgumentTypeError(f"must be a finite number > 0, got {text!r}")
    return value


def _count_or_fraction(text: str) -> float:
    """``k``-like values: an integer count ≥ 1, or a fraction in (0, 1) of the cells."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a count ≥ 1 or a fraction in (0, 1), got {text!r}") from None
    if not math.isfinite(value) or value <= 0 or (value >= 1 and not value.is_integer()):
        raise argparse.ArgumentTypeError(f"must be a count ≥ 1 or a fraction in (0, 1), got {text!r}")
    return value


def parse_epsilon(text: str) -> float:
    """A budget like ``8/255``, ``0.03`` or ``2``; must be a finite number > 0."""
    return _positive_float(str(text).strip())


def parse_norm(text) -> float:
    """``1``, ``2``, ``inf`` (or ``linf``/``l2``/``l1``) or any number ≥ 1."""
    t = str(text).strip().lower()
    t = t[1:] if t.startswith("l") and t not in ("l",) else t
    if t in ("inf", "infinity", "∞"):
        return math.inf
    try:
        d = float(t)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be 1, 2, inf or a number ≥ 1, got {text!r}") from None
    if math.isnan(d) or d < 1:
        raise argparse.ArgumentTypeError(f"must be ≥ 1 (1, 2, inf or a number ≥ 1), got {text!r}")
    return d


def _betas(text: str) -> tuple[float, ...]:
    try:
        values = tuple(float(b) for b in str(text).replace(" ", "").split(",") if b)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be comma-separated numbers in (0, 1], got {text!r}") from None
    if not values or any(not (0 < b <= 1) for b in values):
        raise argparse.ArgumentTypeError(f"every β must be in (0, 1], got {text!r}")
    return values


def _method_list(text: str) -> tuple[str, ...]:
    names = tuple(m for m in str(text).replace(" ", "").split(",") if m)
    bad = [m for m in names if m not in EXPLAIN_METHODS]
    if not names or bad:
        raise argparse.ArgumentTypeError(f"unknown method {', '.join(bad) or text!r}; choose from "
                                         f"{', '.join(EXPLAIN_METHODS)}")
    return names


def _resolve_count(value: float | None, n: int, default_fraction: float, name: str,
                   upper: int | None = None) -> int:
    """A count ``≥ 1`` from an explicit count or a fraction of ``n`` cells."""
    if n < 2:
        raise CliError(f"the map has only {n} cell; use a smaller --cell (Grad-CAM cells are feature-map cells)")
    upper = n if upper is None else upper
    k = max(1, math.ceil(default_fraction * n)) if value is None else (
        int(value) if value >= 1 else max(1, math.ceil(value * n)))
    if not 1 <= k <= upper:
        raise CliError(f"{name} = {k} is out of range: the map has {n} cells, so {name} must be in 1..{upper}")
    return k


# -------------------------------------------------------------------- model and image

def resolve_model(name: str, device=None, arch: str | None = None):
    """The classifier called ``name``: the model registry's ``load_model`` when present,
    a user weight file (with ``arch``) via ``load_user_model``, else the offline default."""
    from . import models

    if name and Path(name).is_file():
        loader = getattr(models, "load_user_model", None)
        if loader is None:
            raise CliError("loading your own model file needs rrs.models.load_user_model, which this "
                           "version does not have")
        if not arch:
            raise CliError(f"{name} is a weight file: say which architecture it is with --arch "
                           "(e.g. --arch resnet18)")
        return loader(name, arch, device=device)
    load_model = getattr(models, "load_model", None)
    if load_model is not None:
        return load_model(name, device=device)
    if name in (models.DEFAULT_MODEL, "default"):
        return models.load_default(device)
    if name == "tiny" and hasattr(models, "load_tiny"):
        return models.load_tiny(device=device)
    raise CliError(f"unknown model {name!r}; this version has only {models.DEFAULT_MODEL}")


def resolve_image(spec: str):
    """An image file path, or the name of a bundled sample (e.g. ``coffee``)."""
    from .images import ImageError, list_samples, load_image, load_sample

    path = Path(spec)
    if path.exists():
        return load_image(path)
    names = [n for n, _ in list_samples()]
    if spec.lower() in names or path.stem.lower() in names and not path.parent.parts:
        return load_sample(spec)
    raise ImageError(f"No file at {spec} and no sample image of that name; samples: {', '.join(names)}.")


def _device_of(model) -> torch.device:
    try:
        return next(model.parameters()).device
    except StopIteration:
        return torch.device("cpu")


def _generator(seed: int, device: torch.device) -> torch.Generator:
    return torch.Generator(device=device).manual_seed(int(seed))


def _noise(args):
    from .noise import Gaussian, Laplace

    return Gaussian(args.sigma) if args.noise == "gaussian" else Laplace(args.sigma)


def _scoring(args):
    """The RRS scoring vector as a callable ``n -> v`` (``None``: the library default)."""
    from .scoring import make_scoring

    family, param = args.scoring, args.scoring_param
    if family == "topk" and param is None:
        return None  # rrs.smoothing.default_scoring: top-k' uniform with k' = ⌈n/10⌉

    def build(n: int):
        if family in ("topk", "linear"):
            count = _resolve_count(param, n, 0.1, "--scoring-param (k')")
            return make_scoring(family, n, count)
        default = {"exponential": n / 10, "power": 1.0}[family]
        return make_scoring(family, n, default if param is None else float(param))
    return build


def _scoring_setting(args, n: int) -> dict:
    """What the scoring vector was, resolved for ``n`` cells (for the JSON record)."""
    if args.scoring in ("topk", "linear"):
        return {"family": args.scoring, "k_prime": _resolve_count(args.scoring_param, n, 0.1, "k'")}
    default = {"exponential": n / 10, "power": 1.0}[args.scoring]
    return {"family": args.scoring, "param": default if args.scoring_param is None else float(args.scoring_param)}


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


def _settings(args) -> dict:
    """The parsed arguments as JSON-safe values (infinite norms as the string 'inf')."""
    out = {}
    for key, value in sorted(vars(args).items()):
        if key in ("func", "handler", "argv") or callable(value):
            continue
        if isinstance(value, float) and math.isinf(value):
            value = "inf"
        elif isinstance(value, tuple):
            value = list(value)
        out[key] = value
    return out


def _json_safe(obj):
    if isinstance(obj, dict):
        return {str(k): _json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_json_safe(v) for v in obj]
    if isinstance(obj, torch.Tensor):
        return _json_safe(obj.detach().cpu().tolist())
    if isinstance(obj, np.ndarray):
        return _json_safe(obj.tolist())
    if isinstance(obj, (np.floating, float)):
        v = float(obj)
        return v if math.isfinite(v) else ("inf" if v > 0 else "-inf" if v < 0 else "nan")
    if isinstance(obj, (np.integer,)):
        return int(obj)
    if isinstance(obj, (np.bool_,)):
        return bool(obj)
    if isinstance(obj, Path):
        return str(obj)
    return obj


def _record(args, command: str, started: float, model, image, **fields) -> dict:
    from . import __version__

    rec = {"command": command, "rrs_version": __version__,
           "argv": ["python", "-m", "rrs", *args.argv],
           "settings": _settings(args), "seed": args.seed, "device": str(_device_of(model)),
           "model": getattr(model, "name", type(model).__name__),
           "input_size": getattr(model, "input_size", None),
           "image": {"name": image.name, "source": args.image, **image.info.as_dict()},
           "torch": torch.__version__, "python": platform.python_version(),
           "platform": platform.platform(), "elapsed_s": None}
    rec.update(fields)
    rec["elapsed_s"] = time.perf_counter() - started
    return _json_safe(rec)


_NUMBER_LIST = re.compile(r"\[\s*((?:-?[0-9][0-9.eE+-]*|\"-?inf\"|\"nan\"|true|false|null)"
                          r"(?:,\s*(?:-?[0-9][0-9.eE+-]*|\"-?inf\"|\"nan\"|true|false|null))*)\s*\]")


def _dumps(record: dict) -> str:
    """Indented JSON with lists of numbers kept on one line (a map is one line per row)."""
    text = json.dumps(record, indent=1, ensure_ascii=False)
    return _NUMBER_LIST.sub(lambda mo: "[" + ", ".join(v.strip() for v in mo.group(1).split(",")) + "]", text)


def _write_json(path: str, record: dict) -> None:
    Path(path).write_text(_dumps(record) + "\n", encoding="utf-8")
    print(f"wrote {path}")


def _write_png(path: str, png: bytes) -> None:
    Path(path).write_bytes(png)
    print(f"wrote {path}")


def _prepare(args):
    """Model, image, model-input tensor, device, target class and prediction."""
    from .images import to_tensor
    from .models import predict_topk

    device = None if args.device in (None, "auto") else args.device
    try:
        torch.device(device) if device is not None else None
    except RuntimeError:
        raise CliError(f"unknown device {args.device!r}; use cpu, cuda, cuda:0 or auto") from None
    if device is not None and torch.device(device).type == "cuda" and not torch.cuda.is_available():
        raise CliError("--device cuda was asked for but no GPU is available here; use --device cpu")
    image = resolve_image(args.image)  # a bad image fails before the model is loaded
    model = resolve_model(args.model, device, getattr(args, "arch", None))
    _precheck_k(args, model.input_size)
    x = to_tensor(image, model.input_size).to(_device_of(model))
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
    from .attributions import cell_grid

    bases = {args.method} if getattr(args, "method", None) in RAW_METHODS else {getattr(args, "base", "vanilla")}
    if getattr(args, "methods", None):
        bases = {m if m in RAW_METHODS else args.base for m in args.methods}
    if args.k is None or "gradcam" in bases:
        return
    rows, cols = cell_grid(size, size, args.cell)
    _resolve_count(args.k, rows * cols, 0.05, "k", upper=rows * cols - 1)


def _print_prediction(model, top5, target) -> None:
    best = top5[0]
    print(f"prediction: {best[1]} (class {best[0]}, p = {best[2]:.3f}); next: "
          + ", ".join(f"{name} {p:.3f}" for _, name, p in top5[1:]))
    if target != best[0]:
        print(f"explaining class {target} ({model.categories[target]}) instead of the prediction")


def _fig_cell(base: str, cell: int):
    # Grad-CAM cells are the feature-map grid, stretched over the image; pixel-based maps use
    # exact cell boundaries.
    return None if base == "gradcam" else cell


def _map_for(args, model, x, target, method, base, progress=None, seed_offset: int = 0):
    """(map (rows, cols) tensor, SmoothResult or None) for one method."""
    from .smoothing import raw_map, smooth

    if method in RAW_METHODS:
        return raw_map(model, x, target, base=method, cell=args.cell, reduction=args.reduction)[0].cpu(), None
    res = smooth(model, x, target, method=method, base=base, noise=_noise(args), samples=args.samples,
                 batch_size=args.batch_size, cell=args.cell, reduction=args.reduction,
                 scoring=_scoring(args), tau=args.tau, phi=args.phi, normalize=args.normalize,
                 generator=_generator(args.seed + seed_offset, _device_of(model)), progress=progress)
    return res.map[0].cpu(), res


def _grid_summary(m: torch.Tensor) -> str:
    rows, cols = m.shape
    return f"{rows}×{cols} = {rows * cols} cells"


# ----------------------------------------------------------------------------- explain

def cmd_explain(args) -> int:
    from .figures import comparison_png, overlay_png, topk_mask
    from .metrics import topk_indices

    started = time.perf_counter()
    model, image, x, target, top5 = _prepare(args)
    _print_prediction(model, top5, target)
    method, base = args.method, (args.method if args.method in RAW_METHODS else args.base)
    t0 = time.perf_counter()
    with _progress(args, args.samples, METHOD_LABELS[method]) as bar:
        m, res = _map_for(args, model, x, target, method, base, bar)
    compute_s = time.perf_counter() - t0
    n = m.numel()
    k = _resolve_count(args.k, n, 0.05, "k", upper=n - 1)
    label = METHOD_LABELS[method] + (f" over {METHOD_LABELS[base]}" if method in SMOOTH_METHODS else "")
    print(f"{label}: {_grid_summary(m)}, top-k with k = {k}"
          + (f", T = {args.samples}, {args.noise} σ = {args.sigma:g}" if res is not None else "")
          + f"; {compute_s:.2f} s on {_device_of(model)}")
    raw = None
    if args.out:
        cell = _fig_cell(base, args.cell)
        title = f"{label} — {image.name}: {model.categories[target]}"
        if res is not None and not args.no_compare:
            raw = _map_for(args, model, x, target, base, base)[0]
            png = comparison_png(x, {f"raw {METHOD_LABELS[base]}": raw, METHOD_LABELS[method]: m},
                                 normalize="max", k=k, cell=cell, title=title, opacity=args.opacity,
                                 caption=f"Bright = where the model looked (each map scaled to its max, "
                                         f"shared scale); outlined = top-{k} cells; seed {args.seed}.")
        else:
            png = overlay_png(x, m, title=title, opacity=args.opacity, topk_mask=topk_mask(m, k), cell=cell,
                              caption=f"Bright = where the model looked; outlined = the top-{k} cells.")
        _write_png(args.out, png)
    if args.json:
        extra = {}
        if res is not None:
            extra = {"samples": res.samples, "value_bound": res.value_bound, "smoothing_elapsed_s": res.elapsed,
                     "noise": {"kind": args.noise, "scale": args.sigma}}
            if method == "rrs":
                extra["scoring"] = _scoring_setting(args, n)
        record = _record(args, "explain", started, model, image, method=method, base=base,
                         target={"id": target, "name": model.categories[target]},
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


def cmd_certify(args) -> int:
    from .certify import certify
    from .figures import overlay_png

    started = time.perf_counter()
    model, image, x, target, top5 = _prepare(args)
    _print_prediction(model, top5, target)
    t0 = time.perf_counter()
    with _progress(args, args.samples, "RRS samples") as bar:
        m, res = _map_for(args, model, x, target, "rrs", args.base, bar)
    smooth_s = time.perf_counter() - t0
    n = m.numel()
    k = _resolve_count(args.k, n, 0.05, "k", upper=n - 1)
    t1 = time.perf_counter()
    report = certify(res.stats(0), k, res.noise, betas=args.betas, norm=args.norm, dim=res.dim,
                     eta=args.eta, bound_method=args.bound_method, rrs_map=True, per_cell=True)
    certify_s = time.perf_counter() - t1
    norm_name = "ℓ∞" if math.isinf(args.norm) else f"ℓ{args.norm:g}"
    print(f"RRS over {METHOD_LABELS[args.base]}: {_grid_summary(m)}, k = {k}, T = {args.samples}, "
          f"{args.noise} σ = {args.sigma:g}; map {smooth_s:.2f} s, certificates {certify_s:.2f} s")
    header, rows = _certificate_table(report)
    width = max(len(lbl) for lbl, _ in rows) if rows else 20
    print(f"certified {norm_name} radius (pixel units; finite-sample at confidence 1-η = {1 - args.eta:g}):")
    print("  " + "certificate".ljust(width) + "".join(h.rjust(11) for h in header))
    for lbl, radii in rows:
        print("  " + lbl.ljust(width) + "".join(("–" if math.isnan(r) else _fmt_radius(r)).rjust(11) for r in radii))
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
        title = f"certified top-{k} at {norm_name} radius {args.radius:g} — {image.name}"
        png = overlay_png(x, m, title=title, opacity=args.opacity, topk_mask=top.reshape(shape),
                          certified_mask=np.asarray(region).reshape(shape), cell=args.cell,
                          caption=(f"Blue = certified to stay in the top-{k} for any {norm_name} change "
                                   + (f"< {args.radius:g}" if args.radius > 0 else "up to its own positive radius")
                                   + f" ({args.region}); orange = not certified."))
        _write_png(args.out, png)
    table = report.rows()
    if args.csv:
        with open(args.csv, "w", newline="", encoding="utf-8") as fh:
            writer = csv.DictWriter(fh, fieldnames=list(table[0].keys()) if table else ["certificate"])
            writer.writeheader()
            for row in table:
                writer.writerow({key: ("inf" if isinstance(v, float) and math.isinf(v) else v) for key, v in row.items()})
        print(f"wrote {args.csv}")
    if args.json:
        record = _record(args, "certify", started, model, image, method="rrs", base=args.base,
                         target={"id": target, "name": model.categories[target]},
                         prediction=[{"id": i, "name": nm, "p": p} for i, nm, p in top5],
                         grid=list(m.shape), cells=n, k=k, norm=args.norm, eta=args.eta,
                         scoring=_scoring_setting(args, n), samples=res.samples,
                         noise={"kind": args.noise, "scale": args.sigma},
                         smoothing_elapsed_s=smooth_s, certify_elapsed_s=certify_s,
                         certificates=table, selected=np.asarray(report.selected),
                         cell_radii={"plugin": np.asarray(report.cells_plugin.radii),
                                     "finite": np.asarray(report.cells_finite.radii)},
                         region={"radius": args.radius, "kind": args.region, "cells": np.flatnonzero(region)},
                         map=m)
        _write_json(args.json, record)
    return 0


# ------------------------------------------------------------------------------ attack

def _call_attack(attack, model, x, method, args, k, target_map, progress, generator):
    """Call ``rrs.attacks.attack`` with the options its signature accepts."""
    params = inspect.signature(attack).parameters
    kwargs = dict(method=method, objective=args.objective, norm=args.norm, epsilon=args.epsilon,
                  steps=args.steps, step_size=args.step_size, k=k, cell=args.cell, noise=_noise(args),
                  samples=args.samples, eot_samples=args.eot_samples, random_start=args.random_start,
                  target_map=target_map, scoring=_scoring(args), generator=generator, progress=progress,
                  surrogate_beta=args.surrogate_beta)
    optional = dict(base=args.base, batch_size=args.batch_size, reduction=args.reduction, tau=args.tau,
                    phi=args.phi, target=args.target, eval_seed=args.seed, restarts=args.restarts,
                    work_size=args.work_size)
    accepts_any = any(p.kind is p.VAR_KEYWORD for p in params.values())
    kwargs.update({key: v for key, v in optional.items() if key in params or accepts_any and v is not None})
    return attack(model, x, **kwargs)


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


def cmd_attack(args) -> int:
    try:
        from .attacks import attack
    except ImportError:
        raise CliError("the attack command needs rrs.attacks, which is not installed in this version") from None
    from .figures import attack_png
    from .metrics import topk_intersection

    started = time.perf_counter()
    model, image, x, target, top5 = _prepare(args)
    _print_prediction(model, top5, target)
    device = _device_of(model)
    results, floors, maps_clean, maps_adv, advs, notes = {}, {}, {}, {}, {}, {}
    ks = {}
    for method in args.methods:
        base = method if method in RAW_METHODS else args.base
        target_map = None
        if args.objective == "targeted":
            if not args.target_box:
                raise CliError("--objective targeted needs --target-box x0,y0,x1,y1 (the region to pull the map to)")
            grid_map = _map_for(args, model, x, target, base, base)[0]
            target_map = _target_box_map(args.target_box, tuple(grid_map.shape), model.input_size)
        # k depends on the method's cell grid (Grad-CAM cells are the feature grid)
        n = _cell_count(args, model, x, target, base)
        k = ks[method] = _resolve_count(args.k, n, 0.05, "k", upper=n - 1)
        t0 = time.perf_counter()
        with _progress(args, args.steps, f"attack {method}") as bar:
            r = _call_attack(attack, model, x, method, args, k, target_map, bar,
                             _generator(args.seed, device))
        results[method] = r
        clean_map = torch.as_tensor(r.clean_map).cpu()
        maps_clean[method], maps_adv[method] = clean_map, torch.as_tensor(r.attacked_map).cpu()
        advs[method] = torch.as_tensor(r.x_adv).detach().cpu().reshape(x.shape)
        if method in SMOOTH_METHODS:
            # The no-attack floor: the same method on the clean image with another seed.
            with _progress(args, args.samples, f"floor {method}") as bar:
                again = _map_for(args, model, x, target, method, base, bar, seed_offset=1)[0]
            floors[method] = topk_intersection(clean_map, again, r.k)
        else:
            floors[method] = 1.0  # raw attributions are deterministic
        notes[method] = time.perf_counter() - t0
    eps_text = args.epsilon_text
    norm_name = {"linf": "ℓ∞", "l2": "ℓ2"}[args.norm]
    print(f"top-k attack ({args.objective}, {norm_name} ε = {eps_text}, {args.steps} steps"
          + (f", EOT {args.eot_samples}" if any(m in SMOOTH_METHODS for m in args.methods) else "") + "):")
    head = f"  {'method':<24}{'k':>6}{'floor':>7}{'attacked':>10}{'spearman':>10}{'kendall':>9}  label"
    print(head)
    for method, r in results.items():
        kept = "kept" if r.label_preserved else "CHANGED"
        print(f"  {METHOD_LABELS[method]:<24}{ks[method]:>6}{floors[method]:>7.3f}{r.topk_intersection:>10.3f}"
              f"{r.spearman:>10.3f}{r.kendall:>9.3f}  {kept} ({_label(model, r.clean_label)} "
              f"{r.clean_confidence:.2f} → {_label(model, r.adv_label)} {r.adv_confidence:.2f}); "
              f"ℓ2 {r.l2:.3g}, ℓ∞ {r.linf * 255:.2f}/255; {notes[method]:.1f} s")
        if r.message:
            print(f"    note: {' '.join(str(r.message).split())}")
    print("floor = top-k intersection between two clean runs with different seeds (1 for deterministic "
          "methods); attacked = clean vs attacked map")
    if args.out:
        labels = {m: METHOD_LABELS[m] for m in results}
        png = attack_png(x, {labels[m]: advs[m] for m in results}, {labels[m]: maps_clean[m] for m in results},
                         {labels[m]: maps_adv[m] for m in results},
                         k={labels[m]: ks[m] for m in results}, normalize="max",
                         metrics={labels[m]: f"top-{ks[m]} ∩ {r.topk_intersection:.2f} (floor {floors[m]:.2f})"
                                  for m, r in results.items()},
                         cell={labels[m]: _fig_cell(m if m in RAW_METHODS else args.base, args.cell) for m in results},
                         title=f"{args.objective} attack, {norm_name} ε = {eps_text} — {image.name}")
        _write_png(args.out, png)
    if args.json:
        per_method = {}
        for method, r in results.items():
            per_method[method] = {
                "k": r.k, "topk_intersection": r.topk_intersection, "no_attack_floor": floors[method],
                "spearman": r.spearman, "kendall": r.kendall, "l2": r.l2, "linf": r.linf,
                "clean_label": int(r.clean_label), "adv_label": int(r.adv_label),
                "clean_confidence": r.clean_confidence, "adv_confidence": r.adv_confidence,
                "label_preserved": bool(r.label_preserved), "message": r.message,
                "history": list(r.history), "attack_elapsed_s": getattr(r, "elapsed", None),
                "elapsed_s": notes[method], "attack_seed": args.seed, "eval_seed": args.seed,
                "floor_seed": args.seed + 1 if method in SMOOTH_METHODS else None,
                "accepted_steps": getattr(r, "accepted_steps", None),
                "rejected_steps": getattr(r, "rejected_steps", None),
                "step_size": getattr(r, "step_size", None),
                "clean_map": maps_clean[method], "attacked_map": maps_adv[method]}
        record = _record(args, "attack", started, model, image,
                         target={"id": target, "name": model.categories[target]},
                         prediction=[{"id": i, "name": nm, "p": p} for i, nm, p in top5],
                         epsilon=args.epsilon, norm=args.norm_text, k=k, results=per_method)
        _write_json(args.json, record)
    return 0


def _cell_count(args, model, x, target, base: str) -> int:
    """Number of cells of ``base``'s map (Grad-CAM's grid needs one forward pass)."""
    from .attributions import cell_grid

    if base == "gradcam":
        return _map_for(args, model, x, target, base, base)[0].numel()
    rows, cols = cell_grid(x.shape[-2], x.shape[-1], args.cell)
    return rows * cols


def _label(model, idx) -> str:
    idx = int(idx)
    return model.categories[idx] if 0 <= idx < len(model.categories) else str(idx)


# ------------------------------------------------------------------------ small commands

def cmd_samples(args) -> int:
    from .images import list_samples

    for name, path in list_samples():
        print(f"{name:<12} {path}")
    return 0


def cmd_models(args) -> int:
    from . import models

    available = getattr(models, "available_models", None)
    if available is None:
        print(f"{models.DEFAULT_MODEL:<24} available (the offline default)")
        return 0
    for name, ok, message in available():
        print(f"{name:<24} {'available' if ok else 'not available'}" + (f" — {message}" if message else ""))
    return 0


def _cmd_evaluate_missing(reason: str):
    def run(args) -> int:
        print(f"python -m rrs evaluate: error: the evaluation study is not available ({reason})", file=sys.stderr)
        return 2
    return run


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
    p.add_argument("--noise", choices=("gaussian", "laplace"), default="gaussian", help="noise distribution (default gaussian)")
    p.add_argument("--sigma", type=_positive_float, default=0.15,
                   help="noise scale in pixel units (Gaussian σ or Laplace b; default 0.15)")
    p.add_argument("--samples", "-T", type=_positive_int, default=default_samples,
                   help=f"noise samples T for smoothed maps (default {default_samples})")
    p.add_argument("--batch-size", type=_positive_int, default=16, help="noisy inputs per forward pass (result-neutral; default 16)")
    p.add_argument("--cell", type=_positive_int, default=default_cell,
                   help=f"cell size in pixels (Grad-CAM: in feature cells); default {default_cell}")
    p.add_argument("--reduction", choices=("sum", "max", "sq"), default="sum", help="how a cell sums its pixels (default sum)")
    p.add_argument("--scoring", choices=SCORING_FAMILIES, default="topk", help="RRS scoring family (default topk)")
    p.add_argument("--scoring-param", type=_positive_float, default=None,
                   help="scoring parameter: k' for topk/linear (count, or fraction of cells < 1; default 0.1), "
                        "τ in cells for exponential (default n/10), γ for power (default 1)")
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
    p.add_argument("--norm", type=parse_norm, default=2.0, help="threat model ℓ_d: 1, 2, inf or any number ≥ 1 (default 2)")
    p.add_argument("--eta", type=_positive_float, default=0.05,
                   help="finite-sample failure probability η in (0, 1) (default 0.05)")
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
    p.add_argument("--objective", default="topk",
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

    try:
        from .evaluate import register_cli
    except Exception as exc:  # noqa: BLE001 — a missing or broken optional module must not break the CLI
        reason = f"rrs.evaluate could not be imported: {type(exc).__name__}: {exc}".replace("\n", " ")
        p = sub.add_parser("evaluate", help="run the evaluation study (not available in this installation)",
                           description="Run the evaluation study (needs rrs.evaluate).")
        p.set_defaults(func=_cmd_evaluate_missing(reason))
    else:
        register_cli(sub)
    return parser


def _finish_args(args) -> None:
    if getattr(args, "command", None) == "attack":
        norm = str(args.norm).strip().lower()
        aliases = {"linf": "linf", "inf": "linf", "l_inf": "linf", "∞": "linf", "l2": "l2", "2": "l2"}
        if norm not in aliases:
            raise CliError(f"--norm must be linf or l2 for attacks, got {args.norm!r}")
        args.norm = args.norm_text = aliases[norm]
        args.epsilon_text = str(args.epsilon)
        try:
            args.epsilon = parse_epsilon(args.epsilon)
        except argparse.ArgumentTypeError as e:
            raise CliError(f"--epsilon {e}") from None
    if getattr(args, "command", None) == "certify" and not (0 < args.eta < 1):
        raise CliError(f"--eta must be in (0, 1), got {args.eta:g}")
    if getattr(args, "command", None) == "certify" and (not math.isfinite(args.radius) or args.radius < 0):
        raise CliError(f"--radius must be a finite number ≥ 0, got {args.radius:g}")
    if hasattr(args, "opacity") and not (0 <= args.opacity <= 1):
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
