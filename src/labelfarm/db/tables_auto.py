"""Auto-accept's tables (:mod:`labelfarm.services.auto_accept`): the thresholds found on the
held-out evidence, and the items the model labelled. Declared here, on the metadata
:mod:`labelfarm.db.tables` passes in (which also exports them).
"""

from sqlalchemy import Column, Float, ForeignKey, Index, Integer, MetaData, String, Table


def auto_tables(metadata: MetaData) -> tuple[Table, Table]:
    """``auto_thresholds`` and ``auto_labels``, on ``metadata``."""
    # One row per class of the loop field per auto-accept run: the threshold on the promoted
    # version's confidence (NULL: the evidence was too thin), the held-out evidence at it, the
    # spot checks since, and its state: active (applied by the newest run), superseded (a newer
    # run replaced it; its items keep their labels), withdrawn (spot checks pushed the bound
    # below the target: its items went back to humans), none (no threshold passed).
    auto_thresholds = Table(
        "auto_thresholds",
        metadata,
        Column("id", Integer, primary_key=True),
        Column("project_id", Integer, ForeignKey("projects.id"), nullable=False),
        Column("job_id", Integer, nullable=True),
        Column("version", Integer, nullable=False),  # model_versions.version
        Column("field", String(200), nullable=False),
        Column("option", String(500), nullable=False),
        Column("target", Float, nullable=False),
        Column("threshold", Float, nullable=True),
        Column("n_evidence", Integer, nullable=False),
        Column("n_correct", Integer, nullable=False),
        Column("lower_bound", Float, nullable=False),
        Column("spot_n", Integer, nullable=False, server_default="0"),
        Column("spot_correct", Integer, nullable=False, server_default="0"),
        Column("state", String(16), nullable=False),
        Column("created_at", Float, nullable=False),
        Column("updated_at", Float, nullable=False),
        Index("ix_auto_thresholds_project", "project_id", "state", "id"),
    )
    # One row per item the model labelled (never more: a withdrawn item stays with humans):
    # the class and its confidence, the threshold that let it through, and its state:
    # accepted (closed, the model's label final), spot_check (left open, blind, for a human
    # label to check it: spot_value once the item has it), withdrawn (its threshold was).
    auto_labels = Table(
        "auto_labels",
        metadata,
        Column("id", Integer, primary_key=True),
        Column("project_id", Integer, nullable=False),
        Column("item_id", Integer, ForeignKey("items.id"), nullable=False),
        Column("threshold_id", Integer, ForeignKey("auto_thresholds.id"), nullable=False),
        Column("version", Integer, nullable=False),
        Column("field", String(200), nullable=False),
        Column("value", String(500), nullable=False),
        Column("confidence", Float, nullable=False),
        Column("state", String(16), nullable=False),
        Column("spot_value", String(500), nullable=True),
        Column("created_at", Float, nullable=False),
        Column("updated_at", Float, nullable=False),
        Index("uq_auto_labels_item", "item_id", unique=True),
        Index("ix_auto_labels_project", "project_id", "item_id"),
        Index("ix_auto_labels_threshold", "threshold_id", "state"),
    )
    return auto_thresholds, auto_labels
