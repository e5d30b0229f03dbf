"""``polyline``: open lines on an image (lanes, edges), each with a label.

A shape is ``{"points": [[x, y], ...], "label"}`` (at least two points) plus the common
``attributes``, ``group``, ``score`` and ``meta`` (see :mod:`labelfarm.schema.shapes`).
"""

from __future__ import annotations

from typing import Any, ClassVar

from labelfarm.schema.base import register
from labelfarm.schema.shapes import ShapeList, point_similarity, points


@register
class Polyline(ShapeList):
    type_name = "polyline"
    noun = "polyline"
    shape_keys: ClassVar[frozenset[str]] = frozenset({"points"})

    def _geometry(self, shape: dict[str, Any], where: str) -> dict[str, Any]:
        return {"points": points(shape.get("points"), f"{where}.points", 2)}

    def overlap(self, a: dict[str, Any], b: dict[str, Any]) -> float:
        return point_similarity(a["points"], b["points"])
