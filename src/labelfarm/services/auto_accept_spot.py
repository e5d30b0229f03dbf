"""Spot checks of auto-accept, and withdrawing a threshold they prove wrong.

A share of the items a threshold lets through stays open, blind (the annotator sees an
ordinary task), for humans to label (:mod:`labelfarm.services.auto_accept`). Once such an
item has its final human label (a reviewer decided it, or it is closed with its annotations),
the label is compared with the model's (``auto_labels.spot_value``), and each threshold's
spot checks (``spot_n`` checked, ``spot_correct`` agreeing) update its bound: the one-sided
Clopper-Pearson lower bound of the precision on the held-out evidence and the spot checks
together. When that bound falls below the threshold's target the threshold is withdrawn at
once: its items' auto labels are marked ``withdrawn`` (never deleted), the items it closed are
reopened for humans (unless a reviewer decided them since), and the audit log records it.

:func:`update_project` runs at the end of each ``auto_accept`` job and from the periodic
``refit`` job (:func:`update_all`).
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any, NamedTuple

from labelfarm.db.engine import Database
from labelfarm.db.tx import CoreTx, Sql, transaction
from labelfarm.ml.auto_accept import clopper_pearson_lower
from labelfarm.services import audit
from labelfarm.services.aggregation import label_items
from labelfarm.services.auto_accept import APPLIED, WITHDRAWN, ThresholdRow, thresholds
from labelfarm.services.projects import Project, load_project
from labelfarm.services.tasks.openness import open_expr

BATCH = 500  # spot checks resolved per write transaction


class Pending(NamedTuple):
    id: int
    item_id: int
    field: str


# spot checks whose item has its final human label: decided, or closed with its annotations
PENDING = Sql(
    "SELECT l.id, l.item_id, l.field FROM auto_labels l JOIN items i ON i.id = l.item_id "
    "WHERE l.project_id = :p AND l.state = 'spot_check' AND l.spot_value IS NULL "
    "AND (i.is_reviewed OR (NOT i.is_open AND i.n_submitted > 0)) AND l.id > :after "
    "ORDER BY l.id LIMIT :n",
    row=Pending,
)
RESOLVE = Sql("UPDATE auto_labels SET spot_value = :s, updated_at = :now WHERE id = :id")
TALLY = Sql(
    "SELECT COUNT(*), COALESCE(SUM(CASE WHEN spot_value = value THEN 1 ELSE 0 END), 0) "
    "FROM auto_labels WHERE threshold_id = :t AND spot_value IS NOT NULL AND spot_value <> ''"
)
SET_TALLY = Sql(
    "UPDATE auto_thresholds SET spot_n = :n, spot_correct = :k, updated_at = :now WHERE id = :t"
)
PROJECTS = Sql(
    "SELECT DISTINCT project_id FROM auto_thresholds WHERE state IN ('active', 'superseded') "
    "ORDER BY project_id"
)
WITHDRAW_THRESHOLD = Sql(
    "UPDATE auto_thresholds SET state = 'withdrawn', updated_at = :now WHERE id = :t"
)
LIVE_ITEMS = Sql(
    "SELECT item_id FROM auto_labels WHERE threshold_id = :t "
    "AND state IN ('accepted', 'spot_check') ORDER BY item_id"
)
WITHDRAW_LABELS = Sql(
    "UPDATE auto_labels SET state = 'withdrawn', updated_at = :now WHERE threshold_id = :t "
    "AND state IN ('accepted', 'spot_check')"
)
# back to humans: the closing flag cleared (unless a reviewer decided it), then openness
# recomputed (a SET clause sees the old flag, hence two statements)
UNCLOSE = Sql(
    "UPDATE items SET is_reviewed = false WHERE id IN :ids AND is_reviewed "
    "AND NOT EXISTS (SELECT 1 FROM reviews r WHERE r.item_id = items.id)"
)
REOPEN = Sql(f"UPDATE items SET is_open = {open_expr()} WHERE id IN :ids")


def bound(row: ThresholdRow) -> float:
    """A threshold's current lower bound: its held-out evidence and its spot checks."""
    return clopper_pearson_lower(row.n_correct + row.spot_correct, row.n_evidence + row.spot_n)


@transaction("write")
def resolve_batch(tx: CoreTx, project: Project, *, after: int, now: float) -> int | None:
    """Compare the next batch of spot checks whose items have their final human label; the
    last row id read, or None when there were none."""
    pending = tx.rows(PENDING, {"p": project.id, "after": after, "n": BATCH})
    if not pending:
        return None
    human = label_items(tx, project, [r.item_id for r in pending])  # never the model's
    for r in pending:
        value = (human.get(r.item_id) or {}).get("value", {}).get(r.field)
        tx.run(RESOLVE, {"s": str(value) if value is not None else "", "now": now, "id": r.id})
    return pending[-1].id


@transaction("write")
def tally_and_withdraw(tx: CoreTx, project: Project, *, now: float) -> list[dict[str, Any]]:
    """Update each applied threshold's spot-check counts; withdraw those whose bound fell
    below their target. The thresholds withdrawn."""
    withdrawn = []
    for row in thresholds(tx, project.id, APPLIED):
        n, k = tx.rows(TALLY, {"t": row.id})[0]
        if (int(n), int(k)) != (row.spot_n, row.spot_correct):
            tx.run(SET_TALLY, {"n": int(n), "k": int(k), "now": now, "t": row.id})
            row = row._replace(spot_n=int(n), spot_correct=int(k))
        if bound(row) < row.target:
            withdrawn.append(withdraw(tx, project, row, now=now))
    return withdrawn


def withdraw(tx: CoreTx, project: Project, row: ThresholdRow, *, now: float) -> dict[str, Any]:
    """Withdraw a threshold in the caller's transaction: its labels marked withdrawn, its
    closed items reopened, the audit log told."""
    items = [r[0] for r in tx.rows(LIVE_ITEMS, {"t": row.id})]
    tx.run(WITHDRAW_THRESHOLD, {"t": row.id, "now": now})
    tx.run(WITHDRAW_LABELS, {"t": row.id, "now": now})
    for start in range(0, len(items), BATCH):
        ids = items[start : start + BATCH]
        tx.run(UNCLOSE, {"ids": ids})
        tx.run(REOPEN, {"ids": ids, **project.open_params})
    details = {
        "project_id": project.id,
        "field": row.field,
        "option": row.option,
        "version": row.version,
        "threshold": row.threshold,
        "target": row.target,
        "evidence": [row.n_correct, row.n_evidence],
        "spot_checks": [row.spot_correct, row.spot_n],
        "bound": round(bound(row), 6),
        "items_reopened": len(items),
    }
    audit.record(
        tx,
        action="auto_accept.withdraw",
        target=f"auto_threshold:{row.id}",
        now=now,
        workspace_id=project.workspace_id,
        details=details,
    )
    return {"id": row.id, "state": WITHDRAWN, **details}


def update_project(db: Database, project: Project, now: float) -> list[dict[str, Any]]:
    """Resolve the project's spot checks that have their human label, in short batches, then
    update every threshold's bound, withdrawing those below target (what was withdrawn)."""
    after: int | None = 0
    while after is not None:
        after = db.run(resolve_batch, project, after=after, now=now)
    return list(db.run(tally_and_withdraw, project, now=now))


@transaction("read")
def projects_with_thresholds(tx: CoreTx) -> list[int]:
    return [int(r[0]) for r in tx.rows(PROJECTS, {})]


def update_all(db: Database, now: float, only: Any = None) -> dict[str, int]:
    """:func:`update_project` for every project with applied thresholds (or only ``only``):
    the number of thresholds withdrawn per project that had any."""
    out: dict[str, int] = {}
    for project_id in db.run(projects_with_thresholds):
        if only is not None and project_id != int(only):
            continue
        withdrawn = update_project(db, db.run(load_project, project_id), now)
        if withdrawn:
            out[str(project_id)] = len(withdrawn)
    return out


def spot_tallies(rows: list[ThresholdRow]) -> dict[str, list[int]]:
    """Per option, spot checks agreeing and checked over the given thresholds."""
    out: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for r in rows:
        out[r.option][0] += r.spot_correct
        out[r.option][1] += r.spot_n
    return dict(out)
