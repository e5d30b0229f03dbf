"""What the manager pages show at a glance: a project's progress (items by status, labels,
live leases), a workspace with its projects, a project with its workspace.

Progress is true to the project's settings: items done of the items to label (gold items
are counted apart: every annotator answers them), labels done of the labels wanted, never
more than 100 %. With adaptive overlap the labels wanted grow while labels disagree (up to
``labels_most``); labels beyond what an item wants (late submissions) are ``labels_extra``.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import and_, case, false, func, not_, or_, select

from labelfarm.db import tables
from labelfarm.db.tables import assignments, items
from labelfarm.db.tx import CoreTx, transaction
from labelfarm.services.projects import get_project_dict, list_projects
from labelfarm.services.workspaces import get_workspace


def _item_progress(project: dict[str, Any]) -> tuple[Any, Any, Any]:
    """SQL of each item's labels: (done, labels wanted, labels counted towards them).

    An item wants ``overlap`` labels; with adaptive overlap, one more than it has while it
    has its minimum, is below ``max_overlap`` and its label is less sure than the target. A
    reviewed item is done with the labels it has (the review decided its label). Labels
    beyond what an item wants (late submissions) are counted apart, so the labels done
    never exceed the labels wanted.
    """
    n = items.c.n_submitted
    overlap = int(project["overlap"])
    adaptive = int(project["max_overlap"]) > overlap
    cap = int(project["max_overlap"]) if adaptive else overlap
    if adaptive:
        sure = func.coalesce(items.c.label_confidence, 0.0) >= float(project["target_confidence"])
        wants_more = and_(n >= overlap, n < cap, not_(sure))
    else:
        wants_more = false()
    reviewed = items.c.is_reviewed.is_(True)
    done = or_(reviewed, and_(n >= overlap, not_(wants_more)))
    wanted = case(
        (reviewed, case((n > cap, cap), else_=n)),
        (n < overlap, overlap),
        (wants_more, n + 1),
        (n > cap, cap),
        else_=n,
    )
    counted = case((n > cap, cap), else_=n)
    return done, wanted, counted


def _whole(condition: Any) -> Any:
    return func.sum(case((condition, 1), else_=0))


@transaction("read")
def progress(tx: CoreTx, project_id: int, now: float) -> dict[str, Any]:
    """Items done of the items to label, labels done of the labels wanted (see
    :func:`_item_progress`), gold apart, live leases. Off the hot path (indexed aggregates)."""
    project = get_project_dict(tx, project_id)
    overlap = int(project["overlap"])
    adaptive = int(project["max_overlap"]) > overlap
    done, wanted, counted = _item_progress(project)
    ready = and_(items.c.project_id == project_id, items.c.status == "ready")
    row = tx.execute(
        select(
            func.count(),
            _whole(done),
            _whole(or_(items.c.n_submitted > 0, items.c.is_reviewed.is_(True))),
            func.sum(items.c.n_submitted),
            func.sum(wanted),
            func.sum(counted),
        ).where(ready, items.c.is_gold.is_(False))
    ).one()
    total, n_done, started, submitted, labels_wanted, labels_done = (int(v or 0) for v in row)
    gold_items, gold_answers = (
        int(v or 0)
        for v in tx.execute(
            select(func.count(), func.sum(items.c.n_submitted)).where(
                ready, items.c.is_gold.is_(True)
            )
        ).one()
    )
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
    # what paused, failed or sent-back annotators submitted is kept but does not count
    anns = tables.annotations
    n_annotations, n_late, n_annotators = tx.execute(
        select(
            func.count(),
            func.sum((anns.c.status == "late").cast(type_=anns.c.id.type)),
            func.count(anns.c.user_id.distinct()),
        ).where(anns.c.project_id == project_id, anns.c.excluded.is_(None))
    ).one()
    return {
        "project_id": project_id,
        "overlap": overlap,
        "max_overlap": int(project["max_overlap"]) if adaptive else None,
        "items": {
            "total": total,
            "done": n_done,
            "in_progress": started - n_done,
            "not_started": total - started,
        },
        "labels_done": labels_done,
        "labels_wanted": labels_wanted,
        "labels_extra": submitted - labels_done,
        "labels_most": total * int(project["max_overlap"]) if adaptive else total * overlap,
        "percent_done": round(100.0 * labels_done / labels_wanted, 1) if labels_wanted else 0.0,
        "gold_items": gold_items,
        "gold_answers": gold_answers,
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
