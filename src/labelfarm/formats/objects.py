"""Image labels as format-neutral objects, and how they map onto a project's fields.

Image formats read their files into :class:`Parsed` items whose ``objects`` are plain
dicts ``{"kind": box | polygon | polyline | points | mask | tag, "label": ..., geometry,
"attributes"?, "group"?, "score"?, "meta"?}``. :func:`build_value` puts each object into the
schema field of its kind (the first one that lists its label) and validates the result;
:func:`value_objects` is the way back, for exporters. :func:`guess_schema` proposes a
schema that keeps everything a file holds.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from labelfarm.errors import InvalidInput
from labelfarm.formats.registry import ImportSource, ItemRecord, ReadResult, RowProblem
from labelfarm.schema import FieldError, FieldType, Schema

KINDS: dict[str, tuple[str, ...]] = {
    "box": ("rectangle", "bbox"),
    "polygon": ("polygon",),
    "polyline": ("polyline",),
    "points": ("keypoints",),
    "mask": ("mask",),
    "tag": ("tags", "multichoice", "choice"),
}
TYPE_KIND = {t: k for k, types in KINDS.items() for t in types}
FIELD_NAMES = {
    "box": ("boxes", "rectangle"),
    "polygon": ("polygons", "polygon"),
    "polyline": ("polylines", "polyline"),
    "points": ("points", "keypoints"),
    "mask": ("masks", "mask"),
    "tag": ("tags", "tags"),
}


@dataclass
class Parsed:
    """One item as a format read it, before it meets the project's schema."""

    where: str
    data: dict[str, Any]
    external_id: str | None = None
    media_path: Path | None = None
    objects: list[dict[str, Any]] | None = None  # None: not labelled; []: labelled, empty
    annotator: str = "import"
    problems: list[RowProblem] = field(default_factory=list)


@dataclass
class Scan:
    """What a format found in a file: declared labels and attributes, then the items."""

    items: Iterator[Parsed]
    labels: list[str] = field(default_factory=list)
    attributes: list[dict[str, Any]] = field(default_factory=list)
    label_meta: dict[str, dict[str, Any]] = field(default_factory=dict)


Scanner = Callable[[ImportSource], Scan]
Guesser = Callable[[ImportSource], dict[str, Any]]
_GUESSERS: dict[str, Guesser] = {}


def register_guesser(name: str) -> Callable[[Guesser], Guesser]:
    """Register ``fn(source) -> schema`` proposing a schema for files of format ``name``."""

    def deco(fn: Guesser) -> Guesser:
        _GUESSERS[name] = fn
        return fn

    return deco


def register_scanner(name: str) -> Callable[[Scanner], Scanner]:
    """Register an image format's scanner; its schema guess comes from the scan."""

    def deco(fn: Scanner) -> Scanner:
        _GUESSERS[name] = lambda source: guess_schema(fn(source))
        return fn

    return deco


def labels_of(f: FieldType) -> list[str]:
    return list(getattr(f, "labels", None) or getattr(f, "options", None) or [])


def _target(schema: Schema, kind: str, label: str) -> FieldType | None:
    fields = [f for f in schema.fields if TYPE_KIND.get(f.type_name) == kind]
    for f in fields:
        if label in labels_of(f):
            return f
    return fields[0] if fields else None


def build_value(schema: Schema, objects: Iterable[dict[str, Any]], where: str) -> Any:
    """The annotation value holding ``objects``, validated; or a list of located problems."""
    value: dict[str, Any] = {}
    problems: list[RowProblem] = []
    for obj in objects:
        kind = obj["kind"]
        f = _target(schema, kind, str(obj.get("label")))
        if f is None:
            problems.append(
                RowProblem(
                    where,
                    kind,
                    f"the schema has no field for {kind}s (of type {' or '.join(KINDS[kind])})",
                )
            )
            continue
        shape = {k: v for k, v in obj.items() if k != "kind" and v not in (None, {}, [])}
        if f.type_name == "bbox":
            if shape.get("rotation"):
                problems.append(
                    RowProblem(
                        where,
                        f.name,
                        "a bbox field cannot keep rotated boxes; use a field of type 'rectangle'",
                    )
                )
                continue
            shape = {k: shape[k] for k in ("x", "y", "w", "h", "label", "score") if k in shape}
        if f.type_name in ("choice", "multichoice"):
            value.setdefault(f.name, []).append(obj.get("label"))
        else:
            value.setdefault(f.name, []).append(shape)
    for f in schema.fields:
        if f.type_name == "choice" and f.name in value:
            chosen = value[f.name]
            if len(chosen) > 1:
                problems.append(
                    RowProblem(where, f.name, f"{len(chosen)} tags for a single-choice field")
                )
            value[f.name] = chosen[0]
    if problems:
        return problems
    try:
        return schema.validate(value)
    except FieldError as exc:
        return [RowProblem(where, exc.path, exc.reason)]


def value_objects(schema: Schema, value: dict[str, Any] | None) -> list[dict[str, Any]]:
    """The objects of an annotation value, field by field in schema order."""
    out: list[dict[str, Any]] = []
    if not value:
        return out
    for f in schema.fields:
        kind = TYPE_KIND.get(f.type_name)
        v = value.get(f.name)
        if kind is None or v is None:
            continue
        if f.type_name == "choice":
            out.append({"kind": "tag", "label": v})
        elif f.type_name == "multichoice":
            out.extend({"kind": "tag", "label": label} for label in v)
        else:
            out.extend({"kind": kind, **shape} for shape in v)
    return out


def schema_labels(schema: Schema, kinds: Iterable[str] | None = None) -> list[str]:
    """Every label of the schema's image fields (of ``kinds``), in order, once."""
    wanted = set(kinds) if kinds is not None else set(KINDS)
    seen: dict[str, None] = {}
    for f in schema.fields:
        if TYPE_KIND.get(f.type_name) in wanted:
            seen.update(dict.fromkeys(labels_of(f)))
    return list(seen)


def label_meta(schema: Schema) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for f in schema.fields:
        for label, meta in (getattr(f, "label_meta", None) or {}).items():
            out.setdefault(label, meta)
    return out


def label_ids(schema: Schema, labels: list[str], key: str, start: int) -> dict[str, int]:
    """Number labels as the import found them (``label_meta[label][key]``), then the rest
    from the next free number."""
    meta = label_meta(schema)
    ids: dict[str, int] = {}
    for label in labels:
        v = meta.get(label, {}).get(key)
        if isinstance(v, int) and not isinstance(v, bool) and v not in ids.values():
            ids[label] = v
    nxt = max([start - 1, *ids.values()]) + 1
    for label in labels:
        if label not in ids:
            ids[label] = nxt
            nxt += 1
    return ids


def read_parsed(source: ImportSource, scan: Scan) -> Iterator[ReadResult]:
    """Turn a scan into reader results: items with their imported annotation."""
    schema = source.schema
    for p in scan.items:
        if p.problems:
            yield p.where, p.problems
            continue
        problems = [RowProblem(p.where, f"data.{k}", r) for k, r in schema.validate_data(p.data)]
        rec = ItemRecord(data=p.data, external_id=p.external_id, media_path=p.media_path)
        if p.objects is not None:
            value = build_value(schema, p.objects, p.where)
            if isinstance(value, list):
                problems.extend(value)
            else:
                rec.annotations.append({"annotator": p.annotator, "value": value})
        yield p.where, problems or rec


def guess_schema(scan: Scan) -> dict[str, Any]:
    """A schema that keeps everything a scan holds: one field per kind of object found,
    each listing every label (declared or used), none of them required."""
    used: dict[str, dict[str, None]] = {}
    for p in scan.items:
        for obj in p.objects or []:
            used.setdefault(obj["kind"], {})[obj["label"]] = None
    if not used:
        used["box"] = {}
    fields = []
    for kind in KINDS:
        if kind not in used:
            continue
        labels = list(dict.fromkeys([*scan.labels, *used[kind]]))
        name, type_name = FIELD_NAMES[kind]
        spec: dict[str, Any] = {
            "name": name,
            "type": type_name,
            "labels": labels or ["object"],
            "required": False,
        }
        if scan.attributes:
            spec["attributes"] = scan.attributes
        meta = {k: v for k, v in scan.label_meta.items() if k in labels}
        if meta:
            spec["label_meta"] = meta
        fields.append(spec)
    return {"fields": fields}


def suggest_schema(fmt: str, path: Path, *, scratch: Path | None = None) -> dict[str, Any]:
    """The schema :func:`guess_schema` proposes for a file or folder in format ``fmt``."""
    from labelfarm.formats.registry import load_builtin
    from labelfarm.schema import Schema as _Schema

    load_builtin()
    if fmt not in _GUESSERS:
        raise InvalidInput(
            f"no schema guesser for format {fmt!r}; valid: {sorted(_GUESSERS)}",
            [{"field": "format", "reason": f"unknown format {fmt!r}"}],
        )
    placeholder = _Schema({"fields": [{"name": "x", "type": "text", "required": False}]})
    options: dict[str, Any] = {"base_dir": path if path.is_dir() else path.parent}
    if scratch is not None:
        options["scratch"] = scratch
    return _GUESSERS[fmt](ImportSource(path, path.name, placeholder, options))
