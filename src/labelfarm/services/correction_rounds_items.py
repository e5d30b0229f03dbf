"""The model's predictions on items that have a final label: what the confusion report counts
and what a correction round reopens.

The model's prediction of an item is its row of ``model_outputs`` (written by the predict job
while the item had no final label yet, so the prediction is out of sample): the most
probable option of the loop field. The final label is the item's label as the project derives
it (:func:`labelfarm.services.aggregation.label_items`: a reviewer's decision, else the
annotations aggregated). Gold items are left out (their answers are the held-out evidence of
the model versions' evaluations, see :mod:`labelfarm.services.models.evaluation`).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from labelfarm.db.tx import CoreTx, Sql
from labelfarm.services.aggregation import label_items
from labelfarm.services.models.outputs import PROBA_DTYPE
from labelfarm.services.projects import Project

MAX_LABELLED = 20_000  # newest labelled items read per report or round


class _Row(NamedTuple):
    item_id: int
    version: int
    proba: bytes
    media_sha256: str | None
    is_open: bool
    is_reviewed: bool


class Judged(NamedTuple):
    """A labelled item: its final label and the model's prediction for the loop field."""

    item_id: int
    version: int  # the model version that predicted it
    truth: int  # option index of the final label
    predicted: int  # option index of the model's most probable option
    media_sha256: str | None
    is_open: bool
    is_reviewed: bool


_LABELLED = (
    "SELECT o.item_id, o.version, o.proba, i.media_sha256, i.is_open, i.is_reviewed "
    "FROM model_outputs o JOIN items i ON i.id = o.item_id "
    "WHERE o.project_id = :p AND o.field = :f AND i.is_gold = false AND i.status = 'ready' "
    "AND (i.is_reviewed OR i.n_submitted > 0)"
)
LABELLED = Sql(f"{_LABELLED} ORDER BY o.item_id DESC LIMIT :n", row=_Row)
LABELLED_BY = Sql(f"{_LABELLED} AND o.version = :v ORDER BY o.item_id DESC LIMIT :n", row=_Row)


def judged_items(
    tx: CoreTx,
    project: Project,
    field: str,
    options: list[str],
    *,
    version: int | None = None,
    limit: int = MAX_LABELLED,
) -> list[Judged]:
    """The newest ``limit`` labelled items with a model output for ``field`` (of ``version``
    only, when given), each with its final label and the model's prediction."""
    params = {"p": project.id, "f": field, "n": limit}
    rows = (
        tx.rows(LABELLED_BY, {**params, "v": version})
        if version is not None
        else tx.rows(LABELLED, params)
    )
    if not rows:
        return []
    labels = label_items(tx, project, [r.item_id for r in rows])
    index = {o: k for k, o in enumerate(options)}
    out = []
    for r in rows:
        value = ((labels.get(r.item_id) or {}).get("value") or {}).get(field)
        truth = index.get(value) if isinstance(value, str) else None
        proba = np.frombuffer(bytes(r.proba), dtype=PROBA_DTYPE)
        if truth is None or len(proba) != len(options):
            continue  # no final label for the field yet, or options changed since
        out.append(
            Judged(
                r.item_id,
                r.version,
                truth,
                int(np.argmax(proba)),
                r.media_sha256,
                bool(r.is_open),
                bool(r.is_reviewed),
            )
        )
    return out
