"""``skip``: give a task back with a reason; the annotator will not get the item again.

A skipped lease frees its place at once (the item reopens for someone else); skipping an
item never leased stores the decision too, so the queue does not offer it later. Skipping a
gold item one was given (leased, or checked out) counts as a miss (:mod:`.gold`).
"""

from __future__ import annotations

from typing import Any, NamedTuple

from labelfarm.db.tx import Sql, Tx, transaction
from labelfarm.errors import Conflict, InvalidInput, NotFound
from labelfarm.services.projects import Project
from labelfarm.services.tasks import gold
from labelfarm.services.tasks.openness import BUMP_ITEM

MAX_REASON = 500


class Own(NamedTuple):
    id: int
    state: str


OWN = Sql(
    "SELECT a.id, a.state FROM assignments a WHERE a.item_id = :i AND a.user_id = :u "
    "AND a.project_id = :p",
    row=Own,
    lock="FOR UPDATE",
)
ITEM_EXISTS = Sql("SELECT 1 FROM items WHERE id = :i AND project_id = :p AND status = 'ready'")
SKIP_NEW = Sql(
    "INSERT INTO assignments (project_id, item_id, user_id, state, leased_at, expires_at, "
    "finished_at, skip_reason) VALUES (:p, :i, :u, 'skipped', :now, :now, :now, :r)"
)
SKIP_MARK = Sql(
    "UPDATE assignments SET state = 'skipped', finished_at = :now, skip_reason = :r WHERE id = :id"
)


@transaction("lease")
def skip(
    tx: Tx, project: Project, user_id: int, item_id: int, reason: str, now: float
) -> dict[str, Any]:
    """Give a leased item back with a reason (1-500 characters)."""
    reason = (reason or "").strip()
    if not reason or len(reason) > MAX_REASON:
        raise InvalidInput(
            f"a skip needs a reason (1-{MAX_REASON} characters)", [{"field": "reason"}]
        )
    with tx.transaction():
        own = tx.one(OWN, {"i": item_id, "u": user_id, "p": project.id})
        if own is None:
            if tx.one(ITEM_EXISTS, {"i": item_id, "p": project.id}) is None:
                raise NotFound("no such task in this project", [{"field": "task"}])
            tx.run(SKIP_NEW, {"p": project.id, "i": item_id, "u": user_id, "now": now, "r": reason})
        elif own.state == "submitted":
            raise Conflict("the task is already submitted; submit a correction instead")
        elif own.state != "skipped":
            tx.run(SKIP_MARK, {"now": now, "r": reason, "id": own.id})
            if own.state == "leased":
                tx.run(BUMP_ITEM, {"id": item_id, "dl": -1, "ds": 0, **project.open_params})
            gold.record_skip(tx, project, user_id, item_id, now)
    return {"item_id": item_id, "status": "skipped"}
