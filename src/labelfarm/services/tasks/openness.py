"""Which items the queue may hand out: ``items.is_open``.

Every statement that changes an item's counters (``n_leased``, ``n_submitted``) or its
label confidence sets ``is_open`` in the same statement, from :func:`open_expr`, so the
column is always true to its definition and ``next`` reads open items straight off an index.
"""

from __future__ import annotations

from typing import Any

from labelfarm.db.tx import CoreTx, Sql


def open_expr(dl: str = "0", ds: str = "0", conf: str = "COALESCE(label_confidence, 0)") -> str:
    """SQL for ``items.is_open`` after changing the counters by ``dl`` and ``ds``.

    Open means: not gold (gold is served by its own path), not reviewed (a review decision
    closes its item for good), and either below the minimum
    overlap counting live leases and submissions, or, with adaptive overlap, nothing in
    flight, below ``max_overlap`` and the label's confidence below the target.
    Parameters: ``:overlap``, ``:max_overlap`` (0 when adaptive overlap is off), ``:target``
    (see :func:`open_params`); ``conf`` is the confidence to compare (SET clauses see the
    old column values).
    """
    n = f"(n_leased + {dl} + n_submitted + {ds})"
    return (
        f"(is_gold = false AND is_reviewed = false AND ({n} < :overlap OR "
        f"((n_leased + {dl}) = 0 AND (n_submitted + {ds}) < :max_overlap AND {conf} < :target)))"
    )


def open_params(overlap: int, max_overlap: int, target: float) -> dict[str, Any]:
    """The parameters of :func:`open_expr` for a project's settings."""
    return {
        "overlap": overlap,
        "max_overlap": max_overlap if max_overlap > overlap else 0,
        "target": target,
    }


# The settings :func:`open_expr` depends on: changing one recomputes every item's openness.
OPENNESS = ("overlap", "max_overlap", "target_confidence")

# "Not handed to this annotator before": a probe of uq_assignments_item_user per candidate.
# OFFSET 0 keeps PostgreSQL from flattening it into an anti join, which a generic plan (the
# hot connections force those, see db/pools.py) may run as a scan of all the annotator's
# past assignments, a cost that grows with their history.
NOT_MINE = (
    "NOT EXISTS (SELECT 1 FROM assignments a WHERE a.item_id = i.id AND a.user_id = :u "
    "LIMIT 1 OFFSET 0)"
)

# Counter changes keep is_open true to its definition in the same statement.
BUMP_ITEM = Sql(
    "UPDATE items SET n_leased = n_leased + :dl, n_submitted = n_submitted + :ds, "
    f"is_open = {open_expr(':dl', ':ds')} WHERE id = :id"
)
REOPEN = Sql(f"UPDATE items SET is_open = {open_expr()} WHERE project_id = :p AND status = 'ready'")


def reopen_items(tx: CoreTx, project_id: int, params: dict[str, Any]) -> None:
    """Recompute which items are open after the overlap settings changed."""
    tx.run(REOPEN, {"p": project_id, **params})
