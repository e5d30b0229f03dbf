"""The model's outputs per item: what the score job and the learning loop read.

One row per item of ``model_outputs``: the model version (its number) that predicted it
last, the project's loop field (:func:`labelfarm.services.models.training.loop_field`, the
first ``choice`` field the version predicts), the class probabilities in the field's option
order (float32, little-endian) and the predictor's embedding of the item (float16,
little-endian, or none when the predictor gives none). The predict job writes them in the
same short transaction as the predictions (:mod:`labelfarm.jobs.model_jobs`); a newer
version's row replaces the older one.

Bytes, not JSON: 1,000,000 items of 10 classes and 64-dimensional embeddings take 168 MB as
float32 + float16, several times that as JSON text, and decode with one ``np.frombuffer``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np

from labelfarm.db.tx import Sql, Tx

MAX_PAGE = 10_000
PROBA_DTYPE = np.dtype("<f4")
EMBEDDING_DTYPE = np.dtype("<f2")


@dataclass(frozen=True)
class Output:
    item_id: int
    version: int
    field: str
    proba: np.ndarray  # (k,) float32
    embedding: np.ndarray | None  # (d,) float16


class OutputRow(NamedTuple):
    item_id: int
    version: int
    field: str
    proba: bytes
    embedding: bytes | None


_COLUMNS = "o.item_id, o.version, o.field, o.proba, o.embedding"
UPSERT = Sql(
    "INSERT INTO model_outputs (item_id, project_id, version, field, proba, embedding, "
    "created_at) VALUES (:i, :p, :v, :f, :proba, :emb, :now) "
    "ON CONFLICT (item_id) DO UPDATE SET project_id = excluded.project_id, "
    "version = excluded.version, field = excluded.field, proba = excluded.proba, "
    "embedding = excluded.embedding, created_at = excluded.created_at"
)
READ = Sql(
    f"SELECT {_COLUMNS} FROM model_outputs o WHERE o.project_id = :p AND o.item_id IN :ids "
    "ORDER BY o.item_id",
    row=OutputRow,
)
PAGE = Sql(
    f"SELECT {_COLUMNS} FROM model_outputs o WHERE o.project_id = :p AND o.item_id > :after "
    "ORDER BY o.item_id LIMIT :n",
    row=OutputRow,
)
# open items: those the queue may still hand out (services/tasks/openness.py)
OPEN_PAGE = Sql(
    f"SELECT {_COLUMNS} FROM model_outputs o JOIN items i ON i.id = o.item_id "
    "WHERE o.project_id = :p AND o.item_id > :after AND i.is_open = :open "
    "ORDER BY o.item_id LIMIT :n",
    row=OutputRow,
)


def encode_proba(proba: np.ndarray) -> bytes:
    return np.ascontiguousarray(proba, dtype=PROBA_DTYPE).tobytes()


def encode_embedding(embedding: np.ndarray | None) -> bytes | None:
    if embedding is None:
        return None
    return np.ascontiguousarray(embedding, dtype=EMBEDDING_DTYPE).tobytes()


def write_outputs(
    tx: Tx,
    project_id: int,
    version: int,
    field: str,
    rows: Sequence[tuple[int, np.ndarray, np.ndarray | None]],
    *,
    now: float = 0.0,
) -> None:
    """Store ``(item_id, proba, embedding)`` rows, replacing the items' older outputs, in the
    caller's transaction (the predict job's batch)."""
    tx.many(
        UPSERT,
        [
            {
                "i": int(item_id),
                "p": project_id,
                "v": version,
                "f": field,
                "proba": encode_proba(proba),
                "emb": encode_embedding(embedding),
                "now": now,
            }
            for item_id, proba, embedding in sorted(rows, key=lambda r: int(r[0]))
        ],
    )


def read_outputs(tx: Tx, project_id: int, item_ids: Sequence[int]) -> dict[int, Output]:
    """The outputs of these items of the project (those that have one), by item id."""
    if not item_ids:
        return {}
    rows = tx.rows(READ, {"p": project_id, "ids": [int(i) for i in item_ids]})
    return {r.item_id: _output(r) for r in rows}


def outputs_page(
    tx: Tx, project_id: int, *, after: int, limit: int, open_only: bool
) -> list[Output]:
    """The next ``limit`` outputs of the project by item id after ``after`` (of its open
    items only, when ``open_only``)."""
    params: dict[str, Any] = {"p": project_id, "after": after, "n": max(1, min(limit, MAX_PAGE))}
    if open_only:
        return [_output(r) for r in tx.rows(OPEN_PAGE, {**params, "open": True})]
    return [_output(r) for r in tx.rows(PAGE, params)]


def _output(r: OutputRow) -> Output:
    embedding = None
    if r.embedding is not None:
        embedding = np.frombuffer(bytes(r.embedding), dtype=EMBEDDING_DTYPE)
    proba = np.frombuffer(bytes(r.proba), dtype=PROBA_DTYPE)
    return Output(r.item_id, r.version, r.field, proba, embedding)
