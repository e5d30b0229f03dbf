"""Index predictions by project (a project's has-predictions check).

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_predictions_project", "predictions", ["project_id"])


def downgrade() -> None:
    op.drop_index("ix_predictions_project", table_name="predictions")
