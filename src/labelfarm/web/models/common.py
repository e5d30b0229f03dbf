"""The base of every response model, the one error body, and small shared answers."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class Out(BaseModel):
    """A response model: exactly the fields a route answers."""

    model_config = ConfigDict(extra="forbid")


class ErrorInfo(Out):
    code: str = Field(
        description="what went wrong, for programs: not_authenticated, forbidden, not_found, "
        "conflict, invalid_input, invalid_schema, import_failed, too_large, ..."
    )
    message: str = Field(description="what went wrong, for people")
    details: list[dict[str, Any]] = Field(
        description="one entry per problem: usually `field` and `reason`; `index` (an entry "
        "of a batch) or `line` (of an uploaded file) where they apply"
    )


class ErrorBody(Out):
    """The one shape of every error answer."""

    error: ErrorInfo


class Status(Out):
    status: str
