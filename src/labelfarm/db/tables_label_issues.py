"""The table of suspected label errors (:mod:`labelfarm.services.label_errors`). Declared
here, on the metadata :mod:`labelfarm.db.tables` passes in (which also exports it).
"""

from sqlalchemy import Column, Float, ForeignKey, Index, Integer, MetaData, String, Table, Text


def label_issues_tables(metadata: MetaData) -> Table:
    """``label_issues``, on ``metadata``."""
    # One row per item a label-error run suspected: its label then (``label``: the option
    # name), the model's class (``suggested``), the score (likelihood the label is wrong),
    # the reason shown to reviewers (JSON) and the job that found it. ``state`` is open until
    # a reviewer's verdict: confirmed (the label was changed), rejected (kept; or "not an
    # error"); ``review_id`` is the review that decided it, when one did.
    label_issues = Table(
        "label_issues",
        metadata,
        Column("id", Integer, primary_key=True),
        Column("project_id", Integer, ForeignKey("projects.id"), nullable=False),
        Column("item_id", Integer, ForeignKey("items.id"), nullable=False),
        Column("job_id", Integer, ForeignKey("jobs.id"), nullable=True),
        Column("field", String(200), nullable=False),
        Column("label", String(200), nullable=False),
        Column("suggested", String(200), nullable=False),
        Column("score", Float, nullable=False),
        Column("reason", Text, nullable=False, server_default="{}"),
        Column("state", String(16), nullable=False),  # open | confirmed | rejected
        Column("verdict_by", Integer, ForeignKey("users.id"), nullable=True),
        Column("verdict_at", Float, nullable=True),
        Column("review_id", Integer, ForeignKey("reviews.id"), nullable=True),
        Column("created_at", Float, nullable=False),
        Index("ix_label_issues_project", "project_id", "state", "score"),
        Index("ix_label_issues_item", "item_id", "state"),
    )
    return label_issues
