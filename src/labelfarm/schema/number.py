"""``number``: a number, optionally bounded and whole."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, ClassVar

from labelfarm.schema.base import FieldError, FieldType, register


@register
class Number(FieldType):
    type_name = "number"
    spec_keys: ClassVar[frozenset[str]] = frozenset({"min", "max", "integer"})

    def __init__(self, spec: dict[str, Any]) -> None:
        super().__init__(spec)
        self.min = spec.get("min")
        self.max = spec.get("max")
        self.integer = bool(spec.get("integer", False))
        for key in ("min", "max"):
            bound = spec.get(key)
            if bound is not None and (
                not isinstance(bound, int | float) or isinstance(bound, bool)
            ):
                raise self.spec_error(f"'{key}' must be a number")
        if self.min is not None and self.max is not None and self.min > self.max:
            raise self.spec_error("'min' is greater than 'max'")

    def validate(self, value: Any) -> Any:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise FieldError(f"expected a number, got {type(value).__name__}")
        if not math.isfinite(value):
            raise FieldError("expected a finite number")
        if self.integer:
            if value != int(value):
                raise FieldError(f"expected a whole number, got {value}")
            value = int(value)
        if self.min is not None and value < self.min:
            raise FieldError(f"{value} is below the minimum {self.min}")
        if self.max is not None and value > self.max:
            raise FieldError(f"{value} is above the maximum {self.max}")
        return value

    def _scale(self, a: float, b: float) -> float:
        if self.min is not None and self.max is not None and self.max > self.min:
            return float(self.max - self.min)
        return max(abs(a), abs(b), 1.0)

    def similarity(self, a: Any, b: Any) -> float:
        """1 − |a − b| / scale, where scale is the field's range or the larger magnitude."""
        return max(0.0, 1.0 - abs(a - b) / self._scale(a, b))

    def aggregate(
        self, values: Sequence[Any], weights: Sequence[float] | None = None
    ) -> tuple[Any, float]:
        """The weighted median; confidence is the mean similarity to it."""
        if not values:
            return None, 0.0
        w = list(weights) if weights is not None else [1.0] * len(values)
        pairs = sorted(zip(values, w, strict=True))
        half, acc, median = sum(w) / 2.0, 0.0, pairs[-1][0]
        for v, wi in pairs:
            acc += wi
            if acc >= half:
                median = v
                break
        conf = sum(self.similarity(v, median) for v in values) / len(values)
        return median, conf
