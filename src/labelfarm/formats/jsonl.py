"""JSON Lines: one item per line in, one item per line out."""

from __future__ import annotations

from collections.abc import Iterable, Iterator

import orjson

from labelfarm.formats.lines import json_lines
from labelfarm.formats.records import record_from_object
from labelfarm.formats.registry import (
    ExportRecord,
    ImportSource,
    ReadResult,
    RowProblem,
    register_reader,
    register_writer,
)
from labelfarm.schema import Schema


@register_reader("jsonl")
def read_jsonl(source: ImportSource) -> Iterator[ReadResult]:
    base_dir = source.options.get("base_dir")
    for where, value in json_lines(source):
        if isinstance(value, RowProblem):
            yield where, [value]
        else:
            hosts = source.limits.audio_url_hosts
            yield where, record_from_object(value, where, source.schema, base_dir, hosts)


@register_writer("jsonl", "application/x-ndjson")
def write_jsonl(records: Iterable[ExportRecord], schema: Schema) -> Iterator[bytes]:
    buf: list[bytes] = []
    for rec in records:
        buf.append(
            orjson.dumps(
                {
                    "id": rec.item_id,
                    "external_id": rec.external_id,
                    "data": rec.data,
                    "media_sha256": rec.media_sha256,
                    "annotations": rec.annotations,
                    "label": rec.label,
                },
                option=orjson.OPT_APPEND_NEWLINE,
            )
        )
        if len(buf) >= 500:
            yield b"".join(buf)
            buf.clear()
    if buf:
        yield b"".join(buf)
