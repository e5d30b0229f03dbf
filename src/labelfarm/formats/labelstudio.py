"""Label Studio JSON: tasks in (with or without the ``data`` wrapper, with annotations and
predictions), tasks out, so a team can move from Label Studio and back.

A result's ``from_name`` names the schema field it fills; its ``type`` says how:

=================================  =============================================
Label Studio                       labelfarm field
=================================  =============================================
``choices``                        ``choice`` (one) or ``multichoice``
``textarea``                       ``text`` (entries as lines; one entry if multiline)
``labels`` (text ranges)           ``spans``
``labels``/``textarea`` (audio)    ``segments`` (:mod:`~labelfarm.formats.labelstudio_audio`)
``paragraphlabels`` (dialogue)     ``spans`` (:mod:`~labelfarm.formats.labelstudio_dialogue`)
``rectanglelabels``/``rectangle``  ``rectangle``, or ``bbox`` (upright boxes only)
``polygonlabels``/``polygon``      ``polygon`` (pixels)
``keypointlabels``/``keypoint``    ``keypoints`` (pixels)
``rating``/``number``              ``number``
``relation``                       kept in the ``meta`` of its source region
=================================  =============================================

Image coordinates are turned from Label Studio's percentages into pixels with the
result's ``original_width``/``original_height`` (the item's image size, stored with it); a
rotation about the top-left corner becomes one about the centre. Nothing else is lost:
what a region holds beyond its geometry (its id, ``to_name``, ``origin``, ``parentID``,
relations, the value as written) stays in the shape's ``meta``; what a task, an annotation,
a prediction or a one-value result holds beyond what labelfarm reads stays in their
``source_meta`` (the ids, the order of results), and the export
(:mod:`labelfarm.formats.labelstudio_writer`) writes it all back. Who did what
(``completed_by``, reviews, …) is kept apart and exported only when the export maps
annotators; the import report says so (:meth:`ImportSource.note`), as it counts
predictions listed by id (the file of Label Studio's Export button) and cancelled
annotations, which are not imported. Annotations become annotations of the user standing
for ``completed_by``. The conversion of results lives in
:mod:`labelfarm.formats.labelstudio_results`.

The file, a list of tasks or a single task, is read one task at a time
(:func:`labelfarm.formats.jsonstream.walk_array`), so memory stays flat however many tasks
it holds. A problem is located by the line its task starts on, the task's number and its
id (``tasks.json line 812 (task 41, id 7) annotations[0]``, field ``result[2].from_name``);
a file that is not JSON, or ends early, by the line where reading stopped.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from labelfarm.formats.jsonstream import JsonStreamError, walk_array
from labelfarm.formats.labelstudio_audio import finish_guess, guess_regions
from labelfarm.formats.labelstudio_results import LABEL_KEY, Converted, ResultConverter
from labelfarm.formats.objects import register_guesser
from labelfarm.formats.registry import (
    ImportSource,
    ItemRecord,
    ReadResult,
    RowProblem,
    register_reader,
)
from labelfarm.jsonutil import parse_time

# read into labelfarm's own columns; any other key is kept in ``source_meta``
TASK_READ = frozenset({"data", "annotations", "predictions"})
ANNOTATION_READ = frozenset({"result", "completed_by"})
PREDICTION_READ = frozenset({"result", "model_version", "score"})
# keys naming people: not kept (clients see pseudonyms only)
IDENTITY_KEYS = frozenset(
    {
        "completed_by",
        "created_by",
        "updated_by",
        "last_created_by",
        "comment_authors",
        "annotators",
        "reviews",
        "created_username",
    }
)

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
            yield where, _task(task, where, conv, source)
    except (JsonStreamError, _NotTasks, OSError) as exc:  # the file itself: reading stops
        problem = _file_problem(source, exc)
        yield problem.location, [problem]


def _task(
    task: dict[str, Any], where: str, conv: ResultConverter, source: ImportSource
) -> ItemRecord | list[RowProblem]:
    data = task["data"] if "data" in task else {k: v for k, v in task.items() if k not in TASK_KEYS}
    if not isinstance(data, dict) or not data:
        return [RowProblem(where, "data", "a task needs data (an object)")]
    problems = [RowProblem(where, f"data.{k}", r) for k, r in source.schema.validate_data(data)]
    if "data" in task:
        kept = _kept(task, TASK_READ, source, "tasks[]")
    else:  # the task is its data, beside the keys Label Studio gives a task
        listed = {k: v for k, v in task.items() if k in TASK_KEYS}
        kept = {**_kept(listed, TASK_READ, source, "tasks[]"), "flat": True}
    rec = ItemRecord(data=data, source_meta=kept if any(kept.values()) else None)
    if task.get("id") is not None:
        rec.external_id = str(task["id"])
    sizes: list[tuple[str, Converted]] = []
    for j, ann in enumerate(_listed(task, "annotations", where, problems)):
        at = f"{where} annotations[{j}]"
        if not isinstance(ann, dict):
            problems.append(RowProblem(at, "", "an annotation is an object"))
            continue
        if ann.get("was_cancelled"):
            source.note("tasks[].annotations[]: one with was_cancelled (a skip) is not kept")
            continue
        got = conv.value(ann.get("result", []), at, data)
        if isinstance(got, list):
            problems.extend(got)
            continue
        sizes.append((at, got))
        rec.annotations.append(_annotation(ann, j, got, at, problems, source))
    for j, pred in enumerate(_listed(task, "predictions", where, problems)):
        at = f"{where} predictions[{j}]"
        if isinstance(pred, int | str) and not isinstance(pred, bool):
            # Label Studio's Export button lists a task's predictions by id: nothing to keep
            source.note("predictions given by id, not as objects (Label Studio's export)")
            continue
        if not isinstance(pred, dict):
            problems.append(RowProblem(at, "", "a prediction is an object or a prediction id"))
            continue
        got = conv.value(pred.get("result", []), at, data)
        if isinstance(got, list):
            problems.extend(got)
            continue
        score = pred.get("score")
        if score is not None and (isinstance(score, bool) or not isinstance(score, int | float)):
            problems.append(RowProblem(at, "score", "must be a number"))
            continue
        sizes.append((at, got))
        model = str(pred.get("model_version") or "labelstudio")
        kept = {
            **got.source_meta(),
            **_kept(pred, PREDICTION_READ, source, "tasks[].predictions[]"),
        }
        rec.predictions.append(
            {"value": got.value, "model": model, "score": score, "source_meta": kept}
        )
    rec.image_size = _image_size(sizes, problems)
    return problems or rec


def _listed(task: dict[str, Any], key: str, where: str, problems: list[RowProblem]) -> list[Any]:
    found = task.get(key)
    if found is None:
        return []
    if not isinstance(found, list):
        problems.append(RowProblem(where, key, "must be a list"))
        return []
    return found


def _kept(obj: dict[str, Any], read: frozenset[str], source: ImportSource, at: str) -> dict:
    """The keys of a task, annotation or prediction the import does not read, to be written
    back as they were: ``keys``, and apart, ``people`` (who did what: user ids, emails),
    which an export writes only when it maps annotators (a migration)."""
    keys, people = {}, {}
    for k, v in obj.items():
        if k in IDENTITY_KEYS:
            people[k] = v
            source.note(f"{at}.{k}: exported only with a completed_by mapping (pseudonyms else)")
        elif k not in read:
            keys[k] = v
    return {"keys": keys, **({"people": people} if people else {})}


def _annotation(
    ann: dict[str, Any],
    j: int,
    got: Converted,
    at: str,
    problems: list[RowProblem],
    source: ImportSource,
) -> dict[str, Any]:
    entry: dict[str, Any] = {"annotator": _annotator(ann, j), "value": got.value}
    entry["source_meta"] = {
        **got.source_meta(),
        **_kept(ann, ANNOTATION_READ, source, "tasks[].annotations[]"),
    }
    try:
        if ann.get("created_at"):
            entry["created_at"] = parse_time(ann["created_at"])
    except (ValueError, TypeError):
        problems.append(RowProblem(at, "created_at", "not an ISO-8601 time"))
    lead = ann.get("lead_time")
    if isinstance(lead, int | float) and not isinstance(lead, bool) and lead >= 0:
        entry["duration_ms"] = round(lead * 1000)
    return entry


def _image_size(
    found: list[tuple[str, Converted]], problems: list[RowProblem]
) -> tuple[int | float, int | float] | None:
    """The task's image size, as its results give it: all of them the same."""
    size = None
    for at, got in found:
        if got.image_size is None:
            continue
        if size is not None and got.image_size != size:
            problems.append(
                RowProblem(
                    at,
                    "original_width",
                    f"image size {got.image_size[0]}×{got.image_size[1]} differs from "
                    f"{size[0]}×{size[1]} given by another annotation of this task",
                )
            )
        size = size or got.image_size
    return size


@register_guesser("labelstudio")
def guess_labelstudio(source: ImportSource) -> dict[str, Any]:
    """One field per ``from_name``, typed by its results, listing every label used."""
    fields: dict[str, dict[str, Any]] = {}
    try:
        for number, line, task in _tasks(source):
            if isinstance(task, dict):
                _guess_task(task, fields, f"{source.filename} line {line} (task {number})")
    except (JsonStreamError, _NotTasks, OSError) as exc:
        problem = _file_problem(source, exc)
        raise ValueError(f"{problem.location}: {problem.reason}") from None
    out, to_name, kept = [], {}, {}  # type: list[dict[str, Any]], dict[str, str], dict[str, Any]
    for spec in fields.values():
        if spec.get("_to_name") is not None:
            to_name[spec["name"]] = str(spec["_to_name"])
        spec.pop("_to_name", None)
        if spec.pop("_dialogue", False):
            kept.setdefault("controls", {})[spec["name"]] = "ParagraphLabels"
        if spec["type"] == "segments":  # audio regions (labelstudio_audio)
            kept.setdefault("objects", []).append(finish_guess(spec))
            out.append(spec)
            continue
        labels = list(spec.pop("_labels"))
        if spec["type"] in ("choice", "multichoice"):
            spec["options"] = labels or ["yes"]
        elif spec["type"] not in ("text", "number"):
            spec["labels"] = labels or ["object"]
        out.append(spec)
    if not out:
        return {"fields": [{"name": "label", "type": "text", "required": False}]}
    if to_name:
        kept["to_name"] = to_name
    return {"fields": out, **({"labelstudio": kept} if kept else {})}


_GUESS_TYPES = {
    "choices": "choice",
    "textarea": "text",
    "labels": "spans",
    "rating": "number",
    "number": "number",
    "rectangle": "rectangle",
    "polygon": "polygon",
    "keypoint": "keypoints",
    "paragraph": "spans",
}


def _guess_task(task: dict[str, Any], fields: dict[str, dict[str, Any]], where: str) -> None:
    """Add the fields and labels the results of ``task`` use to ``fields``; a result of a
    type no field type holds is a ValueError saying where."""
    regions = guess_regions(task, fields)  # audio regions make segments fields
    for group in (task.get("annotations") or []) + (task.get("predictions") or []):
        for r in (group or {}).get("result") or [] if isinstance(group, dict) else []:
            if not isinstance(r, dict) or r.get("type") == "relation" or id(r) in regions:
                continue
            t = _GUESS_TYPES.get(_base(r))
            if t is None:
                raise ValueError(
                    f"{where}: a result of type {r.get('type')!r} (from_name "
                    f"{r.get('from_name')!r}) has no labelfarm field type; types read: "
                    f"{sorted(_GUESS_TYPES)}"
                )
            if "from_name" not in r:
                continue
            spec = fields.setdefault(
                r["from_name"],
                {"name": r["from_name"], "type": t, "required": False, "_labels": {}},
            )
            spec.setdefault("_to_name", r.get("to_name"))
            if r.get("type") == "paragraphlabels":
                spec["_dialogue"] = True
            v = r.get("value") or {}
            texts = v.get("text") if t == "text" else None
            if isinstance(texts, list) and len(texts) == 1 and "\n" in str(texts[0]):
                spec["multiline"] = True  # one entry of several lines, not several entries
            labels = v.get("choices") or v.get(LABEL_KEY.get(r["type"], "labels")) or []
            if t == "choice" and len(labels) > 1:
                spec["type"] = "multichoice"
            spec["_labels"].update(dict.fromkeys(labels))
