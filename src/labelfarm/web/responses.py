"""JSON responses rendered with orjson, bypassing FastAPI's generic encoder on hot paths."""

from __future__ import annotations

from typing import Any

import orjson
from fastapi.responses import Response


class JSON(Response):
    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        # SQLAlchemy row keys are a str subclass, which orjson encodes only with this option
        return orjson.dumps(content, option=orjson.OPT_NON_STR_KEYS)


def ok(content: Any, status_code: int = 200) -> JSON:
    return JSON(content, status_code=status_code)
