"""The leased task queue: ``next`` and ``skip``.

Invariants (proved by tests on SQLite and PostgreSQL, under concurrency):

* an item is handed to at most ``overlap`` distinct annotators at once, counting live
  leases and submitted annotations: ``items.is_open`` is kept equal to
  ``n_leased + n_submitted < overlap`` by every statement that changes the counters;
* an annotator never gets the same item twice: one ``assignments`` row per (item, user),
  unique in the database, whatever became of the lease;
* an expired lease stops counting: expired leases are reclaimed (bounded batch, via the
  expiry index) at the start of each ``next`` of the project.

Each call is one short transaction on a raw driver connection (:mod:`labelfarm.db.hot`).
On PostgreSQL candidate items are taken with ``FOR UPDATE SKIP LOCKED`` and leased in the
same statement (data-modifying CTEs: one round trip), so concurrent annotators never wait
on each other; on SQLite the process's single writer serialises the transaction. The cost
of a call depends on ``n`` and the caller's own open items, not on the project's size:
every statement is an index range scan.
"""

from __future__ import annotations

import random
from collections import Counter
from typing import Any

from labelfarm.db.hot import Hot, Sql, id_list
from labelfarm.errors import Conflict, InvalidInput, NotFound
from labelfarm.services import gold
from labelfarm.services.jsonutil import loads
from labelfarm.services.projects import NOT_MINE, Project, open_expr

_rng = random.Random()

RECLAIM_BATCH = 500

# The leading (project_id, is_open) are constant under the WHERE clause: naming them makes
# the order one that only the matching index gives without a sort, so the planner takes it
# even when statistics say most rows qualify (it would otherwise walk the primary key).
_ORDER = {
    "fifo": "i.project_id, i.is_open, i.id",
    "priority": "i.project_id, i.is_open, i.priority DESC, i.deadline_key, i.id",
}
_TAKE_ORDER = {"fifo": "id", "priority": "priority DESC, deadline_key, id"}
_SORT_KEY = {
    "fifo": lambda r: r[0],
    "priority": lambda r: (-r[3], r[4], r[0]),
}

RECLAIM = Sql(
    "SELECT id, item_id FROM assignments "
    "WHERE project_id = :p AND state = 'leased' AND expires_at <= :now "
    f"ORDER BY expires_at LIMIT {RECLAIM_BATCH}",
    "SELECT id, item_id FROM assignments "
    "WHERE project_id = :p AND state = 'leased' AND expires_at <= :now "
    f"ORDER BY expires_at LIMIT {RECLAIM_BATCH} FOR UPDATE SKIP LOCKED",
)
_in_ids = id_list("id", "ids")
MARK_EXPIRED = Sql(
    f"UPDATE assignments SET state = 'expired', finished_at = :now WHERE {_in_ids[0]}",
    f"UPDATE assignments SET state = 'expired', finished_at = :now WHERE {_in_ids[1]}",
)
# Counter changes keep is_open true to its definition in the same statement.
BUMP_ITEM = Sql(
    "UPDATE items SET n_leased = n_leased + :dl, n_submitted = n_submitted + :ds, "
    f"is_open = {open_expr(':dl', ':ds')} WHERE id = :id"
)
LEASE_ITEMS = Sql(
    f"UPDATE items SET n_leased = n_leased + 1, is_open = {open_expr('1')} WHERE {_in_ids[0]}"
)
INSERT_LEASE = Sql(
    "INSERT INTO assignments (project_id, item_id, user_id, state, leased_at, expires_at) "
    "VALUES (:p, :i, :u, 'leased', :now, :exp)"
)
HELD = Sql(
    "SELECT i.id, i.data, i.media_sha256, a.expires_at FROM assignments a "
    "JOIN items i ON i.id = a.item_id "
    "WHERE a.user_id = :u AND a.project_id = :p AND a.state = 'leased' AND a.expires_at > :now "
    "ORDER BY a.id LIMIT :n"
)
_CANDIDATE_WHERE = (
    f"WHERE i.project_id = :p AND i.is_open = :open AND {NOT_MINE[0]}",
    f"WHERE i.project_id = :p AND i.is_open = :open AND {NOT_MINE[1]}",
)


def _candidates(ordering: str) -> Sql:
    cols = "i.id, i.data, i.media_sha256, i.priority, i.deadline_key"
    sqlite = (
        f"SELECT {cols} FROM items i {_CANDIDATE_WHERE[0]} ORDER BY {_ORDER[ordering]} LIMIT :n"
    )
    pg = (
        f"WITH cand AS (SELECT {cols} FROM items i {_CANDIDATE_WHERE[1]} "
        f"ORDER BY {_ORDER[ordering]} LIMIT :n FOR UPDATE OF i SKIP LOCKED), "
        "ins AS (INSERT INTO assignments (project_id, item_id, user_id, state, leased_at, "
        "expires_at) SELECT :p, id, :u, 'leased', :now, :exp FROM cand), "
        "upd AS (UPDATE items SET n_leased = n_leased + 1, "
        f"is_open = {open_expr('1')} "
        "FROM cand WHERE items.id = cand.id) "
        "SELECT id, data, media_sha256, priority, deadline_key FROM cand"
    )
    return Sql(sqlite, pg)


CANDIDATES = {ordering: _candidates(ordering) for ordering in _ORDER}
_in_items = id_list("item_id", "ids")
PREDICTIONS = Sql(
    f"SELECT item_id, model, value, score FROM predictions WHERE {_in_items[0]} ORDER BY id",
    f"SELECT item_id, model, value, score FROM predictions WHERE {_in_items[1]} ORDER BY id",
)


def reclaim_expired(hot: Hot, project: Project, now: float) -> int:
    """Mark expired leases of the project as such and free their places. Bounded work."""
    with hot.transaction():
        return _reclaim(hot, project, now)


def _reclaim(hot: Hot, project: Project, now: float) -> int:
    rows = hot.rows(RECLAIM, {"p": project.id, "now": now})
    if not rows:
        return 0
    hot.run(MARK_EXPIRED, {"ids": hot.ids(r[0] for r in rows), "now": now})
    per_item = Counter(r[1] for r in rows)
    hot.many(
        BUMP_ITEM,
        [
            {"id": item_id, "dl": -k, "ds": 0, **project.open_params}
            for item_id, k in sorted(per_item.items())
        ],
    )
    return len(rows)


def next_tasks(
    hot: Hot,
    project: Project,
    user_id: int,
    n: int,
    now: float,
    rng: random.Random | None = None,
) -> list[dict[str, Any]]:
    """Lease up to ``n`` tasks to ``user_id`` (see :func:`next_with_standing`)."""
    return next_with_standing(hot, project, user_id, n, now, rng)[0]


def next_with_standing(
    hot: Hot,
    project: Project,
    user_id: int,
    n: int,
    now: float,
    rng: random.Random | None = None,
) -> tuple[list[dict[str, Any]], gold.Standing | None]:
    """Lease up to ``n`` tasks to ``user_id``; live leases the user holds come back first.

    Returns ``[{"item_id", "data", "media_sha256", "lease_expires_at", "prediction"}]`` and,
    in a project with qualification or an accuracy floor, the annotator's standing.
    Gold items are mixed in blind at the project's ``gold_rate`` (``rng`` decides); an
    annotator still qualifying gets only gold, a paused or failed one gets nothing.
    """
    if not 1 <= n <= 1000:
        raise InvalidInput("n must be from 1 to 1000", [{"field": "n"}])
    standing = None
    if hot.is_pg and not (project.needs_standing or project.gold_rate > 0):
        tasks = _next_in_one_statement(hot, project, user_id, n, now)
    else:
        with hot.transaction():
            tasks, standing = _next(hot, project, user_id, n, now, rng)
    if tasks and project.has_predictions:
        _attach_predictions(hot, tasks)
    return tasks, standing


def _next(
    hot: Hot, project: Project, user_id: int, n: int, now: float, rng: random.Random | None
) -> tuple[list[dict[str, Any]], gold.Standing | None]:
    _reclaim(hot, project, now)
    n_gold = 0
    standing = None
    if project.needs_standing:
        standing = gold.standing(hot, project, user_id, now)
        if standing.state in ("paused", "failed"):
            return [], standing
        if standing.state == "qualifying":  # only gold until the qualification is done
            n = min(n, max(0, project.qualification_n - standing.qualification_done))
            n_gold = n
    tasks = [_task(*r) for r in hot.rows(HELD, {"u": user_id, "p": project.id, "now": now, "n": n})]
    need = n - len(tasks)
    if need > 0 and (n_gold or project.gold_rate > 0):
        rng = rng or _rng
        k = need if n_gold else sum(rng.random() < project.gold_rate for _ in range(need))
        picked = gold.pick_gold(hot, project, user_id, k, now, rng)
        tasks.extend(_task(r[0], r[1], r[2], now + project.lease_seconds) for r in picked)
        need = 0 if n_gold else need - len(picked)
    if need > 0:
        expires = now + project.lease_seconds
        params = {
            "p": project.id,
            "open": True,
            "u": user_id,
            "n": need,
            "now": now,
            "exp": expires,
            **project.open_params,
        }
        rows = hot.rows(CANDIDATES[project.ordering], params)
        if rows and not hot.is_pg:  # PostgreSQL leased them in the same statement
            hot.many(
                INSERT_LEASE,
                [
                    {"p": project.id, "i": r[0], "u": user_id, "now": now, "exp": expires}
                    for r in rows
                ],
            )
            hot.run(LEASE_ITEMS, {"ids": hot.ids(r[0] for r in rows), **project.open_params})
        elif rows:
            rows.sort(key=_SORT_KEY[project.ordering])
        tasks.extend(_task(r[0], r[1], r[2], expires) for r in rows)
    return tasks, standing


def _one_statement(ordering: str) -> str:
    """PostgreSQL: reclaim expired leases, return the caller's live leases and lease new
    items, in one statement (one round trip, committed on its own).

    All parts see the statement's snapshot, so an item the reclaim frees is not leased in
    the same statement (a row may change only once per statement): when leases were
    reclaimed and fewer than ``n`` tasks came back, the caller runs it once more.
    """
    cols = "i.id, i.data, i.media_sha256, i.priority, i.deadline_key"
    return (
        "WITH exp AS (SELECT id, item_id FROM assignments WHERE project_id = :p "
        "AND state = 'leased' AND expires_at <= :now ORDER BY expires_at "
        f"LIMIT {RECLAIM_BATCH} FOR UPDATE SKIP LOCKED), "
        "mark AS (UPDATE assignments a SET state = 'expired', finished_at = :now FROM exp "
        "WHERE a.id = exp.id RETURNING a.item_id), "
        "freed AS (SELECT item_id, COUNT(*) AS k FROM mark GROUP BY item_id), "
        # the freed items are locked in id order, as submissions lock theirs, so that a
        # reclaim and a submission touching the same items cannot deadlock
        "locked AS (SELECT i.id FROM items i JOIN freed ON freed.item_id = i.id "
        "ORDER BY i.id FOR NO KEY UPDATE OF i), "
        "unlease AS (UPDATE items SET n_leased = n_leased - freed.k, "
        f"is_open = {open_expr('-freed.k')} FROM freed JOIN locked ON locked.id = freed.item_id "
        "WHERE items.id = freed.item_id), "
        "held AS (SELECT i.id, i.data, i.media_sha256, a.expires_at FROM assignments a "
        "JOIN items i ON i.id = a.item_id WHERE a.user_id = :u AND a.project_id = :p "
        "AND a.state = 'leased' AND a.expires_at > :now ORDER BY a.id LIMIT :n), "
        # a plain LIMIT, so the planner walks the queue index (an expression here makes it
        # cost a large fetch and sort); the caller's live leases are subtracted after
        f"cand AS (SELECT {cols} FROM items i {_CANDIDATE_WHERE[1]} "
        "AND i.id NOT IN (SELECT item_id FROM freed) "
        f"ORDER BY {_ORDER[ordering]} LIMIT :n FOR UPDATE OF i SKIP LOCKED), "
        f"take AS (SELECT * FROM cand ORDER BY {_TAKE_ORDER[ordering]} "
        "LIMIT GREATEST(:n - (SELECT COUNT(*) FROM held), 0)), "
        "ins AS (INSERT INTO assignments (project_id, item_id, user_id, state, leased_at, "
        "expires_at) SELECT :p, id, :u, 'leased', :now, :exp FROM take), "
        "upd AS (UPDATE items SET n_leased = n_leased + 1, "
        f"is_open = {open_expr('1')} FROM take WHERE items.id = take.id) "
        "SELECT 0, id, data, media_sha256, expires_at, 0, 0 FROM held "
        "UNION ALL SELECT 1, id, data, media_sha256, :exp, priority, deadline_key FROM take "
        "UNION ALL SELECT 2, COUNT(*), NULL, NULL, NULL, 0, 0 FROM mark"
    )


ONE_STATEMENT = {ordering: Sql("", _one_statement(ordering)) for ordering in _ORDER}


def _next_in_one_statement(
    hot: Hot, project: Project, user_id: int, n: int, now: float
) -> list[dict[str, Any]]:
    expires = now + project.lease_seconds
    statement = ONE_STATEMENT[project.ordering]
    params = {
        "p": project.id,
        "u": user_id,
        "n": n,
        "now": now,
        "exp": expires,
        "open": True,
        **project.open_params,
    }
    rows = hot.rows(statement, params)
    freed = next(r[1] for r in rows if r[0] == 2)
    if freed and sum(r[0] < 2 for r in rows) < n:  # freed places are leasable from now on
        rows = hot.rows(statement, params)
    held = [r for r in rows if r[0] == 0]
    new = sorted(
        (r for r in rows if r[0] == 1),
        key=lambda r: _SORT_KEY[project.ordering]((r[1], r[2], r[3], r[5], r[6])),
    )
    return [_task(r[1], r[2], r[3], r[4]) for r in held + new]


def _task(item_id: int, data: str, media: str | None, expires: float) -> dict[str, Any]:
    return {
        "item_id": item_id,
        "data": loads(data),
        "media_sha256": media,
        "lease_expires_at": expires,
        "prediction": None,
    }


def _attach_predictions(hot: Hot, tasks: list[dict[str, Any]]) -> None:
    """The newest prediction of each task's item, to pre-fill the annotator's fields."""
    by_item = {t["item_id"]: t for t in tasks}
    for item_id, model, value, score in hot.rows(PREDICTIONS, {"ids": hot.ids(by_item)}):
        by_item[item_id]["prediction"] = {"model": model, "value": loads(value), "score": score}


SKIP_FIND = Sql(
    "SELECT a.id, a.state FROM assignments a WHERE a.item_id = :i AND a.user_id = :u "
    "AND a.project_id = :p",
    "SELECT a.id, a.state FROM assignments a WHERE a.item_id = :i AND a.user_id = :u "
    "AND a.project_id = :p FOR UPDATE",
)
ITEM_EXISTS = Sql("SELECT 1 FROM items WHERE id = :i AND project_id = :p AND status = 'ready'")
SKIP_NEW = Sql(
    "INSERT INTO assignments (project_id, item_id, user_id, state, leased_at, expires_at, "
    "finished_at, skip_reason) VALUES (:p, :i, :u, 'skipped', :now, :now, :now, :r)"
)
SKIP_MARK = Sql(
    "UPDATE assignments SET state = 'skipped', finished_at = :now, skip_reason = :r WHERE id = :id"
)


def skip(
    hot: Hot, project: Project, user_id: int, item_id: int, reason: str, now: float
) -> dict[str, Any]:
    """Give a leased item back with a reason; the annotator will not get it again."""
    reason = (reason or "").strip()
    if not reason or len(reason) > 500:
        raise InvalidInput("a skip needs a reason (1-500 characters)", [{"field": "reason"}])
    with hot.transaction():
        return _skip(hot, project, user_id, item_id, reason, now)


def _skip(
    hot: Hot, project: Project, user_id: int, item_id: int, reason: str, now: float
) -> dict[str, Any]:
    row = hot.one(SKIP_FIND, {"i": item_id, "u": user_id, "p": project.id})
    if row is None:
        if hot.one(ITEM_EXISTS, {"i": item_id, "p": project.id}) is None:
            raise NotFound(f"no item {item_id} in this project", [{"field": "item_id"}])
        hot.run(SKIP_NEW, {"p": project.id, "i": item_id, "u": user_id, "now": now, "r": reason})
        return {"item_id": item_id, "status": "skipped"}
    assignment_id, state = row
    if state == "submitted":
        raise Conflict(f"item {item_id} is already submitted; submit a correction instead")
    if state == "skipped":
        return {"item_id": item_id, "status": "skipped"}
    hot.run(SKIP_MARK, {"now": now, "r": reason, "id": assignment_id})
    if state == "leased":
        hot.run(BUMP_ITEM, {"id": item_id, "dl": -1, "ds": 0, **project.open_params})
    return {"item_id": item_id, "status": "skipped"}
