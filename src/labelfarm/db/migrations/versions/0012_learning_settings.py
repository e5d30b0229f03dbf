"""The learning loop's project settings: the active-learning sampler, how many new labels
start a new model version, auto-accept's precision target and its spot-check share.

Revision ID: 0012
Revises: 0011
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("projects") as batch:
        batch.add_column(
            sa.Column("sampler", sa.String(32), server_default="margin", nullable=False)
        )
        batch.add_column(
            sa.Column("retrain_every", sa.Integer(), server_default="0", nullable=False)
        )
        batch.add_column(
            sa.Column("auto_accept_target", sa.Float(), server_default="0", nullable=False)
        )
        batch.add_column(
            sa.Column("spot_check_share", sa.Float(), server_default="0.05", nullable=False)
        )


def downgrade() -> None:
    with op.batch_alter_table("projects") as batch:
        for name in ("spot_check_share", "auto_accept_target", "retrain_every", "sampler"):
            batch.drop_column(name)
