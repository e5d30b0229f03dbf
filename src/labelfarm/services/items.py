"""Items for managers and reviewers: pages of a project's items, one item.

A read here is bounded in bytes, not only in rows: a page stops once it holds
``PAGE_BYTES`` of item data (at least one item), and the rows are fetched a few at a
time, so a page of large items costs a few MiB whatever ``limit`` asked for. Item data is
handed on as the JSON text stored (an ``orjson.Fragment``), never parsed and re-encoded.
"""

from __future__ import annotations

from typing import Any

import orjson
from sqlalchemy import select

from labelfarm.db.tables import items
from labelfarm.db.tx import CoreTx, transaction
from labelfarm.errors import NotFound

MAX_PAGE = 1000
PAGE_BYTES = 4 << 20  # item data in one page, at most (beyond its first item)
_FETCH = 8  # rows fetched at a time


@transaction("read")
def items_page(tx: CoreTx, project_id: int, after: int, limit: int) -> list[dict[str, Any]]:
    """Up to ``limit`` (1-1000) ready items in id order after item ``after``, fewer when
    their data passes ``PAGE_BYTES``; each item's ``data`` is its JSON text as an
    ``orjson.Fragment`` (a response renders it as it is)."""
    stmt = (
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
    )
    page: list[dict[str, Any]] = []
    size = 0
    result = tx.conn.execution_options(yield_per=_FETCH).execute(stmt).mappings()
    try:
        for r in result:
            page.append({**r, "data": orjson.Fragment(r["data"])})
            size += len(r["data"])
            if size >= PAGE_BYTES:
                break
    finally:
        result.close()
    return page


@transaction("read")
def get_item(tx: CoreTx, project_id: int, item_id: int) -> dict[str, Any]:
    page = items_page(tx, project_id, item_id - 1, 1)
    if not page or page[0]["id"] != item_id:
        raise NotFound(f"no item {item_id} in this project")
    return page[0]
