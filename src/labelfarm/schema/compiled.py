"""A parsed, validated schema that checks annotation values and item data."""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Any

import orjson
import yaml

from labelfarm.errors import SchemaError
from labelfarm.schema.base import FieldError, FieldType, field_type

DATA_KINDS = ("text", "image", "audio", "url", "number", "json")
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_\-]{0,63}$")
# labelstudio: what a Label Studio label config said beyond the fields (its object tags,
# which object each field labels), kept for a round trip (labelfarm.formats.labelstudio_schema)
_TOP_KEYS = frozenset({"fields", "data", "languages", "version", "labelstudio"})


def parse_schema_text(source: str) -> dict[str, Any]:
    """Parse YAML or JSON schema text; errors carry the line they are on."""
    try:
        node = yaml.compose(source)
        data = yaml.safe_load(source)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else None
        problem = getattr(exc, "problem", None) or str(exc)
        raise SchemaError(
            f"schema is not valid YAML: {problem}" + (f" (line {line})" if line else ""),
            [{"line": line, "reason": problem}],
        ) from None
    if not isinstance(data, dict):
        raise SchemaError("a schema is a mapping with a 'fields' list", [{"line": 1}])
    try:
        return Schema(data).raw
    except SchemaError as exc:
        _add_lines(exc, node)
        raise


def _entry(mapping: Any, key: str) -> tuple[Any, Any] | None:
    """The (key node, value node) of ``key`` in a YAML mapping node, if it is there."""
    if isinstance(mapping, yaml.MappingNode):
        for k, v in mapping.value:
            if isinstance(k, yaml.ScalarNode) and k.value == key:
                return k, v
    return None


def _line_of(node: Any, detail: dict[str, Any]) -> int | None:
    """The line a schema error detail is about: the key it names (``type``, ``options``,
    ``data.image``...) inside the field it names (``index``), else that field, else the
    top-level key it names, else the ``fields`` list."""
    path = str(detail.get("field") or "")
    head, _, rest = re.split(r"(?=\[)", path, maxsplit=1)[0].partition(".")
    fields = _entry(node, "fields")
    index = detail.get("index")
    listed = fields[1].value if fields and isinstance(fields[1], yaml.SequenceNode) else []
    if isinstance(index, int) and 0 <= index < len(listed):
        named = _entry(listed[index], head) if head else None
        return (named[0] if named else listed[index]).start_mark.line + 1
    top = _entry(node, head) if head else None
    if top is not None:
        inner = _entry(top[1], rest) if rest else None
        return (inner[0] if inner else top[0]).start_mark.line + 1
    return fields[0].start_mark.line + 1 if fields is not None else None


def _add_lines(exc: SchemaError, node: Any) -> None:
    """Give each error detail the line of the schema text it is about."""
    for detail in exc.details:
        line = _line_of(node, detail)
        if line is not None:
            detail.setdefault("line", line)


class Schema:
    """A compiled schema. Build with :func:`compile_schema` to share the compiled form."""

    def __init__(self, raw: dict[str, Any]) -> None:
        unknown = set(raw) - _TOP_KEYS
        if unknown:
            raise SchemaError(
                f"unknown schema key(s) {sorted(unknown)}; valid: {sorted(_TOP_KEYS)}",
                [{"field": k, "reason": "unknown key"} for k in sorted(unknown)],
            )
        fields = raw.get("fields")
        if not isinstance(fields, list) or not fields:
            raise SchemaError("'fields' must be a non-empty list", [{"field": "fields"}])
        self.fields: list[FieldType] = []
        seen: set[str] = set()
        for i, spec in enumerate(fields):
            self.fields.append(self._field(i, spec, seen))
        self.by_name = {f.name: f for f in self.fields}
        self.data = self._data_spec(raw.get("data") or {})
        self.languages = list(raw.get("languages") or [])
        _check_labelstudio(raw.get("labelstudio"), self.by_name)
        self.raw = raw

    @staticmethod
    def _field(i: int, spec: Any, seen: set[str]) -> FieldType:
        def fail(reason: str) -> SchemaError:
            return SchemaError(f"fields[{i}]: {reason}", [{"index": i, "reason": reason}])

        if not isinstance(spec, dict):
            raise fail("a field is a mapping with 'name' and 'type'")
        name = spec.get("name")
        if not isinstance(name, str) or not _NAME.match(name):
            raise fail(f"'name' must be a letter or _ then letters, digits, _ or -; got {name!r}")
        if name in seen:
            raise fail(f"field name {name!r} is used twice")
        seen.add(name)
        if "type" not in spec:
            raise fail(f"field {name!r} has no 'type'")
        try:
            return field_type(str(spec["type"]))(spec)
        except SchemaError as exc:
            for d in exc.details:
                d.setdefault("index", i)
            raise SchemaError(f"fields[{i}]: {exc.message}", exc.details) from None

    @staticmethod
    def _data_spec(spec: Any) -> dict[str, str]:
        if not isinstance(spec, dict):
            raise SchemaError("'data' maps item data keys to kinds", [{"field": "data"}])
        for key, kind in spec.items():
            if kind not in DATA_KINDS:
                raise SchemaError(
                    f"data key {key!r}: unknown kind {kind!r}; valid: {list(DATA_KINDS)}",
                    [{"field": f"data.{key}", "reason": f"unknown kind {kind!r}"}],
                )
        return dict(spec)

    # -- checking values ----------------------------------------------------------------
    def validate(self, value: Any) -> dict[str, Any]:
        """Validate one annotation value; raise FieldError naming the field."""
        if not isinstance(value, dict):
            raise FieldError(f"an annotation value maps field names to values, got {value!r}")
        unknown = value.keys() - self.by_name.keys()
        if unknown:
            name = sorted(unknown)[0]
            raise FieldError(f"unknown field; fields are {list(self.by_name)}", name)
        out: dict[str, Any] = {}
        for f in self.fields:
            if f.name not in value or value[f.name] is None:
                if f.required:
                    raise FieldError("required field is missing", f.name)
                continue
            try:
                out[f.name] = f.validate(value[f.name])
            except FieldError as exc:
                raise FieldError(exc.reason, f.name + exc.path) from None
        return out

    def validate_data(self, data: Any) -> list[tuple[str, str]]:
        """Problems of one item's data against the ``data`` spec, as (key, reason) pairs."""
        if not isinstance(data, dict):
            return [("data", f"item data must be an object, got {type(data).__name__}")]
        if not self.data:
            return []
        problems = []
        for key in data.keys() - self.data.keys():
            problems.append((key, f"unknown field; the schema's data keys are {list(self.data)}"))
        for key, kind in self.data.items():
            if key not in data or data[key] is None:
                problems.append((key, "missing"))
                continue
            v = data[key]
            if kind == "number":
                if isinstance(v, bool) or not isinstance(v, int | float):
                    problems.append((key, f"expected a number, got {type(v).__name__}"))
            elif kind != "json" and not isinstance(v, str):
                problems.append((key, f"expected a string ({kind}), got {type(v).__name__}"))
        return problems

    def to_dict(self) -> dict[str, Any]:
        return {
            "fields": [f.to_dict() for f in self.fields],
            "data": self.data,
            "languages": self.languages,
        }


_LABELSTUDIO_KEYS = frozenset({"objects", "to_name", "controls", "relations"})


def _check_labelstudio(section: Any, fields: dict[str, FieldType]) -> None:
    """The ``labelstudio`` section: ``objects`` (tag, name, value), ``to_name`` and
    ``controls`` naming fields of the schema, ``relations`` (relation labels)."""
    if section is None:
        return

    def fail(reason: str) -> SchemaError:
        return SchemaError(f"labelstudio: {reason}", [{"field": "labelstudio", "reason": reason}])

    if not isinstance(section, dict) or set(section) - _LABELSTUDIO_KEYS:
        raise fail(f"an object with keys among {sorted(_LABELSTUDIO_KEYS)}")
    relations = section.get("relations") or []
    if not isinstance(relations, list) or not all(isinstance(r, str) for r in relations):
        raise fail("'relations' is a list of relation labels")
    objects = section.get("objects") or []
    if not isinstance(objects, list) or not all(
        isinstance(o, dict) and all(isinstance(o.get(k), str) for k in ("tag", "name", "value"))
        for o in objects
    ):
        raise fail("'objects' is a list of {tag, name, value}")
    for key in ("to_name", "controls"):
        found = section.get(key) or {}
        if not isinstance(found, dict) or not all(isinstance(v, str) for v in found.values()):
            raise fail(f"'{key}' maps field names to names")
        unknown = sorted(set(found) - set(fields))
        if unknown:
            raise fail(f"'{key}' names no field {unknown}")


@lru_cache(maxsize=256)
def _compile(text: str) -> Schema:
    return Schema(orjson.loads(text))


def compile_schema(raw: dict[str, Any] | str) -> Schema:
    """The compiled schema for ``raw`` (a dict or its JSON text), cached by content."""
    text = raw if isinstance(raw, str) else orjson.dumps(raw, option=orjson.OPT_SORT_KEYS).decode()
    return _compile(text)
