"""The learning loop's tables, on the metadata :mod:`labelfarm.db.tables` passes in: model
outputs (db/tables_scores.py), correction rounds (db/tables_rounds.py), auto-accept
(db/tables_auto.py), suspected label errors (db/tables_label_issues.py) and confidence
calibrators (db/tables_calibration.py)."""

from sqlalchemy import MetaData, Table

from labelfarm.db.tables_auto import auto_tables
from labelfarm.db.tables_calibration import calibration_tables
from labelfarm.db.tables_label_issues import label_issues_tables
from labelfarm.db.tables_rounds import rounds_tables
from labelfarm.db.tables_scores import scores_tables


def learning_tables(metadata: MetaData) -> tuple[Table, Table, Table, Table, Table, Table]:
    """``model_outputs``, ``correction_rounds``, ``auto_thresholds``, ``auto_labels``,
    ``label_issues`` and ``confidence_calibrators``, on ``metadata``."""
    model_outputs = scores_tables(metadata)
    correction_rounds = rounds_tables(metadata)
    auto_thresholds, auto_labels = auto_tables(metadata)
    label_issues = label_issues_tables(metadata)
    confidence_calibrators = calibration_tables(metadata)
    return (
        model_outputs,
        correction_rounds,
        auto_thresholds,
        auto_labels,
        label_issues,
        confidence_calibrators,
    )
