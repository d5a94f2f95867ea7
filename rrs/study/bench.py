"""The speed experiment: the speed measurements of :mod:`rrs.benchmarks` (the ones
``bench/smoothing.py`` and ``bench/attack.py`` print) run in-process through their ``measure``
functions, whose returned numbers become rows.

Contract of a benchmark module: ``measure(quick: bool = False, ...) -> {..., "rows": [{"name":
str, <number>: float, ...}, ...]}`` and ``print_table(result)`` (what its ``main`` prints).
Every numeric entry of a row becomes one study row (``certificate`` = ``"<script>: <name>"``,
``metric`` = the entry's key, renamed by :data:`METRICS`); the printed table is kept as the
note of the ``bench_seconds`` row so the report can show it (display only: the numbers come
from ``measure``).
"""
from __future__ import annotations

import contextlib
import io
import time

from ..benchmarks import attack, smoothing
from .store import row

__all__ = ["BENCHMARKS", "SCRIPTS", "METRICS", "rows_from_measure", "speed_rows"]

#: The measurements by name (the study's ``certificate`` column says ``"<name>: <row>"``).
BENCHMARKS = {"smoothing": smoothing, "attack": attack}
SCRIPTS = tuple(BENCHMARKS)
#: Per benchmark: its row keys → the study's metric names (keys not listed keep their name).
METRICS = {"smoothing": {},
           "attack": {"cpu_s": "cpu_seconds", "wall_s": "wall_seconds", "ratio": "ratio_to_gradient_cpu"}}


def rows_from_measure(job: dict, script: str, result: dict) -> list[dict]:
    """Study rows from one benchmark's :func:`measure` result."""
    names = METRICS.get(script, {})
    out = []
    for r in result["rows"]:
        for key, value in r.items():
            if key != "name" and isinstance(value, (int, float)) and not isinstance(value, bool):
                out.append(row(job, "speed", names.get(key, key), value, certificate=f"{script}: {r['name'].strip()}"))
    return out


def speed_rows(job: dict, scripts=SCRIPTS, quick: bool = False) -> list[dict]:
    """Run each measurement of ``scripts`` and return its rows (a failing benchmark gives a
    ``bench_failed`` row with the error, so a long study still finishes)."""
    rows = []
    for script in scripts:
        t0 = time.perf_counter()
        try:
            module = BENCHMARKS[script]
            result = module.measure(quick=quick)
            printed = io.StringIO()
            with contextlib.redirect_stdout(printed):
                module.print_table(result)
            text = printed.getvalue().strip()
        except Exception as exc:  # a benchmark's failure is a result of the speed experiment
            rows.append(row(job, "speed", "bench_failed", 1.0, certificate=script,
                            note=f"{type(exc).__name__}: {exc}"[-600:]))
            continue
        rows += rows_from_measure(job, script, result)
        rows.append(row(job, "speed", "bench_seconds", time.perf_counter() - t0, certificate=script,
                        note=text[-2500:]))
    return rows
