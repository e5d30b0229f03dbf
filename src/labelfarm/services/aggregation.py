"""An item's label, derived from its annotations with a confidence, and the models behind it.

Per field type:

- ``choice``: Dawid-Skene. :func:`fit_annotator_models` runs EM over the whole project
  (``labelfarm.ml.dawid_skene``: Dirichlet pseudo-counts so annotators with few labels stay
  near a modest prior, gold items and reviewed items clamped to their known class) and keeps
  each annotator's confusion matrix and the class priors. One item's posterior is then
  ``prior × Π confusion[annotator][:, label]``, normalised (:func:`item_label`, cheap enough
  for the submit path). Annotators the model has not seen get the prior confusion. Majority
  vote is available as ``method="majority"``.
- ``multichoice``: the same, per option (a two-class model: chosen or not); the confidence
  is the probability that every option is decided right (the product over options).
- ``bbox``: boxes of all annotators clustered by IoU (``labelfarm.ml.cluster_boxes``) with
  annotator weights; a cluster drawn by at least half of the weight becomes a consensus box
  (weighted mean, voted label).
- every other type (``text`` medoid, ``number`` median, shapes, spans...): the field type's
  own weighted aggregator.

Annotator weights for the non-choice fields come from gold: the Beta posterior mean
``(1 + Σ score) / (2 + n)`` of their scores on gold items (0.5 for someone without gold).

A reviewer's decision (the newest row in ``reviews`` of the item) overrides everything, and a
gold item's label is its gold answer.

A label is ``{"value", "confidence", "item_confidence", "method", "methods",
"n_annotators"}``: ``confidence`` maps each field to its confidence in [0, 1] (as the
exporters expect), ``item_confidence`` is the smallest of them (the number to compare with
the project's ``target_confidence``), ``method`` names how the item was labelled
(``"review"``, ``"gold"``, or the field methods joined by ``+``).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from sqlalchemy import Connection, bindparam, select, text

from labelfarm import ml
from labelfarm.db import tables
from labelfarm.schema import FieldType, Schema
from labelfarm.services.annotator_models import (
    PRIOR_ACCURACY,
    PRIOR_STRENGTH,
    AnnotatorModels,
    ClassModel,
    FieldModel,
    load_annotator_models,
    store_annotator_models,
)
from labelfarm.services.jsonutil import loads
from labelfarm.services.projects import Project

DAWID_SKENE = "dawid-skene"
MAJORITY = "majority"
METHODS = (DAWID_SKENE, MAJORITY)
BOX_SUPPORT = 0.5  # weight share of annotators who must draw a box for it to be kept
CHUNK = 500  # ids per IN (...) list

__all__ = [
    "DAWID_SKENE",
    "MAJORITY",
    "AnnotatorModels",
    "ClassModel",
    "FieldModel",
    "fit_annotator_models",
    "fit_class_model",
    "item_label",
    "label_items",
    "latest_per_annotator",
    "load_annotator_models",
]


# -- one item ---------------------------------------------------------------------------------
def _annotator(ann: Mapping[str, Any]) -> Any:
    return ann["user_id"] if "user_id" in ann else ann["annotator"]


def latest_per_annotator(annotations_of_item: Iterable[Mapping[str, Any]]) -> list[dict]:
    """The newest annotation of each annotator (highest ``id``, else the later one), with its
    value decoded; a correction thus replaces what it corrects."""
    newest: dict[Any, dict[str, Any]] = {}
    for n, ann in enumerate(annotations_of_item):
        key = _annotator(ann)
        order = ann.get("id", n)
        if key not in newest or order >= newest[key]["_order"]:
            value = ann["value"]
            newest[key] = {
                "annotator": key,
                "value": loads(value) if isinstance(value, str | bytes) else value,
                "_order": order,
            }
    return list(newest.values())


def _choice(
    models: AnnotatorModels, f: FieldType, votes: list[tuple[Any, Any]], method: str
) -> tuple[Any, float, str]:
    if method == MAJORITY:
        value, conf = f.aggregate([v for _, v in votes])
        return value, float(conf), MAJORITY
    model = models.class_model(f)
    pairs = [(u, k) for u, v in votes if (k := model.index(v)) is not None]
    if not pairs:
        return None, 0.0, DAWID_SKENE
    post = model.posterior(pairs)
    best = int(post.argmax())
    return model.classes[best], float(post[best]), DAWID_SKENE


def _multichoice(
    models: AnnotatorModels, f: FieldType, votes: list[tuple[Any, Any]], method: str
) -> tuple[Any, float, str]:
    if method == MAJORITY:
        value, conf = f.aggregate([v for _, v in votes])
        return value, float(conf), MAJORITY
    chosen, confidence = [], 1.0
    for option in getattr(f, "options", ()):
        model = models.option_model(f, option)
        post = model.posterior([(u, int(option in v)) for u, v in votes])
        if post[1] > 0.5:
            chosen.append(option)
        confidence *= float(post.max())
    return chosen, confidence, DAWID_SKENE + "-per-option"


def _boxes(
    models: AnnotatorModels, f: FieldType, votes: list[tuple[Any, Any]]
) -> tuple[Any, float, str]:
    method = "box-clusters"
    labels = list(getattr(f, "labels", ()))
    label_index = {name: i for i, name in enumerate(labels)}
    users = [u for u, _ in votes]
    weights = np.array([models.weight(f.name, u) for u in users])
    if len(votes) == 1:
        return votes[0][1], 0.5, method
    rows = [
        (b["x"], b["y"], b["w"], b["h"], label_index[b["label"]], a)
        for a, (_, value) in enumerate(votes)
        for b in value
        if b.get("label") in label_index
    ]
    if not rows:
        return [], 1.0, method
    arr = np.array(rows, dtype=np.float64)
    clusters = ml.cluster_boxes(
        arr[:, :4],
        arr[:, 4].astype(np.int64),
        arr[:, 5].astype(np.int64),
        weights,
        n_annotators=len(votes),
    )
    keep = clusters.support >= BOX_SUPPORT
    value = [
        {
            "x": round(float(b[0]), 2),
            "y": round(float(b[1]), 2),
            "w": round(float(b[2]), 2),
            "h": round(float(b[3]), 2),
            "label": labels[int(lb)],
        }
        for b, lb in zip(clusters.boxes[keep], clusters.labels[keep], strict=True)
    ]
    agreement = np.where(keep, clusters.confidence, 1.0 - clusters.support)
    return value, float(agreement.mean()), method


_FIELD_METHOD = {"text": "medoid", "number": "median"}


def _field_label(
    models: AnnotatorModels, f: FieldType, votes: list[tuple[Any, Any]], method: str
) -> tuple[Any, float, str]:
    if f.type_name == "choice":
        return _choice(models, f, votes, method)
    if f.type_name == "multichoice":
        return _multichoice(models, f, votes, method)
    if f.type_name == "bbox":
        return _boxes(models, f, votes)
    weights = [models.weight(f.name, u) for u, _ in votes]
    value, conf = f.aggregate([v for _, v in votes], weights)
    return value, float(conf), _FIELD_METHOD.get(f.type_name, f"{f.type_name}-aggregate")


def _fixed(value: Any, schema: Schema, method: str, n_annotators: int) -> dict[str, Any]:
    value = loads(value) if isinstance(value, str | bytes) else value
    value = value if isinstance(value, dict) else {}
    return {
        "value": value,
        "confidence": {f.name: 1.0 for f in schema.fields if f.name in value},
        "item_confidence": 1.0,
        "method": method,
        "methods": {f.name: method for f in schema.fields if f.name in value},
        "n_annotators": n_annotators,
    }


def item_label(
    models: AnnotatorModels,
    project: Project,
    annotations_of_item: Sequence[Mapping[str, Any]],
    review: Mapping[str, Any] | None = None,
    *,
    gold: Any = None,
    method: str = DAWID_SKENE,
) -> dict[str, Any] | None:
    """The label of one item, or None when it has no annotation, review or gold.

    Pure given its inputs. ``annotations_of_item``: mappings with ``user_id`` (or
    ``annotator``) and ``value`` (a dict, or its JSON text), and ``id`` to order
    corrections. ``review``: the newest row of ``reviews`` for the item (its ``value`` wins).
    ``gold``: the item's gold answer, if it is a gold item. ``method``: ``"dawid-skene"`` or
    ``"majority"`` for the categorical fields.
    """
    if method not in METHODS:
        raise ValueError(f"method must be one of {list(METHODS)}, got {method!r}")
    latest = latest_per_annotator(annotations_of_item)
    if review is not None:
        return _fixed(review["value"], project.schema, "review", len(latest))
    if gold is not None:
        return _fixed(gold, project.schema, "gold", len(latest))
    if not latest:
        return None
    value: dict[str, Any] = {}
    confidence: dict[str, float] = {}
    methods: dict[str, str] = {}
    for f in project.schema.fields:
        votes = [
            (a["annotator"], a["value"][f.name])
            for a in latest
            if isinstance(a["value"], dict) and a["value"].get(f.name) is not None
        ]
        if not votes:
            continue
        v, c, m = _field_label(models, f, votes, method)
        value[f.name] = v
        confidence[f.name] = round(c, 6)
        methods[f.name] = m
    distinct = list(dict.fromkeys(methods.values()))
    return {
        "value": value,
        "confidence": confidence,
        "item_confidence": min(confidence.values()) if confidence else 0.0,
        "method": "+".join(distinct),
        "methods": methods,
        "n_annotators": len(latest),
    }


# -- fitting ---------------------------------------------------------------------------------
@dataclass
class ProjectLabels:
    """Everything a fit needs, read once: the newest annotation of each (item, annotator),
    gold answers and reviewed values."""

    latest: dict[tuple[int, int], dict[str, Any]]  # (item, user) -> value
    gold: dict[int, dict[str, Any]]
    reviewed: dict[int, dict[str, Any]]


def read_project_labels(conn: Connection, project_id: int) -> ProjectLabels:
    latest: dict[tuple[int, int], dict[str, Any]] = {}
    rows = conn.execute(
        text("SELECT item_id, user_id, value FROM annotations WHERE project_id = :p ORDER BY id"),
        {"p": project_id},
    )
    for item_id, user_id, value in rows:
        latest[(item_id, user_id)] = loads(value)
    gold = {
        r.id: loads(r.gold)
        for r in conn.execute(
            select(tables.items.c.id, tables.items.c.gold).where(
                tables.items.c.project_id == project_id, tables.items.c.is_gold.is_(True)
            )
        )
        if r.gold
    }
    reviewed: dict[int, dict[str, Any]] = {}
    for r in conn.execute(
        select(tables.reviews.c.item_id, tables.reviews.c.value)
        .where(tables.reviews.c.project_id == project_id)
        .order_by(tables.reviews.c.id)
    ):
        reviewed[r.item_id] = loads(r.value)
    return ProjectLabels(latest, gold, reviewed)


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
    their posterior from the fitted model (:func:`item_label`)."""
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
    votes = [
        (item, user, value[f.name])
        for (item, user), value in data.latest.items()
        if value.get(f.name) is not None
    ]
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


_SET_CONFIDENCE = text("UPDATE items SET label_confidence = :c WHERE id = :id")


def fit_annotator_models(
    conn: Connection, project: Project, *, now: float, update_items: bool = True
) -> AnnotatorModels:
    """Fit every field's model over the whole project, store them, and (by default) refresh
    the cached ``items.label_confidence`` of every annotated item. Off the hot path: it
    reads all of the project's annotations once."""
    data = read_project_labels(conn, project.id)
    models = AnnotatorModels(
        project.id, {f.name: _fit_field(f, data, now) for f in project.schema.fields}
    )
    store_annotator_models(conn, models)
    if update_items:
        by_item: dict[int, list[dict[str, Any]]] = {}
        for (item, user), value in data.latest.items():
            by_item.setdefault(item, []).append({"user_id": user, "value": value})
        params = []
        for item, anns in sorted(by_item.items()):
            review = data.reviewed.get(item)
            label = item_label(
                models,
                project,
                anns,
                review={"value": review} if review is not None else None,
                gold=data.gold.get(item),
            )
            if label is not None:
                params.append({"id": item, "c": label["item_confidence"]})
        for start in range(0, len(params), CHUNK):
            conn.execute(_SET_CONFIDENCE, params[start : start + CHUNK])
    return models


# -- many items ------------------------------------------------------------------------------
_ITEM_ANNOTATIONS = text(
    "SELECT id, item_id, user_id, value FROM annotations "
    "WHERE project_id = :p AND item_id IN :ids ORDER BY id"
).bindparams(bindparam("ids", expanding=True))
_ITEM_REVIEWS = text(
    "SELECT id, item_id, reviewer_id, decision, annotation_id, value, note, created_at "
    "FROM reviews WHERE project_id = :p AND item_id IN :ids ORDER BY id"
).bindparams(bindparam("ids", expanding=True))
_ITEM_GOLD = text(
    "SELECT id, gold FROM items WHERE project_id = :p AND is_gold AND id IN :ids"
).bindparams(bindparam("ids", expanding=True))


def newest_reviews(
    conn: Connection, project_id: int, item_ids: Sequence[int]
) -> dict[int, dict[str, Any]]:
    """The newest review row of each item that has one."""
    out: dict[int, dict[str, Any]] = {}
    for start in range(0, len(item_ids), CHUNK):
        ids = list(item_ids[start : start + CHUNK])
        for r in conn.execute(_ITEM_REVIEWS, {"p": project_id, "ids": ids}).mappings():
            out[r["item_id"]] = {**r, "value": loads(r["value"])}
    return out


def label_items(
    conn: Connection,
    project: Project,
    item_ids: Sequence[int],
    *,
    models: AnnotatorModels | None = None,
    method: str = DAWID_SKENE,
) -> dict[int, dict[str, Any]]:
    """The labels of ``item_ids`` (items without annotations, review or gold are absent).

    Three indexed queries per 500 items; the stored models are loaded once when not given.
    """
    models = models if models is not None else load_annotator_models(conn, project.id)
    ids = sorted(set(item_ids))
    out: dict[int, dict[str, Any]] = {}
    for start in range(0, len(ids), CHUNK):
        chunk = ids[start : start + CHUNK]
        by_item: dict[int, list[dict[str, Any]]] = {}
        for r in conn.execute(_ITEM_ANNOTATIONS, {"p": project.id, "ids": chunk}):
            by_item.setdefault(r.item_id, []).append(
                {"id": r.id, "user_id": r.user_id, "value": r.value}
            )
        gold = {
            r.id: r.gold
            for r in conn.execute(_ITEM_GOLD, {"p": project.id, "yes": True, "ids": chunk})
            if r.gold
        }
        review_of = newest_reviews(conn, project.id, chunk)
        for item in chunk:
            label = item_label(
                models,
                project,
                by_item.get(item, []),
                review_of.get(item),
                gold=gold.get(item),
                method=method,
            )
            if label is not None:
                out[item] = label
    return out
