"""The annotator's own progress in a project (the annotate page's "today / in all")."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from pydantic import Field

from labelfarm.services import personal_progress
from labelfarm.web.context import ctx_of
from labelfarm.web.models.common import Out
from labelfarm.web.policies import PROJECT_ANNOTATE, Access, require
from labelfarm.web.responses import JSON, documented, ok
from labelfarm.web.schemas import Id

router = APIRouter(prefix="/api/v1/projects/{project_id}", tags=["annotate"])


class MyProgress(Out):
    total: int = Field(description="items you labelled in this project")
    since: int = Field(description="of those, labelled at or after `since`")


@router.get("/progress/me", **documented(MyProgress, 401, 403, 404, 422))
async def my_progress(
    request: Request,
    project_id: Id,
    access: Annotated[Access, Depends(require(PROJECT_ANNOTATE))],
    since: Annotated[
        datetime | None,
        Query(description="ISO 8601; default: the start of the day (UTC)"),
    ] = None,
) -> JSON:
    """How many items you labelled in this project: in all, and since a time."""
    ctx = ctx_of(request)
    now = ctx.now()
    if since is None:
        start = datetime.fromtimestamp(now, UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    else:
        start = since if since.tzinfo else since.replace(tzinfo=UTC)
    counts = await ctx.run(
        personal_progress.labelled, project_id, access.user_id, start.timestamp()
    )
    return ok(counts)
