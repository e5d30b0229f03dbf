"""What labelfarm sends a model server and keeps of its answers, in Label Studio's shapes.

* A task is ``{"id": item id, "data": {...}}``: the item's data as stored, except that a
  media key naming a file labelfarm stores (an image or audio imported from a folder or an
  archive) becomes a signed URL the server can fetch (see :func:`ls_task`).
* An answer's results become a value of the project's schema through the Label Studio
  format's converter (:class:`~labelfarm.formats.labelstudio_results.ResultConverter`); a
  result the schema cannot hold is refused with its reason, the item's other fields kept
  out too (a prediction is whole or nothing).
* Annotations sent to train are the value written back as Label Studio results
  (:class:`~labelfarm.formats.labelstudio_regions.RegionWriter`), without who made them.
  Gold items and annotations left out of labels never leave labelfarm.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, NamedTuple
from urllib.parse import quote

from sqlalchemy import and_, delete, func, or_, select

from labelfarm.db import tables
from labelfarm.db.tables import items, predictions
from labelfarm.db.tx import CoreTx, transaction
from labelfarm.formats.labelstudio_regions import RegionWriter
from labelfarm.formats.labelstudio_results import ResultConverter
from labelfarm.formats.labelstudio_writer import media_keys
from labelfarm.jsonutil import dumps, loads
from labelfarm.schema import Schema
from labelfarm.services.ml_backend_client import BackendPrediction
from labelfarm.services.models.training import in_held_out


class ItemRow(NamedTuple):
    id: int
    data: dict[str, Any]
    media_sha256: str | None
    image_size: tuple[float, float] | None


class AnnotationRow(NamedTuple):
    id: int
    item: ItemRow
    value: dict[str, Any]
    created_at: float


def _item(row: Any) -> ItemRow:
    w, h = row.image_width, row.image_height
    return ItemRow(row.id, loads(row.data), row.media_sha256, (w, h) if w and h else None)


# still without a final label: in the queue and not reviewed; and gold, which gets
# predictions like real work (having none would tell annotators which items are gold)
_UNLABELLED = or_(and_(items.c.is_open, ~items.c.is_reviewed), items.c.is_gold)
_ITEM_COLUMNS = (
    items.c.id,
    items.c.data,
    items.c.media_sha256,
    items.c.image_width,
    items.c.image_height,
)


@transaction("read")
def pending_items(
    tx: CoreTx,
    project_id: int,
    *,
    model: str,
    since: float,
    after_id: int,
    limit: int,
    item_ids: Sequence[int] | None = None,
) -> list[ItemRow]:
    """The next ``limit`` items past ``after_id`` to predict: those given (of the project),
    else the ready items still without a final label, gold included; an item already
    predicted by ``model`` since ``since`` (an earlier run of the same job) is passed over."""
    query = select(*_ITEM_COLUMNS).where(
        items.c.project_id == project_id,
        items.c.id > after_id,
        items.c.status == "ready",
        ~_predicted(model, since),
    )
    if item_ids is not None:
        query = query.where(items.c.id.in_(list(item_ids)))
    else:
        query = query.where(_UNLABELLED)
    rows = tx.execute(query.order_by(items.c.id).limit(limit)).all()
    return [_item(r) for r in rows]


@transaction("read")
def count_items(
    tx: CoreTx,
    project_id: int,
    *,
    item_ids: Sequence[int] | None = None,
    model: str | None = None,
    since: float = 0.0,
) -> int:
    """How many items a predict job covers; with ``model``, how many it has yet to do."""
    query = (
        select(func.count())
        .select_from(items)
        .where(items.c.project_id == project_id, items.c.status == "ready")
    )
    if item_ids is not None:
        query = query.where(items.c.id.in_(list(item_ids)))
    else:
        query = query.where(_UNLABELLED)
    if model is not None:
        query = query.where(~_predicted(model, since))
    return int(tx.execute(query).scalar_one())


def _predicted(model: str, since: float) -> Any:
    return (
        select(predictions.c.id)
        .where(
            predictions.c.item_id == items.c.id,
            predictions.c.model == model,
            predictions.c.created_at >= since,
        )
        .exists()
    )


def ls_task(item: ItemRow, schema: Schema, media_url: Callable[[str], str | None]) -> dict:
    """The item as a Label Studio task; a stored media file's key holds ``media_url(sha)``
    (when it gives one), with the file's own name as ``#fragment`` for servers that read
    its extension."""
    data = dict(item.data)
    if item.media_sha256 is not None:
        url = media_url(item.media_sha256)
        for key in media_keys(schema, data):
            v = data.get(key)
            if url and isinstance(v, str) and v and "://" not in v and not v.startswith("data:"):
                data[key] = f"{url}#{quote(v.rsplit('/', 1)[-1])}"
    return {"id": item.id, "data": data}


def prediction_rows(
    schema: Schema,
    batch: Sequence[ItemRow],
    answers: Sequence[BackendPrediction],
    *,
    model: str,
    fallback_version: str | None,
) -> tuple[list[dict[str, Any]], list[str]]:
    """The prediction rows of a batch's answers, and the problems of those refused."""
    conv = ResultConverter(schema)
    rows, problems = [], []
    for item, answer in zip(batch, answers, strict=True):
        got = conv.value(answer.result, f"item {item.id}", item.data)
        if isinstance(got, list):
            problems += [f"{p.location} {p.field}: {p.reason}".strip() for p in got[:1]]
            continue
        if not got.value:
            continue  # no result: nothing to pre-fill
        rows.append(
            {
                "item_id": item.id,
                "model": model,
                "value": got.value,
                "score": answer.score,
                "model_version": answer.model_version or fallback_version,
                "source_meta": got.source_meta() or None,
            }
        )
    return rows, problems


@transaction("write")
def write_predictions(
    tx: CoreTx, project_id: int, rows: Sequence[dict[str, Any]], *, now: float
) -> int:
    """Store predictions, each replacing its item's earlier ones by the same model."""
    if not rows:
        return 0
    for model in {r["model"] for r in rows}:
        ids = [r["item_id"] for r in rows if r["model"] == model]
        tx.execute(
            delete(predictions).where(
                predictions.c.project_id == project_id,
                predictions.c.model == model,
                predictions.c.item_id.in_(ids),
            )
        )
    tx.execute(
        predictions.insert(),
        [
            {
                "project_id": project_id,
                "item_id": r["item_id"],
                "model": r["model"],
                "value": dumps(r["value"]),
                "score": r["score"],
                "model_version": r["model_version"],
                "created_at": now,
                "source_meta": dumps(r["source_meta"]) if r["source_meta"] else None,
            }
            for r in rows
        ],
    )
    return len(rows)


@transaction("read")
def annotations_after(
    tx: CoreTx, project_id: int, *, after_id: int, limit: int, holdout_share: float = 0.0
) -> list[AnnotationRow]:
    """The project's annotations past ``after_id`` that may train a model: counted in
    labels, on items that are neither gold nor in the held-out set that evaluates models
    (:func:`labelfarm.services.models.training.in_held_out`: every item with a human label,
    reviewed or aggregated from its annotations, whose hash is below ``holdout_share``; an
    annotated item is skipped whether or not it is reviewed yet); oldest first."""
    query = (
        select(
            tables.annotations.c.id.label("annotation_id"),
            tables.annotations.c.value.label("annotation_value"),
            tables.annotations.c.created_at.label("annotation_created_at"),
            *_ITEM_COLUMNS,
        )
        .select_from(tables.annotations.join(items, items.c.id == tables.annotations.c.item_id))
        .where(
            tables.annotations.c.project_id == project_id,
            tables.annotations.c.id > after_id,
            tables.annotations.c.excluded.is_(None),
            items.c.is_gold.is_(False),
        )
        .order_by(tables.annotations.c.id)
        .limit(limit)
    )
    out = []
    for r in tx.execute(query).all():
        if in_held_out(project_id, r.id, holdout_share):
            continue
        value = loads(r.annotation_value)
        out.append(AnnotationRow(r.annotation_id, _item(r), value, r.annotation_created_at))
    return out


def ls_annotation(schema: Schema, ann: AnnotationRow, task: dict[str, Any]) -> dict[str, Any]:
    """The webhook payload's ``annotation`` and ``task`` of one annotation."""
    results = RegionWriter(schema).results(
        ann.value, ann.item.data, ann.item.image_size, f"annotation {ann.id}"
    )
    return {
        "annotation": {"id": ann.id, "task": ann.item.id, "result": results},
        "task": task,
    }
