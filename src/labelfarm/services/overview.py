"""What the manager pages show at a glance: a project's progress (items by status, labels,
live leases), a workspace with its projects, a project with its workspace."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select

from labelfarm.db import tables
from labelfarm.db.tables import assignments, items
from labelfarm.db.tx import CoreTx, transaction
from labelfarm.services.projects import get_project_dict, list_projects
from labelfarm.services.workspaces import get_workspace


@transaction("read")
def progress(tx: CoreTx, project_id: int, now: float) -> dict[str, Any]:
    """Items by status, annotations, live leases. Off the hot path (indexed aggregates)."""
    overlap = get_project_dict(tx, project_id)["overlap"]
    row = tx.execute(
        select(
            func.count().label("total"),
            func.sum((items.c.n_submitted >= overlap).cast(type_=items.c.n_submitted.type)),
            func.sum((items.c.n_submitted > 0).cast(type_=items.c.n_submitted.type)),
            func.sum(items.c.n_submitted),
        ).where(items.c.project_id == project_id, items.c.status == "ready")
    ).one()
    total, done, started, submitted = (int(v or 0) for v in row)
    leased = tx.execute(
        select(func.count())
        .select_from(assignments)
        .where(
            assignments.c.project_id == project_id,
            assignments.c.state == "leased",
            assignments.c.expires_at > now,
        )
    ).scalar_one()
    skipped = tx.execute(
        select(func.count())
        .select_from(assignments)
        .where(assignments.c.project_id == project_id, assignments.c.state == "skipped")
    ).scalar_one()
    anns = tables.annotations
    n_annotations, n_late, n_annotators = tx.execute(
        select(
            func.count(),
            func.sum((anns.c.status == "late").cast(type_=anns.c.id.type)),
            func.count(anns.c.user_id.distinct()),
        ).where(anns.c.project_id == project_id)
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


@transaction("read")
def workspace_overview(
    tx: CoreTx, workspace_id: int, *, with_progress: bool, now: float
) -> dict[str, Any]:
    """A workspace and its projects, each with its progress when ``with_progress``."""
    rows = list_projects(tx, workspace_id)
    if with_progress:
        for row in rows:
            row["progress"] = progress(tx, row["id"], now)
    return {"workspace": get_workspace(tx, workspace_id), "projects": rows}


@transaction("read")
def project_frame(tx: CoreTx, project_id: int) -> dict[str, Any]:
    """A project and its workspace (what every project page shows around its content)."""
    project = get_project_dict(tx, project_id)
    return {"project": project, "workspace": get_workspace(tx, project["workspace_id"])}


@transaction("read")
def project_overview(tx: CoreTx, project_id: int, now: float) -> dict[str, Any]:
    """A project, its workspace and its progress."""
    return {**project_frame(tx, project_id), "progress": progress(tx, project_id, now)}
