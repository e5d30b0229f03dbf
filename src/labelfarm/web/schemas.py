"""Request bodies of the JSON API (pydantic). Only the web layer knows these."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class LoginBody(Body):
    username: str
    password: str


class WorkspaceCreate(Body):
    slug: str
    name: str | None = None


class UserCreate(Body):
    username: str
    password: str
    display_name: str | None = None
    site: str | None = Field(default=None, description="code of the site the user works at")
    locale: str = "en"
    is_superuser: bool = False


class MemberCreate(UserCreate):
    role: str


class RoleBody(Body):
    role: str


class TokenCreate(Body):
    name: str = Field(default="api", max_length=100)


class SiteCreate(Body):
    code: str
    name: str


class ProjectCreate(Body):
    name: str
    schema_: dict[str, Any] | str = Field(alias="schema")
    overlap: int = 1
    lease_seconds: int = 600
    ordering: str = "fifo"
    description: str = ""
    guidelines: str = ""


class ProjectUpdate(Body):
    name: str | None = None
    schema_: dict[str, Any] | str | None = Field(default=None, alias="schema")
    overlap: int | None = None
    lease_seconds: int | None = None
    ordering: str | None = None
    description: str | None = None
    guidelines: str | None = None


class NextBody(Body):
    n: int = Field(default=1, ge=1, le=1000)


class SubmitBody(Body):
    annotations: list[Any] = Field(
        description="entries {id (client-generated), item_id, value, duration_ms?, corrects?}"
    )


class SkipBody(Body):
    item_id: int
    reason: str
