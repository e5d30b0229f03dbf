"""An annotator's own progress in a project: tasks labelled since a time, and in all.

Counted from the annotator's finished assignments (one per item labelled, late work
included), through the index on (user, project, state): the cost does not grow with the
project. Gold and real tasks count alike, so the figure tells nothing about which was which.
"""

from __future__ import annotations

from typing import Any, NamedTuple

from labelfarm.db.tx import Sql, Tx, transaction


class Counts(NamedTuple):
    total: int
    recent: int


COUNTS = Sql(
    "SELECT COUNT(*) AS total, "
    "COALESCE(SUM(CASE WHEN finished_at >= :since THEN 1 ELSE 0 END), 0) AS recent "
    "FROM assignments WHERE user_id = :u AND project_id = :p AND state = 'submitted'",
    row=Counts,
)


@transaction("read")
def labelled(tx: Tx, project_id: int, user_id: int, since: float) -> dict[str, Any]:
    """``{"total", "since"}``: items the user labelled in the project, in all and since
    ``since`` (epoch seconds)."""
    row = tx.one(COUNTS, {"p": project_id, "u": user_id, "since": since})
    return {"total": int(row.total), "since": int(row.recent)} if row else {"total": 0, "since": 0}
