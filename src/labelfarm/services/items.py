"""Items for managers and reviewers: pages of a project's items, one item."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from labelfarm.db.tables import items
from labelfarm.db.tx import CoreTx, transaction
from labelfarm.errors import NotFound
from labelfarm.jsonutil import loads

MAX_PAGE = 1000


@transaction("read")
def items_page(tx: CoreTx, project_id: int, after: int, limit: int) -> list[dict[str, Any]]:
    """Up to ``limit`` (1-1000) ready items in id order after item ``after``."""
    rows = tx.execute(
        select(
            items.c.id,
            items.c.external_id,
            items.c.data,
            items.c.priority,
            items.c.n_submitted,
            items.c.n_leased,
            items.c.media_sha256,
        )
        .where(items.c.project_id == project_id, items.c.status == "ready", items.c.id > after)
        .order_by(items.c.id)
        .limit(max(1, min(limit, MAX_PAGE)))
    ).mappings()
    return [{**r, "data": loads(r["data"])} for r in rows]


@transaction("read")
def get_item(tx: CoreTx, project_id: int, item_id: int) -> dict[str, Any]:
    page = items_page(tx, project_id, item_id - 1, 1)
    if not page or page[0]["id"] != item_id:
        raise NotFound(f"no item {item_id} in this project")
    return page[0]
