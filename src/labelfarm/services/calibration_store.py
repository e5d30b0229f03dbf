"""Where a project's confidence calibrators are kept (``confidence_calibrators``, migration
0017): :func:`load_calibrators` for the label paths
(:func:`labelfarm.services.aggregation.label_items`), :func:`store_calibrators` for the refit
(:mod:`labelfarm.services.calibration`). Kept apart so the label paths need nothing else."""

from __future__ import annotations

from collections.abc import Mapping

from sqlalchemy import delete, select

from labelfarm.db import tables
from labelfarm.db.tx import CoreTx
from labelfarm.jsonutil import dumps, loads
from labelfarm.ml.calibration import Calibrator

__all__ = ["load_calibrators", "store_calibrators"]


def load_calibrators(tx: CoreTx, project_id: int) -> dict[str, Calibrator]:
    """The stored calibrators of a project, by field (empty before the first fit)."""
    t = tables.confidence_calibrators
    rows = tx.execute(select(t.c.field, t.c.calibrator).where(t.c.project_id == project_id))
    return {r.field: Calibrator.from_json(loads(r.calibrator)) for r in rows}


def store_calibrators(
    tx: CoreTx, project_id: int, fitted: Mapping[str, Calibrator], now: float
) -> None:
    """Replace the project's calibrators with ``fitted`` (by field)."""
    t = tables.confidence_calibrators
    tx.execute(delete(t).where(t.c.project_id == project_id))
    rows = [
        {
            "project_id": project_id,
            "field": name,
            "calibrator": dumps(c.to_json()),
            "n_gold": c.n_gold,
            "fitted_at": now,
        }
        for name, c in fitted.items()
    ]
    if rows:
        tx.execute(t.insert(), rows)
