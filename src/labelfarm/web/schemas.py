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


class ProjectSettings(Body):
    """Workflow and quality settings; see ``services.projects.RULES`` for what is valid."""

    overlap: int = Field(default=1, description="labels per item (the minimum, if adaptive)")
    lease_seconds: int = 600
    ordering: str = Field(default="fifo", description="fifo or priority")
    gold_rate: float = Field(default=0.0, description="share of tasks that are gold, blind")
    qualification_n: int = Field(default=0, description="gold items to pass before real work")
    qualification_pass: float = 0.8
    training: bool = Field(default=False, description="show the answer after each gold item")
    accuracy_floor: float = Field(default=0.0, description="pause annotators below this")
    max_overlap: int = Field(default=0, description="adaptive overlap: most labels per item")
    target_confidence: float = Field(default=0.9, description="adaptive overlap: stop here")


class ProjectCreate(ProjectSettings):
    name: str
    schema_: dict[str, Any] | str = Field(alias="schema")
    description: str = ""
    guidelines: str = ""


class ProjectUpdate(Body):
    name: str | None = None
    schema_: dict[str, Any] | str | None = Field(default=None, alias="schema")
    description: str | None = None
    guidelines: str | None = None
    overlap: int | None = None
    lease_seconds: int | None = None
    ordering: str | None = None
    gold_rate: float | None = None
    qualification_n: int | None = None
    qualification_pass: float | None = None
    training: bool | None = None
    accuracy_floor: float | None = None
    max_overlap: int | None = None
    target_confidence: float | None = None


class StandingBody(Body):
    state: str = Field(description="active (resume a paused annotator) or paused")
    reason: str = ""


class NextBody(Body):
    n: int = Field(default=1, ge=1, le=1000)


class SubmitBody(Body):
    annotations: list[Any] = Field(
        description="entries {id (client-generated), item_id, value, duration_ms?, corrects?}"
    )


class SkipBody(Body):
    item_id: int
    reason: str
