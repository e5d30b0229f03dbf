"""Writing an import's rows: a writer thread, where the rows go, and bulk inserts.

:class:`Writer` stages batches on a thread of its own while the reader parses the next
rows. :class:`Sink` is where they go: on SQLite a short transaction per batch with the rows
staged invisible (published at the end), on PostgreSQL one transaction for the whole import.
Rows are tuples in :data:`COLUMNS` order, which COPY and executemany take as they are.
"""

from __future__ import annotations

import os
import queue
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from typing import Any

from sqlalchemy import select

from labelfarm.db.batches import chunks
from labelfarm.db.dialect import Dialect
from labelfarm.db.engine import Database
from labelfarm.db.tables import items, predictions
from labelfarm.db.tx import CoreTx
from labelfarm.errors import ImportFailed
from labelfarm.formats import ItemRecord
from labelfarm.formats.registry import ImportLimits
from labelfarm.jsonutil import dumps
from labelfarm.services.audio_media import AudioFacts, register_audio
from labelfarm.services.import_annotations import Stager, stage_annotations
from labelfarm.services.media import MediaStore, register_media
from labelfarm.services.media_check import Verdict, check_file, expected_kinds, refusal
from labelfarm.services.media_urls import derive_new_audio, fetched_media
from labelfarm.services.projects import Project

NO_DEADLINE = 1e18


class Writer:
    """Stages batches on a thread of its own while the caller reads and checks the next
    rows: the database driver releases the GIL while the server works, so parsing and
    writing overlap. An error in a batch is raised to the caller at its next call."""

    def __init__(self, stage: Callable[[list[ItemRecord]], int]) -> None:
        self._stage = stage
        self._jobs: queue.Queue[list[ItemRecord] | None] = queue.Queue(maxsize=2)
        self._results: list[int] = []
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="labelfarm-import", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while (job := self._jobs.get()) is not None:
            if self._error is not None:
                continue
            try:
                self._results.append(self._stage(job))
            except BaseException as exc:
                self._error = exc

    def _raise(self) -> None:
        if self._error is not None:
            error, self._error = self._error, None
            raise error

    def submit(self, batch: list[ItemRecord]) -> None:
        self._raise()
        self._jobs.put(batch)

    def close(self) -> list[int]:
        """Wait for every batch; the values the stage function returned."""
        self._jobs.put(None)
        self._thread.join()
        self._raise()
        return self._results

    def abandon(self) -> None:
        """Stop after the batch in progress; errors are dropped (the import fails anyway)."""
        if self._thread.is_alive():
            self._error = self._error or RuntimeError("abandoned")
            self._jobs.put(None)
            self._thread.join()
        self._error = None


class Rollback(Exception):
    """Ends the whole-import transaction without committing it."""


class Sink:
    """Where an import's rows go.

    SQLite (one writer): a short write transaction per batch, rows staged invisible and
    published at the end, so annotators keep working during a long import. PostgreSQL:
    one transaction for the whole import (its row locks block no annotator, COPY streams),
    rows visible when it commits: no publish pass rewriting every row.
    """

    def __init__(self, db: Database) -> None:
        self.db = db
        self.single = db.dialect is Dialect.POSTGRESQL
        self._open: ExitStack | None = None
        self._tx: CoreTx | None = None

    @contextmanager
    def batch(self) -> Iterator[CoreTx]:
        if not self.single:
            with self.db.begin("write") as tx:
                yield tx
            return
        if self._tx is None:
            self._open = ExitStack()
            self._tx = self._open.enter_context(self.db.begin("write"))
        yield self._tx

    def _close(self, commit: bool) -> None:
        if self._open is None:
            return
        open_, self._open, self._tx = self._open, None, None
        if commit:
            open_.close()
        else:
            open_.__exit__(Rollback, Rollback(), None)

    def commit(self) -> None:
        self._close(True)

    def rollback(self) -> None:
        self._close(False)


def stage(
    sink: Sink,
    project: Project,
    import_id: int,
    batch: list[ItemRecord],
    media: MediaStore,
    now: float,
    stage: Stager | None = None,
    limits: ImportLimits | None = None,
) -> int:
    """Write one batch of staged items (and their media and predictions); returns n preds."""
    stored, media_rows, audio = store_media(media, project, batch, sink.db, limits)
    sizes = [image_size(rec, media_rows.get(stored.get(i, ""))) for i, rec in enumerate(batch)]
    status = "ready" if sink.single else "staged"
    rows = [  # in COLUMNS order: COPY and executemany take these tuples as they are
        (
            project.id,
            import_id,
            rec.external_id,
            rec.data_json if rec.data_json is not None else dumps(rec.data),
            stored.get(i),
            rec.priority,
            rec.deadline,
            rec.deadline if rec.deadline is not None else NO_DEADLINE,
            sink.single and rec.gold is None,
            status,
            rec.gold is not None,
            dumps(rec.gold) if rec.gold is not None else None,
            rec.gold_kind if rec.gold is not None else None,
            0,
            0,
            now,
            *sizes[i],
            dumps(rec.source_meta) if rec.source_meta is not None else None,
        )
        for i, rec in enumerate(batch)
    ]
    with_preds = any(rec.predictions for rec in batch)
    with_anns = stage is not None and any(rec.annotations for rec in batch)
    with sink.batch() as tx:
        if media_rows:
            register_media(tx, list(media_rows.values()), now)
        if audio:
            register_audio(tx, audio, now)
        ids = insert_items(tx, rows, returning=with_preds or with_anns)
        if with_anns:
            assert stage is not None
            stage_annotations(tx, project, batch, ids, stage, now)
        if not with_preds:
            return 0
        pred_rows = [
            {
                "project_id": project.id,
                "item_id": item_id,
                "model": p["model"],
                "value": dumps(p["value"]),
                "score": p["score"],
                "created_at": now,
                "source_meta": dumps(p["source_meta"]) if p.get("source_meta") else None,
            }
            for rec, item_id in zip(batch, ids, strict=True)
            for p in rec.predictions
        ]
        tx.execute(predictions.insert(), pred_rows)
        return len(pred_rows)


# Decoding releases the GIL: a batch's files are checked on a few threads at once.
_CHECKS = ThreadPoolExecutor(min(4, os.cpu_count() or 1), thread_name_prefix="labelfarm-check")


def image_size(
    rec: ItemRecord, stored: tuple[str, int, Verdict] | None
) -> tuple[float | None, float | None]:
    """An item's image size: decoded from its stored media, else as its source gave it."""
    size = (stored[2].size if stored is not None else None) or rec.image_size
    return (float(size[0]), float(size[1])) if size else (None, None)


def store_media(
    media: MediaStore,
    project: Project,
    batch: list[ItemRecord],
    db: Database | None = None,
    limits: ImportLimits | None = None,
) -> tuple[dict[int, str], dict[str, tuple[str, int, Verdict]], list[AudioFacts]]:
    """Check the content of each record's media file (fetched first when named by URL), then
    store it: ``{index: sha}``, the rows to register by sha, and the facts of the audio files
    not derived before (:mod:`labelfarm.services.audio_media`). A file the project cannot
    hold (not the image or audio its schema expects, a decompression bomb, audio that does
    not decode to its end) is refused: ImportFailed names every such file of the batch, and
    none of the batch is stored."""
    expected = expected_kinds(project.schema)
    with fetched_media(batch, limits) as where:
        paths = list(dict.fromkeys(r.media_path for r in batch if r.media_path is not None))
        verdicts = dict(zip(paths, _CHECKS.map(check_file, paths), strict=True))
        problems = []
        for path, verdict in verdicts.items():
            reason = refusal(verdict, expected)
            if reason is not None:
                location = where.get(path, path.name)
                problems.append({"location": location, "field": "media", "reason": reason})
        if problems:
            raise ImportFailed(f"{len(problems)} media file(s) refused", problems)
        audio = derive_new_audio(media, db, verdicts, where, _CHECKS)
        stored: dict[int, str] = {}
        rows: dict[str, tuple[str, int, Verdict]] = {}
        for i, rec in enumerate(batch):
            if rec.media_path is not None:
                sha, size = media.put_file(rec.media_path)
                stored[i] = sha
                rows[sha] = (sha, size, verdicts[rec.media_path])
    return stored, rows, audio


def insert_items(tx: CoreTx, rows: list[tuple[Any, ...]], *, returning: bool) -> list[int]:
    try:
        with tx.conn.begin_nested():
            if returning:
                result = tx.execute(
                    items.insert().returning(items.c.id, sort_by_parameter_order=True),
                    [dict(zip(COLUMNS, row, strict=True)) for row in rows],
                )
                return [r.id for r in result]
            if tx.dialect is Dialect.POSTGRESQL:
                _copy_items(tx, rows)
            else:
                _executemany_items(tx, rows)
            return []
    except Exception as exc:
        if "unique" not in str(exc).lower():
            raise
    raise ImportFailed("duplicate external ids", _duplicates(tx, rows))


COLUMNS = (
    "project_id",
    "import_id",
    "external_id",
    "data",
    "media_sha256",
    "priority",
    "deadline",
    "deadline_key",
    "is_open",
    "status",
    "is_gold",
    "gold",
    "gold_kind",
    "n_leased",
    "n_submitted",
    "created_at",
    "image_width",
    "image_height",
    "source_meta",
)


_SQLITE_INSERT = (
    f"INSERT INTO items ({', '.join(COLUMNS)}) VALUES ({', '.join('?' for _ in COLUMNS)})"
)


def _executemany_items(tx: CoreTx, rows: list[tuple[Any, ...]]) -> None:
    """SQLite: the driver's executemany on tuples, in the connection's transaction
    (SQLAlchemy's per-row parameter processing costs more than the insert itself)."""
    tx.cursor.executemany(_SQLITE_INSERT, rows)


def _copy_items(tx: CoreTx, rows: list[tuple[Any, ...]]) -> None:
    """PostgreSQL COPY: several times faster than INSERT for bulk rows."""
    with tx.cursor.copy(f"COPY items ({', '.join(COLUMNS)}) FROM STDIN") as copy:
        for row in rows:
            copy.write_row(row)


def _duplicates(tx: CoreTx, rows: list[tuple[Any, ...]]) -> list[dict[str, Any]]:
    seen: set[str] = set()
    project_id = rows[0][0]
    ext_ids = [r[2] for r in rows if r[2] is not None]
    existing = set()
    for chunk in chunks(ext_ids):
        existing |= set(
            tx.execute(
                select(items.c.external_id).where(
                    items.c.project_id == project_id, items.c.external_id.in_(chunk)
                )
            ).scalars()
        )
    out = []
    for r in rows:
        ext = r[2]
        if ext is None:
            continue
        if ext in seen or ext in existing:
            out.append(
                {
                    "location": f"external_id {ext!r}",
                    "field": "external_id",
                    "reason": "duplicate: an item with this external id exists",
                }
            )
        seen.add(ext)
    return out or [{"location": "", "field": "external_id", "reason": "duplicate external id"}]
