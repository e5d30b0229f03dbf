"""Adaptive overlap: after each new label, how sure is the item's label?

A project with ``max_overlap > overlap`` asks for ``overlap`` labels per item at least;
once an item has them, its label confidence is computed and stored, and the item stays
open for one more annotator at a time while the confidence is below the project's
``target_confidence``, up to ``max_overlap`` labels (:mod:`.openness`). Annotations left out
of labels (``annotations.excluded``) do not count; a reviewed item is closed, its label the
decision, and its confidence is no longer recomputed.

Once the project's annotator models are fitted (:mod:`labelfarm.services.fitting`:
Dawid-Skene confusion matrices, refitted by a job worker's periodic ``refit`` job), the item's
confidence is :func:`aggregation.item_label`'s — the posterior of its label given who
labelled it. Before the first fit, a ``choice`` field's confidence is the posterior under a
one-coin model: each annotator is right with their estimated accuracy (the Beta-posterior
mean of their gold scores, shrunk towards a prior of 0.8 for annotators with little gold)
and otherwise picks uniformly among the other classes. The item's confidence is its least
sure field; other field types use their aggregator's confidence once they have two labels.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from typing import Any

from labelfarm.db.tx import Sql, Tx
from labelfarm.jsonutil import loads
from labelfarm.ml.calibration import Calibrator
from labelfarm.services.aggregation import item_label
from labelfarm.services.annotator_models import AnnotatorModels
from labelfarm.services.projects import Project
from labelfarm.services.tasks.openness import open_expr

MODELS_TTL = 30.0  # seconds a server process keeps a project's fitted models
PRIOR_ACCURACY = 0.8
PRIOR_WEIGHT = 4.0  # pseudo-answers behind the prior

# a reviewed item's label is the decision (confidence 1): its annotations no longer matter
COUNTS = Sql("SELECT id, n_submitted FROM items WHERE id IN :ids AND is_reviewed = false")
ANNOTATIONS = Sql(
    "SELECT item_id, user_id, value FROM annotations WHERE item_id IN :ids "
    "AND excluded IS NULL ORDER BY id"
)
ACCURACY = Sql(
    "SELECT user_id, COUNT(*), SUM(score) FROM gold_results "
    "WHERE project_id = :p AND user_id IN :users GROUP BY user_id"
)
MODELS = Sql(
    "SELECT field, model, n_annotations, fitted_at FROM annotator_models WHERE project_id = :p"
)
CALIBRATORS = Sql("SELECT field, calibrator FROM confidence_calibrators WHERE project_id = :p")
SET_CONFIDENCE = Sql(
    f"UPDATE items SET label_confidence = :c, is_open = {open_expr(conf=':c')} WHERE id = :id"
)


def choice_posterior(labels: Sequence[tuple[str, float]], n_classes: int) -> float:
    """Posterior of the most likely class given (label, annotator accuracy) pairs."""
    if not labels:
        return 0.0
    k = max(n_classes, 2)
    scores: dict[str, float] = {}
    for candidate in {label for label, _ in labels}:
        log_p = 0.0
        for label, acc in labels:
            acc = min(max(acc, 1e-3), 1 - 1e-3)
            log_p += math.log(acc) if label == candidate else math.log((1 - acc) / (k - 1))
        scores[candidate] = log_p
    # classes nobody chose share the rest of the mass
    unseen = k - len(scores)
    unseen_log = sum(math.log((1 - min(max(a, 1e-3), 1 - 1e-3)) / (k - 1)) for _, a in labels)
    top = max(scores.values())
    z = sum(math.exp(v - top) for v in scores.values()) + unseen * math.exp(unseen_log - top)
    return 1.0 / z


def item_confidence(
    project: Project, latest: Sequence[tuple[int, dict[str, Any]]], accuracy: dict[int, float]
) -> float:
    """The least sure field's confidence, given each annotator's newest value."""
    confidences = []
    for f in project.schema.fields:
        values = [(u, v[f.name]) for u, v in latest if f.name in v]
        if not values:
            continue
        if f.type_name == "choice":
            pairs = [(str(v), accuracy.get(u, PRIOR_ACCURACY)) for u, v in values]
            confidences.append(choice_posterior(pairs, len(getattr(f, "options", []))))
        elif len(values) < 2:
            confidences.append(0.5)
        else:
            confidences.append(float(f.aggregate([v for _, v in values])[1]))
    return min(confidences) if confidences else 0.0


_models: dict[int, tuple[float, AnnotatorModels, dict[str, Calibrator]]] = {}


def _fitted(tx: Tx, project: Project) -> tuple[float, AnnotatorModels, dict[str, Calibrator]]:
    """The project's fitted annotator models and confidence calibrators, cached briefly."""
    hit = _models.get(project.id)
    now = time.monotonic()
    if hit is None or hit[0] < now:
        models = AnnotatorModels.from_rows(project.id, tx.rows(MODELS, {"p": project.id}))
        calibrators = {
            field: Calibrator.from_json(loads(blob))
            for field, blob in tx.rows(CALIBRATORS, {"p": project.id})
        }
        hit = (now + MODELS_TTL, models, calibrators)
        _models[project.id] = hit
    return hit


def fitted_models(tx: Tx, project: Project) -> AnnotatorModels | None:
    """The project's fitted annotator models (cached briefly), or None before a fit."""
    models = _fitted(tx, project)[1]
    return models if models.fields else None


def forget_models(project_id: int) -> None:
    """Drop a project's cached models (after a refit in this process)."""
    _models.pop(project_id, None)


def refresh(tx: Tx, project: Project, item_ids: Sequence[int]) -> None:
    """Recompute the confidence (and openness) of items that reached their minimum labels."""
    ready = [i for i, n in tx.rows(COUNTS, {"ids": item_ids}) if n >= project.overlap]
    if not ready:
        return
    latest: dict[int, dict[int, dict[str, Any]]] = {}
    for item_id, user_id, value in tx.rows(ANNOTATIONS, {"ids": ready}):
        latest.setdefault(item_id, {})[user_id] = loads(value)  # newest wins (ordered by id)
    _, models, calibration = _fitted(tx, project)
    if models.fields:  # the label's confidence, calibrated on gold where it was fitted
        confidences = {}
        for item_id, per in latest.items():
            anns = [{"user_id": u, "value": v} for u, v in per.items()]
            label = item_label(models, project, anns, calibration=calibration)
            confidences[item_id] = float(label["item_confidence"]) if label else 0.0
        tx.many(
            SET_CONFIDENCE,
            [{"id": i, "c": c, **project.open_params} for i, c in sorted(confidences.items())],
        )
        return
    users = sorted({u for per in latest.values() for u in per})
    accuracy = {
        u: (PRIOR_ACCURACY * PRIOR_WEIGHT + float(s)) / (PRIOR_WEIGHT + int(n))
        for u, n, s in tx.rows(ACCURACY, {"p": project.id, "users": users})
    }
    tx.many(
        SET_CONFIDENCE,
        [
            {
                "id": item_id,
                "c": item_confidence(project, list(per.items()), accuracy),
                **project.open_params,
            }
            for item_id, per in sorted(latest.items())
        ],
    )
