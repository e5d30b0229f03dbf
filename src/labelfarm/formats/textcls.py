"""Text classification and spans in JSONL, CSV and TSV, as doccano reads and writes them.

``doccano`` (JSONL): one object per line with ``text``, the labels under ``label`` or
``labels`` (a list of names for classification, or ``[start, end, label]`` triples /
``{"start_offset", "end_offset", "label"}`` objects for spans; doccano's ``entities`` too),
``gold`` and ``gold_kind`` as in any import, and any other keys (``meta``…) kept as item
data. ``doccano-csv`` / ``doccano-tsv``: a header with ``text`` and ``label`` (several labels
separated by ``|`` for a multichoice field), gold columns as in a CSV import, other columns
as data.

The label key's name is matched to a schema field of that name; otherwise labels go to the
first ``choice``/``multichoice`` field and spans to the first ``spans`` field. An empty label
leaves the item unlabelled, except an empty list for a multichoice field ("none of these").
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Iterator
from typing import Any

import orjson

from labelfarm.formats.lines import json_lines, open_table
from labelfarm.formats.objects import raise_unreadable, register_guesser
from labelfarm.formats.records import (
    gold_from_cells,
    gold_header_problems,
    is_gold_column,
    read_gold,
)
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
from labelfarm.schema import FieldError, FieldType, Schema

LABEL_KEYS = ("label", "labels", "entities", "spans")
CLASS_TYPES = ("choice", "multichoice")


def _field(schema: Schema, key: str, spans: bool) -> FieldType | None:
    f = schema.by_name.get(key)
    want = ("spans",) if spans else CLASS_TYPES
    if f is not None and f.type_name in want:
        return f
    return next((f for f in schema.fields if f.type_name in want), None)


def _is_spans(labels: Any) -> bool:
    return isinstance(labels, list) and any(isinstance(v, list | dict) for v in labels)


def _spans(labels: list[Any], text: str) -> list[dict[str, Any]]:
    out = []
    for v in labels:
        if isinstance(v, dict):
            start = v.get("start_offset", v.get("start"))
            end = v.get("end_offset", v.get("end"))
            label = v.get("label")
        else:
            start, end, label = v
        out.append({"start": start, "end": end, "label": label})
    return out


def record(obj: dict[str, Any], where: str, schema: Schema) -> ItemRecord | list[RowProblem]:
    problems: list[RowProblem] = []
    text = obj.get("text", obj.get("data"))
    if not isinstance(text, str):
        return [RowProblem(where, "text", f"expected the text (a string), got {text!r}")]
    key = next((k for k in LABEL_KEYS if k in obj), None)
    data = {k: v for k, v in obj.items() if k not in (key, "id", "data", "gold", "gold_kind")}
    data["text"] = text
    problems += [RowProblem(where, f"data.{k}", r) for k, r in schema.validate_data(data)]
    rec = ItemRecord(data=data)
    problems += read_gold(obj, where, schema, rec)
    if obj.get("id") is not None:
        rec.external_id = str(obj["id"])
    labels = obj.get(key) if key else None
    if labels is None or labels == "":
        return problems or rec
    # an empty list is "no labels" for a classification field, "no spans" for a spans field
    spans = _is_spans(labels) or (labels == [] and _field(schema, key or "", False) is None)
    f = _field(schema, key or "label", spans)
    if f is None:
        kind = "spans" if spans else "choice or multichoice"
        return [*problems, RowProblem(where, key or "", f"the schema has no {kind} field")]
    if spans:
        try:
            v: Any = _spans(labels, text)
        except (TypeError, ValueError):
            return [*problems, RowProblem(where, key or "", "a span is [start, end, label]")]
    elif f.type_name == "choice":
        names = labels if isinstance(labels, list) else [labels]
        if not names:
            return problems or rec
        if len(names) > 1:
            return [
                *problems,
                RowProblem(
                    where, key or "", f"{len(names)} labels for the single-choice field {f.name!r}"
                ),
            ]
        v = names[0]
    else:
        v = labels if isinstance(labels, list) else [labels]
    try:
        value = schema.validate({f.name: v})
    except FieldError as exc:
        return [*problems, RowProblem(where, exc.path or key or "", exc.reason)]
    if spans:
        for i, s in enumerate(value[f.name]):
            if s["end"] > len(text):
                problems.append(
                    RowProblem(
                        where,
                        f"{key}[{i}]",
                        f"span {s['start']}-{s['end']} runs past the end of the text ({len(text)})",
                    )
                )
    rec.annotations.append({"annotator": "doccano", "value": value})
    return problems or rec


@register_reader("doccano")
def read_doccano(source: ImportSource) -> Iterator[ReadResult]:
    for where, obj in json_lines(source):
        if isinstance(obj, RowProblem):
            yield where, [obj]
        elif not isinstance(obj, dict):
            yield where, [RowProblem(where, "", "expected a JSON object")]
        else:
            yield where, record(obj, where, source.schema)


def _rows(source: ImportSource, delimiter: str) -> Iterator[tuple[str, Any]]:
    with open_table(source, delimiter) as table:
        if table.problems:
            yield table.problems[0].location, table.problems
            return
        header = table.names
        if not header:
            return
        if "text" not in header:
            yield "line 1", [RowProblem("line 1", "text", "the header has no 'text' column")]
            return
        for where, row in table.rows():
            if isinstance(row, RowProblem):
                yield where, [row]
            else:
                yield where, dict(zip(header, row, strict=True))


def _read_table(source: ImportSource, delimiter: str) -> Iterator[ReadResult]:
    schema = source.schema
    first = True
    for where, row in _rows(source, delimiter):
        if isinstance(row, list):
            yield where, row
            continue
        if first and (problems := gold_header_problems(list(row), schema)):
            yield "line 1", problems
            return
        first = False
        gold_cells = {k: row.pop(k) for k in [k for k in row if is_gold_column(k)]}
        if gold_cells:
            row.update(gold_from_cells(gold_cells, schema))
        key = next((k for k in LABEL_KEYS if k in row), None)
        if key is not None and row[key].startswith("[["):
            try:
                row[key] = orjson.loads(row[key])  # spans, as the CSV export writes them
            except orjson.JSONDecodeError:
                yield (
                    where,
                    [RowProblem(where, key, "spans are a JSON list of [start, end, label]")],
                )
                continue
        elif key is not None and row[key] != "":
            f = _field(schema, key, False)
            row[key] = (
                row[key].split("|")
                if f is not None and f.type_name == "multichoice"
                else [row[key]]
            )
        yield where, record(row, where, schema)


@register_reader("doccano-csv")
def read_doccano_csv(source: ImportSource) -> Iterator[ReadResult]:
    return _read_table(source, ",")


@register_reader("doccano-tsv")
def read_doccano_tsv(source: ImportSource) -> Iterator[ReadResult]:
    return _read_table(source, "\t")


def _guess(source: ImportSource, rows: Iterable[Any]) -> dict[str, Any]:
    key, labels, multi, spans = "label", {}, False, False
    problems: list[RowProblem] = []
    for where, row in rows:
        if isinstance(row, RowProblem | list):
            problems.extend(row if isinstance(row, list) else [row])
            continue
        if not isinstance(row, dict):
            problems.append(RowProblem(where, "", "a row is a JSON object"))
            continue
        k = next((k for k in LABEL_KEYS if k in row), None)
        if k is None:
            continue
        key, v = k, row[k]
        if _is_spans(v):
            spans = True
            labels.update(dict.fromkeys(s["label"] for s in _spans(v, "")))
        elif isinstance(v, list):
            multi = multi or len(v) != 1
            labels.update(dict.fromkeys(v))
        elif v != "":
            labels[v] = None
    if problems:
        raise_unreadable(problems, source.filename)
    if spans:
        field = {"name": key, "type": "spans", "labels": list(labels) or ["entity"]}
    else:
        field = {
            "name": key,
            "type": "multichoice" if multi else "choice",
            "options": list(labels) or ["positive"],
        }
    return {"fields": [{**field, "required": False}], "data": {}}


@register_guesser("doccano")
def guess_doccano(source: ImportSource) -> dict[str, Any]:
    return _guess(source, json_lines(source))


@register_guesser("doccano-csv")
def guess_doccano_csv(source: ImportSource) -> dict[str, Any]:
    return _guess(source, _rows(source, ","))


@register_guesser("doccano-tsv")
def guess_doccano_tsv(source: ImportSource) -> dict[str, Any]:
    return _guess(source, _rows(source, "\t"))


# -- export -------------------------------------------------------------------------------


def _label_field(schema: Schema) -> FieldType | None:
    return next((f for f in schema.fields if f.type_name in (*CLASS_TYPES, "spans")), None)


def _export_value(f: FieldType, value: Any) -> Any:
    if f.type_name == "spans":
        return [[s["start"], s["end"], s["label"]] for s in value]
    return value


@register_writer("doccano", "application/x-ndjson", extension="jsonl", context=True)
def write_doccano(
    records: Iterable[ExportRecord], schema: Schema, ctx: ExportContext
) -> Iterator[bytes]:
    f = _label_field(schema)
    buf: list[bytes] = []
    for rec in records:
        obj: dict[str, Any] = {}
        if rec.external_id is not None:
            obj["id"] = int(rec.external_id) if rec.external_id.isdigit() else rec.external_id
        obj["text"] = rec.data.get("text", "")
        value = (rec.label or {}).get("value") or {}
        if f is not None:
            v = value.get(f.name)
            obj[f.name] = (
                [] if v is None else _export_value(f, v if f.type_name != "choice" else [v])
            )
        obj.update({k: v for k, v in rec.data.items() if k != "text"})
        buf.append(orjson.dumps(obj, option=orjson.OPT_APPEND_NEWLINE))
        if len(buf) >= 500:
            yield b"".join(buf)
            buf.clear()
    yield b"".join(buf)


def _write_table(
    records: Iterable[ExportRecord], schema: Schema, delimiter: str
) -> Iterator[bytes]:
    f = _label_field(schema)
    name = f.name if f is not None else "label"
    out = io.StringIO()
    w = csv.writer(out, delimiter=delimiter, lineterminator="\n")
    keys: list[str] | None = None
    for rec in records:
        if keys is None:
            keys = [k for k in rec.data if k != "text"]
            w.writerow(["text", name, *keys])
        value = ((rec.label or {}).get("value") or {}).get(name)
        if value is None:
            cell = ""
        elif f is not None and f.type_name == "spans":
            cell = orjson.dumps(_export_value(f, value)).decode()
        else:
            cell = value if isinstance(value, str) else "|".join(value)
        extra = [rec.data.get(k) for k in keys]
        w.writerow(
            [
                rec.data.get("text", ""),
                cell,
                *(v if isinstance(v, str) else orjson.dumps(v).decode() for v in extra),
            ]
        )
        if out.tell() > 1 << 16:
            yield out.getvalue().encode()
            out.seek(0)
            out.truncate()
    if keys is None:
        w.writerow(["text", name])
    yield out.getvalue().encode()


@register_writer("doccano-csv", "text/csv; charset=utf-8", extension="csv", context=True)
def write_doccano_csv(
    records: Iterable[ExportRecord], schema: Schema, ctx: ExportContext
) -> Iterator[bytes]:
    return _write_table(records, schema, ",")


@register_writer(
    "doccano-tsv", "text/tab-separated-values; charset=utf-8", extension="tsv", context=True
)
def write_doccano_tsv(
    records: Iterable[ExportRecord], schema: Schema, ctx: ExportContext
) -> Iterator[bytes]:
    return _write_table(records, schema, "\t")
