"""The app's heavy work through the process-wide scheduler (:mod:`rrs.compute.scheduler`).

:func:`run` is what :mod:`ui.caching` calls on a cache miss: it describes the job's memory
(:class:`rrs.compute.memory.JobCost` from the model, the working size, the batch, the EOT
samples), predicts its duration from :data:`rrs.timing.RATES`, queues it under the Streamlit
session's id and runs it with the batch the scheduler admits. While it waits, the page's
progress bar (``progress.queued``) says "Queued: position N, about S s". Plain Python apart
from reading the session id, so it also works from scripts and tests (session ``"script"``).
"""
from __future__ import annotations

from dataclasses import replace

import torch

from rrs.compute import JobCost, get_scheduler
from rrs.compute import device as D
from rrs.compute import policy
from rrs.settings import AttackSettings
from rrs.workflows import advice as WA
from rrs.workflows import certify as WC

from . import compute as C
from .budgets import device_label, plan_eot

__all__ = ["session_id", "job_cost", "run", "anytime", "pilots", "break_it", "contrast", "contrast_at", "break_radii", "robustness", "certify",
           "certify_job", "compare_job"]


def session_id() -> str:
    """The Streamlit session running this script (``"script"`` outside a session)."""
    try:
        from streamlit.runtime.scriptrunner import get_script_run_ctx
        ctx = get_script_run_ctx(suppress_warning=True)
    except Exception:  # pragma: no cover - streamlit internals moved
        ctx = None
    return ctx.session_id if ctx is not None else "script"


def _batch(model, x, attribution: str) -> int:
    return D.batch_size(model, x, attribution, policy.batch_size_for(x, attribution))


def job_cost(kind: str, model, x: torch.Tensor, settings=None, attack=None) -> JobCost:
    """What the job needs: maps and attacks by batch (adaptable), attacks also by EOT samples."""
    name = getattr(model, "name", type(model).__name__)
    if settings is None:
        return JobCost(kind, name, int(x.shape[-1]), batch=0, adaptable=False)
    eot = 0
    if attack is not None:
        eot = plan_eot(attack.eot, x, model)[0] if settings.smoothed else 1
    return JobCost(kind, name, int(x.shape[-1]), batch=_batch(model, x, settings.attribution), eot=eot)


def _seconds(kind, model, x, settings) -> float | None:
    if kind != "map" or settings is None or not settings.smoothed:
        return None
    return policy.predict_seconds(model, x, settings, settings.samples)


def run(kind: str, fn, model, x, settings, *rest, progress=None, attack=None):
    """``fn(model, x, settings, *rest, progress=…, batch_size=…)`` through the scheduler.

    A smoothed map's precision becomes the device's (:func:`rrs.compute.device.resolve`: bf16
    where the device computes it natively and it agrees with fp32, on CUDA and on the CPU);
    the result's settings record it.
    """
    settings = D.resolve(model, x, settings)
    return _queue(model, job_cost(kind, model, x, settings, attack), fn, model, x, settings, *rest,
                  progress=progress, label=kind, seconds=_seconds(kind, model, x, settings))


def _queue(model, cost: JobCost, fn, *args, progress=None, label: str = "", seconds=None):
    """``fn(*args, …)`` through the scheduler of ``model``'s device, in this session's queue; a
    waiting page's bar (``progress.queued``) shows its position."""
    return get_scheduler(D.device_of(model).type).run(
        session_id(), cost, fn, *args, progress=progress, on_wait=getattr(progress, "queued", None),
        label=label, seconds=seconds)


def anytime(model, x, settings, certify, progress=None):
    """The Certify page's anytime sampling (:func:`rrs.workflows.certify.sample_run` for the
    scheme of ``certify``, a :class:`~rrs.settings.CertifySettings`; its device labelled) in one
    scheduler slot, held from the first sample to the last checkpoint (or until the caller
    closes the generator: Stop, a widget change): queued like every job, with its position and
    wait on the page's bar, and sampled with the batch the memory budget admits. Yields the
    checkpoints. It samples in this process also under a Ray backend (its checkpoints redraw
    the page between batches); the slot still bounds its memory."""
    cost = job_cost("map", model, x, settings)
    scheduler = get_scheduler(D.device_of(model).type)
    with scheduler.slot(session_id(), cost, on_wait=getattr(progress, "queued", None), label="certify",
                        seconds=_seconds("map", model, x, settings)) as ticket:
        label = device_label(model)
        for sampled in WC.sample_run(model, x, settings, certify, progress=ticket.guard(progress),
                                     batch_size=ticket.batch or policy.batch_size_for(x, settings.attribution)):
            yield replace(sampled, device=label)


def pilots(model, x, settings, cell_options, progress=None):
    """The Certify page's pilot maps (:func:`rrs.workflows.advice.run_pilots`) through the scheduler."""
    return run("pilots", WA.run_pilots, model, x, settings, cell_options, progress=progress)


def break_it(model, x, view, beta: float, kind: str, progress=None):
    """"Try to break it" (:func:`rrs.workflows.advice.break_it`, attacks with ``BREAK_EOT`` noise draws
    per step) through the scheduler, its memory estimated as such an attack."""
    settings = view.sampled.settings
    cost = job_cost("attack", model, x, settings, AttackSettings(objective="topk", eot=WA.BREAK_EOT))
    return _queue(model, cost, WA.break_it, model, x, view, beta, kind, progress=progress, label="attack")


def contrast(model, x, view, base: str, beta: float, kind: str, progress=None):
    """The raw-versus-certified contrast (:func:`rrs.workflows.advice.contrast_at_radius`) through
    the scheduler, its memory estimated as the smoothed map's attack."""
    cost = job_cost("attack", model, x, view.sampled.settings, AttackSettings(objective="topk", eot=WA.BREAK_EOT))
    return _queue(model, cost, WA.contrast_at_radius, model, x, view, base, beta, kind, progress=progress,
                  label="attack")


def contrast_at(model, x, map_result, radius: float, claimed: tuple, norm, progress=None):
    """The Learn page's contrast at its certificate's radius (:func:`ui.compute.contrast_at`)
    through the scheduler, its memory estimated as the smoothed map's attack."""
    cost = job_cost("attack", model, x, map_result.settings, AttackSettings(objective="topk", eot=WA.BREAK_EOT))
    return _queue(model, cost, C.contrast_at, model, x, map_result, radius, claimed, norm, progress=progress,
                  label="attack")


def robustness(model, x, methods, settings, progress=None):
    """A robustness profile (:func:`rrs.workflows.robustness.robustness_profile`) through the scheduler,
    its memory estimated as the attack of its first smoothed method (else its first method)."""
    from rrs.workflows.robustness import robustness_profile

    first = next((m for m in methods if m.smoothed), methods[0])
    cost = job_cost("attack", model, x, first, AttackSettings(objective="topk", eot=settings.eot))
    return _queue(model, cost, robustness_profile, model, x, tuple(methods), settings, progress=progress,
                  label="robustness")


def break_radii(model, x, view, base: str, progress=None):
    """Each map's break radius (:func:`rrs.workflows.advice.break_radii`) through the scheduler."""
    cost = job_cost("attack", model, x, view.sampled.settings, AttackSettings(objective="topk", eot=WA.BREAK_EOT))
    return _queue(model, cost, WA.break_radii, model, x, view, base, progress=progress, label="robustness")


def compare_job(model, x, settings, methods, ts, attack, certify, progress=None, batch_size=None):
    """:func:`ui.compute.compare_vs_t` in the scheduler's calling convention."""
    return C.compare_vs_t(model, x, methods, ts, settings, attack, certify, progress=progress,
                          batch_size=batch_size)


def certify_job(map_result, certify, progress=None):
    """:func:`ui.compute.map_certificates` in the scheduler's calling convention."""
    return C.map_certificates(map_result, certify)


def certify(model, map_result, certify_settings):
    """Certificates of a map through the scheduler (small memory, but fair CPU time)."""
    x_size = torch.empty(3, map_result.input_size, map_result.input_size)
    return _queue(model, job_cost("certificate", model, x_size), certify_job, map_result, certify_settings,
                  label="certificate")
