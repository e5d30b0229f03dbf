"""The tables of judgement on the work: fitted annotator models, annotators' standing and
its history, reviewers' decisions. Declared here, on the metadata :mod:`labelfarm.db.tables`
passes in (which also exports them), to keep that module short.
"""

from sqlalchemy import (
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


def quality_tables(metadata: MetaData) -> tuple[Table, Table, Table, Table]:
    """``annotator_models``, ``annotator_status``, ``standing_events`` and ``reviews``, on
    ``metadata``."""
    # An annotator's standing in a project: qualifying, active or paused (with evidence).
    annotator_status = Table(
        "annotator_status",
        metadata,
        Column("project_id", Integer, ForeignKey("projects.id"), primary_key=True),
        Column("user_id", Integer, ForeignKey("users.id"), primary_key=True),
        Column("state", String(16), nullable=False),  # qualifying | active | paused | failed
        Column("reason", Text, nullable=False, server_default=""),
        Column("evidence", Text, nullable=False, server_default="{}"),
        Column("updated_at", Float, nullable=False),
    )
    # A reviewer's decision on an item: accept one annotation, or write the final answer.
    reviews = Table(
        "reviews",
        metadata,
        Column("id", Integer, primary_key=True),
        Column("project_id", Integer, ForeignKey("projects.id"), nullable=False),
        Column("item_id", Integer, ForeignKey("items.id"), nullable=False),
        Column("reviewer_id", Integer, ForeignKey("users.id"), nullable=False),
        Column("decision", String(16), nullable=False),  # accept | override
        Column("annotation_id", Integer, ForeignKey("annotations.id"), nullable=True),
        Column("value", Text, nullable=False),
        Column("note", Text, nullable=False, server_default=""),
        Column("created_at", Float, nullable=False),
        Index("ix_reviews_item", "item_id", "id"),
        Index("ix_reviews_project", "project_id", "id"),
    )
    # Each change of an annotator's standing in a project, newest last
    # (services/tasks/standing_history.py): by a rule (actor NULL: qualification finished,
    # accuracy below the floor) or by hand (actor: the manager). audit_id: the audit row
    # recording it; NULL while a change by a rule waits for its audit (the submit path cannot
    # write the audit log), 0 for changes audited before this table existed.
    standing_events = Table(
        "standing_events",
        metadata,
        Column("id", Integer, primary_key=True),
        Column("project_id", Integer, ForeignKey("projects.id"), nullable=False),
        Column("user_id", Integer, ForeignKey("users.id"), nullable=False),
        Column("state", String(16), nullable=False),
        Column("reason", Text, nullable=False, server_default=""),
        Column("evidence", Text, nullable=False, server_default="{}"),
        Column("actor_id", Integer, ForeignKey("users.id"), nullable=True),
        Column("created_at", Float, nullable=False),
        Column("audit_id", Integer, nullable=True),
        Index("ix_standing_events_user", "project_id", "user_id", "id"),
        Index(
            "ix_standing_events_unaudited",
            "id",
            sqlite_where=text("audit_id IS NULL"),
            postgresql_where=text("audit_id IS NULL"),
        ),
    )
    # Fitted annotator models per project and field (services/fitting.py): Dawid-Skene
    # confusion matrices for choice fields, gold-based weights for the others. A cache, refitted
    # on demand; the item labels derived from it are recomputed, never edited by hand.
    annotator_models = Table(
        "annotator_models",
        metadata,
        Column("project_id", Integer, ForeignKey("projects.id"), primary_key=True),
        Column("field", String(64), primary_key=True),
        Column("model", Text, nullable=False),
        Column("n_annotations", Integer, nullable=False),
        Column("fitted_at", Float, nullable=False),
    )
    return annotator_models, annotator_status, standing_events, reviews
