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
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator
from typing import Any

import orjson

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
from labelfarm.schema import FieldError, FieldType, Schema
from labelfarm.services.jsonutil import parse_time

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
_LABEL_KEY = {
    "rectanglelabels": "rectanglelabels",
    "polygonlabels": "polygonlabels",
    "keypointlabels": "keypointlabels",
    "labels": "labels",
}
_GEOM_TYPES = {
    "rectangle": ("rectangle", "bbox"),
    "polygon": ("polygon",),
    "keypoint": ("keypoints",),
}
_RESULT_META = (
    "id",
    "origin",
    "parentID",
    "to_name",
    "image_rotation",
    "original_width",
    "original_height",
    "readonly",
    "hidden",
)


def _tasks(source: ImportSource) -> list[Any] | RowProblem:
    try:
        doc = orjson.loads(source.path.read_bytes())
    except orjson.JSONDecodeError as exc:
        return RowProblem(source.filename, "", f"not valid JSON: {exc}")
    source.bytes_read = source.path.stat().st_size
    if isinstance(doc, dict):
        return [doc]
    if not isinstance(doc, list):
        return RowProblem(source.filename, "", "a Label Studio file is a list of tasks")
    return doc


def _base(result: dict[str, Any]) -> str:
    t = str(result.get("type", ""))
    return t[:-6] if t.endswith("labels") and t != "labels" else t


def _rotate(x: float, y: float, w: float, h: float, deg: float, sign: int) -> tuple[float, float]:
    """Move the top-left corner between Label Studio's pivot (the corner) and the centre."""
    if not deg:
        return x, y
    t = math.radians(deg)
    dx = (w / 2) * math.cos(t) - (h / 2) * math.sin(t) - w / 2
    dy = (w / 2) * math.sin(t) + (h / 2) * math.cos(t) - h / 2
    return x + sign * dx, y + sign * dy


class _Converter:
    """Label Studio results ↔ one annotation value of a schema."""

    def __init__(self, schema: Schema) -> None:
        self.schema = schema

    def value(self, results: Any, where: str) -> dict[str, Any] | list[RowProblem]:
        problems: list[RowProblem] = []
        if not isinstance(results, list):
            return [RowProblem(where, "result", "must be a list")]
        value: dict[str, Any] = {}
        regions: dict[str, dict[str, Any]] = {}
        relations: list[dict[str, Any]] = []
        for i, r in enumerate(results):
            at = f"result[{i}]"
            if not isinstance(r, dict):
                problems.append(RowProblem(where, at, "a result is an object"))
                continue
            if r.get("type") == "relation":
                relations.append(r)
                continue
            f = self.schema.by_name.get(str(r.get("from_name")))
            if f is None:
                problems.append(
                    RowProblem(
                        where,
                        f"{at}.from_name",
                        f"no field named "
                        f"{r.get('from_name')!r} in the schema; fields are "
                        f"{list(self.schema.by_name)}",
                    )
                )
                continue
            try:
                self._put(f, r, value, regions)
            except (KeyError, TypeError, ValueError, IndexError) as exc:
                problems.append(
                    RowProblem(
                        where,
                        at,
                        f"cannot read a {r.get('type')!r} result "
                        f"for a {f.type_name} field: {exc!r}",
                    )
                )
        for rel in relations:
            src = regions.get(str(rel.get("from_id")))
            if src is None or str(rel.get("to_id")) not in regions:
                problems.append(
                    RowProblem(
                        where,
                        "relation",
                        f"relation {rel.get('from_id')!r}"
                        f" → {rel.get('to_id')!r} names a missing region",
                    )
                )
                continue
            extra = {k: v for k, v in rel.items() if k not in ("type", "from_id")}
            src.setdefault("meta", {}).setdefault("relations", []).append(extra)
        if problems:
            return problems
        try:
            return self.schema.validate(value)
        except FieldError as exc:
            return [RowProblem(where, f"value.{exc.path}", exc.reason)]

    def _put(
        self,
        f: FieldType,
        r: dict[str, Any],
        value: dict[str, Any],
        regions: dict[str, dict[str, Any]],
    ) -> None:
        v = r["value"]
        t = f.type_name
        if t == "choice":
            if len(v["choices"]) != 1:
                raise ValueError(f"{len(v['choices'])} choices for a single-choice field")
            value[f.name] = v["choices"][0]
        elif t == "multichoice":
            value[f.name] = list(v["choices"])
        elif t == "text":
            texts = v["text"]
            value[f.name] = "\n".join(texts) if isinstance(texts, list) else texts
        elif t == "number":
            value[f.name] = v.get("rating", v.get("number"))
        elif t in ("spans", "rectangle", "bbox", "polygon", "keypoints"):
            shape = self._shape(t, r)
            value.setdefault(f.name, []).append(shape)
            if r.get("id") is not None:
                regions[str(r["id"])] = shape
        else:
            raise ValueError(f"a {t} field cannot take Label Studio results")

    def _shape(self, t: str, r: dict[str, Any]) -> dict[str, Any]:
        v = r["value"]
        label_key = _LABEL_KEY.get(str(r.get("type")), "")
        labels = v.get(label_key) or v.get("labels") or []
        if len(labels) != 1:
            raise ValueError(f"{len(labels)} labels on one region; exactly one is supported")
        shape: dict[str, Any] = {"label": labels[0]}
        meta = {k: r[k] for k in _RESULT_META if k in r}
        if t == "spans":
            shape.update(start=v["start"], end=v["end"])
            if "text" in v:
                shape["text"] = v["text"]
        else:
            w_img, h_img = r.get("original_width"), r.get("original_height")
            if not w_img or not h_img:
                meta["percent"] = True  # no image size given: coordinates stay percentages
                w_img = h_img = 100
            sx, sy = w_img / 100, h_img / 100
            if t in ("rectangle", "bbox"):
                w, h = v["width"] * sx, v["height"] * sy
                rot = v.get("rotation") or 0
                x, y = _rotate(v["x"] * sx, v["y"] * sy, w, h, rot, +1)
                shape.update(x=x, y=y, w=w, h=h)
                if rot and t == "rectangle":
                    shape["rotation"] = rot
            elif t == "polygon":
                shape["points"] = [[p[0] * sx, p[1] * sy] for p in v["points"]]
                extra = {k: v[k] for k in ("closed",) if k in v}
                meta.update(extra)
            else:
                shape["points"] = [[v["x"] * sx, v["y"] * sy]]
                if "width" in v:
                    meta["point_width"] = v["width"]
        if "score" in r:
            shape["score"] = r["score"]
        if meta and t != "bbox":
            shape["meta"] = meta
        return shape

    # -- export ----------------------------------------------------------------------------
    def results(self, value: dict[str, Any], data: dict[str, Any]) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        relations: list[dict[str, Any]] = []
        n = 0
        for f in self.schema.fields:
            v = value.get(f.name)
            if v is None:
                continue
            base = {"from_name": f.name, "to_name": self._to_name(f, data)}
            t = f.type_name
            if t in ("choice", "multichoice"):
                out.append(
                    {
                        **base,
                        "type": "choices",
                        "value": {"choices": [v] if t == "choice" else list(v)},
                    }
                )
            elif t == "text":
                out.append({**base, "type": "textarea", "value": {"text": [v]}})
            elif t == "number":
                out.append({**base, "type": "number", "value": {"number": v}})
            elif t in ("spans", "rectangle", "bbox", "polygon", "keypoints"):
                for shape in v:
                    n += 1
                    r = self._region(t, shape, base, data, n)
                    for rel in (shape.get("meta") or {}).get("relations", []):
                        relations.append({"from_id": r["id"], **rel, "type": "relation"})
                    out.append(r)
        return out + relations

    def _to_name(self, f: FieldType, data: dict[str, Any]) -> str:
        want = "text" if f.type_name in ("spans", "choice", "multichoice", "text") else "image"
        for key, kind in self.schema.data.items():
            if kind == want:
                return key
        return want if want in data or not data else next(iter(data))

    def _region(
        self, t: str, shape: dict[str, Any], base: dict[str, Any], data: dict[str, Any], n: int
    ) -> dict[str, Any]:
        meta = dict(shape.get("meta") or {})
        meta.pop("relations", None)
        percent = meta.pop("percent", False)
        point_width = meta.pop("point_width", None)
        closed = meta.pop("closed", None)
        r: dict[str, Any] = {"id": meta.pop("id", f"lf{n}"), **base}
        r.update(meta)
        label = shape["label"]
        if t == "spans":
            v: dict[str, Any] = {"start": shape["start"], "end": shape["end"]}
            if "text" in shape:
                v["text"] = shape["text"]
            r.update(type="labels", value={**v, "labels": [label]})
            return self._score(r, shape)
        w_img = 100 if percent else r.get("original_width") or data.get("width")
        h_img = 100 if percent else r.get("original_height") or data.get("height")
        if not w_img or not h_img:
            w_img = h_img = 100
        elif not percent:
            r.setdefault("original_width", w_img)
            r.setdefault("original_height", h_img)
        sx, sy = 100 / w_img, 100 / h_img
        if t in ("rectangle", "bbox"):
            rot = shape.get("rotation", 0)
            x, y = _rotate(shape["x"], shape["y"], shape["w"], shape["h"], rot, -1)
            r.update(
                type="rectanglelabels",
                value={
                    "x": x * sx,
                    "y": y * sy,
                    "width": shape["w"] * sx,
                    "height": shape["h"] * sy,
                    "rotation": rot,
                    "rectanglelabels": [label],
                },
            )
        elif t == "polygon":
            v = {"points": [[p[0] * sx, p[1] * sy] for p in shape["points"]]}
            if closed is not None:
                v["closed"] = closed
            r.update(type="polygonlabels", value={**v, "polygonlabels": [label]})
        else:
            x, y = shape["points"][0]
            v = {"x": x * sx, "y": y * sy}
            if point_width is not None:
                v["width"] = point_width
            r.update(type="keypointlabels", value={**v, "keypointlabels": [label]})
        return self._score(r, shape)

    @staticmethod
    def _score(r: dict[str, Any], shape: dict[str, Any]) -> dict[str, Any]:
        if shape.get("score") is not None:
            r["score"] = shape["score"]
        return r


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
    tasks = _tasks(source)
    if isinstance(tasks, RowProblem):
        yield tasks.location, [tasks]
        return
    conv = _Converter(source.schema)
    for i, task in enumerate(tasks):
        where = f"task {i + 1}" + (
            f" (id {task.get('id')!r})" if isinstance(task, dict) and "id" in task else ""
        )
        if not isinstance(task, dict):
            yield where, [RowProblem(where, "", "a task is an object")]
            continue
        yield where, _task(task, where, conv, source.schema)


def _task(
    task: dict[str, Any], where: str, conv: _Converter, schema: Schema
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
    tasks = _tasks(source)
    fields: dict[str, dict[str, Any]] = {}
    if isinstance(tasks, RowProblem):
        raise ValueError(tasks.reason)
    types = {
        "choices": "choice",
        "textarea": "text",
        "labels": "spans",
        "rating": "number",
        "number": "number",
        "rectangle": "rectangle",
        "polygon": "polygon",
        "keypoint": "keypoints",
    }
    for task in tasks:
        if not isinstance(task, dict):
            continue
        for group in (task.get("annotations") or []) + (task.get("predictions") or []):
            for r in (group or {}).get("result") or [] if isinstance(group, dict) else []:
                if not isinstance(r, dict) or r.get("type") == "relation":
                    continue
                t = types.get(_base(r))
                if t is None or "from_name" not in r:
                    continue
                spec = fields.setdefault(
                    r["from_name"],
                    {"name": r["from_name"], "type": t, "required": False, "_labels": {}},
                )
                v = r.get("value") or {}
                labels = v.get("choices") or v.get(_LABEL_KEY.get(r["type"], "labels")) or []
                if t == "choice" and len(labels) > 1:
                    spec["type"] = "multichoice"
                spec["_labels"].update(dict.fromkeys(labels))
    out = []
    for spec in fields.values():
        labels = list(spec.pop("_labels"))
        if spec["type"] in ("choice", "multichoice"):
            spec["options"] = labels or ["yes"]
        elif spec["type"] not in ("text", "number"):
            spec["labels"] = labels or ["object"]
        out.append(spec)
    return {"fields": out or [{"name": "label", "type": "text", "required": False}]}


@register_writer("labelstudio", "application/json", extension="json", context=True)
def write_labelstudio(
    records: Iterable[ExportRecord], schema: Schema, ctx: ExportContext
) -> Iterator[bytes]:
    """A JSON list of tasks Label Studio imports: data, annotations (one per annotation
    stored, annotators by pseudonym) and predictions."""
    conv = _Converter(schema)
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
