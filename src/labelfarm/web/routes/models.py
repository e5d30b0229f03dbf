"""Predictors and model versions: list, train, promote, retire, pre-label, evaluate.

Training, predicting and evaluating always run as jobs (answered 202 with the job; follow it
at ``GET /api/v1/jobs/{id}``), never during a request. A request is checked before its job is
queued: an unknown predictor, a bad parameter or a project with nothing to predict is a 422
at once.
"""

from __future__ import annotations

from typing import Annotated, Any

import anyio
from fastapi import APIRouter, Depends, Path, Request
from pydantic import Field
from starlette.convertors import Convertor, register_url_convertor

from labelfarm.db.tables import MAX_INT
from labelfarm.errors import Conflict
from labelfarm.ml.predictors import registry
from labelfarm.services.models import training, versions
from labelfarm.web.context import ctx_of
from labelfarm.web.job_start import start_job
from labelfarm.web.models.model_versions import (
    ModelJob,
    ModelVersionList,
    ModelVersionOut,
    PredictorList,
)
from labelfarm.web.policies import AUTHENTICATED, PROJECT_MANAGE, Access, require
from labelfarm.web.responses import JSON, documented, ok
from labelfarm.web.schemas import Body, Id


class _Number(Convertor[int]):
    """A whole number in the path, signed: ``/models/train`` is not a version, while an
    out-of-range number still reaches the parameter's check (422, not 404)."""

    regex = "-?[0-9]+"

    def convert(self, value: str) -> int:
        return int(value)

    def to_string(self, value: int) -> str:
        return str(value)


register_url_convertor("number", _Number())
router = APIRouter(tags=["models"])
PROJECT = "/api/v1/projects/{project_id}/models"
MAX_ITEM_IDS = 100_000
manage = require(PROJECT_MANAGE)
Version = Annotated[int, Path(ge=1, le=MAX_INT, description="the version's number")]


class TrainBody(Body):
    predictor: str = Field(max_length=100, description="a name GET /api/v1/predictors lists")
    params: dict[str, Any] | None = Field(default=None, description="the predictor's parameters")
    fields: list[Annotated[str, Field(max_length=64)]] | None = Field(
        default=None,
        max_length=100,
        description="fields to predict; default: every choice and multichoice field",
    )


class PredictBody(Body):
    item_ids: list[Annotated[int, Field(ge=1, le=MAX_INT)]] | None = Field(
        default=None,
        max_length=MAX_ITEM_IDS,
        description="the items to predict; default: every item without a final label, and gold",
    )


@router.get("/api/v1/predictors", **documented(PredictorList, 401))
async def list_predictors(
    request: Request, access: Annotated[Access, Depends(require(AUTHENTICATED))]
) -> JSON:
    """The predictors a model can be trained with, and whether each is installed here."""
    return ok({"predictors": await anyio.to_thread.run_sync(registry.describe)})


@router.get(PROJECT, **documented(ModelVersionList, 401, 403, 404, 422))
async def list_versions(
    request: Request, project_id: Id, access: Annotated[Access, Depends(manage)]
) -> JSON:
    found = await ctx_of(request).run(versions.list_versions, project_id)
    promoted = next((v.version for v in found if v.promoted), None)
    return ok({"versions": [v.to_dict() for v in found], "promoted": promoted})


@router.post(f"{PROJECT}/train", **documented(ModelJob, 401, 403, 404, 413, 422, status=202))
async def train(
    request: Request,
    project_id: Id,
    body: TrainBody,
    access: Annotated[Access, Depends(manage)],
) -> JSON:
    """Train a new version on the project's labelled items (gold and held-out items never
    train), store it with its training set and evaluate it on the held-out set."""
    assert access.project is not None
    project = access.project
    name, params, fields = await anyio.to_thread.run_sync(
        training.check_request, project, body.predictor, body.params, body.fields
    )
    job = {"predictor": name, "params": params, "fields": [f.name for f in fields]}
    return await _start(request, access, "train", job)


@router.get(f"{PROJECT}/{{version:number}}", **documented(ModelVersionOut, 401, 403, 404, 422))
async def get_version(
    request: Request, project_id: Id, version: Version, access: Annotated[Access, Depends(manage)]
) -> JSON:
    found = await ctx_of(request).run(versions.get_version, project_id, version)
    return ok(found.to_dict())


@router.post(
    f"{PROJECT}/{{version:number}}/promote",
    **documented(ModelVersionOut, 401, 403, 404, 409, 413, 422),
)
async def promote(
    request: Request, project_id: Id, version: Version, access: Annotated[Access, Depends(manage)]
) -> JSON:
    """Make the version the one that pre-labels: the predict job's default, and the pre-fill
    annotators see first. The one promoted before steps down."""
    ctx = ctx_of(request)
    assert access.project is not None
    found = await ctx.run(
        versions.promote, access.project, version, now=ctx.now(), actor_id=access.user_id
    )
    ctx.projects.drop(access.project.id)  # its tasks now look for predictions at once
    return ok(found.to_dict())


@router.post(
    f"{PROJECT}/{{version:number}}/retire",
    **documented(ModelVersionOut, 401, 403, 404, 409, 413, 422),
)
async def retire(
    request: Request, project_id: Id, version: Version, access: Annotated[Access, Depends(manage)]
) -> JSON:
    """Take the version out of use (unpromoted if it was); its files and predictions stay."""
    ctx = ctx_of(request)
    assert access.project is not None
    found = await ctx.run(
        versions.retire, access.project, version, now=ctx.now(), actor_id=access.user_id
    )
    return ok(found.to_dict())


@router.post(
    f"{PROJECT}/{{version:number}}/predict",
    **documented(ModelJob, 401, 403, 404, 409, 413, 422, status=202),
)
async def predict(
    request: Request,
    project_id: Id,
    version: Version,
    body: PredictBody,
    access: Annotated[Access, Depends(manage)],
) -> JSON:
    """Pre-label with the version: predictions for every item without a final label (and
    gold, which must not stand out), or the items named; in batches, resumable."""
    await _ready(request, project_id, version)
    params: dict[str, Any] = {"version": version}
    if body.item_ids is not None:
        params["item_ids"] = sorted(set(body.item_ids))
    return await _start(request, access, "predict", params)


@router.post(
    f"{PROJECT}/{{version:number}}/evaluate",
    **documented(ModelJob, 401, 403, 404, 409, 413, 422, status=202),
)
async def evaluate(
    request: Request, project_id: Id, version: Version, access: Annotated[Access, Depends(manage)]
) -> JSON:
    """Evaluate the version again on the project's current held-out set."""
    await _ready(request, project_id, version)
    return await _start(request, access, "evaluate", {"version": version})


async def _ready(request: Request, project_id: int, version: int) -> None:
    found = await ctx_of(request).run(versions.get_version, project_id, version)
    if found.state != "ready":
        raise Conflict(
            f"model version {version} is {found.state}: only a ready version predicts",
            [{"field": "version", "reason": found.state}],
        )


async def _start(request: Request, access: Access, kind: str, params: dict[str, Any]) -> JSON:
    ctx = ctx_of(request)
    job = await start_job(ctx, access, kind, params)
    return ok({"job": job.to_dict()}, 202)
