"""Each correction round with its pair's held-out error before and after it.

*Before*: the pair's error (:func:`labelfarm.services.confusion_report.pair_error`) at the
version the round started from. *After*: at the first version trained after the round
closed (the one its corrections trained), None while there is none. Both from the versions'
stored evaluations, so they compare fairly when every version was evaluated on the same
held-out set (the report's ``same_set``).
"""

from __future__ import annotations

from typing import Any

from labelfarm.db.tx import CoreTx, transaction
from labelfarm.services.confusion_report import pair_errors
from labelfarm.services.correction_rounds import list_rounds
from labelfarm.services.models import versions
from labelfarm.services.projects import Project


def after_version(round_: dict[str, Any], known: list[tuple[int, float]]) -> int | None:
    """The first version (number, created_at) made after the round closed."""
    closed = round_["closed_at_ts"]
    if closed is None:
        return None
    later = [n for n, created in known if n > round_["from_version"] and created >= closed]
    return min(later) if later else None


@transaction("read")
def rounds_with_errors(tx: CoreTx, project: Project, *, limit: int = 100) -> list[dict[str, Any]]:
    """The project's rounds, newest first, each with ``before``, ``after`` and
    ``after_version``."""
    known = [(v.version, v.created_at) for v in versions.list_versions(tx, project.id)]
    out = []
    for r in list_rounds(tx, project, limit=limit):
        errors = pair_errors(tx, project, r["field"], r["a"], r["b"])
        later = after_version(r, known)
        shown = {k: v for k, v in r.items() if not k.endswith("_ts")}
        out.append(
            {
                **shown,
                "before": errors.get(r["from_version"]),
                "after": errors.get(later) if later is not None else None,
                "after_version": later,
            }
        )
    return out
