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
from functools import lru_cache
from typing import Any

from labelfarm.db.batches import chunks
from labelfarm.db.hot import Hot, Sql, id_list
from labelfarm.errors import InvalidInput
from labelfarm.schema import FieldError
from labelfarm.services import adaptive, gold
from labelfarm.services.jsonutil import dumps
from labelfarm.services.projects import Project, open_expr
from labelfarm.services.queue import BUMP_ITEM

_ENTRY_KEYS = frozenset({"id", "item_id", "value", "duration_ms", "corrects", "from_prediction"})


@dataclass(slots=True)
class Entry:
    client_id: str
    item_id: int
    value: str  # validated, canonical, JSON-encoded
    duration_ms: int | None
    corrects: int | None
    from_prediction: bool


class RetrySubmit(Exception):
    """A concurrent submission won a race for the same place; retry the transaction."""


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


_a_items = id_list("item_id", "ids")
_ids = id_list("id", "ids")
_cids = id_list("client_id", "cids")
_a_join = id_list("a.item_id", "ids")
ASSIGNMENTS = Sql(
    "SELECT a.item_id, a.id, a.state, a.expires_at, i.gold FROM assignments a "
    f"JOIN items i ON i.id = a.item_id WHERE a.user_id = :u AND a.project_id = :p "
    f"AND {_a_join[0]}",
    "SELECT a.item_id, a.id, a.state, a.expires_at, i.gold FROM assignments a "
    f"JOIN items i ON i.id = a.item_id WHERE a.user_id = :u AND a.project_id = :p "
    f"AND {_a_join[1]} ORDER BY a.item_id FOR UPDATE OF a",
)
KNOWN_ITEMS = Sql(
    f"SELECT id, gold FROM items WHERE project_id = :p AND status = 'ready' AND {_ids[0]}",
    f"SELECT id, gold FROM items WHERE project_id = :p AND status = 'ready' AND {_ids[1]}",
)
STORED = Sql(
    "SELECT client_id, id, item_id, status, late_reason FROM annotations "
    f"WHERE user_id = :u AND {_cids[0]}",
    "SELECT client_id, id, item_id, status, late_reason FROM annotations "
    f"WHERE user_id = :u AND {_cids[1]}",
)
LATEST_OWN = Sql(
    f"SELECT item_id, MAX(id) FROM annotations WHERE user_id = :u AND {_a_items[0]} "
    "GROUP BY item_id",
    f"SELECT item_id, MAX(id) FROM annotations WHERE user_id = :u AND {_a_items[1]} "
    "GROUP BY item_id",
)
FINISH = Sql(
    f"UPDATE assignments SET state = 'submitted', finished_at = :now WHERE {_ids[0]}",
    f"UPDATE assignments SET state = 'submitted', finished_at = :now WHERE {_ids[1]}",
)
SET_CORRECTS = Sql("UPDATE annotations SET corrects_id = :c WHERE id = :id")
NEW_ASSIGNMENT = Sql(
    "INSERT INTO assignments (project_id, item_id, user_id, state, leased_at, expires_at, "
    "finished_at) VALUES (:p, :i, :u, 'submitted', :now, :now, :now) "
    "ON CONFLICT (item_id, user_id) DO NOTHING RETURNING id"
)
INSERT_CHUNK = 400  # rows per INSERT, within both drivers' limits on parameters
_COLUMNS = (
    "project_id",
    "item_id",
    "user_id",
    "client_id",
    "value",
    "schema_version",
    "status",
    "late_reason",
    "corrects_id",
    "from_prediction",
    "duration_ms",
    "created_at",
)


@lru_cache(maxsize=INSERT_CHUNK + 1)
def _insert_annotations(n: int) -> Sql:
    """A multi-row INSERT … ON CONFLICT DO NOTHING RETURNING for ``n`` rows."""
    rows = ", ".join("(" + ", ".join(f":{c}_{i}" for c in _COLUMNS) + ")" for i in range(n))
    return Sql(
        f"INSERT INTO annotations ({', '.join(_COLUMNS)}) VALUES {rows} "
        "ON CONFLICT (user_id, client_id) DO NOTHING RETURNING client_id, id"
    )


def submit(
    hot: Hot, project: Project, user_id: int, entries: list[Entry], now: float
) -> list[dict[str, Any]]:
    """Store a validated batch in one transaction; one result per entry, in order."""
    if hot.is_pg and hot.durable and not project.adaptive:
        results = _submit_leased(hot, project, user_id, entries, now)
        if results is not None:
            return results
    with hot.transaction():
        return _submit(hot, project, user_id, entries, now)


# PostgreSQL, the usual case in one statement (one round trip, durable on its own): every
# entry is for a distinct, non-gold item the annotator holds a live lease on. The leases
# (and their items, in item order, as _submit's updates go) are locked first; if any entry
# is not such a case, the statement writes nothing and the batch takes the general path.
SUBMIT_LEASED = Sql(
    "",
    "WITH lease AS (SELECT a.id, a.item_id FROM assignments a JOIN items i ON i.id = a.item_id "
    "WHERE a.user_id = :u AND a.project_id = :p AND a.item_id = ANY(:items) "
    "AND a.state = 'leased' AND a.expires_at > :now AND i.gold IS NULL "
    "ORDER BY a.item_id FOR NO KEY UPDATE OF a, i), "
    "ok AS (SELECT COUNT(*) = :k AS ok FROM lease), "
    "ins AS (INSERT INTO annotations (project_id, item_id, user_id, client_id, value, "
    "schema_version, status, corrects_id, from_prediction, duration_ms, created_at) "
    "SELECT :p, e.item_id, :u, e.client_id, e.value, :sv, 'accepted', e.corrects, "
    "e.from_prediction, e.duration_ms, :now FROM unnest(:items::int[], :cids::text[], "
    ":vals::text[], :corrects::int[], :fromp::bool[], :durs::int[]) "
    "AS e(item_id, client_id, value, corrects, from_prediction, duration_ms) "
    "WHERE (SELECT ok FROM ok) "
    "ON CONFLICT (user_id, client_id) DO NOTHING RETURNING client_id, id, item_id), "
    "fin AS (UPDATE assignments SET state = 'submitted', finished_at = :now FROM ins "
    "JOIN lease ON lease.item_id = ins.item_id WHERE assignments.id = lease.id), "
    "bump AS (UPDATE items SET n_leased = n_leased - 1, n_submitted = n_submitted + 1, "
    f"is_open = {open_expr('-1', '1')} FROM ins WHERE items.id = ins.item_id) "
    "SELECT client_id, id FROM ins "
    "UNION ALL SELECT NULL, CASE WHEN ok THEN 1 ELSE 0 END FROM ok",
)


def _submit_leased(
    hot: Hot, project: Project, user_id: int, entries: list[Entry], now: float
) -> list[dict[str, Any]] | None:
    """The batch in one statement if it is the usual case; None (nothing written) if not."""
    items = [e.item_id for e in entries]
    if len(set(items)) != len(items):  # corrections within the batch
        return None
    rows = hot.rows(
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
            "durs": [e.duration_ms for e in entries],
            **project.open_params,
        },
    )
    if not next(r[1] for r in rows if r[0] is None):
        return None
    inserted = {r[0]: r[1] for r in rows if r[0] is not None}
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
    _add_replays(hot, user_id, entries, results)
    return [{"id": e.client_id, **results[e.client_id]} for e in entries]


def _add_replays(
    hot: Hot, user_id: int, entries: list[Entry], results: dict[str, dict[str, Any]]
) -> None:
    """Entries whose client id was already stored answer with the stored row."""
    replays = [e.client_id for e in entries if e.client_id not in results]
    if replays:
        for cid, ann_id, item_id, status, reason in hot.rows(
            STORED, {"u": user_id, "cids": hot.ids(replays)}
        ):
            results[cid] = {
                "annotation_id": ann_id,
                "item_id": item_id,
                "status": status,
                "late_reason": reason,
            }


def _submit(
    hot: Hot, project: Project, user_id: int, entries: list[Entry], now: float
) -> list[dict[str, Any]]:
    item_ids = sorted({e.item_id for e in entries})
    # On PostgreSQL this locks the user's assignments first, in item order: concurrent
    # replays of one batch queue here and then see each other's rows as replays.
    assignments = {
        r[0]: r
        for r in hot.rows(ASSIGNMENTS, {"u": user_id, "p": project.id, "ids": hot.ids(item_ids)})
    }
    gold_of = {item: a[4] for item, a in assignments.items() if a[4] is not None}
    unleased = [i for i in item_ids if i not in assignments]
    if unleased:
        known = set()
        for item, gold_answer in hot.rows(KNOWN_ITEMS, {"p": project.id, "ids": hot.ids(unleased)}):
            known.add(item)
            if gold_answer is not None:
                gold_of[item] = gold_answer
        missing = [
            {"index": i, "field": "item_id", "reason": f"no item {e.item_id} in this project"}
            for i, e in enumerate(entries)
            if e.item_id not in assignments and e.item_id not in known
        ]
        if missing:
            raise InvalidInput("annotations refer to items not in this project", missing)
    plan = _plan(hot, project, user_id, entries, assignments, now)
    inserted: dict[str, int] = {}  # client_id -> id; replays are absent
    for chunk in chunks(plan, INSERT_CHUNK):
        params = {f"{c}_{i}": row[c] for i, row in enumerate(chunk) for c in _COLUMNS}
        inserted.update(hot.rows(_insert_annotations(len(chunk)), params))
    finished, bumps, new_assignments = [], {}, []
    results: dict[str, dict[str, Any]] = {}
    effects = _effects(plan, assignments)
    for row, effect in zip(plan, effects, strict=True):
        cid = row["client_id"]
        if cid not in inserted:
            continue
        results[cid] = {
            "annotation_id": inserted[cid],
            "item_id": row["item_id"],
            "status": row["status"],
            "late_reason": row["late_reason"],
        }
        kind, target, dl, ds = effect
        if kind == "finish":
            finished.append(target)
        elif kind == "new":
            new_assignments.append({"p": project.id, "i": row["item_id"], "u": user_id, "now": now})
        if dl or ds:
            bumps[row["item_id"]] = (dl, ds)
    in_batch = [
        {"id": inserted[r["client_id"]], "c": inserted[r["corrects_entry"]]}
        for r in plan
        if r["corrects_entry"] in inserted and r["client_id"] in inserted
    ]
    if in_batch:  # a correction of work handed in earlier in the same batch
        hot.many(SET_CORRECTS, in_batch)
    if finished:
        hot.run(FINISH, {"now": now, "ids": hot.ids(finished)})
    for params_row in new_assignments:
        if not hot.rows(NEW_ASSIGNMENT, params_row):
            raise RetrySubmit()  # a concurrent submission took the place first
    if bumps:
        hot.many(
            BUMP_ITEM,
            [
                {"id": i, "dl": dl, "ds": ds, **project.open_params}
                for i, (dl, ds) in sorted(bumps.items())
            ],
        )
    if bumps and project.adaptive:
        adaptive.refresh(hot, project, [i for i, (_dl, ds) in bumps.items() if ds])
    answers = [
        {
            "item_id": r["item_id"],
            "annotation_id": results[r["client_id"]]["annotation_id"],
            "value": r["value"],
            "gold": gold_of[r["item_id"]],
        }
        for r, effect in zip(plan, effects, strict=True)
        if r["item_id"] in gold_of and r["client_id"] in results and effect[0] != "none"
    ]
    if answers:
        feedback = gold.record_answers(hot, project, user_id, answers, now)
        for r in results.values():
            if r["item_id"] in feedback:
                r["feedback"] = feedback[r["item_id"]]
    _add_replays(hot, user_id, entries, results)
    return [{"id": e.client_id, **results[e.client_id]} for e in entries]


def _plan(
    hot: Hot,
    project: Project,
    user_id: int,
    entries: list[Entry],
    assignments: dict[int, tuple],
    now: float,
) -> list[dict[str, Any]]:
    """The rows to insert, with each entry's status decided from its assignment."""
    resubmitted = [
        e.item_id for e in entries if (a := assignments.get(e.item_id)) and a[2] == "submitted"
    ]
    previous = (
        dict(hot.rows(LATEST_OWN, {"u": user_id, "ids": hot.ids(resubmitted)}))
        if resubmitted
        else {}
    )
    rows: list[dict[str, Any]] = []
    seen: dict[int, str] = {}  # item -> client id of its latest entry in this batch
    for e in entries:
        a = assignments.get(e.item_id)
        status, reason, corrects = "accepted", None, e.corrects
        corrects_entry = None
        if e.item_id in seen or (a is not None and a[2] == "submitted"):
            corrects = corrects or previous.get(e.item_id)
            if e.corrects is None and e.item_id in seen:
                corrects, corrects_entry = None, seen[e.item_id]  # its id is known once stored
        elif a is None:
            status, reason = "late", "no_lease"
        elif a[2] == "leased" and a[3] <= now:
            status, reason = "late", "lease_expired"
        elif a[2] in ("expired", "skipped"):
            status, reason = "late", "lease_expired" if a[2] == "expired" else "skipped"
        seen[e.item_id] = e.client_id
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
                "corrects_entry": corrects_entry,
            }
        )
    return rows


def _effects(plan: list[dict[str, Any]], assignments: dict[int, tuple]) -> list[tuple]:
    """Per planned row: (kind, assignment id, Δn_leased, Δn_submitted).

    Only an item's first submission by this annotator changes its counters; corrections
    change nothing. ``kind`` is ``finish`` (close the assignment), ``new`` (no assignment:
    create one, so the item is never handed to this annotator) or ``none``.
    """
    out, seen = [], set()
    for row in plan:
        item = row["item_id"]
        a = assignments.get(item)
        if item in seen or (a is not None and a[2] == "submitted"):
            out.append(("none", None, 0, 0))
        elif a is None:
            out.append(("new", None, 0, 1))
        elif a[2] == "leased":
            out.append(("finish", a[1], -1, 1))
        else:  # expired (already reclaimed) or skipped: the place was freed earlier
            out.append(("finish", a[1], 0, 1))
        seen.add(item)
    return out
