"""Timed transcripts as the subtitle and scoring formats read them, and how they become a
``segments`` value.

The readers (:mod:`~labelfarm.formats.subtitles_vtt`, :mod:`~labelfarm.formats.subtitles_srt`,
:mod:`~labelfarm.formats.stm_ctm`) turn a file into :class:`Cue` s: times in whole
milliseconds (so that a time read, written and read again is the same number), the text,
the speaker and channel, and the line the cue was read from, where its problems are
reported. :func:`segments_value` puts them into the schema's ``segments`` field and
validates the value; a problem the field finds (``segments[3].end``) is located at the line
of the cue it names.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from labelfarm.formats.registry import RowProblem
from labelfarm.schema import FieldError, FieldType, Schema

MAX_FILE_BYTES = 64 << 20  # one transcript file (read whole: its rows come in any order)
MAX_MS = 10**10  # about 115 days: a time beyond this is a mistake in the file
EXTENSIONS = {".vtt": "vtt", ".srt": "srt", ".stm": "stm", ".ctm": "ctm"}
NAMES = {"vtt": "WebVTT", "srt": "SRT", "stm": "STM", "ctm": "CTM"}


@dataclass
class Cue:
    """One timed stretch of a transcript: a subtitle cue, an STM segment, CTM words."""

    start: int  # milliseconds
    end: int
    text: str
    line: int  # where it was read from (1-based)
    speaker: str | None = None
    channel: int = 0
    words: list[dict[str, Any]] | None = None
    meta: dict[str, Any] = field(default_factory=dict)  # what the format says beside (kept aside)


@dataclass
class Transcript:
    """What one file says of one recording: its cues, and what was left out on purpose."""

    cues: list[Cue] = field(default_factory=list)
    notes: dict[str, int] = field(default_factory=dict)

    def note(self, reason: str) -> None:
        self.notes[reason] = self.notes.get(reason, 0) + 1


class TranscriptError(ValueError):
    """A file no reader can read: where (``line 12``) and why."""

    def __init__(self, line: int, reason: str) -> None:
        super().__init__(f"line {line}: {reason}")
        self.line = line
        self.reason = reason


def read_text(path: Path) -> str:
    """The file's text: UTF-8 (a BOM is dropped), any line ending turned into ``\\n``."""
    size = path.stat().st_size
    if size > MAX_FILE_BYTES:
        raise TranscriptError(
            1, f"{size:,} bytes; a transcript file may hold at most {MAX_FILE_BYTES >> 20} MiB"
        )
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise TranscriptError(line, "not UTF-8 text") from None
    return text.replace("\r\n", "\n").replace("\r", "\n")


def decimal_ms(text: str, line: int, what: str) -> int:
    """Seconds written as a decimal number (``12``, ``1.25``) in whole milliseconds."""
    try:
        value = Decimal(text)
    except InvalidOperation:
        raise TranscriptError(line, f"{what} {text!r} is not a number of seconds") from None
    if not value.is_finite() or value < 0 or value * 1000 > MAX_MS:
        raise TranscriptError(line, f"{what} {text!r} is not a time in the file")
    return int((value * 1000).to_integral_value())


def clock(ms: int, sep: str = ".", *, hours: bool = True) -> str:
    """``hh:mm:ss.ttt`` (``sep`` before the milliseconds); ``mm:ss.ttt`` when ``hours`` is
    false and the time is under an hour."""
    h, rest = divmod(ms, 3_600_000)
    m, rest = divmod(rest, 60_000)
    s, t = divmod(rest, 1000)
    if not hours and h == 0:
        return f"{m:02d}:{s:02d}{sep}{t:03d}"
    return f"{h:02d}:{m:02d}:{s:02d}{sep}{t:03d}"


def seconds(ms: int) -> float:
    return round(ms / 1000, 3)


def millis(t: Any) -> int:
    """A segment's time (seconds) in whole milliseconds."""
    return round(float(t) * 1000)


def segments_field(schema: Schema) -> FieldType | None:
    """The schema's first field of type ``segments``."""
    return next((f for f in schema.fields if f.type_name == "segments"), None)


def segment_of(cue: Cue) -> dict[str, Any]:
    seg: dict[str, Any] = {
        "start": seconds(cue.start),
        "end": seconds(cue.end),
        "text": cue.text,
        "speaker": cue.speaker,
        "language": [],
        "events": [],
        "channel": cue.channel,
    }
    if cue.words:
        seg["words"] = cue.words
    return seg


def sort_cues(cues: list[Cue]) -> list[Cue]:
    """Cues in the order a ``segments`` value keeps: by channel, start, end."""
    return sorted(cues, key=lambda c: (c.channel, c.start, c.end))


_INDEX = re.compile(r"^\w+\[(\d+)\]")


def segments_value(
    schema: Schema, cues: list[Cue], where: str
) -> dict[str, Any] | list[RowProblem]:
    """The annotation value holding ``cues`` in the schema's ``segments`` field, validated;
    or the problems, each located at the line of the cue it is about."""
    f = segments_field(schema)
    if f is None:
        reason = "the schema has no field of type 'segments' to hold a transcript"
        return [RowProblem(where, "", reason)]
    cues = sort_cues(cues)
    try:
        return schema.validate({f.name: [segment_of(c) for c in cues]})
    except FieldError as exc:
        m = _INDEX.match(exc.path)
        at = where
        if m and int(m.group(1)) < len(cues):
            at = f"{where} line {cues[int(m.group(1))].line}"
        return [RowProblem(at, exc.path, exc.reason)]


def value_segments(schema: Schema, value: dict[str, Any] | None) -> list[dict[str, Any]]:
    """The segments of an annotation value (its ``segments`` field), in time order."""
    f = segments_field(schema)
    if f is None or not value or not isinstance(value.get(f.name), list):
        return []
    segs = [s for s in value[f.name] if isinstance(s, dict)]
    return sorted(segs, key=lambda s: (s.get("channel") or 0, s["start"], s["end"]))


def recording_name(data: dict[str, Any], external_id: str | None, item_id: int) -> str:
    """The name a recording goes by in a transcript file: the stem of its media file (the
    first data value naming a file), else its external id's stem, else its item id."""
    for v in data.values():
        if isinstance(v, str) and "\n" not in v and len(v) < 1000 and Path(v).suffix:
            return Path(v.replace("\\", "/")).stem
    if external_id:
        return Path(external_id.replace("\\", "/")).stem or external_id
    return str(item_id)
