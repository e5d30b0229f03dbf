"""Instance and workspace administration: workspaces, users, roles, tokens, sites, audit."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request

from labelfarm.errors import PermissionDenied
from labelfarm.services import audit, users, workspaces
from labelfarm.web.context import ctx_of
from labelfarm.web.policies import (
    AUTHENTICATED,
    SELF,
    SUPERUSER,
    WORKSPACE_ADMIN,
    WORKSPACE_MANAGE,
    WORKSPACE_READ,
    Access,
    require,
)
from labelfarm.web.responses import JSON, ok
from labelfarm.web.schemas import (
    MemberCreate,
    RoleBody,
    SiteCreate,
    TokenCreate,
    UserCreate,
    WorkspaceCreate,
)

router = APIRouter(prefix="/api/v1", tags=["admin"])


@router.get("/workspaces")
async def list_workspaces(
    request: Request, access: Annotated[Access, Depends(require(AUTHENTICATED))]
) -> JSON:
    assert access.principal is not None
    rows = await ctx_of(request).run(
        workspaces.workspaces_of, access.user_id, all_=access.principal.is_superuser
    )
    return ok({"workspaces": rows})


@router.post("/workspaces", status_code=201)
async def create_workspace(
    request: Request, body: WorkspaceCreate, access: Annotated[Access, Depends(require(SUPERUSER))]
) -> JSON:
    ctx = ctx_of(request)
    ws = await ctx.run(
        workspaces.create_workspace,
        slug=body.slug,
        name=body.name or body.slug,
        now=ctx.now(),
        actor_id=access.user_id,
    )
    return ok(ws, 201)


@router.get("/workspaces/{workspace_id}")
async def get_workspace(
    request: Request,
    workspace_id: int,
    access: Annotated[Access, Depends(require(WORKSPACE_READ))],
) -> JSON:
    ws = await ctx_of(request).run(workspaces.get_workspace, workspace_id)
    return ok({**ws, "role": access.role})


@router.post("/users", status_code=201)
async def create_user(
    request: Request, body: UserCreate, access: Annotated[Access, Depends(require(SUPERUSER))]
) -> JSON:
    ctx = ctx_of(request)
    fields = body.model_dump(exclude={"username", "password"})
    user = await ctx.run(
        users.register,
        username=body.username,
        password=body.password,
        now=ctx.now(),
        actor_id=access.user_id,
        **fields,
    )
    return ok(user, 201)


@router.post("/users/{user_id}/tokens", status_code=201)
async def create_token(
    request: Request,
    user_id: int,
    body: TokenCreate,
    access: Annotated[Access, Depends(require(SELF))],
) -> JSON:
    ctx = ctx_of(request)
    token = await ctx.run(
        users.create_token,
        user_id=user_id,
        name=body.name,
        now=ctx.now(),
        actor_id=access.user_id,
    )
    return ok(token, 201)


@router.delete("/users/{user_id}/tokens/{token_id}")
async def revoke_token(
    request: Request,
    user_id: int,
    token_id: int,
    access: Annotated[Access, Depends(require(SELF))],
) -> JSON:
    ctx = ctx_of(request)
    await ctx.run(users.revoke_token, token_id=token_id, user_id=user_id, now=ctx.now())
    ctx.tokens.clear()
    return ok({"status": "revoked"})


@router.post("/sites", status_code=201)
async def create_site(
    request: Request, body: SiteCreate, access: Annotated[Access, Depends(require(SUPERUSER))]
) -> JSON:
    ctx = ctx_of(request)
    return ok(
        await ctx.run(users.create_site, code=body.code, name=body.name, now=ctx.now()), 201
    )


@router.get("/workspaces/{workspace_id}/members")
async def list_members(
    request: Request,
    workspace_id: int,
    access: Annotated[Access, Depends(require(WORKSPACE_MANAGE))],
) -> JSON:
    return ok({"members": await ctx_of(request).run(workspaces.members, workspace_id)})


@router.post("/workspaces/{workspace_id}/members", status_code=201)
async def add_member(
    request: Request,
    workspace_id: int,
    body: MemberCreate,
    access: Annotated[Access, Depends(require(WORKSPACE_ADMIN))],
) -> JSON:
    """Create a user and make it a member with a role (workspace admins onboard staff)."""
    ctx = ctx_of(request)
    if body.is_superuser and not (access.principal and access.principal.is_superuser):
        raise PermissionDenied("only instance administrators create administrators")
    member = await ctx.run(
        users.register,
        username=body.username,
        password=body.password,
        now=ctx.now(),
        workspace_id=workspace_id,
        actor_id=access.user_id,
        **body.model_dump(exclude={"username", "password"}),
    )
    return ok(member, 201)


@router.put("/workspaces/{workspace_id}/members/{user_id}")
async def set_role(
    request: Request,
    workspace_id: int,
    user_id: int,
    body: RoleBody,
    access: Annotated[Access, Depends(require(WORKSPACE_ADMIN))],
) -> JSON:
    ctx = ctx_of(request)
    result = await ctx.run(
        workspaces.set_role,
        workspace_id=workspace_id,
        user_id=user_id,
        role=body.role,
        now=ctx.now(),
        actor_id=access.user_id,
    )
    ctx.roles.drop((workspace_id, user_id))
    return ok(result)


@router.delete("/workspaces/{workspace_id}/members/{user_id}")
async def remove_member(
    request: Request,
    workspace_id: int,
    user_id: int,
    access: Annotated[Access, Depends(require(WORKSPACE_ADMIN))],
) -> JSON:
    ctx = ctx_of(request)
    await ctx.run(
        workspaces.remove_member,
        workspace_id=workspace_id,
        user_id=user_id,
        now=ctx.now(),
        actor_id=access.user_id,
    )
    ctx.roles.drop((workspace_id, user_id))
    return ok({"status": "removed"})


@router.get("/workspaces/{workspace_id}/audit")
async def workspace_audit(
    request: Request,
    workspace_id: int,
    access: Annotated[Access, Depends(require(WORKSPACE_ADMIN))],
    limit: int = 100,
    before: int | None = None,
) -> JSON:
    rows = await ctx_of(request).run(
        audit.entries, workspace_id=workspace_id, limit=min(limit, 1000), before=before
    )
    return ok({"entries": rows})


@router.get("/audit/verify")
async def verify_audit(
    request: Request, access: Annotated[Access, Depends(require(SUPERUSER))]
) -> JSON:
    result = await ctx_of(request).run(audit.verify)
    return ok({"ok": result.ok, "rows": result.n_rows, "problems": result.problems})
