"""One process-wide compute scheduler: bounded memory and a fair queue across sessions.

Every heavy job of the app (maps, certificates, attacks, Compare, Learn steps) asks
:data:`SCHEDULER` for a slot before it runs (:meth:`Scheduler.run`). Guarantees:

* **Memory**: the estimated needs (:func:`rrs.compute.memory.estimate`) of the running jobs
  never add up to more than the budget; a job that does not fit the free budget at its batch
  size starts with the largest batch that does (smoothing is batch-invariant, so the result
  is the same), and a job that does not fit the whole budget even at batch 1 is refused with
  :class:`Refused`, whose message says what to lower — it never runs into an out-of-memory.
* **Fairness**: at most one running job per session and at most ``max_jobs`` at once; when a
  slot frees, sessions are served round-robin (the session served last goes to the back), and
  a session's own jobs run in the order they came. The next session in line is never bypassed
  by a smaller job of another session, so big jobs do not starve.
* **Cancellation**: a job's :class:`CancelToken` is checked in every progress callback (and
  while it waits); any exception out of the wait or the job — a cancelled token, Streamlit
  stopping a script for a rerun or a closed session — frees its slot.

While a job waits, ``on_wait(position, seconds)`` is called about every ``poll`` seconds with
its queue position (1 = next) and the predicted wait (from the predicted durations of the jobs
running and ahead of it; ``None`` while nothing was measured).
"""
from __future__ import annotations

import itertools
import os
import threading
import time
from collections import deque
from contextlib import contextmanager
from dataclasses import dataclass, field

from . import memory as M

__all__ = ["Scheduler", "Ticket", "CancelToken", "Cancelled", "Refused", "SCHEDULER", "get_scheduler",
           "default_max_jobs"]


class Cancelled(Exception):
    """The job was cancelled (its token was set) before or while it ran."""


class Refused(ValueError):
    """A job that cannot fit the memory budget even at batch 1; the message says what to lower."""


class CancelToken:
    """Set once to cancel a job; :meth:`check` raises :class:`Cancelled` when set."""

    def __init__(self):
        self._event = threading.Event()

    def cancel(self) -> None:
        self._event.set()

    @property
    def cancelled(self) -> bool:
        return self._event.is_set()

    def check(self) -> None:
        if self._event.is_set():
            raise Cancelled("the job was cancelled")


@dataclass(eq=False)
class Ticket:
    """One job in the scheduler: queued, then running with ``batch`` and ``need`` bytes, then done."""

    id: int
    session: str
    cost: M.JobCost
    label: str
    seconds: float | None
    token: CancelToken = field(default_factory=CancelToken)
    state: str = "queued"
    batch: int | None = None
    need: int = 0
    started: float | None = None
    fraction: float = 0.0

    def report(self, done, total) -> None:
        """A progress update of the running job: raises :class:`Cancelled` if its token is set,
        else records the fraction done (the predicted waits of others follow it)."""
        self.token.check()
        if total:
            self.fraction = min(1.0, max(0.0, float(done) / float(total)))

    def guard(self, progress=None):
        """The progress callback to hand the job: :meth:`report`, then ``progress`` (if any)."""
        def guarded(done, total):
            self.report(done, total)
            if progress is not None:
                progress(done, total)
        return guarded


def default_max_jobs(device: str = "cpu", cpus: int | None = None, gpus: int = 0) -> int:
    """``RRS_MAX_JOBS``, else one job per two cores on the CPU (each job already uses torch's
    threads), 4 per GPU. ``cpus``/``gpus``: what a Ray cluster has (default this machine)."""
    text = os.environ.get("RRS_MAX_JOBS", "").strip()
    if text:
        return max(1, int(text))
    if gpus:
        return 4 * int(gpus)
    if str(device).startswith("cuda"):
        return 4
    return max(1, (cpus or os.cpu_count() or 1) // 2)


class Scheduler:
    """Admission against a memory budget plus a round-robin queue across sessions.

    Args:
        budget: bytes the running jobs may need together (default
            :func:`rrs.compute.memory.default_budget` of ``device``).
        max_jobs: most jobs running at once (default :func:`default_max_jobs`).
        device: ``"cpu"`` or ``"cuda"``, where the jobs run (for the defaults).
        backend: what runs a job's function (default in-process, see :mod:`rrs.compute.backends`).
    """

    def __init__(self, budget: int | None = None, max_jobs: int | None = None, device: str = "cpu",
                 backend=None):
        self.device = device
        self.budget = int(M.default_budget(device) if budget is None else budget)
        self.max_jobs = int(default_max_jobs(device) if max_jobs is None else max_jobs)
        self.backend = backend
        self._cond = threading.Condition()
        self._ids = itertools.count(1)
        self._waiting: dict[str, deque] = {}
        self._order: deque = deque()          # sessions with waiting tickets, next served first
        self._running: dict[int, Ticket] = {}
        self._durations: dict[str, float] = {}
        self.peak_used = 0
        self.admissions: list[tuple[str, int]] = []   # (session, ticket id) in admission order

    # ----------------------------------------------------------------- bookkeeping
    @property
    def used(self) -> int:
        with self._cond:
            return sum(t.need for t in self._running.values())

    def snapshot(self) -> dict:
        with self._cond:
            return {"budget": self.budget, "used": sum(t.need for t in self._running.values()),
                    "running": len(self._running), "queued": sum(len(q) for q in self._waiting.values()),
                    "max_jobs": self.max_jobs, "peak_used": self.peak_used}

    def refusal(self, cost: M.JobCost) -> str | None:
        """The message refusing ``cost`` (it does not fit the budget even at batch 1), or None."""
        if M.estimate(cost, 1 if cost.adaptable else None) <= self.budget:
            return None
        need = M.estimate(cost, 1 if cost.adaptable else None) / M.GB
        lower = "the EOT samples" if cost.eot else "the batch"
        return (f"This {cost.kind} needs about {need:.1f} GB even computed one sample at a time, more than "
                f"the {self.budget / M.GB:.1f} GB this server gives one job; lower {lower} or the working "
                f"resolution ({cost.size}×{cost.size} now), or choose a smaller model.")

    # -------------------------------------------------------------------- queue
    def submit(self, session: str, cost: M.JobCost, label: str = "", seconds: float | None = None) -> Ticket:
        """Queue a job of ``session``; raises :class:`Refused` if it can never fit."""
        message = self.refusal(cost)
        if message:
            raise Refused(message)
        with self._cond:
            t = Ticket(next(self._ids), str(session), cost, label or cost.kind, seconds)
            q = self._waiting.setdefault(t.session, deque())
            q.append(t)
            if t.session not in self._order:
                self._order.append(t.session)
            self._dispatch()
            return t

    def _busy_sessions(self) -> set:
        return {t.session for t in self._running.values()}

    def _dispatch(self) -> None:
        """Admit waiting jobs, round-robin, while slots and memory allow (lock held)."""
        while len(self._running) < self.max_jobs:
            busy = self._busy_sessions()
            session = next((s for s in self._order if s not in busy), None)
            if session is None:
                return
            head = self._waiting[session][0]
            batch = M.fit_batch(head.cost, self.budget - sum(t.need for t in self._running.values()))
            if batch is None:
                return               # the next in line waits for memory; nobody overtakes it
            self._waiting[session].popleft()
            self._order.remove(session)
            if self._waiting[session]:
                self._order.append(session)
            else:
                del self._waiting[session]
            head.state, head.batch, head.need, head.started = "running", batch, M.estimate(head.cost, batch), \
                time.perf_counter()
            self._running[head.id] = head
            self.admissions.append((head.session, head.id))
            self.peak_used = max(self.peak_used, sum(t.need for t in self._running.values()))
            self._cond.notify_all()

    def position(self, ticket: Ticket) -> int:
        """1 + the number of jobs that start before ``ticket`` (0 once it runs)."""
        with self._cond:
            return self._position(ticket)

    def _position(self, ticket: Ticket) -> int:
        if ticket.state != "queued":
            return 0
        order = deque(self._order)           # replay the round-robin over the queues
        queues = {s: deque(q) for s, q in self._waiting.items()}
        n = 0
        while order:
            s = order.popleft()
            n += 1
            if queues[s].popleft() is ticket:
                return n
            if queues[s]:
                order.append(s)
        return n + 1

    def _expected(self, t: Ticket) -> float | None:
        return t.seconds if t.seconds is not None else self._durations.get(t.cost.kind)

    def _left(self, t: Ticket, now: float) -> float | None:
        """Seconds a running job still needs: from its own progress once it has reported some
        (a prediction made before it started can be far off), else predicted − elapsed."""
        elapsed = now - t.started
        if t.fraction >= 0.01:
            return elapsed * (1.0 - t.fraction) / t.fraction
        e = self._expected(t)
        return None if e is None else max(0.0, e - elapsed)

    def predicted_wait(self, ticket: Ticket) -> float | None:
        """Seconds until ``ticket`` starts, from the predicted durations of the jobs running and
        ahead of it shared over the slots (``None`` when some duration is unknown)."""
        with self._cond:
            if ticket.state != "queued":
                return 0.0
            now = time.perf_counter()
            total = 0.0
            for t in self._running.values():
                left = self._left(t, now)
                if left is None:
                    return None
                total += left
            ahead = self._position(ticket) - 1
            if not ahead:
                return total / max(1, self.max_jobs)
            queued = [t for q in self._waiting.values() for t in q if t is not ticket]
            known = [self._expected(t) for t in queued]
            if not known or any(k is None for k in known):
                return None
            return (total + ahead * sum(known) / len(known)) / max(1, self.max_jobs)

    def wait(self, ticket: Ticket, on_wait=None, poll: float = 0.25) -> int:
        """Block until ``ticket`` runs; return its batch size. Calls ``on_wait(position, seconds)``
        while queued; an exception there or a cancelled token removes the ticket."""
        try:
            while True:
                ticket.token.check()
                with self._cond:
                    if ticket.state == "running":
                        return ticket.batch
                    position = self._position(ticket)
                if on_wait is not None:
                    on_wait(position, self.predicted_wait(ticket))
                with self._cond:
                    if ticket.state != "running":
                        self._cond.wait(poll)
        except BaseException:
            self.release(ticket)
            raise

    def release(self, ticket: Ticket) -> None:
        """Free ``ticket``'s slot (or take it out of the queue) and admit the next jobs."""
        with self._cond:
            if ticket.state == "running":
                self._running.pop(ticket.id, None)
                elapsed = time.perf_counter() - ticket.started
                old = self._durations.get(ticket.cost.kind)
                self._durations[ticket.cost.kind] = elapsed if old is None else 0.5 * old + 0.5 * elapsed
            elif ticket.state == "queued":
                q = self._waiting.get(ticket.session)
                if q is not None and ticket in q:
                    q.remove(ticket)
                    if not q:
                        del self._waiting[ticket.session]
                        self._order.remove(ticket.session)
            ticket.state = "done"
            self._dispatch()
            self._cond.notify_all()

    def cancel_session(self, session: str) -> int:
        """Cancel every queued and running job of ``session`` (e.g. when it ends); returns how many."""
        with self._cond:
            tickets = list(self._waiting.get(str(session), ())) + [
                t for t in self._running.values() if t.session == str(session)]
        for t in tickets:
            t.token.cancel()
        with self._cond:
            self._cond.notify_all()
        return len(tickets)

    # ---------------------------------------------------------------------- run
    @contextmanager
    def slot(self, session: str, cost: M.JobCost, on_wait=None, label: str = "", seconds: float | None = None,
             token: CancelToken | None = None):
        """Queue, wait for a slot, and hold it for the ``with`` block: yields the running
        :class:`Ticket` (``ticket.batch`` is the admitted batch, ``ticket.token`` its cancel
        token). For work that is not one function call, such as the Certify page's anytime
        sampling, which redraws the page between checkpoints. The slot is freed however the
        block ends."""
        ticket = self.submit(session, cost, label, seconds)
        if token is not None:
            ticket.token = token
        self.wait(ticket, on_wait)
        try:
            yield ticket
        finally:
            self.release(ticket)
            M.give_back_free_memory()     # what the job freed goes back to the system

    def run(self, session: str, cost: M.JobCost, fn, *args, progress=None, on_wait=None, label: str = "",
            seconds: float | None = None, token: CancelToken | None = None, **kwargs):
        """Queue, wait for a slot, then ``fn(*args, progress=…, batch_size=…, **kwargs)``.

        ``batch_size`` is the admitted batch (``None`` is not passed for jobs whose function takes
        no batch: give ``cost.adaptable=False`` and a ``batch`` the function ignores). The progress
        callback passed to ``fn`` checks the token first, so a cancelled job stops at its next
        update. The slot is freed however ``fn`` ends.
        """
        with self.slot(session, cost, on_wait, label, seconds, token) as ticket:
            if cost.adaptable:
                kwargs["batch_size"] = ticket.batch
            if self.backend is None:
                return fn(*args, progress=ticket.guard(progress), **kwargs)
            return self.backend.execute(fn, args, kwargs, ticket.guard(progress), ticket)


_LOCK = threading.Lock()
SCHEDULER: Scheduler | None = None


def get_scheduler(device: str = "cpu") -> Scheduler:
    """The process-wide scheduler (created on first use from ``RRS_MEMORY_BUDGET``,
    ``RRS_MAX_JOBS`` and ``RRS_BACKEND``). With a Ray backend the budget and the slots are the
    cluster's (:meth:`rrs.compute.backends.RayBackend.capacity`), not this machine's."""
    global SCHEDULER
    with _LOCK:
        if SCHEDULER is None:
            from .backends import backend_from_env
            backend = backend_from_env()
            if backend is None:
                SCHEDULER = Scheduler(device=device)
            else:
                cap = backend.capacity()
                SCHEDULER = Scheduler(budget=M.default_budget(available=cap["memory"]),
                                      max_jobs=default_max_jobs(cpus=cap["cpus"], gpus=cap["gpus"]),
                                      device="cuda" if cap["gpus"] else "cpu", backend=backend)
        return SCHEDULER
