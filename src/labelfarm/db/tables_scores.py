"""The table of the model's outputs per item, which the score job reads
(:mod:`labelfarm.services.models.outputs`, :mod:`labelfarm.services.scores`). Declared here, on
the metadata :mod:`labelfarm.db.tables` passes in (which also exports it). The queue's score
column is ``items.score`` itself (db/tables.py), with its index ``ix_items_score``.
"""

from sqlalchemy import (
    Column,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
)


def scores_tables(metadata: MetaData) -> Table:
    """``model_outputs``, on ``metadata``."""
    # One row per item: what the newest model version that predicted it said of the project's
    # loop field (its first choice field): the class probabilities, float32 little-endian in
    # the field's option order, and the model's embedding of the item (float16, or NULL when
    # the predictor gives none). Replaced whole by each predict job. No key to projects: the
    # predict job's writes would lock the project's row (as migration 0006 explains).
    model_outputs = Table(
        "model_outputs",
        metadata,
        Column("item_id", Integer, ForeignKey("items.id"), primary_key=True),
        Column("project_id", Integer, nullable=False),
        Column("version", Integer, nullable=False),  # model_versions.version
        Column("field", String(200), nullable=False),
        Column("proba", LargeBinary, nullable=False),
        Column("embedding", LargeBinary, nullable=True),
        Column("created_at", Float, nullable=False),
        Index("ix_model_outputs_project", "project_id", "item_id"),
    )
    return model_outputs
