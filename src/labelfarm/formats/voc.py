"""Pascal VOC XML: one ``<annotation>`` per image, boxes with their flags.

Import reads one ``.xml`` file, or a folder / zip of them (``Annotations/*.xml``) with the
images in ``JPEGImages/`` or beside them. Each object becomes a box whose attributes are
``pose``, ``truncated``, ``difficult`` and ``occluded`` when present (and datumaro's
``<attributes>``); rotated boxes (roLabelImg's ``<robndbox>``, angle in radians) become
boxes with ``rotation`` in degrees; ``<part>``, ``<actions>`` and other details of an object
are kept in its ``meta``, and the file's own details (folder, path, source, segmented) in
the item's ``meta``, so that an export writes them back.

Export (``voc``, a zip): ``Annotations/<image>.xml`` per labelled item, the images under
``JPEGImages/``, and ``manifest.json``.
"""

from __future__ import annotations

import math
import tempfile
import xml.etree.ElementTree as ET
from collections.abc import Iterable, Iterator
from pathlib import Path, PurePosixPath
from typing import Any

import orjson

from labelfarm.formats import archive
from labelfarm.formats.folder import IMAGE
from labelfarm.formats.manifest import manifest, media_entries, safe_name
from labelfarm.formats.objects import (
    Parsed,
    Scan,
    keep_text,
    read_parsed,
    register_scanner,
    text_as_read,
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
from labelfarm.formats.xmlutil import fmt, num, parse, scalar, sub
from labelfarm.schema import Schema

FLAGS = ("pose", "truncated", "difficult", "occluded")
_BOX = ("xmin", "ymin", "xmax", "ymax")
_ROBOX = ("cx", "cy", "w", "h", "angle")


@register_scanner("voc")
def scan_voc(source: ImportSource) -> Scan:
    try:
        root = archive.unpacked(source)
    except archive.ArchiveError as exc:
        return Scan(iter([Parsed(source.filename, {}, problems=exc.problems)]))
    return Scan(_items(root, source))


def _items(root: Path, source: ImportSource) -> Iterator[Parsed]:
    if root.is_file():
        files, base = [root], root.parent
        names = {root: source.filename}
    else:
        files = sorted(p for p in root.rglob("*.xml") if not p.name.startswith("."))
        base = root
        names = {p: p.relative_to(root).as_posix() for p in files}
        if not files:
            yield Parsed(
                source.filename,
                {},
                problems=[RowProblem(source.filename, "", "no .xml files found")],
            )
    for path in files:
        source.bytes_read += 1
        yield _file(path, names[path], base)


def _image_path(base: Path, xml_path: Path, filename: str) -> Path | None:
    for d in (base / "JPEGImages", base / "images", xml_path.parent, base):
        candidate = (d / filename).resolve()
        if candidate.is_relative_to(base.resolve()) and candidate.is_file():
            return candidate
    return None


def _file(path: Path, name: str, base: Path) -> Parsed:
    root = parse(path, name)
    if isinstance(root, RowProblem):
        return Parsed(name, {}, problems=[root])
    p = Parsed(name, {}, annotator="voc")
    if root.tag != "annotation":
        p.problems.append(
            RowProblem(name, "", f"the root element is <{root.tag}>, not <annotation>")
        )
        return p
    filename = (root.findtext("filename") or "").strip() or path.stem
    p.data["image"] = filename
    p.external_id = filename
    size = root.find("size")
    meta: dict[str, Any] = {}
    if size is not None:
        for key in ("width", "height"):
            try:
                p.data[key] = num(size.findtext(key))
            except ValueError:
                p.problems.append(RowProblem(f"{name} <size>", key, "must be a number"))
        if size.find("depth") is not None:
            meta["depth"] = scalar(size.findtext("depth"))
    for child in root:
        if child.tag in ("filename", "size", "object"):
            continue
        meta[child.tag] = _element_value(child)
    if root.attrib:
        meta["@"] = dict(root.attrib)
    if meta:
        p.data["meta"] = meta
    media = _image_path(base, path, filename)
    if media is not None and media.suffix.lower() in IMAGE:
        p.media_path = media
    p.objects = []
    for i, obj in enumerate(root.findall("object")):
        o = _object(obj, f"{name} <object> #{i + 1}", p.problems)
        if o is not None:
            p.objects.append(o)
    return p


def _element_value(el: ET.Element) -> Any:
    if len(el):
        return {c.tag: _element_value(c) for c in el}
    return scalar(el.text) if el.text is not None and el.text.strip() else ""


def _numbers(
    el: ET.Element | None, keys: tuple[str, ...], where: str, problems: list[RowProblem]
) -> list[int | float] | None:
    if el is None:
        return None
    out = []
    for key in keys:
        try:
            out.append(num(el.findtext(key)))
        except ValueError:
            problems.append(
                RowProblem(where, f"{el.tag}.{key}", f"must be a number, got {el.findtext(key)!r}")
            )
            return None
    return out


def _object(obj: ET.Element, where: str, problems: list[RowProblem]) -> dict[str, Any] | None:
    label = (obj.findtext("name") or "").strip()
    if not label:
        problems.append(RowProblem(where, "name", "an object needs a <name>"))
        return None
    out: dict[str, Any] = {"kind": "box", "label": label}
    box = obj.find("bndbox")
    robox = obj.find("robndbox")
    if box is not None:
        v = _numbers(box, _BOX, where, problems)
        if v is None:
            return None
        out.update(x=v[0], y=v[1], w=v[2] - v[0], h=v[3] - v[1])
        if out["w"] < 0 or out["h"] < 0:
            problems.append(RowProblem(where, "bndbox", "xmax/ymax must not be below xmin/ymin"))
            return None
        _keep_text(out, box, _BOX)
    elif robox is not None:
        v = _numbers(robox, _ROBOX, where, problems)
        if v is None:
            return None
        cx, cy, w, h, angle = v
        out.update(x=cx - w / 2, y=cy - h / 2, w=w, h=h, rotation=math.degrees(angle))
        _keep_text(out, robox, _ROBOX)
    else:
        problems.append(RowProblem(where, "bndbox", "an object needs a <bndbox> or <robndbox>"))
        return None
    attrs: dict[str, Any] = {}
    meta: dict[str, Any] = {}
    for child in obj:
        if child.tag in ("name", "bndbox", "robndbox"):
            continue
        if child.tag in FLAGS:
            attrs[child.tag] = scalar(child.text) if child.text else ""
        elif child.tag == "attributes":
            for a in child.findall("attribute"):
                attrs[(a.findtext("name") or "").strip()] = scalar(a.findtext("value"))
        elif child.tag == "part":
            pbox = child.find("bndbox")
            part = _numbers(pbox, _BOX, where, problems)
            if part is not None and pbox is not None:  # numbers as written ('1.50' stays)
                part = [scalar(pbox.findtext(k)) for k in _BOX]
            meta.setdefault("parts", []).append(
                {"name": (child.findtext("name") or "").strip(), "bndbox": part}
            )
        else:
            meta[child.tag] = _element_value(child)
    out["attributes"] = attrs or None
    out["meta"] = {**(out.get("meta") or {}), **meta} or None
    out["at"] = where
    return out


def _box_numbers(o: dict[str, Any]) -> tuple[str, list[Any]]:
    """The element and numbers an export writes for box ``o``."""
    if o.get("rotation"):
        cx, cy = o["x"] + o["w"] / 2, o["y"] + o["h"] / 2
        return "robndbox", [cx, cy, o["w"], o["h"], math.radians(o["rotation"])]
    return "bndbox", [o["x"], o["y"], o["x"] + o["w"], o["y"] + o["h"]]


def _keep_text(obj: dict[str, Any], el: ET.Element, keys: tuple[str, ...]) -> None:
    """Keep the coordinates' text when converting them back would not write it again."""
    text = [(el.findtext(k) or "").strip() for k in keys]
    if [fmt(v) for v in _box_numbers(obj)[1]] != text:
        keep_text(obj, "voc", text)


@register_reader("voc")
def read_voc(source: ImportSource) -> Iterator[ReadResult]:
    return read_parsed(source, scan_voc(source))


# -- export -------------------------------------------------------------------------------


def _put(parent: ET.Element, tag: str, value: Any) -> None:
    if isinstance(value, dict):
        el = sub(parent, tag)
        for k, v in value.items():
            _put(el, k, v)
    else:
        sub(parent, tag, value)


def voc_xml(rec: ExportRecord, objects: list[dict[str, Any]]) -> bytes:
    meta = dict(rec.data.get("meta") or {}) if isinstance(rec.data.get("meta"), dict) else {}
    root = ET.Element("annotation", {k: str(v) for k, v in (meta.pop("@", None) or {}).items()})
    depth = meta.pop("depth", 3)
    for key in ("folder",):
        if key in meta:
            _put(root, key, meta.pop(key))
    sub(root, "filename", str(rec.data.get("image") or rec.item_id))
    for k, v in meta.items():
        if k not in ("segmented",):
            _put(root, k, v)
    size = sub(root, "size")
    sub(size, "width", rec.data.get("width", 0))
    sub(size, "height", rec.data.get("height", 0))
    sub(size, "depth", depth)
    sub(root, "segmented", meta.get("segmented", 0))
    for o in objects:
        if o["kind"] != "box":
            continue
        el = sub(root, "object")
        ometa = dict(o.get("meta") or {})
        attrs = dict(o.get("attributes") or {})
        if "type" in ometa:
            sub(el, "type", ometa.pop("type"))
        sub(el, "name", o["label"])
        for flag in FLAGS:
            if flag in attrs:
                sub(el, flag, attrs.pop(flag))
        tag, numbers = _box_numbers(o)
        text = text_as_read(o, "voc")
        bb = sub(el, tag)
        for k, v in zip(_ROBOX if tag == "robndbox" else _BOX, text or numbers, strict=True):
            sub(bb, k, v)
        for part in ometa.pop("parts", []):
            pe = sub(el, "part")
            sub(pe, "name", part["name"])
            if part.get("bndbox"):
                pb = sub(pe, "bndbox")
                for k, v in zip(_BOX, part["bndbox"], strict=True):
                    sub(pb, k, v)
        for k, v in ometa.items():
            _put(el, k, v)
        if attrs:
            ae = sub(el, "attributes")
            for k, v in attrs.items():
                a = sub(ae, "attribute")
                sub(a, "name", k)
                sub(a, "value", "" if v is None else v)
    ET.indent(root)
    return ET.tostring(root, encoding="utf-8", xml_declaration=True) + b"\n"


@register_writer("voc", "application/zip", extension="zip", context=True)
def write_voc(
    records: Iterable[ExportRecord], schema: Schema, ctx: ExportContext
) -> Iterator[bytes]:
    z = archive.ZipStream()
    counts = {"images": 0, "annotations": 0, "objects": 0}
    with tempfile.TemporaryFile() as media_list:
        for rec in records:
            counts["images"] += 1
            image = PurePosixPath(safe_name(str(rec.data.get("image") or rec.item_id))).name
            if rec.media_sha256:
                media_list.write(orjson.dumps([f"JPEGImages/{image}", rec.media_sha256]) + b"\n")
            if rec.label is None:
                continue
            objects = value_objects(schema, rec.label["value"])
            counts["annotations"] += 1
            counts["objects"] += sum(o["kind"] == "box" for o in objects)
            stem = PurePosixPath(image).stem if "." in image else image
            yield from z.add(f"Annotations/{stem}.xml", [voc_xml(rec, objects)])
        media_list.seek(0)
        files = (orjson.loads(line) for line in media_list)
        yield from media_entries(z, ((n, sha) for n, sha in files), ctx, counts)
    yield from z.finish(manifest("voc", ctx, counts))
