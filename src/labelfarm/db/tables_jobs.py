"""The tables of model work: jobs (the queue :mod:`labelfarm.jobs` runs), model versions
(:mod:`labelfarm.services.models`) and external model servers
(:mod:`labelfarm.services.ml_backends`). Declared here, on the metadata
:mod:`labelfarm.db.tables` passes in (which also exports them), to keep that module short.
"""

from sqlalchemy import (
    Boolean,
    Column,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    text,
)


def job_tables(metadata: MetaData) -> tuple[Table, Table, Table]:
    """``jobs``, ``model_versions`` and ``ml_backends``, on ``metadata``."""
    # One unit of background work. The row is the record: a worker claims it (state running,
    # worker, lease_until), keeps its lease alive with heartbeats, reports progress, and
    # finishes it (done | failed | cancelled); a job whose lease ran out is taken up again.
    jobs = Table(
        "jobs",
        metadata,
        Column("id", Integer, primary_key=True),
        Column("kind", String(32), nullable=False),
        Column("project_id", Integer, ForeignKey("projects.id"), nullable=True),
        Column("workspace_id", Integer, ForeignKey("workspaces.id"), nullable=True),
        Column("params", Text, nullable=False, server_default="{}"),
        # queued | running | done | failed | cancelled
        Column("state", String(12), nullable=False),
        Column("progress_done", Integer, nullable=False, server_default="0"),
        Column("progress_total", Integer, nullable=True),
        Column("message", Text, nullable=False, server_default=""),
        Column("result", Text, nullable=True),
        Column("error", Text, nullable=True),
        Column("attempts", Integer, nullable=False, server_default="0"),
        Column("max_attempts", Integer, nullable=False, server_default="3"),
        Column("run_after", Float, nullable=False, server_default="0"),
        Column("worker", String(200), nullable=True),
        Column("lease_until", Float, nullable=True),
        Column("heartbeat_at", Float, nullable=True),
        Column("cancel_requested", Boolean, nullable=False, server_default=text("false")),
        Column("created_by", Integer, ForeignKey("users.id"), nullable=True),
        Column("created_at", Float, nullable=False),
        Column("started_at", Float, nullable=True),
        Column("finished_at", Float, nullable=True),
        Index("ix_jobs_state_run_after", "state", "run_after"),
        Index("ix_jobs_project", "project_id", "id"),
    )
    # A trained model: what it is (predictor and parameters), what it learnt from (the exact
    # training set, kept as a file beside the model) and how it did on the held-out set.
    model_versions = Table(
        "model_versions",
        metadata,
        Column("id", Integer, primary_key=True),
        Column("project_id", Integer, ForeignKey("projects.id"), nullable=False),
        Column("version", Integer, nullable=False),  # 1, 2, ... per project
        Column("predictor", String(100), nullable=False),
        Column("params", Text, nullable=False, server_default="{}"),
        Column("fields", Text, nullable=False, server_default="[]"),  # the fields it predicts
        Column("schema_version", Integer, nullable=False),
        # training | ready | failed | retired; at most one promoted version per project
        Column("state", String(12), nullable=False),
        Column("promoted", Boolean, nullable=False, server_default=text("false")),
        Column("artifact", String(500), nullable=True),  # the saved model, in the model store
        Column("training_set", String(500), nullable=True),  # its training set, likewise
        Column("training_sha256", String(64), nullable=True),
        Column("n_train", Integer, nullable=False, server_default="0"),
        Column("n_eval", Integer, nullable=False, server_default="0"),
        Column("train_seconds", Float, nullable=True),
        Column("evaluation", Text, nullable=True),  # JSON: accuracy, macro-F1, ECE, confusion
        Column("job_id", Integer, ForeignKey("jobs.id"), nullable=True),
        Column("created_by", Integer, ForeignKey("users.id"), nullable=True),
        Column("created_at", Float, nullable=False),
        Column("promoted_at", Float, nullable=True),
        Index("ux_model_versions_project_version", "project_id", "version", unique=True),
    )
    # A model server speaking Label Studio's ML-backend HTTP shape, attached to a project.
    ml_backends = Table(
        "ml_backends",
        metadata,
        Column("id", Integer, primary_key=True),
        Column("project_id", Integer, ForeignKey("projects.id"), nullable=False, index=True),
        Column("title", String(200), nullable=False),
        Column("url", String(2000), nullable=False),
        Column("auth_user", String(200), nullable=True),
        Column("auth_secret", Text, nullable=True),  # encrypted with a key from the secret
        Column("model_version", String(200), nullable=True),  # as /setup answered
        Column("created_by", Integer, ForeignKey("users.id"), nullable=True),
        Column("created_at", Float, nullable=False),
    )
    return jobs, model_versions, ml_backends
