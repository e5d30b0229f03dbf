"""What executors run: fitting and predicting as module-level functions of plain data.

Both are pure and deterministic, and their arguments and results pickle, so a Ray worker on
another machine computes exactly what the local worker would.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from labelfarm.ml.predictors.base import FieldSpec, ItemInput
from labelfarm.ml.predictors.registry import create, load


@dataclass(frozen=True)
class FitTask:
    name: str
    fields: tuple[FieldSpec, ...]
    params: dict[str, Any]
    items: list[ItemInput]
    labels: dict[str, list[Any]] = field(default_factory=dict)


@dataclass(frozen=True)
class PredictTask:
    name: str
    blob: bytes
    items: list[ItemInput]


def fit_task(task: FitTask) -> bytes:
    """Train ``task.name`` on the task's items and labels; the saved model."""
    predictor = create(task.name, task.fields, task.params)
    return predictor.fit(task.items, task.labels).save()


def predict_task(task: PredictTask) -> dict[str, np.ndarray]:
    """The saved model's probabilities for the task's items, field by field."""
    return load(task.name, task.blob).predict_proba(task.items)
