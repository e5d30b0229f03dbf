"""Label Studio JSON: tasks in (with or without the ``data`` wrapper, with annotations and
predictions), tasks out, so a team can move from Label Studio and back.

A result's ``from_name`` names the schema field it fills; its ``type`` says how:

=================================  =============================================
Label Studio                       labelfarm field
=================================  =============================================
``choices``                        ``choice`` (one) or ``multichoice``
``textarea``                       ``text`` (several lines joined by newlines)
``labels`` (text ranges)           ``spans``
``rectanglelabels``/``rectangle``  ``rectangle`` or ``bbox`` (pixels)
``polygonlabels``/``polygon``      ``polygon`` (pixels)
``keypointlabels``/``keypoint``    ``keypoints`` (pixels)
``rating``/``number``              ``number``
``relation``                       kept in the ``meta`` of its source region
=================================  =============================================

Image coordinates are turned from Label Studio's percentages into pixels with the
result's ``original_width``/``original_height`` (kept in the shape's ``meta`` with the
region id, ``origin``, ``parentID`` and relations, so an export writes them back); a
rotation about the top-left corner becomes one about the centre. Annotations become
annotations of the user standing for ``completed_by``; cancelled ones are left out.
Predictions go to the predictions table with their ``model_version`` and ``score``.
The conversion of results lives in :mod:`labelfarm.formats.labelstudio_results`.

The file, a list of tasks or a single task, is read one task at a time
(:func:`labelfarm.formats.jsonstream.walk_array`), so memory stays flat however many tasks
it holds. A problem is located by the line its task starts on, the task's number and its
id (``tasks.json line 812 (task 41, id 7) annotations[0]``, field ``result[2].from_name``);
a file that is not JSON, or ends early, by the line where reading stopped.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

import orjson

from labelfarm.formats.jsonstream import JsonStreamError, walk_array
from labelfarm.formats.labelstudio_results import LABEL_KEY, ResultConverter
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
from labelfarm.jsonutil import parse_time
from labelfarm.schema import Schema

TASK_KEYS = frozenset(
    {
        "id",
        "data",
        "annotations",
        "predictions",
        "meta",
        "created_at",
        "updated_at",
        "inner_id",
        "total_annotations",
        "cancelled_annotations",
        "total_predictions",
        "comment_count",
        "unresolved_comment_count",
        "last_comment_updated_at",
        "project",
        "updated_by",
        "comment_authors",
        "file_upload",
        "drafts",
        "agreement",
        "is_labeled",
        "overlap",
        "annotators",
        "completed_at",
    }
)


class _NotTasks(ValueError):
    """The file holds one JSON value that is neither a list of tasks nor a task."""


def _tasks(source: ImportSource) -> Iterator[tuple[int, int, Any]]:
    """``(number, line, task)`` for each task of the file, read one at a time: a list of
    tasks, or a single task object. Raises JsonStreamError, _NotTasks or OSError."""
    with open(source.path, "rb") as fh:
        tasks = walk_array(
            fh,
            strict=True,
            max_element=source.limits.item_bytes,
            check_cancel=source.check_cancel,
        )
        for index, task, line in tasks:
            source.bytes_read = fh.tell()
            if index is None and not isinstance(task, dict):
                raise _NotTasks("a Label Studio file is a list of tasks")
            yield (index or 0) + 1, line, task


def _file_problem(source: ImportSource, exc: Exception) -> RowProblem:
    if isinstance(exc, JsonStreamError):
        return RowProblem(f"{source.filename} line {exc.line}", "", f"not valid JSON: {exc.reason}")
    if isinstance(exc, OSError):
        return RowProblem(source.filename, "", f"cannot read: {exc}")
    return RowProblem(source.filename, "", str(exc))


def _base(result: dict[str, Any]) -> str:
    t = str(result.get("type", ""))
    return t[:-6] if t.endswith("labels") and t != "labels" else t


def _annotator(ann: dict[str, Any], index: int) -> str:
    who = ann.get("completed_by")
    if isinstance(who, dict):
        who = who.get("email") or who.get("username") or who.get("id")
    if who is None:
        who = ann.get("labelfarm_annotator")
    if who is None:
        return "labelstudio" if index == 0 else f"labelstudio-{index + 1}"
    return f"user-{who}" if isinstance(who, int) else str(who)


@register_reader("labelstudio")
def read_labelstudio(source: ImportSource) -> Iterator[ReadResult]:
    conv = ResultConverter(source.schema)
    try:
        for n, line, task in _tasks(source):
            has_id = isinstance(task, dict) and "id" in task
            where = f"{source.filename} line {line} (task {n}" + (
                f", id {task.get('id')!r})" if has_id else ")"
            )
            if not isinstance(task, dict):
                yield where, [RowProblem(where, "", "a task is an object")]
                continue
            yield where, _task(task, where, conv, source.schema)
    except (JsonStreamError, _NotTasks, OSError) as exc:  # the file itself: reading stops
        problem = _file_problem(source, exc)
        yield problem.location, [problem]


def _task(
    task: dict[str, Any], where: str, conv: ResultConverter, schema: Schema
) -> ItemRecord | list[RowProblem]:
    problems: list[RowProblem] = []
    data = task["data"] if "data" in task else {k: v for k, v in task.items() if k not in TASK_KEYS}
    if not isinstance(data, dict) or not data:
        return [RowProblem(where, "data", "a task needs data (an object)")]
    problems += [RowProblem(where, f"data.{k}", r) for k, r in schema.validate_data(data)]
    rec = ItemRecord(data=data)
    if task.get("id") is not None:
        rec.external_id = str(task["id"])
    for j, ann in enumerate(task.get("annotations") or []):
        at = f"{where} annotations[{j}]"
        if not isinstance(ann, dict):
            problems.append(RowProblem(at, "", "an annotation is an object"))
            continue
        if ann.get("was_cancelled"):
            continue
        value = conv.value(ann.get("result", []), at)
        if isinstance(value, list):
            problems.extend(value)
            continue
        entry: dict[str, Any] = {"annotator": _annotator(ann, j), "value": value}
        try:
            if ann.get("created_at"):
                entry["created_at"] = parse_time(ann["created_at"])
        except (ValueError, TypeError):
            problems.append(RowProblem(at, "created_at", "not an ISO-8601 time"))
        lead = ann.get("lead_time")
        if isinstance(lead, int | float) and not isinstance(lead, bool) and lead >= 0:
            entry["duration_ms"] = round(lead * 1000)
        rec.annotations.append(entry)
    for j, pred in enumerate(task.get("predictions") or []):
        at = f"{where} predictions[{j}]"
        if not isinstance(pred, dict):
            problems.append(RowProblem(at, "", "a prediction is an object"))
            continue
        value = conv.value(pred.get("result", []), at)
        if isinstance(value, list):
            problems.extend(value)
            continue
        score = pred.get("score")
        if score is not None and (isinstance(score, bool) or not isinstance(score, int | float)):
            problems.append(RowProblem(at, "score", "must be a number"))
            continue
        rec.predictions.append(
            {
                "value": value,
                "model": str(pred.get("model_version") or "labelstudio"),
                "score": score,
            }
        )
    return problems or rec


@register_guesser("labelstudio")
def guess_labelstudio(source: ImportSource) -> dict[str, Any]:
    """One field per ``from_name``, typed by its results, listing every label used."""
    fields: dict[str, dict[str, Any]] = {}
    try:
        for _, _, task in _tasks(source):
            if isinstance(task, dict):
                _guess_task(task, fields)
    except (JsonStreamError, _NotTasks, OSError) as exc:
        problem = _file_problem(source, exc)
        raise ValueError(f"{problem.location}: {problem.reason}") from None
    out = []
    for spec in fields.values():
        labels = list(spec.pop("_labels"))
        if spec["type"] in ("choice", "multichoice"):
            spec["options"] = labels or ["yes"]
        elif spec["type"] not in ("text", "number"):
            spec["labels"] = labels or ["object"]
        out.append(spec)
    return {"fields": out or [{"name": "label", "type": "text", "required": False}]}


_GUESS_TYPES = {
    "choices": "choice",
    "textarea": "text",
    "labels": "spans",
    "rating": "number",
    "number": "number",
    "rectangle": "rectangle",
    "polygon": "polygon",
    "keypoint": "keypoints",
}


def _guess_task(task: dict[str, Any], fields: dict[str, dict[str, Any]]) -> None:
    """Add the fields and labels the results of ``task`` use to ``fields``."""
    for group in (task.get("annotations") or []) + (task.get("predictions") or []):
        for r in (group or {}).get("result") or [] if isinstance(group, dict) else []:
            if not isinstance(r, dict) or r.get("type") == "relation":
                continue
            t = _GUESS_TYPES.get(_base(r))
            if t is None or "from_name" not in r:
                continue
            spec = fields.setdefault(
                r["from_name"],
                {"name": r["from_name"], "type": t, "required": False, "_labels": {}},
            )
            v = r.get("value") or {}
            labels = v.get("choices") or v.get(LABEL_KEY.get(r["type"], "labels")) or []
            if t == "choice" and len(labels) > 1:
                spec["type"] = "multichoice"
            spec["_labels"].update(dict.fromkeys(labels))


@register_writer("labelstudio", "application/json", extension="json", context=True)
def write_labelstudio(
    records: Iterable[ExportRecord], schema: Schema, ctx: ExportContext
) -> Iterator[bytes]:
    """A JSON list of tasks Label Studio imports: data, annotations (one per annotation
    stored, annotators by pseudonym) and predictions."""
    conv = ResultConverter(schema)
    yield b"["
    buf: list[bytes] = []
    for n, rec in enumerate(records):
        task: dict[str, Any] = {
            "id": int(rec.external_id)
            if rec.external_id and rec.external_id.isdigit()
            else rec.item_id,
            "data": rec.data,
        }
        task["annotations"] = [
            {
                "id": a["id"],
                "labelfarm_annotator": a["annotator"],
                "result": conv.results(a["value"], rec.data),
                "was_cancelled": False,
                "created_at": a.get("created_at"),
                **(
                    {"lead_time": a["duration_ms"] / 1000}
                    if a.get("duration_ms") is not None
                    else {}
                ),
            }
            for a in rec.annotations
        ]
        task["predictions"] = [
            {
                "model_version": p["model"],
                "score": p["score"],
                "result": conv.results(p["value"], rec.data),
            }
            for p in rec.predictions
        ]
        buf.append((b"," if n else b"") + b"\n" + orjson.dumps(task))
        if len(buf) >= 500:
            yield b"".join(buf)
            buf.clear()
    yield b"".join(buf) + b"\n]\n"
