"""Sampling speed and precision: fp32 vs channels_last vs bf16 autocast, per attribution.

Per noise sample at 224×224 on the default EfficientNet-Lite0 (batches of ``--batch-size``):
the attribution in fp32 with a contiguous input (the baseline), with a ``channels_last``
input (what rrs.smoothing does), and under bfloat16 autocast (``MapSettings.precision =
"bf16"``). Printed as samples per second and ratios against the baseline of the same run.

Then whether bf16 may be the default: a bf16 RRS map and an fp32 RRS map with the same noise
agree (tie-aware top-k intersection) at least as well as two fp32 maps with different noise
seeds (the no-attack floor), and the device's own check (:func:`rrs.compute.device.check_precision`,
which decides the app's precision: top-k intersection and Spearman within the floor). A
certificate is sound for the function actually computed, so a bf16 map's certificate is about
the bf16 map (method.md §5, "Precision").

    python bench/precision.py [--quick]
"""
from __future__ import annotations

import argparse
import statistics
import time
from contextlib import nullcontext

import torch

from rrs.attributions import get_attribution
from rrs.floor import no_attack_floor
from rrs.images import load_sample
from rrs.metrics import tie_aware_intersection
from rrs.models import load_default
from rrs.settings import MapSettings
from rrs.smoothing import smooth

VARIANTS = ("fp32 contiguous", "fp32 channels_last", "bf16 channels_last")


def _call(model, x, target, base, variant):
    if "channels_last" in variant:
        x = x.contiguous(memory_format=torch.channels_last)
    ctx = torch.autocast("cpu", dtype=torch.bfloat16) if variant.startswith("bf16") else nullcontext()
    with ctx:
        return get_attribution(base)(model, x, target)


def speed(model, x, bases, batch, repeats) -> dict:
    """Samples per second of each (base, variant), rounds interleaved."""
    noisy = (x[None] + 0.15 * torch.randn((batch, *x.shape), generator=torch.Generator().manual_seed(0))).clamp(0, 1)
    target = model(x[None]).argmax(1).expand(batch)
    runs = {(b, v): (lambda b=b, v=v: _call(model, noisy, target, b, v)) for b in bases for v in VARIANTS}
    for fn in runs.values():
        fn()
    times = {key: [] for key in runs}
    for _ in range(repeats):
        for key, fn in runs.items():
            t0 = time.perf_counter()
            fn()
            times[key].append(time.perf_counter() - t0)
    return {key: batch / statistics.median(ts) for key, ts in times.items()}


def agreement(model, x, samples: int, cell: int) -> dict:
    fp32 = MapSettings(method="rrs", samples=samples, cell=cell, seed=0)
    a = smooth(model, x, fp32).map[0]
    b = smooth(model, x, fp32.replace(precision="bf16")).map[0]
    k = fp32.k_for(a.numel())
    floor = no_attack_floor(model, x, fp32, map_a=a)
    return {"samples": samples, "cell": cell, "k": k, "bf16_vs_fp32": tie_aware_intersection(a, b, k),
            "floor_fp32": floor.topk_intersection}


def measure(quick: bool = False) -> dict:
    torch.manual_seed(0)
    model = load_default("cpu")
    x = model.prepare(load_sample("coffee"))
    bases = ("vanilla", "gradcam") if quick else ("vanilla", "input_x_gradient", "gradcam")
    rates = speed(model, x, bases, batch=8 if quick else 16, repeats=2 if quick else 5)
    checks = [agreement(model, x, 16 if quick else 64, 16)]
    if not quick:
        checks.append(agreement(model, x, 64, 1))
    return {"rates": rates, "agreement": checks}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer bases, repeats and samples (about a minute)")
    args = parser.parse_args(argv)
    torch.set_num_threads(max(1, torch.get_num_threads()))
    res = measure(args.quick)
    print(f"samples per second per attribution ({torch.get_num_threads()} threads, CPU):")
    print(f"  {'base':<18}" + "".join(f"{v:>22}" for v in VARIANTS))
    for base in dict.fromkeys(b for b, _ in res["rates"]):
        base_rate = res["rates"][(base, VARIANTS[0])]
        cells = "".join(f"{res['rates'][(base, v)]:>12.1f} ({res['rates'][(base, v)] / base_rate:4.2f}×)"
                        for v in VARIANTS)
        print(f"  {base:<18}{cells}")
    from rrs.compute import device as D
    model = load_default("cpu")
    check = D.check_precision(model, model.prepare(load_sample("coffee")))
    print(f"device check (rrs.compute.device): {check.to_dict() | {'settings': '…'}}; "
          f"CPU computes bf16 natively: {D.cpu_bf16_fast()} -> the app uses {D.precision(model)}")
    for a in res["agreement"]:
        ok = a["bf16_vs_fp32"] >= a["floor_fp32"]
        print(f"RRS T={a['samples']}, cell {a['cell']}, k={a['k']}: bf16 vs fp32 (same noise) "
              f"{a['bf16_vs_fp32']:.3f}; fp32 floor (seeds 0/1) {a['floor_fp32']:.3f} -> "
              f"{'within the floor' if ok else 'NOT within the floor'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
