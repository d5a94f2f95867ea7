"""Starting or joining Ray, one way for the whole project.

The app's Ray backend (:mod:`rrs.compute.backends`, ``RRS_BACKEND``) and the study's runner
(:mod:`rrs.study.runner`, ``--ray`` / ``--ray-address``) both call :func:`connect`:

* no address: a fresh local instance (``address="local"``, never a stale one); its workers
  import the installed ``rrs`` (and ``ui``) packages of this interpreter. A busy machine can make
  its start-up time out (Ray 2.x: the GCS port wait, ``RAY_gcs_server_port_wait_time_s``, default
  30 s, which :func:`connect` raises to :data:`START_WAIT_S` unless set; and the raylet's
  registration wait, hard-coded at 30 s in ``ray._private.node.Node``, whose failure reads "timed
  out during startup"), so a failed start is cleaned up (the half-started GCS/raylet processes,
  children of this process, are ended) and tried once more, then reported with what to do;
* ``ray://host:port`` or ``host:port``: that cluster, checked with a plain TCP connection first
  (``ray.init`` itself retries for minutes); it gets this checkout as its ``working_dir``
  (code and the tiny model's weights, without :data:`EXCLUDES`), so its nodes need only
  rrs's dependencies installed.

Failures are one-line :class:`ClusterError` messages (a ``ValueError``, so the command lines and
the app show them as such).
"""
from __future__ import annotations

import logging
import os
import signal
import socket
import time
from pathlib import Path

__all__ = ["ClusterError", "EXCLUDES", "ROOT", "START_WAIT_S", "START_ATTEMPTS", "import_ray", "check_reachable",
           "connect"]

log = logging.getLogger(__name__)

#: Seconds a local head's GCS gets to publish its port (Ray's default is 30), unless the
#: environment sets ``RAY_gcs_server_port_wait_time_s`` itself.
START_WAIT_S = 120
#: Starts of a local head before giving up (the first plus one retry).
START_ATTEMPTS = 2
_GCS_WAIT_ENV = "RAY_gcs_server_port_wait_time_s"

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
        _start_local(ray, kwargs, hint)
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


def _ray_children(ray) -> set[int]:
    """PIDs of this process's children running Ray's binaries (Linux ``/proc``; elsewhere none)."""
    me, ray_dir, pids = os.getpid(), str(Path(ray.__file__).parent), set()
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            ppid = int(stat.read_text().rsplit(")", 1)[1].split()[1])
            if ppid == me and ray_dir in (stat.parent / "cmdline").read_bytes().decode(errors="replace"):
                pids.add(int(stat.parent.name))
        except (OSError, IndexError, ValueError):
            continue
    return pids


def _end(pids: set[int], grace: float = 5.0) -> None:
    """End the given child processes: SIGTERM, then SIGKILL after ``grace`` seconds."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        for pid in pids:
            try:
                os.kill(pid, sig)
            except OSError:
                pass
        deadline = time.monotonic() + grace
        while pids and time.monotonic() < deadline:
            for pid in list(pids):
                try:
                    if os.waitpid(pid, os.WNOHANG)[0] == pid:
                        pids.discard(pid)
                except ChildProcessError:
                    pids.discard(pid)
            time.sleep(0.05)
        if not pids:
            return


def _start_local(ray, kwargs: dict, hint: str) -> None:
    """``ray.init(address="local")`` with a longer GCS wait and one retry after cleaning up."""
    wait = os.environ.get(_GCS_WAIT_ENV)
    os.environ[_GCS_WAIT_ENV] = wait if wait is not None else str(START_WAIT_S)
    last = ""
    try:
        for attempt in range(1, START_ATTEMPTS + 1):
            before = _ray_children(ray)
            log.info("starting a local Ray head (attempt %d of %d)", attempt, START_ATTEMPTS)
            try:
                ray.init(address="local", **kwargs)
                return
            except Exception as e:  # Ray raises bare Exception / RuntimeError / TimeoutError here
                last = str(e).splitlines()[0] if str(e) else type(e).__name__
                log.warning("Ray's local head did not start (attempt %d of %d): %s", attempt, START_ATTEMPTS, last)
                ray.shutdown()                      # whatever ray.init registered
                _end(_ray_children(ray) - before)   # the half-started GCS / raylet it leaves behind
    finally:
        if wait is None:
            os.environ.pop(_GCS_WAIT_ENV, None)
        else:
            os.environ[_GCS_WAIT_ENV] = wait
    raise ClusterError(
        f"Ray's local head did not start, {START_ATTEMPTS} times (GCS wait {os.environ.get(_GCS_WAIT_ENV, START_WAIT_S)}"
        f" s, raylet registration 30 s; last error: {last}); the machine may be busy: close other heavy work, "
        "or start a head yourself with `ray start --head` and join it (the study: `--ray-address auto`; the "
        f"app: RRS_BACKEND=ray://127.0.0.1:10001){hint}.")
