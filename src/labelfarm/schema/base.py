"""The field-type interface and its registry.

A field type is one class in one module. It parses its own spec (options, labels, bounds),
and for values of the field it can: validate, measure similarity of two values (for
agreement), aggregate several values with annotator weights, score a value against gold,
and render a value as a flat cell for tabular exports.

Types are registered by name; a schema naming an unknown type fails with the list of the
valid names.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, ClassVar

from labelfarm.errors import SchemaError


class FieldError(ValueError):
    """A value that does not fit its field. ``path`` locates it inside the value."""

    def __init__(self, reason: str, path: str = "") -> None:
        super().__init__(reason)
        self.reason = reason
        self.path = path


_REGISTRY: dict[str, type[FieldType]] = {}


def register(cls: type[FieldType]) -> type[FieldType]:
    """Class decorator: make a field type available under ``cls.type_name``."""
    if cls.type_name in _REGISTRY:
        raise RuntimeError(f"field type {cls.type_name!r} registered twice")
    _REGISTRY[cls.type_name] = cls
    return cls


def field_type(name: str) -> type[FieldType]:
    try:
        return _REGISTRY[name]
    except KeyError:
        valid = ", ".join(sorted(_REGISTRY))
        raise SchemaError(
            f"unknown field type {name!r}; valid types: {valid}",
            [{"field": "type", "reason": f"unknown type {name!r}", "valid": sorted(_REGISTRY)}],
        ) from None


def field_type_names() -> list[str]:
    return sorted(_REGISTRY)


class FieldType:
    """Base class of field types. Subclasses set ``type_name`` and ``spec_keys``."""

    type_name: ClassVar[str] = ""
    spec_keys: ClassVar[frozenset[str]] = frozenset()
    _common_keys: ClassVar[frozenset[str]] = frozenset(
        {"name", "type", "required", "display", "help", "hotkeys"}
    )

    def __init__(self, spec: dict[str, Any]) -> None:
        self.name: str = spec["name"]
        self.required: bool = bool(spec.get("required", True))
        self.display: dict[str, Any] = spec.get("display") or {}
        self.help: Any = spec.get("help", "")
        unknown = set(spec) - self.spec_keys - self._common_keys
        if unknown:
            valid = sorted(self.spec_keys | self._common_keys)
            raise SchemaError(
                f"field {self.name!r}: unknown key(s) {sorted(unknown)}; valid keys: {valid}",
                [{"field": self.name, "reason": f"unknown key {k!r}"} for k in sorted(unknown)],
            )
        if not isinstance(self.display, dict):
            raise SchemaError(f"field {self.name!r}: 'display' must map a language to names")

    def spec_error(self, reason: str) -> SchemaError:
        return SchemaError(
            f"field {self.name!r}: {reason}", [{"field": self.name, "reason": reason}]
        )

    # -- the interface ------------------------------------------------------------------
    def validate(self, value: Any) -> Any:
        """Return the canonical form of ``value`` or raise :class:`FieldError`."""
        raise NotImplementedError

    def similarity(self, a: Any, b: Any) -> float:
        """Similarity in [0, 1] of two valid values."""
        return 1.0 if a == b else 0.0

    def aggregate(
        self, values: Sequence[Any], weights: Sequence[float] | None = None
    ) -> tuple[Any, float]:
        """Combine valid values (one per annotator) into one value and a confidence in [0, 1]."""
        raise NotImplementedError

    def score(self, value: Any, gold: Any) -> float:
        """Score in [0, 1] of a value against the gold answer."""
        return self.similarity(value, gold)

    def to_cell(self, value: Any) -> str:
        """A flat text rendering for CSV exports."""
        return "" if value is None else str(value)

    def to_dict(self) -> dict[str, Any]:
        """The client-side description of the field (for the annotate page)."""
        return {
            "name": self.name,
            "type": self.type_name,
            "required": self.required,
            "display": self.display,
            "help": self.help,
        }


def weighted_mode(values: Sequence[Any], weights: Sequence[float] | None) -> tuple[Any, float]:
    """The value with the most weight, and its share of the total weight.

    Ties go to the value seen first, so the result does not depend on hashing order.
    Values are compared by their repr so that lists and dicts can be counted.
    """
    if not values:
        return None, 0.0
    w = list(weights) if weights is not None else [1.0] * len(values)
    totals: dict[str, float] = {}
    first: dict[str, Any] = {}
    for value, weight in zip(values, w, strict=True):
        key = repr(value)
        totals[key] = totals.get(key, 0.0) + weight
        first.setdefault(key, value)
    best = max(totals, key=lambda k: totals[k])
    total = sum(totals.values())
    return first[best], (totals[best] / total if total > 0 else 0.0)


def weighted_medoid(
    values: Sequence[Any],
    weights: Sequence[float] | None,
    similarity: Callable[[Any, Any], float],
) -> tuple[Any, float]:
    """The value that agrees best with all of them (weighted mean similarity), and that mean.

    A single value comes back with confidence 0.5: one annotator agrees with itself.
    Ties go to the value seen first.
    """
    if not values:
        return None, 0.0
    if len(values) == 1:
        return values[0], 0.5
    w = list(weights) if weights is not None else [1.0] * len(values)
    total = sum(w) or 1.0
    support = [sum(w[j] * similarity(a, b) for j, b in enumerate(values)) / total for a in values]
    best = max(range(len(values)), key=support.__getitem__)
    return values[best], support[best]
