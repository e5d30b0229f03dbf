"""``keypoints``: labelled points on an image (a CVAT ``points`` shape, a Label Studio
keypoint, a landmark).

A shape is ``{"points": [[x, y], ...], "label"}`` (one point or more) plus the common
``attributes``, ``group``, ``score`` and ``meta`` (see :mod:`labelfarm.schema.shapes`).
"""

from __future__ import annotations

from typing import Any, ClassVar

from labelfarm.schema.base import register
from labelfarm.schema.shapes import ShapeList, point_similarity, points


@register
class Keypoints(ShapeList):
    type_name = "keypoints"
    noun = "point set"
    shape_keys: ClassVar[frozenset[str]] = frozenset({"points"})

    def _geometry(self, shape: dict[str, Any], where: str) -> dict[str, Any]:
        return {"points": points(shape.get("points"), f"{where}.points", 1)}

    def overlap(self, a: dict[str, Any], b: dict[str, Any]) -> float:
        return point_similarity(a["points"], b["points"])
