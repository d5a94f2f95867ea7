"""Finite-sample certificates: separate selection batch vs Bonferroni, at equal sample counts.

Synthetic RRS-like maps (n = 49 patch cells, top-k' uniform scoring; each sample keeps the
k' cells of a noisy latent score, so per-sample values are binary as for real top-k' RRS):
the finite-sample RDP radius (β = 1 and 0.6) and the Gaussian-CDF radius after T samples,
``scheme="selection"`` (T/8 selection + 7T/8 estimation) against ``scheme="bonferroni"``
(all T samples), and the time each takes (sampling + certification, measured in the same
run).

Then the real model at the Certify page's defaults (EfficientNet-Lite0, coffee, 32-px cells,
σ = 0.25): samples per second fp32 vs channels_last vs bf16 (``bench/precision.py``'s timing),
whether bf16 agrees with fp32 within the no-attack floor, the time to the first non-empty
finite-sample region of an anytime run, and the finite-sample radius after equal compute
time: new (selection batch + the fastest precision that agrees) vs old (Bonferroni, fp32
contiguous input), printed as ``finite-sample radius per second: new/old = X``.

    python bench/certify.py [--quick] [--synthetic-only]
"""
from __future__ import annotations

import argparse
import time

import numpy as np

from rrs import certify as C
from rrs.noise import Gaussian
from rrs.settings import CertifySettings
from rrs.workflows import certify as W


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
    old = C.certify(st_all, kp, Gaussian(sigma), CertifySettings(betas=betas, cell_radii=False))
    t_old = t_sample + time.perf_counter() - t1
    t0 = time.perf_counter()
    ts = t // 8
    sel = to_stats(sample_counts(rng, score, noise_sd, kp, ts), ts, kp)
    est = to_stats(sample_counts(rng, score, noise_sd, kp, t - ts), t - ts, kp)
    new = C.certify(est, kp, Gaussian(sigma), CertifySettings(betas=betas, cell_radii=False, scheme="selection"),
                    selection=sel)
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


CERTIFY_DEFAULTS = dict(method="rrs", sigma=0.25, cell=32, k=0.1)   # the Certify page's defaults


def _radii(report) -> dict:
    """Finite-sample numbers of one report: whole-set radius at β = 1 and 0.6 (best of RDP and
    Gaussian-CDF), the per-cell radii of the top-k (best of both) and how many are > 0."""
    def whole(beta):
        return max([c.radius for c in report.rdp_finite + report.cdf_finite if abs(c.beta - beta) < 1e-9] + [0.0])
    cells = np.zeros(report.selected.size)
    for cc in (report.cells_finite, report.cdf_cells_finite):
        if cc is not None:
            cells = np.maximum(cells, cc.radii[report.selected])
    return {"beta1": whole(1.0), "beta06": whole(0.6), "cells": cells, "certified": int((cells > 0).sum())}


ANYTIME = CertifySettings(eta=0.05, betas=(1.0, 0.6), scheme="selection")


def _anytime(model, x, settings, total, cert: CertifySettings = ANYTIME):
    """The Certify page's run, through the same workflow (:mod:`rrs.workflows.certify`): a T/8
    selection batch, then the estimation samples in doubling checkpoints, each certified at
    ``η_j`` (η split over the checkpoints). Returns (the run's :class:`AnytimeView`, seconds
    and T at the first non-empty finite-sample region, seconds)."""
    start = time.perf_counter()
    first_region = sampled = None
    for sampled in W.sample_run(model, x, settings.replace(samples=total), cert):
        if first_region is None and _radii(W.certify_checkpoint(sampled, cert))["certified"]:
            first_region = (time.perf_counter() - start, sampled.samples_done)
    return W.certify_sampled(sampled, cert), first_region, time.perf_counter() - start


def _view_radii(view) -> dict:
    """:func:`_radii` of an anytime run: best so far over the checkpoints."""
    cells = view.cell_radii("best", True)[view.certified_set(1.0)]
    return {"beta1": view.guaranteed(1.0), "beta06": view.guaranteed(0.6), "cells": cells,
            "certified": int((cells > 0).sum())}


def real(quick: bool):
    """The Certify defaults on the real model: speed per precision, then new vs old after equal
    compute time (samples = budget × each variant's rate measured in this run)."""
    import torch
    from precision import VARIANTS, agreement, speed   # bench/precision.py (same folder)
    from rrs import MapSettings, load_default, load_sample, smooth
    torch.manual_seed(0)
    model = load_default("cpu")
    x = model.prepare(load_sample("coffee"))
    settings = MapSettings(**CERTIFY_DEFAULTS)
    rates = speed(model, x, ("vanilla",), batch=8, repeats=2 if quick else 4)
    base = rates[("vanilla", VARIANTS[0])]
    print(f"\nreal model: EfficientNet-Lite0, coffee 224 px, 32-px cells, σ = 0.25 "
          f"({torch.get_num_threads()} threads, CPU); samples per second, vanilla gradient:")
    for v in VARIANTS:
        print(f"  {v:<20} {rates[('vanilla', v)]:7.2f} /s  ({rates[('vanilla', v)] / base:4.2f}×)")
    agree = agreement(model, x, 16, 32)
    bf16_ok = agree["bf16_vs_fp32"] >= agree["floor_fp32"]
    print(f"  bf16 vs fp32 (same noise, T=16, 32-px cells): {agree['bf16_vs_fp32']:.3f}; "
          f"fp32 floor {agree['floor_fp32']:.3f} -> {'agrees' if bf16_ok else 'does NOT agree'}")
    new_variant = "bf16 channels_last" if bf16_ok else "fp32 channels_last"
    new_settings = settings.replace(precision="bf16" if bf16_ok else "fp32")
    budget = (256 if quick else 1024) / base          # seconds: old gets 256 (1024) samples
    t_old = int(budget * base)
    t_new = int(budget * rates[("vanilla", new_variant)]) // 8 * 8
    k = settings.k_for(49)
    t0 = time.perf_counter()
    full = smooth(model, x, settings.replace(samples=t_old))
    old = _radii(C.certify(full.stats(), k, full.noise, CertifySettings(betas=(1.0, 0.6)), dim=full.dim))
    secs_old = time.perf_counter() - t0
    # the new scheme at a fixed T (η not split; the command line's plan) and as the page runs it
    # (anytime, η split), both through the workflow's sampler
    t0 = time.perf_counter()
    fixed = CertifySettings(betas=(1.0, 0.6), scheme="selection")
    for sampled in W.sample_run(model, x, new_settings.replace(samples=t_new), fixed,
                                plan=W.plan_run(t_new, "selection", anytime=False)):
        pass
    new = _radii(W.certify_checkpoint(sampled, fixed))
    secs_new = time.perf_counter() - t0
    view, first, secs_any = _anytime(model, x, new_settings, t_new)
    anytime = _view_radii(view)
    print(f"equal compute budget {budget:.1f} s of sampling at the measured rates: old = Bonferroni, "
          f"{VARIANTS[0]}, T = {t_old}; new = selection batch, {new_variant}, T = {t_new}")
    print(f"  {'':<28}{'β=1':>9}{'β=0.6':>9}{'cells>0':>9}{'mean cell r':>12}{'wall s':>8}")
    for name, r, secs in (("old (bonferroni, fp32)", old, secs_old), ("new (selection), fixed T", new, secs_new),
                          ("new, anytime (η split)", anytime, secs_any)):
        print(f"  {name:<28}{r['beta1']:>9.4g}{r['beta06']:>9.4g}{r['certified']:>6} of {k}"
              f"{float(np.mean(r['cells'])):>9.4g}{secs:>8.1f}")
    if first is None:
        print("  time to the first non-empty finite-sample region (anytime): none within the budget")
    else:
        print(f"  time to the first non-empty finite-sample region (anytime): {first[0]:.1f} s at T = {first[1]}")

    def ratio(a, b):
        return f"{a / b:.3g}" if b > 0 else ("inf (old certified nothing)" if a > 0 else "n/a (both 0)")
    mean_new, mean_old = float(np.mean(new["cells"])), float(np.mean(old["cells"]))
    print(f"finite-sample radius per second: new/old = {ratio(mean_new, mean_old)}   (real model, Certify defaults, "
          f"equal compute time; mean per-cell finite radius over the top-{k}, the page's region)")
    print(f"  whole set β = 1: new/old = {ratio(new['beta1'], old['beta1'])}; β = 0.6: new/old = "
          f"{ratio(new['beta06'], old['beta06'])}; anytime (η split) mean per-cell: new/old = "
          f"{ratio(float(np.mean(anytime['cells'])), mean_old)}")
    print(f"  per wall-clock second (this busy machine): new/old = "
          f"{ratio(mean_new / secs_new, mean_old / secs_old)}")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="fewer maps and sample sizes (a few minutes on 2 cores)")
    ap.add_argument("--synthetic-only", action="store_true", help="skip the real-model section")
    args = ap.parse_args(argv)
    rate_new, rate_old = synthetic(args.quick)
    ratio = rate_new / rate_old if rate_old > 0 else float("inf")
    print(f"synthetic maps, finite-sample radius per second (RDP β=1): new/old = {ratio:.3g}")
    if not args.synthetic_only:
        real(args.quick)


if __name__ == "__main__":
    main()
