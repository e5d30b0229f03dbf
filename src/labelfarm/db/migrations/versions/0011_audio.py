"""Audio: the facts, waveform peaks and listening copy of each stored audio file; the
measured word error of speech-recognition pre-fill per language; the project settings that
turn pre-fill off where it does not help.

Revision ID: 0011
Revises: 0010
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "media_audio",
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("duration", sa.Float(), nullable=False),
        sa.Column("sample_rate", sa.Integer(), nullable=False),
        sa.Column("channels", sa.Integer(), nullable=False),
        sa.Column("format", sa.String(16), nullable=False),
        sa.Column("peaks", sa.Text(), nullable=False),
        sa.Column("stream_sha256", sa.String(64), nullable=True),
        sa.Column("stream_mime", sa.String(100), nullable=True),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.ForeignKeyConstraint(
            ["sha256"], ["media.sha256"], name=op.f("fk_media_audio_sha256_media")
        ),
        sa.PrimaryKeyConstraint("sha256", name=op.f("pk_media_audio")),
    )
    op.create_table(
        "asr_measurements",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("project_id", sa.Integer(), nullable=False),
        sa.Column("item_id", sa.Integer(), nullable=False),
        sa.Column("annotation_id", sa.Integer(), nullable=False),
        sa.Column("model_version", sa.String(200), nullable=False),
        sa.Column("language", sa.String(35), nullable=False),
        sa.Column("words", sa.Integer(), nullable=False),
        sa.Column("errors", sa.Integer(), nullable=False),
        sa.Column("shadow", sa.Boolean(), nullable=False),
        sa.Column("measured_at", sa.Float(), nullable=False),
        sa.Column("note", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["project_id"], ["projects.id"], name=op.f("fk_asr_measurements_project_id_projects")
        ),
        sa.ForeignKeyConstraint(
            ["item_id"], ["items.id"], name=op.f("fk_asr_measurements_item_id_items")
        ),
        sa.ForeignKeyConstraint(
            ["annotation_id"],
            ["annotations.id"],
            name=op.f("fk_asr_measurements_annotation_id_annotations"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_asr_measurements")),
    )
    op.create_index(
        "ix_asr_measurements_project_language",
        "asr_measurements",
        ["project_id", "language", "measured_at"],
    )
    op.create_index(
        "ux_asr_measurements_annotation", "asr_measurements", ["annotation_id"], unique=True
    )
    with op.batch_alter_table("projects") as batch:
        batch.add_column(
            sa.Column("asr_wer_threshold", sa.Float(), server_default="0.3", nullable=False)
        )
        batch.add_column(
            sa.Column("asr_shadow_share", sa.Float(), server_default="0.1", nullable=False)
        )


def downgrade() -> None:
    with op.batch_alter_table("projects") as batch:
        batch.drop_column("asr_shadow_share")
        batch.drop_column("asr_wer_threshold")
    op.drop_index("ux_asr_measurements_annotation", table_name="asr_measurements")
    op.drop_index("ix_asr_measurements_project_language", table_name="asr_measurements")
    op.drop_table("asr_measurements")
    op.drop_table("media_audio")
