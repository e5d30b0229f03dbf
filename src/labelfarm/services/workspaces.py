"""Workspaces (one per client) and the roles users hold in them."""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy import Connection, select
from sqlalchemy.exc import IntegrityError

from labelfarm.db.hot import Hot, Sql
from labelfarm.db.tables import memberships, users, workspaces
from labelfarm.errors import Conflict, InvalidInput, NotFound
from labelfarm.services import audit

ROLES = ("admin", "manager", "reviewer", "annotator", "client")
_SLUG = re.compile(r"^[a-z0-9][a-z0-9\-]{0,63}$")


def create_workspace(
    conn: Connection, *, slug: str, name: str, now: float, actor_id: int | None = None
) -> dict[str, Any]:
    if not _SLUG.match(slug):
        raise InvalidInput("slug must be lower-case letters, digits and -", [{"field": "slug"}])
    try:
        ws_id = conn.execute(
            workspaces.insert()
            .values(slug=slug, name=name, created_at=now)
            .returning(workspaces.c.id)
        ).scalar_one()
    except IntegrityError:
        raise Conflict(f"workspace {slug!r} exists", [{"field": "slug"}]) from None
    audit.record(
        conn,
        action="workspace.create",
        target=f"workspace:{ws_id}",
        now=now,
        workspace_id=ws_id,
        actor_id=actor_id,
        details={"slug": slug},
    )
    return {"id": ws_id, "slug": slug, "name": name}


def get_workspace(conn: Connection, workspace_id: int) -> dict[str, Any]:
    row = conn.execute(select(workspaces).where(workspaces.c.id == workspace_id)).mappings().first()
    if row is None:
        raise NotFound(f"no workspace {workspace_id}")
    return dict(row)


def workspace_by_slug(conn: Connection, slug: str) -> dict[str, Any]:
    row = conn.execute(select(workspaces).where(workspaces.c.slug == slug)).mappings().first()
    if row is None:
        raise NotFound(f"no workspace {slug!r}")
    return dict(row)


def workspaces_of(conn: Connection, user_id: int, *, all_: bool = False) -> list[dict[str, Any]]:
    """The workspaces a user is a member of (every workspace with ``all_``), with the role."""
    if all_:
        q = select(workspaces, memberships.c.role).select_from(
            workspaces.outerjoin(
                memberships,
                (memberships.c.workspace_id == workspaces.c.id)
                & (memberships.c.user_id == user_id),
            )
        )
    else:
        q = (
            select(workspaces, memberships.c.role)
            .select_from(
                workspaces.join(memberships, memberships.c.workspace_id == workspaces.c.id)
            )
            .where(memberships.c.user_id == user_id)
        )
    return [dict(r) for r in conn.execute(q.order_by(workspaces.c.id)).mappings()]


ROLE = Sql("SELECT role FROM memberships WHERE workspace_id = :w AND user_id = :u")


def role_in(hot: Hot, workspace_id: int, user_id: int) -> str | None:
    """The user's role in the workspace, on the hot path's raw cursor (policy checks)."""
    row = hot.one(ROLE, {"w": workspace_id, "u": user_id})
    return None if row is None else str(row[0])


def role_of(conn: Connection, workspace_id: int, user_id: int) -> str | None:
    return conn.execute(
        select(memberships.c.role).where(
            memberships.c.workspace_id == workspace_id, memberships.c.user_id == user_id
        )
    ).scalar()


def set_role(
    conn: Connection,
    *,
    workspace_id: int,
    user_id: int,
    role: str,
    now: float,
    actor_id: int | None,
) -> dict[str, Any]:
    if role not in ROLES:
        raise InvalidInput(
            f"unknown role {role!r}; valid roles: {list(ROLES)}", [{"field": "role"}]
        )
    get_workspace(conn, workspace_id)
    if conn.execute(select(users.c.id).where(users.c.id == user_id)).first() is None:
        raise NotFound(f"no user {user_id}")
    old = role_of(conn, workspace_id, user_id)
    if old is None:
        conn.execute(
            memberships.insert().values(
                workspace_id=workspace_id, user_id=user_id, role=role, created_at=now
            )
        )
    elif old != role:
        conn.execute(
            memberships.update()
            .where(memberships.c.workspace_id == workspace_id, memberships.c.user_id == user_id)
            .values(role=role)
        )
    if old != role:
        audit.record(
            conn,
            action="role.set",
            target=f"user:{user_id}",
            now=now,
            workspace_id=workspace_id,
            actor_id=actor_id,
            details={"from": old, "to": role},
        )
    return {"workspace_id": workspace_id, "user_id": user_id, "role": role}


def remove_member(
    conn: Connection, *, workspace_id: int, user_id: int, now: float, actor_id: int | None
) -> None:
    old = role_of(conn, workspace_id, user_id)
    if old is None:
        raise NotFound(f"user {user_id} is not a member")
    conn.execute(
        memberships.delete().where(
            memberships.c.workspace_id == workspace_id, memberships.c.user_id == user_id
        )
    )
    audit.record(
        conn,
        action="role.remove",
        target=f"user:{user_id}",
        now=now,
        workspace_id=workspace_id,
        actor_id=actor_id,
        details={"from": old},
    )


def members(conn: Connection, workspace_id: int) -> list[dict[str, Any]]:
    q = (
        select(
            users.c.id,
            users.c.username,
            users.c.display_name,
            users.c.pseudonym,
            users.c.site_id,
            memberships.c.role,
        )
        .select_from(memberships.join(users, users.c.id == memberships.c.user_id))
        .where(memberships.c.workspace_id == workspace_id)
        .order_by(users.c.username)
    )
    return [dict(r) for r in conn.execute(q).mappings()]
