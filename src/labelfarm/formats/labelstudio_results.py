"""Label Studio results → one annotation value of a project's schema (see
:mod:`labelfarm.formats.labelstudio` for the mapping, field type by field type; the way back
is :mod:`labelfarm.formats.labelstudio_regions`).

Every result is kept or refused with a located reason: a result type a field cannot hold
(``paragraphlabels`` in a choice field, ``choices`` in a box field), a value without the keys its
type needs, a ``to_name`` other than the schema's, a rotated box in a ``bbox`` field (a
``rectangle`` field keeps rotation). Each value keeps the Label Studio value it was read
from (a region in its ``meta``, a one-value field in the annotation's ``source_meta``), so
an export writes it back to the last digit while it is unchanged. An annotation may leave
fields empty ("no objects" on an image is an answer): a ``required`` field binds annotators
in labelfarm, not labels made in another tool.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from labelfarm.formats.labelstudio_audio import RegionError, control_names, put_region
from labelfarm.formats.labelstudio_dialogue import DialogueError, span_of, texts_for
from labelfarm.formats.labelstudio_schema import RESULT_TYPES, SHAPE_TYPES, object_name, to_names
from labelfarm.formats.registry import RowProblem
from labelfarm.schema import FieldError, FieldType, Schema

LABEL_KEY = {
    "rectanglelabels": "rectanglelabels",
    "polygonlabels": "polygonlabels",
    "keypointlabels": "keypointlabels",
    "labels": "labels",
    "paragraphlabels": "paragraphlabels",
}
# the keys of a result the value of its field holds; every other key (id, to_name, origin,
# original_width, source, …) is kept: in a region's ``meta``, or in the annotation's
# ``source_meta`` (``results``) for a field holding one value
READ_KEYS = ("from_name", "type", "value")
# meta keys the conversion itself sets (and the export reads back)
OWN_META = ("relations", "percent", "point_width", "closed", "ls_value", "paragraphs")


class ResultError(ValueError):
    """A result that cannot become part of a value: the reason, and where in the result."""

    def __init__(self, reason: str, path: str = "") -> None:
        super().__init__(reason)
        self.reason = reason
        self.path = path


def rotate(x: float, y: float, w: float, h: float, deg: float, sign: int) -> tuple[float, float]:
    """Move the top-left corner between Label Studio's pivot (the corner) and the centre."""
    if not deg:
        return x, y
    t = math.radians(deg)
    dx = (w / 2) * math.cos(t) - (h / 2) * math.sin(t) - w / 2
    dy = (w / 2) * math.sin(t) + (h / 2) * math.cos(t) - h / 2
    return x + sign * dx, y + sign * dy


@dataclass
class Converted:
    """One annotation's value, the image size its results gave, and what was not kept."""

    value: dict[str, Any]
    image_size: tuple[int | float, int | float] | None = None
    # the other keys of results of one-value fields, by field; the order of the results
    results: dict[str, dict[str, Any]] = field(default_factory=dict)
    order: list[str] = field(default_factory=list)

    def source_meta(self) -> dict[str, Any]:
        """What an export needs to write these results back as they were."""
        out: dict[str, Any] = {"order": self.order} if self.order else {}
        if self.results:
            out["results"] = self.results
        return out


def order_key(r: dict[str, Any]) -> str:
    """A result's place in its annotation: by region id, relation ends, or field."""
    if r.get("type") == "relation":
        return f"relation:{r.get('from_id')}:{r.get('to_id')}"
    if r.get("id") is not None:
        return f"id:{r['id']}"
    return f"field:{r.get('from_name')}"


def _get(v: dict[str, Any], key: str, kind: type | tuple[type, ...], what: str) -> Any:
    if key not in v:
        raise ResultError(f"the value has no {key!r} ({what})", f"value.{key}")
    found = v[key]
    if isinstance(found, bool) or not isinstance(found, kind):
        raise ResultError(f"{key!r} must be {what}, got {found!r}", f"value.{key}")
    return found


def _num(v: dict[str, Any], key: str) -> float:
    return float(_get(v, key, (int, float), "a number"))


class ResultConverter:
    """Label Studio results → one annotation value of a schema."""

    def __init__(self, schema: Schema) -> None:
        self.schema = schema
        self.to_name = to_names(schema)
        self.aliases = control_names(schema)  # per-region text areas -> their segments field
        self._data: dict[str, Any] = {}

    def value(
        self, results: Any, where: str, data: dict[str, Any] | None = None
    ) -> Converted | list[RowProblem]:
        """The value of one annotation's (or prediction's) results on an item with ``data``."""
        self._data = data or {}
        if not isinstance(results, list):
            return [RowProblem(where, "result", "must be a list")]
        problems: list[RowProblem] = []
        out = Converted({})
        regions: dict[str, dict[str, Any]] = {}
        relations: list[tuple[int, dict[str, Any]]] = []
        for i, r in enumerate(results):
            at = f"result[{i}]"
            if isinstance(r, dict):
                out.order.append(order_key(r))
            if not isinstance(r, dict):
                problems.append(RowProblem(where, at, "a result is an object"))
            elif r.get("type") == "relation":
                relations.append((i, r))
            else:
                try:
                    self._put(r, out, regions)
                except ResultError as exc:
                    problems.append(RowProblem(where, f"{at}.{exc.path}".rstrip("."), exc.reason))
        for i, rel in relations:
            src = regions.get(str(rel.get("from_id")))
            if src is None or str(rel.get("to_id")) not in regions:
                reason = (
                    f"relation {rel.get('from_id')!r} → {rel.get('to_id')!r} names a region that "
                    "is not in this annotation"
                )
                problems.append(RowProblem(where, f"result[{i}]", reason))
                continue
            extra = {k: v for k, v in rel.items() if k not in ("type", "from_id")}
            src.setdefault("meta", {}).setdefault("relations", []).append(extra)
        if problems:
            return problems
        return self._validated(out, where)

    def _validated(self, out: Converted, where: str) -> Converted | list[RowProblem]:
        """Each field given is checked by its type; an empty shape list is a valid answer
        and a field left out stays out, whatever ``required`` says."""
        value: dict[str, Any] = {}
        for f in self.schema.fields:
            v = out.value.get(f.name)
            if f.type_name in SHAPE_TYPES and v is None:
                v = []
            if v is None:
                continue
            if v == [] and f.type_name in SHAPE_TYPES:
                value[f.name] = []
                continue
            try:
                value[f.name] = f.validate(v)
            except FieldError as exc:
                return [RowProblem(where, f"value.{f.name}{exc.path}", exc.reason)]
        out.value = value
        return out

    def _field(self, r: dict[str, Any]) -> FieldType:
        name = r.get("from_name")
        f = self.schema.by_name.get(self.aliases.get(str(name), str(name)))
        if f is None:
            raise ResultError(
                f"no field named {name!r} in the schema; fields are {list(self.schema.by_name)}",
                "from_name",
            )
        rtype = str(r.get("type"))
        accepted = RESULT_TYPES.get(f.type_name, ())
        if rtype not in accepted:
            kind = "Label Studio dialogue" if rtype.startswith("paragraph") else "Label Studio"
            raise ResultError(
                f"a {rtype!r} result ({kind}) cannot fill {f.type_name} field {f.name!r}"
                + (f"; it takes {list(accepted)}" if accepted else "; it takes no results"),
                "type",
            )
        return f

    def _put(self, r: dict[str, Any], out: Converted, regions: dict[str, dict[str, Any]]) -> None:
        f = self._field(r)
        v = r.get("value")
        if not isinstance(v, dict):
            raise ResultError("'value' must be an object", "value")
        t = f.type_name
        if t == "segments":  # an audio region (labelfarm.formats.labelstudio_audio)
            self._check_to_name(f, r)
            kept = out.results.setdefault(f.name, {})
            try:
                put_region(f, r, v, kept, out.value.setdefault(f.name, []), regions)
            except RegionError as exc:
                raise ResultError(exc.reason, exc.path) from None
            return
        if t in SHAPE_TYPES:
            shape = self._shape(f, r, v, out)
            out.value.setdefault(f.name, []).append(shape)
            if r.get("id") is not None:
                regions[str(r["id"])] = shape
            return
        self._check_to_name(f, r)
        if f.name in out.value:
            raise ResultError(f"field {f.name!r} is given twice in one annotation", "from_name")
        out.results[f.name] = {k: x for k, x in r.items() if k not in READ_KEYS}
        out.results[f.name]["ls_value"] = v  # written back as it was while the value holds
        out.value[f.name] = scalar_value(f, v)

    def _check_to_name(self, f: FieldType, r: dict[str, Any]) -> None:
        """A field's results all name one object (its ``to_name``): the schema's, or the
        one the export would write."""
        given, want = r.get("to_name"), object_name(self.to_name, f, self._data)
        if given is not None and str(given) != want:
            raise ResultError(
                f"to_name {given!r}: field {f.name!r} labels object {want!r} in this schema "
                "(create the project from the Label Studio label config, or set "
                f"labelstudio.to_name.{f.name} in the schema)",
                "to_name",
            )

    def _shape(
        self, f: FieldType, r: dict[str, Any], v: dict[str, Any], out: Converted
    ) -> dict[str, Any]:
        self._check_to_name(f, r)
        t = f.type_name
        labels = v.get(LABEL_KEY.get(str(r.get("type")), "labels"), v.get("labels"))
        if not isinstance(labels, list) or len(labels) != 1:
            n = len(labels) if isinstance(labels, list) else 0
            raise ResultError(f"{n} labels on one region; exactly one is supported", "value")
        meta = {k: x for k, x in r.items() if k not in READ_KEYS and k != "score"}
        size = _image_size(r)
        if t == "bbox" and v.get("rotation"):
            raise ResultError(
                f"a box rotated {v['rotation']}° in bbox field {f.name!r}, which holds upright "
                "boxes; use a rectangle field (it keeps rotation)",
                "value.rotation",
            )
        if t != "spans":
            if size is None:
                meta["percent"] = True  # no image size given: coordinates stay percentages
            else:
                if out.image_size is not None and out.image_size != size:
                    raise ResultError(
                        f"image size {size[0]}×{size[1]} differs from {out.image_size[0]}×"
                        f"{out.image_size[1]} given by another result of this annotation",
                        "original_width",
                    )
                out.image_size = size
            for key, name in (("closed", "closed"), ("width", "point_width")):
                if key in v and t in ("polygon", "keypoints"):
                    meta[name] = v[key]
        if r.get("type") == "paragraphlabels":  # a dialogue's range (labelstudio_dialogue)
            try:
                target = object_name(self.to_name, f, self._data)
                geo = span_of(v, texts_for(self.schema, target, self._data))
            except DialogueError as exc:
                raise ResultError(exc.reason, exc.path) from None
            meta["paragraphs"] = True
        else:
            geo = geometry(t, v, size)
        shape: dict[str, Any] = {"label": labels[0], **geo}
        meta["ls_value"] = v  # written back as it was while the region is unchanged
        if "score" in r:
            shape["score"] = r["score"]
        shape["meta"] = meta
        return shape


def scalar_value(f: FieldType, v: dict[str, Any]) -> Any:
    """The value of a one-value field (choice, multichoice, text, number) from a result's."""
    t = f.type_name
    if t in ("choice", "multichoice"):
        choices = _get(v, "choices", list, "a list of options")
        if t == "choice" and len(choices) != 1:
            raise ResultError(
                f"{len(choices)} choices for single-choice field {f.name!r}", "value.choices"
            )
        return choices[0] if t == "choice" else list(choices)
    if t == "text":
        return _text(f, v)
    key = "rating" if "rating" in v else "number"
    return _get(v, key, (int, float), "a number")


def _text(f: FieldType, v: dict[str, Any]) -> str:
    """The entries of a text area, one per line (the value they were imported with is kept,
    so entries of several lines come back as they were)."""
    texts = v.get("text")
    if isinstance(texts, str):
        texts = [texts]
    if not isinstance(texts, list) or not all(isinstance(s, str) for s in texts):
        raise ResultError("'text' must be a list of strings", "value.text")
    return "\n".join(texts)


def _image_size(r: dict[str, Any]) -> tuple[int | float, int | float] | None:
    w, h = r.get("original_width"), r.get("original_height")
    ok = all(isinstance(s, int | float) and not isinstance(s, bool) and s > 0 for s in (w, h))
    return (w, h) if ok else None  # type: ignore[return-value]


def geometry(t: str, v: dict[str, Any], size: tuple[float, float] | None) -> dict[str, Any]:
    """A region's geometry in a field of type ``t``: pixels of an image of ``size`` from
    Label Studio's percentages (percentages when the size is unknown), character offsets."""
    if t == "spans":
        out: dict[str, Any] = {
            "start": _get(v, "start", int, "a character offset"),
            "end": _get(v, "end", int, "a character offset"),
        }
        if "text" in v:
            out["text"] = v["text"]
        return out
    sx, sy = (float(size[0]) / 100, float(size[1]) / 100) if size else (1.0, 1.0)
    if t in ("rectangle", "bbox"):
        rot = v.get("rotation") or 0
        w, h = _num(v, "width") * sx, _num(v, "height") * sy
        x, y = rotate(_num(v, "x") * sx, _num(v, "y") * sy, w, h, rot, +1)
        return {"x": x, "y": y, "w": w, "h": h, **({"rotation": rot} if rot else {})}
    if t == "polygon":
        pts = _get(v, "points", list, "a list of [x, y] points")
        try:
            return {"points": [[float(p[0]) * sx, float(p[1]) * sy] for p in pts]}
        except (TypeError, ValueError, IndexError, KeyError):
            raise ResultError("'points' must be [x, y] pairs of numbers", "value.points") from None
    return {"points": [[_num(v, "x") * sx, _num(v, "y") * sy]]}
