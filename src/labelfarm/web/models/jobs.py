"""Answers of the job routes."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from labelfarm.web.models.common import Out

Time = str | None


class Job(Out):
    """One job: background work with its state, progress, result or error."""

    id: int
    kind: str = Field(description="what the job does: train, predict, import, refit, ...")
    project_id: int | None
    workspace_id: int | None
    params: dict[str, Any] = Field(description="the job's parameters, as its kind takes them")
    state: str = Field(description="queued | running | done | failed | cancelled")
    progress_done: int
    progress_total: int | None = Field(description="None while the total is unknown")
    fraction: float | None = Field(description="progress_done / progress_total, at most 1")
    message: str = Field(description="what the job is doing, in its own words")
    result: dict[str, Any] | None = Field(description="what a done job produced")
    error: str | None = Field(description="why the last run failed")
    attempts: int = Field(description="runs so far")
    max_attempts: int = Field(description="runs before a failure is final")
    run_after: Time = Field(description="not run before then (a retry's back-off)")
    worker: str | None = Field(description="the worker that runs (or last ran) it")
    lease_until: Time
    heartbeat_at: Time
    cancel_requested: bool
    created_by: int | None
    created_at: Time
    started_at: Time
    finished_at: Time


class JobList(Out):
    jobs: list[Job] = Field(description="newest first")
