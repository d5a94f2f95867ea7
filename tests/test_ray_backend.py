"""The Ray backend on a real local Ray instance (CPU): the same numbers as in-process for the
same seed, progress, cancellation with ``ray.cancel``, and a one-line message when the
cluster is unreachable."""
from __future__ import annotations

import socket
import threading

import numpy as np
import pytest
import torch

import ray  # the cluster extra is part of the test extra

from rrs.compute import memory as M
from rrs.compute.backends import BackendError, RayBackend, backend_from_env, parse_backend
from rrs.compute.scheduler import Cancelled, CancelToken, Scheduler
from rrs.images import load_sample, to_tensor
from rrs.settings import AttackSettings, MapSettings
from ui import compute as C
from ui import jobs



@pytest.fixture(scope="module")
def backend():
    if ray.is_initialized():
        pytest.skip("another Ray session is active in this process")
    b = RayBackend(None, num_cpus=2)
    yield b
    b.shutdown()


@pytest.fixture
def scheduler(backend):
    return Scheduler(budget=8 * M.GB, max_jobs=2, backend=backend)


def test_map_on_ray_equals_in_process_and_reports_progress(scheduler, tiny, x32):
    settings = MapSettings(method="rrs", samples=48, cell=4, seed=2)
    seen = []
    remote = scheduler.run("A", M.JobCost("map", "tiny", 32), C.compute_map, tiny, x32, settings,
                           progress=lambda d, t: seen.append((d, t)))
    local = C.compute_map(tiny, x32, settings)
    assert np.array_equal(remote.map, local.map) and np.array_equal(remote.stats.sq_mean, local.stats.sq_mean)
    assert seen[-1] == (48, 48)
    done = [d for d, _ in seen]
    assert done == sorted(done)
    assert scheduler.snapshot()["running"] == 0


def test_attack_on_ray_equals_in_process(scheduler, tiny, x32):
    settings = MapSettings(method="rrs", samples=8, cell=4, seed=1)
    attack = AttackSettings(steps=3, eot=2)
    remote = scheduler.run("A", M.JobCost("attack", "tiny", 32, eot=2), C.attack_method, tiny, x32, settings,
                           attack)
    local = C.attack_method(tiny, x32, settings, attack)
    assert torch.equal(remote.result.attacked_map, local.result.attacked_map)
    assert remote.row()["attacked_topk_intersection"] == local.row()["attacked_topk_intersection"]
    assert remote.floor == local.floor


def test_errors_of_a_remote_job_keep_their_type(scheduler, tiny, x32):
    vanilla = C.compute_map(tiny, x32, MapSettings(method="vanilla", cell=4))
    with pytest.raises(ValueError, match="certificates here are for RRS maps"):
        scheduler.run("A", M.JobCost("certificate", "tiny", 32, batch=0, adaptable=False),
                      jobs.certify_job, vanilla, None)


def test_cancel_stops_the_remote_task_and_frees_the_slot(scheduler, backend, tiny, x32):
    # the app caps T at 8,192 on a CPU: at 32 px that is 3 s, which a loaded machine's cancel
    # could arrive after (the task then returned its map: "DID NOT RAISE"); at 96 px, 25 s
    long, x96 = MapSettings(method="rrs", samples=1_000_000, cell=4), to_tensor(load_sample("coffee"), 96)
    token, started, outcome = CancelToken(), threading.Event(), {}

    def progress(done, total):
        if done > 0:
            started.set()

    def first():
        try:
            scheduler.run("A", M.JobCost("map", "tiny", 96, batch=1, adaptable=False), C.compute_map, tiny, x96,
                          long, progress=progress, token=token)
        except Cancelled:
            outcome["A"] = "cancelled"

    t = threading.Thread(target=first)
    t.start()
    assert started.wait(120), "no progress came back from the Ray task"
    token.cancel()
    t.join(60)
    assert outcome == {"A": "cancelled"}
    assert scheduler.snapshot()["running"] == 0
    with pytest.raises((ray.exceptions.TaskCancelledError, ray.exceptions.RayTaskError)):
        ray.get(backend.cancelled[-1], timeout=60)
    quick = scheduler.run("B", M.JobCost("map", "tiny", 32), C.compute_map, tiny, x32,
                          MapSettings(method="rrs", samples=4, cell=4))
    assert quick.samples_used == 4


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_unreachable_cluster_gives_one_clear_line(tiny, x32):
    address = f"ray://127.0.0.1:{_free_port()}"
    s = Scheduler(budget=8 * M.GB, max_jobs=1, backend=RayBackend(address))
    with pytest.raises(BackendError) as info:
        s.run("A", M.JobCost("map", "tiny", 32), C.compute_map, tiny, x32, MapSettings(samples=2))
    text = str(info.value)
    assert "\n" not in text and address in text and "unreachable" in text and "RRS_BACKEND" in text
    assert s.snapshot()["running"] == 0


def test_backend_setting(monkeypatch):
    assert parse_backend(None) == ("inprocess", None)
    assert parse_backend("ray://10.0.0.5:10001") == ("ray", "ray://10.0.0.5:10001")
    assert parse_backend("local") == ("ray", None)
    monkeypatch.setenv("RRS_BACKEND", "")
    assert backend_from_env() is None
    for bad in ("ray://nohost", "spark://x:1"):
        with pytest.raises(BackendError, match="RRS_BACKEND"):
            parse_backend(bad)


def test_the_budget_and_slots_are_the_clusters_and_tasks_reserve_their_memory(backend, tiny, x32, monkeypatch):
    """With RRS_BACKEND the scheduler admits against what the cluster offers (Ray's memory
    resource here, a CPU instance), not the UI machine's memory; each task asks Ray for the
    memory its ticket was admitted with, so Ray also places it only where that is free."""
    from rrs.compute import scheduler as S

    cap = backend.capacity()
    res = ray.cluster_resources()
    assert cap == {"memory": int(res["memory"]), "cpus": int(res["CPU"]), "gpus": 0}
    monkeypatch.setenv("RRS_BACKEND", "local")
    monkeypatch.delenv("RRS_MEMORY_BUDGET", raising=False)
    monkeypatch.delenv("RRS_MAX_JOBS", raising=False)
    monkeypatch.setattr(S, "SCHEDULER", None)
    s = S.get_scheduler("cpu")
    assert s.backend is not None and s.budget == int(M.DEFAULT_SHARE * cap["memory"])
    assert s.max_jobs == max(1, cap["cpus"] // 2)
    monkeypatch.setenv("RRS_MEMORY_BUDGET", "50%")
    monkeypatch.setattr(S, "SCHEDULER", None)
    assert S.get_scheduler("cpu").budget == cap["memory"] // 2

    def assigned(model, x, settings, progress=None, batch_size=None):
        import ray as r
        return r.get_runtime_context().get_assigned_resources()

    sched = Scheduler(budget=8 * M.GB, max_jobs=1, backend=backend)
    job = M.JobCost("map", "tiny", 32)
    got = sched.run("A", job, assigned, tiny, x32, MapSettings(samples=2))
    assert got["CPU"] == 1 and got["memory"] == M.estimate(job)
