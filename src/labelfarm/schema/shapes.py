"""The shared base of the list-of-shapes field types (rectangle, polygon, polyline,
keypoints, mask, tags).

A value is a list of shapes. Every shape has a ``label`` (one of the field's ``labels``) and
may carry:

* ``attributes``: a flat object of name → string, number, boolean or null (CVAT
  attributes, VOC flags, COCO's free ``attributes``). Attributes the field declares in its
  spec (``attributes: [{name, type, values?, labels?}]``) are checked; others are kept as
  they are.
* ``group``: a whole number or string that ties shapes of one object together (the parts of
  a multi-polygon COCO instance and its box, a CVAT group).
* ``score``: a model confidence.
* ``meta``: a JSON object kept verbatim, so that details of interchange formats (a COCO
  annotation id, a CVAT ``z_order``, a Label Studio region id) survive a round trip.

Subclasses add their geometry (:meth:`ShapeList._geometry`) and how much two shapes overlap
(:meth:`ShapeList.overlap`). Values are kept as given (whole numbers stay whole), so an
import exported again writes the same numbers.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, ClassVar

import orjson

from labelfarm.schema.base import FieldError, FieldType, weighted_medoid
from labelfarm.schema.choice import parse_options

ATTRIBUTE_TYPES = ("checkbox", "radio", "select", "text", "number")
_COMMON = frozenset({"label", "attributes", "group", "score", "meta"})
_MAX_META = 64 * 1024


def number(v: Any, where: str) -> int | float:
    if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v):
        raise FieldError(f"expected a finite number, got {v!r}", where)
    return v


def points(v: Any, where: str, minimum: int) -> list[list[int | float]]:
    """A list of [x, y] pairs with at least ``minimum`` points."""
    if not isinstance(v, list):
        raise FieldError(f"'points' is a list of [x, y] pairs, got {type(v).__name__}", where)
    if len(v) < minimum:
        raise FieldError(f"at least {minimum} points are needed, got {len(v)}", where)
    out = []
    for i, p in enumerate(v):
        if not isinstance(p, list | tuple) or len(p) != 2:
            raise FieldError(f"a point is [x, y], got {p!r}", f"{where}[{i}]")
        out.append([number(p[0], f"{where}[{i}][0]"), number(p[1], f"{where}[{i}][1]")])
    return out


def bounds(pts: Sequence[Sequence[float]]) -> tuple[float, float, float, float]:
    """(x0, y0, x1, y1) of a list of points."""
    xs = [p[0] for p in pts]
    ys = [p[1] for p in pts]
    return min(xs), min(ys), max(xs), max(ys)


def box_iou(a: tuple[float, ...], b: tuple[float, ...]) -> float:
    """IoU of two (x0, y0, x1, y1) boxes."""
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else float(a == b)


def point_similarity(a: Sequence[Sequence[float]], b: Sequence[Sequence[float]]) -> float:
    """Similarity of two point lists in [0, 1]: a Gaussian of the mean point distance,
    scaled by the size of their joint extent (as COCO's keypoint similarity does)."""
    if len(a) != len(b):
        return 0.0
    x0, y0, x1, y1 = bounds([*a, *b])
    scale = max(math.hypot(x1 - x0, y1 - y0) * 0.1, 1.0)
    d2 = sum((p[0] - q[0]) ** 2 + (p[1] - q[1]) ** 2 for p, q in zip(a, b, strict=True))
    return math.exp(-d2 / len(a) / (2 * scale * scale))


def parse_attribute_specs(field: FieldType, spec: dict[str, Any]) -> dict[str, dict[str, Any]]:
    raw = spec.get("attributes") or []
    if not isinstance(raw, list):
        raise field.spec_error("'attributes' is a list of {name, type, values?, labels?}")
    out: dict[str, dict[str, Any]] = {}
    for a in raw:
        if not isinstance(a, dict) or not isinstance(a.get("name"), str):
            raise field.spec_error(f"an attribute needs a 'name', got {a!r}")
        kind = a.get("type", "text")
        if kind not in ATTRIBUTE_TYPES:
            raise field.spec_error(
                f"attribute {a['name']!r}: type must be one of {ATTRIBUTE_TYPES}"
            )
        unknown = set(a) - {"name", "type", "values", "default", "labels", "mutable"}
        if unknown:
            raise field.spec_error(f"attribute {a['name']!r}: unknown key(s) {sorted(unknown)}")
        out[a["name"]] = dict(a, type=kind)
    return out


def check_attribute(spec: dict[str, Any], value: Any, where: str) -> None:
    kind = spec["type"]
    if value is None:
        return
    if kind == "checkbox" and not isinstance(value, bool):
        raise FieldError(f"attribute {spec['name']!r} is a checkbox: true or false", where)
    if kind == "number" and (isinstance(value, bool) or not isinstance(value, int | float)):
        raise FieldError(f"attribute {spec['name']!r} is a number, got {value!r}", where)
    if kind in ("radio", "select") and spec.get("values") and value not in spec["values"]:
        raise FieldError(
            f"attribute {spec['name']!r}: {value!r} is not one of {spec['values']}", where
        )


def shape_extras(
    shape: dict[str, Any], label: str, where: str, specs: dict[str, dict[str, Any]]
) -> dict[str, Any]:
    """The common ``attributes``, ``group``, ``score`` and ``meta`` of a shape, checked
    (attributes against ``specs``, the field's declared attributes)."""
    out: dict[str, Any] = {}
    if shape.get("attributes") is not None:
        out["attributes"] = _attributes(shape["attributes"], label, f"{where}.attributes", specs)
    if shape.get("group") is not None:
        g = shape["group"]
        if isinstance(g, bool) or not isinstance(g, int | str):
            raise FieldError("'group' is a whole number or a string", f"{where}.group")
        out["group"] = g
    if shape.get("score") is not None:
        out["score"] = number(shape["score"], f"{where}.score")
    if shape.get("meta") is not None:
        meta = shape["meta"]
        if not isinstance(meta, dict):
            raise FieldError("'meta' is a JSON object", f"{where}.meta")
        try:
            size = len(orjson.dumps(meta))
        except TypeError as exc:
            raise FieldError(f"'meta' is not JSON: {exc}", f"{where}.meta") from None
        if size > _MAX_META:
            raise FieldError(f"'meta' is {size} bytes; at most {_MAX_META}", f"{where}.meta")
        out["meta"] = meta
    return out


def _attributes(
    attrs: Any, label: str, where: str, specs: dict[str, dict[str, Any]]
) -> dict[str, Any]:
    if not isinstance(attrs, dict):
        raise FieldError("'attributes' maps names to values", where)
    for name, v in attrs.items():
        if v is not None and (
            not isinstance(v, str | int | float | bool)
            or (isinstance(v, float) and not math.isfinite(v))
        ):
            raise FieldError(f"a string, number, boolean or null, got {v!r}", f"{where}.{name}")
        spec = specs.get(name)
        if spec is not None and (not spec.get("labels") or label in spec["labels"]):
            check_attribute(spec, v, f"{where}.{name}")
    return dict(attrs)


class ShapeList(FieldType):
    """A list of labelled shapes. Subclasses set ``shape_keys`` and ``_geometry``."""

    shape_keys: ClassVar[frozenset[str]] = frozenset()
    noun: ClassVar[str] = "shape"
    spec_keys: ClassVar[frozenset[str]] = frozenset(
        {"labels", "attributes", "max_shapes", "label_meta"}
    )

    def __init__(self, spec: dict[str, Any]) -> None:
        super().__init__(spec)
        self.labels = parse_options(self, spec, "labels")
        self._valid = frozenset(self.labels)
        self.attributes = parse_attribute_specs(self, spec)
        self.max_shapes = int(spec.get("max_shapes", 10_000))
        # Per label, facts other tools keep about it (a COCO category id and supercategory,
        # a YOLO class index), so that an export numbers classes as the import found them.
        self.label_meta: dict[str, dict[str, Any]] = spec.get("label_meta") or {}
        if not isinstance(self.label_meta, dict) or not all(
            isinstance(v, dict) for v in self.label_meta.values()
        ):
            raise self.spec_error("'label_meta' maps a label to an object")

    # -- validation ---------------------------------------------------------------------
    def validate(self, value: Any) -> Any:
        if not isinstance(value, list):
            raise FieldError(f"expected a list of {self.noun}s, got {type(value).__name__}")
        if len(value) > self.max_shapes:
            raise FieldError(f"{len(value)} {self.noun}s; at most {self.max_shapes}")
        if self.required and not value:
            raise FieldError(f"at least one {self.noun} is required")
        return [self._shape(s, f"[{i}]") for i, s in enumerate(value)]

    def _shape(self, shape: Any, where: str) -> dict[str, Any]:
        if not isinstance(shape, dict):
            raise FieldError(f"a {self.noun} is an object, got {shape!r}", where)
        valid = _COMMON | self.shape_keys
        unknown = set(shape) - valid
        if unknown:
            raise FieldError(f"unknown key(s) {sorted(unknown)}; valid: {sorted(valid)}", where)
        label = shape.get("label")
        if label not in self._valid:
            raise FieldError(f"label {label!r} is not one of {self.labels}", f"{where}.label")
        out: dict[str, Any] = {"label": label}
        out.update(self._geometry(shape, where))
        out.update(shape_extras(shape, label, where, self.attributes))
        return out

    def _geometry(self, shape: dict[str, Any], where: str) -> dict[str, Any]:
        return {}

    # -- agreement ----------------------------------------------------------------------
    def overlap(self, a: dict[str, Any], b: dict[str, Any]) -> float:
        """How much two shapes of the same label overlap, in [0, 1]."""
        return 1.0

    def matched_f1(
        self, pred: Sequence[dict], gold: Sequence[dict], threshold: float = 0.5
    ) -> float:
        """F1 of shapes matched greedily by overlap (best pairs first), labels agreeing."""
        if not pred and not gold:
            return 1.0
        if not pred or not gold:
            return 0.0
        pairs = sorted(
            (
                (self.overlap(p, g), i, j)
                for i, p in enumerate(pred)
                for j, g in enumerate(gold)
                if p["label"] == g["label"]
            ),
            key=lambda t: (-t[0], t[1], t[2]),
        )
        used_p: set[int] = set()
        used_g: set[int] = set()
        for ov, i, j in pairs:
            if ov < threshold:
                break
            if i not in used_p and j not in used_g:
                used_p.add(i)
                used_g.add(j)
        return 2.0 * len(used_p) / (len(pred) + len(gold))

    def similarity(self, a: Any, b: Any) -> float:
        return self.matched_f1(a, b)

    def score(self, value: Any, gold: Any) -> float:
        return self.matched_f1(value, gold)

    def aggregate(
        self, values: Sequence[Any], weights: Sequence[float] | None = None
    ) -> tuple[Any, float]:
        """The weighted medoid: the annotation that agrees best (matched F1) with the rest."""
        return weighted_medoid(values, weights, self.matched_f1)

    def to_cell(self, value: Any) -> str:
        return "" if value is None else orjson.dumps(value).decode()

    def to_dict(self) -> dict[str, Any]:
        return {
            **super().to_dict(),
            "labels": self.labels,
            "attributes": list(self.attributes.values()),
            "label_meta": self.label_meta,
        }
