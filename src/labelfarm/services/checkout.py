"""Batch checkout: lease a batch of tasks for offline work, under a longer lease.

An annotator who expects to lose the connection (a bus ride, a site with a flaky link) takes
a batch with the page's "take offline" key. It is :func:`labelfarm.services.queue.next_tasks`
with the project's lease time replaced by ``hours``; leases the annotator already holds come
back first and are extended to the same expiry, so the whole batch lives as long. The queue's
invariants are unchanged: a longer lease still counts once towards the overlap, and work
submitted after it expired is stored and marked late, never refused.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from labelfarm.db.hot import Hot, Sql, id_list
from labelfarm.errors import InvalidInput
from labelfarm.services.projects import Project
from labelfarm.services.queue import next_tasks

MAX_BATCH = 200
MAX_HOURS = 24.0
DEFAULT_HOURS = 8.0

_in = id_list("item_id", "ids")
_EXTEND = Sql(
    "UPDATE assignments SET expires_at = :exp WHERE user_id = :u AND project_id = :p "
    f"AND state = 'leased' AND expires_at > :now AND expires_at < :exp AND {_in[0]}",
    "UPDATE assignments SET expires_at = :exp WHERE user_id = :u AND project_id = :p "
    f"AND state = 'leased' AND expires_at > :now AND expires_at < :exp AND {_in[1]}",
)


def check_out(
    hot: Hot,
    project: Project,
    user_id: int,
    n: int,
    now: float,
    *,
    hours: float = DEFAULT_HOURS,
) -> list[dict[str, Any]]:
    """Lease up to ``n`` tasks to ``user_id`` for ``hours``, in a hot write transaction.

    Returns the tasks as :func:`next_tasks` does; every one expires at ``now + hours``
    (or later, when it was already leased for longer).
    """
    if not 1 <= n <= MAX_BATCH:
        raise InvalidInput(f"n must be from 1 to {MAX_BATCH}", [{"field": "n"}])
    if not 0 < hours <= MAX_HOURS:
        raise InvalidInput(
            f"hours must be more than 0 and at most {MAX_HOURS:g}", [{"field": "hours"}]
        )
    expires = now + max(hours * 3600.0, float(project.lease_seconds))
    long_lease = replace(project, lease_seconds=int(expires - now))
    tasks = next_tasks(hot, long_lease, user_id, n, now)
    held = [t["item_id"] for t in tasks if t["lease_expires_at"] < expires]
    if held:
        hot.run(
            _EXTEND,
            {"exp": expires, "u": user_id, "p": project.id, "now": now, "ids": hot.ids(held)},
        )
        for task in tasks:
            task["lease_expires_at"] = max(task["lease_expires_at"], expires)
    return tasks
