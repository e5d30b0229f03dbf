"""Streaming exports: items with every annotation and the current label.

Items are read in keyset pages (``id > last ORDER BY id LIMIT page``) and their annotations
by item-id range, so memory stays flat whatever the project's size. Annotators appear by
pseudonym only. Annotations left out of labels (``annotations.excluded``: their annotator was
paused, failed, or sent back for relabelling) are not part of an export. An annotation that
accepted a model's prediction unchanged (verify mode) carries ``"verified": true``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any, NamedTuple

from sqlalchemy import select

from labelfarm.db.engine import Database
from labelfarm.db.tables import imports
from labelfarm.db.tx import Sql, workflow
from labelfarm.formats import ExportContext, ExportRecord, writer
from labelfarm.jsonutil import iso, loads
from labelfarm.services import audit
from labelfarm.services.aggregation import item_label, newest_reviews
from labelfarm.services.annotator_models import load_annotator_models
from labelfarm.services.auto_accept_labels import live_auto_labels, model_label
from labelfarm.services.export_identities import annotator_identities
from labelfarm.services.media import MediaStore
from labelfarm.services.projects import Project

PAGE = 2000


class ItemRow(NamedTuple):
    id: int
    external_id: str | None
    data: str
    media_sha256: str | None
    gold: str | None
    image_width: float | None
    image_height: float | None
    source_meta: str | None


class AnnotationRow(NamedTuple):
    id: int
    item_id: int
    value: str
    status: str
    late_reason: str | None
    corrects_id: int | None
    created_at: float
    duration_ms: int | None
    schema_version: int
    pseudonym: str
    user_id: int
    source_meta: str | None
    verified: bool


class PredictionRow(NamedTuple):
    item_id: int
    model: str
    value: str
    score: float | None
    created_at: float
    source_meta: str | None


_ITEMS = Sql(
    "SELECT id, external_id, data, media_sha256, gold, image_width, image_height, source_meta "
    "FROM items "
    "WHERE project_id = :p AND status = 'ready' AND id > :last ORDER BY id LIMIT :n",
    row=ItemRow,
)
_ANNOTATIONS = Sql(
    "SELECT a.id, a.item_id, a.value, a.status, a.late_reason, a.corrects_id, "
    "a.created_at, a.duration_ms, a.schema_version, u.pseudonym, a.user_id, a.source_meta, "
    "a.verified FROM annotations a JOIN users u ON u.id = a.user_id "
    "WHERE a.project_id = :p AND a.item_id >= :lo AND a.item_id <= :hi "
    "AND a.excluded IS NULL ORDER BY a.id",
    row=AnnotationRow,
)


class _Counts(NamedTuple):
    items: int
    annotations: int


_COUNTS = Sql(
    "SELECT (SELECT COUNT(*) FROM items WHERE project_id = :p AND status = 'ready'), "
    "(SELECT COUNT(*) FROM annotations WHERE project_id = :p AND excluded IS NULL)",
    row=_Counts,
)
_PREDICTIONS = Sql(
    "SELECT item_id, model, value, score, created_at, source_meta FROM predictions "
    "WHERE project_id = :p AND item_id >= :lo AND item_id <= :hi ORDER BY id",
    row=PredictionRow,
)


def records(
    db: Database, project: Project, identities: dict[int, Any] | None = None
) -> Iterator[ExportRecord]:
    """Every ready item with its annotations, predictions and label, a page at a time, in a
    read transaction per page. Labels come from the stored annotator models
    (:func:`aggregation.item_label`), reviews and gold answers. An annotation whose
    annotator ``identities`` names (user id → their identity in another tool) carries it as
    ``completed_by``."""
    last = 0
    with db.begin("read") as tx:
        models = load_annotator_models(tx, project.id)
    while True:
        with db.begin("read") as tx:
            page = tx.rows(_ITEMS, {"p": project.id, "last": last, "n": PAGE})
            if not page:
                return
            span = {"p": project.id, "lo": page[0].id, "hi": page[-1].id}
            by_item: dict[int, list[dict[str, Any]]] = {}
            for a in tx.rows(_ANNOTATIONS, span):
                by_item.setdefault(a.item_id, []).append(_annotation(a, identities))
            preds: dict[int, list[dict[str, Any]]] = {}
            for pr in tx.rows(_PREDICTIONS, span):
                preds.setdefault(pr.item_id, []).append(
                    {
                        "model": pr.model,
                        "value": loads(pr.value),
                        "score": pr.score,
                        "created_at": iso(pr.created_at),
                        **_source_meta(pr.source_meta, identities),
                    }
                )
            reviews = newest_reviews(tx, project.id, [r.id for r in page])
            autos = live_auto_labels(tx, project.id, [r.id for r in page])
        for item in page:
            anns = by_item.get(item.id, [])
            gold = loads(item.gold) if item.gold else None
            label = item_label(models, project, anns, reviews.get(item.id), gold=gold)
            if label is None and item.id in autos:  # the model's, marked (method "model")
                label = model_label(autos[item.id])
            for ann in anns:
                user_id = ann.pop("user_id")  # annotators leave by pseudonym only…
                if identities and user_id in identities:  # …unless a migration maps them
                    ann["completed_by"] = identities[user_id]
            yield ExportRecord(
                item_id=item.id,
                external_id=item.external_id,
                data=loads(item.data),
                media_sha256=item.media_sha256,
                annotations=anns,
                label=label,
                predictions=preds.get(item.id, []),
                image_size=_image_size(item),
                source_meta=_source_meta(item.source_meta, identities).get("source_meta"),
            )
        last = page[-1].id


def _image_size(item: ItemRow) -> tuple[int | float, int | float] | None:
    """The stored image size, whole numbers as such."""
    if not item.image_width or not item.image_height:
        return None
    w, h = item.image_width, item.image_height
    return (int(w) if w.is_integer() else w, int(h) if h.is_integer() else h)


def _source_meta(text: str | None, identities: dict[int, Any] | None) -> dict[str, Any]:
    """``{"source_meta": ...}`` as imported, or ``{}``; the people it names (``people``)
    only when the export maps annotators."""
    if not text:
        return {}
    meta = loads(text)
    if identities is None and isinstance(meta, dict):
        meta.pop("people", None)
    return {"source_meta": meta}


def _annotation(a: AnnotationRow, identities: dict[int, Any] | None = None) -> dict[str, Any]:
    return {
        "id": a.id,
        "annotator": a.pseudonym,
        "user_id": a.user_id,
        "value": loads(a.value),
        "status": a.status,
        "late_reason": a.late_reason,
        "corrects": a.corrects_id,
        "created_at": iso(a.created_at),
        "duration_ms": a.duration_ms,
        "schema_version": a.schema_version,
        **({"verified": True} if a.verified else {}),  # a prediction accepted unchanged
        **_source_meta(a.source_meta, identities),
    }


@workflow
def export_stream(
    db: Database,
    project: Project,
    fmt: str,
    *,
    now: float,
    actor_id: int | None,
    media: MediaStore | None = None,
    options: dict[str, Any] | None = None,
    on_progress: Callable[[int, int], None] | None = None,
) -> tuple[Iterator[bytes], str]:
    """(chunks of the export, its media type). The export is audited when it starts, with
    its format and how many items and annotations it holds.

    ``media`` lets archive formats (``coco-zip``, ``yolo``, ``voc``, ``hf``) include the
    items' media files. ``options`` go to the writer (``ExportContext.options``), but for
    ``completed_by``: a mapping of labelfarm usernames to annotators' identities in another
    tool, for migrations (see :func:`annotator_identities`); without it annotators leave by
    pseudonym only. ``on_progress(items written, items in all)`` is called as items go out
    (every 100 items, and at the end)."""
    write, media_type = writer(fmt)
    options = dict(options or {})
    mapping = options.pop("completed_by", None)
    identities = (
        None if mapping is None else annotator_identities(db, project.workspace_id, mapping)
    )
    with db.begin("read") as tx:
        counts = tx.one(_COUNTS, {"p": project.id})
    with db.begin("write") as tx:
        audit.record(
            tx,
            action="export",
            target=f"project:{project.id}",
            now=now,
            workspace_id=project.workspace_id,
            actor_id=actor_id,
            details={
                "format": fmt,
                "items": counts.items if counts else 0,
                "annotations": counts.annotations if counts else 0,
                **({"identities": len(identities)} if identities is not None else {}),
            },
        )
    ctx = ExportContext(
        project_id=project.id,
        project_name=project.name,
        schema_version=project.schema_version,
        exported_at=now,
        open_media=media.open if media is not None else None,
        file_meta=imported_file_meta(db, project.id),
        options=options,
    )
    recs = records(db, project, identities)
    if on_progress is not None:
        recs = _counted(recs, counts.items if counts else 0, on_progress)
    return write(recs, project.schema, ctx), media_type


def _counted(
    recs: Iterator[ExportRecord], total: int, on_progress: Callable[[int, int], None]
) -> Iterator[ExportRecord]:
    n = 0
    for rec in recs:
        yield rec
        n += 1
        if n % 100 == 0:
            on_progress(n, max(n, total))
    on_progress(n, max(n, total))


def imported_file_meta(db: Database, project_id: int) -> dict[str, Any]:
    """What the project's imports kept of their files beside the items, by format; of two
    imports in one format, the later one's."""
    merged: dict[str, Any] = {}
    with db.begin("read") as tx:
        rows = tx.execute(
            select(imports.c.file_meta)
            .where(
                imports.c.project_id == project_id,
                imports.c.status == "done",
                imports.c.file_meta.is_not(None),
            )
            .order_by(imports.c.id)
        ).scalars()
        for doc in rows:
            merged.update(loads(doc))
    return merged
