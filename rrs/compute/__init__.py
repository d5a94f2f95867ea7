"""Shared compute for a server with many users: one scheduler, a memory budget, backends.

* :mod:`rrs.compute.memory` — a job's memory need (measured, :file:`bench/memory.py`) and the
  budget (``RRS_MEMORY_BUDGET``);
* :mod:`rrs.compute.scheduler` — :class:`Scheduler`: admission against the budget, a fair
  round-robin queue across sessions, cancellation, adaptive batch sizes;
* :mod:`rrs.compute.backends` — in-process (default) or Ray (``RRS_BACKEND=ray://host:port``);
* :mod:`rrs.compute.device` — batch sizes and precision on CUDA;
* :mod:`rrs.compute.policy` — the batch rules and the rate-based time predictions (one place);
* :mod:`rrs.compute.cluster` — one way to start or join Ray.
"""
from .memory import JobCost, estimate, fit_batch, parse_budget
from .scheduler import CancelToken, Cancelled, Refused, Scheduler, get_scheduler

__all__ = ["JobCost", "estimate", "fit_batch", "parse_budget", "Scheduler", "CancelToken", "Cancelled",
           "Refused", "get_scheduler"]
