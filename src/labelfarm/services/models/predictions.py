"""A model version's predictions: which items get one, their values, and writing them.

**Which items.** Every item still without its final label: ready, in the queue (open) and
not reviewed, and every gold item (gold gets predictions like real work, or having one would
tell gold), or the items asked for. An item the version has predicted already is skipped,
so a predict job that runs again after a crash takes up where it stopped.

**Values.** A prediction is a value of the schema for the predicted fields: for a ``choice``
field the most likely option, for a ``multichoice`` field the options more likely chosen
than not (kept within the field's ``min`` and ``max``). It carries ``model`` = the
predictor's name, ``model_version`` = the version's number, and ``score`` = its confidence:
the top option's probability for a choice field, the product over options of the likelier
side's probability for a multichoice field, and over several fields the smallest of them
(as an item's label confidence is the smallest of its fields').

**Writing.** Each batch is one short write transaction: it replaces the item's older
predictions made by the project's own model versions (a ``model``/``model_version`` pair of
one of them; imported and external servers' predictions stay) and inserts the new ones. On
SQLite the single writer is held for a few milliseconds per batch, so annotators' ``next``
and ``submit`` keep their latency while a job writes. The promoted version's batches also
store the model outputs of the loop field (:mod:`labelfarm.services.models.outputs`) in the
same transaction.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple

import numpy as np

from labelfarm.db.tx import CoreTx, Sql, transaction
from labelfarm.jsonutil import dumps
from labelfarm.schema import FieldType
from labelfarm.services.models import outputs
from labelfarm.services.models.inputs import InputRow
from labelfarm.services.models.versions import ModelVersion

_TARGET = (
    "FROM items i WHERE i.project_id = :p AND i.status = 'ready' AND i.id > :after "
    "AND NOT EXISTS (SELECT 1 FROM predictions pr WHERE pr.item_id = i.id AND pr.model = :m "
    "AND pr.model_version = :v)"
)
_UNLABELLED = " AND ((i.is_open AND NOT i.is_reviewed) OR i.is_gold)"
TARGETS = Sql(
    f"SELECT i.id, i.data, i.media_sha256 {_TARGET}{_UNLABELLED} ORDER BY i.id LIMIT :n",
    row=InputRow,
)
CHOSEN = Sql(
    f"SELECT i.id, i.data, i.media_sha256 {_TARGET} AND i.id IN :ids ORDER BY i.id LIMIT :n",
    row=InputRow,
)
COUNT = Sql(f"SELECT COUNT(*) {_TARGET}{_UNLABELLED}")
COUNT_CHOSEN = Sql(f"SELECT COUNT(*) {_TARGET} AND i.id IN :ids")
# predictions of the project's own model versions (each a predictor name and a number)
REPLACE_OWN = Sql(
    "DELETE FROM predictions WHERE item_id IN :ids AND model_version IS NOT NULL "
    "AND EXISTS (SELECT 1 FROM model_versions mv WHERE mv.project_id = predictions.project_id "
    "AND mv.predictor = predictions.model AND CAST(mv.version AS TEXT) = predictions.model_version)"
)
INSERT = Sql(
    "INSERT INTO predictions (project_id, item_id, model, value, score, created_at, model_version) "
    "VALUES (:p, :i, :m, :value, :score, :now, :v)"
)


class Predicted(NamedTuple):
    item_id: int
    value: dict[str, Any]
    score: float


class Outputs(NamedTuple):
    """A batch's model outputs: the loop field and ``(item_id, proba, embedding)`` rows."""

    field: str
    rows: Sequence[tuple[int, np.ndarray, np.ndarray | None]]


def outputs_of(
    field: str, item_ids: Sequence[int], proba: dict[str, np.ndarray], embedding: Any
) -> Outputs:
    """The outputs of a batch: the field's probabilities and the embedding rows (if any)."""
    p = np.asarray(proba[field])
    emb = None if embedding is None else np.asarray(embedding)
    if emb is not None and (emb.ndim != 2 or len(emb) != len(item_ids)):
        emb = None  # not one row per item: not an embedding to keep
    rows = [(int(item), p[j], None if emb is None else emb[j]) for j, item in enumerate(item_ids)]
    return Outputs(field, rows)


def _params(project_id: int, version: ModelVersion, after: int) -> dict[str, Any]:
    return {"p": project_id, "m": version.predictor, "v": version.model_version, "after": after}


def count_of(
    tx: CoreTx, queries: tuple[Sql, Sql], params: dict[str, Any], item_ids: Sequence[int] | None
) -> int:
    """The count of a job's targets: ``queries`` = (all of them, those among ``:ids``)."""
    every, chosen = queries
    row = (
        tx.one(every, params)
        if item_ids is None
        else tx.one(chosen, {**params, "ids": list(item_ids)})
    )
    return int(row[0]) if row else 0


def page_of(
    tx: CoreTx, queries: tuple[Sql, Sql], params: dict[str, Any], item_ids: Sequence[int] | None
) -> list[Any]:
    """A page of a job's targets: ``queries`` = (all of them, those among ``:ids``)."""
    every, chosen = queries
    if item_ids is None:
        return tx.rows(every, params)
    return tx.rows(chosen, {**params, "ids": list(item_ids)})


@transaction("read")
def count_targets(
    tx: CoreTx, project_id: int, version: ModelVersion, item_ids: Sequence[int] | None = None
) -> int:
    """How many items the version has still to predict."""
    return count_of(tx, (COUNT, COUNT_CHOSEN), _params(project_id, version, 0), item_ids)


@transaction("read")
def next_targets(
    tx: CoreTx,
    project_id: int,
    version: ModelVersion,
    *,
    after: int,
    n: int,
    item_ids: Sequence[int] | None = None,
) -> list[InputRow]:
    """The next ``n`` items (by id, after ``after``) the version has still to predict."""
    params = {**_params(project_id, version, after), "n": n}
    return page_of(tx, (TARGETS, CHOSEN), params, item_ids)


def predicted(
    fields: Sequence[FieldType], item_ids: Sequence[int], proba: dict[str, np.ndarray]
) -> list[Predicted]:
    """The values and scores of a batch, from the predictor's probabilities."""
    values: list[dict[str, Any]] = [{} for _ in item_ids]
    scores = np.ones(len(item_ids))
    for f in fields:
        p = np.asarray(proba[f.name], dtype=np.float64)
        options = list(getattr(f, "options", ()))
        if f.type_name == "choice":
            best = p.argmax(axis=1)
            for i, k in enumerate(best):
                values[i][f.name] = options[int(k)]
            scores = np.minimum(scores, p[np.arange(len(best)), best])
        else:
            for i, row in enumerate(p):
                values[i][f.name] = _chosen(row, options, f)
            scores = np.minimum(scores, np.prod(np.maximum(p, 1.0 - p), axis=1))
    return [
        Predicted(item, value, round(float(s), 6))
        for item, value, s in zip(item_ids, values, scores, strict=True)
    ]


def _chosen(row: np.ndarray, options: list[str], field: FieldType) -> list[str]:
    """The options more likely chosen than not, the likeliest first added or last dropped
    to keep within the field's min and max; in the schema's order."""
    low = int(getattr(field, "min", 0))
    high = int(getattr(field, "max", len(options)))
    order = np.argsort(-row, kind="stable")
    n = int((row > 0.5).sum())
    keep = {int(k) for k in order[: min(max(n, low), high)]}
    return [options[k] for k in sorted(keep)]


@transaction("write")
def write_batch(
    tx: CoreTx,
    project_id: int,
    version: ModelVersion,
    rows: Sequence[Predicted],
    now: float,
    outputs_batch: Outputs | None = None,
) -> int:
    """Store a batch's predictions, replacing the items' older ones by own model versions,
    and its model outputs (when given) in the same transaction."""
    if not rows:
        return 0
    if outputs_batch is not None and outputs_batch.rows:
        outputs.write_outputs(
            tx, project_id, version.version, outputs_batch.field, outputs_batch.rows, now=now
        )
    tx.run(REPLACE_OWN, {"ids": [r.item_id for r in rows]})
    tx.many(
        INSERT,
        [
            {
                "p": project_id,
                "i": r.item_id,
                "m": version.predictor,
                "value": dumps(r.value),
                "score": r.score,
                "now": now,
                "v": version.model_version,
            }
            for r in rows
        ],
    )
    return len(rows)
