"""The end of an import: its staged rows published, or discarded with the reasons why;
and, at a server's start, the imports a crash (or a shutdown) interrupted finished or
rolled back. See :mod:`labelfarm.services.imports`."""

from __future__ import annotations

from sqlalchemy import func, select, text, update

from labelfarm.db.engine import Database
from labelfarm.db.tables import imports, items, jobs, metadata, predictions, projects
from labelfarm.db.tx import workflow
from labelfarm.formats import RowProblem
from labelfarm.jsonutil import dumps
from labelfarm.services import audit
from labelfarm.services.import_audit import record_failure
from labelfarm.services.import_staging import Sink
from labelfarm.services.projects import Project

# (``tables.annotations`` by name: mypy confuses it with ``from __future__ import annotations``)
annotations_table = metadata.tables["annotations"]

PUBLISH_CHUNK = 20_000


def discard(
    db: Database, import_id: int, problems: list[RowProblem], n_problems: int, now: float
) -> None:
    """Delete the staged rows of a failed import, in chunks, and record the failure."""
    while True:
        with db.begin("write") as tx:
            ids = (
                tx.execute(
                    select(items.c.id)
                    .where(items.c.import_id == import_id, items.c.status == text("'staged'"))
                    .limit(PUBLISH_CHUNK)
                )
                .scalars()
                .all()
            )
            if not ids:
                break
            tx.execute(predictions.delete().where(predictions.c.item_id.in_(ids)))
            tx.execute(annotations_table.delete().where(annotations_table.c.item_id.in_(ids)))
            tx.execute(items.delete().where(items.c.id.in_(ids)))
    with db.begin("write") as tx:
        tx.execute(
            imports.update()
            .where(imports.c.id == import_id)
            .values(
                status="failed",
                n_errors=n_problems,
                finished_at=now,
                errors=dumps([p.to_dict() for p in problems]),
            )
        )
        reason = problems[0].reason if problems else ""
        record_failure(tx, import_id, "import.failed", n_problems, reason, now)


def publish(
    sink: Sink,
    project: Project,
    import_id: int,
    n_items: int,
    now: float,
    user_id: int | None,
    fmt: str,
    filename: str,
) -> None:
    db = sink.db
    lo = hi = None
    if not sink.single:  # staged rows become visible, a chunk of ids at a time
        with db.begin("write") as tx:
            lo, hi = tx.execute(
                select(func.min(items.c.id), func.max(items.c.id)).where(
                    items.c.import_id == import_id, items.c.status == text("'staged'")
                )
            ).one()
            tx.execute(
                imports.update().where(imports.c.id == import_id).values(status="publishing")
            )
    if lo is not None and hi is not None:
        for start in range(lo, hi + 1, PUBLISH_CHUNK):
            with db.begin("write") as tx:
                tx.execute(
                    text(
                        "UPDATE items SET status = 'ready', is_open = (is_gold = :closed) "
                        "WHERE status = 'staged' AND import_id = :imp AND id >= :lo AND id < :hi"
                    ),
                    {"closed": False, "imp": import_id, "lo": start, "hi": start + PUBLISH_CHUNK},
                )
    with sink.batch() as tx:
        tx.execute(
            imports.update()
            .where(imports.c.id == import_id)
            .values(status="done", n_items=n_items, finished_at=now)
        )
        tx.execute(
            update(projects)
            .where(projects.c.id == project.id)
            .values(n_items=projects.c.n_items + n_items)
        )
        audit.record(
            tx,
            action="import",
            target=f"project:{project.id}",
            now=now,
            workspace_id=project.workspace_id,
            actor_id=user_id,
            details={"import_id": import_id, "format": fmt, "file": filename, "items": n_items},
        )
    sink.commit()


@workflow
def recover_imports(db: Database, now: float) -> None:
    """Finish imports a crash interrupted while publishing; roll back those still staging.
    An import whose job is queued or running is its job's to settle (a worker may be writing
    it right now, or its next run will)."""
    live_job = (
        select(jobs.c.id)
        .where(jobs.c.id == imports.c.job_id, jobs.c.state.in_(("queued", "running")))
        .exists()
    )
    with db.begin("read") as tx:
        pending = tx.execute(
            select(imports.c.id, imports.c.status, imports.c.project_id).where(
                imports.c.status.in_(("staging", "publishing")), ~live_job
            )
        ).all()
    for imp in pending:
        recover_import(db, imp.id, imp.status, imp.project_id, now)


def recover_import(
    db: Database, import_id: int, status: str, project_id: int, now: float, reason: str = ""
) -> None:
    """Finish one interrupted import that was publishing; roll back one still staging
    (recorded as failed: ``reason``, by default "interrupted")."""
    if status == "staging":
        discard(db, import_id, [RowProblem("", "", reason or "interrupted")], 1, now)
        return
    with db.begin("write") as tx:
        n = tx.execute(
            text(
                "UPDATE items SET status = 'ready', is_open = (is_gold = :closed) "
                "WHERE import_id = :imp AND status = 'staged'"
            ),
            {"closed": False, "imp": import_id},
        ).rowcount
        total = tx.execute(select(func.count()).where(items.c.import_id == import_id)).scalar_one()
        tx.execute(
            imports.update()
            .where(imports.c.id == import_id)
            .values(status="done", n_items=total, finished_at=now)
        )
        if n:
            tx.execute(
                update(projects)
                .where(projects.c.id == project_id)
                .values(n_items=projects.c.n_items + total)
            )
