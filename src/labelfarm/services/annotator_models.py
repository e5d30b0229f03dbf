"""Fitted annotator models: per-annotator confusion matrices (Dawid-Skene) and gold-based
weights, per field of a project; how they are stored and read back.

Fitting lives in :mod:`labelfarm.services.fitting`; this module only holds the models,
so the hot path (adaptive overlap) can read them without pulling in the fitting code.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from dataclasses import field as dc_field
from typing import Any

import numpy as np
from sqlalchemy import delete, select

from labelfarm.db import tables
from labelfarm.db.tx import CoreTx
from labelfarm.jsonutil import dumps, loads
from labelfarm.ml.labels import FloatArray
from labelfarm.schema import FieldType
from labelfarm.services.projects import Project

PRIOR_STRENGTH = 2.0  # pseudo-counts per row of an annotator's confusion matrix
PRIOR_ACCURACY = 0.7  # the share of those pseudo-counts on the diagonal


# -- models ----------------------------------------------------------------------------------
def prior_confusion(n_classes: int) -> FloatArray:
    """The confusion matrix assumed for an annotator without evidence (rows sum to 1)."""
    if n_classes == 1:
        return np.ones((1, 1))
    conf = np.full((n_classes, n_classes), (1.0 - PRIOR_ACCURACY) / (n_classes - 1))
    np.fill_diagonal(conf, PRIOR_ACCURACY)
    return conf


@dataclass(frozen=True)
class ClassModel:
    """A fitted Dawid-Skene model of one categorical decision.

    ``annotators`` maps a user id to its row in ``confusion`` ``(n_annotators, K, K)``;
    ``accuracy`` is each annotator's class-prior-weighted accuracy.
    """

    classes: tuple[str, ...]
    class_priors: FloatArray
    annotators: dict[int, int]
    confusion: FloatArray
    accuracy: dict[int, float] = dc_field(default_factory=dict)
    log_confusion: FloatArray = dc_field(init=False, repr=False, compare=False)
    log_default: FloatArray = dc_field(init=False, repr=False, compare=False)
    log_priors: FloatArray = dc_field(init=False, repr=False, compare=False)
    positions: dict[str, int] = dc_field(init=False, repr=False, compare=False)

    @classmethod
    def prior(cls, classes: Sequence[str]) -> ClassModel:
        k = len(classes)
        return cls(tuple(classes), np.full(k, 1.0 / k), {}, np.zeros((0, k, k)))

    def __post_init__(self) -> None:
        k = len(self.classes)
        object.__setattr__(self, "log_confusion", np.log(np.maximum(self.confusion, 1e-300)))
        object.__setattr__(self, "log_default", np.log(prior_confusion(k)))
        object.__setattr__(self, "log_priors", np.log(np.maximum(self.class_priors, 1e-300)))
        object.__setattr__(self, "positions", {c: i for i, c in enumerate(self.classes)})

    def index(self, value: Any) -> int | None:
        return self.positions.get(value) if isinstance(value, str) else None

    def posterior(self, votes: Iterable[tuple[int, int]]) -> FloatArray:
        """Class posterior of one item from ``(user_id, class index)`` votes."""
        log_post = self.log_priors.copy()
        for user, k in votes:
            row = self.annotators.get(user)
            table = self.log_default if row is None else self.log_confusion[row]
            log_post = log_post + table[:, k]
        post = np.exp(log_post - log_post.max())  # a softmax; cheaper than logsumexp here
        return np.asarray(post / post.sum(), dtype=np.float64)

    def to_json(self) -> dict[str, Any]:
        users = sorted(self.annotators, key=self.annotators.__getitem__)
        return {
            "classes": list(self.classes),
            "class_priors": np.round(self.class_priors, 8).tolist(),
            "annotators": users,
            "confusion": np.round(self.confusion, 8).tolist(),
            "accuracy": [round(self.accuracy.get(u, float("nan")), 6) for u in users],
        }

    @classmethod
    def from_json(cls, raw: Mapping[str, Any]) -> ClassModel:
        users = [int(u) for u in raw["annotators"]]
        k = len(raw["classes"])
        conf = np.asarray(raw["confusion"], dtype=np.float64).reshape(len(users), k, k)
        return cls(
            classes=tuple(raw["classes"]),
            class_priors=np.asarray(raw["class_priors"], dtype=np.float64),
            annotators={u: i for i, u in enumerate(users)},
            confusion=conf,
            accuracy=dict(zip(users, (float(a) for a in raw.get("accuracy", [])), strict=False)),
        )


@dataclass(frozen=True)
class FieldModel:
    """What was fitted for one field: a class model (choice), one per option (multichoice),
    and gold-based annotator weights (every field)."""

    field: str
    kind: str  # dawid-skene | dawid-skene-per-option | weights
    classes: ClassModel | None = None
    options: dict[str, ClassModel] = dc_field(default_factory=dict)
    weights: dict[int, float] = dc_field(default_factory=dict)
    n_annotations: int = 0
    fitted_at: float | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "classes": self.classes.to_json() if self.classes is not None else None,
            "options": {o: m.to_json() for o, m in self.options.items()},
            "weights": {str(u): round(w, 6) for u, w in sorted(self.weights.items())},
        }

    @classmethod
    def from_json(
        cls, name: str, raw: Mapping[str, Any], n_annotations: int, fitted_at: float
    ) -> FieldModel:
        return cls(
            field=name,
            kind=raw["kind"],
            classes=ClassModel.from_json(raw["classes"]) if raw.get("classes") else None,
            options={o: ClassModel.from_json(m) for o, m in (raw.get("options") or {}).items()},
            weights={int(u): float(w) for u, w in (raw.get("weights") or {}).items()},
            n_annotations=n_annotations,
            fitted_at=fitted_at,
        )


@dataclass(frozen=True)
class AnnotatorModels:
    """The fitted models of a project, by field name. Missing fields use the priors."""

    project_id: int
    fields: dict[str, FieldModel] = dc_field(default_factory=dict)

    @classmethod
    def from_rows(
        cls, project_id: int, rows: Iterable[tuple[str, str, int, float]]
    ) -> AnnotatorModels:
        """From stored rows ``(field, model JSON, n_annotations, fitted_at)``."""
        fields = {
            name: FieldModel.from_json(name, loads(raw), n, fitted_at)
            for name, raw, n, fitted_at in rows
        }
        return cls(project_id, fields)

    def weight(self, field_name: str, user_id: int) -> float:
        fm = self.fields.get(field_name)
        if fm is None or not fm.weights:
            return 1.0
        return fm.weights.get(user_id, 0.5)

    def class_model(self, f: FieldType) -> ClassModel:
        fm = self.fields.get(f.name)
        options = tuple(getattr(f, "options", ()))
        if fm is not None and fm.classes is not None and fm.classes.classes == options:
            return fm.classes
        return _prior_model(options)

    def option_model(self, f: FieldType, option: str) -> ClassModel:
        fm = self.fields.get(f.name)
        if fm is not None and option in fm.options:
            return fm.options[option]
        return _prior_model(("no", "yes"))

    @property
    def fitted_at(self) -> float | None:
        times = [fm.fitted_at for fm in self.fields.values() if fm.fitted_at is not None]
        return max(times) if times else None


_PRIORS: dict[tuple[str, ...], ClassModel] = {}


def _prior_model(classes: tuple[str, ...]) -> ClassModel:
    model = _PRIORS.get(classes)
    if model is None:
        model = _PRIORS[classes] = ClassModel.prior(classes)
    return model


# -- storage ---------------------------------------------------------------------------------
def load_annotator_models(tx: CoreTx, project: Project | int) -> AnnotatorModels:
    """The stored models of a project (empty, i.e. the priors, before the first fit)."""
    project_id = project if isinstance(project, int) else project.id
    t = tables.annotator_models
    rows = tx.execute(
        select(t.c.field, t.c.model, t.c.n_annotations, t.c.fitted_at).where(
            t.c.project_id == project_id
        )
    )
    return AnnotatorModels.from_rows(project_id, rows)


def store_annotator_models(tx: CoreTx, models: AnnotatorModels) -> None:
    tx.execute(
        delete(tables.annotator_models).where(
            tables.annotator_models.c.project_id == models.project_id
        )
    )
    rows = [
        {
            "project_id": models.project_id,
            "field": fm.field,
            "model": dumps(fm.to_json()),
            "n_annotations": fm.n_annotations,
            "fitted_at": fm.fitted_at,
        }
        for fm in models.fields.values()
    ]
    if rows:
        tx.execute(tables.annotator_models.insert(), rows)
