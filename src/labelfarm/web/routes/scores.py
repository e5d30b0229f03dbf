"""The queue's scores: refresh them now (a ``score`` job; jobs/score_jobs.py). Registered on
the model routes' router (same tag): ``labelfarm.web.routes`` imports this module."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from labelfarm.errors import InvalidInput
from labelfarm.web.context import ctx_of
from labelfarm.web.job_start import start_job
from labelfarm.web.models.model_versions import ModelJob
from labelfarm.web.policies import PROJECT_MANAGE, Access, require
from labelfarm.web.responses import JSON, documented, ok
from labelfarm.web.routes.models import router
from labelfarm.web.schemas import Id

__all__ = ["router"]


@router.post(
    "/api/v1/projects/{project_id}/scores/refresh",
    **documented(ModelJob, 401, 403, 404, 413, 422, status=202),
)
async def refresh_scores(
    request: Request, project_id: Id, access: Annotated[Access, Depends(require(PROJECT_MANAGE))]
) -> JSON:
    """Score the project's open items again for the ``score`` ordering, from the promoted
    model's outputs: the project's sampler (or the open correction round's pair), held-out
    items at random; written in short batches. A job: follow it at ``GET /api/v1/jobs/{id}``."""
    project = access.project
    assert project is not None
    if not any(f.type_name == "choice" for f in project.schema.fields):
        raise InvalidInput(
            "this project's schema has no choice field: there is nothing to score by",
            [{"field": "schema", "reason": "no choice field"}],
        )
    job = await start_job(ctx_of(request), access, "score", {})
    return ok({"job": job.to_dict()}, 202)
