"""What a labelfarm schema knows of a Label Studio project: which result types fill which
field type, and the schema's ``labelstudio`` section.

The section is written by :func:`labelfarm.formats.labelstudio_config.schema_from_label_config`
(and by the Label Studio schema guesser) and kept so that a round trip names the same tags::

    labelstudio:
      objects: [{tag: Image, name: img, value: $image}]   # the label config's object tags
      to_name: {boxes: img}                               # field -> the object it labels
      controls: {stars: Rating}                           # field -> its control tag
      relations: [rides, owns]                            # the <Relations> labels

An object may also keep its tag's other attributes (``attrs``: ``{zoom: "true"}``) and, for
an audio, the names of the controls making the regions of its ``segments`` field
(``regions: {field, labels, text}``, see :mod:`labelfarm.formats.labelstudio_audio`).

A field the section does not name labels the schema's first object of its kind (see
:func:`object_name`).
"""

from __future__ import annotations

from typing import Any

from labelfarm.schema import FieldType, Schema

# labelfarm field type -> the Label Studio result types it holds
RESULT_TYPES: dict[str, tuple[str, ...]] = {
    "choice": ("choices",),
    "multichoice": ("choices",),
    "text": ("textarea",),
    "number": ("number", "rating"),
    "spans": ("labels", "paragraphlabels"),
    "segments": ("labels", "textarea"),
    "rectangle": ("rectanglelabels", "rectangle"),
    "bbox": ("rectanglelabels", "rectangle"),
    "polygon": ("polygonlabels", "polygon"),
    "keypoints": ("keypointlabels", "keypoint"),
}
SHAPE_TYPES = frozenset({"spans", "rectangle", "bbox", "polygon", "keypoints"})
IMAGE_TYPES = frozenset({"rectangle", "bbox", "polygon", "keypoints"})
# object tag -> the data kind of the key it shows
OBJECT_KINDS = {
    "Image": "image",
    "Text": "text",
    "HyperText": "text",
    "Audio": "audio",
    "AudioPlus": "audio",
    "Paragraphs": "json",
}
KIND_OBJECTS = {"image": "Image", "text": "Text", "audio": "Audio"}


def section(schema: Schema) -> dict[str, Any]:
    found = schema.raw.get("labelstudio")
    return found if isinstance(found, dict) else {}


def objects(schema: Schema) -> list[dict[str, Any]]:
    """The label config's object tags: the section's, else one per data key of a kind Label
    Studio shows (named as the key)."""
    given = section(schema).get("objects")
    if given:
        return [dict(o) for o in given]
    return [
        {"tag": KIND_OBJECTS[kind], "name": key, "value": f"${key}"}
        for key, kind in schema.data.items()
        if kind in KIND_OBJECTS
    ]


def to_names(schema: Schema) -> dict[str, str]:
    """Field -> the name of the object it labels, for every field the schema decides."""
    out = {str(k): str(v) for k, v in (section(schema).get("to_name") or {}).items()}
    objs = objects(schema)
    for f in schema.fields:
        if f.name not in out:
            name = _first(objs, f)
            if name is not None:
                out[f.name] = name
    return out


def _first(objs: list[dict[str, Any]], f: FieldType) -> str | None:
    want = _wanted(f)
    for kind in want:
        for o in objs:
            if OBJECT_KINDS.get(o.get("tag", "")) == kind:
                return o["name"]
    return None


def _wanted(f: FieldType) -> tuple[str, ...]:
    if f.type_name in IMAGE_TYPES:
        return ("image",)
    if f.type_name == "spans":
        return ("text",)
    if f.type_name == "segments":
        return ("audio",)
    return ("text", "image", "audio")


def object_name(names: dict[str, str], f: FieldType, data: dict[str, Any]) -> str:
    """The ``to_name`` of field ``f``'s results on an item with ``data``: the schema's,
    else the item's first data key of the field's kind (as ``image``, ``text``)."""
    if f.name in names:
        return names[f.name]
    want = _wanted(f)
    for kind in want:
        if kind in data:
            return kind
    return want[0] if not data else next(iter(data))


def control_tag(schema: Schema, f: FieldType) -> str | None:
    found = (section(schema).get("controls") or {}).get(f.name)
    return str(found) if found else None
