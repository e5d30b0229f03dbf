"""Auto-accept: ``auto_thresholds`` (per class, the threshold found on the held-out evidence,
its spot checks and state) and ``auto_labels`` (one row per item the model labelled).

Revision ID: 0014
Revises: 0013
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "auto_thresholds",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("project_id", sa.Integer(), nullable=False),
        sa.Column("job_id", sa.Integer(), nullable=True),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("field", sa.String(200), nullable=False),
        sa.Column("option", sa.String(500), nullable=False),
        sa.Column("target", sa.Float(), nullable=False),
        sa.Column("threshold", sa.Float(), nullable=True),
        sa.Column("n_evidence", sa.Integer(), nullable=False),
        sa.Column("n_correct", sa.Integer(), nullable=False),
        sa.Column("lower_bound", sa.Float(), nullable=False),
        sa.Column("spot_n", sa.Integer(), server_default="0", nullable=False),
        sa.Column("spot_correct", sa.Integer(), server_default="0", nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.Column("updated_at", sa.Float(), nullable=False),
        sa.ForeignKeyConstraint(["project_id"], ["projects.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_auto_thresholds_project", "auto_thresholds", ["project_id", "state", "id"])
    op.create_table(
        "auto_labels",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("project_id", sa.Integer(), nullable=False),
        sa.Column("item_id", sa.Integer(), nullable=False),
        sa.Column("threshold_id", sa.Integer(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("field", sa.String(200), nullable=False),
        sa.Column("value", sa.String(500), nullable=False),
        sa.Column("confidence", sa.Float(), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("spot_value", sa.String(500), nullable=True),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.Column("updated_at", sa.Float(), nullable=False),
        sa.ForeignKeyConstraint(["item_id"], ["items.id"]),
        sa.ForeignKeyConstraint(["threshold_id"], ["auto_thresholds.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("uq_auto_labels_item", "auto_labels", ["item_id"], unique=True)
    op.create_index("ix_auto_labels_project", "auto_labels", ["project_id", "item_id"])
    op.create_index("ix_auto_labels_threshold", "auto_labels", ["threshold_id", "state"])


def downgrade() -> None:
    op.drop_index("ix_auto_labels_threshold", table_name="auto_labels")
    op.drop_index("ix_auto_labels_project", table_name="auto_labels")
    op.drop_index("uq_auto_labels_item", table_name="auto_labels")
    op.drop_table("auto_labels")
    op.drop_index("ix_auto_thresholds_project", table_name="auto_thresholds")
    op.drop_table("auto_thresholds")
