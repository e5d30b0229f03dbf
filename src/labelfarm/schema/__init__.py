"""Label schemas: a project's schema is a list of fields, each of a registered field type.

    fields:
      - {name: product, type: choice, options: [denim_jacket, navy_shirt]}
      - {name: boxes, type: bbox, labels: [product, logo]}
    data: {image: image}          # optional: the keys an item's data must have

A schema is parsed once per version (:func:`compile_schema` is cached by its text) and
validates annotation values, naming the field and the problem.
"""

from __future__ import annotations

from labelfarm.schema import (  # noqa: F401  (register)
    bbox,
    choice,
    keypoints,
    mask,
    multichoice,
    number,
    polygon,
    polyline,
    rectangle,
    segments,
    spans,
    tags,
    text,
)
from labelfarm.schema.base import FieldError, FieldType, field_type, field_type_names, register
from labelfarm.schema.compiled import DATA_KINDS, Schema, compile_schema, parse_schema_text

__all__ = [
    "DATA_KINDS",
    "FieldError",
    "FieldType",
    "Schema",
    "compile_schema",
    "field_type",
    "field_type_names",
    "parse_schema_text",
    "register",
]
