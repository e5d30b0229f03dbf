"""Attaching an uploaded transcript file to the audio items a project already has.

A WebVTT or SRT file is one recording's transcript, named by the file's own stem; an STM or
CTM file names its recordings in its ``file`` column. Each recording goes to the items whose
media file (the stem or the path without suffix of a data value naming a file) or external
id is that name. It becomes a prediction of each such item (model ``vtt``, ``srt``, ``stm``
or ``ctm``: the pre-fill a transcriber starts from), or with ``mode="annotations"`` an
imported annotation by the non-login user standing for that format, as an import with
items would make (:mod:`labelfarm.services.import_annotations`). All or nothing: a file
with a problem, or whose recordings name no item, changes nothing.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from sqlalchemy import select

from labelfarm.db.engine import Database
from labelfarm.db.tables import items, predictions
from labelfarm.db.tx import CoreTx, workflow
from labelfarm.errors import ImportFailed, InvalidInput
from labelfarm.formats.registry import RowProblem
from labelfarm.formats.transcript_files import MODES, match_names, parse_file
from labelfarm.formats.transcripts import EXTENSIONS, NAMES, TranscriptError, segments_value
from labelfarm.jsonutil import dumps, loads
from labelfarm.services.import_annotations import annotations_table, import_user
from labelfarm.services.projects import Project

PAGE = 2000  # items read at a time while matching names
MAX_LISTED = 100  # recordings named in the answer as unmatched


@dataclass
class Attached:
    """What an upload attached: items given a transcript, recordings matching none."""

    format: str
    mode: str
    n_items: int = 0
    n_segments: int = 0
    unmatched: list[str] = field(default_factory=list)
    n_unmatched: int = 0
    notes: dict[str, int] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": self.format,
            "mode": self.mode,
            "n_items": self.n_items,
            "n_segments": self.n_segments,
            "n_unmatched": self.n_unmatched,
            "unmatched": self.unmatched,
            "notes": [{"reason": r, "count": n} for r, n in self.notes.items()],
        }


def transcript_format(filename: str, fmt: str | None) -> str:
    """The format of an uploaded transcript: as given, else from the file name's suffix."""
    fmt = fmt or EXTENSIONS.get(PurePosixPath(filename).suffix.lower())
    if fmt not in NAMES:
        raise InvalidInput(
            f"cannot tell the transcript format of {filename!r}: give format, one of "
            f"{sorted(NAMES)}",
            [{"field": "format", "reason": "unknown format"}],
        )
    return fmt


def _values(
    project: Project, path: Path, filename: str, fmt: str, attached: Attached
) -> dict[str, tuple[dict[str, Any], dict[str, Any]]]:
    """The value of each recording the file holds and what its format says beside (WebVTT
    cue ids and settings, by time), by name; ImportFailed listing the problems."""
    try:
        recordings, notes = parse_file(path, fmt)
    except TranscriptError as exc:
        problem = RowProblem(f"{filename} line {exc.line}", "", exc.reason)
        message = f"{filename}: {problem.location}: {exc.reason}"
        raise ImportFailed(message, [problem.to_dict()]) from None
    attached.notes.update(notes)
    values: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {}
    problems: list[RowProblem] = []
    for name, transcript in recordings.items():
        for reason, n in transcript.notes.items():
            attached.notes[reason] = attached.notes.get(reason, 0) + n
        value = segments_value(project.schema, transcript.cues, filename)
        if isinstance(value, list):
            problems += value
        else:
            kept = {f"{c.start}-{c.end}": c.meta for c in transcript.cues if c.meta}
            values[name or PurePosixPath(filename).stem] = (value, kept)
    if problems:
        raise ImportFailed(
            f"{filename}: {len(problems)} problem(s); nothing was attached",
            [p.to_dict() for p in problems[:1000]],
        )
    return values


def _matching_items(db: Database, project: Project, names: Iterable[str]) -> dict[str, list[int]]:
    """The ids of the items each recording name matches, reading the items a page at a time."""
    matched: dict[str, list[int]] = {name: [] for name in names}
    last = 0
    while True:
        with db.begin("read") as tx:
            page = tx.execute(
                select(items.c.id, items.c.external_id, items.c.data)
                .where(items.c.project_id == project.id, items.c.status == "ready")
                .where(items.c.id > last)
                .order_by(items.c.id)
                .limit(PAGE)
            ).all()
        if not page:
            break
        last = page[-1].id
        for row in page:
            for name in match_names(loads(row.data), row.external_id) & matched.keys():
                matched[name].append(row.id)
    return matched


@workflow
def attach_transcripts(
    db: Database,
    project: Project,
    path: Path,
    *,
    filename: str,
    fmt: str | None = None,
    mode: str = "predictions",
    now: float,
) -> Attached:
    """Attach the transcripts of the file at ``path`` (named ``filename`` by the user) to
    the project's items whose recordings they name."""
    fmt = transcript_format(filename, fmt)
    if mode not in MODES:
        raise InvalidInput(f"'as' is one of {list(MODES)}", [{"field": "as"}])
    attached = Attached(fmt, mode)
    values = _values(project, path, filename, fmt, attached)
    matched = _matching_items(db, project, values.keys())
    unmatched = sorted(name for name, ids in matched.items() if not ids)
    attached.n_unmatched = len(unmatched)
    attached.unmatched = unmatched[:MAX_LISTED]
    if len(unmatched) == len(values):
        raise InvalidInput(
            f"{filename}: no item of the project is the recording "
            f"{', '.join(repr(n) for n in unmatched[:5])}: the names are matched to the items' "
            "media file names (without their suffix) and external ids",
            [{"location": filename, "field": "file", "reason": "no matching item"}],
        )
    rows = [(item_id, *values[name]) for name, ids in matched.items() for item_id in ids]
    attached.n_items = len({row[0] for row in rows})
    attached.n_segments = sum(len(next(iter(value.values()), [])) for _, value, _ in rows)
    with db.begin("write") as tx:
        _store(tx, project, fmt, mode, rows, now)
    return attached


def _store(
    tx: CoreTx,
    project: Project,
    fmt: str,
    mode: str,
    rows: list[tuple[int, dict[str, Any], dict[str, Any]]],
    now: float,
) -> None:
    """Write (item id, value, kept) rows as predictions or annotations; what a format says
    beside the text goes into the item's ``source_meta`` under the format's name."""
    if mode == "predictions":
        preds = [
            {
                "project_id": project.id,
                "item_id": item_id,
                "model": fmt,
                "value": dumps(value),
                "score": None,
                "created_at": now,
            }
            for item_id, value, _ in rows
        ]
        tx.execute(predictions.insert(), preds)
    else:
        user_id = import_user(tx, project.workspace_id, fmt, now)
        batch = secrets.token_hex(6)
        anns = [
            {
                "project_id": project.id,
                "item_id": item_id,
                "user_id": user_id,
                "client_id": f"transcript:{batch}:{n}",
                "value": dumps(value),
                "schema_version": project.schema_version,
                "status": "imported",
                "from_prediction": False,
                "created_at": now,
            }
            for n, (item_id, value, _) in enumerate(rows)
        ]
        tx.execute(annotations_table.insert(), anns)
    for item_id, _, kept in rows:
        if not kept:
            continue
        old = tx.execute(select(items.c.source_meta).where(items.c.id == item_id)).scalar()
        meta = loads(old) if old else {}
        meta = {**(meta if isinstance(meta, dict) else {}), fmt: {"cues": kept}}
        tx.execute(items.update().where(items.c.id == item_id).values(source_meta=dumps(meta)))
