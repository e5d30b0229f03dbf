"""A new project from a file: its format told, a schema proposed that keeps everything the
file holds, the file checked, then the project created and the file imported.

The file is checked in full before anything is created, so a file that cannot be read, or
whose rows do not fit the schema proposed, leaves no project behind and reports every
located problem, as an import does.
"""

from __future__ import annotations

import tempfile
import threading
from pathlib import Path
from typing import Any

from labelfarm.db.engine import Database
from labelfarm.db.tx import workflow
from labelfarm.errors import ImportFailed
from labelfarm.formats import ImportSource, RowProblem, reader
from labelfarm.formats.detect import guess_format
from labelfarm.formats.objects import suggest_schema
from labelfarm.formats.registry import ImportLimits
from labelfarm.schema import Schema
from labelfarm.services.imports import MAX_REPORTED, ImportResult, import_items
from labelfarm.services.media import MediaStore
from labelfarm.services.projects import create_project, load_project


def propose(
    path: Path, fmt: str | None = None, filename: str | None = None
) -> tuple[str, dict[str, Any]]:
    """(format, schema) for a file or folder: the format told from its name and content
    unless given, the schema guessed from what it holds. Raises InvalidInput, located."""
    fmt = fmt or guess_format(path, filename)
    with tempfile.TemporaryDirectory(prefix="labelfarm-guess-") as scratch:
        return fmt, suggest_schema(fmt, path, scratch=Path(scratch), filename=filename)


def check_file(
    path: Path, fmt: str, schema: dict[str, Any], filename: str, limits: ImportLimits
) -> None:
    """Read the whole file against ``schema`` without storing anything; ImportFailed with
    every located problem (the first thousand listed) when a row does not fit."""
    problems: list[RowProblem] = []
    n = 0
    with tempfile.TemporaryDirectory(prefix="labelfarm-check-") as scratch:
        options = {"base_dir": path if path.is_dir() else path.parent, "scratch": Path(scratch)}
        source = ImportSource(path, filename, Schema(schema), options, limits=limits)
        for _where, result in reader(fmt)(source):
            if isinstance(result, list):
                n += len(result)
                problems.extend(result[: max(0, MAX_REPORTED - len(problems))])
    if problems:
        raise ImportFailed(
            f"{filename!r} does not fit the schema proposed for it: {n} problem(s); "
            "no project was created",
            [p.to_dict() for p in problems],
        )


@workflow
def create_project_from_file(
    db: Database,
    *,
    workspace_id: int,
    name: str,
    path: Path,
    media: MediaStore,
    now: float,
    actor_id: int | None,
    fmt: str | None = None,
    filename: str | None = None,
    limits: ImportLimits | None = None,
    cancel: threading.Event | None = None,
) -> tuple[dict[str, Any], ImportResult]:
    """(the new project, its import) for the file at ``path``."""
    filename = filename or path.name
    limits = limits or ImportLimits()
    fmt, schema = propose(path, fmt, filename)
    check_file(path, fmt, schema, filename, limits)
    project = db.run(
        create_project,
        workspace_id=workspace_id,
        name=name,
        schema=schema,
        now=now,
        actor_id=actor_id,
    )
    result = import_items(
        db,
        db.run(load_project, project["id"]),
        path,
        fmt,
        media=media,
        now=now,
        user_id=actor_id,
        filename=filename,
        base_dir=path if path.is_dir() else path.parent,
        limits=limits,
        cancel=cancel,
    )
    return project, result
