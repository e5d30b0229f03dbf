"""Submitting annotations: idempotent, append-only, never refusing late work.

A submission is a batch of entries, each with a client-generated id. Replaying a batch
stores nothing twice and answers the same (the stored rows are the answer). An entry
whose lease expired, whose item is already full, or that had no lease at all (offline
work) is stored with ``status = 'late'`` and a reason, never refused. A later entry of the
same annotator for the same item is a correction: a new row pointing at the one it
corrects.

The batch is validated as a whole first: one bad entry refuses the batch with every
problem located (entry index, field, reason), and nothing is stored.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, bindparam, text
from sqlalchemy.exc import IntegrityError

from labelfarm.errors import InvalidInput
from labelfarm.schema import FieldError
from labelfarm.services.jsonutil import dumps
from labelfarm.services.projects import Project
from labelfarm.services.queue import _BUMP_ITEM

_ENTRY_KEYS = frozenset({"id", "item_id", "value", "duration_ms", "corrects", "from_prediction"})


@dataclass(slots=True)
class Entry:
    client_id: str
    item_id: int
    value: str  # validated, canonical, JSON-encoded
    duration_ms: int | None
    corrects: int | None
    from_prediction: bool


def validate_batch(project: Project, batch: Any) -> list[Entry]:
    """Check every entry; raise InvalidInput listing every problem, or return the entries."""
    if not isinstance(batch, list) or not batch:
        raise InvalidInput("'annotations' must be a non-empty list", [{"field": "annotations"}])
    if len(batch) > 5000:
        raise InvalidInput("at most 5,000 annotations per batch", [{"field": "annotations"}])
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
        if not isinstance(cid, str) or not 1 <= len(cid) <= 64:
            bad(i, "id", "a client-generated id of 1-64 characters is required")
        elif cid in seen:
            bad(i, "id", "the same id appears twice in the batch")
        else:
            seen.add(cid)
        if not isinstance(item_id, int) or isinstance(item_id, bool):
            bad(i, "item_id", "must be an item id (a whole number)")
        duration = raw.get("duration_ms")
        if duration is not None and (not isinstance(duration, int) or duration < 0):
            bad(i, "duration_ms", "must be a whole number of milliseconds")
        corrects = raw.get("corrects")
        if corrects is not None and (not isinstance(corrects, int) or isinstance(corrects, bool)):
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


def submit(
    conn: Connection, project: Project, user_id: int, entries: list[Entry], now: float
) -> list[dict[str, Any]]:
    """Store a validated batch in the caller's write transaction; one result per entry."""
    pg = conn.dialect.name == "postgresql"
    item_ids = sorted({e.item_id for e in entries})
    known = {
        r.id
        for r in conn.execute(
            text(
                "SELECT id FROM items WHERE id IN :ids AND project_id = :p AND status = 'ready'"
            ).bindparams(bindparam("ids", expanding=True)),
            {"ids": item_ids, "p": project.id},
        )
    }
    missing = [
        {"index": i, "field": "item_id", "reason": f"no item {e.item_id} in this project"}
        for i, e in enumerate(entries)
        if e.item_id not in known
    ]
    if missing:
        raise InvalidInput("annotations refer to items not in this project", missing)

    # Lock this user's assignments first (PostgreSQL), in item order: concurrent replays of
    # the same batch queue here, and then see each other's rows below.
    assignments = {
        r.item_id: r
        for r in conn.execute(
            text(
                "SELECT id, item_id, state, expires_at FROM assignments "
                "WHERE user_id = :u AND item_id IN :ids ORDER BY item_id"
                + (" FOR UPDATE" if pg else "")
            ).bindparams(bindparam("ids", expanding=True)),
            {"u": user_id, "ids": item_ids},
        )
    }
    stored = {
        r.client_id: r
        for r in conn.execute(
            text(
                "SELECT client_id, id, item_id, status, late_reason FROM annotations "
                "WHERE user_id = :u AND client_id IN :cids"
            ).bindparams(bindparam("cids", expanding=True)),
            {"u": user_id, "cids": [e.client_id for e in entries]},
        )
    }
    fresh = [e for e in entries if e.client_id not in stored]
    if fresh:
        _store(conn, project, user_id, fresh, assignments, now)
        for r in conn.execute(
            text(
                "SELECT client_id, id, item_id, status, late_reason FROM annotations "
                "WHERE user_id = :u AND client_id IN :cids"
            ).bindparams(bindparam("cids", expanding=True)),
            {"u": user_id, "cids": [e.client_id for e in fresh]},
        ):
            stored[r.client_id] = r
    return [
        {
            "id": e.client_id,
            "annotation_id": stored[e.client_id].id,
            "item_id": stored[e.client_id].item_id,
            "status": stored[e.client_id].status,
            "late_reason": stored[e.client_id].late_reason,
        }
        for e in entries
    ]


def _store(
    conn: Connection,
    project: Project,
    user_id: int,
    fresh: list[Entry],
    assignments: dict[int, Any],
    now: float,
) -> None:
    rows: list[dict[str, Any]] = []
    bumps: dict[int, tuple[int, int]] = {}
    finished: list[int] = []
    new_assignments: list[dict[str, Any]] = []
    resubmitted = [
        e.item_id for e in fresh if (a := assignments.get(e.item_id)) and a.state == "submitted"
    ]
    previous = _latest_own(conn, user_id, resubmitted) if resubmitted else {}
    for e in sorted(fresh, key=lambda e: e.item_id):
        a = assignments.get(e.item_id)
        status, reason, corrects = "accepted", None, e.corrects
        if e.item_id in bumps or (a is not None and a.state == "submitted"):
            corrects = corrects or previous.get(e.item_id)  # a correction of own earlier work
        elif a is None:
            status, reason = "late", "no_lease"
            new_assignments.append({"p": project.id, "i": e.item_id, "u": user_id, "now": now})
            bumps[e.item_id] = (0, 1)
        else:
            if a.state == "leased" and a.expires_at > now:
                bumps[e.item_id] = (-1, 1)
            elif a.state == "leased":
                status, reason = "late", "lease_expired"
                bumps[e.item_id] = (-1, 1)
            else:  # expired (reclaimed) or skipped
                status, reason = "late", "lease_expired" if a.state == "expired" else "skipped"
                bumps[e.item_id] = (0, 1)
            finished.append(a.id)
        rows.append(
            {
                "project_id": project.id,
                "item_id": e.item_id,
                "user_id": user_id,
                "client_id": e.client_id,
                "value": e.value,
                "schema_version": project.schema_version,
                "status": status,
                "late_reason": reason,
                "corrects_id": corrects,
                "from_prediction": e.from_prediction,
                "duration_ms": e.duration_ms,
                "created_at": now,
            }
        )
    if finished:
        conn.execute(
            text(
                "UPDATE assignments SET state = 'submitted', finished_at = :now WHERE id IN :ids"
            ).bindparams(bindparam("ids", expanding=True)),
            {"now": now, "ids": finished},
        )
    if new_assignments:
        try:
            conn.execute(
                text(
                    "INSERT INTO assignments (project_id, item_id, user_id, state, leased_at, "
                    "expires_at, finished_at) VALUES (:p, :i, :u, 'submitted', :now, :now, :now)"
                ),
                new_assignments,
            )
        except IntegrityError as exc:  # a concurrent submission took the place first
            raise RetrySubmit() from exc
    if bumps:
        conn.execute(
            _BUMP_ITEM,
            [
                {"id": item_id, "dl": dl, "ds": ds, "overlap": project.overlap}
                for item_id, (dl, ds) in sorted(bumps.items())
            ],
        )
    conn.execute(
        text(
            "INSERT INTO annotations (project_id, item_id, user_id, client_id, value, "
            "schema_version, status, late_reason, corrects_id, from_prediction, duration_ms, "
            "created_at) VALUES (:project_id, :item_id, :user_id, :client_id, :value, "
            ":schema_version, :status, :late_reason, :corrects_id, :from_prediction, "
            ":duration_ms, :created_at)"
        ),
        rows,
    )


def _latest_own(conn: Connection, user_id: int, item_ids: list[int]) -> dict[int, int | None]:
    """The id of the user's newest annotation of each item, where there is one."""
    rows = conn.execute(
        text(
            "SELECT item_id, MAX(id) AS id FROM annotations "
            "WHERE user_id = :u AND item_id IN :ids GROUP BY item_id"
        ).bindparams(bindparam("ids", expanding=True)),
        {"u": user_id, "ids": sorted(set(item_ids))},
    )
    return {r.item_id: r.id for r in rows}


class RetrySubmit(Exception):
    """Raised when a concurrent submission won a race; the caller retries the transaction."""
