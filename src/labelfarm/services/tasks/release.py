"""Release: a manager ends an annotator's leases in a project, and the items reopen at once.

For an annotator who left for the day holding a batch, or took more than they can do. A
released lease ends as an expired one does (``state = 'expired'``): its place is freed in
the same transaction, the annotator will not get the item again, and work they submit on it
later is stored and marked late, never refused. Audited.
"""

from __future__ import annotations

from typing import NamedTuple

from labelfarm.db.tx import CoreTx, Sql, transaction
from labelfarm.services import audit
from labelfarm.services.projects import Project
from labelfarm.services.tasks.openness import BUMP_ITEM


class Lease(NamedTuple):
    id: int
    item_id: int


# Every lease the annotator holds in the project, expired ones not yet reclaimed included,
# locked in item order (as submissions and reclaims lock theirs).
HELD = Sql(
    "SELECT id, item_id FROM assignments WHERE user_id = :u AND project_id = :p "
    "AND state = 'leased' ORDER BY item_id",
    row=Lease,
    lock="FOR UPDATE",
)
END = Sql(
    "UPDATE assignments SET state = 'expired', finished_at = :now "
    "WHERE id IN :ids AND state = 'leased'"
)


@transaction("write")
def release_leases(
    tx: CoreTx, project: Project, user_id: int, now: float, *, actor_id: int | None
) -> dict[str, int]:
    """End every lease ``user_id`` holds in ``project``; ``{"released": count}``."""
    held = tx.rows(HELD, {"u": user_id, "p": project.id})
    if held:
        tx.run(END, {"ids": [r.id for r in held], "now": now})
        # one lease per (item, annotator): each item gives back one place
        tx.many(
            BUMP_ITEM, [{"id": r.item_id, "dl": -1, "ds": 0, **project.open_params} for r in held]
        )
    audit.record(
        tx,
        action="leases.release",
        target=f"user:{user_id}",
        now=now,
        workspace_id=project.workspace_id,
        actor_id=actor_id,
        details={"project_id": project.id, "released": len(held)},
    )
    return {"released": len(held)}
