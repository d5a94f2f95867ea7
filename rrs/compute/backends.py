"""Where the scheduler's jobs run: in this process (the default) or on a Ray cluster.

``RRS_BACKEND`` chooses: unset, ``""`` or ``"inprocess"`` — in the server process;
``"ray://host:port"`` — the Ray cluster behind that Ray Client address (the UI runs on a small
machine, the compute on the cluster's nodes; GPU workers are asked for with ``num_gpus=1``
when the cluster has GPUs); ``"ray"`` or ``"local"`` — a fresh local Ray instance (tests).

A remote job gets the same arguments as in-process (models travel once per process through the
object store, then are cached by each worker), so it returns the same numbers for the same seed.
Progress comes back through a small Ray actor the worker reports to; a job whose progress
callback raises on the caller's side (a cancelled token, a Streamlit rerun) is cancelled with
``ray.cancel``.
"""
from __future__ import annotations

import os
import threading
import time
import uuid
import weakref

import torch

from .cluster import ClusterError, connect

__all__ = ["RayBackend", "BackendError", "backend_from_env", "parse_backend"]

#: The backend cannot be used (a bad ``RRS_BACKEND``, Ray missing, the cluster unreachable): one
#: line. The same type as :class:`rrs.compute.cluster.ClusterError`.
BackendError = ClusterError
_HINT = "; or unset RRS_BACKEND to compute in this process"


def parse_backend(text: str | None) -> tuple[str, str | None]:
    """``("inprocess", None)``, ``("ray", None)`` for a fresh local instance, or ``("ray", address)``."""
    s = (text or "").strip()
    if s.lower() in ("", "inprocess", "in-process", "none"):
        return "inprocess", None
    if s.lower() in ("ray", "local", "ray://local"):
        return "ray", None
    if s.startswith("ray://"):
        host, _, port = s[len("ray://"):].rpartition(":")
        if not host or not port.isdigit():
            raise BackendError(f"RRS_BACKEND={s!r}: write the Ray Client address as ray://host:port")
        return "ray", s
    raise BackendError(f"RRS_BACKEND={s!r} is not understood: use ray://host:port, 'local' or leave it unset")


def backend_from_env():
    """The backend ``RRS_BACKEND`` asks for (``None`` = in-process)."""
    kind, address = parse_backend(os.environ.get("RRS_BACKEND"))
    return None if kind == "inprocess" else RayBackend(address)


# ----------------------------------------------------------------- worker side

class _ModelHandle:
    """A model in the object store: ``key`` names it in each worker's cache."""

    def __init__(self, key: str, ref):
        self.key, self.ref = key, ref


_WORKER_MODELS: dict = {}


def _resolve(value, device: str):
    if not isinstance(value, _ModelHandle):
        return value
    model = _WORKER_MODELS.get(value.key)
    if model is None:
        import ray
        model = ray.get(value.ref)
        if isinstance(model, list):          # ray.put of [model] keeps the module out of numpy paths
            model = model[0]
        model = model.to(device).eval()
        for p in model.parameters():
            p.requires_grad_(False)
        _WORKER_MODELS.clear()               # one model per worker process at a time
        _WORKER_MODELS[value.key] = model
    return model


def _remote_job(fn, args, kwargs, reporter, job: str, use_gpu: bool):
    device = "cuda" if use_gpu and torch.cuda.is_available() else "cpu"
    args = tuple(_resolve(a, device) for a in args)
    last = [0.0]

    def progress(done, total):
        now = time.perf_counter()
        if now - last[0] >= 0.1 or done >= total:
            last[0] = now
            reporter.report.remote(job, float(done), float(total))

    return fn(*args, progress=progress, **kwargs)


def _free_gpu_memory() -> int:
    from .memory import available_memory
    return available_memory("cuda")


class _Reporter:
    """Progress of running jobs: ``job -> (done, total)``."""

    def __init__(self):
        self.state = {}

    def report(self, job, done, total):
        self.state[job] = (done, total)

    def get(self, job):
        return self.state.get(job)

    def drop(self, job):
        self.state.pop(job, None)


# ----------------------------------------------------------------- driver side

class RayBackend:
    """Runs the scheduler's jobs as Ray tasks (``address``: a Ray Client ``ray://host:port``, or
    ``None`` for a fresh local instance; ``num_cpus`` limits a local instance)."""

    def __init__(self, address: str | None = None, num_cpus: int | None = None, poll: float = 0.1):
        self.address, self.num_cpus, self.poll = address, num_cpus, poll
        self._lock = threading.Lock()
        self._ray = None
        self._started = False
        self._reporter = None
        self._task = None
        self._gpus = 0
        self._models: dict = {}
        self.cancelled: list = []            # object refs of the tasks cancelled (for tests)

    def _ensure(self):
        with self._lock:
            if self._ray is not None:
                return self._ray
            ray, self._started = connect(self.address, self.num_cpus, hint=_HINT)
            self._gpus = int(ray.cluster_resources().get("GPU", 0))
            self._reporter = ray.remote(num_cpus=0)(_Reporter).remote()
            self._task = ray.remote(max_retries=0)(_remote_job)
            self._ray = ray
            return ray

    def capacity(self) -> dict:
        """What the cluster offers the app's scheduler: ``memory`` in bytes (on GPU clusters the
        free memory of one GPU, measured by a probe task, times the GPUs; otherwise Ray's
        ``memory`` resource, the RAM it gives tasks), ``cpus`` and ``gpus``."""
        ray = self._ensure()
        res = ray.cluster_resources()
        cpus, gpus = int(res.get("CPU", 0)), int(res.get("GPU", 0))
        memory = int(res.get("memory", 0))
        if gpus:
            probe = ray.remote(num_gpus=1, num_cpus=0, max_retries=0)(_free_gpu_memory)
            memory = gpus * int(ray.get(probe.remote()))
        return {"memory": memory, "cpus": cpus, "gpus": gpus}

    def _handle(self, value):
        if not isinstance(value, torch.nn.Module):
            return value
        entry = self._models.get(id(value))
        if entry is None or entry[0]() is not value:
            entry = (weakref.ref(value), _ModelHandle(uuid.uuid4().hex, self._ray.put([value])))
            self._models[id(value)] = entry
        return entry[1]

    def execute(self, fn, args, kwargs, progress, ticket=None):
        """``fn(*args, progress=…, **kwargs)`` on the cluster; blocks, relaying progress."""
        ray = self._ensure()
        job = uuid.uuid4().hex
        args = tuple(self._handle(a) for a in args)
        use_gpu = self._gpus > 0
        options = {"num_cpus": 1, "num_gpus": 1 if use_gpu else 0}
        if ticket is not None and ticket.need and not use_gpu:
            options["memory"] = int(ticket.need)     # Ray places it only where that much RAM is free
        ref = self._task.options(**options).remote(fn, args, kwargs, self._reporter, job, use_gpu)
        seen = None
        try:
            while True:
                ready, _ = ray.wait([ref], timeout=self.poll)
                state = ray.get(self._reporter.get.remote(job))
                if state is not None and state != seen:
                    seen = state
                    progress(*state)
                elif progress is not None:
                    progress(*(seen or (0.0, 1.0)))
                if ready:
                    return ray.get(ref)
        except BaseException:
            ray.cancel(ref, force=False)
            self.cancelled.append(ref)
            raise
        finally:
            self._reporter.drop.remote(job)

    def shutdown(self) -> None:
        """Disconnect from the Ray this backend started (a local instance stops with it)."""
        with self._lock:
            if self._ray is not None and self._started:
                self._ray.shutdown()
            self._ray = None
            self._models.clear()
