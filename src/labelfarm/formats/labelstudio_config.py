"""Label Studio label configs ↔ labelfarm schemas.

:func:`schema_from_label_config` reads a label config (the ``<View>`` XML of a Label Studio
project) into a schema: each control tag becomes a field named as the tag, with every label
or choice it lists, in order, used or not; each object tag names a data key (``value="$image"``)
and its kind. What else the config says (object tag names, which object each control labels,
a ``<Rating>``, an object's other attributes) is kept in the schema's ``labelstudio``
section, so that :func:`label_config_from_schema` writes the config back and exports name
the same tags.

=====================  ==========================================================
control tag            labelfarm field
=====================  ==========================================================
``<Choices>``          ``choice``; ``multichoice`` with ``choice="multiple"``
``<TextArea>``         ``text`` (``multiline``: ``rows`` > 1, ``maxSubmissions="1"``)
``<Labels>``           ``spans`` (on a ``<Text>`` or ``<HyperText>``); on an audio, with a
                       per-region ``<TextArea>``: ``segments`` (see
                       :mod:`labelfarm.formats.labelstudio_audio`)
``<ParagraphLabels>``  ``spans`` of a ``<Paragraphs>`` dialogue (``json`` data; see
                       :mod:`labelfarm.formats.labelstudio_dialogue`)
``<RectangleLabels>``  ``rectangle``
``<PolygonLabels>``    ``polygon``
``<KeyPointLabels>``   ``keypoints``
``<Rating>``           ``number`` (whole, 1 to ``maxRating``)
``<Number>``           ``number`` (``min``, ``max``)
=====================  ==========================================================

Object tags: ``<Image>``, ``<Text>``, ``<HyperText>``, ``<Audio>``, ``<AudioPlus>``,
``<Paragraphs>`` (its ``audioUrl="$key"`` an audio data key); layout
tags (``<View>``, ``<Header>``, ``<Style>``) are passed over. Any other tag is an error giving
its line and name; so is a config that is not well-formed XML.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Iterator
from typing import Any
from xml.sax.saxutils import quoteattr

import defusedxml.ElementTree as DET
from defusedxml import DefusedXmlException

from labelfarm.errors import SchemaError
from labelfarm.formats.labelstudio_audio import AUDIO_TAGS, control_lines, region_field
from labelfarm.formats.labelstudio_schema import (
    OBJECT_KINDS,
    control_tag,
    objects,
    section,
    to_names,
)
from labelfarm.formats.registry import ExportContext, register_writer
from labelfarm.schema import FieldType, Schema, compile_schema

LAYOUT = frozenset({"View", "Header", "Style"})
LABELLED = {  # control tag -> field type; its children are <Label value=...>
    "Labels": "spans",
    "RectangleLabels": "rectangle",
    "PolygonLabels": "polygon",
    "KeyPointLabels": "keypoints",
    "ParagraphLabels": "spans",
}
CONTROLS = frozenset({*LABELLED, "Choices", "TextArea", "Rating", "Number"})
_SPAN_OBJECTS = frozenset({"Text", "HyperText"})


class _Lines(ET.TreeBuilder):
    """A tree builder that remembers the line each element starts on."""

    def __init__(self) -> None:
        super().__init__()
        self.parser: Any = None
        self.lines: dict[ET.Element, int] = {}

    def start(self, tag: Any, attrs: Any) -> ET.Element:
        el = super().start(tag, attrs)
        self.lines[el] = self.parser.parser.CurrentLineNumber
        return el


def _parse(text: str) -> tuple[ET.Element, dict[ET.Element, int]]:
    builder = _Lines()
    parser = DET.DefusedXMLParser(target=builder, forbid_dtd=True)
    builder.parser = parser
    try:
        parser.feed(text)
        root = parser.close()
    except ET.ParseError as exc:
        line, col = exc.position
        reason = f"not well-formed XML (column {col}): {str(exc).split(':')[0]}"
        raise _error(line, "", reason) from None
    except DefusedXmlException as exc:
        raise _error(None, "", f"refused: {type(exc).__name__} (no DTDs or entities)") from None
    return root, builder.lines


def _error(line: int | None, tag: str, reason: str) -> SchemaError:
    where = " ".join(p for p in (f"line {line}" if line else "", f"<{tag}>" if tag else "") if p)
    return SchemaError(
        f"label config {where}: {reason}" if where else f"label config: {reason}",
        [{"line": line, "tag": tag, "reason": reason}],
    )


def _walk(el: ET.Element) -> Iterator[ET.Element]:
    """Object and control tags in document order, below layout tags."""
    for child in el:
        if child.tag in LAYOUT:
            yield from _walk(child)
        else:
            yield child


def schema_from_label_config(text: str) -> dict[str, Any]:
    """A labelfarm schema (a dict) from a Label Studio label config; SchemaError with the
    line and tag of the first problem (an unsupported tag, a control without labels)."""
    root, lines = _parse(text)
    if root.tag != "View":
        raise _error(lines.get(root), root.tag, "a label config is a <View>")
    objs: list[dict[str, Any]] = []
    data: dict[str, str] = {}
    controls: list[ET.Element] = []
    relations: list[str] | None = None
    for el in _walk(root):
        line = lines.get(el)
        if el.tag == "Relations":  # the labels relations between regions may carry
            relations = [str(c.get("value")) for c in el if c.tag == "Relation" and c.get("value")]
        elif el.tag in OBJECT_KINDS:
            value, name = el.get("value", ""), el.get("name", "")
            if not value.startswith("$") or len(value) < 2 or not name:
                raise _error(line, el.tag, 'an object tag needs a name and value="$key"')
            attrs = {k: v for k, v in el.attrib.items() if k not in ("name", "value")}
            objs.append({"tag": el.tag, "name": name, "value": value})
            if attrs:  # zoom, layout, audioUrl, …: written back as they were
                objs[-1]["attrs"] = attrs
            data[value[1:]] = OBJECT_KINDS[el.tag]
            url = el.get("audioUrl", "")  # a dialogue's recording
            if url.startswith("$") and len(url) > 1:
                data[url[1:]] = "audio"
        elif el.tag in CONTROLS:
            controls.append(el)
        else:
            raise _error(line, el.tag, _unsupported(el.tag))
    by_name = {o["name"]: o for o in objs}
    fields, to_name, tags = [], {}, {}
    for el in controls:
        line = lines.get(el)
        target = el.get("toName", "")
        if target not in by_name:
            raise _error(
                line, el.tag, f"toName {target!r} names no object tag; objects: {list(by_name)}"
            )
    controls, audio = _audio_controls(controls, by_name)
    for el in controls:
        target = el.get("toName", "")
        fields.append(_field(el, by_name[target], lines.get(el)))
        to_name[el.get("name", "")] = target
        if el.tag in ("Rating", "ParagraphLabels"):
            tags[el.get("name", "")] = el.tag
    for target, found in audio.items():  # one segments field per audio object
        spec = _audio_field(target, found, by_name, lines)
        fields.append(spec)
        to_name[spec["name"]] = target
    if not fields:
        raise _error(lines.get(root), "View", "no control tag (Choices, RectangleLabels, …)")
    kept: dict[str, Any] = {"objects": objs, "to_name": to_name}
    if tags:
        kept["controls"] = tags
    if relations is not None:
        kept["relations"] = relations
    raw = {"fields": fields, "data": data, "labelstudio": kept}
    try:
        compile_schema(raw)
    except SchemaError as exc:
        index = next((d.get("index") for d in exc.details if "index" in d), None)
        el = controls[index] if isinstance(index, int) and index < len(controls) else root
        raise _error(lines.get(el), el.tag, exc.message) from None
    return raw


def _audio_controls(
    controls: list[ET.Element], by_name: dict[str, dict[str, Any]]
) -> tuple[list[ET.Element], dict[str, list[ET.Element]]]:
    """The controls, less those making audio regions (a ``<Labels>`` or a per-region
    ``<TextArea>`` on an audio object), which are given by audio object name."""
    rest: list[ET.Element] = []
    audio: dict[str, list[ET.Element]] = {}
    for el in controls:
        target = by_name[el.get("toName", "")]
        regions = el.tag == "Labels" or (el.tag == "TextArea" and el.get("perRegion") == "true")
        if target["tag"] in AUDIO_TAGS and regions:
            audio.setdefault(target["name"], []).append(el)
        else:
            rest.append(el)
    return rest, audio


def _audio_field(
    target: str,
    found: list[ET.Element],
    by_name: dict[str, dict[str, Any]],
    lines: dict[ET.Element, int],
) -> dict[str, Any]:
    """The segments field of an audio object's region controls (one ``<Labels>``, one
    per-region ``<TextArea>`` at most); the object keeps their names."""
    labels = [el for el in found if el.tag == "Labels"]
    texts = [el for el in found if el.tag == "TextArea"]
    for group in (labels, texts):
        if len(group) > 1:
            reason = f"a second <{group[1].tag}> for the regions of audio {target!r}"
            raise _error(lines.get(group[1]), group[1].tag, reason)
    given = [
        (el.get("name", ""), _options(el, "Label", lines.get(el)), el.get("required") == "true")
        for el in labels
    ]
    text = (texts[0].get("name", ""), texts[0].get("required") == "true") if texts else None
    spec, regions = region_field(given, text)
    by_name[target]["regions"] = regions
    return spec


def _unsupported(tag: str) -> str:
    known = sorted(CONTROLS | set(OBJECT_KINDS) | LAYOUT | {"Relations"})
    return f"<{tag}> has no labelfarm field type; tags read: {', '.join(known)}"


def _options(el: ET.Element, child: str, line: int | None) -> list[str]:
    found = [c.get("alias") or c.get("value") for c in el if c.tag == child]
    if not found or any(not v for v in found):
        raise _error(line, el.tag, f"lists no <{child} value=...> (or one without a value)")
    return [str(v) for v in found]


def _number(el: ET.Element, key: str, default: float, line: int | None) -> float:
    """A number attribute of a tag (whole numbers as such), or a located error."""
    given = el.get(key)
    if given is None:
        return default
    try:
        v = float(given)
    except ValueError:
        raise _error(line, el.tag, f"{key}={given!r} is not a number") from None
    return int(v) if v.is_integer() else v


def _field(el: ET.Element, target: dict[str, str], line: int | None) -> dict[str, Any]:
    name = el.get("name", "")
    spec: dict[str, Any] = {"name": name, "required": el.get("required") == "true"}
    tag = el.tag
    if tag == "Choices":
        multiple = el.get("choice") == "multiple"
        spec.update(type="multichoice" if multiple else "choice")
        spec["options"] = _options(el, "Choice", line)
    elif tag == "TextArea":
        spec["type"] = "text"
        # one entry of several lines; else each entry is a line of the value
        if _number(el, "rows", 1, line) > 1 and el.get("maxSubmissions") == "1":
            spec["multiline"] = True
    elif tag == "Rating":
        spec.update(type="number", integer=True, min=1, max=int(_number(el, "maxRating", 5, line)))
    elif tag == "Number":
        spec["type"] = "number"
        for key in ("min", "max"):
            if el.get(key) is not None:
                spec[key] = _number(el, key, 0, line)
    else:
        spec.update(type=LABELLED[tag], labels=_options(el, "Label", line))
        if tag == "Labels" and target["tag"] not in _SPAN_OBJECTS:
            raise _error(
                line,
                tag,
                f"<Labels> on a <{target['tag']}> has no labelfarm field type (text spans and "
                "audio regions only)",
            )
        if tag == "ParagraphLabels" and target["tag"] != "Paragraphs":
            raise _error(line, tag, "<ParagraphLabels> label a <Paragraphs> (a dialogue)")
    return spec


# -- schema -> label config ---------------------------------------------------------------
_TAGS = {
    "spans": ("Labels", "Label"),
    "rectangle": ("RectangleLabels", "Label"),
    "bbox": ("RectangleLabels", "Label"),
    "polygon": ("PolygonLabels", "Label"),
    "keypoints": ("KeyPointLabels", "Label"),
}


def label_config_from_schema(schema: Schema | dict[str, Any]) -> str:
    """The label config of a schema: its object tags, then a control tag per field."""
    if not isinstance(schema, Schema):
        schema = compile_schema(schema)
    names = to_names(schema)
    objs = objects(schema)
    lines = ["<View>"]
    for o in objs:
        attrs = "".join(f" {k}={quoteattr(str(v))}" for k, v in (o.get("attrs") or {}).items())
        head = f"name={quoteattr(o['name'])} value={quoteattr(o['value'])}"
        lines.append(f"  <{o['tag']} {head}{attrs}/>")
    for f in schema.fields:
        if f.name not in names:
            raise SchemaError(
                f"field {f.name!r}: no object for it to label; give the schema a 'data' key "
                "of its kind (image, text, audio)",
                [{"field": f.name, "reason": "no object tag"}],
            )
        lines += _control(schema, f, names[f.name])
    relations = section(schema).get("relations")
    if relations is not None:
        lines.append("  <Relations>")
        lines += [f"    <Relation value={quoteattr(str(v))}/>" for v in relations]
        lines.append("  </Relations>")
    lines.append("</View>")
    return "\n".join(lines) + "\n"


def _control(schema: Schema, f: FieldType, target: str) -> list[str]:
    t = f.type_name
    head = f"name={quoteattr(f.name)} toName={quoteattr(target)}"
    if f.required:
        head += ' required="true"'
    if t in ("choice", "multichoice"):
        mode = "multiple" if t == "multichoice" else "single"
        out = [f'  <Choices {head} choice="{mode}">']
        out += [f"    <Choice value={quoteattr(o)}/>" for o in getattr(f, "options", [])]
        return [*out, "  </Choices>"]
    if t == "text":
        rows = ' rows="3" maxSubmissions="1"' if getattr(f, "multiline", False) else ""
        return [f"  <TextArea {head}{rows}/>"]
    if t == "number":
        if control_tag(schema, f) == "Rating":
            return [f'  <Rating {head} maxRating="{int(getattr(f, "max", None) or 5)}"/>']
        given = {k: getattr(f, k, None) for k in ("min", "max")}
        bounds = "".join(f' {k}="{v:g}"' for k, v in given.items() if v is not None)
        return [f"  <Number {head}{bounds}/>"]
    if t == "segments":
        return control_lines(schema, f, target)
    if t in _TAGS:
        tag, child = _TAGS[t]
        if control_tag(schema, f) == "ParagraphLabels":
            tag = "ParagraphLabels"
        out = [f"  <{tag} {head}>"]
        out += [f"    <{child} value={quoteattr(label)}/>" for label in getattr(f, "labels", [])]
        return [*out, f"  </{tag}>"]
    raise SchemaError(
        f"field {f.name!r}: a {t} field has no Label Studio control tag",
        [{"field": f.name, "reason": f"no control tag for {t}"}],
    )


@register_writer("labelstudio-config", "application/xml", extension="xml", context=True)
def write_label_config(records: Any, schema: Schema, ctx: ExportContext) -> Iterator[bytes]:
    """The project's label config (its items are not part of it)."""
    del records, ctx
    yield label_config_from_schema(schema).encode()
