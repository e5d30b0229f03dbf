"""Fitting a project's annotator models over all of its labels, and the refits that keep them
fresh.

:func:`fit_annotator_models` reads every current label of the project once
(:mod:`labelfarm.services.project_labels`) and fits, per field:

- ``choice``: Dawid-Skene EM (``labelfarm.ml.dawid_skene``: Dirichlet pseudo-counts so
  annotators with few labels stay near a modest prior, gold items and reviewed items clamped
  to their known class), kept as each annotator's confusion matrix and the class priors;
- ``multichoice``: the same per option (a two-class model: chosen or not);
- every field: annotator weights from gold, the Beta posterior mean
  ``(1 + Σ score) / (2 + n)`` of their scores on gold items.

The models are stored (:mod:`labelfarm.services.annotator_models`) and the cached
``items.label_confidence`` of every annotated item is refreshed from them
(:func:`labelfarm.services.aggregation.item_label`). :func:`refit_models` is the audited use
case behind ``POST /projects/{id}/quality/refit`` and the periodic ``refit`` job a worker
runs (:mod:`labelfarm.jobs.refit`, :func:`projects_due_for_refit`).
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import numpy as np
from sqlalchemy import text

from labelfarm import ml
from labelfarm.db.batches import chunks
from labelfarm.db.tx import CoreTx, transaction
from labelfarm.jsonutil import iso
from labelfarm.schema import FieldType
from labelfarm.services import audit
from labelfarm.services.aggregation import DAWID_SKENE, item_label
from labelfarm.services.annotator_models import (
    PRIOR_ACCURACY,
    PRIOR_STRENGTH,
    AnnotatorModels,
    ClassModel,
    FieldModel,
    store_annotator_models,
)
from labelfarm.services.calibration_store import load_calibrators
from labelfarm.services.project_labels import ProjectLabels, read_project_labels
from labelfarm.services.projects import Project
from labelfarm.services.tasks.openness import reopen_items

__all__ = [
    "fit_annotator_models",
    "fit_class_model",
    "projects_due_for_refit",
    "refit_models",
]


# -- one field -------------------------------------------------------------------------------
def _gold_weights(f: FieldType, data: ProjectLabels) -> dict[int, float]:
    """Beta(1, 1) posterior mean of each annotator's scores on gold answers of the field."""
    totals: dict[int, list[float]] = {}
    for (item, user), value in data.latest.items():
        gold = data.gold.get(item)
        if gold is None or gold.get(f.name) is None or value.get(f.name) is None:
            continue
        try:
            score = float(f.score(value[f.name], gold[f.name]))
        except (KeyError, TypeError, ValueError):
            continue
        acc = totals.setdefault(user, [0.0, 0.0])
        acc[0] += score
        acc[1] += 1.0
    return {u: (1.0 + s) / (2.0 + n) for u, (s, n) in totals.items()}


def fit_class_model(
    classes: tuple[str, ...],
    triples: list[tuple[int, int, int]],
    known: dict[int, int],
) -> ClassModel:
    """Dawid-Skene over ``(item id, user id, class index)`` triples, ``known`` items (item id
    -> class index) clamped: the model :func:`fit_annotator_models` stores for a field.

    Only items with a known answer or with two or more labels are fitted: a lone label says
    nothing about its annotator, and letting it train the annotator's confusion on its own
    posterior only reinforces whatever the model believed. Lone-labelled items still get
    their posterior from the fitted model (:func:`labelfarm.services.aggregation.item_label`).
    """
    per_item = Counter(t[0] for t in triples)
    triples = [t for t in triples if per_item[t[0]] >= 2 or t[0] in known]
    if not triples:
        return ClassModel.prior(classes)
    item_ids = sorted({t[0] for t in triples})
    user_ids = sorted({t[1] for t in triples})
    item_ix = {i: n for n, i in enumerate(item_ids)}
    user_ix = {u: n for n, u in enumerate(user_ids)}
    arr = np.array([(item_ix[i], user_ix[u], k) for i, u, k in triples], dtype=np.int64)
    gold = np.full(len(item_ids), -1, dtype=np.int64)
    for item, k in known.items():
        if item in item_ix:
            gold[item_ix[item]] = k
    result = ml.dawid_skene(
        arr[:, 0],
        arr[:, 1],
        arr[:, 2],
        n_items=len(item_ids),
        n_classes=len(classes),
        n_annotators=len(user_ids),
        prior_strength=PRIOR_STRENGTH,
        prior_accuracy=PRIOR_ACCURACY,
        gold=gold,
    )
    accuracy = ml.get_annotator_accuracy(result.confusion, class_priors=result.class_priors)
    return ClassModel(
        classes=classes,
        class_priors=result.class_priors,
        annotators=user_ix,
        confusion=result.confusion,
        accuracy={u: float(accuracy[n]) for u, n in user_ix.items()},
    )


def _known(f: FieldType, data: ProjectLabels) -> dict[int, Any]:
    """Items whose answer for the field is known: gold, then reviewed (which wins)."""
    out: dict[int, Any] = {}
    for source in (data.gold, data.reviewed):
        for item, value in source.items():
            if value.get(f.name) is not None:
                out[item] = value[f.name]
    return out


def _fit_field(f: FieldType, data: ProjectLabels, now: float) -> FieldModel:
    weights = _gold_weights(f, data)
    votes = data.answers(f.name)
    known = _known(f, data)
    if f.type_name == "choice":
        classes = tuple(getattr(f, "options", ()))
        index = {c: k for k, c in enumerate(classes)}
        triples = [(i, u, index[v]) for i, u, v in votes if v in index]
        known_ix = {i: index[v] for i, v in known.items() if v in index}
        model = fit_class_model(classes, triples, known_ix)
        return FieldModel(
            f.name,
            DAWID_SKENE,
            classes=model,
            weights=weights,
            n_annotations=len(triples),
            fitted_at=now,
        )
    if f.type_name == "multichoice":
        options = {}
        for option in getattr(f, "options", ()):
            triples = [(i, u, int(option in v)) for i, u, v in votes if isinstance(v, list)]
            known_ix = {i: int(option in v) for i, v in known.items() if isinstance(v, list)}
            options[option] = fit_class_model(("no", "yes"), triples, known_ix)
        return FieldModel(
            f.name,
            DAWID_SKENE + "-per-option",
            options=options,
            weights=weights,
            n_annotations=len(votes),
            fitted_at=now,
        )
    return FieldModel(f.name, "weights", weights=weights, n_annotations=len(votes), fitted_at=now)


# -- the project -----------------------------------------------------------------------------
_SET_CONFIDENCE = text("UPDATE items SET label_confidence = :c WHERE id = :id")


def fit_annotator_models(
    tx: CoreTx, project: Project, *, now: float, update_items: bool = True
) -> AnnotatorModels:
    """Fit every field's model over the whole project, store them, and (by default) refresh
    the cached ``items.label_confidence`` of every annotated item. Off the hot path: it
    reads all of the project's annotations once."""
    data = read_project_labels(tx, project.id)
    models = AnnotatorModels(
        project.id, {f.name: _fit_field(f, data, now) for f in project.schema.fields}
    )
    store_annotator_models(tx, models)
    if update_items:
        by_item: dict[int, list[dict[str, Any]]] = {}
        for (item, user), value in data.latest.items():
            by_item.setdefault(item, []).append({"user_id": user, "value": value})
        params = []
        calibration = load_calibrators(tx, project.id)  # the last fitted; the refit job refits
        for item, anns in sorted(by_item.items()):
            review = data.reviewed.get(item)
            label = item_label(
                models,
                project,
                anns,
                review={"value": review} if review is not None else None,
                gold=data.gold.get(item),
                calibration=calibration,
            )
            if label is not None:
                params.append({"id": item, "c": label["item_confidence"]})
        for chunk in chunks(params):
            tx.execute(_SET_CONFIDENCE, chunk)
    return models


@transaction("write")
def refit_models(
    tx: CoreTx, project: Project, *, now: float, actor_id: int | None
) -> dict[str, Any]:
    """Refit the project's annotator models (and refresh cached label confidences); audited."""
    models = fit_annotator_models(tx, project, now=now)
    if project.adaptive:  # new confidences may close or reopen items
        reopen_items(tx, project.id, project.open_params)
    fields = [
        {
            "field": fm.field,
            "kind": fm.kind,
            "n_annotations": fm.n_annotations,
            "n_annotators": len(fm.classes.annotators) if fm.classes else len(fm.weights),
        }
        for fm in models.fields.values()
    ]
    summary = {"project_id": project.id, "fitted_at": iso(now), "fields": fields}
    audit.record(
        tx,
        action="quality.refit",
        target=f"project:{project.id}",
        now=now,
        workspace_id=project.workspace_id,
        actor_id=actor_id,
        details={fm.field: fm.n_annotations for fm in models.fields.values()},
    )
    return summary


@transaction("read")
def projects_due_for_refit(tx: CoreTx, now: float, every: float) -> list[int]:
    """Adaptive projects with annotations newer than their models, last fitted over
    ``every`` seconds ago (or never)."""
    rows = tx.execute(
        text(
            "SELECT id FROM (SELECT p.id, "
            "(SELECT a.created_at FROM annotations a WHERE a.project_id = p.id "
            "ORDER BY a.id DESC LIMIT 1) AS newest, "
            "COALESCE((SELECT MAX(m.fitted_at) FROM annotator_models m "
            "WHERE m.project_id = p.id), 0) AS fitted "
            "FROM projects p WHERE p.max_overlap > p.overlap) t "
            "WHERE newest > fitted AND fitted < :since"
        ),
        {"since": now - every},
    )
    return [int(r[0]) for r in rows]
