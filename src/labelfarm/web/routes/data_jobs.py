"""Imports and exports as jobs: started here, run by a worker, followed with their progress.

``POST …/imports/jobs`` stores the upload under the data directory (streamed to disk, at
most ``LABELFARM_MAX_UPLOAD_BYTES``, like ``POST …/imports``) and queues an ``import`` job
(:mod:`labelfarm.jobs.data_jobs`); ``GET …/imports/jobs/{job_id}`` answers the job and, once
its import exists, the import's record (its bad rows, its notes). ``POST …/exports`` queues
an ``export`` job; ``GET …/exports/{job_id}/file`` downloads its file once done. Who may
export may start an export job and follow and download their own; managers, every one.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import anyio.to_thread
from fastapi import APIRouter, Depends, Request
from fastapi.responses import FileResponse
from pydantic import Field
from starlette.background import BackgroundTask

from labelfarm.errors import InvalidInput, NotFound, PermissionDenied
from labelfarm.formats import reader_names, writer, writer_extension, writer_names
from labelfarm.formats.detect import guess_format
from labelfarm.jsonutil import dumps
from labelfarm.services import job_files, job_queue
from labelfarm.services.export_identities import check_mapping
from labelfarm.services.import_resume import find_import, import_record, job_filename
from labelfarm.services.job_queue import Job
from labelfarm.web.context import AppContext, ctx_of
from labelfarm.web.job_start import start_job
from labelfarm.web.models.data_jobs import ExportJob, ExportJobList, ImportJob, JobStarted
from labelfarm.web.policies import PROJECT_EXPORT, PROJECT_MANAGE, Access, require
from labelfarm.web.responses import JSON, UPLOAD_BODY, documented, ok
from labelfarm.web.routes.data import (
    TranscriptsAs,
    UploadFormat,
    UploadName,
    check_upload_format,
    export_file_answers,
    import_options,
    spool_upload,
)
from labelfarm.web.schemas import Body, Id

router = APIRouter(prefix="/api/v1/projects/{project_id}", tags=["data"])


@router.post(
    "/imports/jobs",
    openapi_extra=UPLOAD_BODY,
    **documented(JobStarted, 401, 403, 404, 413, 422, status=202),
)
async def start_import(
    request: Request,
    project_id: Id,
    access: Annotated[Access, Depends(require(PROJECT_MANAGE))],
    format: UploadFormat = None,
    filename: UploadName = None,
    transcripts: TranscriptsAs = None,
) -> JSON:
    """Store the upload and queue its import as a job (all or nothing, as ``POST
    …/imports``); follow it with ``GET …/imports/jobs/{job_id}``."""
    ctx = ctx_of(request)
    check_upload_format(format)
    token, path = job_files.new_upload(ctx.settings)
    try:
        sent_name = await spool_upload(request, path)
        if format is None:
            format = await anyio.to_thread.run_sync(guess_format, path, filename or sent_name)
            if format not in _uploadable():
                raise InvalidInput(
                    f"unknown format: the upload looks like {format!r}, which cannot be "
                    f"uploaded; give the format, one of {_uploadable()}",
                    [{"field": "format", "reason": "unknown format"}],
                )
        name = job_filename(filename or sent_name or f"upload.{format}")
        params: dict[str, Any] = {"upload": token, "format": format, "filename": name}
        if transcripts:
            params["options"] = import_options(transcripts)
        job = await _enqueue(ctx, access, "import", params)
    except BaseException:
        await anyio.to_thread.run_sync(job_files.remove, path)
        raise
    return _started(ctx, job)


@router.get("/imports/jobs/{job_id}", **documented(ImportJob, 401, 403, 404, 422))
async def import_job(
    request: Request,
    project_id: Id,
    job_id: Id,
    access: Annotated[Access, Depends(require(PROJECT_MANAGE))],
) -> JSON:
    """An import job and, once its import exists, the import (``import``: null before):
    its state, its bad rows (``errors``) and what the file held that it left out
    (``notes``). Poll it while the job runs."""
    ctx = ctx_of(request)
    job = await _job_of(ctx, project_id, job_id, "import")
    found = await ctx.run(find_import, project_id, job.id)
    record = None if found is None else await ctx.run(import_record, found.id)
    if job.state == "done":
        ctx.projects.drop(project_id)  # the project may now have predictions to pre-fill
    return ok({"job": job.to_dict(), "import": record})


class ExportStart(Body):
    format: str = Field(default="jsonl", json_schema_extra={"enum": list(writer_names())})
    completed_by: dict[str, Any] | None = Field(
        default=None,
        description="for a migration: labelfarm usernames to the annotators' ids in Label "
        "Studio (see GET …/export); managers only",
    )
    media_url: str | None = Field(default=None, max_length=2000)


@router.post("/exports", **documented(JobStarted, 401, 403, 404, 413, 422, status=202))
async def start_export(
    request: Request,
    project_id: Id,
    body: ExportStart,
    access: Annotated[Access, Depends(require(PROJECT_EXPORT))],
) -> JSON:
    """Queue an export of the project as a job: its file is written on the server, then
    downloaded with ``GET …/exports/{job_id}/file`` (the same bytes as ``GET …/export``)."""
    if body.format not in writer_names():
        raise InvalidInput(
            f"unknown export format {body.format!r}; use one of {writer_names()}",
            [{"field": "format"}],
        )
    options: dict[str, Any] = {} if body.media_url is None else {"media_url": body.media_url}
    if body.completed_by is not None:
        if access.role not in PROJECT_MANAGE.roles:
            raise PermissionDenied(
                f"a {access.role} may not export annotators' identities (completed_by)",
                [{"field": "completed_by", "reason": "role", "role": access.role}],
            )
        options["completed_by"] = check_mapping(body.completed_by)
    ctx = ctx_of(request)
    params = {"format": body.format, **({"options": options} if options else {})}
    try:
        dumps(params)
    except (TypeError, ValueError) as exc:  # numbers past 64 bits, lone surrogates
        raise InvalidInput(f"the export's options cannot be stored: {exc}", []) from None
    return _started(ctx, await _enqueue(ctx, access, "export", params))


def _uploadable() -> list[str]:
    return [n for n in reader_names() if n != "folder"]


def _started(ctx: AppContext, job: Job) -> JSON:
    """202 with the job; the job files no job needs any more are swept after answering."""
    response = ok({"job": job.to_dict()}, 202)
    response.background = BackgroundTask(anyio.to_thread.run_sync, _sweep, ctx)
    return response


def _sweep(ctx: AppContext) -> None:
    job_files.sweep(ctx.db, ctx.settings)


@router.get("/exports", **documented(ExportJobList, 401, 403, 404, 422))
async def list_exports(
    request: Request,
    project_id: Id,
    access: Annotated[Access, Depends(require(PROJECT_EXPORT))],
) -> JSON:
    """The project's export jobs the caller may see, newest first."""
    ctx = ctx_of(request)
    jobs = await ctx.run(job_queue.list_jobs, project_id=project_id, kinds=["export"], limit=50)
    mine = [j for j in jobs if _may_see(access, j)]
    return ok({"exports": [_export_answer(ctx, j) for j in mine]})


@router.get("/exports/{job_id}", **documented(ExportJob, 401, 403, 404, 422))
async def export_job(
    request: Request,
    project_id: Id,
    job_id: Id,
    access: Annotated[Access, Depends(require(PROJECT_EXPORT))],
) -> JSON:
    """An export job, with ``download`` (its file's address) once it is done."""
    ctx = ctx_of(request)
    job = await _job_of(ctx, project_id, job_id, "export", access)
    return ok(_export_answer(ctx, job))


@router.get(
    "/exports/{job_id}/file",
    **export_file_answers("the export's file, as an attachment"),
)
async def export_file(
    request: Request,
    project_id: Id,
    job_id: Id,
    access: Annotated[Access, Depends(require(PROJECT_EXPORT))],
) -> FileResponse:
    """The file a done export job wrote (kept ``LABELFARM_EXPORT_KEEP_HOURS``)."""
    ctx = ctx_of(request)
    job = await _job_of(ctx, project_id, job_id, "export", access)
    path = _export_file(ctx, job)
    if path is None:
        raise NotFound(f"export job {job_id} has no file (not done, or no longer kept)")
    fmt = str(job.params["format"])
    return FileResponse(
        path,
        media_type=writer(fmt)[1],
        filename=f"project-{project_id}.{writer_extension(fmt)}",
    )


async def _enqueue(ctx: AppContext, access: Access, kind: str, params: dict[str, Any]) -> Job:
    return await start_job(ctx, access, kind, params)


async def _job_of(
    ctx: AppContext, project_id: int, job_id: int, kind: str, access: Access | None = None
) -> Job:
    """The job ``job_id`` if it is a ``kind`` job of the project the caller may see."""
    job = await ctx.run(job_queue.get_job, job_id)
    if job.kind != kind or job.project_id != project_id:
        raise NotFound(f"no {kind} job {job_id} in project {project_id}")
    if access is not None and not _may_see(access, job):
        raise NotFound(f"no {kind} job {job_id} in project {project_id}")
    return job


def _may_see(access: Access, job: Job) -> bool:
    """Managers see every export job of a project; others their own."""
    return access.role in PROJECT_MANAGE.roles or job.created_by == access.user_id


def _export_file(ctx: AppContext, job: Job) -> Path | None:
    if job.state != "done" or job.project_id is None:
        return None
    ext = writer_extension(str(job.params["format"]))
    path = job_files.export_path(ctx.settings, job.project_id, job.id, ext)
    return path if path.is_file() else None


def _export_answer(ctx: AppContext, job: Job) -> dict[str, Any]:
    path = _export_file(ctx, job)
    url = f"/api/v1/projects/{job.project_id}/exports/{job.id}/file"
    return {"job": job.to_dict(), "download": url if path is not None else None}
