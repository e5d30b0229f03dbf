"""An item's label, derived from its annotations and the project's annotator models, with a
confidence.

Per field type:

- ``choice``: Dawid-Skene. The project's fitted models
  (:func:`labelfarm.services.fitting.fit_annotator_models`) keep each annotator's confusion
  matrix and the class priors. One item's posterior is then
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
gold item's label is its gold answer. Annotations left out of labels
(``annotations.excluded``: from a paused or failed annotator, or sent back for relabelling)
are not read.

A label is ``{"value", "confidence", "item_confidence", "method", "methods",
"n_annotators"}``: ``confidence`` maps each field to its confidence in [0, 1] (as the
exporters expect), ``item_confidence`` is the smallest of them (the number to compare with
the project's ``target_confidence``), ``method`` names how the item was labelled
(``"review"``, ``"gold"``, or the field methods joined by ``+``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np
from sqlalchemy import bindparam, text

from labelfarm import ml
from labelfarm.db.batches import chunks
from labelfarm.db.tx import CoreTx
from labelfarm.jsonutil import loads
from labelfarm.ml.calibration import Calibrator
from labelfarm.schema import FieldType, Schema
from labelfarm.services.annotator_models import AnnotatorModels, load_annotator_models
from labelfarm.services.auto_accept_labels import live_auto_labels, model_label
from labelfarm.services.calibration_store import load_calibrators
from labelfarm.services.projects import Project

DAWID_SKENE = "dawid-skene"
MAJORITY = "majority"
METHODS = (DAWID_SKENE, MAJORITY)
BOX_SUPPORT = 0.5  # weight share of annotators who must draw a box for it to be kept


__all__ = [
    "DAWID_SKENE",
    "MAJORITY",
    "item_label",
    "label_items",
    "latest_per_annotator",
    "newest_reviews",
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
    models: AnnotatorModels,
    f: FieldType,
    votes: list[tuple[Any, Any]],
    calibrator: Calibrator | None = None,
) -> tuple[Any, float, str]:
    model = models.class_model(f)
    pairs = [(u, k) for u, v in votes if (k := model.index(v)) is not None]
    if not pairs:
        return None, 0.0, DAWID_SKENE
    post = model.posterior(pairs)
    best = int(post.argmax())
    confidence = float(post[best])
    if calibrator is not None:  # fitted on the project's gold (services.calibration)
        confidence = calibrator.apply_one(confidence)
    return model.classes[best], confidence, DAWID_SKENE


def _multichoice(
    models: AnnotatorModels, f: FieldType, votes: list[tuple[Any, Any]]
) -> tuple[Any, float, str]:
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
_CATEGORICAL = frozenset({"choice", "multichoice"})  # the fields ``method`` applies to


def _field_label(
    models: AnnotatorModels,
    f: FieldType,
    votes: list[tuple[Any, Any]],
    method: str,
    calibration: Mapping[str, Calibrator] | None = None,
) -> tuple[Any, float, str]:
    if method == MAJORITY and f.type_name in _CATEGORICAL:
        value, conf = f.aggregate([v for _, v in votes])
        return value, float(conf), MAJORITY
    if f.type_name == "choice":
        return _choice(models, f, votes, (calibration or {}).get(f.name))
    if f.type_name == "multichoice":
        return _multichoice(models, f, votes)
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
    calibration: Mapping[str, Calibrator] | None = None,
) -> dict[str, Any] | None:
    """The label of one item, or None when it has no annotation, review or gold.

    Pure given its inputs. ``annotations_of_item``: mappings with ``user_id`` (or
    ``annotator``) and ``value`` (a dict, or its JSON text), and ``id`` to order
    corrections. ``review``: the newest row of ``reviews`` for the item (its ``value`` wins).
    ``gold``: the item's gold answer, if it is a gold item. ``method``: ``"dawid-skene"`` or
    ``"majority"`` for the categorical fields. ``calibration``: the project's calibrators by
    field (:func:`labelfarm.services.calibration.load_calibrators`), applied to the
    Dawid-Skene confidence of ``choice`` fields.
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
        v, c, m = _field_label(models, f, votes, method, calibration)
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


# -- many items ------------------------------------------------------------------------------
_ITEM_ANNOTATIONS = text(
    "SELECT id, item_id, user_id, value FROM annotations "
    "WHERE project_id = :p AND item_id IN :ids AND excluded IS NULL ORDER BY id"
).bindparams(bindparam("ids", expanding=True))
_ITEM_REVIEWS = text(
    "SELECT id, item_id, reviewer_id, decision, annotation_id, value, note, created_at "
    "FROM reviews WHERE project_id = :p AND item_id IN :ids ORDER BY id"
).bindparams(bindparam("ids", expanding=True))
_ITEM_GOLD = text(
    "SELECT id, gold FROM items WHERE project_id = :p AND is_gold AND id IN :ids"
).bindparams(bindparam("ids", expanding=True))


def newest_reviews(
    tx: CoreTx, project_id: int, item_ids: Sequence[int]
) -> dict[int, dict[str, Any]]:
    """The newest review row of each item that has one."""
    out: dict[int, dict[str, Any]] = {}
    for ids in chunks(item_ids):
        for r in tx.execute(_ITEM_REVIEWS, {"p": project_id, "ids": list(ids)}).mappings():
            out[r["item_id"]] = {**r, "value": loads(r["value"])}
    return out


def label_items(
    tx: CoreTx,
    project: Project,
    item_ids: Sequence[int],
    *,
    models: AnnotatorModels | None = None,
    method: str = DAWID_SKENE,
    with_auto: bool = False,
    calibration: Mapping[str, Calibrator] | None = None,
) -> dict[int, dict[str, Any]]:
    """The labels of ``item_ids`` (items without annotations, review or gold are absent).

    Three indexed queries per 500 items; the stored models are loaded once when not given.
    With ``with_auto``, an item without a human label that the model auto-labelled has the
    model's label (method ``"model"``, :mod:`labelfarm.services.auto_accept_labels`): the
    final label as exports and reports show it; never for training or evidence.
    """
    models = models if models is not None else load_annotator_models(tx, project.id)
    if calibration is None:  # the project's confidence calibrators (services.calibration)
        calibration = load_calibrators(tx, project.id)
    ids = sorted(set(item_ids))
    out: dict[int, dict[str, Any]] = {}
    for chunk in chunks(ids):
        by_item: dict[int, list[dict[str, Any]]] = {}
        for r in tx.execute(_ITEM_ANNOTATIONS, {"p": project.id, "ids": chunk}):
            by_item.setdefault(r.item_id, []).append(
                {"id": r.id, "user_id": r.user_id, "value": r.value}
            )
        gold = {
            r.id: r.gold
            for r in tx.execute(_ITEM_GOLD, {"p": project.id, "yes": True, "ids": chunk})
            if r.gold
        }
        review_of = newest_reviews(tx, project.id, chunk)
        for item in chunk:
            label = item_label(
                models,
                project,
                by_item.get(item, []),
                review_of.get(item),
                gold=gold.get(item),
                method=method,
                calibration=calibration,
            )
            if label is not None:
                out[item] = label
        if with_auto:
            missing = [i for i in chunk if i not in out]
            for item, auto in live_auto_labels(tx, project.id, missing).items():
                out[item] = model_label(auto)
    return out
