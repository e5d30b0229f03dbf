"""Checkout: lease a batch of tasks for offline work, under a longer lease.

An annotator who expects to lose the connection (a bus ride, a site with a flaky link) takes
a batch with the page's "take offline" key. It is ``next`` (:mod:`.lease`) with the project's
lease time replaced by ``hours``; leases the annotator already holds come back first and are
extended to the same expiry, so the whole batch lives as long. The queue's invariants are
unchanged: a longer lease still counts once towards the overlap, and work submitted after it
expired is stored and marked late, never refused.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from labelfarm.db.tx import Sql, Tx, transaction
from labelfarm.errors import InvalidInput
from labelfarm.services.projects import Project
from labelfarm.services.tasks.lease import next_tasks

MAX_BATCH = 200
MAX_HOURS = 24.0
DEFAULT_HOURS = 8.0

EXTEND = Sql(
    "UPDATE assignments SET expires_at = :exp WHERE user_id = :u AND project_id = :p "
    "AND state = 'leased' AND expires_at > :now AND expires_at < :exp AND item_id IN :ids"
)


@transaction("lease")
def check_out(
    tx: Tx,
    project: Project,
    user_id: int,
    n: int,
    now: float,
    *,
    hours: float = DEFAULT_HOURS,
) -> list[dict[str, Any]]:
    """Lease up to ``n`` tasks to ``user_id`` for ``hours``, in one transaction.

    Returns the tasks as ``next`` does; every one expires at ``now + hours`` (or later,
    when it was already leased for longer).
    """
    if not 1 <= n <= MAX_BATCH:
        raise InvalidInput(f"n must be from 1 to {MAX_BATCH}", [{"field": "n"}])
    if not 0 < hours <= MAX_HOURS:
        raise InvalidInput(
            f"hours must be more than 0 and at most {MAX_HOURS:g}", [{"field": "hours"}]
        )
    expires = now + max(hours * 3600.0, float(project.lease_seconds))
    long_lease = replace(project, lease_seconds=int(expires - now))
    with tx.transaction():
        tasks = next_tasks(tx, long_lease, user_id, n, now)
        held = [t["item_id"] for t in tasks if t["lease_expires_at"] < expires]
        if held:
            params = {"exp": expires, "u": user_id, "p": project.id, "now": now, "ids": held}
            tx.run(EXTEND, params)
    for task in tasks:
        task["lease_expires_at"] = max(task["lease_expires_at"], expires)
    return tasks
