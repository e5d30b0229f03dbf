"""Jobs and models: the job queue, model versions, external model servers, predictions that
name their model version, verified annotations, and the project settings of pre-fill on
gold and held-out evaluation.

Revision ID: 0010
Revises: 0009
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    _upgrade_jobs()
    _upgrade_models()
    _upgrade_predictions_and_annotations()
    _upgrade_project_settings()


def downgrade() -> None:
    _downgrade_project_settings()
    _downgrade_predictions_and_annotations()
    _downgrade_models()
    _downgrade_jobs()


def _fk(table: str, column: str, target: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        [column], [f"{target}.id"], name=op.f(f"fk_{table}_{column}_{target}")
    )


# -- jobs ------------------------------------------------------------------------------------
def _upgrade_jobs() -> None:
    op.create_table(
        "jobs",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("project_id", sa.Integer(), nullable=True),
        sa.Column("workspace_id", sa.Integer(), nullable=True),
        sa.Column("params", sa.Text(), server_default="{}", nullable=False),
        sa.Column("state", sa.String(12), nullable=False),
        sa.Column("progress_done", sa.Integer(), server_default="0", nullable=False),
        sa.Column("progress_total", sa.Integer(), nullable=True),
        sa.Column("message", sa.Text(), server_default="", nullable=False),
        sa.Column("result", sa.Text(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("attempts", sa.Integer(), server_default="0", nullable=False),
        sa.Column("max_attempts", sa.Integer(), server_default="3", nullable=False),
        sa.Column("run_after", sa.Float(), server_default="0", nullable=False),
        sa.Column("worker", sa.String(200), nullable=True),
        sa.Column("lease_until", sa.Float(), nullable=True),
        sa.Column("heartbeat_at", sa.Float(), nullable=True),
        sa.Column(
            "cancel_requested", sa.Boolean(), server_default=sa.text("false"), nullable=False
        ),
        sa.Column("created_by", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.Column("started_at", sa.Float(), nullable=True),
        sa.Column("finished_at", sa.Float(), nullable=True),
        _fk("jobs", "project_id", "projects"),
        _fk("jobs", "workspace_id", "workspaces"),
        _fk("jobs", "created_by", "users"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_jobs")),
    )
    op.create_index("ix_jobs_state_run_after", "jobs", ["state", "run_after"])
    op.create_index("ix_jobs_project", "jobs", ["project_id", "id"])


def _downgrade_jobs() -> None:
    op.drop_index("ix_jobs_project", table_name="jobs")
    op.drop_index("ix_jobs_state_run_after", table_name="jobs")
    op.drop_table("jobs")


# -- model versions and external model servers ----------------------------------------------
def _upgrade_models() -> None:
    op.create_table(
        "model_versions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("project_id", sa.Integer(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("predictor", sa.String(100), nullable=False),
        sa.Column("params", sa.Text(), server_default="{}", nullable=False),
        sa.Column("fields", sa.Text(), server_default="[]", nullable=False),
        sa.Column("schema_version", sa.Integer(), nullable=False),
        sa.Column("state", sa.String(12), nullable=False),
        sa.Column("promoted", sa.Boolean(), server_default=sa.text("false"), nullable=False),
        sa.Column("artifact", sa.String(500), nullable=True),
        sa.Column("training_set", sa.String(500), nullable=True),
        sa.Column("training_sha256", sa.String(64), nullable=True),
        sa.Column("n_train", sa.Integer(), server_default="0", nullable=False),
        sa.Column("n_eval", sa.Integer(), server_default="0", nullable=False),
        sa.Column("train_seconds", sa.Float(), nullable=True),
        sa.Column("evaluation", sa.Text(), nullable=True),
        sa.Column("job_id", sa.Integer(), nullable=True),
        sa.Column("created_by", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.Column("promoted_at", sa.Float(), nullable=True),
        _fk("model_versions", "project_id", "projects"),
        _fk("model_versions", "job_id", "jobs"),
        _fk("model_versions", "created_by", "users"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_model_versions")),
    )
    op.create_index(
        "ux_model_versions_project_version",
        "model_versions",
        ["project_id", "version"],
        unique=True,
    )
    op.create_table(
        "ml_backends",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("project_id", sa.Integer(), nullable=False),
        sa.Column("title", sa.String(200), nullable=False),
        sa.Column("url", sa.String(2000), nullable=False),
        sa.Column("auth_user", sa.String(200), nullable=True),
        sa.Column("auth_secret", sa.Text(), nullable=True),
        sa.Column("model_version", sa.String(200), nullable=True),
        sa.Column("created_by", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.Float(), nullable=False),
        _fk("ml_backends", "project_id", "projects"),
        _fk("ml_backends", "created_by", "users"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ml_backends")),
    )
    op.create_index("ix_ml_backends_project_id", "ml_backends", ["project_id"])


def _downgrade_models() -> None:
    op.drop_index("ix_ml_backends_project_id", table_name="ml_backends")
    op.drop_table("ml_backends")
    op.drop_index("ux_model_versions_project_version", table_name="model_versions")
    op.drop_table("model_versions")


# -- predictions name their version; verified annotations; imports name their job ----------
def _upgrade_predictions_and_annotations() -> None:
    op.add_column("predictions", sa.Column("model_version", sa.String(200), nullable=True))
    # an import run by a job: the job's next run finds it, and recovery at start leaves it
    op.add_column("imports", sa.Column("job_id", sa.Integer(), nullable=True))
    op.add_column(
        "annotations",
        sa.Column("verified", sa.Boolean(), server_default=sa.text("false"), nullable=False),
    )


def _downgrade_predictions_and_annotations() -> None:
    with op.batch_alter_table("annotations") as batch:
        batch.drop_column("verified")
    with op.batch_alter_table("predictions") as batch:
        batch.drop_column("model_version")
    with op.batch_alter_table("imports") as batch:
        batch.drop_column("job_id")


# -- project settings: wrong pre-fill on gold, the held-out share ---------------------------
def _upgrade_project_settings() -> None:
    with op.batch_alter_table("projects") as batch:
        batch.add_column(
            sa.Column("wrong_prefill_share", sa.Float(), server_default="0.25", nullable=False)
        )
        batch.add_column(
            sa.Column("holdout_share", sa.Float(), server_default="0.2", nullable=False)
        )


def _downgrade_project_settings() -> None:
    with op.batch_alter_table("projects") as batch:
        batch.drop_column("holdout_share")
        batch.drop_column("wrong_prefill_share")
