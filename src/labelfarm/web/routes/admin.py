"""Instance and workspace administration: workspaces, users, roles, tokens, sites, audit,
and a manager's release of an annotator's leases.

Workspace admins manage their own workspace's members: they create users in it and change
the roles of its members. Only instance administrators add an account that exists outside
the workspace; to a workspace admin such an account looks exactly like one that does not
exist, and a username already taken is refused like one that is not allowed (see
docs/security.md).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request

from labelfarm.errors import Conflict, InvalidInput, NotFound, PermissionDenied
from labelfarm.jsonutil import parse_time
from labelfarm.services import audit, audit_anchor, users, workspaces
from labelfarm.services.tasks import release
from labelfarm.web.context import ctx_of
from labelfarm.web.models.admin import (
    AuditAnchor,
    AuditCheck,
    AuditEntries,
    LeasesReleased,
    MemberCreated,
    MemberList,
    RoleSet,
    Site,
    TokenCreated,
    TokenList,
    UserCreated,
    WorkspaceCreated,
    WorkspaceList,
    WorkspaceView,
)
from labelfarm.web.models.common import Status
from labelfarm.web.policies import (
    AUTHENTICATED,
    PROJECT_MANAGE,
    SELF,
    SUPERUSER,
    WORKSPACE_ADMIN,
    WORKSPACE_EVIDENCE,
    WORKSPACE_MANAGE,
    WORKSPACE_READ,
    Access,
    require,
)
from labelfarm.web.responses import JSON, documented, ok
from labelfarm.web.schemas import (
    Id,
    MemberCreate,
    QueryId,
    RoleBody,
    SiteCreate,
    TokenCreate,
    UserCreate,
    WorkspaceCreate,
)

router = APIRouter(prefix="/api/v1", tags=["admin"])


@router.get("/workspaces", **documented(WorkspaceList, 401))
async def list_workspaces(
    request: Request, access: Annotated[Access, Depends(require(AUTHENTICATED))]
) -> JSON:
    assert access.principal is not None
    rows = await ctx_of(request).run(
        workspaces.workspaces_of, access.user_id, all_=access.principal.is_superuser
    )
    return ok({"workspaces": rows})


@router.post("/workspaces", **documented(WorkspaceCreated, 401, 403, 409, 413, 422, status=201))
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


@router.get("/workspaces/{workspace_id}", **documented(WorkspaceView, 401, 403, 404, 422))
async def get_workspace(
    request: Request,
    workspace_id: Id,
    access: Annotated[Access, Depends(require(WORKSPACE_READ))],
) -> JSON:
    ws = await ctx_of(request).run(workspaces.get_workspace, workspace_id)
    return ok({**ws, "role": access.role})


@router.post("/users", **documented(UserCreated, 401, 403, 404, 409, 413, 422, 503, status=201))
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


@router.post(
    "/users/{user_id}/tokens", **documented(TokenCreated, 401, 403, 404, 413, 422, status=201)
)
async def create_token(
    request: Request,
    user_id: Id,
    body: TokenCreate,
    access: Annotated[Access, Depends(require(SELF))],
) -> JSON:
    """A new token (shown once); with ``expires_days`` or ``expires_at`` it stops working then."""
    ctx = ctx_of(request)
    try:
        expires_at = None if body.expires_at is None else parse_time(body.expires_at)
    except ValueError:
        raise InvalidInput(
            "expires_at must be an ISO-8601 time", [{"field": "expires_at"}]
        ) from None
    token = await ctx.run(
        users.create_token,
        user_id=user_id,
        name=body.name,
        now=ctx.now(),
        actor_id=access.user_id,
        expires_days=body.expires_days,
        expires_at=expires_at,
    )
    return ok(token, 201)


@router.get("/users/{user_id}/tokens", **documented(TokenList, 401, 403, 422))
async def list_tokens(
    request: Request, user_id: Id, access: Annotated[Access, Depends(require(SELF))]
) -> JSON:
    """The user's tokens, newest first: id, name, prefix, times, whether each still works;
    never a secret."""
    ctx = ctx_of(request)
    return ok({"tokens": await ctx.run(users.list_tokens, user_id, ctx.now())})


@router.delete("/users/{user_id}/tokens/{token_id}", **documented(Status, 401, 403, 404, 413, 422))
async def revoke_token(
    request: Request,
    user_id: Id,
    token_id: Id,
    access: Annotated[Access, Depends(require(SELF))],
) -> JSON:
    ctx = ctx_of(request)
    await ctx.run(users.revoke_token, token_id=token_id, user_id=user_id, now=ctx.now())
    ctx.tokens.clear()
    return ok({"status": "revoked"})


@router.post("/sites", **documented(Site, 401, 403, 409, 413, 422, status=201))
async def create_site(
    request: Request, body: SiteCreate, access: Annotated[Access, Depends(require(SUPERUSER))]
) -> JSON:
    ctx = ctx_of(request)
    return ok(await ctx.run(users.create_site, code=body.code, name=body.name, now=ctx.now()), 201)


@router.get("/workspaces/{workspace_id}/members", **documented(MemberList, 401, 403, 404, 422))
async def list_members(
    request: Request,
    workspace_id: Id,
    access: Annotated[Access, Depends(require(WORKSPACE_MANAGE))],
) -> JSON:
    return ok({"members": await ctx_of(request).run(workspaces.members, workspace_id)})


@router.post(
    "/workspaces/{workspace_id}/members",
    **documented(MemberCreated, 401, 403, 404, 409, 413, 422, 503, status=201),
)
async def add_member(
    request: Request,
    workspace_id: Id,
    body: MemberCreate,
    access: Annotated[Access, Depends(require(WORKSPACE_ADMIN))],
) -> JSON:
    """Create a user and make it a member with a role (workspace admins onboard staff)."""
    ctx = ctx_of(request)
    instance_admin = bool(access.principal and access.principal.is_superuser)
    if body.is_superuser and not instance_admin:
        raise PermissionDenied("only instance administrators create administrators")
    try:
        member = await ctx.run(
            users.register,
            username=body.username,
            password=body.password,
            now=ctx.now(),
            workspace_id=workspace_id,
            actor_id=access.user_id,
            **body.model_dump(exclude={"username", "password"}),
        )
    except Conflict:
        if instance_admin:
            raise
        # the name is taken by an account this admin may not see: say no more than that
        # the name cannot be used (see the module's docstring)
        raise InvalidInput(
            "this username cannot be used; choose another",
            [{"field": "username", "reason": "not available"}],
        ) from None
    return ok(member, 201)


@router.put(
    "/workspaces/{workspace_id}/members/{user_id}",
    **documented(RoleSet, 401, 403, 404, 413, 422),
)
async def set_role(
    request: Request,
    workspace_id: Id,
    user_id: Id,
    body: RoleBody,
    access: Annotated[Access, Depends(require(WORKSPACE_ADMIN))],
) -> JSON:
    """Change a member's role; instance administrators may also add any existing user."""
    ctx = ctx_of(request)
    result = await ctx.run(
        workspaces.set_role,
        workspace_id=workspace_id,
        user_id=user_id,
        role=body.role,
        now=ctx.now(),
        actor_id=access.user_id,
        members_only=not (access.principal and access.principal.is_superuser),
    )
    ctx.roles.drop((workspace_id, user_id))
    return ok(result)


@router.delete(
    "/workspaces/{workspace_id}/members/{user_id}",
    **documented(Status, 401, 403, 404, 413, 422),
)
async def remove_member(
    request: Request,
    workspace_id: Id,
    user_id: Id,
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


@router.get("/workspaces/{workspace_id}/audit", **documented(AuditEntries, 401, 403, 404, 422))
async def workspace_audit(
    request: Request,
    workspace_id: Id,
    access: Annotated[Access, Depends(require(WORKSPACE_ADMIN))],
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    before: QueryId = None,
) -> JSON:
    rows = await ctx_of(request).run(
        audit.entries, workspace_id=workspace_id, limit=min(limit, 1000), before=before
    )
    return ok({"entries": rows})


@router.get("/audit/verify", **documented(AuditCheck, 401, 403))
async def verify_audit(
    request: Request, access: Annotated[Access, Depends(require(SUPERUSER))]
) -> JSON:
    result = await ctx_of(request).run(audit.verify)
    return ok({"ok": result.ok, "rows": result.n_rows, "problems": result.problems})


@router.get(
    "/workspaces/{workspace_id}/audit/anchor",
    **documented(AuditAnchor, 401, 403, 404, 422),
)
async def latest_audit_anchor(
    request: Request,
    workspace_id: Id,
    access: Annotated[Access, Depends(require(WORKSPACE_EVIDENCE))],
) -> JSON:
    """The newest signed anchor of the instance's audit chain (see docs/audit.md): keep it,
    and check later with the operator's public key that the log still holds it."""
    anchor = await ctx_of(request).run(audit_anchor.latest_anchor)
    if anchor is None:
        raise NotFound("no anchor of the audit log has been signed yet")
    return ok(anchor)


@router.delete(
    "/projects/{project_id}/annotators/{user_id}/leases",
    **documented(LeasesReleased, 401, 403, 404, 413, 422),
)
async def release_leases(
    request: Request,
    project_id: Id,
    user_id: Id,
    access: Annotated[Access, Depends(require(PROJECT_MANAGE))],
) -> JSON:
    """End every lease the user holds in the project; the items reopen at once (audited).
    Work the user submits on them later is kept and marked late."""
    ctx, project = ctx_of(request), access.project
    assert project is not None
    done = await ctx.run(
        release.release_leases, project, user_id, ctx.now(), actor_id=access.user_id
    )
    return ok(done)
