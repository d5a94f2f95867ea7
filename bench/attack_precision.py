"""The Attack page's default attack in fp32 and in bf16 (the device's precision policy).

With ``MapSettings.precision = "bf16"`` an attack measures its maps under bf16 autocast and
takes its second-order surrogate gradients under bf16 autocast too (:class:`rrs.attacks.pgd._Attack`).
Per smoothed method of the Attack page (SmoothGrad and RRS at ℓ∞ 4/255, the page's T, cells,
steps and EOT; the default model and image): the seconds of one surrogate gradient (EOT batch)
and of the whole attack in fp32 and in bf16 (ratio in the same run), and whether the bf16
attack's result agrees with the fp32 one: the attacked top-k overlaps differ by less than the
no-attack floor's distance from 1 (how far two clean maps with different noise already differ).

    python bench/attack_precision.py [--quick] [--methods smoothgrad,rrs]
"""
from __future__ import annotations

import argparse
import time

import torch

from rrs.attacks import attack
from rrs.attacks.pgd import _Attack
from rrs.images import load_sample
from rrs.models import load_model
from rrs.settings import LINF, AttackSettings, MapSettings

PRECISIONS = ("fp32", "bf16")


def grad_seconds(model, x, settings: MapSettings, opts: AttackSettings, repeats: int = 3) -> float:
    """The fastest of ``repeats`` surrogate gradients (one EOT batch, forward + double backward)."""
    x0 = x[None] if x.dim() == 3 else x
    with torch.no_grad():
        y = model(x0).argmax(1)
    st = _Attack(model, x0, y, settings, opts, None, 16)
    st.surrogate_grad(x0)                                                  # warm-up
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        st.surrogate_grad(x0)
        best = min(best, time.perf_counter() - t0)
    return best


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="the tiny model (a dry run)")
    ap.add_argument("--methods", default="smoothgrad,rrs")
    ap.add_argument("--image", default="coffee")
    args = ap.parse_args(argv)
    model = load_model("tiny" if args.quick else "efficientnet-lite0", torch.device("cpu"))
    x = model.prepare(load_sample(args.image))
    cell = max(1, round(16 * int(x.shape[-1]) / 224))
    opts = AttackSettings(objective="topk", norm=LINF, epsilon=4 / 255, steps=10, eot=4, seed=0)
    print(f"model {model.name}, image {args.image}, ℓ∞ 4/255, {opts.steps} steps × EOT {opts.eot}, {cell}-px cells")
    for method in [m.strip() for m in args.methods.split(",") if m.strip()]:
        base = MapSettings(method=method, sigma=0.15, samples=32, cell=cell, k=0.05, seed=0)
        res, secs, grads = {}, {}, {}
        for prec in PRECISIONS:
            s = base.replace(precision=prec)
            grads[prec] = grad_seconds(model, x, s, opts)
            t0 = time.perf_counter()
            res[prec] = attack(model, x, s, opts)
            secs[prec] = time.perf_counter() - t0
        floor = res["fp32"].floor.topk_intersection
        diff = abs(res["bf16"].topk_intersection - res["fp32"].topk_intersection)
        print(f"{method}: surrogate gradient fp32 {grads['fp32']:.2f} s, bf16 {grads['bf16']:.2f} s "
              f"({grads['fp32'] / grads['bf16']:.2f}×); attack fp32 {secs['fp32']:.1f} s, bf16 {secs['bf16']:.1f} s "
              f"({secs['fp32'] / secs['bf16']:.2f}×)")
        print(f"{method}: attacked top-k overlap fp32 {res['fp32'].topk_intersection:.3f}, bf16 "
              f"{res['bf16'].topk_intersection:.3f} (|Δ| {diff:.3f}); no-attack floor fp32 {floor:.3f}, bf16 "
              f"{res['bf16'].floor.topk_intersection:.3f}; agree within the floor: {diff <= 1 - floor}; "
              f"labels kept {res['fp32'].label_preserved}/{res['bf16'].label_preserved}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
