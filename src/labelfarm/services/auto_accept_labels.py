"""Auto labels as final labels: the live label the model gave an item, and the label record
the exports and reports show for it (:mod:`labelfarm.services.aggregation` uses both).

An item's final label is the model's when the model auto-labelled it (``auto_labels``, state
``accepted``, or ``spot_check`` while no human has labelled it yet) and it has no human label
(no annotation, review or gold answer): ``method`` is ``"model"`` and the record names the
model version (``model_version``) and the threshold that let the label through. A human label
always wins. Auto labels never train a model and are never evidence: the training split reads
only annotations, reviews and gold (:mod:`labelfarm.services.models.training`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple

from labelfarm.db.batches import chunks
from labelfarm.db.tx import Sql, Tx

MODEL = "model"  # the method of a label the model gave
ACCEPTED, SPOT_CHECK, WITHDRAWN = "accepted", "spot_check", "withdrawn"
LIVE = (ACCEPTED, SPOT_CHECK)


class AutoLabel(NamedTuple):
    item_id: int
    threshold_id: int
    version: int
    field: str
    value: str
    confidence: float
    state: str


LIVE_LABELS = Sql(
    "SELECT item_id, threshold_id, version, field, value, confidence, state FROM auto_labels "
    "WHERE project_id = :p AND item_id IN :ids AND state IN ('accepted', 'spot_check')",
    row=AutoLabel,
)


def live_auto_labels(tx: Tx, project_id: int, item_ids: Sequence[int]) -> dict[int, AutoLabel]:
    """The live auto labels of these items (those that have one), by item id."""
    out: dict[int, AutoLabel] = {}
    for ids in chunks(sorted({int(i) for i in item_ids})):
        for r in tx.rows(LIVE_LABELS, {"p": project_id, "ids": list(ids)}):
            out[r.item_id] = r
    return out


def model_label(auto: AutoLabel) -> dict[str, Any]:
    """The label record of an item the model labelled (the shape of
    :func:`labelfarm.services.aggregation.item_label`, marked as the model's)."""
    confidence = round(float(auto.confidence), 6)
    return {
        "value": {auto.field: auto.value},
        "confidence": {auto.field: confidence},
        "item_confidence": confidence,
        "method": MODEL,
        "methods": {auto.field: MODEL},
        "n_annotators": 0,
        "model_version": auto.version,
        "auto_threshold_id": auto.threshold_id,
    }
