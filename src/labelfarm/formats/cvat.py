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

The dump's ``<meta>`` is kept with the import (``file_meta``); box corners and points whose
decimals would not come back from the numbers are kept as read (``keep_text``). Export:
:mod:`labelfarm.formats.cvat_writer`.
"""

from __future__ import annotations

import itertools
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from labelfarm.formats import archive
from labelfarm.formats.objects import (
    Parsed,
    Scan,
    keep_text,
    read_parsed,
    register_scanner,
)
from labelfarm.formats.registry import (
    ImportSource,
    ReadResult,
    RowProblem,
    register_reader,
)
from labelfarm.formats.xmlutil import READ_ERRORS, fmt, iterparse, num
from labelfarm.formats.xmlutil import problem as xml_problem

KIND_TAG = {
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


def declared_labels(meta: ET.Element | None) -> tuple[list[str], list[dict[str, Any]]]:
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
        labels, specs = declared_labels(meta)
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
                    source.file_meta["cvat"] = {"meta": element_json(el)}
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
        at = f"{where} <{el.tag}> #{i + 1}"
        if el.tag == "skeleton":
            p.objects.extend(_skeleton(el, at, kinds, p.problems, f"skeleton {i + 1}"))
            continue
        obj = _shape(el, at, kinds, p.problems)
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
    if el.tag not in KIND_TAG:
        problems.append(
            RowProblem(
                where,
                "",
                f"<{el.tag}> shapes are not supported (boxes, "
                "polygons, polylines, points, skeletons and tags are)",
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
            x0, y0, x1, y1 = (num(el.get(k)) for k in CORNERS)
            obj.update(x=x0, y=y0, w=x1 - x0, h=y1 - y0)
            if el.get("rotation") is not None:
                obj["rotation"] = num(el.get("rotation"))
            text = [(el.get(k) or "").strip() for k in CORNERS]
            if corners(obj) != text:  # converting back would not write the same decimals
                keep_text(obj, "cvat", text)
        elif el.tag != "tag":
            obj["points"] = _points(el.get("points"))
            as_read = (el.get("points") or "").strip()
            if points_text(obj) != as_read:  # "1.50" would come back as "1.5"
                keep_text(obj, "cvat", as_read)
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
    obj["meta"] = {**(obj.get("meta") or {}), **meta} or None
    obj["at"] = where
    return obj


def _skeleton(
    el: ET.Element,
    where: str,
    kinds: dict[tuple[str, str], str],
    problems: list[RowProblem],
    group: str,
) -> list[dict[str, Any]]:
    """A ``<skeleton>``: its ``<points>`` as keypoints of one ``group``, each with the
    skeleton's label, XML attributes and ``<attribute>`` values in ``meta.skeleton`` (so an
    export writes the skeleton again)."""
    if not el.get("label"):
        problems.append(RowProblem(where, "label", "a skeleton needs a label"))
        return []
    skeleton: dict[str, Any] = {k: v for k, v in el.attrib.items()}
    attrs = {
        a.get("name") or "": _typed(
            kinds.get((el.get("label") or "", a.get("name") or "")), a.text or ""
        )
        for a in el.findall("attribute")
    }
    if attrs:
        skeleton["attributes"] = attrs
    out = []
    for i, child in enumerate(el.findall("points")):
        obj = _shape(child, f"{where} <points> #{i + 1}", kinds, problems)
        if obj is not None:
            obj["group"] = group
            obj["meta"] = {**(obj.get("meta") or {}), "skeleton": skeleton}
            out.append(obj)
    return out


CORNERS = ("xtl", "ytl", "xbr", "ybr")


def points_text(o: dict[str, Any]) -> str:
    return ";".join(f"{fmt(x)},{fmt(y)}" for x, y in o["points"])


def corners(o: dict[str, Any]) -> list[str]:
    """A box's corners as an export writes them."""
    return [fmt(o["x"]), fmt(o["y"]), fmt(o["x"] + o["w"]), fmt(o["y"] + o["h"])]


@register_reader("cvat")
def read_cvat(source: ImportSource) -> Iterator[ReadResult]:
    return read_parsed(source, scan_cvat(source))


def element_json(el: ET.Element) -> list[Any]:
    """An element as ``[tag, attributes, text, children]``, to be kept as JSON."""
    text = el.text if el.text is not None and el.text.strip() else None
    return [el.tag, dict(el.attrib), text, [element_json(c) for c in el]]


def json_element(doc: list[Any]) -> ET.Element:
    """The element :func:`element_json` kept."""
    tag, attrib, text, children = doc
    el = ET.Element(tag, attrib)
    el.text = text
    el.extend(json_element(c) for c in children)
    return el
