"""Projects: create, list, read, change settings and schema, progress."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request

from labelfarm.db.project_settings import SETTING_NAMES
from labelfarm.services import overview, projects
from labelfarm.services.tasks import standing
from labelfarm.web.context import ctx_of
from labelfarm.web.models.projects import (
    Progress,
    Project,
    ProjectList,
    ProjectView,
    StandingList,
    StandingSet,
)
from labelfarm.web.policies import (
    PROJECT_ITEMS,
    PROJECT_MANAGE,
    PROJECT_PROGRESS,
    PROJECT_READ,
    WORKSPACE_MANAGE,
    WORKSPACE_READ,
    Access,
    require,
)
from labelfarm.web.responses import JSON, documented, ok
from labelfarm.web.schemas import Id, ProjectCreate, ProjectUpdate, StandingBody

router = APIRouter(prefix="/api/v1", tags=["projects"])


@router.get("/workspaces/{workspace_id}/projects", **documented(ProjectList, 401, 403, 404, 422))
async def list_projects(
    request: Request,
    workspace_id: Id,
    access: Annotated[Access, Depends(require(WORKSPACE_READ))],
) -> JSON:
    return ok({"projects": await ctx_of(request).run(projects.list_projects, workspace_id)})


@router.post(
    "/workspaces/{workspace_id}/projects",
    **documented(Project, 401, 403, 404, 409, 413, 422, status=201),
)
async def create_project(
    request: Request,
    workspace_id: Id,
    body: ProjectCreate,
    access: Annotated[Access, Depends(require(WORKSPACE_MANAGE))],
) -> JSON:
    ctx = ctx_of(request)
    project = await ctx.run(
        projects.create_project,
        workspace_id=workspace_id,
        name=body.name,
        schema=body.schema_,
        now=ctx.now(),
        actor_id=access.user_id,
        description=body.description,
        guidelines=body.guidelines,
        **body.model_dump(include=set(SETTING_NAMES)),
    )
    return ok(project, 201)


@router.get("/projects/{project_id}", **documented(ProjectView, 401, 403, 404, 422))
async def get_project(
    request: Request, project_id: Id, access: Annotated[Access, Depends(require(PROJECT_READ))]
) -> JSON:
    ctx = ctx_of(request)
    project = await ctx.run(projects.get_project_dict, project_id)
    assert access.project is not None
    project["fields"] = access.project.schema.to_dict()["fields"]
    project["role"] = access.role
    return ok(project)


@router.patch("/projects/{project_id}", **documented(Project, 401, 403, 404, 409, 413, 422))
async def update_project(
    request: Request,
    project_id: Id,
    body: ProjectUpdate,
    access: Annotated[Access, Depends(require(PROJECT_MANAGE))],
) -> JSON:
    ctx = ctx_of(request)
    changes = body.model_dump(exclude_none=True, by_alias=True)  # None: left unchanged
    project = await ctx.run(
        projects.update_settings,
        project_id=project_id,
        changes=changes,
        now=ctx.now(),
        actor_id=access.user_id,
    )
    ctx.projects.drop(project_id)
    return ok(project)


@router.get("/projects/{project_id}/progress", **documented(Progress, 401, 403, 404, 422))
async def progress(
    request: Request,
    project_id: Id,
    access: Annotated[Access, Depends(require(PROJECT_PROGRESS))],
) -> JSON:
    ctx = ctx_of(request)
    return ok(await ctx.run(overview.progress, project_id, ctx.now()))


@router.get("/projects/{project_id}/annotators", **documented(StandingList, 401, 403, 404, 422))
async def annotator_standing(
    request: Request,
    project_id: Id,
    access: Annotated[Access, Depends(require(PROJECT_ITEMS))],
) -> JSON:
    """Each annotator's standing in the project (qualifying, active, paused, failed)."""
    return ok({"annotators": await ctx_of(request).run(standing.list_standing, project_id)})


@router.put(
    "/projects/{project_id}/annotators/{user_id}",
    **documented(StandingSet, 401, 403, 404, 413, 422),
)
async def set_annotator_standing(
    request: Request,
    project_id: Id,
    user_id: Id,
    body: StandingBody,
    access: Annotated[Access, Depends(require(PROJECT_MANAGE))],
) -> JSON:
    """Resume a paused annotator, or pause one, with a reason (audited)."""
    ctx = ctx_of(request)
    result = await ctx.run(
        standing.set_standing,
        project_id=project_id,
        user_id=user_id,
        state=body.state,
        reason=body.reason,
        now=ctx.now(),
        actor_id=access.user_id,
        workspace_id=access.workspace_id,
        actor_role=access.role,
    )
    ctx.projects.drop(project_id)  # whether anyone is paused here is read with the project
    return ok(result)
