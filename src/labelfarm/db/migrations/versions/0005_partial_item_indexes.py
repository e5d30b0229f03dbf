"""Partial indexes on items: gold items, staged rows, external ids.

Most items are not gold, not staged and may have no external id; indexing only the rows
concerned makes imports and queue updates cheaper (fewer index entries to maintain).

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def _partial(name: str, columns: list[str], where: str, unique: bool = False) -> None:
    op.drop_index(name, table_name="items")
    op.create_index(
        name,
        "items",
        columns,
        unique=unique,
        sqlite_where=sa.text(where),
        postgresql_where=sa.text(where),
    )


def upgrade() -> None:
    _partial("ix_items_gold", ["project_id", "id"], "is_gold")
    _partial("ix_items_import", ["import_id"], "status = 'staged'")
    _partial(
        "uq_items_project_external",
        ["project_id", "external_id"],
        "external_id IS NOT NULL",
        unique=True,
    )


def downgrade() -> None:
    for name, columns, unique in (
        ("ix_items_gold", ["project_id", "is_gold", "id"], False),
        ("ix_items_import", ["import_id"], False),
        ("uq_items_project_external", ["project_id", "external_id"], True),
    ):
        op.drop_index(name, table_name="items")
        op.create_index(name, "items", columns, unique=unique)
