"""``polygon``: closed outlines on an image, each with a label.

A shape is ``{"points": [[x, y], ...], "label"}`` (at least three points, pixels of the
original image) plus the common ``attributes``, ``group``, ``score`` and ``meta`` (see
:mod:`labelfarm.schema.shapes`). Several polygons sharing a ``group`` are the parts of one
object (a COCO instance whose segmentation has several rings).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np
from PIL import Image, ImageDraw

from labelfarm.schema.base import register
from labelfarm.schema.shapes import ShapeList, bounds, box_iou, points

RASTER = 128  # the side of the grid two polygons are drawn on to measure their overlap


def polygon_iou(a: Sequence[Sequence[float]], b: Sequence[Sequence[float]]) -> float:
    """IoU of two polygons, measured on a grid of at most RASTER × RASTER cells."""
    ba, bb = bounds(a), bounds(b)
    if box_iou(ba, bb) == 0.0:
        return 0.0
    x0, y0 = min(ba[0], bb[0]), min(ba[1], bb[1])
    extent = max(ba[2], bb[2]) - x0, max(ba[3], bb[3]) - y0
    scale = (RASTER - 1) / max(*extent, 1e-9)

    def draw(pts: Sequence[Sequence[float]]) -> np.ndarray:
        img = Image.new("1", (RASTER, RASTER), 0)
        ImageDraw.Draw(img).polygon([((x - x0) * scale, (y - y0) * scale) for x, y in pts], 1, 1)
        return np.asarray(img, dtype=bool)

    ma, mb = draw(a), draw(b)
    union = np.logical_or(ma, mb).sum()
    return float(np.logical_and(ma, mb).sum() / union) if union else 0.0


@register
class Polygon(ShapeList):
    type_name = "polygon"
    noun = "polygon"
    shape_keys: ClassVar[frozenset[str]] = frozenset({"points"})

    def _geometry(self, shape: dict[str, Any], where: str) -> dict[str, Any]:
        return {"points": points(shape.get("points"), f"{where}.points", 3)}

    def overlap(self, a: dict[str, Any], b: dict[str, Any]) -> float:
        return polygon_iou(a["points"], b["points"])
