"""Image labels as format-neutral objects, and how they map onto a project's fields.

Image formats read their files into :class:`Parsed` items whose ``objects`` are plain
dicts ``{"kind": box | polygon | polyline | points | mask | tag, "label": ..., geometry,
"attributes"?, "group"?, "score"?, "meta"?, "at"?}`` (``at``: the line or element it was
read from, where its problems are reported). :func:`build_value` puts each object into the
schema field of its kind (the first one that lists its label) and validates the result;
:func:`value_objects` is the way back, for exporters. Numbers a format converts on import
keep the text they were read from (:func:`keep_text`), which an export in that format
writes back while the shape is unchanged (:func:`text_as_read`). :func:`guess_schema`
proposes a schema that keeps everything a file holds, and refuses a file it cannot read.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

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
    """The annotation value holding ``objects``, validated; or a list of located problems.
    A problem is located at its object's ``at`` (the line or element it was read from)
    when the object has one, else at ``where``."""
    value: dict[str, Any] = {}
    problems: list[RowProblem] = []
    located: dict[tuple[str, int], str] = {}  # (field, index in the field) → where read
    for obj in objects:
        kind, at = obj["kind"], obj.get("at") or where
        f = _target(schema, kind, str(obj.get("label")))
        if f is None:
            reason = f"the schema has no field for {kind}s (of type {' or '.join(KINDS[kind])})"
            problems.append(RowProblem(at, kind, reason))
            continue
        shape = {
            k: v for k, v in obj.items() if k not in ("kind", "at") and v not in (None, {}, [])
        }
        if f.type_name == "bbox" and shape.get("rotation"):
            reason = "a bbox field cannot keep rotated boxes; use a field of type 'rectangle'"
            problems.append(RowProblem(at, f.name, reason))
            continue
        entries = value.setdefault(f.name, [])
        located[(f.name, len(entries))] = at
        entries.append(obj.get("label") if f.type_name in ("choice", "multichoice") else shape)
    for f in schema.fields:
        if f.type_name == "choice" and f.name in value:
            chosen = value[f.name]
            if len(chosen) > 1:
                at = located.get((f.name, 1), where)
                problems.append(
                    RowProblem(at, f.name, f"{len(chosen)} tags for a single-choice field")
                )
            value[f.name] = chosen[0]
    if problems:
        return problems
    try:
        return schema.validate(value)
    except FieldError as exc:
        m = re.match(r"(\w+)\[(\d+)\]", exc.path)
        at = located.get((m.group(1), int(m.group(2))), where) if m else where
        return [RowProblem(at, exc.path, exc.reason)]


def value_objects(schema: Schema, value: dict[str, Any] | None) -> list[dict[str, Any]]:
    """The objects of an annotation value, field by field in schema order. What a format
    kept of the text it read a shape from (:func:`keep_text`) is the object's ``as_read``,
    no longer part of its ``meta``."""
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
            out.extend(_object(kind, shape) for shape in v)
    return out


AS_READ = "as_read"
_GEOMETRY = ("x", "y", "w", "h", "rotation", "points")


def _object(kind: str, shape: dict[str, Any]) -> dict[str, Any]:
    obj = {"kind": kind, **shape}
    meta = shape.get("meta")
    if isinstance(meta, dict) and AS_READ in meta:
        obj[AS_READ] = meta[AS_READ]
        obj["meta"] = {k: v for k, v in meta.items() if k != AS_READ} or None
    return obj


def _fingerprint(obj: dict[str, Any]) -> str:
    """A digest of a shape's geometry, numbers compared as floats (0 rotation as none)."""

    def norm(v: Any) -> Any:
        if isinstance(v, list):
            return [norm(x) for x in v]
        return float(v) if isinstance(v, int | float) and not isinstance(v, bool) else v

    geometry = [norm(obj.get(k)) if k != "rotation" or obj.get(k) else None for k in _GEOMETRY]
    return hashlib.blake2b(orjson.dumps(geometry), digest_size=8).hexdigest()


def keep_text(obj: dict[str, Any], fmt: str, text: Any) -> dict[str, Any]:
    """Remember in ``obj``'s meta the text format ``fmt`` read its geometry from, so that an
    export in that format writes the same decimals while the shape is unchanged (numbers
    that were converted on import, to pixels or degrees, would not come back exactly)."""
    meta = dict(obj.get("meta") or {})
    meta[AS_READ] = {"format": fmt, "text": text, "of": _fingerprint(obj)}
    obj["meta"] = meta
    return obj


def text_as_read(obj: dict[str, Any], fmt: str) -> Any:
    """The text :func:`keep_text` kept for ``obj`` in format ``fmt``, or None when there is
    none or the shape has changed since (an export then writes the shape's own numbers)."""
    memo = obj.get(AS_READ)
    if isinstance(memo, dict) and memo.get("format") == fmt and memo.get("of") == _fingerprint(obj):
        return memo.get("text")
    return None


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
    problems: list[RowProblem] = []
    for p in scan.items:
        problems.extend(p.problems[: max(0, 100 - len(problems))])
        for obj in p.objects or []:
            used.setdefault(obj["kind"], {})[obj["label"]] = None
    if problems:
        raise_unreadable(problems)
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


def raise_unreadable(problems: list[RowProblem], filename: str = "") -> None:
    """Refuse to guess a schema from a file that cannot be read, saying where and why
    (locations that do not name a file are given ``filename``)."""
    if filename:
        problems = [
            p
            if p.location.startswith(filename)
            else RowProblem(f"{filename} {p.location}", p.field, p.reason)
            for p in problems
        ]
    first = problems[0]
    raise InvalidInput(
        f"cannot propose a schema: {first.location}: {first.reason}"
        + (f" (and {len(problems) - 1} more problem(s))" if len(problems) > 1 else ""),
        [p.to_dict() for p in problems],
    )


def suggest_schema(
    fmt: str, path: Path, *, scratch: Path | None = None, filename: str | None = None
) -> dict[str, Any]:
    """The schema :func:`guess_schema` proposes for a file or folder in format ``fmt``
    (named ``filename`` by the user). A file that cannot be read is an InvalidInput saying
    where, never a placeholder schema."""
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
    try:
        proposed = _GUESSERS[fmt](ImportSource(path, filename or path.name, placeholder, options))
    except InvalidInput:
        raise
    except (ValueError, OSError) as exc:
        raise InvalidInput(
            f"cannot propose a schema: {exc}",
            [{"location": filename or path.name, "reason": str(exc)}],
        ) from None
    _Schema(proposed)  # a proposal is a valid schema, or the guesser is at fault
    return proposed
