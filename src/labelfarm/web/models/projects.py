"""Answers of the project and data routes: projects, progress, standing, imports, items."""

from __future__ import annotations

from typing import Any, TypeVar, cast

from pydantic import Field, create_model

from labelfarm.db.project_settings import SETTING_TYPES, meaning
from labelfarm.web.models.common import Out

M = TypeVar("M", bound=type[Out])


def _with_settings(cls: M) -> M:
    """Add a field per project setting (:mod:`labelfarm.db.project_settings`), as stored."""
    fields: dict[str, Any] = {
        name: (hint, Field(description=meaning(name))) for name, hint in SETTING_TYPES.items()
    }
    return cast(M, create_model(cls.__name__, __base__=cls, __doc__=cls.__doc__, **fields))


@_with_settings
class ProjectRow(Out):
    """A project as stored: its texts, counters and every setting."""

    id: int
    workspace_id: int
    name: str
    description: str
    guidelines: str
    schema_version: int
    n_items: int
    created_at: float
    updated_at: float


class ProjectList(Out):
    projects: list[ProjectRow]


class Project(ProjectRow):
    """A project with its current label schema."""

    schema_: dict[str, Any] = Field(alias="schema", description="the label schema as given")


class ProjectView(Project):
    fields: list[dict[str, Any]] = Field(description="the schema's fields, compiled")
    role: str = Field(description="the caller's role in the project's workspace")


class ItemCounts(Out):
    total: int
    done: int
    in_progress: int
    not_started: int


class Progress(Out):
    """Items done of the items to label (gold apart), labels done of the labels wanted."""

    project_id: int
    overlap: int
    max_overlap: int | None = Field(description="with adaptive overlap: most labels per item")
    items: ItemCounts
    labels_done: int = Field(description="labels towards what items want (never above it)")
    labels_wanted: int = Field(
        description="labels items want now; with adaptive overlap it grows while labels "
        "disagree, up to labels_most"
    )
    labels_extra: int = Field(description="labels beyond what items want (late submissions)")
    labels_most: int = Field(description="the most labels items may want")
    percent_done: float = Field(description="labels_done of labels_wanted, 0 to 100")
    gold_items: int
    gold_answers: int
    live_leases: int
    skips: int
    annotations: int
    late_annotations: int
    annotators: int


class AnnotatorStanding(Out):
    user_id: int
    pseudonym: str
    display_name: str
    state: str = Field(description="qualifying, active, paused or failed")
    reason: str
    evidence: dict[str, Any]
    updated_at: float


class StandingList(Out):
    annotators: list[AnnotatorStanding]


class StandingSet(Out):
    project_id: int
    user_id: int
    state: str


class ImportNote(Out):
    reason: str = Field(description="what the file held that the import left out, and why")
    count: int


class ImportDone(Out):
    id: int
    status: str
    n_items: int
    n_predictions: int
    n_annotations: int
    notes: list[ImportNote] = Field(default_factory=list)


class ProjectFromFile(Out):
    project: Project = Field(description="the project created, with the schema proposed")
    imported: ImportDone = Field(description="the import of the file into it")


class ImportRecord(Out):
    id: int
    project_id: int
    user_id: int | None
    format: str
    filename: str
    status: str = Field(description="staging, publishing, done or failed")
    n_items: int
    n_errors: int
    errors: list[dict[str, Any]] = Field(description="the first problems: line, field, reason")
    notes: list[ImportNote] = Field(description="what the file held that was left out")
    started_at: float
    finished_at: float | None
    job_id: int | None = Field(default=None, description="the import job that ran it, if any")


class ImportList(Out):
    imports: list[ImportRecord]


class Item(Out):
    id: int
    external_id: str | None
    data: Any
    priority: int
    n_submitted: int
    n_leased: int
    media_sha256: str | None


class ItemPage(Out):
    items: list[Item]
    next_after: int | None = Field(description="`after` for the next page; None at the end")
