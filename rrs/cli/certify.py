"""``python -m rrs certify``: an RRS map, its certified top-k radii per β and the certified region
(the certify workflow of :mod:`rrs.workflows.certify`)."""
from __future__ import annotations

import csv
import math
import time

import numpy as np
import torch

from ..settings import CertifySettings
from .common import (CliError, map_settings, certify_settings, _progress, _record, _write_json, _write_png,
                     _prepare, _print_prediction, _grid_summary, _noise_text, _name, _fmt_radius)


def _certificate_table(report) -> tuple[list[str], list[tuple[str, list[float]]]]:
    """Rows ``(label, radius per β)`` grouped by certificate kind; missing β as NaN."""
    betas = list(report.betas)
    rows = []
    for group in (report.rdp_plugin, report.rdp_finite, report.cdf_plugin, report.cdf_finite, report.equal_level):
        if not group:
            continue
        by_beta = {c.beta: c for c in group}
        labels = [c.label for c in group]
        # The equal-level form is a certificate at β = 1 only; name the row by its weaker label.
        label = next((c.label for c in group if not c.is_certificate), labels[0])
        rows.append((label, [by_beta[b].radius if b in by_beta else math.nan for b in betas]))
    return [f"β={b:g}" for b in betas], rows


def _print_certificates(report, cert: CertifySettings) -> None:
    header, rows = _certificate_table(report)
    width = max(len(lbl) for lbl, _ in rows) if rows else 20
    print(f"certified {cert.norm.label} radius (pixel units; finite-sample at confidence 1-η = {1 - cert.eta:g}):")
    print("  " + "certificate".ljust(width) + "".join(h.rjust(11) for h in header))
    for lbl, radii in rows:
        print("  " + lbl.ljust(width) + "".join(("–" if math.isnan(r) else _fmt_radius(r)).rjust(11) for r in radii))


def _write_csv(path: str, table: list[dict]) -> None:
    with open(path, "w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(table[0].keys()) if table else ["certificate"])
        writer.writeheader()
        for row in table:
            writer.writerow({key: ("inf" if isinstance(v, float) and math.isinf(v) else v) for key, v in row.items()})
    print(f"wrote {path}")


def cmd_certify(args) -> int:
    from ..figures import overlay_png
    from ..workflows import certify as W

    started = time.perf_counter()
    model, image, x, target, top5 = _prepare(args)
    _print_prediction(model, top5, target)
    settings, cert = map_settings(args, "rrs"), certify_settings(args)
    try:  # the workflow's plan: one checkpoint at T (a T/8 selection batch first with --scheme selection)
        plan = W.plan_run(settings.samples, cert.scheme, anytime=False)
    except ValueError as e:
        raise CliError(f"{e}; use --samples ≥ {W.SELECTION_MIN}") from None
    t0 = time.perf_counter()
    with _progress(args, args.samples, "RRS samples") as bar:
        for sampled in W.sample_run(model, x, settings, cert, plan=plan, target=target,
                                    batch_size=args.batch_size, progress=bar):
            pass
    stats = sampled.pooled()
    m = torch.as_tensor(stats.mean, dtype=torch.float32).reshape(sampled.grid)
    smooth_s = time.perf_counter() - t0
    n = m.numel()
    k = sampled.k
    t1 = time.perf_counter()
    report = W.certify_checkpoint(sampled, cert, bound_method=args.bound_method)
    certify_s = time.perf_counter() - t1
    print(f"RRS over {_name(settings.base)}: {_grid_summary(m)}, k = {k}, T = {settings.samples}, "
          f"{_noise_text(settings)}; map {smooth_s:.2f} s, certificates {certify_s:.2f} s")
    _print_certificates(report, cert)
    cells = report.cells_finite if args.region == "finite" else report.cells_plugin
    region = cells.region(args.radius)
    other = report.cells_plugin if args.region == "finite" else report.cells_finite
    print(f"certified region at L = {args.radius:g}: {int(region.sum())} of {k} top-k cells "
          f"({args.region}); {int(other.region(args.radius).sum())} with the "
          f"{'plug-in' if args.region == 'finite' else 'finite-sample'} radii")
    finite_best = max([c.radius for c in report.rdp_finite + report.cdf_finite] or [0.0])
    if finite_best <= 0:
        print("note: the finite-sample certificates are vacuous (radius 0) at this T; more samples "
              "(--samples), coarser cells (--cell) or another σ would help")
    if args.out:
        shape = tuple(m.shape)
        top = np.zeros(n, dtype=bool)
        top[np.asarray(cells.selected)] = True
        title = f"certified top-{k} at {cert.norm.label} radius {args.radius:g} — {image.name}"
        png = overlay_png(x, m, title=title, opacity=args.opacity, topk_mask=top.reshape(shape),
                          certified_mask=np.asarray(region).reshape(shape), cell=settings.cell,
                          caption=(f"Blue = certified to stay in the top-{k} for any {cert.norm.label} change "
                                   + (f"< {args.radius:g}" if args.radius > 0 else "up to its own positive radius")
                                   + f" ({args.region}); orange = not certified."))
        _write_png(args.out, png)
    table = report.rows()
    if args.csv:
        _write_csv(args.csv, table)
    if args.json:
        record = _record(args, "certify", started, model, image, settings, certify_settings=cert,
                         target={"id": target, "name": model.categories[target]},
                         prediction=[{"id": i, "name": nm, "p": p} for i, nm, p in top5],
                         grid=list(m.shape), cells=n, k=k, samples=stats.samples, scoring_vector=sampled.scoring,
                         smoothing_elapsed_s=smooth_s, certify_elapsed_s=certify_s,
                         certificates=table, selected=np.asarray(report.selected),
                         cell_radii={"plugin": np.asarray(report.cells_plugin.radii),
                                     "finite": np.asarray(report.cells_finite.radii)},
                         region={"radius": args.radius, "kind": args.region, "cells": np.flatnonzero(region)},
                         map=m)
        _write_json(args.json, record)
    return 0
