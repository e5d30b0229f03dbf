"""JSON encoding and times as text, shared by every layer (orjson, compact, UTF-8)."""

from __future__ import annotations

import datetime as dt
from typing import Any

import orjson


def dumps(value: Any) -> str:
    return orjson.dumps(value).decode()


def loads(text: str | bytes) -> Any:
    return orjson.loads(text)


def iso(ts: float | None) -> str | None:
    """Epoch seconds as an ISO-8601 UTC timestamp."""
    if ts is None:
        return None
    return dt.datetime.fromtimestamp(ts, dt.UTC).isoformat(timespec="milliseconds")


def parse_time(value: Any) -> float:
    """An ISO-8601 timestamp (or epoch seconds) as epoch seconds; naive times are UTC."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    if not isinstance(value, str):
        raise ValueError(f"expected an ISO-8601 time, got {value!r}")
    parsed = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=dt.UTC)
    return parsed.timestamp()
