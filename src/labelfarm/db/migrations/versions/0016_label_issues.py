"""Label issues: ``label_issues``, one row per item a label-error run suspected, with the
reason shown to reviewers and their verdict (:mod:`labelfarm.services.label_errors`).

Revision ID: 0016
Revises: 0015
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "label_issues",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("project_id", sa.Integer(), nullable=False),
        sa.Column("item_id", sa.Integer(), nullable=False),
        sa.Column("job_id", sa.Integer(), nullable=True),
        sa.Column("field", sa.String(200), nullable=False),
        sa.Column("label", sa.String(200), nullable=False),
        sa.Column("suggested", sa.String(200), nullable=False),
        sa.Column("score", sa.Float(), nullable=False),
        sa.Column("reason", sa.Text(), server_default="{}", nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("verdict_by", sa.Integer(), nullable=True),
        sa.Column("verdict_at", sa.Float(), nullable=True),
        sa.Column("review_id", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.ForeignKeyConstraint(["project_id"], ["projects.id"]),
        sa.ForeignKeyConstraint(["item_id"], ["items.id"]),
        sa.ForeignKeyConstraint(["job_id"], ["jobs.id"]),
        sa.ForeignKeyConstraint(["verdict_by"], ["users.id"]),
        sa.ForeignKeyConstraint(["review_id"], ["reviews.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_label_issues_project", "label_issues", ["project_id", "state", "score"])
    op.create_index("ix_label_issues_item", "label_issues", ["item_id", "state"])


def downgrade() -> None:
    op.drop_index("ix_label_issues_item", table_name="label_issues")
    op.drop_index("ix_label_issues_project", table_name="label_issues")
    op.drop_table("label_issues")
