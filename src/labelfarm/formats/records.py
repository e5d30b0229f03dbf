"""Turning a loose row (a JSON object, a CSV row) into an ItemRecord, with located problems.

Reserved keys: ``data`` (the item's data; without it every other key is data),
``external_id`` (or ``id``), ``priority``, ``deadline`` (ISO-8601), ``media`` (a file path
relative to the imported file, or an ``http(s)://`` URL on a host of ``url_hosts``, which
the server fetches), ``prediction`` / ``predictions`` (model output to pre-fill),
``gold`` (the known answer: the item becomes a gold task, mixed in blind) and ``gold_kind``
(``control``, the default: never shown, measures annotators; ``training``: its answer is shown,
to annotators in qualification). Tables carry gold in columns (:func:`gold_from_cells`).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import orjson

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
        "gold_kind",
    }
)
GOLD_KINDS = ("control", "training")
GOLD_PREFIX = "gold."  # a table column per field of the gold answer: gold.<field>


def record_from_object(
    obj: Any,
    where: str,
    schema: Schema,
    base_dir: Path | None,
    url_hosts: tuple[str, ...] = (),
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
        _media(obj["media"], base_dir, record, bad, url_hosts)
    preds = obj.get("predictions", [obj["prediction"]] if "prediction" in obj else [])
    if not isinstance(preds, list):
        bad("predictions", "must be a list")
    else:
        for i, pred in enumerate(preds):
            _prediction(pred, f"predictions[{i}]", schema, record, bad)
    problems += read_gold(obj, where, schema, record)
    return problems or record


def read_gold(
    obj: dict[str, Any], where: str, schema: Schema, record: ItemRecord
) -> list[RowProblem]:
    """Set the record's gold answer and kind from ``gold`` and ``gold_kind``; the problems."""
    problems = []
    kind = obj.get("gold_kind")
    if kind is not None and kind not in GOLD_KINDS:
        reason = f"must be one of {list(GOLD_KINDS)}, got {kind!r}"
        problems.append(RowProblem(where, "gold_kind", reason))
    if obj.get("gold") is None:
        if kind is not None:
            reason = "a gold kind needs the gold answer ('gold')"
            problems.append(RowProblem(where, "gold_kind", reason))
        return problems
    try:
        record.gold = schema.validate(obj["gold"])
    except FieldError as exc:
        problems.append(RowProblem(where, f"gold.{exc.path}".rstrip("."), exc.reason))
    if kind in GOLD_KINDS:
        record.gold_kind = kind
    return problems


def gold_from_cells(cells: dict[str, str], schema: Schema) -> dict[str, Any]:
    """A table row's gold cells (:func:`is_gold_column`) as :func:`record_from_object`
    reads them: ``gold`` and ``gold_kind``.

    The answer comes either whole, as a JSON object in a ``gold`` column, or a field at a
    time in ``gold.<field>`` columns, each cell written as the CSV export writes the field
    (a choice or text as it is, a number, multichoice options separated by ``|``, other
    types as JSON). Empty cells say nothing: a row whose gold cells are all empty is not
    gold. ``gold_kind`` is ``control`` (the default) or ``training``. A cell that cannot
    be read is left as text, for the check to report where it is.
    """
    out: dict[str, Any] = {}
    per_field: dict[str, Any] = {}
    for name, cell in cells.items():
        if name.startswith(GOLD_PREFIX):
            if cell != "":
                key = name[len(GOLD_PREFIX) :]
                f = schema.by_name.get(key)
                per_field[key] = _cell_value(cell, f.type_name if f else "")
        elif cell != "":
            out[name] = _json(cell) if name == "gold" else cell
    if per_field:
        out["gold"] = per_field
    return out


def is_gold_column(name: str) -> bool:
    return name in ("gold", "gold_kind") or name.startswith(GOLD_PREFIX)


def gold_header_problems(names: list[str], schema: Schema) -> list[RowProblem]:
    """What is wrong with a table header's gold columns (checked once, before the rows)."""
    problems = []
    per_field = [n for n in names if n.startswith(GOLD_PREFIX)]
    if per_field and "gold" in names:
        reason = "use either a 'gold' column (a JSON object) or 'gold.<field>' columns"
        problems.append(RowProblem("line 1", "gold", reason))
    for name in per_field:
        if name[len(GOLD_PREFIX) :] not in schema.by_name:
            reason = f"no such field; the schema's fields are {list(schema.by_name)}"
            problems.append(RowProblem("line 1", name, reason))
    return problems


def _cell_value(cell: str, type_name: str) -> Any:
    if type_name in ("choice", "text"):
        return cell
    if type_name == "multichoice":
        return cell.split("|")
    return _json(cell)


def _json(cell: str) -> Any:
    try:
        return orjson.loads(cell)
    except orjson.JSONDecodeError:
        return cell


def _media(
    value: Any, base_dir: Path | None, record: ItemRecord, bad: Any, url_hosts: tuple[str, ...]
) -> None:
    if not isinstance(value, str) or not value:
        bad("media", "must be a file path")
        return
    if value.startswith(("http://", "https://")):
        _media_url(value, record, bad, url_hosts)
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


def _media_url(value: str, record: ItemRecord, bad: Any, url_hosts: tuple[str, ...]) -> None:
    """A media URL the server may fetch: http(s), at most 2000 characters, on a host of
    the server's ``audio_url_hosts`` setting."""
    try:
        host = (urlsplit(value).hostname or "").lower()
    except ValueError:
        host = ""
    if len(value) > 2000 or not host:
        bad("media", "must be an http(s) URL of at most 2000 characters with a host name")
    elif host not in {h.lower() for h in url_hosts}:
        allowed = ", ".join(url_hosts) or "none"
        bad("media", f"{host!r} is not a host of the audio_url_hosts setting (allowed: {allowed})")
    else:
        record.media_url = value


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
