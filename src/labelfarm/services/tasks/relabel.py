"""Send an annotator's labels back for relabelling: a manager's decision, audited.

The annotator's label of an item is their newest annotation of it. Each item they labelled
at or after ``since`` (every item, without it) loses their label: all their annotations of
the item are marked ``excluded = 'relabel'``, kept for the record and left out of labels
(aggregation, agreement, adaptive overlap, exports, the review queue). The item gives up the
place the annotator held (``n_submitted``), so it reopens for other annotators by the rule
every counter change keeps (:mod:`.openness`); the annotator keeps their assignment and is
never handed the item again. A reviewed item stays closed (its label is the decision), and
gold items are left alone (their label is the gold answer; answers to them are the evidence
behind standing). With adaptive overlap the items' confidence is recomputed without the
label.
"""

from __future__ import annotations

from typing import Any, NamedTuple

from labelfarm.db.batches import chunks
from labelfarm.db.tx import CoreTx, Sql, transaction
from labelfarm.errors import InvalidInput, NotFound
from labelfarm.jsonutil import iso
from labelfarm.services import audit
from labelfarm.services.projects import Project
from labelfarm.services.tasks import adaptive
from labelfarm.services.tasks.openness import BUMP_ITEM

MAX_REASON = 2000


class Labelled(NamedTuple):
    item_id: int
    held_place: int  # 1: the annotator's work counts in the item's n_submitted


WORKED = Sql("SELECT 1 FROM annotations WHERE project_id = :p AND user_id = :u LIMIT 1")
# items whose label by the annotator (their newest counted annotation) is from since on;
# imported annotations hold no place in the queue's counters
LABELLED_SINCE = Sql(
    "SELECT a.item_id, MAX(CASE WHEN a.status <> 'imported' THEN 1 ELSE 0 END) "
    "FROM annotations a JOIN items i ON i.id = a.item_id "
    "WHERE a.project_id = :p AND a.user_id = :u AND a.excluded IS NULL AND i.is_gold = false "
    "GROUP BY a.item_id HAVING MAX(a.created_at) >= :since ORDER BY a.item_id",
    row=Labelled,
)
EXCLUDE = Sql(
    "UPDATE annotations SET excluded = 'relabel' "
    "WHERE user_id = :u AND item_id IN :ids AND excluded IS NULL RETURNING id"
)
N_OPEN = Sql("SELECT COUNT(*) FROM items WHERE id IN :ids AND is_open")


@transaction("write")
def relabel(
    tx: CoreTx,
    project: Project,
    user_id: int,
    *,
    since: float | None,
    reason: str,
    now: float,
    actor_id: int | None,
) -> dict[str, Any]:
    """Send back the annotator's labels made at or after ``since`` (all with None); what
    was sent back, and how many of those items are open now."""
    if len(reason) > MAX_REASON:
        raise InvalidInput(
            f"the reason is text of at most {MAX_REASON} characters", [{"field": "reason"}]
        )
    if tx.one(WORKED, {"p": project.id, "u": user_id}) is None:
        raise NotFound(f"no annotator {user_id} in this project", [{"field": "user_id"}])
    params = {"p": project.id, "u": user_id, "since": since if since is not None else 0.0}
    labelled = tx.rows(LABELLED_SINCE, params)
    items = [r.item_id for r in labelled]
    n_excluded = n_open = 0
    for chunk in chunks(items):
        n_excluded += len(tx.rows(EXCLUDE, {"u": user_id, "ids": chunk}))
    placed = [r.item_id for r in labelled if r.held_place]
    tx.many(BUMP_ITEM, [{"id": i, "dl": 0, "ds": -1, **project.open_params} for i in placed])
    if placed and project.adaptive:
        adaptive.refresh(tx, project, placed)
    for chunk in chunks(items):
        row = tx.one(N_OPEN, {"ids": chunk})
        n_open += int(row[0]) if row else 0
    summary = {
        "project_id": project.id,
        "user_id": user_id,
        "since": iso(since) if since is not None else None,
        "items": len(items),
        "annotations_excluded": n_excluded,
        "items_open": n_open,
    }
    audit.record(
        tx,
        action="annotator.relabel",
        target=f"user:{user_id}",
        now=now,
        workspace_id=project.workspace_id,
        actor_id=actor_id,
        details={**summary, "reason": reason},
    )
    return summary
