"""Cost of one interpretation-attack step relative to one plain gradient.

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

    python bench/attack.py [--quick] [--threads 1] [--repeat 3] [--work-size 160] [--profile]

The measurement is :func:`rrs.benchmarks.attack.measure` (the study stores the same numbers);
``main()`` prints it as a table. ``--quick`` (a smoke run: 128×128, one round, no naive baseline)
only checks that the benchmark runs.
"""
from __future__ import annotations

import argparse

import torch

from rrs.attacks import surrogate_model
from rrs.benchmarks.attack import make_state, measure, print_table
from rrs.images import load_sample
from rrs.models import load_default


def profile(size: int = 224, threads: int = 1) -> None:
    """Print the top operators of one RRS EOT-4 step."""
    from torch.profiler import ProfilerActivity, profile as torch_profile
    torch.set_num_threads(threads)
    model = load_default()
    x = load_sample("coffee").to_tensor(size)
    st = make_state(model, x, "rrs", 4, surrogate_model(model, 10.0))
    st.surrogate_grad(x[None])
    with torch_profile(activities=[ProfilerActivity.CPU]) as prof:
        st.surrogate_grad(x[None])
    print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=20))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="smoke run: 128×128, one round, no naive baseline")
    ap.add_argument("--threads", type=int, default=1, help="torch threads (default 1: stable ratios)")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--size", type=int, default=224)
    ap.add_argument("--work-size", type=int, default=160)
    ap.add_argument("--no-naive", action="store_true", help="skip the naive-surrogate baseline")
    ap.add_argument("--profile", action="store_true", help="print top operators of one RRS EOT-4 step")
    args = ap.parse_args(argv)
    print_table(measure(args.quick, threads=args.threads, repeat=args.repeat, size=args.size,
                        work_size=args.work_size, naive=not args.no_naive))
    if args.profile:
        profile(args.size, args.threads)


if __name__ == "__main__":
    main()
