"""Exporting transcripts: ``vtt`` and ``srt`` (a zip with one file per recording, named
after its media file's stem, else its external id, and ``manifest.json``), ``stm`` and
``ctm`` (one file naming each recording in its ``file`` column the same way).

Each item's current label (the aggregated value of its ``segments`` field) is written; an
item with no label, or none in that field, is counted and left out. WebVTT cue ids and
settings kept by an import are written back for the cues whose times are unchanged.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from labelfarm.formats import archive
from labelfarm.formats.manifest import manifest, safe_name
from labelfarm.formats.registry import ExportContext, ExportRecord, register_writer
from labelfarm.formats.stm_ctm import write_ctm, write_stm
from labelfarm.formats.subtitles_srt import write_srt
from labelfarm.formats.subtitles_vtt import write_vtt
from labelfarm.formats.transcripts import recording_name, value_segments
from labelfarm.schema import Schema


def _labelled(
    records: Iterable[ExportRecord], schema: Schema, counts: dict[str, int]
) -> Iterator[tuple[ExportRecord, list[dict[str, Any]]]]:
    for rec in records:
        counts["items"] += 1
        segments = value_segments(schema, rec.label["value"] if rec.label else None)
        if not segments:
            counts["no_transcript"] += 1
            continue
        counts["segments"] += len(segments)
        yield rec, segments


def _subtitles(
    records: Iterable[ExportRecord], schema: Schema, ctx: ExportContext, fmt: str
) -> Iterator[bytes]:
    z = archive.ZipStream()
    counts = {"items": 0, "files": 0, "segments": 0, "no_transcript": 0}
    for rec, segments in _labelled(records, schema, counts):
        name = safe_name(recording_name(rec.data, rec.external_id, rec.item_id))
        path = f"{name}.{fmt}"
        if path in z.files:  # two recordings of one name: the item id tells them apart
            path = f"{name}-{rec.item_id}.{fmt}"
        if fmt == "vtt":
            kept = (rec.source_meta or {}).get("vtt")
            text = write_vtt(segments, kept if isinstance(kept, dict) else None)
        else:
            text = write_srt(segments)
        counts["files"] += 1
        yield from z.add(path, [text.encode()])
    yield from z.finish(manifest(fmt, ctx, counts))


def _recordings(
    records: Iterable[ExportRecord], schema: Schema, counts: dict[str, int]
) -> Iterator[tuple[str, list[dict[str, Any]]]]:
    for rec, segments in _labelled(records, schema, counts):
        yield recording_name(rec.data, rec.external_id, rec.item_id), segments


def _lines(lines: Iterable[str]) -> Iterator[bytes]:
    buf: list[str] = []
    for line in lines:
        buf.append(line)
        if len(buf) >= 2000:
            yield "".join(buf).encode()
            buf.clear()
    if buf:
        yield "".join(buf).encode()


@register_writer("vtt", "application/zip", extension="zip", context=True)
def export_vtt(
    records: Iterable[ExportRecord], schema: Schema, ctx: ExportContext
) -> Iterator[bytes]:
    return _subtitles(records, schema, ctx, "vtt")


@register_writer("srt", "application/zip", extension="zip", context=True)
def export_srt(
    records: Iterable[ExportRecord], schema: Schema, ctx: ExportContext
) -> Iterator[bytes]:
    return _subtitles(records, schema, ctx, "srt")


@register_writer("stm", "text/plain; charset=utf-8")
def export_stm(records: Iterable[ExportRecord], schema: Schema) -> Iterator[bytes]:
    counts = {"items": 0, "segments": 0, "no_transcript": 0}
    return _lines(write_stm(_recordings(records, schema, counts)))


@register_writer("ctm", "text/plain; charset=utf-8")
def export_ctm(records: Iterable[ExportRecord], schema: Schema) -> Iterator[bytes]:
    counts = {"items": 0, "segments": 0, "no_transcript": 0}
    return _lines(write_ctm(_recordings(records, schema, counts)))
