"""Logistic-regression heads over a feature matrix, one per field.

A ``choice`` field gets one multinomial logistic regression; its probabilities are laid out in
the field's option order (options never seen in training get 0). A ``multichoice`` field gets
one binary logistic regression per option (one-vs-rest): each column is that option's own
probability. An option (or field) with a single class in training answers that class's
share as a constant. Items whose label is None do not train that field.

Fitting and predicting run BLAS on one thread: it is faster here (the solver's products are
small and several threads contend) and the sums come out the same on every machine.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
from threadpoolctl import threadpool_limits

from labelfarm.errors import InvalidInput
from labelfarm.ml.predictors.base import FieldSpec

if TYPE_CHECKING:  # scikit-learn is imported where a model is made: listing predictors
    from sklearn.linear_model import LogisticRegression  # (the server) never loads it


@dataclass
class ChoiceHead:
    columns: np.ndarray  # option index of each class of the model
    model: LogisticRegression | None  # None: a constant
    constant: np.ndarray | None = None


@dataclass
class MultiHead:
    models: list[LogisticRegression | float]  # per option: a model or a constant probability


def _logreg(c: float, max_iter: int) -> LogisticRegression:
    from sklearn.linear_model import LogisticRegression

    return LogisticRegression(C=c, max_iter=max_iter, tol=1e-4, solver="lbfgs")


def _fit(model: LogisticRegression, x: np.ndarray, y: np.ndarray) -> LogisticRegression:
    from sklearn.exceptions import ConvergenceWarning

    with warnings.catch_warnings(), threadpool_limits(1):
        # a bounded number of iterations is the point: a long fit is cut, not an error
        warnings.simplefilter("ignore", ConvergenceWarning)
        return model.fit(x, y)


def choice_targets(spec: FieldSpec, values: Sequence[Any]) -> tuple[np.ndarray, np.ndarray]:
    index = {o: i for i, o in enumerate(spec.options)}
    rows, targets = [], []
    for i, v in enumerate(values):
        if v is None:
            continue
        if v not in index:
            raise InvalidInput(f"field {spec.name!r}: {v!r} is not one of its options")
        rows.append(i)
        targets.append(index[v])
    return np.asarray(rows, dtype=np.int64), np.asarray(targets, dtype=np.int64)


def multi_targets(spec: FieldSpec, values: Sequence[Any]) -> tuple[np.ndarray, np.ndarray]:
    index = {o: i for i, o in enumerate(spec.options)}
    rows, matrix = [], []
    for i, v in enumerate(values):
        if v is None:
            continue
        row = np.zeros(len(spec.options), dtype=np.int64)
        for o in v:
            if o not in index:
                raise InvalidInput(f"field {spec.name!r}: {o!r} is not one of its options")
            row[index[o]] = 1
        rows.append(i)
        matrix.append(row)
    y = np.asarray(matrix, dtype=np.int64).reshape(len(rows), len(spec.options))
    return np.asarray(rows, dtype=np.int64), y


def _rows(x: Any, rows: np.ndarray) -> Any:
    """``x[rows]``, without copying the whole matrix when every row is labelled."""
    return x if len(rows) == x.shape[0] else x[rows]


def fit_heads(
    x: np.ndarray,
    fields: Sequence[FieldSpec],
    labels: Mapping[str, Sequence[Any]],
    *,
    c: float,
    max_iter: int,
) -> dict[str, ChoiceHead | MultiHead]:
    heads: dict[str, ChoiceHead | MultiHead] = {}
    for spec in fields:
        values = labels.get(spec.name)
        if values is None:
            raise InvalidInput(f"no labels given for field {spec.name!r}")
        if len(values) != x.shape[0]:
            raise InvalidInput(f"field {spec.name!r}: {len(values)} labels for {x.shape[0]} items")
        if spec.type == "choice":
            heads[spec.name] = _fit_choice(x, spec, values, c, max_iter)
        else:
            heads[spec.name] = _fit_multi(x, spec, values, c, max_iter)
    return heads


def _fit_choice(
    x: np.ndarray, spec: FieldSpec, values: Sequence[Any], c: float, max_iter: int
) -> ChoiceHead:
    rows, y = choice_targets(spec, values)
    if len(rows) == 0:
        raise InvalidInput(f"field {spec.name!r}: no labelled item to learn from")
    classes = np.unique(y)
    if len(classes) == 1:
        constant = np.zeros(len(spec.options))
        constant[classes[0]] = 1.0
        return ChoiceHead(classes, None, constant)
    model = _fit(_logreg(c, max_iter), _rows(x, rows), y)
    return ChoiceHead(model.classes_.astype(np.int64), model)


def _fit_multi(
    x: np.ndarray, spec: FieldSpec, values: Sequence[Any], c: float, max_iter: int
) -> MultiHead:
    rows, y = multi_targets(spec, values)
    if len(rows) == 0:
        raise InvalidInput(f"field {spec.name!r}: no labelled item to learn from")
    xs = _rows(x, rows)
    models: list[LogisticRegression | float] = []
    for j in range(len(spec.options)):
        col = y[:, j]
        if col.min() == col.max():
            models.append(float(col[0]))
        else:
            models.append(_fit(_logreg(c, max_iter), xs, col))
    return MultiHead(models)


def predict_heads(
    heads: Mapping[str, ChoiceHead | MultiHead], fields: Sequence[FieldSpec], x: np.ndarray
) -> dict[str, np.ndarray]:
    with threadpool_limits(1):
        return _predict(heads, fields, x)


def _predict(
    heads: Mapping[str, ChoiceHead | MultiHead], fields: Sequence[FieldSpec], x: np.ndarray
) -> dict[str, np.ndarray]:
    out: dict[str, np.ndarray] = {}
    n = x.shape[0]
    for spec in fields:
        head = heads[spec.name]
        proba = np.zeros((n, len(spec.options)), dtype=np.float64)
        if isinstance(head, ChoiceHead):
            if head.model is None:
                assert head.constant is not None
                proba[:] = head.constant
            elif n:
                proba[:, head.columns] = head.model.predict_proba(x)
                proba /= proba.sum(axis=1, keepdims=True)  # float32 features: sum to 1 exactly
        else:
            for j, m in enumerate(head.models):
                if isinstance(m, float):
                    proba[:, j] = m
                elif n:
                    proba[:, j] = m.predict_proba(x)[:, 1]
        out[spec.name] = proba
    return out
