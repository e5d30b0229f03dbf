"""Long id lists and row lists, cut into pieces a statement can take."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import TypeVar

T = TypeVar("T")

CHUNK = 500  # ids per IN (...) list


def chunks(seq: Sequence[T], size: int = CHUNK) -> Iterator[Sequence[T]]:
    """``seq`` in consecutive pieces of at most ``size`` (ids per IN list, rows per INSERT)."""
    for start in range(0, len(seq), size):
        yield seq[start : start + size]
