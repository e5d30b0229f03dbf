"""The job queue: rows of background work, as a service.

A job is a row of ``jobs`` (:mod:`labelfarm.db.tables_jobs`): its kind, project, parameters,
state, progress, result or error, attempts and who started it. The row is the record and
the queue both: :func:`enqueue` adds one, a worker (:mod:`labelfarm.jobs.worker`) claims,
runs and finishes it through :mod:`labelfarm.services.job_claims`, and anyone reads it with
:func:`get_job` / :func:`list_jobs`. States::

    queued ──claim──▶ running ──▶ done | failed | cancelled
      ▲                  │
      └── failure (attempts left: back-off), lease lost (its worker died) ──┘

:func:`request_cancel` cancels a queued job at once and asks a running one to stop (its
worker reads the flag with each heartbeat and progress report). See docs/jobs.md.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

from sqlalchemy import text

from labelfarm.db.tx import CoreTx, Sql, Tx, transaction
from labelfarm.errors import InvalidInput, NotFound
from labelfarm.jsonutil import dumps, iso, loads

STATES = ("queued", "running", "done", "failed", "cancelled")
OPEN_STATES = ("queued", "running")
ENDED_STATES = ("done", "failed", "cancelled")

COLUMNS = (
    "id, kind, project_id, workspace_id, params, state, progress_done, progress_total, "
    "message, result, error, attempts, max_attempts, run_after, worker, lease_until, "
    "heartbeat_at, cancel_requested, created_by, created_at, started_at, finished_at"
)
_TIMES = ("run_after", "lease_until", "heartbeat_at", "created_at", "started_at", "finished_at")


@dataclass(frozen=True, slots=True)
class Job:
    """One row of ``jobs``, its parameters and result decoded."""

    id: int
    kind: str
    project_id: int | None
    workspace_id: int | None
    params: dict[str, Any]
    state: str
    progress_done: int
    progress_total: int | None
    message: str
    result: dict[str, Any] | None
    error: str | None
    attempts: int
    max_attempts: int
    run_after: float
    worker: str | None
    lease_until: float | None
    heartbeat_at: float | None
    cancel_requested: bool
    created_by: int | None
    created_at: float
    started_at: float | None
    finished_at: float | None

    @classmethod
    def from_row(cls, row: Sequence[Any]) -> Job:
        (id_, kind, project_id, workspace_id, params, state, done, total, message, result,
         error, attempts, max_attempts, run_after, worker, lease_until, heartbeat_at,
         cancel_requested, created_by, created_at, started_at, finished_at) = row  # fmt: skip
        return cls(
            id=int(id_),
            kind=kind,
            project_id=project_id,
            workspace_id=workspace_id,
            params=loads(params) if params else {},
            state=state,
            progress_done=int(done),
            progress_total=total,
            message=message or "",
            result=loads(result) if result else None,
            error=error,
            attempts=int(attempts),
            max_attempts=int(max_attempts),
            run_after=float(run_after),
            worker=worker,
            lease_until=lease_until,
            heartbeat_at=heartbeat_at,
            cancel_requested=bool(cancel_requested),
            created_by=created_by,
            created_at=float(created_at),
            started_at=started_at,
            finished_at=finished_at,
        )

    @property
    def ended(self) -> bool:
        return self.state in ENDED_STATES

    def to_dict(self) -> dict[str, Any]:
        """JSON-able: what the API answers (times as ISO-8601 UTC)."""
        out = asdict(self)
        for name in _TIMES:
            out[name] = iso(out[name])
        out["fraction"] = (
            min(1.0, self.progress_done / self.progress_total) if self.progress_total else None
        )
        return out


SELECT_JOB = Sql(f"SELECT {COLUMNS} FROM jobs WHERE id = :id", row=Job.from_row)
INSERT_JOB = Sql(
    "INSERT INTO jobs (kind, project_id, workspace_id, params, state, progress_done, message, "
    "attempts, max_attempts, run_after, cancel_requested, created_by, created_at) VALUES "
    "(:kind, :project_id, :workspace_id, :params, 'queued', 0, '', 0, :max_attempts, :now, "
    "false, :created_by, :now) RETURNING id"
)
CANCEL_QUEUED = Sql(
    "UPDATE jobs SET state = 'cancelled', cancel_requested = true, finished_at = :now, "
    "message = 'cancelled' WHERE id = :id AND state = 'queued'"
)
CANCEL_RUNNING = Sql("UPDATE jobs SET cancel_requested = true WHERE id = :id AND state = 'running'")


@transaction("write")
def enqueue(
    tx: Tx,
    *,
    kind: str,
    params: dict[str, Any],
    now: float,
    project_id: int | None = None,
    workspace_id: int | None = None,
    created_by: int | None = None,
    max_attempts: int = 3,
) -> int:
    """Queue a job of ``kind`` (not checked here: :func:`labelfarm.jobs.kinds.get_kind` is);
    due at once. Its id."""
    if max_attempts < 1:
        raise InvalidInput("max_attempts must be at least 1", [{"field": "max_attempts"}])
    row = tx.one(
        INSERT_JOB,
        {
            "kind": kind,
            "project_id": project_id,
            "workspace_id": workspace_id,
            "params": dumps(params),
            "max_attempts": max_attempts,
            "now": now,
            "created_by": created_by,
        },
    )
    assert row is not None
    return int(row[0])


@transaction("write")
def start_project_job(
    tx: Tx,
    *,
    project_id: int,
    workspace_id: int,
    kind: str,
    params: dict[str, Any],
    user_id: int | None,
    now: float,
    max_attempts: int,
) -> Job:
    """Queue a job of a project, started by ``user_id``: the job as queued (what a route
    that starts one answers with 202)."""
    job_id = enqueue(
        tx,
        kind=kind,
        params=params,
        now=now,
        project_id=project_id,
        workspace_id=workspace_id,
        created_by=user_id,
        max_attempts=max_attempts,
    )
    return get_job(tx, job_id)


@transaction("read")
def get_job(tx: Tx, job_id: int) -> Job:
    job = tx.one(SELECT_JOB, {"id": job_id})
    if job is None:
        raise NotFound("no such job")
    return job


@transaction("read")
def list_jobs(
    tx: CoreTx,
    *,
    project_id: int | None = None,
    kinds: Sequence[str] | None = None,
    states: Sequence[str] | None = None,
    limit: int = 100,
) -> list[Job]:
    """Jobs, newest first; of one project, of some kinds, in some states, as asked."""
    where: list[str] = []
    params: dict[str, Any] = {"limit": max(1, min(limit, 1000))}
    if project_id is not None:
        where.append("project_id = :project_id")
        params["project_id"] = project_id
    for name, values in (("kind", kinds), ("state", states)):
        if values is not None:
            if not values:
                return []
            names = [f"{name}{n}" for n in range(len(values))]
            where.append(f"{name} IN ({', '.join(':' + n for n in names)})")
            params.update(zip(names, values, strict=True))
    clause = f"WHERE {' AND '.join(where)} " if where else ""
    query = text(f"SELECT {COLUMNS} FROM jobs {clause}ORDER BY id DESC LIMIT :limit")
    rows = tx.execute(query, params)
    return [Job.from_row(tuple(r)) for r in rows]


@transaction("write")
def request_cancel(tx: Tx, job_id: int, *, now: float) -> Job:
    """Cancel a queued job at once; ask a running one to stop (its worker ends it as
    cancelled at its next progress report or check). An ended job is left as it is."""
    tx.run(CANCEL_QUEUED, {"id": job_id, "now": now})
    tx.run(CANCEL_RUNNING, {"id": job_id})
    job = tx.one(SELECT_JOB, {"id": job_id})
    if job is None:
        raise NotFound("no such job")
    return job


OPEN_OF_KIND = Sql(
    "SELECT id FROM jobs WHERE kind = :kind AND state IN ('queued', 'running') LIMIT 1"
)


@transaction("write")
def enqueue_once(
    tx: Tx, *, kind: str, params: dict[str, Any], now: float, max_attempts: int = 1
) -> int | None:
    """Queue a job of ``kind`` (one of no project) unless one is queued or running already:
    the new job's id, or None. Several workers scheduling the same periodic work queue it
    once (PostgreSQL: under an advisory lock on the kind; SQLite: the single writer)."""
    if tx.dialect.value == "postgresql":
        tx.run(Sql("SELECT pg_advisory_xact_lock(hashtext(:key))"), {"key": f"jobs:{kind}"})
    if tx.one(OPEN_OF_KIND, {"kind": kind}) is not None:
        return None
    return enqueue(tx, kind=kind, params=params, now=now, max_attempts=max_attempts)
