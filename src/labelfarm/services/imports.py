"""Importing items into a project: all-or-nothing, every bad row located, bounded memory.

The file is read once, as a stream, and checked row by row while a writer thread stores
the valid rows (:mod:`labelfarm.services.import_staging`). On SQLite they are written in
short transactions as *staged* items, invisible to the queue and to exports, and published
(made visible) in id-range chunks once every row is known to be good: the single writer
stays free for annotators during a long import. On PostgreSQL the whole import is one
transaction of COPYs, visible when it commits. Either way, if any row is bad, writing stops,
reading goes on to find every other bad row, and nothing of the import remains: the project
is exactly as it was. An import interrupted by a crash is finished or rolled back by
:func:`recover_imports` at the next start. Labels made in another tool come in with their
items (:mod:`labelfarm.services.import_annotations`).
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NoReturn

from sqlalchemy import func, select, text, update

from labelfarm.db.dialect import Dialect
from labelfarm.db.engine import Database
from labelfarm.db.tables import (
    imports,
    items,
    metadata,
    predictions,
    projects,
)
from labelfarm.db.tx import CoreTx, Sql, transaction, workflow
from labelfarm.errors import ImportFailed
from labelfarm.formats import ImportSource, ItemRecord, RowProblem, reader
from labelfarm.jsonutil import dumps, loads
from labelfarm.services import audit
from labelfarm.services.import_annotations import Stager
from labelfarm.services.import_staging import Sink, Writer
from labelfarm.services.import_staging import stage as stage_batch
from labelfarm.services.media import MediaStore
from labelfarm.services.projects import Project

# (``tables.annotations`` by name: mypy confuses it with ``from __future__ import annotations``)
annotations_table = metadata.tables["annotations"]

MAX_REPORTED = 1000
PUBLISH_CHUNK = 20_000
ANALYZE_AFTER = 10_000  # PostgreSQL: rows imported at once that call for new statistics
ANALYZE = Sql("ANALYZE items")

Progress = Callable[[int, int, int], None]  # rows read, bytes read, total bytes


@dataclass
class ImportResult:
    id: int
    status: str
    n_items: int
    n_predictions: int
    n_annotations: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "status": self.status,
            "n_items": self.n_items,
            "n_predictions": self.n_predictions,
            "n_annotations": self.n_annotations,
        }


def _size(path: Path) -> int:
    if path.is_dir():
        return sum(len(files) for _, _, files in os.walk(path))
    return path.stat().st_size


@dataclass
class _Tally:
    """What reading a file found: rows, items staged, problems (the first MAX_REPORTED)."""

    n_rows: int = 0
    n_items: int = 0
    n_problems: int = 0
    problems: list[RowProblem] = field(default_factory=list)

    def add(self, found: list[RowProblem], n: int | None = None) -> None:
        self.n_problems += len(found) if n is None else n
        self.problems.extend(found[: max(0, MAX_REPORTED - len(self.problems))])


@workflow
def import_items(
    db: Database,
    project: Project,
    path: Path,
    fmt: str,
    *,
    media: MediaStore,
    now: float,
    user_id: int | None,
    filename: str | None = None,
    batch_rows: int = 5000,
    on_progress: Progress | None = None,
    base_dir: Path | None = None,
    analyze: bool = True,
) -> ImportResult:
    """Import a file into ``project``, all or nothing. ``analyze=False`` leaves the call to
    :func:`refresh_statistics` to the caller."""
    read = reader(fmt)
    filename = filename or path.name
    if not path.is_dir() and path.stat().st_size == 0:
        _fail_early(db, project, fmt, filename, user_id, now, "the file is empty (0 bytes)")
    import_id = db.run(_start, project.id, fmt, filename, user_id, now)
    total_bytes = _size(path)
    tally, stage, sink = _Tally(), Stager(import_id), Sink(db)
    writer = Writer(lambda rows: stage_batch(sink, project, import_id, rows, media, now, stage))
    n_preds = 0
    with tempfile.TemporaryDirectory(prefix="labelfarm-import-") as scratch:
        source = ImportSource(
            path, filename, project.schema, {"base_dir": base_dir, "scratch": Path(scratch)}
        )
        try:
            _read_rows(read, source, writer, tally, batch_rows, on_progress, total_bytes)
            n_preds = sum(writer.close())
            if not tally.problems and tally.n_items == 0:
                tally.add([RowProblem(filename, "", "no items in the file")])
        except ImportFailed as exc:  # a batch the database refused (duplicate external ids)
            writer.abandon()
            tally.add([RowProblem(**d) for d in exc.details[:MAX_REPORTED]], len(exc.details))
        except BaseException:
            writer.abandon()
            sink.rollback()
            _discard(db, import_id, [], 1, now)
            raise
    if tally.problems:
        _fail(db, sink, import_id, tally, filename, now)
    _publish(sink, project, import_id, tally.n_items, now, user_id, fmt, filename)
    if analyze:
        refresh_statistics(db, tally.n_items)
    if on_progress is not None:
        on_progress(tally.n_rows, total_bytes, total_bytes)
    return ImportResult(import_id, "done", tally.n_items, n_preds, stage.n_annotations)


@transaction("write")
def _start(
    tx: CoreTx, project_id: int, fmt: str, filename: str, user_id: int | None, now: float
) -> int:
    """The import's row, staging."""
    return int(
        tx.execute(
            imports.insert()
            .values(
                project_id=project_id,
                user_id=user_id,
                format=fmt,
                filename=filename,
                status="staging",
                started_at=now,
            )
            .returning(imports.c.id)
        ).scalar_one()
    )


def _read_rows(
    read: Callable[[ImportSource], Iterator[Any]],
    source: ImportSource,
    writer: Writer,
    tally: _Tally,
    batch_rows: int,
    on_progress: Progress | None,
    total_bytes: int,
) -> None:
    """Read every row; hand good ones to the writer in batches until a problem is found,
    after which rows are only checked (to report every problem)."""
    batch: list[ItemRecord] = []
    for n_rows, (_where, result) in enumerate(read(source), start=1):
        tally.n_rows = n_rows
        if isinstance(result, list):
            tally.add(result)
            batch.clear()
        elif not tally.problems:
            batch.append(result)
            if len(batch) >= batch_rows:
                writer.submit(batch)
                tally.n_items += len(batch)
                batch = []
        if on_progress is not None and n_rows % 5_000 == 0:
            on_progress(n_rows, source.bytes_read, total_bytes)
    if batch and not tally.problems:
        writer.submit(batch)
        tally.n_items += len(batch)


def _fail(
    db: Database, sink: Sink, import_id: int, tally: _Tally, filename: str, now: float
) -> NoReturn:
    """Undo everything the import wrote, record why, and say so."""
    sink.rollback()
    _discard(db, import_id, tally.problems, tally.n_problems, now)
    n, listed = tally.n_problems, len(tally.problems)
    shown = "" if n <= listed else f"; the first {listed} are listed"
    raise ImportFailed(
        f"import of {filename!r} failed: {n} problem(s){shown}; nothing was imported",
        [p.to_dict() for p in tally.problems],
    )


def _fail_early(
    db: Database,
    project: Project,
    fmt: str,
    filename: str,
    user_id: int | None,
    now: float,
    reason: str,
) -> None:
    detail = {"location": filename, "field": "", "reason": reason}
    with db.begin("write") as tx:
        tx.execute(
            imports.insert().values(
                project_id=project.id,
                user_id=user_id,
                format=fmt,
                filename=filename,
                status="failed",
                n_errors=1,
                errors=dumps([detail]),
                started_at=now,
                finished_at=now,
            )
        )
    raise ImportFailed(f"import of {filename!r} failed: {reason}", [detail])


def _discard(
    db: Database, import_id: int, problems: list[RowProblem], n_problems: int, now: float
) -> None:
    """Delete the staged rows of a failed import, in chunks, and record the failure."""
    while True:
        with db.begin("write") as tx:
            ids = (
                tx.execute(
                    select(items.c.id)
                    .where(items.c.import_id == import_id, items.c.status == text("'staged'"))
                    .limit(PUBLISH_CHUNK)
                )
                .scalars()
                .all()
            )
            if not ids:
                break
            tx.execute(predictions.delete().where(predictions.c.item_id.in_(ids)))
            tx.execute(annotations_table.delete().where(annotations_table.c.item_id.in_(ids)))
            tx.execute(items.delete().where(items.c.id.in_(ids)))
    with db.begin("write") as tx:
        tx.execute(
            imports.update()
            .where(imports.c.id == import_id)
            .values(
                status="failed",
                n_errors=n_problems,
                finished_at=now,
                errors=dumps([p.to_dict() for p in problems]),
            )
        )


def _publish(
    sink: Sink,
    project: Project,
    import_id: int,
    n_items: int,
    now: float,
    user_id: int | None,
    fmt: str,
    filename: str,
) -> None:
    db = sink.db
    lo = hi = None
    if not sink.single:  # staged rows become visible, a chunk of ids at a time
        with db.begin("write") as tx:
            lo, hi = tx.execute(
                select(func.min(items.c.id), func.max(items.c.id)).where(
                    items.c.import_id == import_id, items.c.status == text("'staged'")
                )
            ).one()
            tx.execute(
                imports.update().where(imports.c.id == import_id).values(status="publishing")
            )
    if lo is not None and hi is not None:
        for start in range(lo, hi + 1, PUBLISH_CHUNK):
            with db.begin("write") as tx:
                tx.execute(
                    text(
                        "UPDATE items SET status = 'ready', is_open = (is_gold = :closed) "
                        "WHERE status = 'staged' AND import_id = :imp AND id >= :lo AND id < :hi"
                    ),
                    {"closed": False, "imp": import_id, "lo": start, "hi": start + PUBLISH_CHUNK},
                )
    with sink.batch() as tx:
        tx.execute(
            imports.update()
            .where(imports.c.id == import_id)
            .values(status="done", n_items=n_items, finished_at=now)
        )
        tx.execute(
            update(projects)
            .where(projects.c.id == project.id)
            .values(n_items=projects.c.n_items + n_items)
        )
        audit.record(
            tx,
            action="import",
            target=f"project:{project.id}",
            now=now,
            workspace_id=project.workspace_id,
            actor_id=user_id,
            details={"import_id": import_id, "format": fmt, "file": filename, "items": n_items},
        )
    sink.commit()


@workflow
def refresh_statistics(db: Database, n_items: int) -> None:
    """PostgreSQL: fresh planner statistics on items after a large import (the data is
    committed already; the server runs this after answering)."""
    if db.dialect is Dialect.POSTGRESQL and n_items >= ANALYZE_AFTER:
        with db.begin("write") as tx:
            tx.run(ANALYZE, {})


@transaction("read")
def list_imports(tx: CoreTx, project_id: int) -> list[dict[str, Any]]:
    """A project's imports, newest first, with their problems."""
    rows = tx.execute(
        select(imports).where(imports.c.project_id == project_id).order_by(imports.c.id.desc())
    ).mappings()
    return [{**r, "errors": loads(r["errors"])} for r in rows]


@workflow
def recover_imports(db: Database, now: float) -> None:
    """Finish imports a crash interrupted while publishing; roll back those still staging."""
    with db.begin("read") as tx:
        pending = tx.execute(
            select(imports.c.id, imports.c.status, imports.c.project_id).where(
                imports.c.status.in_(("staging", "publishing"))
            )
        ).all()
    for imp in pending:
        if imp.status == "staging":
            _discard(db, imp.id, [RowProblem("", "", "interrupted")], 1, now)
        else:
            with db.begin("write") as tx:
                n = tx.execute(
                    text(
                        "UPDATE items SET status = 'ready', is_open = (is_gold = :closed) "
                        "WHERE import_id = :imp AND status = 'staged'"
                    ),
                    {"closed": False, "imp": imp.id},
                ).rowcount
                total = tx.execute(
                    select(func.count()).where(items.c.import_id == imp.id)
                ).scalar_one()
                tx.execute(
                    imports.update()
                    .where(imports.c.id == imp.id)
                    .values(status="done", n_items=total, finished_at=now)
                )
                if n:
                    tx.execute(
                        update(projects)
                        .where(projects.c.id == imp.project_id)
                        .values(n_items=projects.c.n_items + total)
                    )
