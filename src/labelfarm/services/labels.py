"""An item's current label, derived from its annotations (never stored by hand).

Each annotator's newest annotation of the item counts (a correction replaces what it
corrects); each field's type aggregates the values, giving a value and a confidence.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from labelfarm.schema import Schema

METHOD = "field-vote"  # per field: weighted vote, medoid or median as the field type defines


def latest_per_annotator(annotations: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """The newest annotation of each annotator (by id), in annotator order of first work."""
    newest: dict[Any, dict[str, Any]] = {}
    for ann in annotations:
        key = ann["annotator"]
        if key not in newest or ann["id"] > newest[key]["id"]:
            newest[key] = ann
    return list(newest.values())


def current_label(schema: Schema, annotations: Sequence[dict[str, Any]]) -> dict[str, Any] | None:
    """``{"value", "confidence", "method", "n_annotators"}`` or None without annotations."""
    if not annotations:
        return None
    latest = latest_per_annotator(annotations)
    value: dict[str, Any] = {}
    confidence: dict[str, float] = {}
    for field in schema.fields:
        values = [a["value"][field.name] for a in latest if field.name in a["value"]]
        if not values:
            continue
        v, c = field.aggregate(values)
        value[field.name] = v
        confidence[field.name] = round(float(c), 6)
    return {
        "value": value,
        "confidence": confidence,
        "method": METHOD,
        "n_annotators": len(latest),
    }
