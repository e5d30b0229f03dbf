"""Answers of the annotator's routes: next, checkout, submit, skip."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from labelfarm.web.models.common import Out


class Prediction(Out):
    model: str
    value: Any
    score: float | None


class Task(Out):
    item_id: int
    data: Any = Field(description="the item's data as imported")
    lease_expires_at: str = Field(description="ISO 8601; submit before, or it counts as late")
    prediction: Prediction | None = Field(description="the newest model answer, to pre-fill")
    media_url: str | None = Field(description="signed; works while the lease is live")


class Qualification(Out):
    done: int
    of: int


class Standing(Out):
    """The caller's standing, in projects with qualification or an accuracy floor."""

    state: str = Field(description="qualifying, active, paused or failed")
    reason: str | None = None
    qualification: Qualification | None = None


class Tasks(Out):
    tasks: list[Task]
    annotator: Standing | None = None


class CheckedOut(Out):
    tasks: list[Task]


class GoldFeedback(Out):
    """In training mode, what a gold item's answer was."""

    correct: bool
    score: float
    answer: Any
    guidelines: str


class Stored(Out):
    id: str = Field(description="the entry's client-generated id")
    annotation_id: int
    item_id: int
    status: str = Field(description="accepted or late")
    late_reason: str | None
    feedback: GoldFeedback | None = None


class Submitted(Out):
    results: list[Stored] = Field(description="one per entry, in the order sent")


class Skipped(Out):
    item_id: int
    status: str
