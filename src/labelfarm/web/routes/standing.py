"""The annotator's own standing in a project (the annotate page's qualification progress
and quality band; :mod:`labelfarm.services.tasks.standing_summary`)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request

from labelfarm.services.tasks import standing_summary
from labelfarm.web.context import ctx_of
from labelfarm.web.models.tasks import Standing
from labelfarm.web.policies import PROJECT_ANNOTATE, Access, require
from labelfarm.web.responses import JSON, documented, ok
from labelfarm.web.schemas import Id

router = APIRouter(prefix="/api/v1/projects/{project_id}", tags=["annotate"])


@router.get("/standing", **documented(Standing, 401, 403, 404, 422))
async def my_standing(
    request: Request,
    project_id: Id,
    access: Annotated[Access, Depends(require(PROJECT_ANNOTATE))],
) -> JSON:
    """Your standing: qualifying with progress, active with a quality band (aggregated and
    delayed: it never tells which task was gold), paused or failed with the reason."""
    ctx, project = ctx_of(request), access.project
    assert project is not None
    summary = await ctx.run(standing_summary.own_standing, project, access.user_id, ctx.now())
    return ok(summary)
