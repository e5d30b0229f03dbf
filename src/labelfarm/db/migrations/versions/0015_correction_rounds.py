"""Correction rounds: ``correction_rounds``, one row per round a manager opened for a pair of
options the model confuses (:mod:`labelfarm.services.correction_rounds`).

Revision ID: 0015
Revises: 0014
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "correction_rounds",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("project_id", sa.Integer(), nullable=False),
        sa.Column("field", sa.String(200), nullable=False),
        sa.Column("option_a", sa.String(200), nullable=False),
        sa.Column("option_b", sa.String(200), nullable=False),
        sa.Column("budget", sa.Integer(), nullable=False),
        sa.Column("state", sa.String(8), nullable=False),
        sa.Column("from_version", sa.Integer(), nullable=False),
        sa.Column("pinned", sa.Text(), server_default="[]", nullable=False),
        sa.Column("after_annotation", sa.Integer(), server_default="0", nullable=False),
        sa.Column("labels_spent", sa.Integer(), server_default="0", nullable=False),
        sa.Column("train_after", sa.Boolean(), server_default=sa.text("true"), nullable=False),
        sa.Column("opened_by", sa.Integer(), nullable=True),
        sa.Column("opened_at", sa.Float(), nullable=False),
        sa.Column("closed_by", sa.Integer(), nullable=True),
        sa.Column("closed_at", sa.Float(), nullable=True),
        sa.Column("closed_reason", sa.String(16), nullable=True),
        sa.ForeignKeyConstraint(["project_id"], ["projects.id"]),
        sa.ForeignKeyConstraint(["opened_by"], ["users.id"]),
        sa.ForeignKeyConstraint(["closed_by"], ["users.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_correction_rounds_project", "correction_rounds", ["project_id", "state"])


def downgrade() -> None:
    op.drop_index("ix_correction_rounds_project", table_name="correction_rounds")
    op.drop_table("correction_rounds")
