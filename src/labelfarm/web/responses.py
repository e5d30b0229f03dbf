"""JSON responses rendered with orjson, and how routes document what they answer.

Routes return :class:`JSON` themselves, so FastAPI neither validates nor serializes an
answer: the hot path pays nothing for its documentation. What a route answers is declared
once, in its decorator, with :func:`documented`: the response model of its success status
(:mod:`labelfarm.web.models`) and the one error body shape at each error status it can
return. Tests check the served answers against that document (``tests/test_openapi.py``).
"""

from __future__ import annotations

from typing import Any

import orjson
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel

from labelfarm.web.models.common import ErrorBody


class JSON(JSONResponse):
    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        # SQLAlchemy row keys are a str subclass, which orjson encodes only with this option
        return orjson.dumps(content, option=orjson.OPT_NON_STR_KEYS)


def ok(content: Any, status_code: int = 200) -> JSON:
    return JSON(content, status_code=status_code)


#: What each error status means, as the document says it; the body is :class:`ErrorBody`.
ERRORS: dict[int, str] = {
    401: "Not signed in: no, a wrong or an expired token or session (`not_authenticated`)",
    403: "Signed in but not allowed, or a wrong CSRF token or media signature (`forbidden`)",
    404: "No such resource, or one in a workspace the caller is not a member of (`not_found`)",
    409: "Conflicts with what exists, e.g. a name taken (`conflict`)",
    413: "The request body is larger than the server accepts (`too_large`)",
    422: "The request is not valid; `details` locates each problem (`invalid_input`, ...)",
    429: "Too many attempts; try again after `Retry-After` seconds (`too_many_requests`)",
    502: "A server labelfarm called (a model server) failed or answered badly; the message "
    "names it and what was wrong (`model_server_failed`)",
    503: "Too much work of this kind in hand; try again after `Retry-After` seconds (`busy`)",
}
_HEADERS: dict[int, dict[str, Any]] = {
    401: {"WWW-Authenticate": {"description": "Bearer", "schema": {"type": "string"}}},
    429: {"Retry-After": {"description": "seconds to wait", "schema": {"type": "integer"}}},
    503: {"Retry-After": {"description": "seconds to wait", "schema": {"type": "integer"}}},
}


def error_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """The ``responses`` entries of ``statuses``: each one the error body shape."""
    out: dict[int | str, dict[str, Any]] = {}
    for status in statuses:
        entry: dict[str, Any] = {"model": ErrorBody, "description": ERRORS[status]}
        if status in _HEADERS:
            entry["headers"] = _HEADERS[status]
        out[status] = entry
    return out


def documented(
    model: type[BaseModel] | None,
    *errors: int,
    status: int = 200,
    content: dict[str, Any] | None = None,
    description: str | None = None,
) -> dict[str, Any]:
    """A route decorator's ``status_code`` and ``responses``: ``model`` (documentation only,
    see the module docstring) or ``content`` (other media types) at ``status``, the error
    shape at each of ``errors``. Use as ``@router.get(path, **documented(Model, 401, 404))``."""
    success: dict[str, Any] = {"description": description or "Success"}
    out: dict[str, Any] = {"status_code": status}
    if model is not None:
        success["model"] = model
    if content is not None:  # bytes, not JSON: no JSON schema at the success status
        success["content"] = content
        out["response_class"] = Response
    out["responses"] = {status: success, **error_responses(*errors)}
    return out


def binary(*media_types: str) -> dict[str, Any]:
    """The ``content`` of a file in any of ``media_types`` (a JSON file: any JSON value)."""
    return {
        kind: {"schema": {} if _is_json(kind) else {"type": "string", "format": "binary"}}
        for kind in media_types
    }


def _is_json(media_type: str) -> bool:
    kind = media_type.split(";")[0].strip()
    return kind == "application/json" or kind.endswith("+json")


#: The request body of an upload: the file itself, or a multipart form with a ``file`` part.
UPLOAD_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "application/octet-stream": {"schema": {"type": "string", "format": "binary"}},
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "properties": {"file": {"type": "string", "format": "binary"}},
                    "required": ["file"],
                }
            },
        },
    }
}
