"""The PostgreSQL fast path of :func:`.submit.store`, and the answer to a replayed entry
(both paths answer replays the same way).
"""

from __future__ import annotations

from typing import Any, NamedTuple

from labelfarm.db.tx import Sql, Tx
from labelfarm.services.projects import Project
from labelfarm.services.tasks.entries import Entry
from labelfarm.services.tasks.openness import open_expr


class Inserted(NamedTuple):
    client_id: str | None  # None in the row that tells whether the batch was the usual case
    id: int


class Stored(NamedTuple):
    client_id: str
    id: int
    item_id: int
    status: str
    late_reason: str | None
    excluded: str | None


STORED = Sql(
    "SELECT client_id, id, item_id, status, late_reason, excluded FROM annotations "
    "WHERE user_id = :u AND client_id IN :cids",
    row=Stored,
)


def add_replays(
    tx: Tx, user_id: int, entries: list[Entry], results: dict[str, dict[str, Any]]
) -> None:
    """Entries whose client id was already stored answer with the stored row."""
    replays = [e.client_id for e in entries if e.client_id not in results]
    if replays:
        for s in tx.rows(STORED, {"u": user_id, "cids": replays}):
            results[s.client_id] = {
                "annotation_id": s.id,
                "item_id": s.item_id,
                "status": s.status,
                "late_reason": s.late_reason,
            }
            if s.excluded is not None:
                results[s.client_id]["excluded"] = s.excluded


# What store() does for the usual batch, in one statement (one round trip, durable on its
# own): every entry is for a distinct, non-gold item the annotator holds a live lease on, and
# the annotator is neither paused nor failed (their work would be excluded).
# The leases (and their items, in item order, as store()'s updates go) are locked first; if
# any entry is not such a case, the statement writes nothing and the batch takes the general
# path. It must agree with store(): tests run both on the same inputs and compare the rows.
SUBMIT_LEASED = Sql(
    "WITH lease AS (SELECT a.id, a.item_id FROM assignments a JOIN items i ON i.id = a.item_id "
    "WHERE a.user_id = :u AND a.project_id = :p AND a.item_id = ANY(:items) "
    "AND a.state = 'leased' AND a.expires_at > :now AND i.gold IS NULL "
    "ORDER BY a.item_id FOR NO KEY UPDATE OF a, i), "
    "ok AS (SELECT COUNT(*) = :k AND NOT EXISTS (SELECT 1 FROM annotator_status s "
    "WHERE s.project_id = :p AND s.user_id = :u AND s.state IN ('paused', 'failed')) AS ok "
    "FROM lease), "
    "ins AS (INSERT INTO annotations (project_id, item_id, user_id, client_id, value, "
    "schema_version, status, corrects_id, from_prediction, verified, duration_ms, created_at) "
    "SELECT :p, e.item_id, :u, e.client_id, e.value, :sv, 'accepted', e.corrects, "
    "e.from_prediction, e.verified, e.duration_ms, :now FROM unnest(:items::int[], "
    ":cids::text[], :vals::text[], :corrects::int[], :fromp::bool[], :verif::bool[], "
    ":durs::int[]) AS e(item_id, client_id, value, corrects, from_prediction, verified, "
    "duration_ms) "
    "WHERE (SELECT ok FROM ok) "
    "ON CONFLICT (user_id, client_id) DO NOTHING RETURNING client_id, id, item_id), "
    "fin AS (UPDATE assignments SET state = 'submitted', finished_at = :now FROM ins "
    "JOIN lease ON lease.item_id = ins.item_id WHERE assignments.id = lease.id), "
    "bump AS (UPDATE items SET n_leased = n_leased - 1, n_submitted = n_submitted + 1, "
    f"is_open = {open_expr('-1', '1')} FROM ins WHERE items.id = ins.item_id) "
    "SELECT client_id, id FROM ins "
    "UNION ALL SELECT NULL, CASE WHEN ok THEN 1 ELSE 0 END FROM ok",
    row=Inserted,
    postgresql_only=True,
)


def submit_in_one_statement(
    tx: Tx, project: Project, user_id: int, entries: list[Entry], now: float
) -> list[dict[str, Any]] | None:
    """The fast path of :func:`store`: the batch in one statement if it is the usual case;
    None (nothing written) if not."""
    items = [e.item_id for e in entries]
    if len(set(items)) != len(items):  # corrections within the batch
        return None
    rows = tx.rows(
        SUBMIT_LEASED,
        {
            "u": user_id,
            "p": project.id,
            "now": now,
            "k": len(items),
            "sv": project.schema_version,
            "items": items,
            "cids": [e.client_id for e in entries],
            "vals": [e.value for e in entries],
            "corrects": [e.corrects for e in entries],
            "fromp": [e.from_prediction for e in entries],
            "verif": [e.verified for e in entries],
            "durs": [e.duration_ms for e in entries],
            **project.open_params,
        },
    )
    if not next(r.id for r in rows if r.client_id is None):
        return None
    inserted = {r.client_id: r.id for r in rows if r.client_id is not None}
    results = {
        e.client_id: {
            "annotation_id": inserted[e.client_id],
            "item_id": e.item_id,
            "status": "accepted",
            "late_reason": None,
        }
        for e in entries
        if e.client_id in inserted
    }
    add_replays(tx, user_id, entries, results)
    return [{"id": e.client_id, **results[e.client_id]} for e in entries]
