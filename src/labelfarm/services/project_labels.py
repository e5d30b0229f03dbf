"""Every current label of a project, read at once: the input of the annotator-model fit
(:mod:`labelfarm.services.fitting`) and of the quality reports
(:mod:`labelfarm.services.quality`, :mod:`labelfarm.services.agreement`).

Off the hot path: it reads all of the project's annotations, except those left out of labels
(``annotations.excluded``).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select, text

from labelfarm.db import tables
from labelfarm.db.tx import CoreTx
from labelfarm.jsonutil import loads


@dataclass
class ProjectLabels:
    """The newest annotation of each (item, annotator), gold answers and reviewed values."""

    latest: dict[tuple[int, int], dict[str, Any]]  # (item, user) -> value
    gold: dict[int, dict[str, Any]]
    reviewed: dict[int, dict[str, Any]]

    def answers(self, field_name: str) -> list[tuple[int, int, Any]]:
        """``(item, user, answer)`` for every newest annotation that answers the field."""
        return [
            (item, user, value[field_name])
            for (item, user), value in self.latest.items()
            if isinstance(value, dict) and value.get(field_name) is not None
        ]

    def by_item(self, field_name: str) -> dict[int, list[tuple[int, Any]]]:
        """The field's answers grouped by item: ``item -> [(user, answer), ...]``."""
        out: dict[int, list[tuple[int, Any]]] = defaultdict(list)
        for item, user, answer in self.answers(field_name):
            out[item].append((user, answer))
        return out


def read_project_labels(tx: CoreTx, project_id: int) -> ProjectLabels:
    latest: dict[tuple[int, int], dict[str, Any]] = {}
    rows = tx.execute(
        text(
            "SELECT item_id, user_id, value FROM annotations "
            "WHERE project_id = :p AND excluded IS NULL ORDER BY id"
        ),
        {"p": project_id},
    )
    for item_id, user_id, value in rows:
        latest[(item_id, user_id)] = loads(value)
    gold = {
        r.id: loads(r.gold)
        for r in tx.execute(
            select(tables.items.c.id, tables.items.c.gold).where(
                tables.items.c.project_id == project_id, tables.items.c.is_gold.is_(True)
            )
        )
        if r.gold
    }
    reviewed: dict[int, dict[str, Any]] = {}
    for r in tx.execute(
        select(tables.reviews.c.item_id, tables.reviews.c.value)
        .where(tables.reviews.c.project_id == project_id)
        .order_by(tables.reviews.c.id)
    ):
        reviewed[r.item_id] = loads(r.value)
    return ProjectLabels(latest, gold, reviewed)
