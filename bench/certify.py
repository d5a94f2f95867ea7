"""Finite-sample certificates: separate selection batch vs Bonferroni, at equal sample counts.

Synthetic RRS-like maps (n = 49 patch cells, top-k' uniform scoring; each sample keeps the
k' cells of a noisy latent score, so per-sample values are binary as for real top-k' RRS):
the finite-sample RDP radius (β = 1 and 0.6) and the Gaussian-CDF radius after T samples,
``scheme="selection"`` (T/8 selection + 7T/8 estimation) against ``scheme="bonferroni"``
(all T samples), and the time each takes (sampling + certification, measured in the same
run). With ``--real`` also on the default model (rrs.load_default + rrs.smooth).

    python bench/certify.py [--quick] [--real]
"""
from __future__ import annotations

import argparse
import time

import numpy as np

from rrs import certify as C
from rrs.noise import Gaussian


def sample_counts(rng, score, noise_sd, kp, t):
    """Counts of top-k' membership over t noisy draws of a latent score."""
    z = score[None, :] + rng.normal(0, noise_sd, (t, score.size))
    top = np.argpartition(-z, kp - 1, axis=1)[:, :kp]
    return np.bincount(top.ravel(), minlength=score.size)


def to_stats(counts, t, kp):
    m = counts / t / kp
    return C.CellStats(m, m / kp, int(t), 1 / kp, True)


def one_map(rng, n, kp, t, sigma, betas):
    score = np.sort(rng.gamma(2.0, 1.0, n))[::-1]
    noise_sd = rng.uniform(0.3, 0.8)
    out = {}
    t0 = time.perf_counter()
    st_all = to_stats(sample_counts(rng, score, noise_sd, kp, t), t, kp)
    t_sample = time.perf_counter() - t0
    t1 = time.perf_counter()
    old = C.certify(st_all, kp, Gaussian(sigma), betas=betas, per_cell=False)
    t_old = t_sample + time.perf_counter() - t1
    t0 = time.perf_counter()
    ts = t // 8
    sel = to_stats(sample_counts(rng, score, noise_sd, kp, ts), ts, kp)
    est = to_stats(sample_counts(rng, score, noise_sd, kp, t - ts), t - ts, kp)
    new = C.certify(est, kp, Gaussian(sigma), betas=betas, per_cell=False, scheme="selection", selection=sel)
    t_new = time.perf_counter() - t0
    out["old"] = [c.radius for c in old.rdp_finite] + [max(c.radius for c in old.cdf_finite)]
    out["new"] = [c.radius for c in new.rdp_finite] + [max(c.radius for c in new.cdf_finite)]
    out["plugin"] = [c.radius for c in old.rdp_plugin]
    return out, t_old, t_new


def synthetic(quick: bool):
    rng = np.random.default_rng(0)
    n, kp, sigma, betas = 49, 5, 0.25, (1.0, 0.6)
    ts = (512, 2048) if quick else (256, 512, 1024, 2048, 4096)
    maps = 10 if quick else 30
    rate_old = rate_new = 0.0
    print(f"synthetic RRS-like maps: n={n}, k=k'={kp}, σ={sigma}, {maps} maps per T, η=0.05")
    print(f"{'T':>6} {'RDP β=1 old':>12} {'new':>10} {'RDP β=.6 old':>13} {'new':>10} {'CDF old':>9} {'new':>9}"
          f" {'plug-in β=1':>12}")
    for t in ts:
        rows = [one_map(rng, n, kp, t, sigma, betas) for _ in range(maps)]
        old = np.mean([r[0]["old"] for r in rows], 0)
        new = np.mean([r[0]["new"] for r in rows], 0)
        plug = np.mean([r[0]["plugin"] for r in rows], 0)
        secs_old = sum(r[1] for r in rows)
        secs_new = sum(r[2] for r in rows)
        rate_old += old[0] * maps / secs_old
        rate_new += new[0] * maps / secs_new
        print(f"{t:>6} {old[0]:>12.4g} {new[0]:>10.4g} {old[1]:>13.4g} {new[1]:>10.4g} {old[2]:>9.4g} {new[2]:>9.4g}"
              f" {plug[0]:>12.4g}")
        for label, j in (("RDP β=1", 0), ("RDP β=0.6", 1), ("Gaussian-CDF", 2)):
            if old[j] > 0:
                print(f"       T={t}: {label} radius new/old = {new[j] / old[j]:.2f}")
    return rate_new, rate_old


def real(quick: bool):
    import torch
    from rrs import MapSettings, list_samples, load_default, load_sample, smooth
    model = load_default()
    x = model.prepare(load_sample(list_samples()[0][0]))
    t = 64 if quick else 256
    g = torch.Generator().manual_seed(0)
    kw = dict(batch_size=16, generator=g)
    settings = MapSettings(method="rrs", sigma=0.15, cell=32)
    t0 = time.perf_counter()
    full = smooth(model, x, settings.replace(samples=t), **kw)
    t_old = time.perf_counter() - t0
    k = max(1, round(0.1 * full.stats().mean.size))
    t1 = time.perf_counter()
    old = C.certify(full.stats(), k, full.noise, betas=(1.0, 0.6), dim=full.dim, per_cell=False)
    t_old += time.perf_counter() - t1
    g = torch.Generator().manual_seed(1)
    kw["generator"] = g
    t0 = time.perf_counter()
    sel = smooth(model, x, settings.replace(samples=t // 8), **kw)
    est = smooth(model, x, settings.replace(samples=t - t // 8), **kw)
    new = C.certify(est.stats(), k, full.noise, betas=(1.0, 0.6), dim=full.dim, per_cell=False,
                    scheme="selection", selection=sel.stats())
    t_new = time.perf_counter() - t0
    print(f"default model, 32-px cells (n={full.stats().mean.size}), T={t}, k={k}:")
    for name, rep, secs in (("bonferroni", old, t_old), ("selection", new, t_new)):
        print(f"  {name:>10}: RDP finite β=1 {rep.rdp_finite[0].radius:.4g}, β=0.6 {rep.rdp_finite[1].radius:.4g}, "
              f"CDF finite β=0.6 {rep.cdf_finite[1].radius:.4g}, plug-in RDP β=1 {rep.rdp_plugin[0].radius:.4g}; "
              f"{secs:.1f} s")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="fewer maps and sample sizes (a few minutes on 2 cores)")
    ap.add_argument("--real", action="store_true", help="also certify a map of the default model")
    args = ap.parse_args(argv)
    rate_new, rate_old = synthetic(args.quick)
    ratio = rate_new / rate_old if rate_old > 0 else float("inf")
    print(f"finite-sample radius per second: new/old = {ratio:.3g}")
    if args.real:
        real(args.quick)


if __name__ == "__main__":
    main()
