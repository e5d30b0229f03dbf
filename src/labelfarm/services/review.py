"""Review: a queue of items worth a second look, one item side by side, and decisions.

The queue is fed by three sources, each an indexed query:

- ``gold_failure``: a gold item some annotator answered wrongly (``gold_results.score < 1``);
  the reviewer checks the answer, and the gold itself;
- ``low_confidence``: items whose cached label confidence (``items.label_confidence``,
  refreshed when the models are fitted and when items are labelled) is below the project's
  ``target_confidence``;
- ``disagreement``: items whose annotators' newest answers differ.

A decision accepts one annotation or writes the final answer (validated by the schema);
decisions are append-only rows of ``reviews`` (who, when, what) and each one is audited. The
newest decision is the item's label (see :mod:`labelfarm.services.aggregation`), and it
closes the item (``items.is_reviewed``): the queue hands it to nobody again, whatever
adaptive overlap would ask (:mod:`labelfarm.services.tasks.openness`), and it leaves the
review queue for good, except a gold item that someone fails again after the decision.
Annotations left out of labels (``annotations.excluded``) are shown, marked, but neither
make a disagreement nor count as annotators.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import bindparam, text

from labelfarm.db.batches import chunks
from labelfarm.db.tables import reviews
from labelfarm.db.tx import CoreTx, transaction
from labelfarm.errors import InvalidInput, NotFound
from labelfarm.jsonutil import dumps, iso, loads
from labelfarm.schema import FieldError
from labelfarm.services import audit, label_errors
from labelfarm.services.aggregation import label_items
from labelfarm.services.projects import Project

REASONS = ("gold_failure", "low_confidence", "disagreement")
# the queue's order; suspected label errors (services/label_errors.py) count only when any
QUEUE_ORDER = ("gold_failure", "label_error", "low_confidence", "disagreement")
DECISIONS = ("accept", "override")
SOURCE_CAP = 5000  # candidates read per source
MAX_NOTE = 2000

_GOLD_FAILURES = text(
    "SELECT item_id, COUNT(*) AS n, MAX(created_at) AS last FROM gold_results "
    # a skip is a miss for the annotator, but leaves no answer to review
    "WHERE project_id = :p AND score < 1 AND annotation_id IS NOT NULL "
    "GROUP BY item_id ORDER BY MAX(created_at) DESC "
    "LIMIT :cap"
)
_LOW_CONFIDENCE = text(
    "SELECT id, label_confidence FROM items WHERE project_id = :p AND status = 'ready' "
    "AND is_gold = :no AND is_reviewed = :no AND n_submitted > 0 AND label_confidence < :t "
    "ORDER BY label_confidence, id LIMIT :cap"
)
_DISAGREEMENTS = text(
    "SELECT a.item_id FROM annotations a JOIN items i ON i.id = a.item_id "
    "WHERE a.project_id = :p AND i.is_gold = :no AND i.is_reviewed = :no AND a.id IN ("
    "  SELECT MAX(id) FROM annotations WHERE project_id = :p AND excluded IS NULL "
    "  GROUP BY item_id, user_id) "
    "GROUP BY a.item_id HAVING COUNT(DISTINCT a.value) > 1 ORDER BY a.item_id LIMIT :cap"
)
_LAST_REVIEW = text(
    "SELECT item_id, MAX(created_at) FROM reviews WHERE project_id = :p AND item_id IN :ids "
    "GROUP BY item_id"
).bindparams(bindparam("ids", expanding=True))
_ANNOTATORS = text(
    "SELECT item_id, COUNT(DISTINCT user_id) FROM annotations "
    "WHERE project_id = :p AND item_id IN :ids AND excluded IS NULL GROUP BY item_id"
).bindparams(bindparam("ids", expanding=True))
_TARGET = text("SELECT target_confidence FROM projects WHERE id = :p")


@transaction("read")
def review_queue(tx: CoreTx, project: Project, *, limit: int = 50) -> dict[str, Any]:
    """Up to ``limit`` unresolved items: gold failures first (newest first), then the least
    confident, then disagreements; ``counts`` per reason over all unresolved candidates."""
    target = float(tx.execute(_TARGET, {"p": project.id}).scalar_one())
    entries: dict[int, dict[str, Any]] = {}

    def add(item_id: int, reason: str, **extra: Any) -> None:
        entry = entries.setdefault(
            item_id, {"item_id": item_id, "reasons": [], "confidence": None, "gold_failures": 0}
        )
        entry["reasons"].append(reason)
        entry.update(extra)

    failed_at: dict[int, float] = {}
    for r in tx.execute(_GOLD_FAILURES, {"p": project.id, "cap": SOURCE_CAP}):
        add(r.item_id, "gold_failure", gold_failures=int(r.n))
        failed_at[r.item_id] = float(r.last)
    low = {"p": project.id, "no": False, "t": target, "cap": SOURCE_CAP}
    for r in tx.execute(_LOW_CONFIDENCE, low):
        add(r.id, "low_confidence", confidence=round(float(r.label_confidence), 6))
    for r in tx.execute(_DISAGREEMENTS, {"p": project.id, "no": False, "cap": SOURCE_CAP}):
        add(r.item_id, "disagreement")
    for issue in label_errors.queue_entries(tx, project.id, SOURCE_CAP):
        add(issue.pop("item_id"), "label_error", label_error=issue)
    ids = sorted(entries)
    reviewed: dict[int, float] = {}
    annotators: dict[int, int] = {}
    for chunk in chunks(ids):
        for item_id, last in tx.execute(_LAST_REVIEW, {"p": project.id, "ids": chunk}):
            reviewed[item_id] = float(last)
        for item_id, n in tx.execute(_ANNOTATORS, {"p": project.id, "ids": chunk}):
            annotators[item_id] = int(n)
    open_entries = []
    for item_id, entry in entries.items():
        # the other sources leave reviewed items out; a gold item comes back on a new failure
        if item_id in reviewed and reviewed[item_id] >= failed_at.get(item_id, 0.0):
            continue
        entry["n_annotators"] = annotators.get(item_id, 0)
        open_entries.append(entry)
    rank = {reason: k for k, reason in enumerate(QUEUE_ORDER)}
    open_entries.sort(  # gold failures newest first, then the least confident
        key=lambda e: (
            min(rank[r] for r in e["reasons"]),
            -failed_at.get(e["item_id"], 0.0),
            -(e.get("label_error") or {}).get("score", 0.0),
            e["confidence"] if e["confidence"] is not None else 2.0,
            e["item_id"],
        )
    )
    counts = {reason: sum(reason in e["reasons"] for e in open_entries) for reason in REASONS}
    if suspected := sum("label_error" in e["reasons"] for e in open_entries):
        counts["label_error"] = suspected
    return {
        "target_confidence": target,
        "counts": counts,
        "total": len(open_entries),
        "items": open_entries[: max(1, min(limit, 500))],
    }


_ITEM = text(
    "SELECT id, external_id, data, media_sha256, is_gold, gold, label_confidence FROM items "
    "WHERE id = :i AND project_id = :p AND status = 'ready'"
)
_ANNOTATIONS = text(
    "SELECT a.id, a.user_id, a.value, a.status, a.late_reason, a.excluded, a.corrects_id, "
    "a.created_at, a.duration_ms, a.from_prediction, u.pseudonym, u.display_name "
    "FROM annotations a "
    "JOIN users u ON u.id = a.user_id WHERE a.item_id = :i AND a.project_id = :p ORDER BY a.id"
)
_PREDICTION = text(
    "SELECT model, value, score, created_at FROM predictions WHERE item_id = :i "
    "ORDER BY id DESC LIMIT 1"
)
_REVIEWS = text(
    "SELECT r.id, r.decision, r.annotation_id, r.value, r.note, r.created_at, u.pseudonym, "
    "u.display_name, r.reviewer_id FROM reviews r JOIN users u ON u.id = r.reviewer_id "
    "WHERE r.item_id = :i AND r.project_id = :p ORDER BY r.id"
)


def _item_row(tx: CoreTx, project: Project, item_id: int) -> Any:
    row = tx.execute(_ITEM, {"i": item_id, "p": project.id}).first()
    if row is None:
        raise NotFound(f"no item {item_id} in this project", [{"field": "item_id"}])
    return row


@transaction("read")
def review_item(
    tx: CoreTx, project: Project, item_id: int, *, identities: bool = True
) -> dict[str, Any]:
    """One item for a reviewer: data, every annotation side by side (newest of each annotator
    marked current), the newest prediction, the current label and the decisions so far."""
    item = _item_row(tx, project, item_id)
    gold = loads(item.gold) if item.is_gold and item.gold else None
    rows = tx.execute(_ANNOTATIONS, {"i": item_id, "p": project.id}).all()
    newest = {r.user_id: r.id for r in rows}
    annotations = []
    for r in rows:
        value = loads(r.value)
        entry: dict[str, Any] = {
            "annotation_id": r.id,
            "annotator": r.pseudonym,
            "value": value,
            "status": r.status,
            "late_reason": r.late_reason,
            "excluded": r.excluded,
            "corrects": r.corrects_id,
            "current": newest[r.user_id] == r.id,
            "from_prediction": bool(r.from_prediction),
            "duration_ms": r.duration_ms,
            "created_at": iso(r.created_at),
        }
        if identities:
            entry.update(user_id=r.user_id, display_name=r.display_name)
        if gold is not None:
            entry["gold_score"] = _gold_score(project, value, gold)
        annotations.append(entry)
    pred = tx.execute(_PREDICTION, {"i": item_id}).first()
    history = []
    for r in tx.execute(_REVIEWS, {"i": item_id, "p": project.id}):
        h: dict[str, Any] = {
            "review_id": r.id,
            "reviewer": r.pseudonym,
            "decision": r.decision,
            "annotation_id": r.annotation_id,
            "value": loads(r.value),
            "note": r.note,
            "at": iso(r.created_at),
        }
        if identities:
            h.update(reviewer_id=r.reviewer_id, reviewer_name=r.display_name)
        history.append(h)
    out = {
        "item": {
            "id": item.id,
            "external_id": item.external_id,
            "data": loads(item.data),
            "media_sha256": item.media_sha256,
            "is_gold": bool(item.is_gold),
            "gold": gold,
        },
        "fields": project.schema.to_dict()["fields"],
        "annotations": annotations,
        "prediction": (
            {
                "model": pred.model,
                "value": loads(pred.value),
                "score": pred.score,
                "created_at": iso(pred.created_at),
            }
            if pred is not None
            else None
        ),
        "label": label_items(tx, project, [item_id]).get(item_id),
        "reviews": history,
    }
    issue = label_errors.open_issue(tx, project.id, item_id)
    if issue is not None:  # a suspected label error: the reason is shown
        out["label_issue"] = issue
    return out


def _gold_score(project: Project, value: dict[str, Any], gold: dict[str, Any]) -> float | None:
    scores = []
    for f in project.schema.fields:
        if gold.get(f.name) is None:
            continue
        try:
            scores.append(float(f.score(value.get(f.name), gold[f.name])))
        except (KeyError, TypeError, ValueError):
            scores.append(0.0)
    return round(sum(scores) / len(scores), 6) if scores else None


@transaction("write")
def decide(
    tx: CoreTx,
    project: Project,
    item_id: int,
    *,
    reviewer_id: int,
    decision: str,
    now: float,
    annotation_id: int | None = None,
    value: Any = None,
    note: str = "",
) -> dict[str, Any]:
    """Record a decision on an item: ``accept`` one of its annotations (``annotation_id``)
    or ``override`` with a final ``value`` (validated by the schema). Append-only, audited;
    returns the stored review and the item's label."""
    problems = []
    if decision not in DECISIONS:
        problems.append({"field": "decision", "reason": f"one of {list(DECISIONS)}"})
    if not isinstance(note, str) or len(note) > MAX_NOTE:
        problems.append({"field": "note", "reason": f"text of at most {MAX_NOTE} characters"})
    if problems:
        raise InvalidInput("the decision is not valid", problems)
    _item_row(tx, project, item_id)
    if decision == "accept":
        final = _accepted_value(tx, project, item_id, annotation_id)
    else:
        final = _override_value(project, annotation_id, value)
    review_id = tx.execute(
        reviews.insert()
        .values(
            project_id=project.id,
            item_id=item_id,
            reviewer_id=reviewer_id,
            decision=decision,
            annotation_id=annotation_id,
            value=dumps(final),
            note=note,
            created_at=now,
        )
        .returning(reviews.c.id)
    ).scalar_one()
    tx.execute(  # the decision is the label, and closes the item
        text(
            "UPDATE items SET label_confidence = 1.0, is_reviewed = true, is_open = false "
            "WHERE id = :i"
        ),
        {"i": item_id},
    )
    label_errors.record_review_verdict(
        tx, project.id, item_id, final, review_id=review_id, reviewer_id=reviewer_id, now=now
    )
    audit.record(
        tx,
        action="review.decide",
        target=f"item:{item_id}",
        now=now,
        workspace_id=project.workspace_id,
        actor_id=reviewer_id,
        details={
            "project_id": project.id,
            "review_id": review_id,
            "decision": decision,
            "annotation_id": annotation_id,
        },
    )
    stored = {"review_id": review_id, "item_id": item_id, "decision": decision}
    stored.update(annotation_id=annotation_id, value=final, note=note, at=iso(now))
    return {"review": stored, "label": label_items(tx, project, [item_id]).get(item_id)}


def _accepted_value(tx: CoreTx, project: Project, item_id: int, annotation_id: int | None) -> Any:
    """The value of the accepted annotation, which must be one of the item's."""
    if annotation_id is None:
        raise InvalidInput(
            "accepting needs the annotation_id of one of the item's annotations",
            [{"field": "annotation_id", "reason": "required"}],
        )
    raw = tx.execute(
        text("SELECT value FROM annotations WHERE id = :a AND item_id = :i AND project_id = :p"),
        {"a": annotation_id, "i": item_id, "p": project.id},
    ).scalar()
    if raw is None:
        raise InvalidInput(
            f"annotation {annotation_id} is not an annotation of item {item_id}",
            [{"field": "annotation_id", "reason": "not an annotation of this item"}],
        )
    return loads(raw)


def _override_value(project: Project, annotation_id: int | None, value: Any) -> Any:
    """The reviewer's own final answer, checked by the schema."""
    if annotation_id is not None:
        raise InvalidInput(
            "an override carries a value, not an annotation_id",
            [{"field": "annotation_id", "reason": "only with decision 'accept'"}],
        )
    try:
        return project.schema.validate(value)
    except FieldError as exc:
        field = f"value.{exc.path}" if exc.path else "value"
        raise InvalidInput(
            f"the final answer does not fit the schema: {exc.reason}",
            [{"field": field, "reason": exc.reason}],
        ) from None
