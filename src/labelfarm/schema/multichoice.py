"""``multichoice``: any subset of a list of options, kept in the order chosen (another tool's
order survives a round trip; agreement and aggregation do not depend on it)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

from labelfarm.schema.base import FieldError, FieldType, register
from labelfarm.schema.choice import parse_options


@register
class MultiChoice(FieldType):
    type_name = "multichoice"
    spec_keys: ClassVar[frozenset[str]] = frozenset({"options", "min", "max"})

    def __init__(self, spec: dict[str, Any]) -> None:
        super().__init__(spec)
        self.options = parse_options(self, spec)
        self._order = {name: i for i, name in enumerate(self.options)}
        self.min = spec.get("min", 0)
        self.max = spec.get("max", len(self.options))
        if not (isinstance(self.min, int) and isinstance(self.max, int)) or not (
            0 <= self.min <= self.max
        ):
            raise self.spec_error("'min' and 'max' must be whole numbers with 0 <= min <= max")

    def validate(self, value: Any) -> Any:
        if not isinstance(value, list):
            raise FieldError(f"expected a list of option names, got {type(value).__name__}")
        for i, v in enumerate(value):
            if not isinstance(v, str) or v not in self._order:
                raise FieldError(f"{v!r} is not an option; valid: {self.options}", f"[{i}]")
        chosen = list(dict.fromkeys(value))
        if len(chosen) != len(value):
            raise FieldError("an option is chosen more than once")
        if not self.min <= len(chosen) <= self.max:
            raise FieldError(f"choose between {self.min} and {self.max} options, got {len(chosen)}")
        return chosen

    def similarity(self, a: Any, b: Any) -> float:
        """Jaccard similarity; two empty choices agree."""
        sa, sb = set(a), set(b)
        union = sa | sb
        return 1.0 if not union else len(sa & sb) / len(union)

    def score(self, value: Any, gold: Any) -> float:
        """Per-option accuracy: the share of options decided the same way as gold."""
        sv, sg = set(value), set(gold)
        return sum((o in sv) == (o in sg) for o in self.options) / len(self.options)

    def aggregate(
        self, values: Sequence[Any], weights: Sequence[float] | None = None
    ) -> tuple[Any, float]:
        """Per option, a weighted vote; confidence is the mean margin of the votes."""
        if not values:
            return None, 0.0
        w = list(weights) if weights is not None else [1.0] * len(values)
        total = sum(w) or 1.0
        chosen, confidences = [], []
        for option in self.options:
            share = sum(wi for v, wi in zip(values, w, strict=True) if option in v) / total
            if share > 0.5:
                chosen.append(option)
            confidences.append(max(share, 1.0 - share))
        return chosen, sum(confidences) / len(confidences)

    def to_cell(self, value: Any) -> str:
        return "|".join(value) if value else ""

    def to_dict(self) -> dict[str, Any]:
        return {**super().to_dict(), "options": self.options, "min": self.min, "max": self.max}
