"""The orders in which the queue hands out items: each walks one index of ``items``.

A project names its ordering (``ProjectSettings.ordering``); ``next`` reads open items in that
order. Each order starts with the index's constant leading columns ``(project_id, is_open)``:
naming them makes it an order only the index gives without a sort, so the planner takes the
index even when statistics say most rows qualify.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Ordering:
    name: str
    index: str  # the index of ``items`` (db/tables.py) whose order this is
    columns: tuple[str, ...]  # after (project_id, is_open)
    sort_key: Callable[[Any], Any]  # the same order, over rows with these columns

    def index_order(self, alias: str) -> str:
        """The ORDER BY the index serves, on items aliased ``alias``."""
        return ", ".join(f"{alias}.{c}" for c in ("project_id", "is_open", *self.columns))

    @property
    def plain_order(self) -> str:
        """The same order over rows that carry these columns (a CTE's)."""
        return ", ".join(self.columns)


ORDERINGS: dict[str, Ordering] = {
    o.name: o
    for o in (
        Ordering("fifo", "ix_items_fifo", ("id",), lambda r: r.id),
        Ordering(
            "priority",
            "ix_items_priority",
            ("priority DESC", "deadline_key", "id"),
            lambda r: (-r.priority, r.deadline_key, r.id),
        ),
        # the active-learning score (items.score, written by the score job): highest first
        Ordering("score", "ix_items_score", ("score DESC", "id"), lambda r: (-r.score, r.id)),
    )
}
