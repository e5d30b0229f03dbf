"""An audio-folder dataset (``audiofolder``, zip) that Hugging Face ``datasets`` loads::

    data/metadata.csv
    data/calls/call-7.wav
    manifest.json

``load_dataset("audiofolder", data_dir="<unzipped>/data")`` gives one row per item with
stored audio: the ``audio`` column (the file), and the columns of ``metadata.csv``:
``file_name`` (the audio file's path relative to ``metadata.csv``, as ``datasets`` wants
it; the item's path as imported), ``transcription`` (the text of the item's current label:
its segments in time order, see :func:`labelfarm.schema.segments.transcript_text`; or its
first ``text`` field), ``speaker`` and ``language`` (the segments' speakers and main
language tags, in order of appearance, joined by ``|``), ``duration`` (seconds: the item
data's ``duration``, else read from the file's header) and ``external_id``. An item
without a label is a row with an empty transcription; an item whose audio is not stored in
labelfarm (an address) has no file to give and is left out (counted in ``manifest.json``
as ``no_media``).
"""

from __future__ import annotations

import csv
import io
import tempfile
from collections.abc import Iterable, Iterator
from typing import IO, Any

from labelfarm.formats import archive
from labelfarm.formats.manifest import manifest
from labelfarm.formats.nemo_manifest import audio_name
from labelfarm.formats.registry import ExportContext, ExportRecord, register_writer
from labelfarm.formats.transcripts import value_segments
from labelfarm.schema import Schema
from labelfarm.schema.segments import transcript_text

COLUMNS = ("file_name", "transcription", "speaker", "language", "duration", "external_id")
FOLDER = "data"


def transcription(rec: ExportRecord, schema: Schema) -> tuple[str, str, str]:
    """(transcription, speakers, languages) of an item's current label."""
    value = (rec.label or {}).get("value") or {}
    segments = value_segments(schema, value)
    if not segments:
        text = next((value.get(f.name) for f in schema.fields if f.type_name == "text"), None)
        return (text if isinstance(text, str) else ""), "", ""
    speakers = dict.fromkeys(s["speaker"] for s in segments if s.get("speaker"))
    tags = dict.fromkeys(s["language"][0] for s in segments if s.get("language"))
    return transcript_text(segments), "|".join(speakers), "|".join(tags)


def _duration(rec: ExportRecord, fh: IO[bytes]) -> str:
    """The item's duration in seconds: its data's, else the audio file's header's."""
    given = rec.data.get("duration")
    if isinstance(given, int | float) and not isinstance(given, bool) and given >= 0:
        return f"{float(given):.3f}"
    import soundfile as sf

    try:
        info = sf.info(fh)
        return f"{info.frames / info.samplerate:.3f}" if info.samplerate else ""
    except (RuntimeError, ValueError, TypeError, OSError):
        return ""
    finally:
        fh.seek(0)


def _row(values: list[Any]) -> bytes:
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerow(values)
    return out.getvalue().encode()


@register_writer("audiofolder", "application/zip", extension="zip", context=True)
def write_audiofolder(
    records: Iterable[ExportRecord], schema: Schema, ctx: ExportContext
) -> Iterator[bytes]:
    z = archive.ZipStream()
    counts = {"rows": 0, "labelled": 0, "no_media": 0, "media_missing": 0}
    with tempfile.TemporaryFile() as rows:
        rows.write(_row(list(COLUMNS)))
        for rec in records:
            name = audio_name(rec)
            if name is None or ctx.open_media is None:
                counts["no_media"] += 1
                continue
            try:
                fh = ctx.open_media(str(rec.media_sha256))
            except OSError:
                counts["media_missing"] += 1
                continue
            with fh:
                duration = _duration(rec, fh)
                if f"{FOLDER}/{name}" not in z.files:
                    yield from z.add(f"{FOLDER}/{name}", archive.read_file_obj(fh), compress=False)
            text, speakers, tags = transcription(rec, schema)
            counts["rows"] += 1
            counts["labelled"] += rec.label is not None
            rows.write(_row([name, text, speakers, tags, duration, rec.external_id or ""]))
        rows.seek(0)
        yield from z.add(f"{FOLDER}/metadata.csv", archive.read_file_obj(rows))
    yield from z.finish(manifest("audiofolder", ctx, counts))
