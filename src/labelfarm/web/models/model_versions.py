"""Answers of the model routes: predictors, model versions and the jobs that make them."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from labelfarm.web.models.common import Out


class PredictorList(Out):
    predictors: list[dict[str, Any]] = Field(
        description="each {name, input (image | text), extra, available, reason, summary, "
        "params: [{name, default, help, expect}]}"
    )


class ModelVersionOut(Out):
    """One trained model of a project."""

    id: int
    project_id: int
    version: int = Field(description="1, 2, ... per project")
    predictor: str
    params: dict[str, Any]
    fields: list[dict[str, Any]] = Field(description="what it predicts: {name, type, options}")
    schema_version: int
    state: str = Field(description="training | ready | failed | retired")
    promoted: bool = Field(description="the version that pre-labels (one per project at most)")
    artifact: str | None = Field(description="its saved model's key in the model store")
    training_set: str | None = Field(description="its training set's key in the model store")
    training_sha256: str | None = Field(description="SHA-256 of the training set file")
    n_train: int
    n_eval: int
    train_seconds: float | None = Field(description="how long fitting took")
    evaluation: dict[str, Any] | None = Field(
        description="on the held-out set: {n, n_gold, n_reviewed, left_out, fields: {name: "
        "{n, accuracy, macro_f1, ece, per_class, confusion, options}}}"
    )
    job_id: int | None
    created_by: int | None
    created_at: str | None
    promoted_at: str | None


class ModelVersionList(Out):
    versions: list[ModelVersionOut] = Field(description="oldest first")
    promoted: int | None = Field(description="the promoted version's number, if any")


class ModelJob(Out):
    """A job started: follow it at ``GET /api/v1/jobs/{id}``."""

    job: dict[str, Any] = Field(description="the job as GET /api/v1/jobs/{id} answers it")
