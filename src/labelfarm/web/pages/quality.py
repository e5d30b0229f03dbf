"""Quality pages: the project's quality report, one page per annotator, the review queue.

Reports are rendered on the server from :mod:`labelfarm.services.quality`; the review page
lists the queue and draws one item at a time from the JSON API (``static/js/pages/review.js``:
number keys accept annotation N, ``o`` opens the override form). Clients see pseudonyms only.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response
from sqlalchemy import Connection

from labelfarm.services import projects, quality, review, workspaces
from labelfarm.services.projects import Project
from labelfarm.web.pages.render import ctx_of, page
from labelfarm.web.pages.route import PageRoute
from labelfarm.web.policies import PROJECT_MANAGE, PROJECT_QUALITY, PROJECT_REVIEW, Access, require

router = APIRouter(tags=["pages"], route_class=PageRoute, include_in_schema=False)


def _frame(conn: Connection, project_id: int) -> dict[str, Any]:
    project = projects.get_project_dict(conn, project_id)
    return {
        "project": project,
        "workspace": workspaces.get_workspace(conn, project["workspace_id"]),
    }


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
    project = access.project
    identities = access.role != "client"

    def load(conn: Connection) -> dict[str, Any]:
        return {
            **_frame(conn, project_id),
            "report": quality.project_report(conn, project, identities=identities),
        }

    data = await ctx_of(request).read(load)
    return await page(request, "quality.html", access, **_roles(access), **data)


@router.get("/projects/{project_id}/annotators/{user_id}")
async def annotator_page(
    request: Request,
    project_id: int,
    user_id: str,
    access: Annotated[Access, Depends(require(PROJECT_QUALITY))],
) -> Response:
    """One annotator (by pseudonym, or by id except for clients)."""
    assert access.project is not None
    project: Project = access.project
    identities = access.role != "client"

    def load(conn: Connection) -> dict[str, Any]:
        uid = quality.resolve_annotator(conn, project, user_id, allow_id=identities)
        return {
            **_frame(conn, project_id),
            "person": quality.annotator_report(conn, project, uid, identities=identities),
        }

    data = await ctx_of(request).read(load)
    return await page(request, "annotator.html", access, **_roles(access), **data)


@router.get("/projects/{project_id}/review")
async def review_page(
    request: Request,
    project_id: int,
    access: Annotated[Access, Depends(require(PROJECT_REVIEW))],
) -> Response:
    """The review queue; the chosen item side by side (drawn by ``review.js``)."""
    assert access.project is not None
    project = access.project

    def load(conn: Connection) -> dict[str, Any]:
        return {**_frame(conn, project_id), "queue": review.review_queue(conn, project, limit=200)}

    data = await ctx_of(request).read(load)
    return await page(request, "review.html", access, **_roles(access), **data)
