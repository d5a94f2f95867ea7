"""Cost of one interpretation-attack step relative to one plain gradient (issue 3, "Speed").

In one run on the default model (EfficientNet-Lite0) at 224×224 this times:

* one plain vanilla gradient (batch 1) — the unit;
* one attack step on the raw vanilla gradient: the surrogate double backward plus the real
  model's label check and map (the best-iterate choice needs it);
* one attack step against RRS with EOT (4 and 8 noisy samples in one batched pass) plus the
  real label check;
* the same steps with the naive surrogate that the first measurement used (``nn.Softplus``-
  style modules via aten's softplus, BatchNorm kept, aten's convolution double backward), so
  before/after come from the same run on the same machine;
* optionally a lower working resolution (``--work-size``).

Times are the minimum over ``--repeat`` runs of CPU time (``time.process_time``, all threads
of this process), which is far less sensitive than wall time to other jobs on a shared
machine; wall times are printed too. ``--profile`` prints the top operators of one RRS step.

    python bench/attack.py [--threads 1] [--repeat 3] [--work-size 160] [--profile]
"""
from __future__ import annotations

import argparse
import copy
import os
import time

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn

import rrs
from rrs import attacks

ROOT = os.path.join(os.path.dirname(__file__), "..")


def load_coffee(size: int) -> torch.Tensor:
    img = Image.open(os.path.join(ROOT, "assets", "samples", "coffee.png")).convert("RGB")
    w, h = img.size
    s = min(w, h)
    img = img.crop(((w - s) // 2, (h - s) // 2, (w - s) // 2 + s, (h - s) // 2 + s))
    img = img.resize((size, size), Image.BILINEAR)
    return torch.from_numpy(np.array(img)).permute(2, 0, 1).float() / 255


class _NaiveSmoothReLU6(nn.Module):
    """The first measurement's surrogate activation: two aten softplus calls."""

    def __init__(self, beta):
        super().__init__()
        self.beta = beta

    def forward(self, x):
        return F.softplus(x, self.beta) - F.softplus(x - 6, self.beta)


def naive_surrogate(model, beta=10.0):
    """Deep copy with ReLU/ReLU6 → aten softplus modules; nothing else changed."""
    sur = copy.deepcopy(model).eval()
    for parent in list(sur.modules()):
        for name, child in list(parent.named_children()):
            if isinstance(child, nn.ReLU6):
                setattr(parent, name, _NaiveSmoothReLU6(beta))
            elif isinstance(child, nn.ReLU):
                setattr(parent, name, nn.Softplus(beta))
    return sur


def make_state(model, x, method, eot, sur, work_size=None):
    """An attack's internal state (clean map, objective) without running the attack."""
    y = model(x[None]).argmax(1)
    return attacks._Attack(
        model, sur, x[None], y, method, "vanilla", "topk", "linf", 8 / 255, None, 1, "sum",
        rrs.Gaussian(0.15), 8, eot, 8, None, 0.1, 0.01, False, None,
        torch.Generator().manual_seed(0), 0.5, 16, True, 1.0, 1.0, 3, 0, work_size, None)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=1, help="torch threads (default 1: stable ratios)")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--size", type=int, default=224)
    ap.add_argument("--work-size", type=int, default=160)
    ap.add_argument("--no-naive", action="store_true", help="skip the naive-surrogate baseline")
    ap.add_argument("--profile", action="store_true", help="print top operators of one RRS EOT-4 step")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    model = rrs.load_default()
    x = load_coffee(args.size)
    y = model(x[None]).argmax(1)
    xb = x[None]

    # Every measurement is a closure; they run in interleaved rounds so that all of them see
    # the same (possibly changing) load of a shared machine, and the minimum per item is kept.
    items = [("plain vanilla gradient (batch 1)", lambda: rrs.vanilla_gradient(model, xb, y)),
             ("  real forward only (label check)", lambda: model(xb))]
    combos = []  # (row name, summary key, [item names summed])
    fast = attacks.surrogate_model(model, 10.0)
    variants = [("after", fast)]
    if not args.no_naive:
        variants.append(("before", naive_surrogate(model)))
    for label, sur in variants:
        st = make_state(model, x, "vanilla", 1, sur)
        items.append((f"vanilla step [{label}]: surrogate double backward", lambda st=st: st.surrogate_grad(xb)))
        items.append((f"  real check and map [{label}]", lambda st=st: st.check(xb, need_map=True)))
        combos.append((f"vanilla step [{label}]: + real label check and map", ("vanilla", label),
                       [items[-2][0], items[-1][0]]))
        for eot in (4, 8):
            st = make_state(model, x, "rrs", eot, sur)
            items.append((f"  RRS EOT-{eot} surrogate [{label}]", lambda st=st: st.surrogate_grad(xb)))
            items.append((f"  RRS label check [{label}] ({eot})", lambda st=st: st.check(xb, need_map=False)))
            combos.append((f"RRS EOT-{eot} step [{label}]: incl. real label check", (f"rrs{eot}", label),
                           [items[-2][0], items[-1][0]]))
    if args.work_size and args.work_size < args.size:
        for method, eot in (("vanilla", 1), ("rrs", 4)):
            st = make_state(model, x, method, eot, fast, work_size=args.work_size)
            items.append((f"  {method} surrogate at {args.work_size}", lambda st=st: st.surrogate_grad(xb)))
            items.append((f"  {method} check at {args.work_size}",
                          lambda st=st, raw=method == "vanilla": st.check(xb, need_map=raw)))
            combos.append((f"{method} step at work_size={args.work_size} (EOT {eot})", (f"{method}-work", "after"),
                           [items[-2][0], items[-1][0]]))
    best = {name: (float("inf"), float("inf")) for name, _ in items}
    for _, fn in items:
        fn()  # warm-up (allocator, oneDNN primitives)
    for _ in range(args.repeat):
        for name, fn in items:
            c0, w0 = time.process_time(), time.perf_counter()
            fn()
            c, w = time.process_time() - c0, time.perf_counter() - w0
            best[name] = (min(best[name][0], c), min(best[name][1], w))
    base_cpu = best[items[0][0]][0]
    rows = [(name, *best[name]) for name, _ in items[:3]]
    summary = {}
    for row, key, parts in combos:
        c = sum(best[p][0] for p in parts)
        w = sum(best[p][1] for p in parts)
        rows.append((row, c, w))
        summary[key] = c / base_cpu
    rows = [rows[0], rows[1]] + [r for r in rows[2:] if not r[0].startswith("  ")] + \
        [r for r in rows[2:] if r[0].startswith("  ")]

    print(f"default model {model.name}, input {args.size}×{args.size}, torch threads "
          f"{torch.get_num_threads()}, min of {args.repeat}")
    print(f"{'':58s} {'CPU s':>8s} {'wall s':>8s} {'÷ grad (CPU)':>13s}")
    for name, c, w in rows:
        print(f"{name:58s} {c:8.3f} {w:8.3f} {c / base_cpu:13.2f}")
    print()

    def line(key, text, per=1):
        after, before = summary.get((key, "after")), summary.get((key, "before"))
        if after is None:
            return
        extra = f", {after / per:.2f}× per EOT sample" if per > 1 else ""
        was = f" (before: {before:.2f}×)" if before is not None else ""
        print(f"{text}: {after:.2f}× a plain gradient{extra}{was}")
    line("vanilla", "attack step, raw vanilla gradient")
    line("rrs4", "attack step, RRS with EOT 4", 4)
    line("rrs8", "attack step, RRS with EOT 8", 8)
    line("vanilla-work", f"attack step, raw vanilla at work_size {args.work_size}")
    line("rrs-work", f"attack step, RRS EOT 4 at work_size {args.work_size}", 4)

    if args.profile:
        from torch.profiler import ProfilerActivity, profile
        st = make_state(model, x, "rrs", 4, fast)
        st.surrogate_grad(xb)
        with profile(activities=[ProfilerActivity.CPU]) as prof:
            st.surrogate_grad(xb)
        print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=20))


if __name__ == "__main__":
    main()
