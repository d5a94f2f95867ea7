"""Running the study: the job grid in-process or as Ray tasks, then the report.

:func:`run_grid` runs every job not already stored (resume), in-process or on Ray — a fresh
local instance (``address="local"``, never a stale one) or a cluster at ``ray_address``, which
gets this checkout as its ``working_dir`` — both through :func:`rrs.compute.cluster.connect`, as
the app's Ray backend. Local Ray workers import the installed ``rrs`` package. :func:`run_evaluation` runs the whole study and writes tables, plots and the report.
"""
from __future__ import annotations

import datetime as _dt
import os
import platform
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from rrs.compute.cluster import connect

from .config import EvalConfig, EvaluationError
from .inputs import get_image, get_model, resolve_device
from .jobs import build_jobs, describe, job_key, run_job
from .store import append_run, load_job, rows_frame, save_job
from .version import code_version

__all__ = ["run_grid", "run_evaluation", "EvaluationResult", "machine_info", "default_threads", "ROOT"]

ROOT = Path(__file__).resolve().parents[2]


def default_threads(model: str) -> int | None:
    """Threads per job: 1 for the tiny model (its tensors are too small to split), else torch's default."""
    return 1 if model == "tiny" else None


def _run_ray(pending, out, ray_address, device, threads, progress, record):
    ray, started_here = connect(ray_address)    # rrs.compute.cluster: the app's backend joins Ray the same way
    try:
        gpus = 1 if torch.cuda.is_available() else 0
        remote = ray.remote(num_cpus=1, num_gpus=gpus, max_retries=1)(run_job)
        images, futures = {}, {}
        for p in pending:
            arr = None
            if "image" in p:
                ik = (p["model"], p["image"])
                if ik not in images:
                    images[ik] = ray.put(get_image(get_model(p["model"], "cpu"), p["image"]).numpy())
                arr = images[ik]
            futures[remote.remote(p, None if device in (None, "auto") else device, arr, threads or 1)] = p
        remaining = list(futures)
        while remaining:
            done, remaining = ray.wait(remaining, num_returns=1)
            result = ray.get(done[0])
            save_job(out, result)
            record(result)
            if progress is not None:
                progress.set_postfix_str(describe(futures[done[0]])[:60])
                progress.update(1)
    finally:
        if started_here:
            ray.shutdown()


def run_grid(jobs: list[dict], out, resume: bool = True, ray: bool = False, ray_address: str | None = None,
             device: str | None = None, show_progress: bool = True, threads: int | None = None) -> dict:
    """Run every job not already stored under ``out/jobs`` by this code version; return counts.

    A stored job computed by another code version (:func:`rrs.study.version.code_version`) is
    stale: it is recomputed and overwritten, never reused.

    Args:
        jobs: from :func:`rrs.study.jobs.build_jobs`.
        out: output directory (created).
        resume: reuse stored results (default); ``False`` recomputes everything.
        ray / ray_address: run as Ray tasks (a fresh local instance, or the given cluster; an
            already initialised Ray is used as it is).
        device: torch device for the jobs.
        threads: torch threads per job (Ray tasks: 1 unless given; one CPU per task).
    Returns:
        ``{"executed": n, "cached": m, "stale": s, "results": [job results in the order of jobs]}``
        (``stale``: stored jobs of another code version, recomputed and counted in ``executed``).
    """
    out = Path(out)
    (out / "jobs").mkdir(parents=True, exist_ok=True)
    results: dict[str, dict] = {}
    pending: dict[str, dict] = {}
    stale, current = set(), code_version()
    for p in jobs:
        key = job_key(p)
        stored = load_job(out, key) if resume else None
        if stored is not None and stored.get("code") == current:
            results[key] = stored
        else:
            if stored is not None:
                stale.add(key)
            pending.setdefault(key, p)
    cached = len(results)
    executed = []

    def record(result):
        results[result["key"]] = result
        executed.append(result["key"])

    bar = None
    if show_progress and pending:
        from tqdm.auto import tqdm
        bar = tqdm(total=len(pending), desc="evaluate", unit="job", dynamic_ncols=True)
    try:
        if pending and (ray or ray_address):
            _run_ray(list(pending.values()), out, ray_address, device, threads, bar, record)
        else:
            for p in pending.values():
                if bar is not None:
                    bar.set_postfix_str(describe(p)[:60])
                result = run_job(p, device, threads=threads)
                save_job(out, result)
                record(result)
                if bar is not None:
                    bar.update(1)
    finally:
        if bar is not None:
            bar.close()
    return {"executed": len(executed), "cached": cached, "stale": len(stale),
            "results": [results[job_key(p)] for p in jobs if job_key(p) in results]}


def machine_info() -> dict:
    """CPU model, cores, load, library versions and the date (for the report)."""
    cpu = platform.processor() or ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        load = os.getloadavg()
    except OSError:
        load = None
    return {"cpu": cpu, "cores": os.cpu_count(), "torch_threads": torch.get_num_threads(),
            "torch": torch.__version__, "python": platform.python_version(), "numpy": np.__version__,
            "platform": platform.platform(), "cuda": torch.cuda.is_available(),
            "loadavg": list(load) if load else None,
            "date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")}


@dataclass
class EvaluationResult:
    """What :func:`run_evaluation` produced: counts, tables and the files written."""

    executed: int
    cached: int
    rows: "object"        # pandas.DataFrame of every result row
    summary: "object"     # pandas.DataFrame (rrs.study.stats.summarize)
    files: list = field(default_factory=list)
    seconds: float = 0.0


def run_evaluation(cfg: EvalConfig, out="docs/results", report: str | Path | None = None, resume: bool = True,
                   ray: bool = False, ray_address: str | None = None, device: str | None = None,
                   show_progress: bool = True, notes: str | None = None,
                   threads: int | None = None) -> EvaluationResult:
    """Run (or resume) the whole study and write tables, plots and the markdown report.

    Args:
        cfg: the settings (:func:`rrs.study.config.config_for`).
        out: directory for ``jobs/``, CSV/JSON tables and PNG plots.
        report: markdown path (default ``<out>.md`` next to the directory, e.g.
            ``docs/results.md`` for ``docs/results``).
        resume, ray, ray_address, device, threads: see :func:`run_grid` (threads default:
            :func:`default_threads`).
    """
    from .report import write_outputs
    from .stats import summarize
    cfg.validate()
    out = Path(out)
    report = Path(report) if report is not None else out.parent / f"{out.name}.md"
    t0 = time.perf_counter()
    start_info = machine_info()
    jobs = build_jobs(cfg)
    threads = default_threads(cfg.model) if threads is None else threads
    grid = run_grid(jobs, out, resume=resume, ray=ray, ray_address=ray_address, device=device,
                    show_progress=show_progress, threads=threads)
    seconds = time.perf_counter() - t0
    run = {"config": cfg.to_json(), "jobs": len(jobs), "executed": grid["executed"], "cached": grid["cached"],
           "stale": grid["stale"], "code": code_version(),
           "wall_seconds": round(seconds, 1), "ray": bool(ray or ray_address), "device": resolve_device(device),
           "threads": threads, "machine": machine_info(), "loadavg_start": start_info["loadavg"],
           "argv": sys.argv[1:], "notes": notes}
    append_run(out, run)
    rows = rows_frame(grid["results"])
    files = write_outputs(rows, out, report, cfg, run)
    return EvaluationResult(grid["executed"], grid["cached"], rows, summarize(rows), files, seconds)
