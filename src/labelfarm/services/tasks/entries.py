"""A submitted batch, checked as a whole before any transaction opens.

One bad entry refuses the batch with every problem located (entry index, field, reason),
and nothing is stored. Each entry's value is validated by the project's compiled schema and
kept canonical and JSON-encoded, ready to store.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from labelfarm.db.tables import MAX_INT
from labelfarm.errors import InvalidInput
from labelfarm.jsonutil import dumps
from labelfarm.schema import FieldError
from labelfarm.services.projects import Project

MAX_BATCH = 5000


_ENTRY_KEYS = frozenset({"id", "item_id", "value", "duration_ms", "corrects", "from_prediction"})


@dataclass(slots=True)
class Entry:
    client_id: str
    item_id: int
    value: str  # validated, canonical, JSON-encoded
    duration_ms: int | None
    corrects: int | None
    from_prediction: bool


def _whole(value: Any, low: int) -> bool:
    """A whole number from ``low`` to what an Integer column holds (ids, milliseconds)."""
    return isinstance(value, int) and not isinstance(value, bool) and low <= value <= MAX_INT


def validate_batch(project: Project, batch: Any) -> list[Entry]:
    """Check every entry; raise InvalidInput listing every problem, or return the entries."""
    if not isinstance(batch, list) or not batch:
        raise InvalidInput("'annotations' must be a non-empty list", [{"field": "annotations"}])
    if len(batch) > MAX_BATCH:
        raise InvalidInput(
            f"at most {MAX_BATCH:,} annotations per batch", [{"field": "annotations"}]
        )
    problems: list[dict[str, Any]] = []
    entries: list[Entry] = []
    seen: set[str] = set()

    def bad(i: int, field: str, reason: str) -> None:
        problems.append({"index": i, "field": field, "reason": reason})

    for i, raw in enumerate(batch):
        if not isinstance(raw, dict):
            bad(i, "", "an entry is an object with id, item_id and value")
            continue
        for key in sorted(raw.keys() - _ENTRY_KEYS):
            bad(i, key, f"unknown key; valid: {sorted(_ENTRY_KEYS)}")
        cid, item_id = raw.get("id"), raw.get("item_id")
        if not isinstance(cid, str) or not 1 <= len(cid) <= 64 or "\x00" in cid:
            bad(i, "id", "a client-generated id of 1-64 characters is required")
        elif cid in seen:
            bad(i, "id", "the same id appears twice in the batch")
        else:
            seen.add(cid)
        if not _whole(item_id, 1):
            bad(i, "item_id", "must be an item id (a whole number)")
        duration = raw.get("duration_ms")
        if duration is not None and not _whole(duration, 0):
            bad(i, "duration_ms", "must be a whole number of milliseconds")
        corrects = raw.get("corrects")
        if corrects is not None and not _whole(corrects, 1):
            bad(i, "corrects", "must be the id of the annotation this one corrects")
        try:
            value = project.schema.validate(raw.get("value"))
        except FieldError as exc:
            bad(i, f"value.{exc.path}" if exc.path else "value", exc.reason)
            continue
        if isinstance(cid, str) and isinstance(item_id, int):
            entries.append(
                Entry(
                    cid, item_id, dumps(value), duration, corrects, bool(raw.get("from_prediction"))
                )
            )
    if problems:
        raise InvalidInput(f"{len(problems)} problem(s) in the submitted batch", problems)
    return entries
