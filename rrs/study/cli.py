"""The study's command line: ``python -m rrs evaluate …`` (registered by :func:`register_cli`)
or ``python -m rrs.study …`` (:func:`main`)."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..cliargs import positive_int
from .config import EXPERIMENTS, METHOD_NAMES, PRESETS, config_for
from .jobs import build_jobs, job_key
from .plan import gradient_seconds, plan_line
from .runner import run_evaluation
from .store import load_job
from .version import code_version

__all__ = ["add_arguments", "run_from_args", "register_cli", "main"]


def add_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    parser.add_argument("--quick", action="store_true",
                        help="small preset (3 images, 1 seed, short attacks): < 15 min on 2 CPU cores")
    parser.add_argument("--preset", choices=PRESETS, default=None, help="settings preset (default: full; --quick = quick)")
    parser.add_argument("--model", default="efficientnet-lite0",
                        help="model name (default efficientnet-lite0; 'tiny' = the tiny CNN on synthetic shapes)")
    parser.add_argument("--out", default="docs/results", help="output directory (default docs/results)")
    parser.add_argument("--report", default=None, help="markdown report path (default <out>.md)")
    parser.add_argument("--images", nargs="+", default=None,
                        help="bundled sample names, image files or folders of images, or one number = "
                             "the first N images of the preset")
    parser.add_argument("--seeds", type=positive_int, default=None, help="repetitions per setting")
    parser.add_argument("--T", dest="T_values", type=int, nargs="+", default=None,
                        help="noise-sample counts for the robustness- and accuracy-versus-T experiments "
                             "(default: the preset's)")
    parser.add_argument("--methods", nargs="+", choices=METHOD_NAMES, default=None, help="methods to compare")
    parser.add_argument("--experiments", nargs="+", choices=EXPERIMENTS, default=None,
                        help="experiments to run (default: all three; speed via --bench)")
    parser.add_argument("--seed", type=int, default=0, help="base random seed (default 0)")
    parser.add_argument("--device", default=None, help="torch device (default: cuda if available, else cpu)")
    parser.add_argument("--ray", action="store_true", help="run jobs as tasks on a fresh local Ray instance")
    parser.add_argument("--ray-address", default=None, help="run jobs on the Ray cluster at ADDR")
    parser.add_argument("--no-resume", action="store_true", help="recompute jobs already stored in --out")
    parser.add_argument("--bench", dest="bench", action="store_true", default=None,
                        help="also run the benchmarks bench/smoothing.py and bench/attack.py (default: full preset only)")
    parser.add_argument("--no-bench", dest="bench", action="store_false")
    parser.add_argument("--notes", default=None, help="free text recorded with this run (e.g. machine load)")
    parser.add_argument("--threads", type=positive_int, default=None,
                        help="torch threads per job (default: 1 for the tiny model, else torch's default)")
    parser.add_argument("--dry-run", action="store_true",
                        help="only print the number of jobs (and how many are stored) and the estimated cost")
    parser.add_argument("--rate", type=float, default=None,
                        help="seconds per gradient evaluation for the time estimate (default: measured now)")
    parser.add_argument("--quiet", "-q", action="store_true", help="no progress bars")
    parser.add_argument("--debug", action="store_true", help="show the full traceback on errors")
    return parser


def run_from_args(args) -> int:
    """Entry point of ``python -m rrs evaluate`` (returns the exit code)."""
    preset = args.preset or ("quick" if args.quick else "full")
    cfg = config_for(preset, args.model, args.images, args.seeds, args.seed, args.methods, args.bench,
                     args.experiments, args.T_values)
    jobs = build_jobs(cfg)
    stored = [load_job(Path(args.out), job_key(j)) for j in jobs] if not args.no_resume else [None] * len(jobs)
    todo = [j for j, s in zip(jobs, stored) if s is None or s.get("code") != code_version()]
    stale = sum(s is not None and s.get("code") != code_version() for s in stored)
    rate = args.rate if args.rate is not None else (gradient_seconds(cfg, args.device, threads=args.threads)
                                                    if todo else None)
    print(f"evaluate{' (dry run)' if args.dry_run else ''}: preset {cfg.preset}, model {cfg.model}, "
          f"{len(cfg.images)} images, {len(jobs)} jobs ({len(jobs) - len(todo)} stored in {args.out} by this code "
          f"version {code_version()}{f', {stale} stale ones to recompute' if stale else ''}); to compute: "
          f"{plan_line(todo, rate, measured=args.rate is None)}", flush=True)
    if args.dry_run:
        return 0
    res = run_evaluation(cfg, args.out, args.report, resume=not args.no_resume, ray=args.ray,
                         ray_address=args.ray_address, device=args.device, notes=args.notes,
                         show_progress=not args.quiet, threads=args.threads)
    print(f"evaluate: {res.executed} jobs run, {res.cached} reused, {res.seconds:.0f} s; wrote "
          f"{len(res.files)} files under {args.out}")
    return 0


def register_cli(subparsers):
    """Add the ``evaluate`` subcommand to an ``argparse`` subparsers object."""
    parser = subparsers.add_parser(
        "evaluate", help="run the evaluation study (robustness, accuracy, certificates, speed)",
        description="Regenerate docs/results.md and docs/results/: top-k attack robustness with "
                    "no-attack floors, accuracy versus T, certified radii, speed. Resumes from "
                    "stored per-job results.")
    add_arguments(parser)
    parser.set_defaults(func=run_from_args)
    return parser


def main(argv=None) -> int:
    """``python -m rrs.study``: the same options as ``python -m rrs evaluate``; errors are one line."""
    args = add_arguments(argparse.ArgumentParser(prog="python -m rrs.study")).parse_args(argv)
    try:
        return run_from_args(args)
    except ValueError as exc:  # EvaluationError and the library's ValueErrors: one clear line
        if args.debug:
            raise
        print(f"error: {exc}", file=sys.stderr)
        return 2
