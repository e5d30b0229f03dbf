"""Checkout: lease a batch of tasks for offline work, under a longer lease.

An annotator who expects to lose the connection (a bus ride, a site with a flaky link) takes
a batch with the page's "take offline" key. It is ``next`` (:mod:`.lease`) with the project's
lease time replaced by ``hours``; leases the annotator already holds come back first and are
extended to the same expiry, so the whole batch lives as long. The queue's invariants are
unchanged: a longer lease still counts once towards the overlap, and work submitted after it
expired is stored and marked late, never refused.

A checkout counts against the project's ``max_live_leases`` like ``next`` (a batch is at most
that many tasks, leases already held included) and lasts at most its ``max_checkout_hours``.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from labelfarm.db.tx import Sql, Tx, transaction
from labelfarm.errors import InvalidInput
from labelfarm.services.projects import Project
from labelfarm.services.tasks.lease import MAX_N, next_tasks

# What any project may allow (its settings decide within): the API's bounds.
MAX_BATCH = MAX_N
MAX_HOURS = 720.0
DEFAULT_BATCH = 50
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
    n: int | None,
    now: float,
    *,
    hours: float | None = None,
    prefill_key: bytes | None = None,
) -> list[dict[str, Any]]:
    """Lease up to ``n`` tasks to ``user_id`` for ``hours``, in one transaction.

    ``n`` (default ``DEFAULT_BATCH``) is at most the project's ``max_live_leases`` and
    ``hours`` (default ``DEFAULT_HOURS``) at most its ``max_checkout_hours``; a default
    above the project's maximum is that maximum.
    Returns the tasks as ``next`` does; every one expires at ``now + hours`` (or later,
    when it was already leased for longer).
    """
    if n is None:
        n = min(DEFAULT_BATCH, project.max_live_leases)
    if not 1 <= n <= project.max_live_leases:
        raise InvalidInput(
            f"n must be from 1 to {project.max_live_leases} (the project's max_live_leases)",
            [{"field": "n"}],
        )
    if hours is None:
        hours = min(DEFAULT_HOURS, project.max_checkout_hours)
    if not 0 < hours <= project.max_checkout_hours:
        raise InvalidInput(
            f"hours must be more than 0 and at most {project.max_checkout_hours:g} "
            "(the project's max_checkout_hours)",
            [{"field": "hours"}],
        )
    expires = now + max(hours * 3600.0, float(project.lease_seconds))
    long_lease = replace(project, lease_seconds=int(expires - now))
    with tx.transaction():
        tasks = next_tasks(tx, long_lease, user_id, n, now, prefill_key=prefill_key)
        held = [t["item_id"] for t in tasks if t["lease_expires_at"] < expires]
        if held:
            params = {"exp": expires, "u": user_id, "p": project.id, "now": now, "ids": held}
            tx.run(EXTEND, params)
    for task in tasks:
        task["lease_expires_at"] = max(task["lease_expires_at"], expires)
    return tasks
