"""What the anytime η split costs in radius: the last checkpoint of a run certified at the η it
gets under different first-checkpoint floors ``t0_min`` (:func:`rrs.workflows.certify.plan_run`).

A lower first checkpoint means more doubling checkpoints before the last one, so the last one
spends ``η·2^{−(j+1)}`` with a larger ``j``. The estimation samples of the last checkpoint are
the same whatever the split (all of them), so one run is sampled and its last checkpoint is
certified at each split's η: the whole-set radius at β = 1 and β = 0.5 (best of RDP and
Gaussian-CDF) and the median certified per-cell radius, each as a ratio to the ``t0_min = 64``
split (the old default) and to a fixed-T certificate at the full η.

    python bench/eta_split.py [--quick] [--samples 1024] [--cell 32] [--precision bf16]
"""
from __future__ import annotations

import argparse

import numpy as np
import torch

from rrs.certify import certify
from rrs.images import load_sample
from rrs.models import load_model
from rrs.settings import L2, CertifySettings, MapSettings
from rrs.workflows import certify as WC

FLOORS = (64, 32, 16)


def radii(sampled, cs: CertifySettings, eta: float) -> tuple[float, float, float]:
    """Whole-set radius at β = 1 and β = 0.5 and the median per-cell radius (cells > 0) of
    the last checkpoint at failure probability ``eta``."""
    cp = sampled.checkpoints[-1]
    rep = certify(cp.stats, sampled.k, sampled.settings.noise_model(), cs.replace(eta=eta), dim=sampled.dim,
                  selection=sampled.selection)
    whole = {b: max([c.radius for c in rep.rdp_finite + rep.cdf_finite if abs(c.beta - b) < 1e-9] or [0.0])
             for b in (1.0, 0.5)}
    cells = WC.combine_cells(*WC.report_cells(rep, True), "best", sampled.n)
    cells = cells[np.isfinite(cells) & (cells > 0)]
    return whole[1.0], whole[0.5], float(np.median(cells)) if cells.size else 0.0


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="the tiny model")
    ap.add_argument("--samples", type=int, default=1024)
    ap.add_argument("--cell", type=int, default=32)
    ap.add_argument("--precision", default="bf16")
    ap.add_argument("--image", default="coffee")
    args = ap.parse_args(argv)
    torch.manual_seed(0)
    model = load_model("tiny" if args.quick else "efficientnet-lite0", torch.device("cpu"))
    x = model.prepare(load_sample(args.image))
    cell = max(1, round(args.cell * int(x.shape[-1]) / 224))
    s = MapSettings(method="rrs", sigma=0.25, samples=args.samples, cell=cell, k=0.1, seed=0, precision=args.precision)
    cs = CertifySettings(norm=L2, eta=0.05, betas=(1.0, 0.5), scheme="selection")
    plan = WC.plan_run(args.samples, "selection", anytime=False)
    sampled = None
    for sampled in WC.sample_run(model, x, s, cs, plan=plan):
        pass
    base = radii(sampled, cs, cs.eta)
    rows = []
    for floor in FLOORS:
        p = WC.plan_run(args.samples, "selection", t0_min=floor)
        j = len(p.checkpoints) - 1
        rows.append((floor, p, p.eta_at(j, cs.eta), radii(sampled, cs, p.eta_at(j, cs.eta))))
    ref = rows[0][3]
    print(f"model {model.name}, T = {args.samples} ({plan.selection} selection), {cell}-px cells, "
          f"{sampled.n} cells, k = {sampled.k}, {args.precision}; fixed-T at η = {cs.eta}: whole-set β=1 "
          f"{base[0]:.4g}, β=0.5 {base[1]:.4g}, median cell {base[2]:.4g}")
    print(f"{'t0_min':>6} {'checkpoints (total samples)':<40} {'η last':>9} {'β=1':>9} {'β=0.5':>9} {'cell':>9}"
          f"  ratios to t0_min=64 (β=1, β=0.5, cell)")
    for floor, p, eta, r in rows:
        ratio = [a / b if b > 0 else float("nan") for a, b in zip(r, ref)]
        print(f"{floor:>6} {', '.join(map(str, p.totals())):<40} {eta:>9.2e} {r[0]:>9.4g} {r[1]:>9.4g} {r[2]:>9.4g}"
              f"  {ratio[0]:.3f}, {ratio[1]:.3f}, {ratio[2]:.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
