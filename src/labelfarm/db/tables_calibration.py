"""The table of fitted confidence calibrators (:mod:`labelfarm.services.calibration`).
Declared here, on the metadata :mod:`labelfarm.db.tables` passes in (which also exports it).
"""

from sqlalchemy import Column, Float, ForeignKey, Integer, MetaData, String, Table, Text


def calibration_tables(metadata: MetaData) -> Table:
    """``confidence_calibrators``, on ``metadata``."""
    # One row per choice field of a project with gold: the map from the Dawid-Skene
    # confidence of an item's label to a calibrated one (labelfarm.ml.calibration.Calibrator
    # as JSON), fitted on the gold items' answers by the refit.
    confidence_calibrators = Table(
        "confidence_calibrators",
        metadata,
        Column("project_id", Integer, ForeignKey("projects.id"), primary_key=True),
        Column("field", String(64), primary_key=True),
        Column("calibrator", Text, nullable=False),
        Column("n_gold", Integer, nullable=False),
        Column("fitted_at", Float, nullable=False),
    )
    return confidence_calibrators
