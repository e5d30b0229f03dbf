"""Submitted transcripts must fit inside their audio file.

A ``segments`` value is valid on its own (:mod:`labelfarm.schema.segments`) before it is
known which file it describes; at submit, for a project whose schema has a ``segments``
field, each entry's segments must also end within the item's audio (its duration + 10 ms)
and use only the channels the file has. The facts come from ``media_audio`` (derived at
import, keyed by the sha of the item's media): one indexed read per batch, and only in such
projects. An item with no row there (a text item, or audio whose facts were not derived) is
not checked. A value that does not fit refuses the batch like any invalid value, located by
entry index and field path.
"""

from __future__ import annotations

from typing import Any, NamedTuple

from labelfarm.db.tx import Sql, Tx
from labelfarm.errors import InvalidInput
from labelfarm.jsonutil import loads
from labelfarm.schema import FieldError
from labelfarm.schema.segments import Segments
from labelfarm.services.projects import Project
from labelfarm.services.tasks.entries import Entry


class AudioFit(NamedTuple):
    item_id: int
    duration: float
    channels: int


AUDIO_OF_ITEMS = Sql(
    "SELECT i.id, m.duration, m.channels FROM items i "
    "JOIN media_audio m ON m.sha256 = i.media_sha256 "
    "WHERE i.project_id = :p AND i.id IN :ids",
    row=AudioFit,
)


def segments_fields(project: Project) -> list[Segments]:
    """The project's fields that hold time ranges of an audio file (``segments``)."""
    return [f for f in project.schema.fields if isinstance(f, Segments)]


def check_inside_media(tx: Tx, project: Project, entries: list[Entry]) -> None:
    """Raise InvalidInput listing every entry whose segments do not fit its audio file."""
    fields = segments_fields(project)
    if not fields or not entries:
        return
    ids = sorted({e.item_id for e in entries})
    audio = {a.item_id: a for a in tx.rows(AUDIO_OF_ITEMS, {"p": project.id, "ids": ids})}
    if not audio:
        return
    problems: list[dict[str, Any]] = []
    for i, e in enumerate(entries):
        facts = audio.get(e.item_id)
        if facts is None:
            continue
        value = loads(e.value)
        for f in fields:
            if value.get(f.name) is None:
                continue
            try:
                f.check_media(value[f.name], facts.duration, facts.channels)
            except FieldError as exc:
                problems.append(
                    {"index": i, "field": f"value.{f.name}{exc.path}", "reason": exc.reason}
                )
    if problems:
        raise InvalidInput(f"{len(problems)} problem(s) in the submitted batch", problems)
