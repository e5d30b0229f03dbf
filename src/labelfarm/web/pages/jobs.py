"""The jobs page of a project: its background work (imports, exports, training,
pre-labelling, ...) with live progress.

Rendered on the server from :mod:`labelfarm.services.job_queue`; ``static/js/pages/jobs.js``
polls ``GET /api/v1/projects/{id}/jobs`` while any job is queued or running, redraws each
job's progress bar and state, and cancels a job through ``POST /api/v1/jobs/{id}/cancel``.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from labelfarm import i18n
from labelfarm.services import job_queue, overview
from labelfarm.web.context import ctx_of
from labelfarm.web.pages.render import current_user, language, page
from labelfarm.web.pages.route import PageRoute
from labelfarm.web.policies import PROJECT_MANAGE, Access, require

router = APIRouter(tags=["pages"], route_class=PageRoute, include_in_schema=False)

SHOWN = 100  # the newest jobs the page lists


def kind_label(kind: str, lang: str) -> str:
    """A job kind as the reader's language names it; its own name when no catalogue does."""
    key = f"jobs.kind.{kind}"
    label = i18n.catalogue(lang).t(key)
    return kind if label == key else label


def job_view(job: job_queue.Job, lang: str) -> dict[str, Any]:
    shown = job.to_dict()
    created = shown["created_at"] or ""
    return {
        **shown,
        "label": kind_label(job.kind, lang),
        "created": created[:16].replace("T", " "),
        "open": job.state in job_queue.OPEN_STATES,
    }


@router.get("/projects/{project_id}/jobs")
async def jobs_page(
    request: Request,
    project_id: int,
    access: Annotated[Access, Depends(require(PROJECT_MANAGE))],
) -> Response:
    """The project's jobs, newest first, with their progress."""
    ctx = ctx_of(request)
    frame = await ctx.run(overview.project_frame, project_id)
    jobs = await ctx.run(job_queue.list_jobs, project_id=project_id, limit=SHOWN)
    user = await current_user(request, access)
    lang = language(request, user)
    kinds = {j.kind for j in jobs}
    return await page(
        request,
        "jobs.html",
        access,
        user=user,
        **frame,
        jobs=[job_view(j, lang) for j in jobs],
        kind_labels={k: kind_label(k, lang) for k in kinds},
        limit=SHOWN,
    )
