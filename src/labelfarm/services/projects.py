"""Projects: schema (versioned), workflow settings, progress."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, func, select, update
from sqlalchemy.exc import IntegrityError

from labelfarm.db.tables import (
    annotations,
    assignments,
    items,
    predictions,
    projects,
    schema_versions,
)
from labelfarm.errors import Conflict, InvalidInput, NotFound
from labelfarm.schema import Schema, compile_schema, parse_schema_text
from labelfarm.services import audit
from labelfarm.services.jsonutil import dumps, loads

ORDERINGS = ("fifo", "priority")
SETTINGS = ("name", "description", "guidelines", "overlap", "lease_seconds", "ordering")


@dataclass(frozen=True, slots=True)
class Project:
    """What the hot path needs to know about a project."""

    id: int
    workspace_id: int
    name: str
    schema_version: int
    overlap: int
    lease_seconds: int
    ordering: str
    schema: Schema
    has_predictions: bool = False


def _check_settings(overlap: Any, lease_seconds: Any, ordering: Any) -> None:
    problems = []
    if not isinstance(overlap, int) or isinstance(overlap, bool) or not 1 <= overlap <= 100:
        problems.append({"field": "overlap", "reason": "a whole number from 1 to 100"})
    if not isinstance(lease_seconds, int) or not 10 <= lease_seconds <= 30 * 86400:
        problems.append({"field": "lease_seconds", "reason": "seconds from 10 to 2,592,000"})
    if ordering not in ORDERINGS:
        problems.append({"field": "ordering", "reason": f"one of {list(ORDERINGS)}"})
    if problems:
        raise InvalidInput("invalid project settings", problems)


def _schema_dict(schema: dict[str, Any] | str) -> dict[str, Any]:
    if isinstance(schema, str):
        return parse_schema_text(schema)
    Schema(schema)  # validates; raises SchemaError naming the field
    return schema


def create_project(
    conn: Connection,
    *,
    workspace_id: int,
    name: str,
    schema: dict[str, Any] | str,
    now: float,
    actor_id: int | None,
    overlap: int = 1,
    lease_seconds: int = 600,
    ordering: str = "fifo",
    description: str = "",
    guidelines: str = "",
) -> dict[str, Any]:
    if not name or not name.strip():
        raise InvalidInput("a project needs a name", [{"field": "name"}])
    _check_settings(overlap, lease_seconds, ordering)
    raw = _schema_dict(schema)
    try:
        pid = conn.execute(
            projects.insert()
            .values(
                workspace_id=workspace_id,
                name=name,
                description=description,
                guidelines=guidelines,
                schema_version=1,
                overlap=overlap,
                lease_seconds=lease_seconds,
                ordering=ordering,
                created_at=now,
                updated_at=now,
            )
            .returning(projects.c.id)
        ).scalar_one()
    except IntegrityError:
        raise Conflict(f"a project named {name!r} exists", [{"field": "name"}]) from None
    conn.execute(
        schema_versions.insert().values(
            project_id=pid, version=1, schema=dumps(raw), created_at=now
        )
    )
    audit.record(
        conn,
        action="project.create",
        target=f"project:{pid}",
        now=now,
        workspace_id=workspace_id,
        actor_id=actor_id,
        details={"name": name},
    )
    return get_project_dict(conn, pid)


def load_project(conn: Connection, project_id: int) -> Project:
    row = (
        conn.execute(
            select(projects, schema_versions.c.schema)
            .select_from(
                projects.join(
                    schema_versions,
                    (schema_versions.c.project_id == projects.c.id)
                    & (schema_versions.c.version == projects.c.schema_version),
                )
            )
            .where(projects.c.id == project_id)
        )
        .mappings()
        .first()
    )
    if row is None:
        raise NotFound(f"no project {project_id}")
    return Project(
        id=row["id"],
        workspace_id=row["workspace_id"],
        name=row["name"],
        schema_version=row["schema_version"],
        overlap=row["overlap"],
        lease_seconds=row["lease_seconds"],
        ordering=row["ordering"],
        schema=compile_schema(row["schema"]),
        has_predictions=conn.execute(
            select(predictions.c.id).where(predictions.c.project_id == project_id).limit(1)
        ).first()
        is not None,
    )


def get_project_dict(conn: Connection, project_id: int) -> dict[str, Any]:
    row = conn.execute(select(projects).where(projects.c.id == project_id)).mappings().first()
    if row is None:
        raise NotFound(f"no project {project_id}")
    out = dict(row)
    raw = conn.execute(
        select(schema_versions.c.schema).where(
            schema_versions.c.project_id == project_id,
            schema_versions.c.version == row["schema_version"],
        )
    ).scalar_one()
    out["schema"] = loads(raw)
    return out


def list_projects(conn: Connection, workspace_id: int) -> list[dict[str, Any]]:
    rows = conn.execute(
        select(projects).where(projects.c.workspace_id == workspace_id).order_by(projects.c.id)
    ).mappings()
    return [dict(r) for r in rows]


def update_settings(
    conn: Connection, *, project_id: int, changes: dict[str, Any], now: float, actor_id: int | None
) -> dict[str, Any]:
    unknown = set(changes) - set(SETTINGS) - {"schema"}
    if unknown:
        raise InvalidInput(
            f"unknown setting(s) {sorted(unknown)}; valid: {[*SETTINGS, 'schema']}",
            [{"field": k, "reason": "unknown setting"} for k in sorted(unknown)],
        )
    current = get_project_dict(conn, project_id)
    merged = {k: changes.get(k, current[k]) for k in SETTINGS}
    _check_settings(merged["overlap"], merged["lease_seconds"], merged["ordering"])
    values: dict[str, Any] = {k: v for k, v in changes.items() if k in SETTINGS}
    if "schema" in changes:
        raw = _schema_dict(changes["schema"])
        if raw != current["schema"]:
            version = current["schema_version"] + 1
            conn.execute(
                schema_versions.insert().values(
                    project_id=project_id, version=version, schema=dumps(raw), created_at=now
                )
            )
            values["schema_version"] = version
    if not values:
        return current
    values["updated_at"] = now
    conn.execute(projects.update().where(projects.c.id == project_id).values(**values))
    if "overlap" in values and values["overlap"] != current["overlap"]:
        reopen_items(conn, project_id, values["overlap"])
    audit.record(
        conn,
        action="project.settings",
        target=f"project:{project_id}",
        now=now,
        workspace_id=current["workspace_id"],
        actor_id=actor_id,
        details={
            k: {"from": current.get(k), "to": v}
            for k, v in values.items()
            if k not in ("updated_at",)
        },
    )
    return get_project_dict(conn, project_id)


def reopen_items(conn: Connection, project_id: int, overlap: int) -> None:
    """Recompute which items are open after the overlap changed."""
    conn.execute(
        update(items)
        .where(items.c.project_id == project_id, items.c.status == "ready")
        .values(is_open=(items.c.n_leased + items.c.n_submitted) < overlap)
    )


def progress(conn: Connection, project_id: int, now: float) -> dict[str, Any]:
    """Items by status, annotations, live leases. Off the hot path (indexed aggregates)."""
    project = get_project_dict(conn, project_id)
    overlap = project["overlap"]
    row = conn.execute(
        select(
            func.count().label("total"),
            func.sum((items.c.n_submitted >= overlap).cast(type_=items.c.n_submitted.type)),
            func.sum((items.c.n_submitted > 0).cast(type_=items.c.n_submitted.type)),
            func.sum(items.c.n_submitted),
        ).where(items.c.project_id == project_id, items.c.status == "ready")
    ).one()
    total, done, started, submitted = (int(v or 0) for v in row)
    leased = conn.execute(
        select(func.count())
        .select_from(assignments)
        .where(
            assignments.c.project_id == project_id,
            assignments.c.state == "leased",
            assignments.c.expires_at > now,
        )
    ).scalar_one()
    skipped = conn.execute(
        select(func.count())
        .select_from(assignments)
        .where(assignments.c.project_id == project_id, assignments.c.state == "skipped")
    ).scalar_one()
    n_annotations, n_late, n_annotators = conn.execute(
        select(
            func.count(),
            func.sum((annotations.c.status == "late").cast(type_=annotations.c.id.type)),
            func.count(annotations.c.user_id.distinct()),
        ).where(annotations.c.project_id == project_id)
    ).one()
    return {
        "project_id": project_id,
        "overlap": overlap,
        "items": {
            "total": total,
            "done": done,
            "in_progress": started - done,
            "not_started": total - started,
        },
        "labels_submitted": submitted,
        "labels_needed": total * overlap,
        "live_leases": int(leased),
        "skips": int(skipped),
        "annotations": int(n_annotations or 0),
        "late_annotations": int(n_late or 0),
        "annotators": int(n_annotators or 0),
    }
