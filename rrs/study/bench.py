"""The speed experiment: the project's benchmarks (``bench/smoothing.py``, ``bench/attack.py``)
run in-process through their ``measure`` functions, whose returned numbers become rows.

Contract of a benchmark module: ``measure(quick: bool = False, ...) -> {..., "rows": [{"name":
str, <number>: float, ...}, ...]}`` and ``print_table(result)`` (what its ``main`` prints).
Every numeric entry of a row becomes one study row (``certificate`` = ``"<script>: <name>"``,
``metric`` = the entry's key, renamed by :data:`METRICS`); the printed table is kept as the
note of the ``bench_seconds`` row so the report can show it (display only: the numbers come
from ``measure``).
"""
from __future__ import annotations

import contextlib
import importlib.util
import io
import sys
import time
from pathlib import Path

from .jobs import row

__all__ = ["BENCH_DIR", "SCRIPTS", "METRICS", "load_benchmark", "rows_from_measure", "speed_rows"]

BENCH_DIR = Path(__file__).resolve().parents[2] / "bench"
SCRIPTS = ("smoothing", "attack")
#: Per benchmark: its row keys → the study's metric names (keys not listed keep their name).
METRICS = {"smoothing": {},
           "attack": {"cpu_s": "cpu_seconds", "wall_s": "wall_seconds", "ratio": "ratio_to_gradient_cpu"}}


def load_benchmark(name: str):
    """The module ``bench/<name>.py`` of this checkout (``bench`` is not an installed package)."""
    path = BENCH_DIR / f"{name}.py"
    module_name = f"bench.{name}"
    if module_name in sys.modules:
        return sys.modules[module_name]
    spec = importlib.util.spec_from_file_location(module_name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[module_name]
        raise
    return module


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
    """Run each benchmark present in ``bench/`` and return its rows (a failing benchmark gives a
    ``bench_failed`` row with the error, so a long study still finishes)."""
    rows = []
    for script in scripts:
        if not (BENCH_DIR / f"{script}.py").exists():
            continue
        t0 = time.perf_counter()
        try:
            module = load_benchmark(script)
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
