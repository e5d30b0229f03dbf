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

What a file may hold is bounded (:class:`ImportLimits`: the largest item, the most columns,
an archive's total size and expansion ratio) and checked while reading, before anything is
stored. An import also stops, between rows or chunks, once its ``cancel`` event is set (the
server sets it when asked to stop): it is then abandoned like a crashed one, never half
published.
"""

from __future__ import annotations

import os
import tempfile
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NoReturn

import orjson
from sqlalchemy import select

from labelfarm.db.dialect import Dialect
from labelfarm.db.engine import Database
from labelfarm.db.tables import imports
from labelfarm.db.tx import CoreTx, Sql, transaction, workflow
from labelfarm.errors import ImportFailed
from labelfarm.formats import ImportSource, ItemRecord, RowProblem, reader
from labelfarm.formats.registry import ImportInterrupted, ImportLimits
from labelfarm.jsonutil import dumps, loads
from labelfarm.services.import_annotations import Stager
from labelfarm.services.import_audit import record_failure
from labelfarm.services.import_publish import discard, publish
from labelfarm.services.import_publish import recover_imports as recover_imports
from labelfarm.services.import_staging import Sink, Writer
from labelfarm.services.import_staging import stage as stage_batch
from labelfarm.services.media import MediaStore
from labelfarm.services.projects import Project
from labelfarm.settings import Settings

MAX_REPORTED = 1000
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
    # what the file held that was left out on purpose: [{"reason", "count"}]
    notes: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "status": self.status,
            "n_items": self.n_items,
            "n_predictions": self.n_predictions,
            "n_annotations": self.n_annotations,
            "notes": self.notes,
        }


def limits_from(settings: Settings) -> ImportLimits:
    """The import limits a server's settings give."""
    return ImportLimits(
        item_bytes=settings.max_item_bytes,
        columns=settings.max_columns,
        archive_bytes=settings.max_archive_bytes,
        archive_ratio=settings.max_archive_ratio,
        audio_url_hosts=tuple(settings.audio_url_hosts),
        audio_url_max_bytes=settings.audio_url_max_bytes,
    )


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
    limits: ImportLimits | None = None,
    cancel: threading.Event | None = None,
    progress_rows: int = 5_000,
    options: dict[str, Any] | None = None,
    on_written: Callable[[int], None] | None = None,
    job_id: int | None = None,
) -> ImportResult:
    """Import a file into ``project``, all or nothing. ``analyze=False`` leaves the call to
    :func:`refresh_statistics` to the caller. Once ``cancel`` is set the import stops and
    raises :class:`ImportInterrupted`; nothing of it is published. ``on_progress`` is
    called every ``progress_rows`` rows; ``on_written(n)`` after each batch of ``n`` items
    is written (from the writer's thread). ``job_id``: the import job running it."""
    read = reader(fmt)
    # as the imports table holds it: at most 500 characters, no NUL (a multipart name may have)
    filename = (filename or path.name).replace("\x00", "")[:500]
    if not path.is_dir() and path.stat().st_size == 0:
        _fail_early(db, project, fmt, filename, user_id, now, "the file is empty (0 bytes)")
    import_id = db.run(_start, project.id, fmt, filename, user_id, now, job_id)
    total_bytes = _size(path)
    tally, stage, sink = _Tally(), Stager(import_id), Sink(db)
    limits = limits or ImportLimits()
    writer = Writer(_staging(sink, project, import_id, media, now, stage, on_written, limits))
    n_preds = 0
    with tempfile.TemporaryDirectory(prefix="labelfarm-import-") as scratch:
        given = {**(options or {}), "base_dir": base_dir, "scratch": Path(scratch)}
        source = ImportSource(path, filename, project.schema, given, limits=limits, cancel=cancel)
        try:
            progress = (on_progress, progress_rows)
            _read_rows(read, source, writer, tally, batch_rows, progress, total_bytes)
            n_preds = sum(writer.close())
            if not tally.problems and tally.n_items == 0:
                tally.add([RowProblem(filename, "", "no items in the file")])
        except ImportFailed as exc:  # a batch the database refused (duplicate external ids)
            writer.abandon()
            tally.add([RowProblem(**d) for d in exc.details[:MAX_REPORTED]], len(exc.details))
        except ImportInterrupted:
            writer.abandon()
            sink.rollback()
            if sink.single:  # nothing was committed: say why now
                discard(db, import_id, [RowProblem(filename, "", "interrupted")], 1, now)
            # SQLite: the rows staged so far stay invisible; recover_imports discards them
            # at the next start (deleting them now would hold up the server's shutdown)
            raise
        except BaseException:
            writer.abandon()
            sink.rollback()
            discard(db, import_id, [], 1, now)
            raise
    if tally.problems:
        _fail(db, sink, import_id, tally, filename, now)
    publish(sink, project, import_id, tally.n_items, now, user_id, fmt, filename)
    if source.file_meta:
        db.run(_keep_file_meta, import_id, source.file_meta)
    if analyze:
        refresh_statistics(db, tally.n_items)
    if on_progress is not None:
        on_progress(tally.n_rows, total_bytes, total_bytes)
    notes = [{"reason": r, "count": n} for r, n in source.notes.items()]
    if notes:
        db.run(_keep_notes, import_id, notes)
    return ImportResult(import_id, "done", tally.n_items, n_preds, stage.n_annotations, notes)


def _staging(
    sink: Sink,
    project: Project,
    import_id: int,
    media: MediaStore,
    now: float,
    stage: Stager,
    on_written: Callable[[int], None] | None,
    limits: ImportLimits,
) -> Callable[[list[ItemRecord]], int]:
    """What the writer thread does with a batch: stage it, then say how many items."""

    def write(rows: list[ItemRecord]) -> int:
        n_preds = stage_batch(sink, project, import_id, rows, media, now, stage, limits)
        if on_written is not None:
            on_written(len(rows))
        return n_preds

    return write


@transaction("write")
def _start(
    tx: CoreTx,
    project_id: int,
    fmt: str,
    filename: str,
    user_id: int | None,
    now: float,
    job_id: int | None,
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
                job_id=job_id,
            )
            .returning(imports.c.id)
        ).scalar_one()
    )


@transaction("write")
def _keep_file_meta(tx: CoreTx, import_id: int, file_meta: dict[str, Any]) -> None:
    """Keep what the file held beside its items, for exports in its format."""
    tx.execute(imports.update().where(imports.c.id == import_id).values(file_meta=dumps(file_meta)))


@transaction("write")
def _keep_notes(tx: CoreTx, import_id: int, notes: list[dict[str, Any]]) -> None:
    """Keep the report of what the file held that the import left out."""
    tx.execute(imports.update().where(imports.c.id == import_id).values(notes=dumps(notes)))


def _read_rows(
    read: Callable[[ImportSource], Iterator[Any]],
    source: ImportSource,
    writer: Writer,
    tally: _Tally,
    batch_rows: int,
    progress: tuple[Progress | None, int],
    total_bytes: int,
) -> None:
    """Read every row; hand good ones to the writer in batches until a problem is found,
    after which rows are only checked (to report every problem)."""
    batch: list[ItemRecord] = []
    item_bytes = source.limits.item_bytes
    on_progress, every = progress
    for n_rows, (where, result) in enumerate(read(source), start=1):
        source.check_cancel()
        tally.n_rows = n_rows
        if not isinstance(result, list):
            result = _encoded(result, where, item_bytes)
        if isinstance(result, list):
            tally.add(result)
            batch.clear()
        elif not tally.problems:
            batch.append(result)
            if len(batch) >= batch_rows:
                writer.submit(batch)
                tally.n_items += len(batch)
                batch = []
        if on_progress is not None and n_rows % every == 0:
            on_progress(n_rows, source.bytes_read, total_bytes)
    if batch and not tally.problems:
        writer.submit(batch)
        tally.n_items += len(batch)


def _encoded(rec: ItemRecord, where: str, item_bytes: int) -> ItemRecord | list[RowProblem]:
    """The record with its data as JSON text, or why it is too large to store."""
    encoded = orjson.dumps(rec.data)
    if len(encoded) > item_bytes:
        reason = (
            f"the item's data is {len(encoded):,} bytes of JSON; at most {item_bytes:,} "
            "(the largest item)"
        )
        return [RowProblem(where, "data", reason)]
    rec.data_json = encoded.decode()
    return rec


def _fail(
    db: Database, sink: Sink, import_id: int, tally: _Tally, filename: str, now: float
) -> NoReturn:
    """Undo everything the import wrote, record why, and say so."""
    sink.rollback()
    discard(db, import_id, tally.problems, tally.n_problems, now)
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
        import_id = tx.execute(
            imports.insert()
            .values(
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
            .returning(imports.c.id)
        ).scalar_one()
        record_failure(tx, import_id, "import.refused", 1, reason, now)
    raise ImportFailed(f"import of {filename!r} failed: {reason}", [detail])


@workflow
def refresh_statistics(db: Database, n_items: int) -> None:
    """PostgreSQL: fresh planner statistics on items after a large import (the data is
    committed already; the server runs this after answering)."""
    if db.dialect is Dialect.POSTGRESQL and n_items >= ANALYZE_AFTER:
        with db.begin("write") as tx:
            tx.run(ANALYZE, {})


@transaction("read")
def list_imports(tx: CoreTx, project_id: int) -> list[dict[str, Any]]:
    """A project's imports, newest first, with their problems (what a file held beside its
    items, ``file_meta``, is for exports and stays out)."""
    columns = [c for c in imports.c if c.name != "file_meta"]
    rows = tx.execute(
        select(*columns).where(imports.c.project_id == project_id).order_by(imports.c.id.desc())
    ).mappings()
    return [{**r, "errors": loads(r["errors"]), "notes": loads(r["notes"] or "[]")} for r in rows]
