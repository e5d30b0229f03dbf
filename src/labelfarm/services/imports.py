"""Importing items into a project: all-or-nothing, every bad row located, bounded memory.

The file is read once, as a stream. Valid rows are written in short transactions as
*staged* items, invisible to the queue and to exports. If any row is bad, writing stops,
reading goes on to find every other bad row, the staged rows are deleted and the import
fails with the located problems: the project is exactly as it was. If all rows are good,
the staged items are published (made visible) in id-range chunks. An import interrupted by
a crash is finished or rolled back by :func:`recover_imports` at the next start.

Short transactions keep SQLite's single writer free for annotators during a long import.

Labels made in another tool (``ItemRecord.annotations``) are staged with their items as
annotations with ``status = 'imported'``, by one non-login user per workspace and source
annotator (``import:<workspace>:<name>``, no password, inactive), with client ids
``import:<import id>:<n>``. They do not count against the queue's overlap: they are not
leases or submissions of this project's workforce, so an imported, already-labelled item
is still handed to ``overlap`` annotators (to check or relabel); they take part in the
item's current label like any other annotation.
"""

from __future__ import annotations

import hashlib
import os
import queue
import re
import secrets
import tempfile
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, func, select, text, update

from labelfarm.db.engine import Database
from labelfarm.db.tables import (
    imports,
    items,
    metadata,
    predictions,
    projects,
    users,
    workspaces,
)
from labelfarm.errors import ImportFailed
from labelfarm.formats import ImportSource, ItemRecord, RowProblem, reader
from labelfarm.services import audit
from labelfarm.services.jsonutil import dumps
from labelfarm.services.media import MediaStore, register_media
from labelfarm.services.projects import Project

# (``tables.annotations`` by name: mypy confuses it with ``from __future__ import annotations``)
annotations_table = metadata.tables["annotations"]

MAX_REPORTED = 1000
PUBLISH_CHUNK = 20_000
NO_DEADLINE = 1e18

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
) -> ImportResult:
    read = reader(fmt)
    filename = filename or path.name
    if not path.is_dir() and path.stat().st_size == 0:
        _fail_early(db, project, fmt, filename, user_id, now, "the file is empty (0 bytes)")
    with db.write() as conn:
        import_id = conn.execute(
            imports.insert()
            .values(
                project_id=project.id,
                user_id=user_id,
                format=fmt,
                filename=filename,
                status="staging",
                started_at=now,
            )
            .returning(imports.c.id)
        ).scalar_one()
    scratch = tempfile.TemporaryDirectory(prefix="labelfarm-import-")
    source = ImportSource(
        path, filename, project.schema, {"base_dir": base_dir, "scratch": Path(scratch.name)}
    )
    total_bytes = _size(path)
    problems: list[RowProblem] = []
    n_problems = n_rows = n_items = n_preds = 0
    batch: list[ItemRecord] = []
    stage = _Stager(import_id)
    sink = _Sink(db)
    writer = _Writer(lambda rows: _stage(sink, project, import_id, rows, media, now, stage))
    try:
        for n_rows, (_where, result) in enumerate(read(source), start=1):
            if isinstance(result, list):
                n_problems += len(result)
                problems.extend(result[: max(0, MAX_REPORTED - len(problems))])
                batch.clear()
            elif not problems:
                batch.append(result)
                if len(batch) >= batch_rows:
                    writer.submit(batch)
                    n_items += len(batch)
                    batch = []
            if on_progress is not None and n_rows % 5_000 == 0:
                on_progress(n_rows, source.bytes_read, total_bytes)
        if batch and not problems:
            writer.submit(batch)
            n_items += len(batch)
        n_preds = sum(writer.close())
        if not problems and n_items == 0:
            problems.append(RowProblem(filename, "", "no items in the file"))
            n_problems = 1
    except ImportFailed as exc:  # a batch the database refused (e.g. duplicate external ids)
        writer.abandon()
        problems.extend(RowProblem(**d) for d in exc.details[:MAX_REPORTED])
        n_problems += len(exc.details)
    except BaseException:
        writer.abandon()
        sink.rollback()
        _discard(db, import_id, [], 1, now)
        raise
    finally:
        scratch.cleanup()
    if problems:
        sink.rollback()
        _discard(db, import_id, problems, n_problems, now)
        shown = "" if n_problems <= len(problems) else f"; the first {len(problems)} are listed"
        raise ImportFailed(
            f"import of {filename!r} failed: {n_problems} problem(s){shown}; nothing was imported",
            [p.to_dict() for p in problems],
        )
    _publish(sink, project, import_id, n_items, now, user_id, fmt, filename)
    if on_progress is not None:
        on_progress(n_rows, total_bytes, total_bytes)
    return ImportResult(import_id, "done", n_items, n_preds, stage.n_annotations)


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
    with db.write() as conn:
        conn.execute(
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


class _Writer:
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


class _Sink:
    """Where an import's rows go.

    SQLite (one writer): a short write transaction per batch, rows staged invisible and
    published at the end, so annotators keep working during a long import. PostgreSQL:
    one transaction for the whole import (its row locks block no annotator, COPY streams),
    rows visible when it commits: no publish pass rewriting every row.
    """

    def __init__(self, db: Database) -> None:
        self.db = db
        self.single = not db.is_sqlite
        self._conn: Connection | None = None
        self._tx: Any = None

    @contextmanager
    def batch(self) -> Iterator[Connection]:
        if not self.single:
            with self.db.write() as conn:
                yield conn
            return
        if self._conn is None:
            self._conn = self.db.engine.connect()
            self._tx = self._conn.begin()
        yield self._conn

    def _close(self, commit: bool) -> None:
        if self._conn is None:
            return
        try:
            self._tx.commit() if commit else self._tx.rollback()
        finally:
            self._conn.close()
            self._conn = None

    def commit(self) -> None:
        self._close(True)

    def rollback(self) -> None:
        self._close(False)


class _Stager:
    """Per import: the users standing for source annotators, and annotations counted."""

    def __init__(self, import_id: int) -> None:
        self.import_id = import_id
        self.users: dict[str, int] = {}
        self.n_annotations = 0

    def user_id(self, conn: Connection, project: Project, name: str, now: float) -> int:
        if name not in self.users:
            self.users[name] = _import_user(conn, project.workspace_id, name, now)
        return self.users[name]


_UNSAFE = re.compile(r"[^A-Za-z0-9_.@\-]+")


def _import_user(conn: Connection, workspace_id: int, name: str, now: float) -> int:
    """The non-login user standing for annotator ``name`` of another tool in a workspace."""
    slug = conn.execute(
        select(workspaces.c.slug).where(workspaces.c.id == workspace_id)
    ).scalar_one()
    clean = _UNSAFE.sub("_", name.strip())[:80] or "unknown"
    if clean != name:
        clean += "-" + hashlib.sha256(name.encode()).hexdigest()[:8]
    username = f"import:{slug}:{clean}"[:150]
    found = conn.execute(select(users.c.id).where(users.c.username == username)).scalar()
    if found is not None:
        return int(found)
    return int(
        conn.execute(
            users.insert()
            .values(
                username=username,
                password_hash=None,
                display_name=name[:200] or "unknown",
                pseudonym="i-" + secrets.token_hex(6),
                is_superuser=False,
                is_active=False,
                created_at=now,
            )
            .returning(users.c.id)
        ).scalar_one()
    )


def _stage(
    sink: _Sink,
    project: Project,
    import_id: int,
    batch: list[ItemRecord],
    media: MediaStore,
    now: float,
    stage: _Stager | None = None,
) -> int:
    """Write one batch of staged items (and their media and predictions); returns n preds."""
    stored: dict[int, str] = {}
    media_rows = []
    for i, rec in enumerate(batch):
        if rec.media_path is not None:
            sha, size = media.put_file(rec.media_path)
            stored[i] = sha
            media_rows.append((sha, size, rec.media_path.name))
    rows = [
        {
            "project_id": project.id,
            "import_id": import_id,
            "external_id": rec.external_id,
            "data": dumps(rec.data),
            "media_sha256": stored.get(i),
            "priority": rec.priority,
            "deadline": rec.deadline,
            "deadline_key": rec.deadline if rec.deadline is not None else NO_DEADLINE,
            "is_open": sink.single and rec.gold is None,
            "status": "ready" if sink.single else "staged",
            "is_gold": rec.gold is not None,
            "gold": dumps(rec.gold) if rec.gold is not None else None,
            "n_leased": 0,
            "n_submitted": 0,
            "created_at": now,
        }
        for i, rec in enumerate(batch)
    ]
    with_preds = any(rec.predictions for rec in batch)
    with_anns = stage is not None and any(rec.annotations for rec in batch)
    with sink.batch() as conn:
        for sha, size, name in media_rows:
            register_media(conn, sha, size, name, now)
        ids = _insert_items(conn, rows, returning=with_preds or with_anns)
        if with_anns:
            assert stage is not None
            _stage_annotations(conn, project, batch, ids, stage, now)
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
            }
            for rec, item_id in zip(batch, ids, strict=True)
            for p in rec.predictions
        ]
        conn.execute(predictions.insert(), pred_rows)
        return len(pred_rows)


def _stage_annotations(
    conn: Connection,
    project: Project,
    batch: list[ItemRecord],
    ids: list[int],
    stage: _Stager,
    now: float,
) -> None:
    rows = []
    for rec, item_id in zip(batch, ids, strict=True):
        for ann in rec.annotations:
            stage.n_annotations += 1
            rows.append(
                {
                    "project_id": project.id,
                    "item_id": item_id,
                    "user_id": stage.user_id(conn, project, str(ann["annotator"]), now),
                    "client_id": f"import:{stage.import_id}:{stage.n_annotations}",
                    "value": dumps(ann["value"]),
                    "schema_version": project.schema_version,
                    "status": "imported",
                    "late_reason": None,
                    "corrects_id": None,
                    "from_prediction": False,
                    "duration_ms": ann.get("duration_ms"),
                    "created_at": ann.get("created_at") or now,
                }
            )
    if rows:
        conn.execute(annotations_table.insert(), rows)


def _insert_items(conn: Connection, rows: list[dict[str, Any]], *, returning: bool) -> list[int]:
    try:
        with conn.begin_nested():
            if returning:
                result = conn.execute(
                    items.insert().returning(items.c.id, sort_by_parameter_order=True), rows
                )
                return [r.id for r in result]
            if conn.dialect.name == "postgresql":
                _copy_items(conn, rows)
            else:
                _executemany_items(conn, rows)
            return []
    except Exception as exc:
        if "unique" not in str(exc).lower():
            raise
    raise ImportFailed("duplicate external ids", _duplicates(conn, rows))


_COPY_COLUMNS = (
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
    "n_leased",
    "n_submitted",
    "created_at",
)


_SQLITE_INSERT = (
    f"INSERT INTO items ({', '.join(_COPY_COLUMNS)}) "
    f"VALUES ({', '.join('?' for _ in _COPY_COLUMNS)})"
)


def _executemany_items(conn: Connection, rows: list[dict[str, Any]]) -> None:
    """SQLite: the driver's executemany on tuples, in the connection's transaction
    (SQLAlchemy's per-row parameter processing costs more than the insert itself)."""
    raw: Any = conn.connection.driver_connection
    raw.executemany(_SQLITE_INSERT, [tuple(row[c] for c in _COPY_COLUMNS) for row in rows])


def _copy_items(conn: Connection, rows: list[dict[str, Any]]) -> None:
    """PostgreSQL COPY: several times faster than INSERT for bulk rows."""
    raw = conn.connection.driver_connection
    assert raw is not None
    with (
        raw.cursor() as cur,
        cur.copy(f"COPY items ({', '.join(_COPY_COLUMNS)}) FROM STDIN") as copy,
    ):
        for row in rows:
            copy.write_row([row[c] for c in _COPY_COLUMNS])


def _duplicates(conn: Connection, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    seen: set[str] = set()
    project_id = rows[0]["project_id"]
    ext_ids = [r["external_id"] for r in rows if r["external_id"] is not None]
    existing = set()
    for start in range(0, len(ext_ids), 500):
        chunk = ext_ids[start : start + 500]
        existing |= set(
            conn.execute(
                select(items.c.external_id).where(
                    items.c.project_id == project_id, items.c.external_id.in_(chunk)
                )
            ).scalars()
        )
    out = []
    for r in rows:
        ext = r["external_id"]
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


def _discard(
    db: Database, import_id: int, problems: list[RowProblem], n_problems: int, now: float
) -> None:
    """Delete the staged rows of a failed import, in chunks, and record the failure."""
    while True:
        with db.write() as conn:
            ids = (
                conn.execute(
                    select(items.c.id).where(items.c.import_id == import_id).limit(PUBLISH_CHUNK)
                )
                .scalars()
                .all()
            )
            if not ids:
                break
            conn.execute(predictions.delete().where(predictions.c.item_id.in_(ids)))
            conn.execute(annotations_table.delete().where(annotations_table.c.item_id.in_(ids)))
            conn.execute(items.delete().where(items.c.id.in_(ids)))
    with db.write() as conn:
        conn.execute(
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
    sink: _Sink,
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
        with db.write() as conn:
            lo, hi = conn.execute(
                select(func.min(items.c.id), func.max(items.c.id)).where(
                    items.c.import_id == import_id
                )
            ).one()
            conn.execute(
                imports.update().where(imports.c.id == import_id).values(status="publishing")
            )
    if lo is not None and hi is not None:
        for start in range(lo, hi + 1, PUBLISH_CHUNK):
            with db.write() as conn:
                conn.execute(
                    text(
                        "UPDATE items SET status = 'ready', is_open = (is_gold = :closed) "
                        "WHERE import_id = :imp AND id >= :lo AND id < :hi"
                    ),
                    {"closed": False, "imp": import_id, "lo": start, "hi": start + PUBLISH_CHUNK},
                )
    with sink.batch() as conn:
        conn.execute(
            imports.update()
            .where(imports.c.id == import_id)
            .values(status="done", n_items=n_items, finished_at=now)
        )
        conn.execute(
            update(projects)
            .where(projects.c.id == project.id)
            .values(n_items=projects.c.n_items + n_items)
        )
        audit.record(
            conn,
            action="import",
            target=f"project:{project.id}",
            now=now,
            workspace_id=project.workspace_id,
            actor_id=user_id,
            details={"import_id": import_id, "format": fmt, "file": filename, "items": n_items},
        )
    sink.commit()


def recover_imports(db: Database, now: float) -> None:
    """Finish imports a crash interrupted while publishing; roll back those still staging."""
    with db.read() as conn:
        pending = conn.execute(
            select(imports.c.id, imports.c.status, imports.c.project_id).where(
                imports.c.status.in_(("staging", "publishing"))
            )
        ).all()
    for imp in pending:
        if imp.status == "staging":
            _discard(db, imp.id, [RowProblem("", "", "interrupted")], 1, now)
        else:
            with db.write() as conn:
                n = conn.execute(
                    text(
                        "UPDATE items SET status = 'ready', is_open = (is_gold = :closed) "
                        "WHERE import_id = :imp AND status = 'staged'"
                    ),
                    {"closed": False, "imp": imp.id},
                ).rowcount
                total = conn.execute(
                    select(func.count()).where(items.c.import_id == imp.id)
                ).scalar_one()
                conn.execute(
                    imports.update()
                    .where(imports.c.id == imp.id)
                    .values(status="done", n_items=total, finished_at=now)
                )
                if n:
                    conn.execute(
                        update(projects)
                        .where(projects.c.id == imp.project_id)
                        .values(n_items=projects.c.n_items + total)
                    )
