"""Smoothing speed on the default model, as ratios against baselines measured in the same run.

Times, at the model's input size with T noise samples and the same batch size: a bare batched
vanilla-gradient loop (the floor), Captum's NoiseTunnel SmoothGrad, and rrs's SmoothGrad,
Sparsified SmoothGrad and RRS; then the certificates of one RRS map.

    python bench/smoothing.py [--samples 32] [--batch-size 16] [--repeats 5] [--quick]

The measurement is :func:`rrs.benchmarks.smoothing.measure` (the study stores the same numbers).
"""
from __future__ import annotations

import argparse

from rrs.benchmarks.smoothing import measure, print_table
from rrs.models import DEFAULT_MODEL

def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--samples", type=int, default=32)
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--sigma", type=float, default=0.15)
    ap.add_argument("--model", default=DEFAULT_MODEL)
    ap.add_argument("--quick", action="store_true", help="T ≤ 8 and 2 rounds (a smoke run)")
    args = ap.parse_args(argv)
    result = measure(args.quick, args.model, args.samples, args.batch_size, args.repeats, args.sigma)
    print_table(result)
    return result


if __name__ == "__main__":
    main()
