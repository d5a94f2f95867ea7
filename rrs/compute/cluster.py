"""Starting or joining Ray, one way for the whole project.

The app's Ray backend (:mod:`rrs.compute.backends`, ``RRS_BACKEND``) and the study's runner
(:mod:`rrs.study.runner`, ``--ray`` / ``--ray-address``) both call :func:`connect`:

* no address: a fresh local instance (``address="local"``, never a stale one); its workers
  import the installed ``rrs`` (and ``ui``) packages of this interpreter;
* ``ray://host:port`` or ``host:port``: that cluster, checked with a plain TCP connection first
  (``ray.init`` itself retries for minutes); it gets this checkout as its ``working_dir``
  (code and the tiny model's weights, without :data:`EXCLUDES`), so its nodes need only
  rrs's dependencies installed.

Failures are one-line :class:`ClusterError` messages (a ``ValueError``, so the command lines and
the app show them as such).
"""
from __future__ import annotations

import socket
from pathlib import Path

__all__ = ["ClusterError", "EXCLUDES", "ROOT", "import_ray", "check_reachable", "connect"]

ROOT = Path(__file__).resolve().parents[2]
#: What a cluster does not need from this checkout (the app's ``ui`` package stays: the
#: backend's jobs are functions of it).
EXCLUDES = [".venv", ".git", "docs", "tests", "pages", "bench", "out", "**/__pycache__", "*.png", "*.jpg"]


class ClusterError(ValueError):
    """Ray cannot be used (not installed, cluster unreachable or refusing us); one line."""


def import_ray():
    try:
        import ray
    except ImportError:
        raise ClusterError("Ray is not installed: pip install 'rrs[cluster]'") from None
    return ray


def check_reachable(address: str, hint: str = "", timeout: float = 2.0) -> None:
    """Fail in seconds with one line when ``host:port`` (or ``ray://host:port``) does not answer;
    other forms (``auto``) are left to Ray. ``hint`` ends the message (what else to do)."""
    host, sep, port = address.removeprefix("ray://").rpartition(":")
    if not sep or not port.isdigit():
        return
    try:
        socket.create_connection((host, int(port)), timeout=timeout).close()
    except OSError as e:
        raise ClusterError(f"The Ray cluster at {address} is unreachable ({e.strerror or type(e).__name__}); "
                           f"check the address (`ray status` on the head node; a Ray Client port is opened by "
                           f"`ray start --head --ray-client-server-port={port}`){hint}.") from None


def connect(address: str | None = None, num_cpus: int | None = None, hint: str = ""):
    """Start a fresh local Ray instance (``address=None``) or join the cluster at ``address``
    (checked to answer first), unless Ray is already initialised in this process. Returns ``(ray, started_here)``: whoever
    started it shuts it down."""
    ray = import_ray()
    if address is not None:
        check_reachable(address, hint)
    if ray.is_initialized():
        return ray, False
    kwargs = {"include_dashboard": False, "log_to_driver": False}
    if address is None:
        if num_cpus:
            kwargs["num_cpus"] = int(num_cpus)
        ray.init(address="local", **kwargs)
        return ray, True
    kwargs["runtime_env"] = {"working_dir": str(ROOT), "excludes": EXCLUDES}
    try:
        ray.init(address=address, **kwargs)
    except (ConnectionError, RuntimeError) as e:
        first = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise ClusterError(
            f"Could not connect to the Ray cluster at {address} ({first}); check the address (`ray status` on "
            "the head node) and, if the cluster uses token authentication, set RAY_AUTH_MODE=token with its "
            f"token available (~/.ray/auth_token or RAY_AUTH_TOKEN){hint}.") from None
    return ray, True
