"""CSV and TSV: a header row; reserved columns (external_id, priority, deadline, media, and
gold: ``gold`` or ``gold.<field>`` with ``gold_kind``, see
:func:`labelfarm.formats.records.gold_from_cells`), every other column is an item data key.
Exports one row per item with its current label."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Iterator
from typing import Any

import orjson

from labelfarm.formats.lines import open_table
from labelfarm.formats.records import (
    gold_from_cells,
    gold_header_problems,
    is_gold_column,
    record_from_object,
)
from labelfarm.formats.registry import (
    ExportRecord,
    ImportSource,
    ReadResult,
    RowProblem,
    register_reader,
    register_writer,
)
from labelfarm.schema import Schema

csv.field_size_limit(16 * 1024 * 1024)


def _coerce(value: str, kind: str | None) -> Any:
    if kind == "number":
        try:
            return int(value)
        except ValueError:
            try:
                return float(value)
            except ValueError:
                return value  # left as text: the data check reports it, located
    if kind == "json":
        try:
            return orjson.loads(value)
        except orjson.JSONDecodeError:
            return value
    return value


def _read(source: ImportSource, delimiter: str) -> Iterator[ReadResult]:
    kinds = source.schema.data
    base_dir = source.options.get("base_dir")
    with open_table(source, delimiter) as table:
        problems = table.problems or gold_header_problems(table.names, source.schema)
        if problems:
            yield problems[0].location, problems
            return
        names = table.names
        gold_columns = [n for n in names if is_gold_column(n)]
        for where, row in table.rows():
            if isinstance(row, RowProblem):
                yield where, [row]
                continue
            obj: dict[str, Any] = {}
            cells = dict(zip(names, row, strict=True))
            if gold_columns:
                obj.update(gold_from_cells({n: cells.pop(n) for n in gold_columns}, source.schema))
            for name, value in cells.items():
                if name == "priority":
                    obj[name] = int(value) if value.strip().lstrip("-").isdigit() else value
                elif name in ("deadline", "external_id", "media") and value == "":
                    continue
                else:
                    obj[name] = _coerce(value, kinds.get(name))
            yield where, record_from_object(obj, where, source.schema, base_dir)


@register_reader("csv")
def read_csv(source: ImportSource) -> Iterator[ReadResult]:
    return _read(source, ",")


@register_reader("tsv")
def read_tsv(source: ImportSource) -> Iterator[ReadResult]:
    return _read(source, "\t")


def _write(records: Iterable[ExportRecord], schema: Schema, delimiter: str) -> Iterator[bytes]:
    out = io.StringIO()
    w = csv.writer(out, delimiter=delimiter, lineterminator="\n")
    data_keys: list[str] | None = list(schema.data) or None
    fields = schema.fields
    header_written = False
    for rec in records:
        if data_keys is None:
            data_keys = list(rec.data)
        if not header_written:
            w.writerow(
                [
                    "item_id",
                    "external_id",
                    *data_keys,
                    *(f.name for f in fields),
                    *(f"{f.name}_confidence" for f in fields),
                    "n_annotations",
                    "method",
                ]
            )
            header_written = True
        label = rec.label or {}
        value, conf = label.get("value") or {}, label.get("confidence") or {}
        w.writerow(
            [
                rec.item_id,
                rec.external_id or "",
                *(_cell(rec.data.get(k)) for k in data_keys),
                *(f.to_cell(value.get(f.name)) for f in fields),
                *(_num(conf.get(f.name)) for f in fields),
                len(rec.annotations),
                label.get("method", ""),
            ]
        )
        if out.tell() > 1 << 16:
            yield out.getvalue().encode()
            out.seek(0)
            out.truncate()
    if out.tell():
        yield out.getvalue().encode()


def _cell(v: Any) -> str:
    if v is None:
        return ""
    if isinstance(v, str):
        return v
    return orjson.dumps(v).decode()


def _num(v: Any) -> str:
    return "" if v is None else f"{v:.4f}"


@register_writer("csv", "text/csv; charset=utf-8")
def write_csv(records: Iterable[ExportRecord], schema: Schema) -> Iterator[bytes]:
    return _write(records, schema, ",")


@register_writer("tsv", "text/tab-separated-values; charset=utf-8")
def write_tsv(records: Iterable[ExportRecord], schema: Schema) -> Iterator[bytes]:
    return _write(records, schema, "\t")
