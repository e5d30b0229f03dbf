"""Answers of the model-server routes (Label Studio ML backends attached to a project)."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from labelfarm.web.models.common import Out
from labelfarm.web.models.jobs import Job


class MlBackend(Out):
    """A model server attached to a project; its password is never answered."""

    id: int
    project_id: int
    title: str = Field(description="names its predictions (their model)")
    url: str
    auth_user: str | None = Field(description="basic-auth user; None: no auth")
    has_secret: bool = Field(description="a basic-auth password is stored (encrypted)")
    model_version: str | None = Field(description="the model version its last /setup answered")
    created_by: int | None
    created_at: float


class MlBackendList(Out):
    ml_backends: list[MlBackend]


class MlBackendJob(Out):
    """A job started on a model server: follow it at ``GET /api/v1/jobs/{id}``."""

    job: Job = Field(description="the job as GET /api/v1/jobs/{id} answers it")


class MlBackendHealth(Out):
    backend_id: int
    status: str = Field(description="UP")
    answer: dict[str, Any] = Field(description="the server's /health answer as it gave it")
    seconds: float = Field(description="how long the server took to answer")
