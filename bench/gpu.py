"""The GPU backend against the app's old fixed setting, on whatever device is here.

Measures, with the default model (EfficientNet-Lite0) at 224×224 on the coffee sample:

1. samples per second of an RRS map (vanilla gradient, 8-px cells) at T ∈ {256, 4096} for
   * ``fp32 b16`` — fp32, batches of 16 (the app before the GPU backend: the baseline),
   * ``fp32 auto`` — fp32, batch from free memory (:func:`rrs.compute.device.batch_size`),
   * ``bf16 auto`` — bf16 autocast with that batch (only where it agrees with fp32 on this
     device, :func:`rrs.compute.device.bf16_agrees`; otherwise skipped and said so);
2. the Certify page's defaults end to end: RRS, 32-px cells, σ = 0.25, T = 1024, every
   certificate (:func:`ui.compute.compute_map` + :func:`ui.compute.map_certificates`), baseline vs
   the GPU backend's choices.

3. on CUDA, then the whole story of ``bench/story.py`` (certificate, raw-vs-certified contrast,
   the Attack page's default; today's path against the new one) on the same device.

Ratios are against ``fp32 b16`` measured in the same run. ``--quick`` (a CPU dry run) uses
T ∈ {16, 64} and T = 64 for the Certify step.

    python bench/gpu.py [--quick] [--device cuda|cpu]
"""
from __future__ import annotations

import argparse
import time

import torch

from rrs.compute import device as D
from rrs.images import load_sample
from rrs.models import load_default
from rrs.settings import CertifySettings, MapSettings
from rrs.smoothing import smooth


def _sync(device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _timed(fn, device) -> float:
    _sync(device)
    t0 = time.perf_counter()
    fn()
    _sync(device)
    return time.perf_counter() - t0


def variants(model, x) -> dict:
    """``name -> (precision, batch)`` for this device (bf16 only where it agrees with fp32)."""
    auto = D.batch_size(model, x, "vanilla", 16)
    out = {"fp32 b16": ("fp32", 16), "fp32 auto": ("fp32", auto)}
    dev = D.device_of(model)
    if dev.type == "cuda" and torch.cuda.is_bf16_supported():
        if D.bf16_agrees(model, x):
            out["bf16 auto"] = ("bf16", auto)
        else:
            print("bf16 does not agree with fp32 on this device (beyond the no-attack floor): skipped")
    return out


def sampling(model, x, ts, table) -> list[dict]:
    rows = []
    dev = D.device_of(model)
    smooth(model, x, MapSettings(method="rrs", samples=16, cell=8), batch_size=16)   # warm-up
    for t in ts:
        base = None
        for name, (precision, batch) in table.items():
            s = MapSettings(method="rrs", samples=int(t), cell=8, precision=precision)
            secs = _timed(lambda: smooth(model, x, s, batch_size=batch), dev)
            rate = t / secs
            base = base or rate
            rows.append({"T": t, "variant": name, "batch": batch, "samples_per_s": rate, "ratio": rate / base})
    return rows


def certify_defaults(model, x, t, table) -> list[dict]:
    from ui.compute import compute_map, map_certificates

    rows, base = [], None
    dev = D.device_of(model)
    for name, (precision, batch) in table.items():
        s = MapSettings(method="rrs", cell=32, sigma=0.25, samples=int(t), precision=precision)
        out = {}
        secs = _timed(lambda: out.setdefault("c", map_certificates(compute_map(model, x, s, batch_size=batch),
                                                                    CertifySettings())), dev)
        base = base or secs
        rows.append({"variant": name, "seconds": secs, "speedup": base / secs,
                     "rdp_finite_beta1": out["c"].radius("rdp_finite", 1.0)})
    return rows


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="short Ts: a CPU dry run")
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--no-story", action="store_true", help="skip bench/story.py (run on CUDA by default)")
    args = ap.parse_args(argv)
    device = torch.device(args.device)
    model = load_default(device)
    x = model.prepare(load_sample("coffee")).to(device)
    label = torch.cuda.get_device_name(device) if device.type == "cuda" else f"CPU, {torch.get_num_threads()} threads"
    table = variants(model, x)
    ts = (16, 64) if args.quick else (256, 4096)
    print(f"device: {label}; variants: " + ", ".join(f"{k} (batch {b})" for k, (_, b) in table.items()))
    print("RRS map, vanilla gradient, 8-px cells, 224×224: samples per second (ratio to fp32 b16)")
    for r in sampling(model, x, ts, table):
        print(f"  T={r['T']:5d}  {r['variant']:10s} batch {r['batch']:5d}  {r['samples_per_s']:9.1f}/s  "
              f"({r['ratio']:.2f}×)")
    t = 64 if args.quick else 1024
    print(f"Certify defaults end to end (RRS, 32-px cells, σ = 0.25, T = {t}, every certificate):")
    for r in certify_defaults(model, x, t, table):
        print(f"  {r['variant']:10s} {r['seconds']:8.2f} s  ({r['speedup']:.2f}× faster than fp32 b16)  "
              f"finite-sample RDP radius at β=1: {r['rdp_finite_beta1']:.4g}")
    if device.type == "cuda" and not args.no_story:
        import story   # bench/story.py (same folder): the whole story on this device
        print("The whole story (bench/story.py) on this device:")
        story.main(["--device", str(device)] + (["--quick"] if args.quick else []))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
