"""``bbox``: axis-aligned boxes on an image, each with a label.

A value is a list of boxes ``{"x", "y", "w", "h", "label"}`` in pixels of the original
image, origin at the top-left corner; an optional ``score`` (model confidence) is kept, and
so are the ``attributes``, ``group`` and ``meta`` other tools give a box (see
:mod:`labelfarm.schema.shapes`), so an import exported again loses nothing.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, ClassVar

from labelfarm.schema.base import FieldError, FieldType, register, weighted_medoid
from labelfarm.schema.choice import parse_options
from labelfarm.schema.shapes import shape_extras

_BOX_KEYS = frozenset({"x", "y", "w", "h", "label", "score", "attributes", "group", "meta"})


def box_iou(a: dict[str, float], b: dict[str, float]) -> float:
    ix = max(0.0, min(a["x"] + a["w"], b["x"] + b["w"]) - max(a["x"], b["x"]))
    iy = max(0.0, min(a["y"] + a["h"], b["y"] + b["h"]) - max(a["y"], b["y"]))
    inter = ix * iy
    union = a["w"] * a["h"] + b["w"] * b["h"] - inter
    return inter / union if union > 0 else 0.0


def matched_f1(pred: Sequence[dict], gold: Sequence[dict], iou_threshold: float = 0.5) -> float:
    """F1 of boxes matched greedily by IoU (best pairs first), labels required to agree."""
    if not pred and not gold:
        return 1.0
    if not pred or not gold:
        return 0.0
    pairs = sorted(
        (
            (box_iou(p, g), i, j)
            for i, p in enumerate(pred)
            for j, g in enumerate(gold)
            if p["label"] == g["label"]
        ),
        reverse=True,
    )
    used_p: set[int] = set()
    used_g: set[int] = set()
    tp = 0
    for iou, i, j in pairs:
        if iou < iou_threshold:
            break
        if i in used_p or j in used_g:
            continue
        used_p.add(i)
        used_g.add(j)
        tp += 1
    return 2.0 * tp / (len(pred) + len(gold))


@register
class BBox(FieldType):
    type_name = "bbox"
    spec_keys: ClassVar[frozenset[str]] = frozenset({"labels", "min_size", "max_boxes"})

    def __init__(self, spec: dict[str, Any]) -> None:
        super().__init__(spec)
        self.labels = parse_options(self, spec, "labels")
        self._valid = frozenset(self.labels)
        self.min_size = float(spec.get("min_size", 0.0))
        self.max_boxes = int(spec.get("max_boxes", 1000))

    def validate(self, value: Any) -> Any:
        if not isinstance(value, list):
            raise FieldError(f"expected a list of boxes, got {type(value).__name__}")
        if len(value) > self.max_boxes:
            raise FieldError(f"{len(value)} boxes; at most {self.max_boxes}")
        if self.required and not value:
            raise FieldError("at least one box is required")
        return [self._box(box, i) for i, box in enumerate(value)]

    def _box(self, box: Any, i: int) -> dict[str, Any]:
        where = f"[{i}]"
        if not isinstance(box, dict):
            raise FieldError(f"a box is an object with x, y, w, h, label; got {box!r}", where)
        unknown = set(box) - _BOX_KEYS
        if unknown:
            raise FieldError(f"unknown key(s) {sorted(unknown)}; valid: {sorted(_BOX_KEYS)}", where)
        out: dict[str, Any] = {}
        for key in ("x", "y", "w", "h"):
            v = box.get(key)
            if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v):
                raise FieldError(f"'{key}' must be a finite number, got {v!r}", f"{where}.{key}")
            out[key] = v  # as given: whole numbers stay whole, so an export writes them back
        if out["w"] <= self.min_size or out["h"] <= self.min_size:
            raise FieldError(f"width and height must be greater than {self.min_size}", where)
        if out["x"] < 0 or out["y"] < 0:
            raise FieldError("x and y must not be negative", where)
        label = box.get("label")
        if label not in self._valid:
            raise FieldError(f"label {label!r} is not one of {self.labels}", f"{where}.label")
        out["label"] = label
        out.update(shape_extras(box, label, where, {}))
        return out

    def similarity(self, a: Any, b: Any) -> float:
        return matched_f1(a, b)

    def score(self, value: Any, gold: Any) -> float:
        return matched_f1(value, gold)

    def aggregate(
        self, values: Sequence[Any], weights: Sequence[float] | None = None
    ) -> tuple[Any, float]:
        """The weighted medoid: the annotation that agrees best (matched F1) with the rest."""
        return weighted_medoid(values, weights, matched_f1)

    def to_cell(self, value: Any) -> str:
        return ";".join(
            f"{b['label']}:{b['x']:g},{b['y']:g},{b['w']:g},{b['h']:g}" for b in value or []
        )

    def to_dict(self) -> dict[str, Any]:
        return {**super().to_dict(), "labels": self.labels, "min_size": self.min_size}
