"""Annotators' standing in a project, for managers: list it, pause or resume someone."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, select

from labelfarm.db.tables import annotator_status, memberships, projects, users
from labelfarm.errors import InvalidInput, NotFound
from labelfarm.services import audit
from labelfarm.services.jsonutil import dumps, loads


def list_standing(conn: Connection, project_id: int) -> list[dict[str, Any]]:
    rows = conn.execute(
        select(
            annotator_status.c.user_id,
            users.c.pseudonym,
            users.c.display_name,
            annotator_status.c.state,
            annotator_status.c.reason,
            annotator_status.c.evidence,
            annotator_status.c.updated_at,
        )
        .select_from(annotator_status.join(users, users.c.id == annotator_status.c.user_id))
        .where(annotator_status.c.project_id == project_id)
        .order_by(annotator_status.c.state, users.c.pseudonym)
    ).mappings()
    return [{**r, "evidence": loads(r["evidence"])} for r in rows]


def set_standing(
    conn: Connection,
    *,
    project_id: int,
    user_id: int,
    state: str,
    reason: str,
    now: float,
    actor_id: int | None,
    workspace_id: int | None,
) -> dict[str, Any]:
    if state not in ("active", "paused"):
        raise InvalidInput("state must be 'active' or 'paused'", [{"field": "state"}])
    member = conn.execute(
        select(memberships.c.role)
        .select_from(
            memberships.join(projects, projects.c.workspace_id == memberships.c.workspace_id)
        )
        .where(projects.c.id == project_id, memberships.c.user_id == user_id)
    ).first()
    if member is None:
        raise NotFound(f"user {user_id} is not a member of this project's workspace")
    old = conn.execute(
        select(annotator_status.c.state).where(
            annotator_status.c.project_id == project_id, annotator_status.c.user_id == user_id
        )
    ).scalar()
    evidence = dumps({"set_by": actor_id, "previous": old})
    if old is None:
        conn.execute(
            annotator_status.insert().values(
                project_id=project_id,
                user_id=user_id,
                state=state,
                reason=reason,
                evidence=evidence,
                updated_at=now,
            )
        )
    else:
        conn.execute(
            annotator_status.update()
            .where(
                annotator_status.c.project_id == project_id, annotator_status.c.user_id == user_id
            )
            .values(state=state, reason=reason, evidence=evidence, updated_at=now)
        )
    audit.record(
        conn,
        action="annotator.standing",
        target=f"user:{user_id}",
        now=now,
        workspace_id=workspace_id,
        actor_id=actor_id,
        details={"project_id": project_id, "from": old, "to": state, "reason": reason},
    )
    return {"project_id": project_id, "user_id": user_id, "state": state}
