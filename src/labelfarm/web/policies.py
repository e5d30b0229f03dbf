"""Who may do what. Every route declares one policy through :func:`require`.

A policy names the roles (per workspace) that may call a route and what the route is scoped
to: the instance (superusers), a workspace or a project from the path, the calling user
itself, or nobody in particular (public). A resource in a workspace the caller is not a
member of answers 404, as if it did not exist; a member whose role may not act answers 403.
Superusers run the instance and pass every check.

Tests walk every API route: a route without a policy fails the suite.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from fastapi import Request

from labelfarm.db.tables import MAX_INT
from labelfarm.errors import InvalidInput, NotAuthenticated, NotFound, PermissionDenied
from labelfarm.services import job_queue
from labelfarm.services import projects as project_service
from labelfarm.services import users as user_service
from labelfarm.services import workspaces as workspace_service
from labelfarm.services.projects import Project
from labelfarm.services.users import Principal
from labelfarm.web.context import AppContext, ctx_of

ALL_ROLES = frozenset({"admin", "manager", "reviewer", "annotator", "client"})
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
SESSION_COOKIE = "labelfarm_session"


@dataclass(frozen=True)
class Policy:
    name: str
    scope: str  # public | authenticated | superuser | self | workspace | project | signed
    roles: frozenset[str] = frozenset()


@dataclass(frozen=True, slots=True)
class Access:
    """The outcome of a passed policy check."""

    principal: Principal | None
    role: str | None = None
    workspace_id: int | None = None
    project: Project | None = None

    @property
    def user_id(self) -> int:
        assert self.principal is not None
        return self.principal.user_id


# -- the policies ----------------------------------------------------------------------------
PUBLIC = Policy("public", "public")
SIGNED = Policy("signed media url", "signed")
AUTHENTICATED = Policy("any signed-in user", "authenticated")
SUPERUSER = Policy("instance administration", "superuser")
SELF = Policy("the user itself", "self")
WORKSPACE_READ = Policy("workspace.read", "workspace", ALL_ROLES)
WORKSPACE_ADMIN = Policy("workspace.admin", "workspace", frozenset({"admin"}))
WORKSPACE_MANAGE = Policy("workspace.manage", "workspace", frozenset({"admin", "manager"}))
WORKSPACE_EVIDENCE = Policy(
    "workspace.evidence", "workspace", frozenset({"admin", "manager", "client"})
)
PROJECT_READ = Policy("project.read", "project", ALL_ROLES)
PROJECT_MANAGE = Policy("project.manage", "project", frozenset({"admin", "manager"}))
PROJECT_PROGRESS = Policy(
    "project.progress", "project", frozenset({"admin", "manager", "reviewer", "client"})
)
PROJECT_ITEMS = Policy("project.items", "project", frozenset({"admin", "manager", "reviewer"}))
PROJECT_EXPORT = Policy("project.export", "project", frozenset({"admin", "manager", "client"}))
PROJECT_ANNOTATE = Policy(
    "project.annotate", "project", frozenset({"admin", "manager", "reviewer", "annotator"})
)
PROJECT_QUALITY = Policy(
    "project.quality", "project", frozenset({"admin", "manager", "reviewer", "client"})
)
PROJECT_REVIEW = Policy("project.review", "project", frozenset({"admin", "manager", "reviewer"}))
# a job of the path: its project's managers; a job of no project: admins (of its workspace, or
# of the instance when it has none)
JOB_MANAGE = Policy("job.manage", "job", frozenset({"admin", "manager"}))


async def authenticate(request: Request) -> Principal | None:
    """The caller from a bearer token or a session cookie, or None."""
    ctx = ctx_of(request)
    auth = request.headers.get("authorization")
    if auth:
        scheme, _, secret = auth.partition(" ")
        if scheme.lower() != "bearer" or not secret:
            raise NotAuthenticated("use 'Authorization: Bearer <token>'")
        now = ctx.now()
        principal = await ctx.tokens.fetch(
            secret, lambda: ctx.run(user_service.principal_for_token, secret, now)
        )
        if principal is None or (principal.expires_at is not None and principal.expires_at <= now):
            raise NotAuthenticated("the token is not valid (revoked, expired or mistyped?)")
        return principal
    cookie = request.cookies.get(SESSION_COOKIE)
    if cookie:
        principal = await ctx.run(user_service.principal_for_session, cookie, ctx.now())
        if principal is not None and request.method not in SAFE_METHODS:
            sent = request.headers.get("x-csrf-token")
            if sent is None and request.headers.get("content-type", "").startswith(
                ("application/x-www-form-urlencoded", "multipart/form-data")
            ):
                sent = (await request.form()).get("csrf_token")  # type: ignore[assignment]
            if sent != principal.csrf_token:
                refused(request, principal)
                raise PermissionDenied("missing or wrong CSRF token")
        return principal
    return None


# Lookups when a cache entry has expired: single indexed reads declared "lookup", so they
# run on the event loop and never wait for the SQLite writer; a thread hop per lookup made
# every annotator of the process wait while a batch of cache entries expired together.
async def role_in(ctx: AppContext, workspace_id: int, user_id: int) -> str | None:
    return await ctx.roles.fetch(
        (workspace_id, user_id),
        lambda: ctx.run(workspace_service.role_of, workspace_id, user_id),
    )


async def project_of(ctx: AppContext, project_id: int) -> Project:
    return await ctx.projects.fetch(
        project_id, lambda: ctx.run(project_service.load_project, project_id)
    )


def refused(request: Request, principal: Principal, workspace_id: int | None = None) -> None:
    """Count a refused authorization for the audit log: written in aggregate, one row per
    route, workspace and user a minute (a flood of refusals neither fills the log nor takes a
    write each). The target is the route's path template, never the raw URL."""
    ctx = ctx_of(request)
    route = getattr(request.scope.get("route"), "path", None) or "?"
    ctx.tally.add(
        "authz.refused",
        f"{request.method} {route}",
        now=ctx.now(),
        workspace_id=workspace_id,
        actor_id=principal.user_id,
        bucket_seconds=60,
    )


def _path_int(request: Request, name: str) -> int:
    """The id ``name`` of the path, bounded as the route's own parameter is (``Id``): the
    policy looks it up before the route's parameters are validated."""
    raw = request.path_params.get(name)
    try:
        value = int(raw)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        value = 0
    if not 1 <= value <= MAX_INT:
        raise InvalidInput(f"{name} must be a whole number from 1 to {MAX_INT}", [{"field": name}])
    return value


async def _job_scope(ctx: AppContext, request: Request) -> tuple[Project | None, int | None]:
    """The project (if any) and workspace (if any) of the job in the path."""
    job = await ctx.run(job_queue.get_job, _path_int(request, "job_id"))
    if job.project_id is None:
        return None, job.workspace_id
    project = await project_of(ctx, job.project_id)
    return project, project.workspace_id


def require(policy: Policy) -> Callable[[Request], Awaitable[Access]]:
    """A FastAPI dependency enforcing ``policy``; it returns the :class:`Access` granted."""

    async def check(request: Request) -> Access:
        if policy.scope in ("public", "signed"):
            return Access(None)
        principal = await authenticate(request)
        if principal is None:
            raise NotAuthenticated("sign in or send an API token")
        if policy.scope == "authenticated":
            return Access(principal)
        if policy.scope == "superuser":
            if not principal.is_superuser:
                refused(request, principal)
                raise PermissionDenied("only instance administrators may do this")
            return Access(principal)
        if policy.scope == "self":
            if principal.user_id != _path_int(request, "user_id") and not principal.is_superuser:
                refused(request, principal)
                raise PermissionDenied("only the user itself may do this")
            return Access(principal)
        ctx = ctx_of(request)
        project = None
        if policy.scope == "job":
            project, job_workspace = await _job_scope(ctx, request)
            if job_workspace is None:  # the instance's own work: its administrators'
                if not principal.is_superuser:
                    refused(request, principal)
                    raise PermissionDenied("only instance administrators may do this")
                return Access(principal)
            workspace_id = job_workspace
        elif policy.scope == "project":
            project = await project_of(ctx, _path_int(request, "project_id"))
            workspace_id = project.workspace_id
        else:
            workspace_id = _path_int(request, "workspace_id")
        role = await role_in(ctx, workspace_id, principal.user_id)
        if principal.is_superuser:
            return Access(principal, role or "admin", workspace_id, project)
        if role is None:
            refused(request, principal, workspace_id)  # answered as if it did not exist
            what = "project" if project is not None else "workspace"
            raise NotFound(f"no such {'job' if policy.scope == 'job' else what}")
        if policy.scope == "job" and project is None and role != "admin":
            refused(request, principal, workspace_id)
            raise PermissionDenied("a job of no project is for the workspace's admins")
        if role not in policy.roles:
            refused(request, principal, workspace_id)
            allowed = sorted(policy.roles)
            raise PermissionDenied(
                f"a {role} may not do this; it is for: {', '.join(allowed)}",
                [{"reason": "role", "role": role, "allowed": allowed}],
            )
        return Access(principal, role, workspace_id, project)

    check.policy = policy  # type: ignore[attr-defined]
    return check


def declared_policy(dependency: Any) -> Policy | None:
    return getattr(dependency, "policy", None)
