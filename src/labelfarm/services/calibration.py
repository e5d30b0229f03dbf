"""Calibrated item confidence: a project's gold measures how often a label rated ``p``
confident is right, and a calibrator fitted on it maps the Dawid-Skene confidence of every
``choice`` field to a calibrated one.

The evidence is honest: a gold item is clamped to its answer in the fit, so its posterior
from the stored models would be optimistic. :func:`gold_confidences` splits the gold items
of a field into two halves (by a stable hash of the item id) and fits Dawid-Skene twice
(:func:`labelfarm.services.fitting.fit_class_model`), each time with one half hidden: the
confidence and correctness of a hidden gold item come from a model that never saw its answer.

:func:`refit_calibration` (the periodic refit job calls it after the annotator models are
refitted) fits one calibrator per choice field on that evidence
(:func:`labelfarm.ml.calibration.fit_calibrator`: Platt scaling on the log-odds; the identity
with fewer than ``ml.calibration.MIN_GOLD`` gold items), stores them in
``confidence_calibrators`` and refreshes the cached ``items.label_confidence`` of the
labelled items with the calibrated confidence, which adaptive overlap (``target_confidence``)
and the review queue (``low_confidence``) read.
:func:`labelfarm.services.calibration_store.load_calibrators` reads them back for
:func:`labelfarm.services.aggregation.label_items`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
from sqlalchemy import text

from labelfarm.db.batches import chunks
from labelfarm.db.tx import CoreTx, transaction
from labelfarm.ml.calibration import Calibrator, fit_calibrator
from labelfarm.schema import FieldType
from labelfarm.services.aggregation import item_label
from labelfarm.services.annotator_models import load_annotator_models
from labelfarm.services.calibration_store import store_calibrators
from labelfarm.services.fitting import fit_class_model
from labelfarm.services.project_labels import ProjectLabels, read_project_labels
from labelfarm.services.projects import Project

__all__ = [
    "GoldEvidence",
    "gold_confidences",
    "gold_half",
    "refit_calibration",
]


@dataclass(frozen=True)
class GoldEvidence:
    """Out-of-fit evidence of one choice field: per gold item with labels, the confidence
    of the label Dawid-Skene gives it without its answer, whether that label is right, and
    the item's half (0 or 1)."""

    field: str
    n_classes: int
    item_ids: list[int]
    confidence: np.ndarray
    correct: np.ndarray
    half: np.ndarray


def gold_half(item_id: int) -> int:
    """The half (0 or 1) a gold item falls in: a stable hash, the same in every process."""
    return hashlib.sha256(f"calibration:{item_id}".encode()).digest()[0] & 1


def _choice_fields(project: Project) -> list[FieldType]:
    return [f for f in project.schema.fields if f.type_name == "choice"]


def gold_confidences(f: FieldType, data: ProjectLabels) -> GoldEvidence:
    """The out-of-fit confidences of the field's gold items (see the module docstring)."""
    classes = tuple(getattr(f, "options", ()))
    index = {c: k for k, c in enumerate(classes)}
    triples = [(i, u, index[v]) for i, u, v in data.answers(f.name) if v in index]
    known = {
        i: index[v[f.name]]
        for source in (data.gold, data.reviewed)
        for i, v in source.items()
        if v.get(f.name) in index
    }
    votes: dict[int, list[tuple[int, int]]] = {}
    for i, u, k in triples:
        votes.setdefault(i, []).append((u, k))
    gold_items = sorted(
        i for i, v in data.gold.items() if v.get(f.name) in index and i not in data.reviewed
    )
    gold_items = [i for i in gold_items if i in votes]
    ids: list[int] = []
    conf: list[float] = []
    correct: list[bool] = []
    halves: list[int] = []
    for half in (0, 1):
        hidden = [i for i in gold_items if gold_half(i) == half]
        if not hidden:
            continue
        shown = {i: k for i, k in known.items() if i not in set(hidden)}
        model = fit_class_model(classes, triples, shown)
        for i in hidden:
            post = model.posterior(votes[i])
            ids.append(i)
            conf.append(float(post.max()))
            correct.append(int(post.argmax()) == index[data.gold[i][f.name]])
            halves.append(half)
    return GoldEvidence(
        f.name,
        len(classes),
        ids,
        np.asarray(conf, dtype=np.float64),
        np.asarray(correct, dtype=bool),
        np.asarray(halves, dtype=np.int64),
    )


_SET_CONFIDENCE = text("UPDATE items SET label_confidence = :c WHERE id = :id")


def _refresh_items(
    tx: CoreTx, project: Project, data: ProjectLabels, fitted: Mapping[str, Calibrator]
) -> int:
    """Rewrite the cached confidence of the labelled items (not reviewed, not gold) with
    their calibrated label confidence; the number of items written."""
    models = load_annotator_models(tx, project.id)
    by_item: dict[int, list[dict[str, Any]]] = {}
    for (item, user), value in data.latest.items():
        if item not in data.reviewed and item not in data.gold:
            by_item.setdefault(item, []).append({"user_id": user, "value": value})
    params = []
    for item, anns in sorted(by_item.items()):
        label = item_label(models, project, anns, calibration=fitted)
        if label is not None:
            params.append({"id": item, "c": label["item_confidence"]})
    for chunk in chunks(params):
        tx.execute(_SET_CONFIDENCE, chunk)
    return len(params)


@transaction("write")
def refit_calibration(tx: CoreTx, project: Project, *, now: float) -> dict[str, Any]:
    """Fit and store a calibrator per choice field with gold, and refresh the items' cached
    confidence with it (after the annotator models are refitted): a summary per field."""
    data = read_project_labels(tx, project.id)
    fitted: dict[str, Calibrator] = {}
    for f in _choice_fields(project):
        evidence = gold_confidences(f, data)
        if len(evidence.item_ids):
            fitted[f.name] = fit_calibrator(
                evidence.confidence, evidence.correct, n_classes=evidence.n_classes
            )
    store_calibrators(tx, project.id, fitted, now)
    n_items = _refresh_items(tx, project, data, fitted) if fitted else 0
    return {
        "project_id": project.id,
        "fields": {name: c.to_json() for name, c in fitted.items()},
        "items_refreshed": n_items,
    }
