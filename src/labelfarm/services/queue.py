"""The leased task queue: ``next`` and ``skip``.

Invariants (proved by tests on SQLite and PostgreSQL, under concurrency):

* an item is handed to at most ``overlap`` distinct annotators at once, counting live
  leases and submitted annotations: ``items.is_open`` is kept equal to
  ``n_leased + n_submitted < overlap`` by every statement that changes the counters;
* an annotator never gets the same item twice: one ``assignments`` row per (item, user),
  unique in the database, whatever became of the lease;
* an expired lease stops counting: expired leases are reclaimed (bounded batch, via the
  expiry index) at the start of each ``next`` of the project.

Each call is one short transaction. On PostgreSQL candidate items are taken with
``FOR UPDATE SKIP LOCKED``, so concurrent annotators never wait on each other; on SQLite
the process's single writer serialises the transaction (``BEGIN IMMEDIATE``). The cost of a
call depends on ``n`` and on the caller's own open items, not on the size of the project:
every statement is an index range scan.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from sqlalchemy import Connection, bindparam, text

from labelfarm.errors import Conflict, InvalidInput, NotFound
from labelfarm.services.jsonutil import loads
from labelfarm.services.projects import Project

RECLAIM_BATCH = 500

_ORDER = {
    "fifo": "i.id",
    "priority": "i.priority DESC, i.deadline_key, i.id",
}

_RECLAIM = {
    dialect: text(
        "SELECT id, item_id FROM assignments "
        "WHERE project_id = :p AND state = 'leased' AND expires_at <= :now "
        f"ORDER BY expires_at LIMIT {RECLAIM_BATCH}{lock}"
    )
    for dialect, lock in (("sqlite", ""), ("postgresql", " FOR UPDATE SKIP LOCKED"))
}

_MARK_EXPIRED = text(
    "UPDATE assignments SET state = 'expired', finished_at = :now WHERE id IN :ids"
).bindparams(bindparam("ids", expanding=True))

# Counter changes keep is_open true to its definition in the same statement.
_BUMP_ITEM = text(
    "UPDATE items SET n_leased = n_leased + :dl, n_submitted = n_submitted + :ds, "
    "is_open = (n_leased + :dl + n_submitted + :ds) < :overlap WHERE id = :id"
)

_HELD = text(
    "SELECT i.id, i.data, i.media_sha256, a.expires_at FROM assignments a "
    "JOIN items i ON i.id = a.item_id "
    "WHERE a.user_id = :u AND a.project_id = :p AND a.state = 'leased' AND a.expires_at > :now "
    "ORDER BY a.id LIMIT :n"
)


def _candidates_sql(ordering: str, dialect: str) -> Any:
    lock = " FOR UPDATE OF i SKIP LOCKED" if dialect == "postgresql" else ""
    return text(
        "SELECT i.id, i.data, i.media_sha256 FROM items i "
        "WHERE i.project_id = :p AND i.is_open = :open "
        "AND NOT EXISTS (SELECT 1 FROM assignments a WHERE a.item_id = i.id AND a.user_id = :u) "
        f"ORDER BY {_ORDER[ordering]} LIMIT :n{lock}"
    )


_CANDIDATES = {(o, d): _candidates_sql(o, d) for o in _ORDER for d in ("sqlite", "postgresql")}

_PREDICTIONS = text(
    "SELECT item_id, model, value, score FROM predictions WHERE item_id IN :ids ORDER BY id"
).bindparams(bindparam("ids", expanding=True))


def reclaim_expired(conn: Connection, project: Project, now: float) -> int:
    """Mark expired leases of the project as such and free their places. Bounded work."""
    rows = conn.execute(_RECLAIM[conn.dialect.name], {"p": project.id, "now": now}).all()
    if not rows:
        return 0
    conn.execute(_MARK_EXPIRED, {"ids": [r.id for r in rows], "now": now})
    per_item = Counter(r.item_id for r in rows)
    conn.execute(
        _BUMP_ITEM,
        [
            {"id": item_id, "dl": -k, "ds": 0, "overlap": project.overlap}
            for item_id, k in sorted(per_item.items())
        ],
    )
    return len(rows)


def next_tasks(
    conn: Connection, project: Project, user_id: int, n: int, now: float
) -> list[dict[str, Any]]:
    """Lease up to ``n`` tasks to ``user_id``; live leases the user holds come back first.

    Returns ``[{"item_id", "data", "media_sha256", "lease_expires_at", "prediction"}]``.
    Call inside a write transaction.
    """
    if not 1 <= n <= 1000:
        raise InvalidInput("n must be from 1 to 1000", [{"field": "n"}])
    reclaim_expired(conn, project, now)
    tasks = [
        _task(r.id, r.data, r.media_sha256, r.expires_at)
        for r in conn.execute(_HELD, {"u": user_id, "p": project.id, "now": now, "n": n})
    ]
    need = n - len(tasks)
    if need > 0:
        rows = conn.execute(
            _CANDIDATES[(project.ordering, conn.dialect.name)],
            {"p": project.id, "open": True, "u": user_id, "n": need},
        ).all()
        if rows:
            expires = now + project.lease_seconds
            conn.execute(
                text(
                    "INSERT INTO assignments (project_id, item_id, user_id, state, leased_at, "
                    "expires_at) VALUES (:p, :i, :u, 'leased', :now, :exp)"
                ),
                [
                    {"p": project.id, "i": r.id, "u": user_id, "now": now, "exp": expires}
                    for r in rows
                ],
            )
            conn.execute(
                _BUMP_ITEM,
                [{"id": r.id, "dl": 1, "ds": 0, "overlap": project.overlap} for r in rows],
            )
            tasks.extend(_task(r.id, r.data, r.media_sha256, expires) for r in rows)
    if tasks:
        _attach_predictions(conn, tasks)
    return tasks


def _task(item_id: int, data: str, media: str | None, expires: float) -> dict[str, Any]:
    return {
        "item_id": item_id,
        "data": loads(data),
        "media_sha256": media,
        "lease_expires_at": expires,
        "prediction": None,
    }


def _attach_predictions(conn: Connection, tasks: list[dict[str, Any]]) -> None:
    """The newest prediction of each task's item, to pre-fill the annotator's fields."""
    by_item = {t["item_id"]: t for t in tasks}
    for row in conn.execute(_PREDICTIONS, {"ids": list(by_item)}):
        by_item[row.item_id]["prediction"] = {
            "model": row.model,
            "value": loads(row.value),
            "score": row.score,
        }


def skip(
    conn: Connection, project: Project, user_id: int, item_id: int, reason: str, now: float
) -> dict[str, Any]:
    """Give a leased item back with a reason; the annotator will not get it again."""
    reason = (reason or "").strip()
    if not reason or len(reason) > 500:
        raise InvalidInput("a skip needs a reason (1-500 characters)", [{"field": "reason"}])
    lock = " FOR UPDATE" if conn.dialect.name == "postgresql" else ""
    row = conn.execute(
        text(
            "SELECT a.id, a.state FROM assignments a JOIN items i ON i.id = a.item_id "
            f"WHERE a.item_id = :i AND a.user_id = :u AND i.project_id = :p{lock}"
        ),
        {"i": item_id, "u": user_id, "p": project.id},
    ).first()
    if row is None:
        exists = conn.execute(
            text("SELECT 1 FROM items WHERE id = :i AND project_id = :p AND status = 'ready'"),
            {"i": item_id, "p": project.id},
        ).first()
        if exists is None:
            raise NotFound(f"no item {item_id} in this project", [{"field": "item_id"}])
        conn.execute(
            text(
                "INSERT INTO assignments (project_id, item_id, user_id, state, leased_at, "
                "expires_at, finished_at, skip_reason) "
                "VALUES (:p, :i, :u, 'skipped', :now, :now, :now, :r)"
            ),
            {"p": project.id, "i": item_id, "u": user_id, "now": now, "r": reason},
        )
        return {"item_id": item_id, "status": "skipped"}
    if row.state == "submitted":
        raise Conflict(f"item {item_id} is already submitted; submit a correction instead")
    if row.state == "skipped":
        return {"item_id": item_id, "status": "skipped"}
    conn.execute(
        text(
            "UPDATE assignments SET state = 'skipped', finished_at = :now, skip_reason = :r "
            "WHERE id = :id"
        ),
        {"now": now, "r": reason, "id": row.id},
    )
    if row.state == "leased":
        conn.execute(_BUMP_ITEM, {"id": item_id, "dl": -1, "ds": 0, "overlap": project.overlap})
    return {"item_id": item_id, "status": "skipped"}
