"""Every project setting column has a default in the database.

The settings added later (gold, qualification, adaptive overlap) carried one from the start;
``overlap``, ``lease_seconds`` and ``ordering`` now do too, so the ``projects`` table is
exactly what ``labelfarm.db.project_settings`` declares.

Revision ID: 0007
Revises: 0006
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

_DEFAULTS = (
    ("overlap", sa.Integer(), "1"),
    ("lease_seconds", sa.Integer(), "600"),
    ("ordering", sa.String(32), "fifo"),
)


def upgrade() -> None:
    with op.batch_alter_table("projects") as batch:
        for name, kind, default in _DEFAULTS:
            batch.alter_column(
                name, existing_type=kind, existing_nullable=False, server_default=default
            )


def downgrade() -> None:
    with op.batch_alter_table("projects") as batch:
        for name, kind, _default in _DEFAULTS:
            batch.alter_column(
                name, existing_type=kind, existing_nullable=False, server_default=None
            )
