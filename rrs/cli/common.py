"""What every ``python -m rrs`` command shares: the one-line error, value parsers, the settings
objects built from the options, model and image, the progress bar, the JSON record and the
options every image command takes (:func:`_common`)."""
from __future__ import annotations

import argparse
import platform
import sys
import time
from contextlib import contextmanager
from pathlib import Path

import torch

from ..cliargs import count_or_fraction as _count_or_fraction
from ..cliargs import positive_float as _positive_float
from ..cliargs import positive_int as _positive_int
from ..jsonio import dumps
from ..methods import METHODS, RAW_METHODS
from ..smoothing import model_device
from ..settings import (NOISE_FAMILIES, REDUCTIONS, SCORING_DEFAULTS, AttackSettings, CertifySettings,
                       MapSettings, Norm)


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


def _fmt_radius(r: float) -> str:
    return f"{r:.4g}" if r > 0 else "0"


def _label(model, idx) -> str:
    idx = int(idx)
    return model.categories[idx] if 0 <= idx < len(model.categories) else str(idx)


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
