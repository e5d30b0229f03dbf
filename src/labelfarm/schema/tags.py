"""``tags``: labels of a whole image or frame that carry attributes (CVAT ``<tag>``).

A shape is ``{"label"}`` plus the common ``attributes``, ``group``, ``score`` and ``meta``
(see :mod:`labelfarm.schema.shapes`). Use ``multichoice`` when tags have no attributes.
"""

from __future__ import annotations

from typing import Any

from labelfarm.schema.base import register
from labelfarm.schema.shapes import ShapeList


@register
class Tags(ShapeList):
    type_name = "tags"
    noun = "tag"

    def to_cell(self, value: Any) -> str:
        return "|".join(t["label"] for t in value or [])
