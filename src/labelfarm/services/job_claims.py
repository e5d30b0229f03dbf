"""A worker's side of the job queue: claiming a due job, keeping its lease, reporting
progress, and ending the run (done, retried with back-off, failed, cancelled, given back).

A claim is one short ``write`` transaction: on PostgreSQL ``SELECT … FOR UPDATE SKIP
LOCKED`` picks a row no other worker is claiming; on SQLite the transaction goes through
the single writer (``BEGIN IMMEDIATE``), so no two claims interleave. A claim sets the row
``running`` with the worker's name, ``lease_until`` and one more attempt; the pair
(worker, attempts) names the run (:class:`Claim`), and every later write of the run is
guarded by it: a worker whose lease ran out and whose job was claimed again writes nothing.

Due jobs: queued ones whose ``run_after`` has come, and running ones whose lease has passed
(their worker died). Of the latter, one asked to stop is cancelled instead, and one that
has had all its attempts fails.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from labelfarm.db.tx import Sql, Tx, transaction
from labelfarm.jsonutil import dumps
from labelfarm.services.job_queue import COLUMNS, SELECT_JOB, Job

LOST_MESSAGE = "its worker stopped responding"

CANCEL_ABANDONED = Sql(
    "UPDATE jobs SET state = 'cancelled', finished_at = :now, message = 'cancelled', "
    "worker = NULL, lease_until = NULL "
    "WHERE state = 'running' AND lease_until < :now AND cancel_requested = true"
)
FAIL_ABANDONED = Sql(
    "UPDATE jobs SET state = 'failed', finished_at = :now, error = :error, worker = NULL, "
    "lease_until = NULL "
    "WHERE state = 'running' AND lease_until < :now AND attempts >= max_attempts"
)
_DUE = "(state = 'queued' AND run_after <= :now) OR (state = 'running' AND lease_until < :now)"
ANY_DUE = Sql(f"SELECT id FROM jobs WHERE {_DUE} LIMIT 1")
NEXT_DUE = Sql(
    f"SELECT id FROM jobs WHERE {_DUE} ORDER BY run_after, id LIMIT 1",
    lock="FOR UPDATE SKIP LOCKED",
)
TAKE = Sql(
    "UPDATE jobs SET state = 'running', worker = :worker, lease_until = :lease, "
    "heartbeat_at = :now, attempts = attempts + 1, started_at = :now, message = '' "
    f"WHERE id = :id RETURNING {COLUMNS}",
    row=Job.from_row,
)
_MINE = "id = :id AND worker = :worker AND attempts = :attempts AND state = 'running'"
HEARTBEAT = Sql(
    f"UPDATE jobs SET lease_until = :lease, heartbeat_at = :now WHERE {_MINE} "
    "RETURNING cancel_requested"
)
PROGRESS = Sql(
    "UPDATE jobs SET progress_done = :done, progress_total = :total, message = :message, "
    f"heartbeat_at = :now WHERE {_MINE} RETURNING cancel_requested"
)
DONE = Sql(
    "UPDATE jobs SET state = 'done', result = :result, progress_done = :done, "
    "progress_total = :total, message = :message, error = NULL, finished_at = :now, "
    f"lease_until = NULL WHERE {_MINE}"
)
RETRY = Sql(
    "UPDATE jobs SET state = 'queued', error = :error, run_after = :run_after, "
    f"worker = NULL, lease_until = NULL, message = :message WHERE {_MINE}"
)
FAIL = Sql(
    "UPDATE jobs SET state = 'failed', error = :error, finished_at = :now, "
    f"lease_until = NULL WHERE {_MINE}"
)
CANCELLED = Sql(
    "UPDATE jobs SET state = 'cancelled', finished_at = :now, message = 'cancelled', "
    f"lease_until = NULL WHERE {_MINE}"
)
GIVE_BACK = Sql(
    "UPDATE jobs SET state = 'queued', worker = NULL, lease_until = NULL, "
    f"attempts = attempts - 1, run_after = :now WHERE {_MINE}"
)


@dataclass(frozen=True, slots=True)
class Claim:
    """One run of a job by one worker: the row is the run's while it still names both."""

    job_id: int
    worker: str
    attempts: int

    def params(self) -> dict[str, Any]:
        return {"id": self.job_id, "worker": self.worker, "attempts": self.attempts}


@dataclass(frozen=True, slots=True)
class Beat:
    """What a heartbeat or progress report learnt: whether the run is still ours, and
    whether someone asked it to stop."""

    owned: bool
    cancel_requested: bool = False


@transaction("read")
def any_due(tx: Tx, *, now: float) -> bool:
    """Whether a job is due: an idle worker asks this (a read) before it claims (a write),
    so looking for work never takes the SQLite writer."""
    return tx.one(ANY_DUE, {"now": now}) is not None


@transaction("write")
def claim_next(tx: Tx, *, worker: str, now: float, lease_seconds: float) -> Job | None:
    """Claim the next due job for ``worker`` (running, leased, one more attempt), or None."""
    tx.run(CANCEL_ABANDONED, {"now": now})
    tx.run(FAIL_ABANDONED, {"now": now, "error": LOST_MESSAGE})
    row = tx.one(NEXT_DUE, {"now": now})
    if row is None:
        return None
    params = {"id": row[0], "worker": worker, "lease": now + lease_seconds, "now": now}
    return tx.one(TAKE, params)


def _beat(tx: Tx, sql: Sql[Any], params: dict[str, Any]) -> Beat:
    row = tx.one(sql, params)
    return Beat(False) if row is None else Beat(True, bool(row[0]))


@transaction("write")
def heartbeat(tx: Tx, claim: Claim, *, now: float, lease_seconds: float) -> Beat:
    """Extend the run's lease."""
    return _beat(tx, HEARTBEAT, {**claim.params(), "now": now, "lease": now + lease_seconds})


@transaction("write")
def report_progress(
    tx: Tx, claim: Claim, *, done: int, total: int | None, message: str, now: float
) -> Beat:
    params = {**claim.params(), "done": done, "total": total, "message": message, "now": now}
    return _beat(tx, PROGRESS, params)


@transaction("write")
def finish_done(
    tx: Tx,
    claim: Claim,
    *,
    result: dict[str, Any] | None,
    done: int,
    total: int | None,
    message: str,
    now: float,
) -> Job | None:
    """The run succeeded: state done, its result stored (None if the run was not ours)."""
    params = {
        **claim.params(),
        "result": None if result is None else dumps(result),
        "done": total if total is not None else done,
        "total": total,
        "message": message,
        "now": now,
    }
    tx.run(DONE, params)
    return _ended(tx, claim)


@transaction("write")
def finish_failed(
    tx: Tx, claim: Claim, *, error: str, now: float, retry_seconds: float, final: bool = False
) -> Job | None:
    """The run failed: queued again after ``retry_seconds * 2**(attempts-1)`` while attempts
    remain (and the failure is not ``final``), else failed with ``error``."""
    job = tx.one(SELECT_JOB, {"id": claim.job_id})
    if job is None or not _is(job, claim) or job.state != "running":
        return None
    if job.attempts < job.max_attempts and not final:
        run_after = now + retry_seconds * 2 ** (job.attempts - 1)
        message = f"failed (run {job.attempts} of {job.max_attempts}); retrying"
        params = {**claim.params(), "error": error, "run_after": run_after, "message": message}
        tx.run(RETRY, params)
    else:
        tx.run(FAIL, {**claim.params(), "error": error, "now": now})
    return tx.one(SELECT_JOB, {"id": claim.job_id})


@transaction("write")
def finish_cancelled(tx: Tx, claim: Claim, *, now: float) -> Job | None:
    tx.run(CANCELLED, {**claim.params(), "now": now})
    return _ended(tx, claim)


@transaction("write")
def give_back(tx: Tx, claim: Claim, *, now: float) -> Job | None:
    """The worker is stopping: the job goes back to the queue, due at once, this run not
    counted as an attempt."""
    tx.run(GIVE_BACK, {**claim.params(), "now": now})
    return tx.one(SELECT_JOB, {"id": claim.job_id})


def _is(job: Job, claim: Claim) -> bool:
    return job.worker == claim.worker and job.attempts == claim.attempts


def _ended(tx: Tx, claim: Claim) -> Job | None:
    job = tx.one(SELECT_JOB, {"id": claim.job_id})
    return job if job is not None and _is(job, claim) else None
