"""``text``: free text (a transcription, a note, a corrected caption)."""

from __future__ import annotations

import difflib
import unicodedata
from collections.abc import Sequence
from typing import Any, ClassVar

from labelfarm.schema.base import FieldError, FieldType, register, weighted_medoid


def normalise(text: str) -> str:
    """NFC, collapsed white space, case-folded: the form texts are compared in."""
    return " ".join(unicodedata.normalize("NFC", text).casefold().split())


@register
class Text(FieldType):
    type_name = "text"
    spec_keys: ClassVar[frozenset[str]] = frozenset({"max_length", "multiline"})

    def __init__(self, spec: dict[str, Any]) -> None:
        super().__init__(spec)
        self.max_length = spec.get("max_length", 10_000)
        self.multiline = bool(spec.get("multiline", False))
        if not isinstance(self.max_length, int) or self.max_length < 1:
            raise self.spec_error("'max_length' must be a positive whole number")

    def validate(self, value: Any) -> Any:
        if not isinstance(value, str):
            raise FieldError(f"expected text, got {type(value).__name__}")
        value = unicodedata.normalize("NFC", value)
        if len(value) > self.max_length:
            raise FieldError(f"text is {len(value)} characters; at most {self.max_length}")
        if self.required and not value.strip():
            raise FieldError("text is empty")
        return value

    def similarity(self, a: Any, b: Any) -> float:
        """1 − normalised edit distance, approximated by difflib's ratio on normalised text."""
        na, nb = normalise(a), normalise(b)
        if na == nb:
            return 1.0
        return difflib.SequenceMatcher(None, na, nb, autojunk=False).ratio()

    def aggregate(
        self, values: Sequence[Any], weights: Sequence[float] | None = None
    ) -> tuple[Any, float]:
        """The weighted medoid: the text most similar to all the others."""
        return weighted_medoid(values, weights, self.similarity)

    def to_dict(self) -> dict[str, Any]:
        return {**super().to_dict(), "max_length": self.max_length, "multiline": self.multiline}
