"""``python -m rrs attack``: the interpretation attack of Ghorbani et al. 2019 against chosen
methods, with the no-attack floor next to every attacked number."""
from __future__ import annotations

import time

import torch

from ..methods import METHODS
from ..settings import AttackSettings, MapSettings
from .common import (CliError, map_settings, attack_settings, _progress, _record, _write_json, _write_png,
                     _prepare, _print_prediction, _fig_cell, _map_for, _name, _label)


def _target_box_map(box: str, shape: tuple[int, int], size: int) -> torch.Tensor:
    try:
        x0, y0, x1, y1 = (float(v) for v in box.split(","))
    except ValueError:
        raise CliError(f"--target-box must be x0,y0,x1,y1 in pixels of the {size}×{size} model input, "
                       f"got {box!r}") from None
    if not (0 <= x0 < x1 <= size and 0 <= y0 < y1 <= size):
        raise CliError(f"--target-box {box!r} must lie inside the {size}×{size} model input with x0 < x1, y0 < y1")
    rows, cols = shape
    ys = (torch.arange(rows) + 0.5) * size / rows
    xs = (torch.arange(cols) + 0.5) * size / cols
    mask = ((ys[:, None] >= y0) & (ys[:, None] < y1) & (xs[None] >= x0) & (xs[None] < x1)).float()
    if mask.sum() == 0:
        raise CliError(f"--target-box {box!r} covers no cell centre; make it larger")
    return mask / mask.sum()


def _attack_one(args, model, x, target, settings: MapSettings, att: AttackSettings):
    from ..attacks import attack

    target_map = None
    if att.objective == "targeted":
        if not args.target_box:
            raise CliError("--objective targeted needs --target-box x0,y0,x1,y1 (the region to pull the map to)")
        grid = _map_for(args, model, x, target, settings.replace(method=settings.attribution))[0]
        target_map = _target_box_map(args.target_box, tuple(grid.shape), model.input_size)
    with _progress(args, att.steps * att.restarts, f"attack {settings.method}") as bar:
        return attack(model, x, settings, att, target=target, target_map=target_map, progress=bar,
                      batch_size=args.batch_size)


def _print_attack_table(model, att: AttackSettings, results: dict, eps_text: str) -> None:
    smoothed = any(r.map_settings.smoothed for r in results.values())
    print(f"top-k attack ({att.objective}, {att.norm.label} ε = {eps_text}, {att.steps} steps"
          + (f", EOT {att.eot}" if smoothed else "") + "):")
    print(f"  {'method':<24}{'k':>6}{'floor':>7}{'attacked':>10}{'spearman':>10}{'kendall':>9}  label")
    for method, r in results.items():
        kept = "kept" if r.label_preserved else "CHANGED"
        print(f"  {_name(method):<24}{r.k:>6}{r.floor.topk_intersection:>7.3f}{r.topk_intersection:>10.3f}"
              f"{r.spearman:>10.3f}{r.kendall:>9.3f}  {kept} ({_label(model, r.clean_label)} "
              f"{r.clean_confidence:.2f} → {_label(model, r.adv_label)} {r.adv_confidence:.2f}); "
              f"ℓ2 {r.l2:.3g}, ℓ∞ {r.linf * 255:.2f}/255; {r.elapsed:.1f} s")
        if r.message:
            print(f"    note: {' '.join(str(r.message).split())}")
    print("floor = tie-aware top-k intersection between two clean runs (noise seeds s and s+1; 1 for "
          "deterministic methods); attacked = clean map (seed s) vs attacked map (seed s+1)")


def cmd_attack(args) -> int:
    from ..figures import attack_png

    started = time.perf_counter()
    model, image, x, target, top5 = _prepare(args)
    _print_prediction(model, top5, target)
    att = attack_settings(args)
    results = {m: _attack_one(args, model, x, target, map_settings(args, m), att) for m in args.methods}
    _print_attack_table(model, att, results, args.epsilon_text)
    if args.out:
        lab = {m: METHODS[m].label for m in results}
        png = attack_png(x, {lab[m]: r.x_adv.reshape(x.shape) for m, r in results.items()},
                         {lab[m]: r.clean_map for m, r in results.items()},
                         {lab[m]: r.attacked_map for m, r in results.items()},
                         k={lab[m]: r.k for m, r in results.items()}, normalize="max",
                         metrics={lab[m]: f"top-{r.k} ∩ {r.topk_intersection:.2f} (floor {r.floor.topk_intersection:.2f})"
                                  for m, r in results.items()},
                         cell={lab[m]: _fig_cell(r.map_settings) for m, r in results.items()},
                         title=f"{att.objective} attack, {att.norm.label} ε = {args.epsilon_text} — {image.name}")
        _write_png(args.out, png)
    if args.json:
        per_method = {m: {
            "settings": r.map_settings, "k": r.k, "topk_intersection": r.topk_intersection,
            "no_attack_floor": r.floor.topk_intersection, "floor_seeds": list(r.floor.seeds),
            "spearman": r.spearman, "kendall": r.kendall, "l2": r.l2, "linf": r.linf,
            "clean_label": int(r.clean_label), "adv_label": int(r.adv_label),
            "clean_confidence": r.clean_confidence, "adv_confidence": r.adv_confidence,
            "label_preserved": bool(r.label_preserved), "message": r.message, "history": list(r.history),
            "elapsed_s": r.elapsed, "accepted_steps": r.accepted_steps, "rejected_steps": r.rejected_steps,
            "clean_map": r.clean_map, "attacked_map": r.attacked_map} for m, r in results.items()}
        record = _record(args, "attack", started, model, image, map_settings(args, args.methods[0]),
                         attack_settings=att, epsilon_text=args.epsilon_text,
                         target={"id": target, "name": model.categories[target]},
                         prediction=[{"id": i, "name": nm, "p": p} for i, nm, p in top5], results=per_method)
        _write_json(args.json, record)
    return 0
