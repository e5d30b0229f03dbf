"""Column files for data science: ``parquet`` (one file) and ``hf`` (a Hugging Face
datasets folder, zipped), with ``pyarrow`` / ``datasets`` as optional extras
(``pip install labelfarm[parquet]`` or ``[hf]``).

One row per item: ``item_id``, ``external_id``, the item's data keys (text as is, other
values as JSON text), one column per schema field with the current label (``choice`` and
``text`` as text, ``multichoice`` as a list of text, ``number`` as a float, other types as
JSON text), its confidence, and the number of annotations. Rows are written in row groups
of a few thousand to a scratch file, so memory stays flat; the file is then streamed.

The ``hf`` archive holds ``data/train-00000-of-00001.parquet``, the media under
``images/`` / ``media/``, a ``README.md`` whose front matter points ``datasets`` at the
parquet files, and ``manifest.json``; ``datasets.load_dataset(folder)`` reads it.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterable, Iterator
from pathlib import PurePosixPath
from typing import Any

import orjson

from labelfarm.errors import InvalidInput
from labelfarm.formats import archive
from labelfarm.formats.manifest import manifest, media_entries, safe_name
from labelfarm.formats.registry import ExportContext, ExportRecord, register_writer
from labelfarm.schema import Schema

ROW_GROUP = 5000


def _pyarrow() -> Any:
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError:
        raise InvalidInput(
            "Parquet exports need pyarrow: pip install 'labelfarm[parquet]'",
            [{"field": "format", "reason": "pyarrow is not installed"}],
        ) from None
    return pa, pq


def _text(v: Any) -> str | None:
    if v is None:
        return None
    return v if isinstance(v, str) else orjson.dumps(v).decode()


def _columns(schema: Schema, data_keys: list[str], pa: Any) -> Any:
    fields = [pa.field("item_id", pa.int64()), pa.field("external_id", pa.string())]
    fields += [pa.field(k, pa.string()) for k in data_keys]
    for f in schema.fields:
        if f.type_name == "multichoice":
            t = pa.list_(pa.string())
        elif f.type_name == "number":
            t = pa.float64()
        else:
            t = pa.string()
        fields.append(pa.field(f.name, t))
        fields.append(pa.field(f"{f.name}_confidence", pa.float64()))
    fields.append(pa.field("n_annotations", pa.int32()))
    return pa.schema(fields)


def _row(rec: ExportRecord, schema: Schema, data_keys: list[str]) -> dict[str, Any]:
    row: dict[str, Any] = {"item_id": rec.item_id, "external_id": rec.external_id}
    for k in data_keys:
        row[k] = _text(rec.data.get(k))
    value = (rec.label or {}).get("value") or {}
    conf = (rec.label or {}).get("confidence") or {}
    for f in schema.fields:
        v = value.get(f.name)
        if f.type_name == "multichoice":
            row[f.name] = v
        elif f.type_name == "number":
            row[f.name] = None if v is None else float(v)
        else:
            row[f.name] = _text(v)
        row[f"{f.name}_confidence"] = conf.get(f.name)
    row["n_annotations"] = len(rec.annotations)
    return row


def parquet_file(
    records: Iterable[ExportRecord], schema: Schema, out: Any, on_record: Any = None
) -> int:
    """Write the records as Parquet to the open binary file ``out``; returns the row count."""
    pa, pq = _pyarrow()
    writer = None
    data_keys: list[str] = list(schema.data)
    rows: list[dict[str, Any]] = []
    n = 0
    arrow_schema = None

    def flush() -> None:
        nonlocal writer
        if writer is None:
            writer = pq.ParquetWriter(out, arrow_schema)
        writer.write_table(pa.Table.from_pylist(rows, schema=arrow_schema))
        rows.clear()

    for rec in records:
        if arrow_schema is None:
            data_keys = data_keys or list(rec.data)
            arrow_schema = _columns(schema, data_keys, pa)
        rows.append(_row(rec, schema, data_keys))
        if on_record is not None:
            on_record(rec)
        n += 1
        if len(rows) >= ROW_GROUP:
            flush()
    if arrow_schema is None:
        arrow_schema = _columns(schema, data_keys, pa)
    if rows or writer is None:
        flush()
    assert writer is not None
    writer.close()
    return n


@register_writer("parquet", "application/vnd.apache.parquet", extension="parquet", context=True)
def write_parquet(
    records: Iterable[ExportRecord], schema: Schema, ctx: ExportContext
) -> Iterator[bytes]:
    _pyarrow()
    with tempfile.TemporaryFile() as tmp:
        parquet_file(records, schema, tmp)
        tmp.seek(0)
        while chunk := tmp.read(1 << 20):
            yield chunk


_CARD = """---
configs:
- config_name: default
  data_files:
  - split: train
    path: data/train-*.parquet
---
# {name}

Exported from labelfarm (schema version {version}). One row per item with its current
label; see `manifest.json` for counts and file hashes.
"""


@register_writer("hf", "application/zip", extension="zip", context=True)
def write_hf(
    records: Iterable[ExportRecord], schema: Schema, ctx: ExportContext
) -> Iterator[bytes]:
    _pyarrow()
    z = archive.ZipStream()
    counts: dict[str, int] = {}
    with tempfile.TemporaryFile() as tmp, tempfile.TemporaryFile() as media_list:

        def remember(rec: ExportRecord) -> None:
            if rec.media_sha256:
                name = next((v for v in rec.data.values() if isinstance(v, str)), "")
                folder = "images" if "image" in rec.data else "media"
                path = f"{folder}/{safe_name(name or str(rec.item_id))}"
                media_list.write(orjson.dumps([path, rec.media_sha256]) + b"\n")

        counts["rows"] = parquet_file(records, schema, tmp, remember)
        tmp.seek(0)
        yield from z.add(
            "data/train-00000-of-00001.parquet", archive.read_file_obj(tmp), compress=False
        )
        card = _CARD.format(name=ctx.project_name or "labelfarm export", version=ctx.schema_version)
        yield from z.add("README.md", [card.encode()])
        media_list.seek(0)
        files = (orjson.loads(line) for line in media_list)
        yield from media_entries(z, ((str(PurePosixPath(n)), sha) for n, sha in files), ctx, counts)
    yield from z.finish(manifest("hf", ctx, counts))
