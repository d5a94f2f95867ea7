"""Smoothing speed, as ratios against baselines measured in the same run: a bare batched
vanilla-gradient loop (the floor), Captum's NoiseTunnel SmoothGrad, and rrs's SmoothGrad,
Sparsified SmoothGrad and RRS; then the certificates of one RRS map.

:func:`measure` returns the numbers (``bench/smoothing.py`` prints them, the study's speed
experiment, :mod:`rrs.study.bench`, stores them); :func:`table` formats them. Captum is the
reference implementation (the ``bench`` extra), imported only when measuring.
"""
from __future__ import annotations

import statistics
import time

import torch

from ..certify import certify
from ..models import DEFAULT_MODEL, load_model
from ..settings import CertifySettings, MapSettings
from ..smoothing import smooth

__all__ = ["METHODS", "timed", "interleaved", "bare_loop", "measure", "table", "print_table"]

METHODS = ("smoothgrad", "sparsified", "rrs")


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
    g = torch.Generator(device=x.device).manual_seed(seed)
    acc = torch.zeros(x.shape[-2:], dtype=torch.float64, device=x.device)
    done = 0
    while done < samples:
        m = min(batch, samples - done)
        noisy = (x + sigma * torch.randn((m, *x.shape[1:]), generator=g, device=x.device)).requires_grad_(True)
        model(noisy)[:, target].sum().backward()
        acc += noisy.grad.abs().sum(1).sum(0).double()
        done += m
    return acc / samples


def measure(quick: bool = False, model: str = DEFAULT_MODEL, samples: int = 32, batch_size: int = 16,
            repeats: int = 5, sigma: float = 0.15, device=None) -> dict:
    """Time the smoothing methods against the bare loop and Captum, and one map's certificates.

    ``quick``: T = 8 and 2 rounds (a smoke run). Returns ``{"settings": {...}, "rows": [...]}``:
    one row per timed method (``name``, ``seconds`` = median wall time, ``ratio_to_bare_loop``,
    ``ratio_to_captum``), then the certificate rows (``name``, ``certify_seconds``) and the time
    of one gradient (``name``, ``seconds``).
    """
    if quick:
        samples, repeats = min(samples, 8), min(repeats, 2)
    net = load_model(model, device=device)
    size = net.input_size
    dev = next(net.parameters()).device
    x = torch.rand(1, 3, size, size, generator=torch.Generator().manual_seed(0)).to(dev)
    target = int(net(x).argmax())
    T, B, s = samples, batch_size, sigma

    from captum.attr import NoiseTunnel, Saliency  # the reference implementation (bench extra)
    nt = NoiseTunnel(Saliency(net))
    runs = {
        "bare loop": lambda: bare_loop(net, x, target, s, T, B, 0),
        "captum NoiseTunnel": lambda: nt.attribute(x, nt_type="smoothgrad", nt_samples=T,
                                                   nt_samples_batch_size=B, stdevs=s, target=target, abs=True),
    }
    for method in METHODS:
        settings = MapSettings(method=method, sigma=s, samples=T, seed=0)
        runs[f"rrs {method}"] = lambda st=settings: smooth(net, x, st, target=target, batch_size=B)
    times = interleaved(runs, repeats)
    base, cap = times["bare loop"], times["captum NoiseTunnel"]
    rows = [{"name": name, "seconds": t, "ratio_to_bare_loop": t / base, "ratio_to_captum": t / cap}
            for name, t in times.items()]

    res = smooth(net, x, MapSettings(method="rrs", sigma=s, samples=T, seed=0), target=target, batch_size=B)
    st = res.stats()
    k = int(0.05 * st.mean.size)
    t_all = timed(lambda: certify(st, k, res.noise), repeats)
    t_set = timed(lambda: certify(st, k, res.noise, CertifySettings(cell_radii=False)), repeats)
    rows += [{"name": "certify one map, without per-cell radii", "certify_seconds": t_set},
             {"name": "certify one map, with per-cell radii", "certify_seconds": t_all},
             {"name": "one gradient (batch 1)", "seconds": timed(lambda: bare_loop(net, x, target, s, 1, 1, 0),
                                                                 repeats)}]
    return {"settings": {"model": net.name, "device": str(dev), "threads": torch.get_num_threads(),
                         "T": T, "batch": B, "repeats": repeats, "sigma": s, "input": size,
                         "cells": int(st.mean.size), "k": k, "betas": 6},
            "rows": rows}


def table(result: dict) -> str:
    """The measurements as the text :func:`main` prints."""
    st = result["settings"]
    rows = {r["name"]: r for r in result["rows"]}
    lines = [f"model={st['model']} device={st['device']} threads={st['threads']} T={st['T']} "
             f"batch={st['batch']} input={st['input']}x{st['input']}",
             f"{'method':<22}{'seconds':>9}{'× bare':>9}{'× captum':>10}"]
    for r in result["rows"]:
        if "ratio_to_bare_loop" in r:
            lines.append(f"{r['name']:<22}{r['seconds']:9.3f}{r['ratio_to_bare_loop']:9.3f}{r['ratio_to_captum']:10.3f}")
    lines.append(f"certificates for one {st['input']}x{st['input']} map (n={st['cells']}, k={st['k']}, "
                 f"{st['betas']} β levels): "
                 f"{rows['certify one map, without per-cell radii']['certify_seconds']:.3f} s without per-cell "
                 f"radii, {rows['certify one map, with per-cell radii']['certify_seconds']:.3f} s with per-cell radii")
    lines.append(f"one gradient (batch 1): {rows['one gradient (batch 1)']['seconds'] * 1000:.1f} ms; per sample "
                 f"in the bare loop: {rows['bare loop']['seconds'] / st['T'] * 1000:.1f} ms")
    return "\n".join(lines)


def print_table(result: dict) -> None:
    print(table(result))
