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
_TOP_KEYS = frozenset({"fields", "data", "languages", "version"})


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


def _add_lines(exc: SchemaError, node: Any) -> None:
    """Point each error detail that names a field index at that field's line."""
    fields_node = None
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            if key.value == "fields":
                fields_node = value
    for detail in exc.details:
        index = detail.get("index")
        if (
            isinstance(index, int)
            and isinstance(fields_node, yaml.SequenceNode)
            and index < len(fields_node.value)
        ):
            detail["line"] = fields_node.value[index].start_mark.line + 1
        elif fields_node is not None and "line" not in detail:
            detail["line"] = fields_node.start_mark.line + 1


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


@lru_cache(maxsize=256)
def _compile(text: str) -> Schema:
    return Schema(orjson.loads(text))


def compile_schema(raw: dict[str, Any] | str) -> Schema:
    """The compiled schema for ``raw`` (a dict or its JSON text), cached by content."""
    text = raw if isinstance(raw, str) else orjson.dumps(raw, option=orjson.OPT_SORT_KEYS).decode()
    return _compile(text)
