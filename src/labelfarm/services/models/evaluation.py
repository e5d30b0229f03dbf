"""A version's evaluation on the held-out set, per predicted field.

For a ``choice`` field: :func:`labelfarm.ml.evaluation.evaluate_choice` (accuracy, macro-F1,
per-class precision/recall/F1, calibration error, confusion matrix) over the held-out items
whose truth answers the field. For a ``multichoice`` field: the same per option, as a
two-class question (chosen or not), with their means as the field's accuracy, macro-F1 and
calibration error.

Stored as ``{"fields": {name: {...}}, "n", "n_gold", "n_reviewed", "left_out"}``: ``n`` items
evaluated, ``left_out`` the held-out items the version trained on (an item reviewed after
the version was trained may have joined the held-out set since; it is not evaluated).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from labelfarm.ml.evaluation import evaluate_choice
from labelfarm.schema import FieldType
from labelfarm.services.models.training import GOLD, Example

NO, YES = "no", "yes"


def evaluate(
    fields: Sequence[FieldType],
    examples: Sequence[Example],
    proba: dict[str, np.ndarray],
    *,
    left_out: int = 0,
) -> dict[str, Any]:
    """The evaluation of predictions ``proba`` (rows in the order of ``examples``)."""
    out: dict[str, Any] = {
        "n": len(examples),
        "n_gold": sum(e.source == GOLD for e in examples),
        "n_reviewed": sum(e.source != GOLD for e in examples),
        "left_out": left_out,
        "fields": {},
    }
    for f in fields:
        options = list(getattr(f, "options", ()))
        p = np.asarray(proba.get(f.name, np.zeros((0, len(options)))), dtype=np.float64)
        if f.type_name == "choice":
            rows = [i for i, e in enumerate(examples) if e.label.get(f.name) in options]
            truth = [str(examples[i].label[f.name]) for i in rows]
            out["fields"][f.name] = (
                evaluate_choice(truth, p[rows], options) if rows else _nothing(options)
            )
        else:
            rows = [i for i, e in enumerate(examples) if isinstance(e.label.get(f.name), list)]
            out["fields"][f.name] = _multichoice(
                options, [examples[i].label[f.name] for i in rows], p[rows]
            )
    return out


def _nothing(options: list[str]) -> dict[str, Any]:
    """No held-out item answers the field: nothing measured (rather than a zero)."""
    return {"n": 0, "accuracy": None, "macro_f1": None, "ece": None, "options": options}


def _multichoice(options: list[str], truth: list[list[str]], p: np.ndarray) -> dict[str, Any]:
    if not truth:
        return _nothing(options)
    per_option = {}
    for k, option in enumerate(options):
        y = [YES if option in t else NO for t in truth]
        two = np.column_stack([1.0 - p[:, k], p[:, k]]) if len(truth) else np.zeros((0, 2))
        per_option[option] = evaluate_choice(y, two, [NO, YES])

    def mean(key: str) -> float | None:
        values = [r[key] for r in per_option.values() if r.get(key) is not None]
        return float(np.mean(values)) if values else None

    return {
        "n": len(truth),
        "accuracy": mean("accuracy"),
        "macro_f1": mean("macro_f1"),
        "ece": mean("ece"),
        "per_option": per_option,
        "options": options,
    }
