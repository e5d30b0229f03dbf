"""Quality pages: the project's quality report, one page per annotator, the review queue.

Reports are rendered on the server from :mod:`labelfarm.services.quality`; the review page
lists the queue and draws one item at a time from the JSON API (``static/js/pages/review.js``:
number keys accept annotation N, ``o`` opens the override form). Clients see pseudonyms only.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from labelfarm.services import overview, quality, review
from labelfarm.web.context import ctx_of
from labelfarm.web.pages.render import page
from labelfarm.web.pages.route import PageRoute
from labelfarm.web.policies import PROJECT_MANAGE, PROJECT_QUALITY, PROJECT_REVIEW, Access, require

router = APIRouter(tags=["pages"], route_class=PageRoute, include_in_schema=False)


def _roles(access: Access) -> dict[str, Any]:
    return {
        "can_manage": access.role in PROJECT_MANAGE.roles,
        "can_review": access.role in PROJECT_REVIEW.roles,
        "identities": access.role != "client",
    }


@router.get("/projects/{project_id}/quality")
async def quality_page(
    request: Request,
    project_id: int,
    access: Annotated[Access, Depends(require(PROJECT_QUALITY))],
) -> Response:
    """Agreement per field and class, gold accuracy with intervals, confusion, paused."""
    assert access.project is not None
    ctx = ctx_of(request)
    frame = await ctx.run(overview.project_frame, project_id)
    identities = access.role != "client"
    report = await ctx.run(quality.project_report, access.project, identities=identities)
    return await page(request, "quality.html", access, **_roles(access), **frame, report=report)


@router.get("/projects/{project_id}/annotators/{user_id}")
async def annotator_page(
    request: Request,
    project_id: int,
    user_id: str,
    access: Annotated[Access, Depends(require(PROJECT_QUALITY))],
) -> Response:
    """One annotator (by pseudonym, or by id except for clients)."""
    assert access.project is not None
    ctx = ctx_of(request)
    identities = access.role != "client"
    person = await ctx.run(quality.annotator_report, access.project, user_id, identities=identities)
    frame = await ctx.run(overview.project_frame, project_id)
    return await page(request, "annotator.html", access, **_roles(access), **frame, person=person)


@router.get("/projects/{project_id}/review")
async def review_page(
    request: Request,
    project_id: int,
    access: Annotated[Access, Depends(require(PROJECT_REVIEW))],
) -> Response:
    """The review queue; the chosen item side by side (drawn by ``review.js``)."""
    assert access.project is not None
    ctx = ctx_of(request)
    frame = await ctx.run(overview.project_frame, project_id)
    queue = await ctx.run(review.review_queue, access.project, limit=200)
    return await page(request, "review.html", access, **_roles(access), **frame, queue=queue)
