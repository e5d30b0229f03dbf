"""Confidence calibrators: ``confidence_calibrators``, one row per choice field of a project
with gold, the fitted map from an item's Dawid-Skene confidence to a calibrated one
(:mod:`labelfarm.services.calibration`).

Revision ID: 0017
Revises: 0016
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "confidence_calibrators",
        sa.Column("project_id", sa.Integer(), nullable=False),
        sa.Column("field", sa.String(64), nullable=False),
        sa.Column("calibrator", sa.Text(), nullable=False),
        sa.Column("n_gold", sa.Integer(), nullable=False),
        sa.Column("fitted_at", sa.Float(), nullable=False),
        sa.ForeignKeyConstraint(["project_id"], ["projects.id"]),
        sa.PrimaryKeyConstraint("project_id", "field"),
    )


def downgrade() -> None:
    op.drop_table("confidence_calibrators")
