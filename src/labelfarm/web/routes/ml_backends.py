"""Model servers (Label Studio ML backends): attach, list, detach, check health, and start
their predict and train jobs. Predicting and training always run as jobs, never during a
request; only the health check calls the server, in a thread, with a short timeout."""

from __future__ import annotations

import time
from typing import Annotated, Any

import anyio
from fastapi import APIRouter, Depends, Request
from pydantic import Field

from labelfarm.db.tables import MAX_INT
from labelfarm.services import ml_backends
from labelfarm.services.ml_backend_client import BackendClient
from labelfarm.web.context import ctx_of
from labelfarm.web.job_start import start_job
from labelfarm.web.models.common import Status
from labelfarm.web.models.ml_backends import (
    MlBackend,
    MlBackendHealth,
    MlBackendJob,
    MlBackendList,
)
from labelfarm.web.policies import PROJECT_MANAGE, Access, require
from labelfarm.web.responses import JSON, documented, ok
from labelfarm.web.schemas import Body, Id

router = APIRouter(prefix="/api/v1/projects/{project_id}/ml-backends", tags=["models"])

HEALTH_TIMEOUT = 10.0  # seconds, at most: a page waits for it
MAX_ITEM_IDS = 100_000


class BackendCreate(Body):
    url: str = Field(max_length=ml_backends.MAX_URL, description="http(s) address of the server")
    title: str | None = Field(
        default=None, max_length=ml_backends.MAX_TITLE, description="default: the address"
    )
    auth_user: str | None = Field(default=None, max_length=200, description="basic auth")
    auth_secret: str | None = Field(default=None, max_length=1000, description="basic auth")


class BackendPredict(Body):
    item_ids: list[Annotated[int, Field(ge=1, le=MAX_INT)]] | None = Field(
        default=None,
        max_length=MAX_ITEM_IDS,
        description="the items to predict; default: every item still without a final label",
    )


class BackendTrain(Body):
    max_annotations: int | None = Field(
        default=None, ge=0, le=1000, description="annotations sent at most (default 100)"
    )


@router.post("", **documented(MlBackend, 401, 403, 404, 413, 422, status=201))
async def attach(
    request: Request,
    project_id: Id,
    body: BackendCreate,
    access: Annotated[Access, Depends(require(PROJECT_MANAGE))],
) -> JSON:
    ctx = ctx_of(request)
    backend = await ctx.run(
        ml_backends.attach,
        project_id=project_id,
        url=body.url,
        title=body.title,
        auth_user=body.auth_user,
        auth_secret=body.auth_secret,
        secret_key=ctx.settings.resolved_secret_key,
        now=ctx.now(),
        actor_id=access.user_id,
    )
    ctx.projects.drop(project_id)  # its tasks now look for predictions at once
    return ok(backend, 201)


@router.get("", **documented(MlBackendList, 401, 403, 404, 422))
async def list_backends(
    request: Request,
    project_id: Id,
    access: Annotated[Access, Depends(require(PROJECT_MANAGE))],
) -> JSON:
    found = await ctx_of(request).run(ml_backends.list_backends, project_id)
    return ok({"ml_backends": found})


@router.delete("/{backend_id}", **documented(Status, 401, 403, 404, 413, 422))
async def detach(
    request: Request,
    project_id: Id,
    backend_id: Id,
    access: Annotated[Access, Depends(require(PROJECT_MANAGE))],
) -> JSON:
    ctx = ctx_of(request)
    await ctx.run(
        ml_backends.detach,
        project_id=project_id,
        backend_id=backend_id,
        now=ctx.now(),
        actor_id=access.user_id,
    )
    return ok({"status": "detached"})


async def _start(
    request: Request, access: Access, project_id: int, kind: str, params: dict[str, Any]
) -> JSON:
    ctx = ctx_of(request)
    await ctx.run(ml_backends.get_backend, project_id, params["backend_id"])
    job = await start_job(ctx, access, kind, params)
    return ok({"job": job.to_dict()}, 202)


@router.post(
    "/{backend_id}/predict", **documented(MlBackendJob, 401, 403, 404, 413, 422, status=202)
)
async def predict(
    request: Request,
    project_id: Id,
    backend_id: Id,
    body: BackendPredict,
    access: Annotated[Access, Depends(require(PROJECT_MANAGE))],
) -> JSON:
    params: dict[str, Any] = {"backend_id": backend_id}
    if body.item_ids is not None:
        params["item_ids"] = sorted(set(body.item_ids))
    return await _start(request, access, project_id, "backend_predict", params)


@router.post("/{backend_id}/train", **documented(MlBackendJob, 401, 403, 404, 413, 422, status=202))
async def train(
    request: Request,
    project_id: Id,
    backend_id: Id,
    body: BackendTrain,
    access: Annotated[Access, Depends(require(PROJECT_MANAGE))],
) -> JSON:
    params: dict[str, Any] = {"backend_id": backend_id}
    if body.max_annotations is not None:
        params["max_annotations"] = body.max_annotations
    return await _start(request, access, project_id, "backend_train", params)


@router.get("/{backend_id}/health", **documented(MlBackendHealth, 401, 403, 404, 422, 502))
async def health(
    request: Request,
    project_id: Id,
    backend_id: Id,
    access: Annotated[Access, Depends(require(PROJECT_MANAGE))],
) -> JSON:
    ctx = ctx_of(request)
    backend = await ctx.run(
        ml_backends.connection, project_id, backend_id, ctx.settings.resolved_secret_key
    )
    timeout = min(ctx.settings.ml_backend_timeout_seconds, HEALTH_TIMEOUT)

    def check() -> tuple[dict[str, Any], float]:
        started = time.perf_counter()
        with BackendClient(backend, timeout=timeout, retries=0) as client:
            answer = client.health()
        return answer, time.perf_counter() - started

    answer, seconds = await anyio.to_thread.run_sync(check)
    return ok(
        {"backend_id": backend_id, "status": "UP", "answer": answer, "seconds": round(seconds, 3)}
    )
