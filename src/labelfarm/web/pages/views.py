"""Manager pages: sign in and out, projects, progress, new project, settings, import, members.

Each page is a thin route: policy, a read through a service, a template. Changes go through
the JSON API from small page modules (``static/js/pages/*.js``) with the session's CSRF token.
"""

from __future__ import annotations

from typing import Annotated, Any

import yaml
from fastapi import APIRouter, Depends, Request
from fastapi.responses import RedirectResponse, Response

from labelfarm.db.orderings import ORDERINGS
from labelfarm.ml.samplers import sampler_names
from labelfarm.services import overview, users, workspaces
from labelfarm.web.context import ctx_of
from labelfarm.web.pages.redirects import same_origin_path
from labelfarm.web.pages.render import page
from labelfarm.web.pages.route import PageRoute
from labelfarm.web.pages.setting_inputs import quality_inputs
from labelfarm.web.policies import (
    AUTHENTICATED,
    PROJECT_MANAGE,
    PROJECT_PROGRESS,
    PUBLIC,
    SESSION_COOKIE,
    WORKSPACE_MANAGE,
    WORKSPACE_READ,
    Access,
    require,
)

router = APIRouter(tags=["pages"], route_class=PageRoute, include_in_schema=False)

PROGRESS_ROLES = PROJECT_PROGRESS.roles
MANAGE_ROLES = PROJECT_MANAGE.roles
ANNOTATE_ROLES = frozenset({"admin", "manager", "reviewer", "annotator"})
EXPORT_ROLES = frozenset({"admin", "manager", "client"})


@router.get("/")
async def home(request: Request, access: Annotated[Access, Depends(require(AUTHENTICATED))]):
    """The first workspace of the caller, or a page saying there is none."""
    assert access.principal is not None
    mine = await ctx_of(request).run(
        workspaces.workspaces_of, access.user_id, all_=access.principal.is_superuser
    )
    if len(mine) >= 1:
        return RedirectResponse(f"/w/{mine[0]['id']}", status_code=303)
    return await page(request, "home.html", access, workspaces=mine)


@router.get("/login")
async def login(request: Request, access: Annotated[Access, Depends(require(PUBLIC))]) -> Response:
    target = same_origin_path(request.query_params.get("next"))
    return await page(request, "login.html", access, next_url=target)


@router.post("/logout")
async def logout(
    request: Request, access: Annotated[Access, Depends(require(AUTHENTICATED))]
) -> Response:
    """End the session (the form carries the CSRF token) and go to the login page."""
    secret = request.cookies.get(SESSION_COOKIE)
    if secret:
        ctx = ctx_of(request)
        await ctx.run(users.end_session, secret, now=ctx.now())
    response = RedirectResponse("/login?signed_out=1", status_code=303)
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response


@router.get("/w/{workspace_id}")
async def workspace(
    request: Request,
    workspace_id: int,
    access: Annotated[Access, Depends(require(WORKSPACE_READ))],
) -> Response:
    """The projects of a workspace; progress for the roles that may see it."""
    ctx = ctx_of(request)
    data = await ctx.run(
        overview.workspace_overview,
        workspace_id,
        with_progress=access.role in PROGRESS_ROLES,
        now=ctx.now(),
    )
    return await page(request, "projects.html", access, role=access.role, **_roles(access), **data)


def _roles(access: Access) -> dict[str, Any]:
    return {
        "can_manage": access.role in MANAGE_ROLES,
        "can_annotate": access.role in ANNOTATE_ROLES,
        "can_progress": access.role in PROGRESS_ROLES,
        "can_export": access.role in EXPORT_ROLES,
        "is_admin": access.role == "admin",
    }


@router.get("/w/{workspace_id}/new")
async def new_project(
    request: Request,
    workspace_id: int,
    access: Annotated[Access, Depends(require(WORKSPACE_MANAGE))],
) -> Response:
    ws = await ctx_of(request).run(workspaces.get_workspace, workspace_id)
    return await page(
        request,
        "project_new.html",
        access,
        workspace=ws,
        orderings=tuple(ORDERINGS),
        samplers=sampler_names(),
        quality_settings=quality_inputs(None),
        **_roles(access),
    )


@router.get("/w/{workspace_id}/members")
async def members(
    request: Request,
    workspace_id: int,
    access: Annotated[Access, Depends(require(WORKSPACE_MANAGE))],
) -> Response:
    ctx = ctx_of(request)
    ws = await ctx.run(workspaces.get_workspace, workspace_id)
    rows = await ctx.run(workspaces.members, workspace_id)
    return await page(request, "members.html", access, workspace=ws, members=rows, **_roles(access))


@router.get("/projects/{project_id}")
async def project(
    request: Request,
    project_id: int,
    access: Annotated[Access, Depends(require(PROJECT_PROGRESS))],
) -> Response:
    """Progress by status, export, links to settings and import."""
    ctx = ctx_of(request)
    data = await ctx.run(overview.project_overview, project_id, ctx.now())
    return await page(request, "project.html", access, **_roles(access), **data)


@router.get("/projects/{project_id}/settings")
async def settings(
    request: Request,
    project_id: int,
    access: Annotated[Access, Depends(require(PROJECT_MANAGE))],
) -> Response:
    frame = await ctx_of(request).run(overview.project_frame, project_id)
    schema_yaml = yaml.safe_dump(frame["project"]["schema"], allow_unicode=True, sort_keys=False)
    return await page(
        request,
        "settings.html",
        access,
        schema_yaml=schema_yaml,
        orderings=tuple(ORDERINGS),
        samplers=sampler_names(),
        quality_settings=quality_inputs(frame["project"]),
        **frame,
        **_roles(access),
    )


@router.get("/projects/{project_id}/import")
async def import_page(
    request: Request,
    project_id: int,
    access: Annotated[Access, Depends(require(PROJECT_MANAGE))],
) -> Response:
    frame = await ctx_of(request).run(overview.project_frame, project_id)
    return await page(request, "import.html", access, **frame, **_roles(access))
