"""Active-learning scores: ``items.score`` with its queue index (the "score" ordering), and
``model_outputs``, the model's class probabilities and embedding per item, which the score
job reads.

Adding a column with a constant default rewrites nothing on either database (SQLite's ALTER
TABLE ADD COLUMN, PostgreSQL 11+ stores the default in the catalogue).

Revision ID: 0013
Revises: 0012
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("items", sa.Column("score", sa.Float(), server_default="0", nullable=False))
    op.create_index(
        "ix_items_score", "items", ["project_id", "is_open", sa.text("score DESC"), "id"]
    )
    op.create_table(
        "model_outputs",
        sa.Column("item_id", sa.Integer(), nullable=False),
        sa.Column("project_id", sa.Integer(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("field", sa.String(200), nullable=False),
        sa.Column("proba", sa.LargeBinary(), nullable=False),
        sa.Column("embedding", sa.LargeBinary(), nullable=True),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.ForeignKeyConstraint(["item_id"], ["items.id"]),
        sa.PrimaryKeyConstraint("item_id"),
    )
    op.create_index("ix_model_outputs_project", "model_outputs", ["project_id", "item_id"])


def downgrade() -> None:
    op.drop_index("ix_model_outputs_project", table_name="model_outputs")
    op.drop_table("model_outputs")
    op.drop_index("ix_items_score", table_name="items")
    with op.batch_alter_table("items") as batch:
        batch.drop_column("score")
