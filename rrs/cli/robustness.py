"""``python -m rrs robustness``: the robustness profile of :mod:`rrs.workflows.robustness` (the
break radius of attacked maps next to the certified radius)."""
from __future__ import annotations

import sys
import time

from ..cliargs import positive_int as _positive_int
from ..cliargs import probability as _probability
from ..settings import CertifySettings, Norm
from .common import (CliError, parse_epsilon, parse_norm, _method_list, map_settings,
                     _progress, _record, _write_json, _prepare, _print_prediction, _name, _fmt_radius,
                     _common)


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
