"""CVAT for images 1.1 XML: boxes, polygons, polylines, points and tags with attributes.

Import reads ``annotations.xml`` (or a folder / zip holding it and the images), task or
project dumps alike. The declared labels and their attributes (checkbox, radio, select,
text, number) become the guessed schema's labels and attribute specs; attribute values
are typed by their declaration (checkbox → true/false, number → a number, others text).
A shape's ``occluded``, ``z_order``, ``source`` and other XML attributes are kept in its
``meta``, ``group_id`` as its ``group``. Images become items ``{"image": name, "width",
"height", "meta": {"id", "subset"?, "task_id"?}}``, with external id ``<subset>/<name>``
when there is a subset (project dumps repeat names across subsets).

The file is read a piece at a time (``iterparse`` through defusedxml): the ``<meta>`` is
read first, then each ``<image>`` is turned into an item and dropped, so memory stays flat
however many images the file lists. A file that breaks off or is not well-formed XML is
located by the line where reading stopped, after the images before it were read.

Export (``cvat``): one XML document, streamed, with the labels and attribute specs of the
schema in ``<meta>``.
"""

from __future__ import annotations

import itertools
import xml.etree.ElementTree as ET
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from labelfarm.formats import archive
from labelfarm.formats.objects import (
    Parsed,
    Scan,
    read_parsed,
    register_scanner,
    schema_labels,
    value_objects,
)
from labelfarm.formats.registry import (
    ExportContext,
    ExportRecord,
    ImportSource,
    ReadResult,
    RowProblem,
    register_reader,
    register_writer,
)
from labelfarm.formats.xmlutil import READ_ERRORS, fmt, iterparse, num, sub
from labelfarm.formats.xmlutil import problem as xml_problem
from labelfarm.jsonutil import iso
from labelfarm.schema import Schema

_KIND_TAG = {
    "box": "box",
    "polygon": "polygon",
    "polyline": "polyline",
    "points": "points",
    "tag": "tag",
}
_GEOMETRY = frozenset({"label", "xtl", "ytl", "xbr", "ybr", "points", "rotation", "group_id"})
_INPUT_TYPES = {
    "checkbox": "checkbox",
    "radio": "radio",
    "select": "select",
    "text": "text",
    "number": "number",
}


def _find(root: Path) -> Path | None:
    if root.is_file():
        return root
    found = sorted(root.rglob("*.xml"))
    named = [p for p in found if p.name == "annotations.xml"]
    return (named or found or [None])[0]  # type: ignore[list-item]


def _split_values(text: str | None) -> list[str]:
    if not text:
        return []
    return [v for v in (text.split("\n") if "\n" in text.strip() else text.split()) if v.strip()]


def _labels(meta: ET.Element | None) -> tuple[list[str], list[dict[str, Any]]]:
    labels: list[str] = []
    specs: list[dict[str, Any]] = []
    if meta is None:
        return labels, specs
    for label in meta.iter("label"):
        name = (label.findtext("name") or "").strip()
        if not name:
            continue
        labels.append(name)
        for a in label.iter("attribute"):
            kind = _INPUT_TYPES.get((a.findtext("input_type") or "text").strip(), "text")
            spec: dict[str, Any] = {
                "name": (a.findtext("name") or "").strip(),
                "type": kind,
                "labels": [name],
            }
            values = _split_values(a.findtext("values"))
            if kind in ("radio", "select"):
                spec["values"] = values
            elif values:
                spec["values"] = [_typed(kind, v) for v in values]
            if a.findtext("default_value") is not None:
                spec["default"] = _typed(kind, a.findtext("default_value") or "")
            if a.findtext("mutable") is not None:
                spec["mutable"] = (a.findtext("mutable") or "").strip().lower() == "true"
            specs.append(spec)
    return list(dict.fromkeys(labels)), specs


def _typed(kind: str | None, text: str) -> Any:
    t = text.strip() if kind in ("checkbox", "number") else text
    if kind == "checkbox" and t.lower() in ("true", "false"):
        return t.lower() == "true"
    if kind == "number":
        try:
            return num(t)
        except ValueError:
            return text
    return text


def _problem_scan(where: str, problem: RowProblem) -> Scan:
    return Scan(iter([Parsed(where, {}, problems=[problem])]))


@register_scanner("cvat")
def scan_cvat(source: ImportSource) -> Scan:
    try:
        root_dir = archive.unpacked(source)
    except archive.ArchiveError as exc:
        return Scan(iter([Parsed(source.filename, {}, problems=exc.problems)]))
    path = _find(root_dir)
    if path is None:
        return _problem_scan(
            source.filename, RowProblem(source.filename, "", "no annotations.xml found")
        )
    name = source.filename if path == source.path else path.relative_to(root_dir).as_posix()
    declared = _Declared()
    items = _items(path, name, declared, source)
    first = next(items, None)  # reads the <meta> that comes before the first <image>
    return Scan(
        itertools.chain([first] if first is not None else [], items),
        labels=declared.labels,
        attributes=declared.attributes,
    )


class _Declared:
    """The labels and attribute specs declared in the ``<meta>``, filled in when it has
    been read (before the first ``<image>`` of a CVAT dump). The scan hands out these very
    lists, so they are complete by the time its items are."""

    def __init__(self) -> None:
        self.labels: list[str] = []
        self.attributes: list[dict[str, Any]] = []
        self.kinds: dict[tuple[str, str], str] = {}

    def read(self, meta: ET.Element) -> None:
        labels, specs = _labels(meta)
        self.labels[:] = labels
        self.attributes[:] = _merge(specs)
        self.kinds.update({(s["labels"][0], s["name"]): s["type"] for s in specs})


def _merge(specs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One spec per attribute name; the labels of same-named, same-typed specs merged."""
    out: dict[str, dict[str, Any]] = {}
    for s in specs:
        if s["name"] in out and out[s["name"]]["type"] == s["type"]:
            out[s["name"]]["labels"] = [*out[s["name"]]["labels"], *s["labels"]]
        else:
            out.setdefault(s["name"], dict(s))
    return list(out.values())


def _items(path: Path, name: str, declared: _Declared, source: ImportSource) -> Iterator[Parsed]:
    """Each ``<image>`` as it is read, then dropped: the tree holds the ``<image>`` in hand
    and what the parser has read ahead (16 KiB of XML at a time), never the whole file."""
    base = path.parent.resolve()
    n = depth = 0
    meta_seen = False
    try:
        with open(path, "rb") as fh:
            root: ET.Element | None = None
            for event, el in iterparse(fh):
                if event == "start":
                    depth += 1
                    if root is None:
                        root = el
                        if el.tag != "annotations":
                            reason = f"the root element is <{el.tag}>, not <annotations>"
                            yield Parsed(name, {}, problems=[RowProblem(name, "", reason)])
                            return
                    continue
                depth -= 1
                if el.tag == "image" and depth >= 1:
                    n += 1
                    source.bytes_read = fh.tell()
                    yield _image(el, n, name, declared.kinds, base)
                elif el.tag == "meta" and depth == 1 and not meta_seen:
                    meta_seen = True
                    declared.read(el)
                if depth == 1 and root is not None:
                    del root[:]  # the child just handled, with the text after it
    except READ_ERRORS as exc:
        problem = xml_problem(exc, name)
        yield Parsed(problem.location, {}, problems=[problem])


def _image(
    image: ET.Element, n: int, name: str, kinds: dict[tuple[str, str], str], base: Path
) -> Parsed:
    img_name = image.get("name") or ""
    where = f"{name} <image> #{n} ({img_name!r})"
    subset = image.get("subset")
    p = Parsed(
        where,
        {"image": img_name},
        external_id=f"{subset}/{img_name}" if subset else img_name,
        annotator="cvat",
    )
    if not img_name:
        p.problems.append(RowProblem(where, "name", "an <image> needs a name"))
    for key in ("width", "height"):
        try:
            p.data[key] = num(image.get(key))
        except ValueError:
            p.problems.append(RowProblem(where, key, f"must be a number, got {image.get(key)!r}"))
    p.data["meta"] = {k: v for k, v in image.attrib.items() if k not in ("name", "width", "height")}
    candidate = (base / img_name).resolve() if img_name else None  # base is resolved
    if candidate and candidate.is_relative_to(base) and candidate.is_file():
        p.media_path = candidate
    p.objects = []
    for i, el in enumerate(image):
        obj = _shape(el, f"{where} <{el.tag}> #{i + 1}", kinds, p.problems)
        if obj is not None:
            p.objects.append(obj)
    return p


def _points(text: str | None) -> list[list[int | float]]:
    pts = []
    for pair in (text or "").split(";"):
        x, y = pair.split(",")
        pts.append([num(x), num(y)])
    return pts


def _shape(
    el: ET.Element, where: str, kinds: dict[tuple[str, str], str], problems: list[RowProblem]
) -> dict[str, Any] | None:
    label = el.get("label") or ""
    if el.tag not in _KIND_TAG:
        problems.append(
            RowProblem(
                where,
                "",
                f"<{el.tag}> shapes are not supported (boxes, "
                "polygons, polylines, points and tags are)",
            )
        )
        return None
    if not label:
        problems.append(RowProblem(where, "label", "a shape needs a label"))
        return None
    kind = {"box": "box", "tag": "tag"}.get(el.tag, el.tag)
    obj: dict[str, Any] = {"kind": kind, "label": label}
    try:
        if el.tag == "box":
            x0, y0, x1, y1 = (num(el.get(k)) for k in ("xtl", "ytl", "xbr", "ybr"))
            obj.update(x=x0, y=y0, w=x1 - x0, h=y1 - y0)
            if el.get("rotation") is not None:
                obj["rotation"] = num(el.get("rotation"))
        elif el.tag != "tag":
            obj["points"] = _points(el.get("points"))
    except ValueError:
        problems.append(
            RowProblem(
                where,
                "points" if el.tag != "box" else "xtl",
                "coordinates must be numbers ('x,y;x,y' for points)",
            )
        )
        return None
    if el.get("group_id") not in (None, "", "0"):
        try:
            obj["group"] = int(el.get("group_id") or "")
        except ValueError:
            obj["group"] = el.get("group_id")
    meta: dict[str, Any] = {}
    for k, v in el.attrib.items():
        if k not in _GEOMETRY:
            meta[k] = int(v) if k in ("occluded", "z_order") and v.lstrip("-").isdigit() else v
    attrs: dict[str, Any] = {}
    for a in el.findall("attribute"):
        aname = a.get("name") or ""
        attrs[aname] = _typed(kinds.get((label, aname)), a.text or "")
    obj["attributes"] = attrs or None
    obj["meta"] = meta or None
    return obj


@register_reader("cvat")
def read_cvat(source: ImportSource) -> Iterator[ReadResult]:
    return read_parsed(source, scan_cvat(source))


# -- export -------------------------------------------------------------------------------


def _meta_xml(schema: Schema, ctx: ExportContext) -> bytes:
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
    for o in objects:
        tag = _KIND_TAG.get(o["kind"])
        if tag is None:
            continue
        a: dict[str, str] = {"label": o["label"]}
        if o.get("meta") is None and tag != "tag":
            a.update(occluded="0", source="manual", z_order="0")
        a.update({k: fmt(v) for k, v in (o.get("meta") or {}).items()})
        if tag == "box":
            a.update(
                xtl=fmt(o["x"]), ytl=fmt(o["y"]), xbr=fmt(o["x"] + o["w"]), ybr=fmt(o["y"] + o["h"])
            )
            if o.get("rotation"):
                a["rotation"] = fmt(o["rotation"])
        elif tag != "tag":
            a["points"] = ";".join(f"{fmt(x)},{fmt(y)}" for x, y in o["points"])
        if o.get("group") is not None:
            a["group_id"] = fmt(o["group"])
        el = sub(image, tag, **a)
        for name, v in (o.get("attributes") or {}).items():
            sub(el, "attribute", "" if v is None else v, name=name)
    ET.indent(image, level=1)
    return b"  " + ET.tostring(image, encoding="utf-8") + b"\n"


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
