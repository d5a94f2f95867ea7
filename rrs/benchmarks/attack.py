"""Cost of one interpretation-attack step relative to one plain gradient, in one run on the
default model: the plain gradient (the unit), an attack step on the raw vanilla gradient, RRS
steps with EOT 4 and 8, the same with the naive softplus surrogate of the first measurement
(before/after from the same run), and optionally a lower working resolution.

Times are the minimum over rounds of CPU time (``time.process_time``, far less sensitive than
wall time to other jobs on a shared machine); wall times too. :func:`measure` returns them
(``bench/attack.py`` prints them, the study's speed experiment stores them).
"""
from __future__ import annotations

import copy
import time

import torch
import torch.nn.functional as F
from torch import nn

from ..attacks import pgd, surrogate_model
from ..attributions import vanilla_gradient
from ..images import load_sample
from ..models import load_default
from ..settings import AttackSettings, MapSettings

__all__ = ["naive_surrogate", "make_state", "measure", "print_table"]


class _NaiveSmoothReLU6(nn.Module):
    """The first measurement's surrogate activation: two aten softplus calls."""

    def __init__(self, beta):
        super().__init__()
        self.beta = beta

    def forward(self, x):
        return F.softplus(x, self.beta) - F.softplus(x - 6, self.beta)


def naive_surrogate(model, beta=10.0):
    """Deep copy with ReLU/ReLU6 → aten softplus modules; nothing else changed."""
    sur = copy.deepcopy(model).eval()
    for parent in list(sur.modules()):
        for name, child in list(parent.named_children()):
            if isinstance(child, nn.ReLU6):
                setattr(parent, name, _NaiveSmoothReLU6(beta))
            elif isinstance(child, nn.ReLU):
                setattr(parent, name, nn.Softplus(beta))
    return sur


def make_state(model, x, method, eot, sur, work_size=None):
    """An attack's prepared state (clean map, objective) without running the attack, with
    ``sur`` as its surrogate."""
    y = model(x[None]).argmax(1)
    st = pgd._Attack(model, x[None], y, MapSettings(method=method, samples=8),
                     AttackSettings(eot=eot, work_size=work_size), None, 8)
    st.sur = sur
    return st


def _items(model, x, naive: bool, work_size: int | None):
    """The timed closures ``[(name, fn)]`` and the rows summing them ``[(row, key, parts)]``."""
    y = model(x[None]).argmax(1)
    xb = x[None]
    items = [("plain vanilla gradient (batch 1)", lambda: vanilla_gradient(model, xb, y)),
             ("  real forward only (label check)", lambda: model(xb))]
    combos = []
    variants = [("after", surrogate_model(model, 10.0))] + ([("before", naive_surrogate(model))] if naive else [])
    for label, sur in variants:
        st = make_state(model, x, "vanilla", 1, sur)
        items.append((f"vanilla step [{label}]: surrogate double backward", lambda st=st: st.surrogate_grad(xb)))
        items.append((f"  real check and map [{label}]", lambda st=st: st.check(xb, need_map=True)))
        combos.append((f"vanilla step [{label}]: + real label check and map", ("vanilla", label),
                       [items[-2][0], items[-1][0]]))
        for eot in (4, 8):
            st = make_state(model, x, "rrs", eot, sur)
            items.append((f"  RRS EOT-{eot} surrogate [{label}]", lambda st=st: st.surrogate_grad(xb)))
            items.append((f"  RRS label check [{label}] ({eot})", lambda st=st: st.check(xb, need_map=False)))
            combos.append((f"RRS EOT-{eot} step [{label}]: incl. real label check", (f"rrs{eot}", label),
                           [items[-2][0], items[-1][0]]))
    if work_size and work_size < x.shape[-1]:
        for method, eot in (("vanilla", 1), ("rrs", 4)):
            st = make_state(model, x, method, eot, variants[0][1], work_size=work_size)
            items.append((f"  {method} surrogate at {work_size}", lambda st=st: st.surrogate_grad(xb)))
            items.append((f"  {method} check at {work_size}",
                          lambda st=st, raw=method == "vanilla": st.check(xb, need_map=raw)))
            combos.append((f"{method} step at work_size={work_size} (EOT {eot})", (f"{method}-work", "after"),
                           [items[-2][0], items[-1][0]]))
    return items, combos


def _time(items, repeat: int) -> dict:
    """Minimum CPU and wall seconds per item over ``repeat`` interleaved rounds (so all items
    see the same, possibly changing, load of a shared machine)."""
    best = {name: (float("inf"), float("inf")) for name, _ in items}
    for _, fn in items:
        fn()  # warm-up (allocator, oneDNN primitives)
    for _ in range(repeat):
        for name, fn in items:
            c0, w0 = time.process_time(), time.perf_counter()
            fn()
            c, w = time.process_time() - c0, time.perf_counter() - w0
            best[name] = (min(best[name][0], c), min(best[name][1], w))
    return best


def measure(quick: bool = False, *, threads: int = 1, repeat: int = 3, size: int = 224,
            work_size: int | None = 160, naive: bool = True) -> dict:
    """Time the attack steps on the default model.

    Returns ``{"model", "size", "threads", "repeat", "work_size", "rows", "ratios"}``:
    ``rows`` are ``{"name", "cpu_s", "wall_s", "ratio"}`` (``ratio``: CPU time ÷ one plain
    gradient) in the printed order; ``ratios`` maps ``vanilla``, ``rrs4``, ``rrs8``,
    ``vanilla-work``, ``rrs-work`` (and ``…-before`` for the naive surrogate) to the cost of
    one attack step in plain gradients. ``quick``: 128×128, one round, work size 96, no naive
    baseline (a smoke run).
    """
    if quick:
        repeat, size, work_size, naive = 1, 128, 96, False
    before_threads = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        model = load_default()
        x = load_sample("coffee").to_tensor(size)
        items, combos = _items(model, x, naive, work_size)
        best = _time(items, repeat)
    finally:
        torch.set_num_threads(before_threads)
    base_cpu = best[items[0][0]][0]
    rows = [(name, *best[name]) for name, _ in items[:3]]  # gradient, forward, surrogate double backward
    ratios = {}
    for row, (key, label), parts in combos:
        c, w = sum(best[p][0] for p in parts), sum(best[p][1] for p in parts)
        rows.append((row, c, w))
        ratios[key if label == "after" else f"{key}-before"] = c / base_cpu
    return {"model": model.name, "size": size, "threads": threads, "repeat": repeat, "work_size": work_size,
            "rows": [{"name": n, "cpu_s": c, "wall_s": w, "ratio": c / base_cpu} for n, c, w in rows],
            "ratios": ratios}


def print_table(res: dict) -> None:
    """The table and the summary lines of :func:`measure`'s result."""
    print(f"default model {res['model']}, input {res['size']}×{res['size']}, torch threads "
          f"{res['threads']}, min of {res['repeat']}")
    print(f"{'':58s} {'CPU s':>8s} {'wall s':>8s} {'÷ grad (CPU)':>13s}")
    for r in res["rows"]:
        print(f"{r['name']:58s} {r['cpu_s']:8.3f} {r['wall_s']:8.3f} {r['ratio']:13.2f}")
    print()
    ratios, ws = res["ratios"], res["work_size"]
    for key, text, per in (("vanilla", "attack step, raw vanilla gradient", 1),
                           ("rrs4", "attack step, RRS with EOT 4", 4),
                           ("rrs8", "attack step, RRS with EOT 8", 8),
                           ("vanilla-work", f"attack step, raw vanilla at work_size {ws}", 1),
                           ("rrs-work", f"attack step, RRS EOT 4 at work_size {ws}", 4)):
        after, before = ratios.get(key), ratios.get(f"{key}-before")
        if after is None:
            continue
        extra = f", {after / per:.2f}× per EOT sample" if per > 1 else ""
        was = f" (before: {before:.2f}×)" if before is not None else ""
        print(f"{text}: {after:.2f}× a plain gradient{extra}{was}")
