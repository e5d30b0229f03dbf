"""Turning a loose row (a JSON object, a CSV row) into an ItemRecord, with located problems.

Reserved keys: ``data`` (the item's data; without it every other key is data),
``external_id`` (or ``id``), ``priority``, ``deadline`` (ISO-8601), ``media`` (a file path
relative to the imported file), ``prediction`` / ``predictions`` (model output to pre-fill),
``gold`` (the known answer: the item becomes a gold task, mixed in blind).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from labelfarm.formats.registry import ItemRecord, RowProblem
from labelfarm.jsonutil import parse_time
from labelfarm.schema import FieldError, Schema

RESERVED = frozenset(
    {
        "data",
        "external_id",
        "id",
        "priority",
        "deadline",
        "media",
        "prediction",
        "predictions",
        "gold",
    }
)


def record_from_object(
    obj: Any, where: str, schema: Schema, base_dir: Path | None
) -> ItemRecord | list[RowProblem]:
    if type(obj) is dict and len(obj) == 1:  # fast path: a plain {"data": {...}} row
        data = obj.get("data")
        if type(data) is dict and data and not schema.validate_data(data):
            return ItemRecord(data=data)
    problems: list[RowProblem] = []

    def bad(field: str, reason: str) -> None:
        problems.append(RowProblem(where, field, reason))

    if not isinstance(obj, dict):
        return [RowProblem(where, "", f"expected a JSON object, got {type(obj).__name__}")]
    if "data" in obj:
        data = obj["data"]
        for key in sorted(obj.keys() - RESERVED):
            bad(key, f"unknown field; with 'data', the other keys must be {sorted(RESERVED)}")
    else:
        data = {k: v for k, v in obj.items() if k not in RESERVED}
    if isinstance(data, dict) and not data:
        bad("data", "the item has no data")
    for key, reason in schema.validate_data(data):
        bad(f"data.{key}" if key != "data" else "data", reason)
    record = ItemRecord(data=data if isinstance(data, dict) else {})
    ext = obj.get("external_id", obj.get("id"))
    if ext is not None:
        if isinstance(ext, bool) or not isinstance(ext, str | int) or len(str(ext)) > 500:
            bad("external_id", "must be a string or whole number of at most 500 characters")
        else:
            record.external_id = str(ext)
    priority = obj.get("priority", 0)
    if isinstance(priority, bool) or not isinstance(priority, int) or abs(priority) > 2**31:
        bad("priority", f"must be a whole number, got {priority!r}")
    else:
        record.priority = priority
    if obj.get("deadline") is not None:
        try:
            record.deadline = parse_time(obj["deadline"])
            if not math.isfinite(record.deadline):
                raise ValueError
        except (ValueError, TypeError, OverflowError):
            bad("deadline", f"must be an ISO-8601 time, got {obj['deadline']!r}")
    if obj.get("media") is not None:
        _media(obj["media"], base_dir, record, bad)
    preds = obj.get("predictions", [obj["prediction"]] if "prediction" in obj else [])
    if not isinstance(preds, list):
        bad("predictions", "must be a list")
    else:
        for i, pred in enumerate(preds):
            _prediction(pred, f"predictions[{i}]", schema, record, bad)
    if obj.get("gold") is not None:
        try:
            record.gold = schema.validate(obj["gold"])
        except FieldError as exc:
            bad(f"gold.{exc.path}".rstrip("."), exc.reason)
    return problems or record


def _media(value: Any, base_dir: Path | None, record: ItemRecord, bad: Any) -> None:
    if not isinstance(value, str) or not value:
        bad("media", "must be a file path")
        return
    if base_dir is None:
        bad("media", "a media path needs a file import from a folder (use the CLI or a folder)")
        return
    path = (base_dir / value).resolve()
    if not path.is_relative_to(base_dir.resolve()):
        bad("media", f"{value!r} points outside the imported folder")
    elif not path.is_file():
        bad("media", f"file {value!r} not found")
    else:
        record.media_path = path


def _prediction(pred: Any, field: str, schema: Schema, record: ItemRecord, bad: Any) -> None:
    if not isinstance(pred, dict):
        bad(field, "a prediction is an object {value, model?, score?}")
        return
    value = pred.get("value", pred if "value" not in pred and "model" not in pred else None)
    try:
        value = schema.validate(value)
    except FieldError as exc:
        bad(f"{field}.value.{exc.path}".rstrip("."), exc.reason)
        return
    score = pred.get("score")
    if score is not None and (isinstance(score, bool) or not isinstance(score, int | float)):
        bad(f"{field}.score", "must be a number")
        return
    record.predictions.append(
        {"value": value, "model": str(pred.get("model") or "import"), "score": score}
    )
