"""``choice``: exactly one of a list of options."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

from labelfarm.schema.base import FieldError, FieldType, register, weighted_mode


def parse_options(field: FieldType, spec: dict[str, Any], key: str = "options") -> list[str]:
    options = spec.get(key)
    if not isinstance(options, list) or not options:
        raise field.spec_error(f"'{key}' must be a non-empty list of names")
    names = []
    for opt in options:
        if not isinstance(opt, str | int) or isinstance(opt, bool) or str(opt).strip() == "":
            raise field.spec_error(f"'{key}' entries must be non-empty names, got {opt!r}")
        names.append(str(opt))
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise field.spec_error(f"'{key}' has duplicates: {dupes}")
    return names


@register
class Choice(FieldType):
    type_name = "choice"
    spec_keys: ClassVar[frozenset[str]] = frozenset({"options"})

    def __init__(self, spec: dict[str, Any]) -> None:
        super().__init__(spec)
        self.options = parse_options(self, spec)
        self._valid = frozenset(self.options)

    def validate(self, value: Any) -> Any:
        if not isinstance(value, str):
            raise FieldError(f"expected one option name (a string), got {type(value).__name__}")
        if value not in self._valid:
            raise FieldError(f"{value!r} is not an option; valid: {self.options}")
        return value

    def aggregate(
        self, values: Sequence[Any], weights: Sequence[float] | None = None
    ) -> tuple[Any, float]:
        return weighted_mode(values, weights)

    def to_dict(self) -> dict[str, Any]:
        return {**super().to_dict(), "options": self.options}
