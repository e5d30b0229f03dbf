"""Answers of the annotator's routes: next, checkout, submit, skip."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from labelfarm.web.models.common import Out


class Prediction(Out):
    model: str
    model_version: str | None = Field(
        default=None, description="the project's model version that made it; null: imported"
    )
    value: Any
    score: float | None


class Task(Out):
    task: str = Field(
        description="the task's handle: opaque, personal to you and the project; "
        "send it back with submit and skip"
    )
    data: Any = Field(description="the item's data as imported")
    lease_expires_at: str = Field(description="ISO 8601; submit before, or it counts as late")
    prediction: Prediction | None = Field(description="the newest model answer, to pre-fill")
    media_url: str | None = Field(description="signed; works while the lease is live")


class Qualification(Out):
    done: int = Field(description="training and qualification tasks done")
    of: int


class Quality(Out):
    """The caller's measured quality, aggregated and delayed: it never moves with one task."""

    band: str = Field(description="good, watch or low, against the project's bar")
    checked: int = Field(description="gold answers counted, a whole number of blocks")
    as_of: str = Field(description="ISO 8601; answers after this time are not counted yet")


class Standing(Out):
    """The caller's own standing in the project."""

    state: str = Field(description="qualifying, active, paused or failed")
    reason: str | None = None
    qualification: Qualification | None = Field(description="while qualifying")
    quality: Quality | None = Field(description="once active, when enough is counted")
    reason_key: str | None = Field(
        default=None,
        description="a rule's reason as a message key of the interface (`reason` is its "
        "English text); absent for a manager's reason",
    )


class Tasks(Out):
    tasks: list[Task]
    annotator: Standing


class CheckedOut(Out):
    tasks: list[Task]


class GoldFeedback(Out):
    """After a training item (never a control item): what its answer was."""

    correct: bool
    score: float
    answer: Any
    guidelines: str


class Stored(Out):
    id: str = Field(description="the entry's client-generated id")
    annotation_id: int
    task: str = Field(description="the handle of the task the entry was for")
    status: str = Field(description="accepted or late")
    late_reason: str | None
    excluded: str | None = Field(
        default=None,
        description="paused or failed: stored, but left out of labels (the caller's standing)",
    )
    feedback: GoldFeedback | None = None


class Submitted(Out):
    results: list[Stored] = Field(description="one per entry, in the order sent")


class Skipped(Out):
    task: str
    status: str
