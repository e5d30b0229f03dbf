"""Speech-recognition pre-fill: ``POST /api/v1/projects/{id}/asr`` queues an ``asr`` job
(:mod:`labelfarm.jobs.asr_jobs`) that transcribes the project's audio items into its
segments field. Answered 202 with the job; follow it at ``GET /api/v1/jobs/{id}``.

The request is checked before its job is queued (a project without a segments field, an
unknown field or a language the field does not list is a 422 at once). Whether the model is
installed is the job's to say: it runs where the worker runs, which may be another machine.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from pydantic import Field

from labelfarm.db.tables import MAX_INT
from labelfarm.services import asr_targets
from labelfarm.web.context import ctx_of
from labelfarm.web.job_start import start_job
from labelfarm.web.models.model_versions import ModelJob
from labelfarm.web.policies import PROJECT_MANAGE, Access, require
from labelfarm.web.responses import JSON, documented, ok
from labelfarm.web.schemas import Body, Id

router = APIRouter(tags=["models"])
MAX_ITEMS = 100_000


class AsrBody(Body):
    items: list[Annotated[int, Field(ge=1, le=MAX_INT)]] | None = Field(
        default=None,
        max_length=MAX_ITEMS,
        description="the items to transcribe; default: every audio item not transcribed yet "
        "by the configured model",
    )
    field: str | None = Field(
        default=None,
        max_length=64,
        description="the segments field to fill; default: the schema's only one",
    )
    language: str | None = Field(
        default=None,
        max_length=asr_targets.MAX_TAG,
        description="a language tag for every item (e.g. en-IN); default: each item's data "
        "'language', else the language the model detects",
    )


@router.post(
    "/api/v1/projects/{project_id}/asr",
    **documented(ModelJob, 401, 403, 404, 413, 422, status=202),
)
async def transcribe(
    request: Request,
    project_id: Id,
    body: AsrBody,
    access: Annotated[Access, Depends(require(PROJECT_MANAGE))],
) -> JSON:
    """Pre-fill transcripts: speech recognition over the project's audio items (all those
    not transcribed yet by the configured model, or the items named), written as ``asr``
    predictions of its segments field; in batches, resumable."""
    assert access.project is not None
    params: dict[str, Any] = {"field": body.field, "language": body.language}
    field, language = asr_targets.check_request(access.project, params)
    job_params = {
        "items": sorted(set(body.items)) if body.items is not None else None,
        "field": field.name,
        "language": language,
    }
    job = await start_job(ctx_of(request), access, "asr", job_params)
    return ok({"job": job.to_dict()}, 202)
