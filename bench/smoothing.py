"""Smoothing speed on the default model, as ratios against baselines measured in the same run.

Times, at 224×224 on the default EfficientNet-Lite0 with T noise samples and the same batch
size: a bare batched vanilla-gradient loop (the floor), Captum's NoiseTunnel SmoothGrad, and
rrs's SmoothGrad, Sparsified SmoothGrad and RRS; then the certificates of one 224×224 RRS map.

    .venv/bin/python bench/smoothing.py [--samples 32] [--batch-size 16] [--repeats 5]
"""
from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import torch

from rrs.certify import certify
from rrs.models import load_default
from rrs.noise import Gaussian
from rrs.smoothing import smooth


def timed(fn, repeats):
    fn()  # warm-up (allocator, kernels)
    out = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        out.append(time.perf_counter() - start)
    return statistics.median(out)


def interleaved(runs: dict, repeats: int) -> dict:
    """Median time of each callable over ``repeats`` rounds that run every callable once, in
    turn, so slow drifts of a shared machine hit all of them alike (after one warm-up each)."""
    for fn in runs.values():
        fn()
    out = {name: [] for name in runs}
    for _ in range(repeats):
        for name, fn in runs.items():
            start = time.perf_counter()
            fn()
            out[name].append(time.perf_counter() - start)
    return {name: statistics.median(ts) for name, ts in out.items()}


def bare_loop(model, x, target, sigma, samples, batch, seed):
    """The floor: draw noise, one batched forward/backward per chunk, accumulate |grad|."""
    g = torch.Generator().manual_seed(seed)
    acc = torch.zeros(x.shape[-2:], dtype=torch.float64)
    done = 0
    while done < samples:
        m = min(batch, samples - done)
        noisy = (x + sigma * torch.randn((m, *x.shape[1:]), generator=g)).requires_grad_(True)
        model(noisy)[:, target].sum().backward()
        acc += noisy.grad.abs().sum(1).sum(0).double()
        done += m
    return acc / samples


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--samples", type=int, default=32)
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--sigma", type=float, default=0.15)
    args = ap.parse_args(argv)

    model = load_default()
    size = model.input_size
    x = torch.rand(1, 3, size, size, generator=torch.Generator().manual_seed(0))
    target = int(model(x).argmax())
    T, B, s = args.samples, args.batch_size, args.sigma
    print(f"device={next(model.parameters()).device} threads={torch.get_num_threads()} "
          f"T={T} batch={B} input={size}x{size}", flush=True)

    from captum.attr import NoiseTunnel, Saliency
    nt = NoiseTunnel(Saliency(model))
    runs = {
        "bare loop": lambda: bare_loop(model, x, target, s, T, B, 0),
        "captum NoiseTunnel": lambda: nt.attribute(x, nt_type="smoothgrad", nt_samples=T,
                                                   nt_samples_batch_size=B, stdevs=s, target=target, abs=True),
    }
    for method in ("smoothgrad", "sparsified", "rrs"):
        runs[f"rrs {method}"] = lambda m=method: smooth(model, x, target, method=m, noise=Gaussian(s), samples=T,
                                                        batch_size=B, generator=torch.Generator().manual_seed(0))
    times = interleaved(runs, args.repeats)
    base, cap = times["bare loop"], times["captum NoiseTunnel"]
    print(f"{'method':<22}{'seconds':>9}{'× bare':>9}{'× captum':>10}")
    for name, t in times.items():
        print(f"{name:<22}{t:9.3f}{t / base:9.3f}{t / cap:10.3f}")

    res = smooth(model, x, target, method="rrs", noise=Gaussian(s), samples=T, batch_size=B,
                 generator=torch.Generator().manual_seed(0))
    st = res.stats()
    k = int(0.05 * st.mean.size)
    t_all = timed(lambda: certify(st, k, Gaussian(s)), args.repeats)
    t_set = timed(lambda: certify(st, k, Gaussian(s), per_cell=False), args.repeats)
    print(f"certificates for one {size}x{size} map (n={st.mean.size}, k={k}, 6 β levels): "
          f"{t_set:.3f} s without per-cell radii, {t_all:.3f} s with per-cell radii")
    one_grad = timed(lambda: bare_loop(model, x, target, s, 1, 1, 0), args.repeats)
    print(f"one gradient (batch 1): {one_grad * 1000:.1f} ms; per sample in the bare loop: "
          f"{base / T * 1000:.1f} ms")
    return times


if __name__ == "__main__":
    main()
