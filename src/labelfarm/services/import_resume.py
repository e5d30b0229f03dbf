"""The import of an import job, found again: what an earlier run of the job left.

An import job may run again from the start (its worker died, or was stopped). Its import
row names the job (``imports.job_id``). :func:`settle` then makes the earlier run's import
whole before the job goes on: one still staging is rolled back (nothing of it stays), one
that was publishing is finished. A job whose import is done answers with that import's
report; the file is never imported twice.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select

from labelfarm.db.engine import Database
from labelfarm.db.tables import imports, items, metadata, predictions
from labelfarm.db.tx import CoreTx, transaction, workflow
from labelfarm.jsonutil import loads
from labelfarm.services.import_publish import recover_import
from labelfarm.services.imports import ImportResult

annotations_table = metadata.tables["annotations"]

INTERRUPTED = ("interrupted", "cancelled")  # failures a new run does not repeat


@dataclass(frozen=True)
class FoundImport:
    id: int
    status: str
    errors: list[dict[str, Any]]
    n_items: int

    @property
    def interrupted(self) -> bool:
        """Failed only because its run stopped (not because of the file)."""
        return self.status == "failed" and all(e.get("reason") in INTERRUPTED for e in self.errors)


def job_filename(filename: str) -> str:
    """A file name as the imports table holds it (see :func:`imports.import_items`)."""
    return filename.replace("\x00", "")[:500]


@transaction("read")
def find_import(tx: CoreTx, project_id: int, job_id: int) -> FoundImport | None:
    """The newest import of ``project_id`` that the job ``job_id`` started, or None."""
    row = tx.execute(
        select(imports.c.id, imports.c.status, imports.c.errors, imports.c.n_items)
        .where(imports.c.project_id == project_id, imports.c.job_id == job_id)
        .order_by(imports.c.id.desc())
        .limit(1)
    ).first()
    if row is None:
        return None
    return FoundImport(int(row.id), row.status, loads(row.errors or "[]"), int(row.n_items))


@workflow
def settle(db: Database, found: FoundImport, project_id: int, now: float, reason: str) -> None:
    """Roll back an import still staging (recorded as failed for ``reason``); finish one
    that was publishing. An import that ended is left as it is."""
    if found.status in ("staging", "publishing"):
        recover_import(db, found.id, found.status, project_id, now, reason)


@transaction("read")
def import_report(tx: CoreTx, import_id: int) -> ImportResult:
    """A done import's report, as :func:`imports.import_items` answered it."""
    row = tx.execute(
        select(imports.c.id, imports.c.status, imports.c.n_items, imports.c.notes).where(
            imports.c.id == import_id
        )
    ).one()
    mine = select(items.c.id).where(items.c.import_id == import_id)
    n_preds = tx.execute(select(func.count()).where(predictions.c.item_id.in_(mine))).scalar_one()
    n_anns = tx.execute(
        select(func.count()).where(annotations_table.c.item_id.in_(mine))
    ).scalar_one()
    notes = loads(row.notes) if row.notes else []
    return ImportResult(row.id, row.status, row.n_items, int(n_preds), int(n_anns), notes)


@transaction("read")
def import_record(tx: CoreTx, import_id: int) -> dict[str, Any] | None:
    """One import as :func:`imports.list_imports` lists it, or None."""
    columns = [c for c in imports.c if c.name != "file_meta"]
    row = tx.execute(select(*columns).where(imports.c.id == import_id)).mappings().first()
    if row is None:
        return None
    return {**row, "errors": loads(row["errors"]), "notes": loads(row["notes"] or "[]")}
