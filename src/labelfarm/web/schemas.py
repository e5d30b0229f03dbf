"""Request bodies of the JSON API (pydantic). Only the web layer knows these."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar, cast

from pydantic import BaseModel, ConfigDict, Field, create_model

from labelfarm.db.project_settings import DEFAULTS, SETTING_TYPES, meaning


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


B = TypeVar("B", bound=type[BaseModel])


def with_settings(*, optional: bool) -> Callable[[B], B]:
    """Add a field per project setting (:mod:`labelfarm.db.project_settings`) to a body:
    with its default, or None (left unchanged) when ``optional``."""

    def build(cls: B) -> B:
        fields: dict[str, Any] = {
            name: (
                hint | None if optional else hint,
                Field(default=None if optional else DEFAULTS[name], description=meaning(name)),
            )
            for name, hint in SETTING_TYPES.items()
        }
        return cast(B, create_model(cls.__name__, __base__=cls, __doc__=cls.__doc__, **fields))

    return build


@with_settings(optional=False)
class ProjectCreate(Body):
    """A new project: its name and schema, and every setting (defaults if left out)."""

    name: str
    schema_: dict[str, Any] | str = Field(alias="schema")
    description: str = ""
    guidelines: str = ""


@with_settings(optional=True)
class ProjectUpdate(Body):
    """Changes to a project: only what is given changes."""

    name: str | None = None
    schema_: dict[str, Any] | str | None = Field(default=None, alias="schema")
    description: str | None = None
    guidelines: str | None = None


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
