"""What a running job sees: its row, the instance's settings, database and media, and the
ways to report progress and to learn that it must stop."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from labelfarm.db.engine import Database
from labelfarm.jobs.errors import JobCancelled
from labelfarm.services.job_claims import Beat, Claim, report_progress
from labelfarm.services.job_queue import Job
from labelfarm.services.media import MediaStore
from labelfarm.settings import Settings

if TYPE_CHECKING:
    from labelfarm.jobs.executor import Executor

# progress is written at most this often (seconds); the last values are always kept
PROGRESS_INTERVAL = 0.5


class JobContext:
    """One run of one job. :meth:`progress` and :meth:`check_cancelled` raise
    :class:`JobCancelled` once the job is cancelled, its claim is lost (its lease ran out
    and another worker took it) or the worker is stopping."""

    def __init__(
        self,
        job: Job,
        settings: Settings,
        db: Database,
        media: MediaStore,
        *,
        claim: Claim,
        clock: Callable[[], float] = time.time,
        stop: threading.Event | None = None,
    ) -> None:
        self.job = job
        self.settings = settings
        self.db = db
        self.media = media
        self.claim = claim
        self._clock = clock
        self._stop = stop
        self._cancel_requested = job.cancel_requested
        self._lost = False
        self._written_at = float("-inf")
        self._executor: Executor | None = None
        #: the latest progress reported (written, or waiting for the next write)
        self.done = job.progress_done
        self.total = job.progress_total
        self.message = job.message

    # -- progress -------------------------------------------------------------------------------
    def progress(self, done: int, total: int | None = None, message: str = "") -> None:
        """Report ``done`` of ``total`` (None: keep the total given before) with a message.
        Stored at most every :data:`PROGRESS_INTERVAL` seconds in a short transaction; the
        latest values are written when the job ends."""
        self.check_cancelled()
        self.done = int(done)
        if total is not None:
            self.total = int(total)
        self.message = message
        if time.monotonic() - self._written_at < PROGRESS_INTERVAL:
            return
        self._written_at = time.monotonic()
        beat = self.db.run(
            report_progress,
            self.claim,
            done=self.done,
            total=self.total,
            message=self.message,
            now=self.now(),
        )
        self.note(beat)
        self.check_cancelled()

    def note(self, beat: Beat) -> None:
        """What a heartbeat or progress write learnt about the run."""
        if not beat.owned:
            self._lost = True
        if beat.cancel_requested:
            self._cancel_requested = True

    # -- stopping -------------------------------------------------------------------------------
    @property
    def lost(self) -> bool:
        """The run is no longer this worker's: it must not touch the row again."""
        return self._lost

    @property
    def cancel_requested(self) -> bool:
        return self._cancel_requested

    @property
    def stopping(self) -> bool:
        """The worker is stopping (the job goes back to the queue)."""
        return self._stop is not None and self._stop.is_set()

    def cancelled(self) -> bool:
        """Whether the job must stop; cheap (kept fresh by the worker's heartbeat)."""
        return self._cancel_requested or self._lost or self.stopping

    def check_cancelled(self) -> None:
        if self._lost:
            raise JobCancelled(f"job {self.job.id} was taken over by another worker")
        if self._cancel_requested:
            raise JobCancelled(f"job {self.job.id} was cancelled")
        if self.stopping:
            raise JobCancelled(f"the worker is stopping; job {self.job.id} goes back to the queue")

    # -- the rest -------------------------------------------------------------------------------
    def now(self) -> float:
        return self._clock()

    @property
    def executor(self) -> Executor:
        """Where heavy work runs: :func:`labelfarm.jobs.executor.executor_for` the settings
        for heavy kinds (a Ray cluster when configured), else in this process."""
        if self._executor is None:
            from labelfarm.jobs.executor import LocalExecutor, executor_for
            from labelfarm.jobs.kinds import get_kind

            heavy = get_kind(self.job.kind).heavy
            self._executor = executor_for(self.settings) if heavy else LocalExecutor()
        return self._executor
