"""NeMo-style speech manifests (``nemo-manifest``): JSON Lines, one utterance a line.

    {"audio_filepath": "audio/call-7.wav", "duration": 3.52, "text": "hello there"}
    {"audio_filepath": "audio/long.wav", "offset": 12.0, "duration": 4.1, "text": "…",
     "lang": "ta-IN", "speaker": "A", "pred_text": "…"}

**Import** (a manifest file, or a folder or zip holding one ``.jsonl`` manifest beside the
audio): ``audio_filepath`` is a path relative to the manifest (as ``media`` is in labelfarm's
JSON Lines; never outside its folder), stored as the item's ``audio``; the item's external id
is that path. A line without ``offset`` is the whole recording: its ``text`` becomes one
segment from 0 to ``duration``. Lines with ``offset`` are segments of one recording, from
``offset`` to ``offset + duration``: consecutive lines naming the same file make one item
(a file named again further down is an error naming both lines). ``lang`` becomes the
segment's language, ``speaker`` its speaker, ``channel`` (not NeMo's, written by the export
for a segment on another channel than 0) its channel. The texts are an annotation by ``nemo``;
``pred_text`` a prediction of model ``nemo``. Keys beyond these are kept with the item and
written back by the export, on the line of the segment they came with.

**Export** (zip): ``manifest.jsonl`` with one line per segment of each item's current label
(``offset`` and ``duration`` of the segment, ``text``, ``speaker``, ``lang`` when set); a
recording imported as one line without ``offset`` and still one segment from 0 is written
as that one line. Segments that only mark an event (no text) are left out, and so are items
without a label. The stored audio files are in the archive at their paths as imported,
which each line's ``audio_filepath`` gives (relative to ``manifest.jsonl`` beside them);
an item whose audio is an address keeps it.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import orjson

from labelfarm.formats import archive
from labelfarm.formats.lines import json_lines
from labelfarm.formats.manifest import manifest, media_entries, safe_name
from labelfarm.formats.objects import register_guesser
from labelfarm.formats.registry import (
    ExportContext,
    ExportRecord,
    ImportSource,
    ItemRecord,
    ReadResult,
    RowProblem,
    register_reader,
    register_writer,
)
from labelfarm.formats.transcripts import segments_field, value_segments
from labelfarm.schema import FieldError, FieldType, Schema
from labelfarm.schema.segments import LANGUAGE_TAG

MANIFEST = "manifest.jsonl"
READ = frozenset(
    {"audio_filepath", "duration", "offset", "text", "pred_text", "lang", "speaker", "channel"}
)
ANNOTATOR = "nemo"


class ManifestError(ValueError):
    """A line that cannot be read: which key and why."""

    def __init__(self, key: str, reason: str) -> None:
        super().__init__(reason)
        self.key = key
        self.reason = reason


def _number(line: dict[str, Any], key: str, default: float | None = None) -> float:
    v = line.get(key, default)
    if isinstance(v, bool) or not isinstance(v, int | float) or not 0 <= v < 1e7:
        raise ManifestError(key, f"must be a number of seconds ≥ 0, got {v!r}")
    return float(v)


def _segment(line: dict[str, Any], text_key: str) -> dict[str, Any] | None:
    """The segment a manifest line gives (with its ``text_key`` as text), None without
    that text."""
    text = line.get(text_key)
    if text is None:
        return None
    if not isinstance(text, str):
        raise ManifestError(text_key, "must be a text")
    start = _number(line, "offset", 0)
    seg: dict[str, Any] = {
        "start": round(start, 3),
        "end": round(start + _number(line, "duration"), 3),
        "text": text,
    }
    speaker = line.get("speaker")
    if speaker is not None:
        if isinstance(speaker, bool) or not isinstance(speaker, str | int):
            raise ManifestError("speaker", "must be a name or a number")
        seg["speaker"] = str(speaker)
    channel = line.get("channel")
    if channel is not None:
        if isinstance(channel, bool) or not isinstance(channel, int) or channel < 0:
            raise ManifestError("channel", f"must be a channel number (0, 1, …), got {channel!r}")
        seg["channel"] = channel
    lang = line.get("lang")
    if lang is not None:
        if not isinstance(lang, str) or not LANGUAGE_TAG.match(lang):
            raise ManifestError("lang", f"must be a language tag like ta-IN, got {lang!r}")
        seg["language"] = [lang]
    return seg


class _Recording:
    """The lines of one recording, gathered while reading."""

    def __init__(self, path: str, first: str) -> None:
        self.path = path
        self.first = first
        self.texts: list[tuple[str, dict[str, Any]]] = []
        self.preds: list[tuple[str, dict[str, Any]]] = []
        self.kept: list[dict[str, Any]] = []
        self.whole = True
        self.problems: list[RowProblem] = []

    def add(self, where: str, line: dict[str, Any]) -> None:
        try:
            _number(line, "duration")
            if "offset" in line:
                self.whole = False
            for key, out in (("text", self.texts), ("pred_text", self.preds)):
                seg = _segment(line, key)
                if seg is not None:
                    out.append((where, seg))
        except ManifestError as exc:
            self.problems.append(RowProblem(where, exc.key, exc.reason))
            return
        extra = {k: v for k, v in line.items() if k not in READ}
        start = round(float(line.get("offset") or 0), 3)
        end = round(start + float(line["duration"]), 3)
        self.kept.append({"at": [start, end], **({"keys": extra} if extra else {})})


def _manifest_file(source: ImportSource) -> tuple[Path, Path] | RowProblem:
    """(manifest file, folder its paths are relative to)."""
    try:
        root = archive.unpacked(source)
    except archive.ArchiveError as exc:
        return exc.problems[0]
    if root.is_file():
        base = source.options.get("base_dir")
        return root, Path(base) if base else root.parent
    found = sorted(p for p in root.rglob("*.jsonl") if not p.name.startswith("."))
    if len(found) != 1:
        reason = f"a folder or zip holds one manifest (.jsonl) beside the audio; found {len(found)}"
        return RowProblem(source.filename, "", reason)
    return found[0], found[0].parent


@register_reader("nemo-manifest")
def read_nemo(source: ImportSource) -> Iterator[ReadResult]:
    found = _manifest_file(source)
    if isinstance(found, RowProblem):
        yield found.location, [found]
        return
    path, base = found
    field = segments_field(source.schema)
    if field is None:
        reason = "the schema has no field of type 'segments' to hold the transcripts"
        yield source.filename, [RowProblem(source.filename, "", reason)]
        return
    seen: dict[str, str] = {}
    rec: _Recording | None = None
    sub = ImportSource(path, path.name, source.schema, limits=source.limits)
    inside = "" if path == source.path else f"{path.relative_to(base).as_posix()} "
    for at, line in json_lines(sub):
        source.check_cancel()
        source.bytes_read = sub.bytes_read
        where = inside + at  # the manifest's name when it came in a folder or zip
        if isinstance(line, RowProblem):
            yield where, [RowProblem(where, line.field, line.reason)]
            continue
        audio = line.get("audio_filepath") if isinstance(line, dict) else None
        if not isinstance(audio, str) or not audio:
            yield where, [RowProblem(where, "audio_filepath", "each line names its audio file")]
            continue
        if rec is None or audio != rec.path:
            if rec is not None:
                yield rec.first, _item(rec, base, source, field)
            if audio in seen:
                reason = (
                    f"{audio!r} was given by {seen[audio]}; a recording's lines follow each other"
                )
                yield where, [RowProblem(where, "audio_filepath", reason)]
                rec = None
                continue
            seen[audio] = where
            rec = _Recording(audio, where)
        rec.add(where, line)
    if rec is not None:
        yield rec.first, _item(rec, base, source, field)


def _item(
    rec: _Recording, base: Path, source: ImportSource, field: FieldType
) -> ItemRecord | list[RowProblem]:
    problems = list(rec.problems)
    media = (base / rec.path).resolve()
    if not media.is_relative_to(base.resolve()):
        problems.append(
            RowProblem(
                rec.first, "audio_filepath", f"{rec.path!r} is outside the manifest's folder"
            )
        )
    elif not media.is_file():
        problems.append(RowProblem(rec.first, "audio_filepath", f"file {rec.path!r} not found"))
    key = next((k for k, kind in source.schema.data.items() if kind == "audio"), "audio")
    item = ItemRecord(data={key: rec.path}, external_id=rec.path, media_path=media)
    for found, put in ((rec.texts, "annotation"), (rec.preds, "prediction")):
        if not found:
            continue
        value = _value(field, found, problems)
        if value is None:
            continue
        if put == "annotation":
            item.annotations.append({"annotator": ANNOTATOR, "value": value})
        else:
            item.predictions.append({"value": value, "model": ANNOTATOR, "score": None})
    item.source_meta = {"nemo": {"whole": rec.whole and len(rec.kept) == 1, "lines": rec.kept}}
    return problems or item


def _value(
    field: FieldType, found: list[tuple[str, dict[str, Any]]], problems: list[RowProblem]
) -> dict[str, Any] | None:
    """The value holding the segments in ``field``, validated; None with the problem, at
    the line of the segment it is about (other fields stay out, whatever ``required`` says,
    as for labels made in other tools)."""
    try:
        return {field.name: field.validate([seg for _, seg in found])}
    except FieldError as exc:
        index = exc.path.lstrip("[").split("]")[0]
        where = found[int(index)][0] if index.isdigit() and int(index) < len(found) else found[0][0]
        problems.append(RowProblem(where, f"{field.name}{exc.path}", exc.reason))
        return None


@register_guesser("nemo-manifest")
def guess_nemo(source: ImportSource) -> dict[str, Any]:
    """One ``segments`` field for the transcripts, the audio as the item's data."""
    del source
    return {
        "fields": [{"name": "transcript", "type": "segments", "required": False}],
        "data": {"audio": "audio"},
    }


# -- export ---------------------------------------------------------------------------------


def audio_name(rec: ExportRecord, folder: str = "") -> str | None:
    """The archive path of an item's stored audio file: its path as imported (under
    ``folder``); None when the item's media is not stored."""
    if rec.media_sha256 is None:
        return None
    path = next((v for v in rec.data.values() if isinstance(v, str) and v), None)
    name = safe_name(path or rec.external_id or str(rec.item_id))
    return f"{folder}/{name}" if folder else name


def manifest_lines(rec: ExportRecord, schema: Schema, audio: str) -> list[dict[str, Any]]:
    """The manifest lines of one item's current label: one per segment with text."""
    segments = value_segments(schema, (rec.label or {}).get("value"))
    kept = (rec.source_meta or {}).get("nemo") or {}
    extra = {tuple(k["at"]): k.get("keys") or {} for k in kept.get("lines") or []}
    whole = bool(kept.get("whole")) and len(segments) == 1 and segments[0]["start"] == 0
    out = []
    for seg in segments:
        if not str(seg.get("text") or "").strip():
            continue
        line: dict[str, Any] = {"audio_filepath": audio}
        if not whole:
            line["offset"] = seg["start"]
        line["duration"] = round(seg["end"] - seg["start"], 3)
        line["text"] = seg["text"]
        if seg.get("speaker"):
            line["speaker"] = seg["speaker"]
        if seg.get("language"):
            line["lang"] = seg["language"][0]
        if seg.get("channel"):
            line["channel"] = seg["channel"]
        out.append({**extra.get((seg["start"], seg["end"]), {}), **line})
    return out


@register_writer("nemo-manifest", "application/zip", extension="zip", context=True)
def write_nemo(
    records: Iterable[ExportRecord], schema: Schema, ctx: ExportContext
) -> Iterator[bytes]:
    z = archive.ZipStream()
    counts = {"items": 0, "lines": 0}
    with tempfile.TemporaryFile() as lines, tempfile.TemporaryFile() as media_list:
        for rec in records:
            name = audio_name(rec)
            found = manifest_lines(rec, schema, name or _given(rec))
            if not found:
                continue
            counts["items"] += 1
            counts["lines"] += len(found)
            for line in found:
                lines.write(orjson.dumps(line, option=orjson.OPT_APPEND_NEWLINE))
            if name is not None:
                media_list.write(orjson.dumps([name, rec.media_sha256]) + b"\n")
        lines.seek(0)
        yield from z.add(MANIFEST, archive.read_file_obj(lines))
        media_list.seek(0)
        files = (orjson.loads(line) for line in media_list)
        yield from media_entries(z, ((n, sha) for n, sha in files), ctx, counts)
    yield from z.finish(manifest("nemo-manifest", ctx, counts))


def _given(rec: ExportRecord) -> str:
    """An item's audio as its data names it (an address), when no file is stored."""
    return next((v for v in rec.data.values() if isinstance(v, str) and v), str(rec.item_id))
