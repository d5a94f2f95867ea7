"""Peak memory of the app's jobs, the numbers behind :mod:`rrs.compute.memory`.

Each configuration runs in a fresh subprocess (so the high-water mark VmHWM is its own):
the model is loaded and warmed with one batch-1 pass, then the job runs; printed is the
peak RSS above the warmed-up resident set, in MB.

* ``map``: a smoothed RRS map of the vanilla gradient (forward + input gradient) with
  ``T = batch`` noise samples in one batch of ``batch``;
* ``attack``: one PGD step of the second-order attack on RRS with ``eot`` EOT samples
  (``T = 1`` for its map measurements, so the double backward dominates).

    python bench/memory.py [--model efficientnet-lite0] [--sizes 224 160 112]
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys


def _status(field: str) -> int:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    raise RuntimeError(field)


def child(model_name: str, size: int, kind: str, n: int) -> dict:
    import torch

    from rrs.attacks import attack
    from rrs.images import load_sample, to_tensor
    from rrs.models import load_model
    from rrs.settings import AttackSettings, MapSettings
    from rrs.smoothing import smooth

    torch.set_num_threads(1)
    model = load_model(model_name).eval()
    for p in model.parameters():
        p.requires_grad_(False)
    x = to_tensor(load_sample("coffee"), size)
    smooth(model, x, MapSettings(samples=1), batch_size=1)
    base = _status("VmRSS")
    if kind == "map":
        smooth(model, x, MapSettings(samples=n), batch_size=n)
    else:
        attack(model, x, MapSettings(samples=1), AttackSettings(steps=1, eot=n, eval_every=10), batch_size=1)
    return {"kind": kind, "size": size, "n": n, "peak_mb": (_status("VmHWM") - base) / 2 ** 20}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="efficientnet-lite0")
    ap.add_argument("--sizes", type=int, nargs="+", default=[224, 160, 112])
    ap.add_argument("--child", nargs=3)
    args = ap.parse_args()
    if args.child:
        print(json.dumps(child(args.model, int(args.child[0]), args.child[1], int(args.child[2]))))
        return
    print(f"model {args.model}: peak RSS above the warmed-up model, MB")
    for size in args.sizes:
        for kind, ns in (("map", (1, 4, 16)), ("attack", (1, 4))):
            for n in ns:
                out = subprocess.run([sys.executable, __file__, "--model", args.model, "--child", str(size), kind,
                                      str(n)], capture_output=True, text=True, check=True)
                r = json.loads(out.stdout.strip().splitlines()[-1])
                label = "batch" if kind == "map" else "eot"
                print(f"{size:4d} px  {kind:6s}  {label} {n:3d}  {r['peak_mb']:8.0f} MB", flush=True)


if __name__ == "__main__":
    main()
