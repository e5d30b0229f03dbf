"""A submitted batch, checked as a whole before any transaction opens.

One bad entry refuses the batch with every problem located (entry index, field, reason),
and nothing is stored. Service callers name items by ``item_id``; the annotator's API names
them by ``task``, the handle it was given (:mod:`.handles`), which ``item_of`` resolves.
Each entry's value is validated by the project's compiled schema and kept canonical and
JSON-encoded, ready to store.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from labelfarm.db.tables import MAX_INT
from labelfarm.errors import InvalidInput
from labelfarm.jsonutil import dumps
from labelfarm.schema import FieldError
from labelfarm.services.projects import Project
from labelfarm.services.tasks.handles import UnknownTask

MAX_BATCH = 5000


_COMMON_KEYS = frozenset({"id", "value", "duration_ms", "corrects", "from_prediction", "verified"})


@dataclass(slots=True)
class Entry:
    client_id: str
    item_id: int
    value: str  # validated, canonical, JSON-encoded
    duration_ms: int | None
    corrects: int | None
    from_prediction: bool
    # claimed: the prediction accepted unchanged (verify mode); the server checks it
    verified: bool = False


def _whole(value: Any, low: int) -> bool:
    """A whole number from ``low`` to what an Integer column holds (ids, milliseconds)."""
    return isinstance(value, int) and not isinstance(value, bool) and low <= value <= MAX_INT


def validate_batch(
    project: Project, batch: Any, *, item_of: Callable[[Any], int] | None = None
) -> list[Entry]:
    """Check every entry; raise InvalidInput listing every problem, or return the entries.

    Entries name their item by ``item_id``, or by ``task`` when ``item_of`` is given: it
    returns the task's item id or raises :class:`~.handles.UnknownTask`."""
    if not isinstance(batch, list) or not batch:
        raise InvalidInput("'annotations' must be a non-empty list", [{"field": "annotations"}])
    if len(batch) > MAX_BATCH:
        raise InvalidInput(
            f"at most {MAX_BATCH:,} annotations per batch", [{"field": "annotations"}]
        )
    problems: list[dict[str, Any]] = []
    entries: list[Entry] = []
    seen: set[str] = set()
    ref = "item_id" if item_of is None else "task"
    keys = _COMMON_KEYS | {ref}

    def bad(i: int, field: str, reason: str) -> None:
        problems.append({"index": i, "field": field, "reason": reason})

    for i, raw in enumerate(batch):
        if not isinstance(raw, dict):
            bad(i, "", f"an entry is an object with id, {ref} and value")
            continue
        for key in sorted(raw.keys() - keys):
            bad(i, key, _unknown_key(key, ref, keys))
        cid = raw.get("id")
        item_id, unresolved = _item(raw, item_of)
        if not isinstance(cid, str) or not 1 <= len(cid) <= 64 or "\x00" in cid:
            bad(i, "id", "a client-generated id of 1-64 characters is required")
        elif cid in seen:
            bad(i, "id", "the same id appears twice in the batch")
        else:
            seen.add(cid)
        if unresolved:
            bad(i, ref, unresolved)
        elif not _whole(item_id, 1):
            bad(i, "item_id", "must be an item id (a whole number)")
        duration = raw.get("duration_ms")
        if duration is not None and not _whole(duration, 0):
            bad(i, "duration_ms", "must be a whole number of milliseconds")
        corrects = raw.get("corrects")
        if corrects is not None and not _whole(corrects, 1):
            bad(i, "corrects", "must be the id of the annotation this one corrects")
        verified = raw.get("verified", False)
        if not isinstance(verified, bool):
            bad(i, "verified", "must be true or false")
        try:
            value = project.schema.validate(raw.get("value"))
        except FieldError as exc:
            bad(i, f"value.{exc.path}" if exc.path else "value", exc.reason)
            continue
        if isinstance(cid, str) and isinstance(item_id, int):
            entries.append(
                Entry(
                    cid,
                    item_id,
                    dumps(value),
                    duration,
                    corrects,
                    bool(raw.get("from_prediction")),
                    verified is True,
                )
            )
    if problems:
        raise InvalidInput(f"{len(problems)} problem(s) in the submitted batch", problems)
    return entries


def _item(raw: dict[str, Any], item_of: Callable[[Any], int] | None) -> tuple[Any, str | None]:
    """The entry's item id (with ``item_of``: resolved from its task), or why there is none."""
    if item_of is None:
        return raw.get("item_id"), None
    if "task" not in raw:
        return None, "the task's handle (from next or checkout) is required"
    try:
        return item_of(raw["task"]), None
    except UnknownTask:
        return None, "unknown task: not one handed to you in this project"


def _unknown_key(key: str, ref: str, keys: frozenset[str]) -> str:
    if key == "item_id" and ref == "task":
        return "send the task's handle as 'task' (item ids are not part of the annotator's API)"
    return f"unknown key; valid: {sorted(keys)}"
