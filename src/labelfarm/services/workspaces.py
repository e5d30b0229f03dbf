"""Workspaces (one per client) and the roles users hold in them."""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from labelfarm.db.tables import memberships, users, workspaces
from labelfarm.db.tx import CoreTx, Sql, Tx, transaction
from labelfarm.errors import Conflict, InvalidInput, NotFound
from labelfarm.services import audit

ROLES = ("admin", "manager", "reviewer", "annotator", "client")
_SLUG = re.compile(r"^[a-z0-9][a-z0-9\-]{0,63}$")


@transaction("write")
def create_workspace(
    tx: CoreTx, *, slug: str, name: str, now: float, actor_id: int | None = None
) -> dict[str, Any]:
    if not _SLUG.match(slug):
        raise InvalidInput("slug must be lower-case letters, digits and -", [{"field": "slug"}])
    try:
        ws_id = tx.execute(
            workspaces.insert()
            .values(slug=slug, name=name, created_at=now)
            .returning(workspaces.c.id)
        ).scalar_one()
    except IntegrityError:
        raise Conflict(f"workspace {slug!r} exists", [{"field": "slug"}]) from None
    audit.record(
        tx,
        action="workspace.create",
        target=f"workspace:{ws_id}",
        now=now,
        workspace_id=ws_id,
        actor_id=actor_id,
        details={"slug": slug},
    )
    return {"id": ws_id, "slug": slug, "name": name}


@transaction("read")
def get_workspace(tx: CoreTx, workspace_id: int) -> dict[str, Any]:
    row = tx.execute(select(workspaces).where(workspaces.c.id == workspace_id)).mappings().first()
    if row is None:
        raise NotFound(f"no workspace {workspace_id}")
    return dict(row)


@transaction("read")
def workspace_by_slug(tx: CoreTx, slug: str) -> dict[str, Any]:
    row = tx.execute(select(workspaces).where(workspaces.c.slug == slug)).mappings().first()
    if row is None:
        raise NotFound(f"no workspace {slug!r}")
    return dict(row)


@transaction("read")
def workspaces_of(tx: CoreTx, user_id: int, *, all_: bool = False) -> list[dict[str, Any]]:
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
    return [dict(r) for r in tx.execute(q.order_by(workspaces.c.id)).mappings()]


ROLE = Sql("SELECT role FROM memberships WHERE workspace_id = :w AND user_id = :u")


@transaction("lookup")
def role_of(tx: Tx, workspace_id: int, user_id: int) -> str | None:
    """The user's role in the workspace, or None (policy checks look it up on the hot path)."""
    row = tx.one(ROLE, {"w": workspace_id, "u": user_id})
    return None if row is None else str(row[0])


@transaction("write")
def set_role(
    tx: CoreTx,
    *,
    workspace_id: int,
    user_id: int,
    role: str,
    now: float,
    actor_id: int | None,
    members_only: bool = False,
) -> dict[str, Any]:
    """Give ``user_id`` ``role`` in the workspace, adding them if they are not a member.

    With ``members_only`` (a workspace admin acting) only a member's role may change: any
    other user id is refused with the same NotFound whether or not such a user exists, so
    the answer tells nothing about accounts outside the workspace.
    """
    if role not in ROLES:
        raise InvalidInput(
            f"unknown role {role!r}; valid roles: {list(ROLES)}", [{"field": "role"}]
        )
    get_workspace(tx, workspace_id)
    old = role_of(tx, workspace_id, user_id)
    if old is None and members_only:
        raise NotFound(f"no member {user_id} in this workspace", [{"field": "user_id"}])
    if old is None and tx.execute(select(users.c.id).where(users.c.id == user_id)).first() is None:
        raise NotFound(f"no user {user_id}")
    if old is None:
        tx.execute(
            memberships.insert().values(
                workspace_id=workspace_id, user_id=user_id, role=role, created_at=now
            )
        )
    elif old != role:
        tx.execute(
            memberships.update()
            .where(memberships.c.workspace_id == workspace_id, memberships.c.user_id == user_id)
            .values(role=role)
        )
    if old != role:
        audit.record(
            tx,
            action="role.set",
            target=f"user:{user_id}",
            now=now,
            workspace_id=workspace_id,
            actor_id=actor_id,
            details={"from": old, "to": role},
        )
    return {"workspace_id": workspace_id, "user_id": user_id, "role": role}


@transaction("write")
def remove_member(
    tx: CoreTx, *, workspace_id: int, user_id: int, now: float, actor_id: int | None
) -> None:
    old = role_of(tx, workspace_id, user_id)
    if old is None:
        raise NotFound(f"user {user_id} is not a member")
    tx.execute(
        memberships.delete().where(
            memberships.c.workspace_id == workspace_id, memberships.c.user_id == user_id
        )
    )
    audit.record(
        tx,
        action="role.remove",
        target=f"user:{user_id}",
        now=now,
        workspace_id=workspace_id,
        actor_id=actor_id,
        details={"from": old},
    )


@transaction("read")
def members(tx: CoreTx, workspace_id: int) -> list[dict[str, Any]]:
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
    return [dict(r) for r in tx.execute(q).mappings()]
