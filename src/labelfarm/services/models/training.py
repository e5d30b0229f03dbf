"""Which items train a model, which evaluate it, and the record of what trained it.

A model predicts a project's ``choice`` and ``multichoice`` fields. An item's label for them
is its final label: a reviewer's decision wins, else the label aggregated from its
annotations (:mod:`labelfarm.services.aggregation`; annotations left out of labels,
``annotations.excluded``, never count).

**The held-out (evaluation) set** is fixed: membership is a function of the item, so versions
trained as the project grows are compared on the same items. It holds

* every gold item with a gold answer for a predicted field (control and training gold), its
  gold answer the truth;
* every item with a human final label (reviewed, or aggregated from its annotations) whose
  stable hash (SHA-256 of the project and item ids, as a number in [0, 1)) is below the
  project's ``holdout_share`` (:func:`in_held_out`), its final label the truth. Membership is
  drawn uniformly at random by the hash, never chosen by a sampler (the ``score`` job gives
  held-out items random scores), so the set is an unbiased sample of the project: auto-accept
  (:mod:`labelfarm.services.auto_accept`) takes its evidence from it.

Labels the model gave itself (auto-accept) are never a final *human* label: they never train
a version and are never evidence (no self-training feedback loop).

**Training** takes every other item with a final label for a predicted field: never a gold
item, never a held-out one. What trained a version is stored beside its model as
``training-set.json`` (:func:`training_set_json`): the items in the order they trained, the
label of each, where it came from (the review, or the annotations aggregated) and the
schema version, enough to train the same model again.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from labelfarm.db.batches import chunks
from labelfarm.db.tx import CoreTx, Sql, transaction
from labelfarm.errors import InvalidInput
from labelfarm.jsonutil import dumps, loads
from labelfarm.ml.predictors import FieldSpec, registry
from labelfarm.schema import FieldType
from labelfarm.services.aggregation import item_label, newest_reviews
from labelfarm.services.annotator_models import load_annotator_models
from labelfarm.services.models.versions import ModelVersion
from labelfarm.services.projects import Project

PREDICTED_TYPES = ("choice", "multichoice")
FORMAT = "labelfarm.training-set.v1"
GOLD, REVIEWED, AGGREGATED = "gold", "reviewed", "aggregated"


class Candidate(NamedTuple):
    id: int
    is_gold: bool
    gold: str | None


class Annotation(NamedTuple):
    id: int
    item_id: int
    user_id: int
    value: str


# items with something to learn from: a gold answer, a counted annotation or a review
CANDIDATES = Sql(
    "SELECT i.id, i.is_gold, i.gold FROM items i WHERE i.project_id = :p AND i.status = 'ready' "
    "AND ((i.is_gold AND i.gold IS NOT NULL) "
    "OR EXISTS (SELECT 1 FROM annotations a WHERE a.item_id = i.id AND a.excluded IS NULL) "
    "OR EXISTS (SELECT 1 FROM reviews r WHERE r.item_id = i.id)) ORDER BY i.id",
    row=Candidate,
)
ANNOTATIONS = Sql(
    "SELECT id, item_id, user_id, value FROM annotations "
    "WHERE project_id = :p AND item_id IN :ids AND excluded IS NULL ORDER BY id",
    row=Annotation,
)


@dataclass(frozen=True, slots=True)
class Example:
    """An item with its label for the predicted fields, and where the label came from."""

    item_id: int
    label: dict[str, Any]
    source: str  # gold | reviewed | aggregated
    refs: list[int] = field(default_factory=list)  # the review, or the annotations aggregated
    method: str = ""

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"id": self.item_id, "label": self.label, "source": self.source}
        if self.source == REVIEWED:
            out["review_id"] = self.refs[0] if self.refs else None
        elif self.source == AGGREGATED:
            out["annotation_ids"] = self.refs
            out["method"] = self.method
        return out


@dataclass
class Split:
    train: list[Example]
    evaluate: list[Example]
    n_gold: int = 0  # gold items in the held-out set
    n_held_out: int = 0  # non-gold items in it (reviewed or aggregated)


def predicted_fields(project: Project, wanted: list[str] | None = None) -> list[FieldType]:
    """The fields a model of the project predicts: its choice and multichoice fields (or
    those of them named in ``wanted``). A 422 when there are none."""
    fields = [f for f in project.schema.fields if f.type_name in PREDICTED_TYPES]
    if not fields:
        raise InvalidInput(
            "this project's schema has no choice or multichoice field: there is nothing a "
            "model can predict",
            [{"field": "fields", "reason": "no choice or multichoice field"}],
        )
    if wanted is None:
        return fields
    names = {f.name for f in fields}
    unknown = [n for n in wanted if n not in names]
    if unknown or not wanted:
        raise InvalidInput(
            f"fields must name choice or multichoice fields of the schema: {sorted(names)}",
            [{"field": "fields", "reason": f"not a predictable field: {n}"} for n in unknown],
        )
    return [f for f in fields if f.name in wanted]


def field_specs(fields: list[FieldType]) -> tuple[FieldSpec, ...]:
    return tuple(FieldSpec(f.name, f.type_name, tuple(getattr(f, "options", ()))) for f in fields)


def in_held_out(project_id: int, item_id: int, share: float) -> bool:
    """Whether an item is in the held-out set (when it has a human label): a fixed function
    of the item, uniform over the project's items."""
    digest = hashlib.sha256(f"labelfarm held-out v1:{project_id}:{item_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") < share * 2.0**64


def loop_field(project: Project, fields: Sequence[Any]) -> str | None:
    """The learning loop's field: the first ``choice`` field of the schema among ``fields``
    (the fields a version predicts: field objects, their names or their spec dicts), or None."""
    names = {_field_name(f) for f in fields}
    for f in project.schema.fields:
        if f.type_name == "choice" and f.name in names:
            return str(f.name)
    return None


def _field_name(f: Any) -> str:
    if isinstance(f, str):
        return f
    return str(f["name"] if isinstance(f, dict) else f.name)


def _restrict(value: Any, fields: list[FieldType]) -> dict[str, Any]:
    """The predicted fields of a label (those it answers)."""
    if not isinstance(value, dict):
        return {}
    return {f.name: value[f.name] for f in fields if value.get(f.name) is not None}


@transaction("read")
def split(tx: CoreTx, project: Project, fields: list[FieldType]) -> Split:
    """Every labelled item of the project: the ones that train, and the held-out set."""
    out = Split([], [])
    models = load_annotator_models(tx, project.id)
    candidates = tx.rows(CANDIDATES, {"p": project.id})
    for chunk in chunks(candidates):
        ids = [c.id for c in chunk if not c.is_gold]
        by_item: dict[int, list[Annotation]] = defaultdict(list)
        reviews: dict[int, dict[str, Any]] = {}
        if ids:
            for a in tx.rows(ANNOTATIONS, {"p": project.id, "ids": ids}):
                by_item[a.item_id].append(a)
            reviews = newest_reviews(tx, project.id, ids)
        for c in chunk:
            _place(out, project, fields, models, c, by_item.get(c.id, []), reviews.get(c.id))
    return out


def _place(
    out: Split,
    project: Project,
    fields: list[FieldType],
    models: Any,
    item: Candidate,
    annotations: list[Annotation],
    review: dict[str, Any] | None,
) -> None:
    """Put one item in the training or the held-out set (or neither, when its final label
    answers none of the predicted fields)."""
    if item.is_gold:
        label = _restrict(loads(item.gold) if item.gold else None, fields)
        if label:
            out.evaluate.append(Example(item.id, label, GOLD))
            out.n_gold += 1
        return  # gold never trains
    if review is not None:
        label = _restrict(review["value"], fields)
        if not label:
            return
        example = Example(item.id, label, REVIEWED, [int(review["id"])])
    else:
        rows = [{"id": a.id, "user_id": a.user_id, "value": a.value} for a in annotations]
        derived = item_label(models, project, rows) if rows else None
        label = _restrict(derived["value"] if derived else None, fields)
        if not label or derived is None:
            return
        newest = {a.user_id: a.id for a in annotations}  # in id order: the last one stays
        example = Example(item.id, label, AGGREGATED, sorted(newest.values()), derived["method"])
    if in_held_out(project.id, item.id, project.holdout_share):
        out.evaluate.append(example)
        out.n_held_out += 1
    else:
        out.train.append(example)


def labels_of(examples: list[Example], fields: list[FieldType]) -> dict[str, list[Any]]:
    """The predictors' labels: per field, each example's answer or None."""
    return {f.name: [e.label.get(f.name) for e in examples] for f in fields}


def training_set_json(
    project: Project,
    version: int,
    predictor: str,
    params: dict[str, Any],
    fields: list[FieldType],
    data: Split,
) -> bytes:
    """The record of what trained a version (stored as ``training-set.json``)."""
    record = {
        "format": FORMAT,
        "project_id": project.id,
        "version": version,
        "predictor": predictor,
        "params": params,
        "schema_version": project.schema_version,
        "fields": [s.to_dict() for s in field_specs(fields)],
        "holdout_share": project.holdout_share,
        "excluded": {"gold": data.n_gold, "held_out": data.n_held_out},
        "items": [e.to_json() for e in data.train],
    }
    return dumps(record).encode()


def read_training_set(blob: bytes) -> tuple[dict[str, Any], list[Example]]:
    """A stored training set: its header, and its examples in training order."""
    record = loads(blob)
    if not isinstance(record, dict) or record.get("format") != FORMAT:
        raise ValueError("not a labelfarm training set")
    examples = [
        Example(
            int(e["id"]),
            dict(e["label"]),
            e["source"],
            e.get("annotation_ids") or ([e["review_id"]] if e.get("review_id") else []),
            e.get("method", ""),
        )
        for e in record.pop("items")
    ]
    return record, examples


def check_request(
    project: Project, predictor: Any, params: Any, fields: Any
) -> tuple[str, dict[str, Any], list[FieldType]]:
    """A training request's predictor, its parameters and the fields, checked (a 422 names
    what is wrong: an unknown predictor lists the valid names)."""
    if not isinstance(predictor, str) or not predictor:
        raise InvalidInput(
            f"name a predictor, one of {list(registry.names())}", [{"field": "predictor"}]
        )
    if params is None:
        params = {}
    if not isinstance(params, dict):
        raise InvalidInput("params must be an object", [{"field": "params"}])
    if fields is not None and not (
        isinstance(fields, list) and all(isinstance(f, str) for f in fields)
    ):
        raise InvalidInput("fields must be a list of field names", [{"field": "fields"}])
    chosen = predicted_fields(project, fields)
    registry.create(predictor, field_specs(chosen), params)  # checks the name and parameters
    return predictor, dict(params), chosen


def version_fields(project: Project, version: ModelVersion) -> list[FieldType]:
    """The project's fields a version predicts, as the schema has them now: a 422 when the
    schema changed them (options added, removed or reordered) since the version trained."""
    current = {f.name: f for f in project.schema.fields}
    out = []
    for spec in version.fields:
        f = current.get(spec["name"])
        options = list(getattr(f, "options", ()))
        if f is None or f.type_name != spec["type"] or options != list(spec["options"]):
            raise InvalidInput(
                f"field {spec['name']!r} changed since model version {version.version} was "
                "trained: train a new version",
                [{"field": "version", "reason": f"schema changed: {spec['name']}"}],
            )
        out.append(f)
    return out
