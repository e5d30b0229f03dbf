"""The exception tree, and the one error body shape.

Every error that reaches a client is a :class:`LabelfarmError` and is rendered as::

    {"error": {"code": "...", "message": "...", "details": [{...}, ...]}}

Tree::

    LabelfarmError                 500 internal
    ├── InvalidInput               422 invalid_input      (a request or value is malformed)
    │   ├── SchemaError            422 invalid_schema     (a label schema is wrong)
    │   └── ImportFailed           422 import_failed      (rows of an import are bad)
    ├── NotAuthenticated           401 not_authenticated
    ├── PermissionDenied           403 forbidden
    ├── NotFound                   404 not_found          (also: a resource of another workspace)
    ├── Conflict                   409 conflict
    ├── TooManyRequests            429 too_many_requests  (with Retry-After)
    └── ServerBusy                 503 busy               (with Retry-After)
"""

from __future__ import annotations

import math
from typing import Any


class LabelfarmError(Exception):
    """Base of every error labelfarm raises on purpose."""

    status = 500
    code = "internal"
    retry_after: int | None = None  # seconds; answered as a Retry-After header

    def __init__(self, message: str, details: list[dict[str, Any]] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = details or []

    def body(self) -> dict[str, Any]:
        return {"error": {"code": self.code, "message": self.message, "details": self.details}}


class InvalidInput(LabelfarmError):
    status = 422
    code = "invalid_input"


class SchemaError(InvalidInput):
    code = "invalid_schema"


class ImportFailed(InvalidInput):
    code = "import_failed"


class NotAuthenticated(LabelfarmError):
    status = 401
    code = "not_authenticated"


class PermissionDenied(LabelfarmError):
    status = 403
    code = "forbidden"


class NotFound(LabelfarmError):
    status = 404
    code = "not_found"


class Conflict(LabelfarmError):
    status = 409
    code = "conflict"


class TooManyRequests(LabelfarmError):
    """Refused for now: the caller may try again after ``retry_after`` seconds."""

    status = 429
    code = "too_many_requests"

    def __init__(
        self, message: str, retry_after: float, details: list[dict[str, Any]] | None = None
    ) -> None:
        super().__init__(message, details)
        self.retry_after = max(1, math.ceil(retry_after))


class ServerBusy(TooManyRequests):
    """The server has too much of this kind of work in hand; try again shortly."""

    status = 503
    code = "busy"


def error_body(code: str, message: str, details: list[dict[str, Any]] | None = None) -> dict:
    """The error body for errors raised outside labelfarm (framework, validation)."""
    return {"error": {"code": code, "message": message, "details": details or []}}
