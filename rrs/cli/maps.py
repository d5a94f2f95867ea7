"""``python -m rrs explain`` (one interpretation map, PNG + JSON) and the listings ``samples`` and
``models``."""
from __future__ import annotations

import time

from ..smoothing import model_device
from .common import (map_settings, _progress, _record, _write_json, _write_png, _prepare, _print_prediction,
                     _fig_cell, _map_for, _grid_summary, _noise_text, _name)


def cmd_explain(args) -> int:
    from ..figures import comparison_png, overlay_png, topk_mask
    from ..metrics import topk_indices

    started = time.perf_counter()
    model, image, x, target, top5 = _prepare(args)
    _print_prediction(model, top5, target)
    settings = map_settings(args)
    t0 = time.perf_counter()
    with _progress(args, args.samples, settings.info.label) as bar:
        m, res = _map_for(args, model, x, target, settings, bar)
    compute_s = time.perf_counter() - t0
    n = m.numel()
    k = settings.k_for(n)
    label = settings.info.label + (f" over {_name(settings.base)}" if settings.smoothed else "")
    print(f"{label}: {_grid_summary(m)}, top-k with k = {k}"
          + (f", T = {settings.samples}, {_noise_text(settings)}" if res is not None else "")
          + f"; {compute_s:.2f} s on {model_device(model)}")
    raw = None
    if args.out:
        cell = _fig_cell(settings)
        title = f"{label} — {image.name}: {model.categories[target]}"
        if res is not None and not args.no_compare:
            raw_settings = settings.replace(method=settings.base)
            raw = _map_for(args, model, x, target, raw_settings)[0]
            png = comparison_png(x, {f"raw {_name(settings.base)}": raw, settings.info.label: m},
                                 normalize="max", k=k, cell=cell, title=title, opacity=args.opacity,
                                 caption=f"Bright = where the model looked (each map scaled to its max, "
                                         f"shared scale); outlined = top-{k} cells; seed {settings.seed}.")
        else:
            png = overlay_png(x, m, title=title, opacity=args.opacity, topk_mask=topk_mask(m, k), cell=cell,
                              caption=f"Bright = where the model looked; outlined = the top-{k} cells.")
        _write_png(args.out, png)
    if args.json:
        extra = {}
        if res is not None:
            extra = {"samples": res.samples, "value_bound": res.value_bound, "smoothing_elapsed_s": res.elapsed}
            if settings.method == "rrs":
                extra["scoring_vector"] = res.scoring
        record = _record(args, "explain", started, model, image, settings, method=settings.method,
                         base=settings.attribution, target={"id": target, "name": model.categories[target]},
                         prediction=[{"id": i, "name": nm, "p": p} for i, nm, p in top5],
                         grid=list(m.shape), cells=n, k=k, topk_cells=topk_indices(m, k),
                         compute_s=compute_s, map=m, raw_map=raw, **extra)
        _write_json(args.json, record)
    return 0


def cmd_samples(args) -> int:
    from ..images import list_samples

    for name, path in list_samples():
        print(f"{name:<12} {path}")
    return 0


def cmd_models(args) -> int:
    from ..models import available_models

    for name, ok, message in available_models():
        print(f"{name:<24} {'available' if ok else 'not available'}" + (f" — {message}" if message else ""))
    return 0
