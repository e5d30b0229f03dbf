"""``rectangle``: boxes with what interchange formats carry beyond ``bbox``.

A shape is ``{"x", "y", "w", "h", "label"}`` in pixels of the original image (top-left
corner of the unrotated box) with an optional ``rotation`` in degrees, clockwise about the
box's centre (as CVAT stores it), plus the common ``attributes``, ``group``, ``score`` and
``meta`` (see :mod:`labelfarm.schema.shapes`). Use ``bbox`` for plain boxes; use
``rectangle`` when boxes carry attributes (VOC flags, CVAT attributes) or rotation.
"""

from __future__ import annotations

from typing import Any, ClassVar

from labelfarm.schema.base import FieldError, register
from labelfarm.schema.shapes import ShapeList, box_iou, number


def corners(s: dict[str, Any]) -> tuple[float, float, float, float]:
    return (s["x"], s["y"], s["x"] + s["w"], s["y"] + s["h"])


@register
class Rectangle(ShapeList):
    type_name = "rectangle"
    noun = "box"
    shape_keys: ClassVar[frozenset[str]] = frozenset({"x", "y", "w", "h", "rotation"})

    def _geometry(self, shape: dict[str, Any], where: str) -> dict[str, Any]:
        out = {k: number(shape.get(k), f"{where}.{k}") for k in ("x", "y", "w", "h")}
        if out["w"] < 0 or out["h"] < 0:
            raise FieldError("width and height must not be negative", where)
        if shape.get("rotation") not in (None, 0):
            out["rotation"] = number(shape["rotation"], f"{where}.rotation")
        return out

    def overlap(self, a: dict[str, Any], b: dict[str, Any]) -> float:
        if abs(a.get("rotation", 0) - b.get("rotation", 0)) > 10:
            return 0.0
        return box_iou(corners(a), corners(b))
