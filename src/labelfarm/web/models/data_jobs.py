"""Answers of the import and export job routes."""

from __future__ import annotations

from pydantic import Field

from labelfarm.web.models.common import Out
from labelfarm.web.models.jobs import Job
from labelfarm.web.models.projects import ImportRecord


class JobStarted(Out):
    job: Job = Field(description="the job queued; follow it until it ends")


class ImportJob(Out):
    job: Job
    import_: ImportRecord | None = Field(
        alias="import",
        description="the job's import once it exists: its state, bad rows and notes",
    )


class ExportJob(Out):
    job: Job
    download: str | None = Field(description="the address of its file, once the job is done")


class ExportJobList(Out):
    exports: list[ExportJob] = Field(description="newest first")
