"""The table of correction rounds (:mod:`labelfarm.services.correction_rounds`). Declared here,
on the metadata :mod:`labelfarm.db.tables` passes in (which also exports it).
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


def rounds_tables(metadata: MetaData) -> Table:
    """``correction_rounds``, on ``metadata``."""
    # One row per correction round: a manager's request that the queue serve the items the
    # model confuses for one pair of options of a choice field, for a budget of new labels.
    # The pair is stored by option names (the schema's canonical names), so a round reads the
    # same after options are added. ``pinned``: the item ids the model already got wrong that
    # the round reopened for one more label (JSON list). ``labels_spent`` is final once closed.
    correction_rounds = Table(
        "correction_rounds",
        metadata,
        Column("id", Integer, primary_key=True),
        Column("project_id", Integer, ForeignKey("projects.id"), nullable=False),
        Column("field", String(200), nullable=False),
        Column("option_a", String(200), nullable=False),
        Column("option_b", String(200), nullable=False),
        Column("budget", Integer, nullable=False),  # new labels
        Column("state", String(8), nullable=False),  # open | closed
        Column("from_version", Integer, nullable=False),  # model_versions.version
        Column("pinned", Text, nullable=False, server_default="[]"),
        # labels count from here: the project's newest annotation id when it opened
        Column("after_annotation", Integer, nullable=False, server_default="0"),
        Column("labels_spent", Integer, nullable=False, server_default="0"),
        # queue a new version (then promoted) of the starting version's predictor on close
        Column("train_after", Boolean, nullable=False, server_default=text("true")),
        Column("opened_by", Integer, ForeignKey("users.id"), nullable=True),
        Column("opened_at", Float, nullable=False),
        Column("closed_by", Integer, ForeignKey("users.id"), nullable=True),
        Column("closed_at", Float, nullable=True),
        Column("closed_reason", String(16), nullable=True),  # budget | manager
        Index("ix_correction_rounds_project", "project_id", "state"),
    )
    return correction_rounds
