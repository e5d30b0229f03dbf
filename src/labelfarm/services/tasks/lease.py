"""``next``: lease up to ``n`` tasks to an annotator, one short transaction.

Invariants (proved by tests on SQLite and PostgreSQL, under concurrency):

* an item is handed to at most ``overlap`` distinct annotators at once, counting live
  leases and submitted annotations: ``items.is_open`` (:mod:`.openness`) is kept true by
  every statement that changes the counters;
* an annotator never gets the same item twice: one ``assignments`` row per (item, user),
  unique in the database, whatever became of the lease;
* an expired lease stops counting: expired leases are reclaimed (bounded batch, via the
  expiry index) at the start of each ``next`` of the project;
* an annotator holds at most the project's ``max_live_leases`` live leases (``next`` and
  offline checkout together): a call asking for more gets the room left, or nothing.
  The caller's live leases are read anyway (they come back first), so counting them costs
  no query. On PostgreSQL two calls of one annotator at the same moment would each count the
  leases committed before they began; each call bumps the annotator's row of
  ``lease_gates`` (:data:`PASS_GATE`), so the later one waits for the earlier and counts
  its leases too (the general path, whose later statements see the earlier call's commit)
  or notices it and runs again (the one-statement path). On SQLite the single writer
  serialises them.

On PostgreSQL candidate items are taken with ``FOR UPDATE SKIP LOCKED``, so concurrent
annotators never wait on each other; on SQLite the process's single writer serialises the
transaction. The cost of a call depends on ``n`` and the caller's own open items, not on the
project's size: every statement is an index range scan. Gold items are mixed in by
:mod:`.gold`, the annotator's standing decided by :mod:`.standing`.
"""

from __future__ import annotations

import random
from collections import Counter
from typing import Any, NamedTuple

from labelfarm.db.dialect import Dialect
from labelfarm.db.orderings import ORDERINGS
from labelfarm.db.tx import Sql, Tx, transaction
from labelfarm.errors import InvalidInput
from labelfarm.jsonutil import loads
from labelfarm.services.projects import Project
from labelfarm.services.tasks import gold, prefill, standing, standing_summary
from labelfarm.services.tasks.openness import BUMP_ITEM, NOT_MINE, open_expr

_rng = random.Random()

RECLAIM_BATCH = 500
MAX_N = 1000


class Expired(NamedTuple):
    id: int
    item_id: int


class Held(NamedTuple):
    id: int
    data: str
    media_sha256: str | None
    expires_at: float


class Candidate(NamedTuple):
    id: int
    data: str
    media_sha256: str | None
    priority: int
    deadline_key: float
    score: float


RECLAIM = Sql(
    "SELECT id, item_id FROM assignments "
    "WHERE project_id = :p AND state = 'leased' AND expires_at <= :now "
    f"ORDER BY expires_at LIMIT {RECLAIM_BATCH}",
    row=Expired,
    lock="FOR UPDATE SKIP LOCKED",
)
MARK_EXPIRED = Sql("UPDATE assignments SET state = 'expired', finished_at = :now WHERE id IN :ids")
HELD = Sql(
    "SELECT i.id, i.data, i.media_sha256, a.expires_at FROM assignments a "
    "JOIN items i ON i.id = a.item_id "
    "WHERE a.user_id = :u AND a.project_id = :p AND a.state = 'leased' AND a.expires_at > :now "
    "ORDER BY a.id LIMIT :n",
    row=Held,
)
_CANDIDATE = (
    "SELECT i.id, i.data, i.media_sha256, i.priority, i.deadline_key, i.score FROM items i "
    f"WHERE i.project_id = :p AND i.is_open = :open AND {NOT_MINE}"
)
CANDIDATES = {
    name: Sql(
        f"{_CANDIDATE} ORDER BY {o.index_order('i')} LIMIT :n",
        row=Candidate,
        lock="FOR UPDATE OF i SKIP LOCKED",
    )
    for name, o in ORDERINGS.items()
}
# The annotator's version in the project, bumped by every next (PostgreSQL): holds the row's
# lock until the call commits, so that concurrent calls of one annotator are serialised.
_GATE = (
    "INSERT INTO lease_gates (project_id, user_id, version) VALUES (:p, :u, 1) "
    "ON CONFLICT (project_id, user_id) DO UPDATE SET version = lease_gates.version + 1 "
    "RETURNING version"
)
PASS_GATE = Sql(_GATE, postgresql_only=True)
INSERT_LEASE = Sql(
    "INSERT INTO assignments (project_id, item_id, user_id, state, leased_at, expires_at) "
    "VALUES (:p, :i, :u, 'leased', :now, :exp)"
)
LEASE_ITEMS = Sql(
    f"UPDATE items SET n_leased = n_leased + 1, is_open = {open_expr('1')} WHERE id IN :ids"
)


@transaction("lease")
def reclaim_expired(tx: Tx, project: Project, now: float) -> int:
    """Mark expired leases of the project as such and free their places. Bounded work."""
    with tx.transaction():
        return _reclaim(tx, project, now)


def _reclaim(tx: Tx, project: Project, now: float) -> int:
    rows = tx.rows(RECLAIM, {"p": project.id, "now": now})
    if not rows:
        return 0
    tx.run(MARK_EXPIRED, {"ids": [r.id for r in rows], "now": now})
    per_item = Counter(r.item_id for r in rows)
    tx.many(
        BUMP_ITEM,
        [
            {"id": item_id, "dl": -k, "ds": 0, **project.open_params}
            for item_id, k in sorted(per_item.items())
        ],
    )
    return len(rows)


@transaction("lease")
def next_tasks(
    tx: Tx,
    project: Project,
    user_id: int,
    n: int,
    now: float,
    rng: random.Random | None = None,
    *,
    prefill_key: bytes | None = None,
) -> list[dict[str, Any]]:
    """Lease up to ``n`` tasks to ``user_id`` (see :func:`next_with_standing`)."""
    return next_with_standing(tx, project, user_id, n, now, rng, prefill_key=prefill_key)[0]


@transaction("lease")
def next_with_standing(
    tx: Tx,
    project: Project,
    user_id: int,
    n: int,
    now: float,
    rng: random.Random | None = None,
    *,
    prefill_key: bytes | None = None,
) -> tuple[list[dict[str, Any]], standing.Standing | None]:
    """Lease up to ``n`` tasks to ``user_id``; live leases the user holds come back first.

    Returns ``[{"item_id", "data", "media_sha256", "lease_expires_at", "prediction"}]`` and,
    in a project with qualification or an accuracy floor, the annotator's standing.
    Gold items are mixed in blind at the project's ``gold_rate`` (``rng`` decides, and
    shuffles each batch that may hold gold); an annotator still qualifying gets only gold,
    a paused or failed one gets nothing. A task's ``prediction`` is its pre-fill
    (:mod:`.prefill`: on gold, deliberately wrong on a share decided with ``prefill_key``).
    """
    if not 1 <= n <= MAX_N:
        raise InvalidInput(f"n must be from 1 to {MAX_N}", [{"field": "n"}])
    current = None
    if tx.dialect is Dialect.POSTGRESQL and not project.hands_out_gold:
        tasks = lease_in_one_statement(tx, project, user_id, n, now)
        if not tasks:
            current = stopped(tx, project, user_id)
    else:
        with tx.transaction():
            tasks, current = lease(tx, project, user_id, n, now, rng or _rng)
    if tasks and project.has_predictions:
        prefill.attach(tx, project, tasks, prefill_key)
    return tasks, current


STOPPED = Sql(
    "SELECT state, reason, evidence FROM annotator_status WHERE project_id = :p AND user_id = :u "
    "AND state IN ('paused', 'failed')",
    row=standing.StandingRow,
)


def stopped(tx: Tx, project: Project, user_id: int) -> standing.Standing | None:
    """The standing of an annotator a manager paused (or failed) in a project where no
    rule decides standing, else None: such an annotator gets nothing."""
    row = tx.one(STOPPED, {"p": project.id, "u": user_id})
    if row is None:
        return None
    return standing.Standing(row.state, row.reason, loads(row.evidence or "{}"))


def lease(
    tx: Tx, project: Project, user_id: int, n: int, now: float, rng: random.Random
) -> tuple[list[dict[str, Any]], standing.Standing | None]:
    """The general path, on both databases, inside the caller's transaction: reclaim
    expired leases, the annotator's standing, their live leases, gold, then new items."""
    if tx.dialect is Dialect.POSTGRESQL:  # SQLite's single writer serialises the calls
        tx.run(PASS_GATE, {"p": project.id, "u": user_id})
    _reclaim(tx, project, now)
    n_gold, current = 0, None
    if project.needs_standing:
        current = standing.current(tx, project, user_id, now)
        if current.state in ("paused", "failed"):
            return [], current
        if current.state == "qualifying":  # only gold until the qualification is done
            n = min(n, max(0, current.qualification_of - current.qualification_done))
            n_gold = n
    elif project.has_stopped:  # no rule pauses anyone here, a manager did
        current = stopped(tx, project, user_id)
        if current is not None:
            return [], current
    held = tx.rows(HELD, {"u": user_id, "p": project.id, "now": now, "n": n})
    # HELD reads up to n live leases: below n, every one the caller holds
    need = min(n, project.max_live_leases) - len(held)
    picked: list[gold.GoldItem | Candidate] = []
    if need > 0 and (n_gold or project.gold_rate > 0):
        k = need if n_gold else sum(rng.random() < project.gold_rate for _ in range(need))
        picked.extend(gold.pick_for(tx, project, user_id, k, rng, qualifying=bool(n_gold)))
        need = 0 if n_gold else need - len(picked)
    if need > 0:
        params = {"p": project.id, "open": True, "u": user_id, "n": need}
        candidates = tx.rows(CANDIDATES[project.ordering], params)
        picked.extend(candidates)
    if n_gold or project.gold_rate > 0:
        # a batch that may hold gold comes in random order, so no place in it tells gold;
        # leases are stored in this order, and held leases come back in it
        rng.shuffle(picked)
    expires = now + project.lease_seconds
    if picked:
        tx.many(
            INSERT_LEASE,
            [
                {"p": project.id, "i": r.id, "u": user_id, "now": now, "exp": expires}
                for r in picked
            ],
        )
        tx.run(LEASE_ITEMS, {"ids": [r.id for r in picked], **project.open_params})
    tasks = [_task(r.id, r.data, r.media_sha256, r.expires_at) for r in held]
    tasks += [_task(r.id, r.data, r.media_sha256, expires) for r in picked]
    return tasks, standing_summary.with_quality(tx, project, user_id, current, now)


# -- PostgreSQL fast path ---------------------------------------------------------------------
# What lease() does for a project without gold or standing, in one statement (one round
# trip, committed on its own). It must agree with lease(): tests run both on the same
# inputs and compare the stored rows.


class OneStatementRow(NamedTuple):
    part: int  # 0: a live lease the caller holds, 1: a new lease, 2: the count reclaimed,
    # 3: whether another call of the caller's committed meanwhile (1: nothing new leased)
    id: int  # the item's; in parts 2 and 3, the number
    data: str  # the columns below are NULL in parts 2 and 3
    media_sha256: str | None
    expires_at: float
    priority: int
    deadline_key: float
    score: float


def _one_statement(ordering: str) -> str:
    """Reclaim expired leases (when ``:reclaim``), return the caller's live leases and lease
    new items.

    All parts see the statement's snapshot, and a row may change only once per statement,
    so the items a reclaim frees could not be leased in it: a statement that reclaims leases
    nothing new, and the caller runs it once more without reclaiming. Like :func:`lease`, the
    freed items then take their places in the queue's order.

    The caller's row of ``lease_gates`` is bumped in the statement (waiting for a concurrent
    call of the caller's to commit); if the version it bumped is not the one the statement's
    snapshot saw, that call's leases are not in the snapshot: nothing new is leased, and the
    caller runs the statement once more.
    """
    order = ORDERINGS[ordering]
    return (
        "WITH exp AS (SELECT id, item_id FROM assignments WHERE :reclaim AND project_id = :p "
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
        "stop AS (SELECT 1 FROM annotator_status WHERE project_id = :p AND user_id = :u "
        "AND state IN ('paused', 'failed')), "
        f"gate AS ({_GATE}), "
        "seen AS (SELECT COALESCE(MAX(version), 0) AS version FROM lease_gates "
        "WHERE project_id = :p AND user_id = :u), "
        "clear AS (SELECT (SELECT version FROM gate) = (SELECT version FROM seen) + 1 AS ok), "
        "held AS (SELECT i.id, i.data, i.media_sha256, a.expires_at FROM assignments a "
        "JOIN items i ON i.id = a.item_id WHERE a.user_id = :u AND a.project_id = :p "
        "AND a.state = 'leased' AND a.expires_at > :now AND NOT EXISTS (SELECT 1 FROM stop) "
        "ORDER BY a.id LIMIT :n), "
        # a plain LIMIT, so the planner walks the queue index (an expression here makes it
        # cost a large fetch and sort); the caller's live leases are subtracted after
        f"cand AS ({_CANDIDATE} AND NOT EXISTS (SELECT 1 FROM freed) "
        f"ORDER BY {order.index_order('i')} LIMIT :room FOR UPDATE OF i SKIP LOCKED), "
        f"take AS (SELECT * FROM cand ORDER BY {order.plain_order} "
        "LIMIT CASE WHEN (SELECT ok FROM clear) AND NOT EXISTS (SELECT 1 FROM stop) "
        "THEN GREATEST(:room - (SELECT COUNT(*) FROM held), 0) ELSE 0 END), "
        "ins AS (INSERT INTO assignments (project_id, item_id, user_id, state, leased_at, "
        "expires_at) SELECT :p, id, :u, 'leased', :now, :exp FROM take), "
        "upd AS (UPDATE items SET n_leased = n_leased + 1, "
        f"is_open = {open_expr('1')} FROM take WHERE items.id = take.id) "
        "SELECT 0, id, data, media_sha256, expires_at, 0, 0, 0.0 FROM held "
        "UNION ALL SELECT 1, id, data, media_sha256, :exp, priority, deadline_key, score "
        "FROM take "
        "UNION ALL SELECT 2, COUNT(*), NULL, NULL, NULL, 0, 0, 0.0 FROM mark "
        "UNION ALL SELECT 3, CASE WHEN ok THEN 0 ELSE 1 END, NULL, NULL, NULL, 0, 0, 0.0 "
        "FROM clear "
        "UNION ALL SELECT 4, COUNT(*), NULL, NULL, NULL, 0, 0, 0.0 FROM stop"
    )


ONE_STATEMENT = {
    name: Sql(_one_statement(name), row=OneStatementRow, postgresql_only=True) for name in ORDERINGS
}


def lease_in_one_statement(
    tx: Tx, project: Project, user_id: int, n: int, now: float
) -> list[dict[str, Any]]:
    """The fast path of :func:`lease` (PostgreSQL; no gold, no standing)."""
    params = {
        "p": project.id,
        "u": user_id,
        "n": n,
        "room": min(n, project.max_live_leases),  # held counts within it, as in lease()
        "now": now,
        "exp": now + project.lease_seconds,
        "open": True,
        **project.open_params,
    }
    statement = ONE_STATEMENT[project.ordering]
    rows = tx.rows(statement, {**params, "reclaim": True})
    # leases were reclaimed, or another call of the caller's committed meanwhile: now lease
    # (should that happen again, nothing new: the cap holds)
    if any(r.id for r in rows if r.part == 4):
        return []  # paused or failed by a manager (the caller reads the standing)
    if any(r.id for r in rows if r.part in (2, 3)):
        rows = tx.rows(statement, {**params, "reclaim": False})
    held = [r for r in rows if r.part == 0]
    new = sorted((r for r in rows if r.part == 1), key=ORDERINGS[project.ordering].sort_key)
    return [_task(r.id, r.data, r.media_sha256, r.expires_at) for r in held + new]


def _task(item_id: int, data: str, media: str | None, expires: float) -> dict[str, Any]:
    return {
        "item_id": item_id,
        "data": loads(data),
        "media_sha256": media,
        "lease_expires_at": expires,
        "prediction": None,
    }
