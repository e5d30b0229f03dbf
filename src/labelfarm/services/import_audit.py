"""Audit rows for imports that were refused or failed (nothing of them was kept)."""

from __future__ import annotations

from typing import NamedTuple

from labelfarm.db.tx import CoreTx, Sql
from labelfarm.services import audit


class _ImportOf(NamedTuple):
    project_id: int
    workspace_id: int
    user_id: int | None
    format: str
    filename: str


_IMPORT_OF = Sql(
    "SELECT i.project_id, p.workspace_id, i.user_id, i.format, i.filename FROM imports i "
    "JOIN projects p ON p.id = i.project_id WHERE i.id = :id",
    row=_ImportOf,
)


def record_failure(
    tx: CoreTx, import_id: int, action: str, n_errors: int, reason: str, now: float
) -> None:
    """One audit row (``import.refused`` or ``import.failed``) for the import ``import_id``,
    by whoever started it, with its format, file, number of problems and the first reason."""
    imp = tx.one(_IMPORT_OF, {"id": import_id})
    if imp is None:
        return
    audit.record(
        tx,
        action=action,
        target=f"project:{imp.project_id}",
        now=now,
        workspace_id=imp.workspace_id,
        actor_id=imp.user_id,
        details={
            "import_id": import_id,
            "format": imp.format,
            "file": imp.filename,
            "errors": n_errors,
            "reason": reason[:200],
        },
    )
