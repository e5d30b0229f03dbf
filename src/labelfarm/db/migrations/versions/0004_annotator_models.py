"""annotator models

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-21 09:30:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "annotator_models",
        sa.Column("project_id", sa.Integer(), nullable=False),
        sa.Column("field", sa.String(length=64), nullable=False),
        sa.Column("model", sa.Text(), nullable=False),
        sa.Column("n_annotations", sa.Integer(), nullable=False),
        sa.Column("fitted_at", sa.Float(), nullable=False),
        sa.ForeignKeyConstraint(
            ["project_id"], ["projects.id"], name=op.f("fk_annotator_models_project_id_projects")
        ),
        sa.PrimaryKeyConstraint("project_id", "field", name=op.f("pk_annotator_models")),
    )


def downgrade() -> None:
    op.drop_table("annotator_models")
