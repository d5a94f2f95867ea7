"""Cost of the robustness profile (issue 15) in units of one fp32 gradient sample.

In one run on the default model (EfficientNet-Lite0, chelsea, the Certify page's defaults:
32-px cells, top 10%, σ = 0.25, T = 1024, ℓ2) this times:

* one fp32 vanilla gradient of one image (batch 1) — the unit, measured before and after the
  profile (the mean of the two medians, so a machine that gets busier shows up in both);
* the whole profile (:func:`rrs.workflows.robustness.robustness_profile`) of the raw vanilla
  gradient and RRS, and its breakdown: certification, raw attack (sweep), smoothed attack
  (sweep), bisection, confirmation;
* with ``--cold``, the same profile without warm starts (every budget attacked from the
  image), so the warm-start speed-up comes from the same run.

Prints a table and, last, one line
``robustness: whole profile A s = B gradients (raw C, smoothed D); predicted E; warm/cold F×``.

    python bench/robustness.py [--quick] [--samples 1024] [--cold] [--device cpu]

``--quick`` runs the tiny model (a smoke run that only checks that the benchmark works).
"""
from __future__ import annotations

import argparse
import statistics
import time

import torch

from rrs.images import load_sample
from rrs.models import load_model
from rrs.settings import CertifySettings, MapSettings
from rrs.smoothing import raw_map
from rrs.workflows.robustness import (RobustnessSettings, method_settings, predicted_gradients,
                                      robustness_profile)


def gradient_seconds(model, x, repeat: int = 5) -> float:
    """Median seconds of one fp32 vanilla gradient of one image."""
    s = MapSettings(method="vanilla", cell=1)
    raw_map(model, x, s)  # warm-up
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        raw_map(model, x, s)
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def measure(quick: bool = False, samples: int = 1024, cold: bool = False, device: str | None = None,
            methods=("vanilla", "rrs")) -> dict:
    model = load_model("tiny" if quick else "efficientnet-lite0", device=device)
    x = load_sample("chelsea").to_tensor(model.input_size)
    base = MapSettings(method="vanilla", cell=8 if quick else 32, k=0.1, sigma=0.25, samples=samples)
    ms = method_settings(base, methods)
    rs = RobustnessSettings(norm="l2")
    cert = CertifySettings(norm="l2", scheme="selection")
    unit_before = gradient_seconds(model, x)
    t0 = time.perf_counter()
    profile = robustness_profile(model, x, ms, rs, cert)
    whole = time.perf_counter() - t0
    cold_s = None
    if cold:
        t0 = time.perf_counter()
        cold_profile = robustness_profile(model, x, ms, rs.replace(warm_start=False), cert)
        cold_s = time.perf_counter() - t0
    unit_after = gradient_seconds(model, x)
    unit = (unit_before + unit_after) / 2
    out = {"model": model.name, "device": str(next(model.parameters()).device), "unit_s": unit,
           "unit_before_s": unit_before, "unit_after_s": unit_after, "whole_s": whole,
           "predicted_gradients": predicted_gradients(ms, rs), "methods": {}}
    for m in profile.methods:
        phases = dict(m.timings)
        if m.settings.smoothed:
            phases["smoothed attack"] = phases.pop("sweep")
        else:
            phases["raw attack"] = phases.pop("sweep")
        out["methods"][m.method] = {"phases": phases, "cost": m.cost, "break_radius": m.break_radius,
                                    "held_radius": m.held_radius, "certified_radius": m.certified_radius,
                                    "certified_cell_radius": m.certified_cell_radius, "gap": m.gap,
                                    "cell_gap": m.cell_gap}
    if cold:
        out["cold_s"] = cold_s
        out["cold_break"] = {m.method: m.break_radius for m in cold_profile.methods}
    return out


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="tiny model smoke run")
    ap.add_argument("--samples", type=int, default=1024, help="T of the smoothed maps (default 1024)")
    ap.add_argument("--cold", action="store_true", help="also time the profile without warm starts")
    ap.add_argument("--device", default=None, help="torch device (default: GPU if present)")
    ap.add_argument("--methods", default="vanilla,rrs", help="methods (default vanilla,rrs)")
    args = ap.parse_args(argv)
    r = measure(args.quick, args.samples, args.cold, args.device, tuple(args.methods.split(",")))
    unit = r["unit_s"]
    print(f"model {r['model']} on {r['device']}; one fp32 gradient = {unit * 1e3:.1f} ms "
          f"(before {r['unit_before_s'] * 1e3:.1f}, after {r['unit_after_s'] * 1e3:.1f})")
    print(f"{'method':<12}{'phase':<18}{'seconds':>10}{'gradients':>11}")
    raw_units = smooth_units = 0.0
    for name, m in r["methods"].items():
        for phase, secs in m["phases"].items():
            print(f"{name:<12}{phase:<18}{secs:>10.2f}{secs / unit:>11.0f}")
        total = sum(m["phases"].values())
        print(f"{name:<12}{'total':<18}{total:>10.2f}{total / unit:>11.0f}   counted: {m['cost']}")
        if name in ("vanilla", "input_x_gradient", "integrated_gradients", "gradcam"):
            raw_units += total / unit
        else:
            smooth_units += total / unit
        print(f"{'':<12}break {m['break_radius']}, held {m['held_radius']:.3g}, certified set "
              f"{m['certified_radius']}, best cell {m['certified_cell_radius']}, gap {m['gap']}, "
              f"cell gap {m['cell_gap']}")
    cold = ""
    if "cold_s" in r:
        cold = f"; warm/cold {r['cold_s'] / r['whole_s']:.2f}× (cold {r['cold_s']:.1f} s, breaks {r['cold_break']})"
    print(f"robustness: whole profile {r['whole_s']:.1f} s = {r['whole_s'] / unit:.0f} gradients "
          f"(raw {raw_units:.0f}, smoothed {smooth_units:.0f}); predicted {r['predicted_gradients']:.0f}{cold}")


if __name__ == "__main__":
    main()
