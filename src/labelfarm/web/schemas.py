"""Request bodies of the JSON API (pydantic). Only the web layer knows these."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any, TypeVar, cast

from fastapi import Path, Query
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    create_model,
    field_validator,
    model_validator,
)

from labelfarm.db.project_settings import DEFAULTS, SETTING_TYPES, meaning
from labelfarm.db.tables import MAX_INT

# Ids are Integer columns: a path or query id outside 1..MAX_INT is refused (422) before
# anything looks it up (the policies bound the ids they read from the path the same way).
#: A row id in the path.
Id = Annotated[int, Path(ge=1, le=MAX_INT, description="a row id")]
#: A row id in the query, optional.
QueryId = Annotated[int | None, Query(ge=1, le=MAX_INT, description="a row id")]


class Body(BaseModel):
    """A request body: no field it does not name, no NUL character in its text (PostgreSQL
    cannot store one); lengths bounded by the columns the text is stored in."""

    model_config = ConfigDict(extra="forbid")

    @field_validator("*")
    @classmethod
    def _no_nul(cls, value: Any) -> Any:
        if isinstance(value, str) and "\x00" in value:
            raise ValueError("text must not contain the NUL character")
        return value


class LoginBody(Body):
    username: str
    password: str


class WorkspaceCreate(Body):
    slug: str
    name: str | None = Field(default=None, max_length=200)


class UserCreate(Body):
    username: str
    password: str
    display_name: str | None = Field(default=None, max_length=200)
    site: str | None = Field(default=None, description="code of the site the user works at")
    locale: str = Field(default="en", max_length=16)
    is_superuser: bool = False


class MemberCreate(UserCreate):
    role: str


class RoleBody(Body):
    role: str


class TokenCreate(Body):
    name: str = Field(default="api", max_length=100)
    expires_days: float | None = Field(
        default=None, gt=0, description="the token stops working this many days from now"
    )
    expires_at: str | None = Field(
        default=None, description="the token stops working at this ISO-8601 time (UTC if naive)"
    )


class SiteCreate(Body):
    code: str = Field(max_length=64)
    name: str = Field(max_length=200)


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

    name: str = Field(max_length=200)
    schema_: dict[str, Any] | str = Field(alias="schema")
    description: str = ""
    guidelines: str = ""


@with_settings(optional=True)
class ProjectUpdate(Body):
    """Changes to a project: only what is given changes."""

    name: str | None = Field(default=None, max_length=200)
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
        description="entries {id (client-generated), task (the handle from next or checkout), "
        "value, duration_ms?, corrects?, from_prediction?, verified? (the prediction accepted "
        "unchanged: stored as verified when the value equals the task's prediction)}"
    )


class SkipBody(Body):
    task: str = Field(max_length=64, description="the handle from next or checkout")
    reason: str

    @model_validator(mode="before")
    @classmethod
    def _no_item_id(cls, data: Any) -> Any:
        if isinstance(data, dict) and "item_id" in data:
            raise ValueError(
                "send the task's handle as 'task' (item ids are not part of the annotator's API)"
            )
        return data
