"""``submit``: store a checked batch (:mod:`.entries`) in one transaction; idempotent,
append-only, never refusing late work.

A submission is a batch of entries, each with a client-generated id. Replaying a batch
stores nothing twice and answers the same (the stored rows are the answer). An entry
whose lease expired, whose item is already full, or that had no lease at all (offline
work) is stored with ``status = 'late'`` and a reason, never refused. A later entry of the
same annotator for the same item is a correction: a new row pointing at the one it
corrects. Answers to gold items the annotator was given are scored (:mod:`.gold`; work on
gold never handed out is stored, not scored); with adaptive overlap the items' label
confidence is refreshed (:mod:`.adaptive`).

Work from an annotator who is paused or failed is stored for the record, marked
``excluded`` with their standing, and left out of labels: it counts in no item's
``n_submitted``, so its items stay open for other annotators (:mod:`.relabel` does the same
for work already counted).
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any, NamedTuple

from labelfarm.db.batches import chunks
from labelfarm.db.dialect import Dialect
from labelfarm.db.tx import Sql, Tx, transaction
from labelfarm.errors import InvalidInput
from labelfarm.services.projects import Project
from labelfarm.services.tasks import adaptive, gold, media_fit, verify
from labelfarm.services.tasks.entries import Entry
from labelfarm.services.tasks.openness import BUMP_ITEM
from labelfarm.services.tasks.submit_fast import add_replays, submit_in_one_statement


class RetrySubmit(Exception):
    """A concurrent submission won a race for the same place; retry the transaction."""


class Assignment(NamedTuple):
    item_id: int
    id: int
    state: str
    expires_at: float
    gold: str | None


ASSIGNMENTS = Sql(
    "SELECT a.item_id, a.id, a.state, a.expires_at, i.gold FROM assignments a "
    "JOIN items i ON i.id = a.item_id WHERE a.user_id = :u AND a.project_id = :p "
    "AND a.item_id IN :ids ORDER BY a.item_id",
    row=Assignment,
    # concurrent replays of one batch queue here, then see each other's rows as replays
    lock="FOR UPDATE OF a",
)
KNOWN_ITEMS = Sql(
    "SELECT id, gold FROM items WHERE project_id = :p AND status = 'ready' AND id IN :ids"
)


class Own(NamedTuple):
    item_id: int
    latest: int  # the annotator's newest annotation of the item
    counted: int  # how many of theirs count in labels (not excluded)


LATEST_OWN = Sql(
    "SELECT item_id, MAX(id), SUM(CASE WHEN excluded IS NULL THEN 1 ELSE 0 END) "
    "FROM annotations WHERE user_id = :u AND item_id IN :ids GROUP BY item_id",
    row=Own,
)
# the annotator's standing when it excludes their work from labels
EXCLUDING_STANDING = Sql(
    "SELECT state FROM annotator_status WHERE project_id = :p AND user_id = :u "
    "AND state IN ('paused', 'failed')"
)
FINISH = Sql("UPDATE assignments SET state = 'submitted', finished_at = :now WHERE id IN :ids")
SET_CORRECTS = Sql("UPDATE annotations SET corrects_id = :c WHERE id = :id")
NEW_ASSIGNMENT = Sql(
    "INSERT INTO assignments (project_id, item_id, user_id, state, leased_at, expires_at, "
    "finished_at) VALUES (:p, :i, :u, 'submitted', :now, :now, :now) "
    "ON CONFLICT (item_id, user_id) DO NOTHING RETURNING id"
)
INSERT_CHUNK = 400  # rows per INSERT, within both drivers' limits on parameters
COLUMNS = (
    "project_id",
    "item_id",
    "user_id",
    "client_id",
    "value",
    "schema_version",
    "status",
    "late_reason",
    "excluded",
    "corrects_id",
    "from_prediction",
    "verified",
    "duration_ms",
    "created_at",
)


@lru_cache(maxsize=INSERT_CHUNK + 1)
def _insert_annotations(n: int) -> Sql[tuple[Any, ...]]:
    """A multi-row INSERT … ON CONFLICT DO NOTHING RETURNING for ``n`` rows."""
    rows = ", ".join("(" + ", ".join(f":{c}_{i}" for c in COLUMNS) + ")" for i in range(n))
    return Sql(
        f"INSERT INTO annotations ({', '.join(COLUMNS)}) VALUES {rows} "
        "ON CONFLICT (user_id, client_id) DO NOTHING RETURNING client_id, id"
    )


@transaction("submit", retry=(RetrySubmit,))
def submit(
    tx: Tx, project: Project, user_id: int, entries: list[Entry], now: float
) -> list[dict[str, Any]]:
    """Store a checked batch; one result per entry, in order. Retried in a fresh
    transaction when a concurrent submission takes a place first.

    In a project that hands out gold, every batch takes the general path: gold answers
    cannot take the one-statement path, and a faster answer for real items would tell
    them from gold.

    An entry claiming ``verified`` (verify mode's accept) keeps the mark only when its value
    is its task's prediction (:mod:`.verify`). Transcripts must fit inside their item's audio
    file (:mod:`.media_fit`)."""
    verify.check_claims(tx, project, entries)
    media_fit.check_inside_media(tx, project, entries)
    if (
        tx.dialect is Dialect.POSTGRESQL
        and tx.durable
        and not project.adaptive
        and not project.hands_out_gold
    ):
        results = submit_in_one_statement(tx, project, user_id, entries, now)
        if results is not None:
            return results
    with tx.transaction():
        return store(tx, project, user_id, entries, now)


def store(
    tx: Tx, project: Project, user_id: int, entries: list[Entry], now: float
) -> list[dict[str, Any]]:
    """The general path, on both databases, inside the caller's transaction."""
    assignments, gold_of = _assignments(tx, project, user_id, entries)
    excluding = (
        tx.one(EXCLUDING_STANDING, {"p": project.id, "u": user_id})
        if project.needs_standing or project.has_stopped
        else None
    )
    plan, counted = _plan(tx, project, user_id, entries, assignments, now)
    if excluding is not None:
        for row in plan:
            row["excluded"] = excluding[0]
    inserted: dict[str, int] = {}  # client_id -> id; replays are absent
    for chunk in chunks(plan, INSERT_CHUNK):
        params = {f"{c}_{i}": row[c] for i, row in enumerate(chunk) for c in COLUMNS}
        inserted.update(tx.rows(_insert_annotations(len(chunk)), params))
    effects = _effects(plan, assignments, counted, inserted)
    results = _apply(tx, project, user_id, plan, effects, inserted, now)
    answers = [
        {
            "item_id": r["item_id"],
            "annotation_id": results[r["client_id"]]["annotation_id"],
            "value": r["value"],
            "gold": gold_of[r["item_id"]],
        }
        for r, effect in zip(plan, effects, strict=True)
        # scored: the first answer to a gold item handed to the annotator (leased or checked
        # out, live or expired); not work on an item never given, nor given back by a skip
        if r["item_id"] in gold_of
        and r["client_id"] in results
        and effect[0] == "finish"
        and assignments[r["item_id"]].state != "skipped"
    ]
    if answers:
        feedback = gold.record_answers(tx, project, user_id, answers, now)
        for r in results.values():
            if r["item_id"] in feedback:
                r["feedback"] = feedback[r["item_id"]]
    add_replays(tx, user_id, entries, results)
    return [{"id": e.client_id, **results[e.client_id]} for e in entries]


def _assignments(
    tx: Tx, project: Project, user_id: int, entries: list[Entry]
) -> tuple[dict[int, Assignment], dict[int, str]]:
    """The annotator's assignments of the batch's items (locked on PostgreSQL, in item
    order) and the gold answer of each gold item; InvalidInput for items not in the project."""
    item_ids = sorted({e.item_id for e in entries})
    rows = tx.rows(ASSIGNMENTS, {"u": user_id, "p": project.id, "ids": item_ids})
    assignments = {a.item_id: a for a in rows}
    gold_of = {item: a.gold for item, a in assignments.items() if a.gold is not None}
    unleased = [i for i in item_ids if i not in assignments]
    if not unleased:
        return assignments, gold_of
    known = set()
    for item, gold_answer in tx.rows(KNOWN_ITEMS, {"p": project.id, "ids": unleased}):
        known.add(item)
        if gold_answer is not None:
            gold_of[item] = gold_answer
    missing = [
        {"index": i, "field": "task", "reason": "no such task in this project"}
        for i, e in enumerate(entries)
        if e.item_id not in assignments and e.item_id not in known
    ]
    if missing:
        raise InvalidInput("annotations refer to items not in this project", missing)
    return assignments, gold_of


def _plan(
    tx: Tx,
    project: Project,
    user_id: int,
    entries: list[Entry],
    assignments: dict[int, Assignment],
    now: float,
) -> tuple[list[dict[str, Any]], set[int]]:
    """The rows to insert, with each entry's status decided from its assignment, and the
    items of the batch on which the annotator has work counting in labels already."""
    resubmitted = [
        e.item_id for e in entries if (a := assignments.get(e.item_id)) and a.state == "submitted"
    ]
    own = tx.rows(LATEST_OWN, {"u": user_id, "ids": resubmitted}) if resubmitted else []
    previous = {o.item_id: o.latest for o in own}
    counted = {o.item_id for o in own if o.counted}
    rows: list[dict[str, Any]] = []
    seen: dict[int, str] = {}  # item -> client id of its latest entry in this batch
    for e in entries:
        a = assignments.get(e.item_id)
        status, reason, corrects = "accepted", None, e.corrects
        corrects_entry = None
        if e.item_id in seen or (a is not None and a.state == "submitted"):
            corrects = corrects or previous.get(e.item_id)
            if e.corrects is None and e.item_id in seen:
                corrects, corrects_entry = None, seen[e.item_id]  # its id is known once stored
        elif a is None:
            status, reason = "late", "no_lease"
        elif a.state == "leased" and a.expires_at <= now:
            status, reason = "late", "lease_expired"
        elif a.state in ("expired", "skipped"):
            status, reason = "late", "lease_expired" if a.state == "expired" else "skipped"
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
                "excluded": None,
                "corrects_id": corrects,
                "from_prediction": e.from_prediction,
                "verified": e.verified,
                "duration_ms": e.duration_ms,
                "created_at": now,
                "corrects_entry": corrects_entry,
            }
        )
    return rows, counted


Effect = tuple[str, int | None, int, int]


def _effects(
    plan: list[dict[str, Any]],
    assignments: dict[int, Assignment],
    counted: set[int],
    inserted: dict[str, int],
) -> list[Effect]:
    """Per planned row: (kind, assignment id, Δn_leased, Δn_submitted).

    ``n_submitted`` counts the annotators whose work on the item counts in its label: it
    grows with the first such row of an annotator (an excluded row never counts); a lease
    ends with the item's first row. ``kind`` is ``finish`` (close the assignment), ``new``
    (no assignment: create one, so the item is never handed to this annotator) or ``none``.
    """
    out: list[Effect] = []
    seen = set()
    for row in plan:
        item = row["item_id"]
        a = assignments.get(item)
        counts = int(row["excluded"] is None and item not in counted)
        if item in seen or (a is not None and a.state == "submitted"):
            out.append(("none", None, 0, counts))
        elif a is None:
            out.append(("new", None, 0, counts))
        elif a.state == "leased":
            out.append(("finish", a.id, -1, counts))
        else:  # expired (already reclaimed) or skipped: the place was freed earlier
            out.append(("finish", a.id, 0, counts))
        seen.add(item)
        if counts and row["client_id"] in inserted:
            counted.add(item)
    return out


def _apply(
    tx: Tx,
    project: Project,
    user_id: int,
    plan: list[dict[str, Any]],
    effects: list[Effect],
    inserted: dict[str, int],
    now: float,
) -> dict[str, dict[str, Any]]:
    """Close assignments, update counters and openness for the rows stored; their results."""
    finished, bumps, new_assignments = [], {}, []
    results: dict[str, dict[str, Any]] = {}
    for row, (kind, target, dl, ds) in zip(plan, effects, strict=True):
        cid = row["client_id"]
        if cid not in inserted:
            continue
        results[cid] = {
            "annotation_id": inserted[cid],
            "item_id": row["item_id"],
            "status": row["status"],
            "late_reason": row["late_reason"],
        }
        if row["excluded"] is not None:
            results[cid]["excluded"] = row["excluded"]
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
        tx.many(SET_CORRECTS, in_batch)
    if finished:
        tx.run(FINISH, {"now": now, "ids": finished})
    for params_row in new_assignments:
        if not tx.rows(NEW_ASSIGNMENT, params_row):
            raise RetrySubmit()  # a concurrent submission took the place first
    ordered = sorted(bumps.items())
    tx.many(
        BUMP_ITEM, [{"id": i, "dl": dl, "ds": ds, **project.open_params} for i, (dl, ds) in ordered]
    )
    if bumps and project.adaptive:
        adaptive.refresh(tx, project, [i for i, (_dl, ds) in ordered if ds])
    return results
