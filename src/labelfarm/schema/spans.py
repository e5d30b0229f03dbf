"""``spans``: labelled ranges of an item's text (named entities, highlighted evidence).

A shape is ``{"start", "end", "label"}``: character offsets into the text, ``start``
included and ``end`` excluded (Python slicing, as doccano and Label Studio count), with an
optional ``text`` (the covered characters, kept for checking) plus the common
``attributes``, ``group``, ``score`` and ``meta`` (see :mod:`labelfarm.schema.shapes`).
Two annotators agree on a span when their ranges overlap by half or more, labels equal.
"""

from __future__ import annotations

from typing import Any, ClassVar

from labelfarm.schema.base import FieldError, register
from labelfarm.schema.shapes import ShapeList


@register
class Spans(ShapeList):
    type_name = "spans"
    noun = "span"
    shape_keys: ClassVar[frozenset[str]] = frozenset({"start", "end", "text"})

    def _geometry(self, shape: dict[str, Any], where: str) -> dict[str, Any]:
        start, end = shape.get("start"), shape.get("end")
        for key, v in (("start", start), ("end", end)):
            if isinstance(v, bool) or not isinstance(v, int) or v < 0:
                raise FieldError(
                    f"'{key}' is a character offset (a whole number ≥ 0), got {v!r}",
                    f"{where}.{key}",
                )
        assert isinstance(start, int) and isinstance(end, int)
        if end <= start:
            raise FieldError(f"'end' ({end}) must be greater than 'start' ({start})", where)
        out: dict[str, Any] = {"start": start, "end": end}
        if shape.get("text") is not None:
            if not isinstance(shape["text"], str):
                raise FieldError("'text' is the covered text", f"{where}.text")
            out["text"] = shape["text"]
        return out

    def overlap(self, a: dict[str, Any], b: dict[str, Any]) -> float:
        inter = max(0, min(a["end"], b["end"]) - max(a["start"], b["start"]))
        union = max(a["end"], b["end"]) - min(a["start"], b["start"])
        return inter / union if union else 0.0

    def to_cell(self, value: Any) -> str:
        return ";".join(f"{s['label']}:{s['start']}-{s['end']}" for s in value or [])
