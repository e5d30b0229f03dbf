"""The job worker: claims due jobs one at a time and runs each to its end.

While a job runs, a heartbeat thread extends its lease every third of
``settings.job_lease_seconds`` and reads whether it was cancelled; a job whose worker died
(no heartbeat until its lease passed) is claimed again by any worker. A kind's function
returns the result, or raises:

- :class:`JobCancelled` (from ``progress``/``check_cancelled``): cancelled; or, when the
  worker is stopping, given back to the queue (this run not counted); or, when the claim was
  lost, nothing is written;
- a :class:`labelfarm.errors.LabelfarmError` of the request kind (4xx: bad parameters, a
  missing row) or an :class:`ExecutorError` that is not ``retryable``: failed at once;
- anything else: retried with back-off until ``max_attempts``, then failed. The message is
  stored; the traceback is only logged.
"""

from __future__ import annotations

import logging
import os
import secrets
import socket
import threading
import time
from collections.abc import Callable
from typing import Any

from labelfarm.db.engine import Database
from labelfarm.errors import LabelfarmError
from labelfarm.jobs import refit
from labelfarm.jobs.context import JobContext
from labelfarm.jobs.errors import ExecutorError, JobCancelled
from labelfarm.jobs.kinds import get_kind
from labelfarm.jsonutil import dumps
from labelfarm.services import job_claims, job_queue
from labelfarm.services.job_claims import Claim
from labelfarm.services.job_queue import Job
from labelfarm.services.media import MediaStore
from labelfarm.settings import Settings

log = logging.getLogger("labelfarm.worker")


def default_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"


def error_message(exc: BaseException) -> str:
    """What users see of a failure: its message, never a traceback."""
    if isinstance(exc, LabelfarmError):
        return exc.message
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def is_final(exc: BaseException) -> bool:
    """A failure that another run would only repeat."""
    if isinstance(exc, ExecutorError):
        return not exc.retryable
    return isinstance(exc, LabelfarmError) and 400 <= exc.status < 500


class Heartbeat:
    """A thread keeping a run's lease alive and its context told of cancellation."""

    def __init__(self, worker: Worker, ctx: JobContext) -> None:
        self.worker = worker
        self.ctx = ctx
        self.every = worker.settings.job_lease_seconds / 3
        self._ended = threading.Event()
        self._thread = threading.Thread(
            target=self._beat, name=f"heartbeat-{ctx.job.id}", daemon=True
        )

    def __enter__(self) -> Heartbeat:
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._ended.set()
        self._thread.join()

    def _beat(self) -> None:
        w = self.worker
        while not self._ended.wait(self.every):
            try:
                beat = w.db.run(
                    job_claims.heartbeat,
                    self.ctx.claim,
                    now=w.clock(),
                    lease_seconds=w.settings.job_lease_seconds,
                )
            except Exception:  # the database hiccupped; the next beat tries again
                log.exception("heartbeat of job %s failed", self.ctx.job.id)
                continue
            self.ctx.note(beat)
            if not beat.owned:
                log.warning("job %s was taken over by another worker", self.ctx.job.id)
                return


class Worker:
    """Runs jobs from the database, one at a time."""

    def __init__(
        self,
        settings: Settings,
        db: Database,
        media: MediaStore,
        *,
        name: str | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.settings = settings
        self.db = db
        self.media = media
        self.name = name or default_name()
        self.clock = clock

    def run_one(self, stop: threading.Event | None = None) -> Job | None:
        """Claim one due job and run it to its end: the row as the run left it (or as it
        is now, when another worker took the job over); None when no job is due."""
        if not self.db.run(job_claims.any_due, now=self.clock()):
            return None
        job = self.db.run(
            job_claims.claim_next,
            worker=self.name,
            now=self.clock(),
            lease_seconds=self.settings.job_lease_seconds,
        )
        if job is None:
            return None
        log.info("job %s (%s) run %s of %s", job.id, job.kind, job.attempts, job.max_attempts)
        claim = Claim(job.id, self.name, job.attempts)
        ctx = JobContext(
            job, self.settings, self.db, self.media, claim=claim, clock=self.clock, stop=stop
        )
        ended = self._run(ctx)
        return ended if ended is not None else self.db.run(job_queue.get_job, job.id)

    def _run(self, ctx: JobContext) -> Job | None:
        claim, now = ctx.claim, self.clock
        try:
            kind = get_kind(ctx.job.kind)
        except LabelfarmError as exc:
            return self._failed(ctx, exc)
        with Heartbeat(self, ctx):
            try:
                result = kind.run(ctx)
            except JobCancelled:
                if ctx.lost:
                    return None
                if ctx.cancel_requested:
                    return self.db.run(job_claims.finish_cancelled, claim, now=now())
                if ctx.stopping:
                    return self.db.run(job_claims.give_back, claim, now=now())
                return self._failed(ctx, JobCancelled("the job stopped itself"))
            except Exception as exc:
                return self._failed(ctx, exc)
        if ctx.lost:
            return None
        try:
            dumps(result)
        except TypeError as exc:  # a bug of the kind: another run would return the same
            return self._failed(ctx, TypeError(f"the job's result is not JSON: {exc}"), final=True)
        return self.db.run(
            job_claims.finish_done,
            claim,
            result=result,
            done=ctx.done,
            total=ctx.total,
            message=ctx.message,
            now=now(),
        )

    def _failed(self, ctx: JobContext, exc: BaseException, *, final: bool = False) -> Job | None:
        log.error(
            "job %s (%s) failed on run %s",
            ctx.job.id,
            ctx.job.kind,
            ctx.claim.attempts,
            exc_info=(type(exc), exc, exc.__traceback__),
        )
        return self.db.run(
            job_claims.finish_failed,
            ctx.claim,
            error=error_message(exc),
            now=self.clock(),
            retry_seconds=self.settings.job_retry_seconds,
            final=final or is_final(exc),
        )

    def run_until_idle(self, max_jobs: int = 1000) -> list[Job]:
        """Run due jobs until none is due (or ``max_jobs`` ran): the rows they ended with."""
        ran: list[Job] = []
        while len(ran) < max_jobs:
            job = self.run_one()
            if job is None:
                break
            ran.append(job)
        return ran

    def run_forever(self, stop: threading.Event) -> None:
        """Run jobs until ``stop`` is set, looking for work every ``worker_poll_seconds``
        when idle, and queueing the periodic refit of annotator models when it is due. On
        stop, a running job is given back to the queue at its next progress report."""
        log.info("worker %s started", self.name)
        next_refit = self.clock()
        while not stop.is_set():
            if self.settings.refit_seconds > 0 and self.clock() >= next_refit:
                next_refit = self.clock() + self.settings.refit_seconds
                try:
                    refit.schedule(self.db, now=self.clock(), every=self.settings.refit_seconds)
                except Exception:
                    log.exception("queueing the refit of annotator models failed")
            try:
                job = self.run_one(stop)
            except Exception:  # the database is away: wait, then look again
                log.exception("claiming a job failed")
                job = None
            if job is None:
                stop.wait(self.settings.worker_poll_seconds)
        log.info("worker %s stopped", self.name)
