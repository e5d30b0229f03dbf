"""Streaming exports: items with every annotation and the current label.

Items are read in keyset pages (``id > last ORDER BY id LIMIT page``) and their annotations
by item-id range, so memory stays flat whatever the project's size. Annotators appear by
pseudonym only.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from sqlalchemy import text

from labelfarm.db.engine import Database
from labelfarm.formats import ExportContext, ExportRecord, writer
from labelfarm.services import audit
from labelfarm.services.aggregation import label_items, load_annotator_models
from labelfarm.services.jsonutil import iso, loads
from labelfarm.services.media import MediaStore
from labelfarm.services.projects import Project

PAGE = 2000

_ITEMS = text(
    "SELECT id, external_id, data, media_sha256 FROM items "
    "WHERE project_id = :p AND status = 'ready' AND id > :last ORDER BY id LIMIT :n"
)
_ANNOTATIONS = text(
    "SELECT a.id, a.item_id, a.value, a.status, a.late_reason, a.corrects_id, "
    "a.created_at, a.duration_ms, a.schema_version, u.pseudonym "
    "FROM annotations a JOIN users u ON u.id = a.user_id "
    "WHERE a.project_id = :p AND a.item_id >= :lo AND a.item_id <= :hi ORDER BY a.id"
)
_PREDICTIONS = text(
    "SELECT item_id, model, value, score, created_at FROM predictions "
    "WHERE project_id = :p AND item_id >= :lo AND item_id <= :hi ORDER BY id"
)


def records(db: Database, project: Project) -> Iterator[ExportRecord]:
    last = 0
    with db.read() as conn:
        models = load_annotator_models(conn, project.id)
    while True:
        with db.read() as conn:
            page = conn.execute(_ITEMS, {"p": project.id, "last": last, "n": PAGE}).all()
            if not page:
                return
            labels = label_items(conn, project, [r.id for r in page], models=models)
            lo, hi = page[0].id, page[-1].id
            by_item: dict[int, list[dict[str, Any]]] = {}
            for a in conn.execute(_ANNOTATIONS, {"p": project.id, "lo": lo, "hi": hi}):
                by_item.setdefault(a.item_id, []).append(
                    {
                        "id": a.id,
                        "annotator": a.pseudonym,
                        "value": loads(a.value),
                        "status": a.status,
                        "late_reason": a.late_reason,
                        "corrects": a.corrects_id,
                        "created_at": iso(a.created_at),
                        "duration_ms": a.duration_ms,
                        "schema_version": a.schema_version,
                    }
                )
            preds: dict[int, list[dict[str, Any]]] = {}
            for pr in conn.execute(_PREDICTIONS, {"p": project.id, "lo": lo, "hi": hi}):
                preds.setdefault(pr.item_id, []).append(
                    {
                        "model": pr.model,
                        "value": loads(pr.value),
                        "score": pr.score,
                        "created_at": iso(pr.created_at),
                    }
                )
        for row in page:
            anns = by_item.get(row.id, [])
            yield ExportRecord(
                item_id=row.id,
                external_id=row.external_id,
                data=loads(row.data),
                media_sha256=row.media_sha256,
                annotations=anns,
                label=labels.get(row.id),
                predictions=preds.get(row.id, []),
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
