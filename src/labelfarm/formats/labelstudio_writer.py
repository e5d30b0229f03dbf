"""Label Studio JSON out: a list of tasks Label Studio imports (its "Import" button, or
``POST /api/projects/{id}/import``), with annotations and predictions.

* Regions come out in Label Studio's percentages with ``original_width``/``original_height``
  (:mod:`labelfarm.formats.labelstudio_regions`), with the ids and ``to_name`` they came with.
* An annotation imported from Label Studio keeps its id there; annotators appear by
  pseudonym (``labelfarm_annotator``) unless the export maps them (option ``completed_by``,
  see :mod:`labelfarm.services.export_identities`): then Label Studio's ``completed_by``.
* An item whose media is stored in labelfarm (imported from a folder or an archive) names
  its file by a path Label Studio cannot open by itself. The option ``media_url`` (default
  :data:`LOCAL_FILES`) is put before that path: by default Label Studio's local-files
  serving (``LOCAL_FILES_SERVING_ENABLED=true`` and ``LOCAL_FILES_DOCUMENT_ROOT`` at the
  folder the files were imported from), or the address of a web server holding them.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any
from urllib.parse import quote

import orjson

from labelfarm.formats.labelstudio_regions import RegionWriter
from labelfarm.formats.registry import ExportContext, ExportRecord, register_writer
from labelfarm.schema import Schema

LOCAL_FILES = "/data/local-files/?d="
_MEDIA_KINDS = ("image", "audio")


def _is_address(v: str) -> bool:
    return "://" in v or v.startswith(("/", "data:"))


def media_keys(schema: Schema, data: dict[str, Any]) -> list[str]:
    """The data keys naming an item's media file."""
    keys = [k for k, kind in schema.data.items() if kind in _MEDIA_KINDS]
    return keys or [k for k in _MEDIA_KINDS if k in data]


def task_data(rec: ExportRecord, schema: Schema, media_url: str) -> dict[str, Any]:
    """The item's data, its stored media's path turned into an address Label Studio opens."""
    if rec.media_sha256 is None:
        return rec.data
    data = dict(rec.data)
    for key in media_keys(schema, data):
        v = data.get(key)
        if isinstance(v, str) and v and not _is_address(v):
            data[key] = media_url + quote(v, safe="/")
    return data


def _kept(source_meta: dict[str, Any] | None) -> dict[str, Any]:
    """The keys an import kept of a task, annotation or prediction, and those naming people
    when the export hands them over (it does only when it maps annotators)."""
    kept = source_meta or {}
    return {**(kept.get("keys") or {}), **(kept.get("people") or {})}


def _task(rec: ExportRecord, data: dict[str, Any]) -> dict[str, Any]:
    """The task's own keys: as imported (its id, meta, …), else its external id as id."""
    kept = rec.source_meta or {}
    task: dict[str, Any] = _kept(kept)
    if "id" not in task and rec.external_id and rec.external_id.isdigit():
        task["id"] = int(rec.external_id)
    if kept.get("flat"):
        return {**task, **data}
    return {**task, "data": data}


def _annotation(a: dict[str, Any], results: list[dict[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {
        "labelfarm_annotator": a["annotator"],
        "result": results,
        "was_cancelled": False,
        "created_at": a.get("created_at"),
    }
    if a.get("duration_ms") is not None:
        out["lead_time"] = a["duration_ms"] / 1000
    if "completed_by" in a:  # the export maps annotators (a migration)
        out["completed_by"] = a["completed_by"]
    return {**out, **_kept(a.get("source_meta"))}


def _prediction(p: dict[str, Any], results: list[dict[str, Any]]) -> dict[str, Any]:
    out = {"model_version": p["model"], "score": p["score"], "result": results}
    return {**out, **_kept(p.get("source_meta"))}


@register_writer("labelstudio", "application/json", extension="json", context=True)
def write_labelstudio(
    records: Iterable[ExportRecord], schema: Schema, ctx: ExportContext
) -> Iterator[bytes]:
    """A JSON list of tasks Label Studio imports: data, annotations (one per annotation
    stored) and predictions."""
    regions = RegionWriter(schema)
    media_url = str(ctx.options.get("media_url") or LOCAL_FILES)
    yield b"["
    buf: list[bytes] = []
    for n, rec in enumerate(records):
        where = f"item {rec.item_id}" + (f" ({rec.external_id})" if rec.external_id else "")

        def results(entry: dict[str, Any], rec: ExportRecord = rec, where: str = where) -> Any:
            return regions.results(
                entry["value"], rec.data, rec.image_size, where, entry.get("source_meta")
            )

        task = _task(rec, task_data(rec, schema, media_url))
        anns = [_annotation(a, results(a)) for a in rec.annotations]
        preds = [_prediction(p, results(p)) for p in rec.predictions]
        flat = (rec.source_meta or {}).get("flat")
        if anns or not flat:
            task["annotations"] = anns
        if preds or not flat:
            task["predictions"] = preds
        buf.append((b"," if n else b"") + b"\n" + orjson.dumps(task))
        if len(buf) >= 500:
            yield b"".join(buf)
            buf.clear()
    yield b"".join(buf) + b"\n]\n"
