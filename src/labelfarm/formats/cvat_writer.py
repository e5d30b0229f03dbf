"""Writing CVAT for images 1.1 XML (``cvat``): one document, streamed. Its ``<meta>`` is
the one an imported dump had while the schema still declares its labels (the time of the
dump renewed), else one made from the schema's labels and attribute specs. Box corners and
points read from CVAT and unchanged since are written with the decimals read (see
:mod:`labelfarm.formats.cvat`).
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Iterable, Iterator
from typing import Any

from labelfarm.formats.cvat import (
    CORNERS,
    KIND_TAG,
    corners,
    declared_labels,
    json_element,
    points_text,
)
from labelfarm.formats.objects import schema_labels, text_as_read, value_objects
from labelfarm.formats.registry import ExportContext, ExportRecord, register_writer
from labelfarm.formats.xmlutil import fmt, sub
from labelfarm.jsonutil import iso
from labelfarm.schema import Schema


def _meta_xml(schema: Schema, ctx: ExportContext) -> bytes:
    """The ``<meta>`` an imported dump had, while the schema still declares its labels;
    else one made from the schema's labels and attribute specs."""
    kept = (ctx.file_meta.get("cvat") or {}).get("meta")
    if kept is not None:
        meta = json_element(kept)
        if set(declared_labels(meta)[0]) <= set(schema_labels(schema)):
            for dumped in meta.iter("dumped"):
                dumped.text = iso(ctx.exported_at)
            ET.indent(meta, level=1)
            return b"  " + ET.tostring(meta, encoding="utf-8") + b"\n"
    meta = ET.Element("meta")
    task = sub(meta, "task")
    sub(task, "name", ctx.project_name)
    labels_el = sub(task, "labels")
    by_name: dict[str, dict[str, Any]] = {}
    for f in schema.fields:  # fields of one schema usually share their attribute specs
        for spec in getattr(f, "attributes", {}).values():
            by_name.setdefault(spec["name"], spec)
    specs = list(by_name.values())
    for label in schema_labels(schema):
        le = sub(labels_el, "label")
        sub(le, "name", label)
        ae = sub(le, "attributes")
        for s in specs:
            if s.get("labels") and label not in s["labels"]:
                continue
            a = sub(ae, "attribute")
            sub(a, "name", s["name"])
            if "mutable" in s:
                sub(a, "mutable", s["mutable"])
            sub(a, "input_type", s["type"])
            sub(a, "default_value", s.get("default", ""))
            sub(a, "values", "\n".join(fmt(v) for v in s.get("values", [])))
    sub(meta, "dumped", iso(ctx.exported_at))
    ET.indent(meta, level=1)
    return b"  " + ET.tostring(meta, encoding="utf-8") + b"\n"


def image_xml(rec: ExportRecord, objects: list[dict[str, Any]], n: int) -> bytes:
    meta = rec.data.get("meta") if isinstance(rec.data.get("meta"), dict) else {}
    attrs = {"id": str((meta or {}).get("id", n)), "name": str(rec.data.get("image", ""))}
    attrs.update({k: str(v) for k, v in (meta or {}).items() if k != "id"})
    for key in ("width", "height"):
        if key in rec.data:
            attrs[key] = fmt(rec.data[key])
    image = ET.Element("image", attrs)
    skeletons: dict[Any, ET.Element] = {}
    for o in objects:
        tag = KIND_TAG.get(o["kind"])
        if tag is None:
            continue
        parent, skeleton = image, (o.get("meta") or {}).get("skeleton")
        if tag == "points" and isinstance(skeleton, dict):
            parent = _skeleton(image, skeletons, o.get("group"), skeleton)
        a: dict[str, str] = {"label": o["label"]}
        if o.get("meta") is None and tag != "tag":
            a.update(occluded="0", source="manual", z_order="0")
        a.update({k: fmt(v) for k, v in (o.get("meta") or {}).items() if k != "skeleton"})
        if tag == "box":
            a.update(zip(CORNERS, text_as_read(o, "cvat") or corners(o), strict=True))
            if o.get("rotation"):
                a["rotation"] = fmt(o["rotation"])
        elif tag != "tag":
            a["points"] = text_as_read(o, "cvat") or points_text(o)
        if o.get("group") is not None and parent is image:
            a["group_id"] = fmt(o["group"])
        el = sub(parent, tag, **a)
        for name, v in (o.get("attributes") or {}).items():
            sub(el, "attribute", "" if v is None else v, name=name)
    ET.indent(image, level=1)
    return b"  " + ET.tostring(image, encoding="utf-8") + b"\n"


def _skeleton(
    image: ET.Element, made: dict[Any, ET.Element], group: Any, skeleton: dict[str, Any]
) -> ET.Element:
    """The ``<skeleton>`` element of the keypoints of ``group``, made at its first point."""
    if group not in made:
        attrs = {k: fmt(v) for k, v in skeleton.items() if k != "attributes"}
        made[group] = el = sub(image, "skeleton", **attrs)
        for name, v in (skeleton.get("attributes") or {}).items():
            sub(el, "attribute", "" if v is None else v, name=name)
    return made[group]


@register_writer("cvat", "application/xml", extension="xml", context=True)
def write_cvat(
    records: Iterable[ExportRecord], schema: Schema, ctx: ExportContext
) -> Iterator[bytes]:
    yield b'<?xml version="1.0" encoding="utf-8"?>\n<annotations>\n  <version>1.1</version>\n'
    yield _meta_xml(schema, ctx)
    buf: list[bytes] = []
    for n, rec in enumerate(records):
        objects = value_objects(schema, (rec.label or {}).get("value"))
        buf.append(image_xml(rec, objects, n))
        if len(buf) >= 200:
            yield b"".join(buf)
            buf.clear()
    yield b"".join(buf) + b"</annotations>\n"
