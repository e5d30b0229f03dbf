"""Jobs: a project's background work (train, predict, import, ...), one job, cancelling.

Jobs are started by the routes of the work they do (e.g. ``POST …/models/train``); a worker
process runs them (docs/jobs.md)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request

from labelfarm.services import job_queue
from labelfarm.web.context import ctx_of
from labelfarm.web.models.jobs import Job, JobList
from labelfarm.web.policies import JOB_MANAGE, PROJECT_MANAGE, Access, require
from labelfarm.web.responses import JSON, documented, ok
from labelfarm.web.schemas import Id

router = APIRouter(prefix="/api/v1", tags=["jobs"])

State = Annotated[
    str | None,
    Query(json_schema_extra={"enum": list(job_queue.STATES)}, description="only jobs in it"),
]
Kind = Annotated[str | None, Query(max_length=32, pattern="^[a-z0-9_.-]+$")]


@router.get("/projects/{project_id}/jobs", **documented(JobList, 401, 403, 404, 422))
async def project_jobs(
    request: Request,
    project_id: Id,
    access: Annotated[Access, Depends(require(PROJECT_MANAGE))],
    state: State = None,
    kind: Kind = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> JSON:
    """The project's jobs, newest first."""
    jobs = await ctx_of(request).run(
        job_queue.list_jobs,
        project_id=project_id,
        states=[state] if state else None,
        kinds=[kind] if kind else None,
        limit=limit,
    )
    return ok({"jobs": [j.to_dict() for j in jobs]})


@router.get("/jobs/{job_id}", **documented(Job, 401, 403, 404, 422))
async def get_job(
    request: Request,
    job_id: Id,
    access: Annotated[Access, Depends(require(JOB_MANAGE))],
) -> JSON:
    """One job, with its progress: poll it while it runs."""
    job = await ctx_of(request).run(job_queue.get_job, job_id)
    return ok(job.to_dict())


@router.post("/jobs/{job_id}/cancel", **documented(Job, 401, 403, 404, 413, 422))
async def cancel_job(
    request: Request,
    job_id: Id,
    access: Annotated[Access, Depends(require(JOB_MANAGE))],
) -> JSON:
    """Cancel a job: a queued one at once; a running one is asked to stop and ends as
    cancelled at its next progress report. An ended job is answered as it is."""
    ctx = ctx_of(request)
    job = await ctx.run(job_queue.request_cancel, job_id, now=ctx.now())
    return ok(job.to_dict())
