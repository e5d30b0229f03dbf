"""Streaming exports: items with every annotation and the current label.

Items are read in keyset pages (``id > last ORDER BY id LIMIT page``) and their annotations
by item-id range, so memory stays flat whatever the project's size. Annotators appear by
pseudonym only.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from labelfarm.db.engine import Database
from labelfarm.db.hot import Hot, Sql
from labelfarm.formats import ExportContext, ExportRecord, writer
from labelfarm.services import audit
from labelfarm.services.aggregation import item_label, newest_reviews
from labelfarm.services.annotator_models import load_annotator_models
from labelfarm.services.jsonutil import iso, loads
from labelfarm.services.media import MediaStore
from labelfarm.services.projects import Project

PAGE = 2000

_ITEMS = Sql(
    "SELECT id, external_id, data, media_sha256, gold FROM items "
    "WHERE project_id = :p AND status = 'ready' AND id > :last ORDER BY id LIMIT :n"
)
_ANNOTATIONS = Sql(
    "SELECT a.id, a.item_id, a.value, a.status, a.late_reason, a.corrects_id, "
    "a.created_at, a.duration_ms, a.schema_version, u.pseudonym, a.user_id "
    "FROM annotations a JOIN users u ON u.id = a.user_id "
    "WHERE a.project_id = :p AND a.item_id >= :lo AND a.item_id <= :hi ORDER BY a.id"
)
_PREDICTIONS = Sql(
    "SELECT item_id, model, value, score, created_at FROM predictions "
    "WHERE project_id = :p AND item_id >= :lo AND item_id <= :hi ORDER BY id"
)


def records(db: Database, project: Project) -> Iterator[ExportRecord]:
    """Every ready item with its annotations, predictions and label, a page at a time.

    Pages are read on the driver's cursor (an export touches every row: SQLAlchemy's
    per-row work would cost more than the query); labels come from the stored annotator
    models (:func:`aggregation.item_label`), reviews and gold answers.
    """
    last = 0
    with db.read() as conn:
        models = load_annotator_models(conn, project.id)
    while True:
        with db.read() as conn:
            raw: Any = conn.connection.driver_connection
            hot = Hot(raw.cursor(), db.dialect)
            page = hot.rows(_ITEMS, {"p": project.id, "last": last, "n": PAGE})
            if not page:
                return
            lo, hi = page[0][0], page[-1][0]
            span = {"p": project.id, "lo": lo, "hi": hi}
            by_item: dict[int, list[dict[str, Any]]] = {}
            for a in hot.rows(_ANNOTATIONS, span):
                by_item.setdefault(a[1], []).append(
                    {
                        "id": a[0],
                        "annotator": a[9],
                        "user_id": a[10],
                        "value": loads(a[2]),
                        "status": a[3],
                        "late_reason": a[4],
                        "corrects": a[5],
                        "created_at": iso(a[6]),
                        "duration_ms": a[7],
                        "schema_version": a[8],
                    }
                )
            preds: dict[int, list[dict[str, Any]]] = {}
            for pr in hot.rows(_PREDICTIONS, span):
                preds.setdefault(pr[0], []).append(
                    {
                        "model": pr[1],
                        "value": loads(pr[2]),
                        "score": pr[3],
                        "created_at": iso(pr[4]),
                    }
                )
            reviews = newest_reviews(conn, project.id, [r[0] for r in page])
        for item_id, external_id, data, media_sha256, gold in page:
            anns = by_item.get(item_id, [])
            label = item_label(
                models,
                project,
                anns,
                reviews.get(item_id),
                gold=loads(gold) if gold else None,
            )
            for ann in anns:
                del ann["user_id"]  # annotators leave by pseudonym only
            yield ExportRecord(
                item_id=item_id,
                external_id=external_id,
                data=loads(data),
                media_sha256=media_sha256,
                annotations=anns,
                label=label,
                predictions=preds.get(item_id, []),
            )
        last = hi


def export_stream(
    db: Database,
    project: Project,
    fmt: str,
    *,
    now: float,
    actor_id: int | None,
    media: MediaStore | None = None,
) -> tuple[Iterator[bytes], str]:
    """(chunks of the export, its media type). The export is audited when it starts.

    ``media`` lets archive formats (``coco-zip``, ``yolo``, ``voc``, ``hf``) include the
    items' media files."""
    write, media_type = writer(fmt)
    with db.write() as conn:
        audit.record(
            conn,
            action="export",
            target=f"project:{project.id}",
            now=now,
            workspace_id=project.workspace_id,
            actor_id=actor_id,
            details={"format": fmt},
        )
    ctx = ExportContext(
        project_id=project.id,
        project_name=project.name,
        schema_version=project.schema_version,
        exported_at=now,
        open_media=media.open if media is not None else None,
    )
    return write(records(db, project), project.schema, ctx), media_type
