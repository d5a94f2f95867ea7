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
import math
import os
import sys

from ..cliargs import betas as _betas
from ..cliargs import positive_float as _positive_float
from ..cliargs import positive_int as _positive_int
from ..cliargs import probability as _probability
from ..settings import OBJECTIVES, SCHEMES, Norm
from .common import (EXPLAIN_METHODS, CliError, _Parser, parse_epsilon, parse_norm, _method_list,
                     map_settings, attack_settings, certify_settings, resolve_model, resolve_image, _common)
from .attack import cmd_attack
from .certify import cmd_certify
from .maps import cmd_explain, cmd_models, cmd_samples
from .robustness import _register_robustness, cmd_robustness, robustness_settings  # noqa: F401 (re-exported)


__all__ = ["main", "build_parser", "resolve_model", "resolve_image", "parse_epsilon",
           "parse_norm", "map_settings", "attack_settings", "certify_settings", "EXPLAIN_METHODS"]


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
