"""Answers of the instance and workspace routes: users, sessions, workspaces, members,
tokens, sites and the audit log."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from labelfarm.web.models.common import Out


class User(Out):
    id: int
    username: str
    display_name: str
    pseudonym: str = Field(description="how clients and reports name the user")
    site_id: int | None
    locale: str
    is_superuser: bool
    is_active: bool


class Workspace(Out):
    id: int
    slug: str
    name: str
    created_at: float


class WorkspaceOfUser(Workspace):
    role: str | None = Field(description="the caller's role (None: an instance admin's view)")


class Me(User):
    workspaces: list[WorkspaceOfUser]


class Session(Out):
    user: User
    csrf_token: str = Field(description="send it as X-CSRF-Token with every change")


class WorkspaceList(Out):
    workspaces: list[WorkspaceOfUser]


class WorkspaceCreated(Out):
    id: int
    slug: str
    name: str


class WorkspaceView(Workspace):
    role: str


class UserCreated(Out):
    id: int
    username: str
    pseudonym: str


class MemberCreated(UserCreated):
    role: str


class TokenCreated(Out):
    id: int
    name: str
    token: str = Field(description="the secret: shown now and never again")
    prefix: str
    created_at: str
    expires_at: str | None


class Token(Out):
    id: int
    name: str
    prefix: str = Field(description="the secret's first characters, to tell tokens apart")
    created_at: str
    expires_at: str | None
    revoked_at: str | None
    active: bool


class TokenList(Out):
    tokens: list[Token]


class Site(Out):
    id: int
    code: str
    name: str


class Member(Out):
    id: int
    username: str
    display_name: str
    pseudonym: str
    site_id: int | None
    role: str


class MemberList(Out):
    members: list[Member]


class RoleSet(Out):
    workspace_id: int
    user_id: int
    role: str


class AuditEntry(Out):
    id: int
    ts: float
    workspace_id: int | None
    actor_id: int | None
    action: str
    target: str
    details: Any
    prev_hash: str
    hash: str
    scheme: int = Field(description="1: keyed (HMAC-SHA-256); 0: from before the key")


class AuditEntries(Out):
    entries: list[AuditEntry]


class AuditCheck(Out):
    ok: bool
    rows: int
    problems: list[dict[str, Any]]


class AuditAnchor(Out):
    """A signed head of the audit chain (see docs/audit.md)."""

    format: str
    instance: str | None
    chain: str | None = Field(description="the hash of the chain's first row")
    last_id: int
    hash: str
    time: str | None
    rows: int
    signed_at: str
    key_id: str
    signature: str = Field(description="Ed25519, base64")


class LeasesReleased(Out):
    released: int
