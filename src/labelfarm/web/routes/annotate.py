"""The annotator's hot path: next, submit, skip. One short transaction per call."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request

from labelfarm.services import annotations as submissions
from labelfarm.services import queue
from labelfarm.services.jsonutil import iso
from labelfarm.web.context import AppContext
from labelfarm.web.policies import PROJECT_ANNOTATE, Access, require
from labelfarm.web.responses import JSON, ok
from labelfarm.web.schemas import NextBody, SkipBody, SubmitBody

router = APIRouter(prefix="/api/v1/projects/{project_id}", tags=["annotate"])
annotate = require(PROJECT_ANNOTATE)


def present(ctx: AppContext, user_id: int, tasks: list[dict[str, Any]], now: float) -> None:
    """Leased tasks as the API answers them: a signed media URL that lives no longer than the
    lease (nor ``MEDIA_URL_SECONDS``), times in ISO 8601."""
    url_limit = now + ctx.settings.media_url_seconds
    for task in tasks:
        sha = task.pop("media_sha256")
        expires = task["lease_expires_at"]
        task["media_url"] = ctx.media.sign(sha, user_id, min(expires, url_limit)) if sha else None
        task["lease_expires_at"] = iso(expires)


def _next(ctx: AppContext, access: Access, n: int) -> dict[str, Any]:
    project = access.project
    assert project is not None
    now = ctx.now()
    with ctx.db.hot() as hot:
        tasks, standing = queue.next_with_standing(hot, project, access.user_id, n, now)
    present(ctx, access.user_id, tasks, now)
    out: dict[str, Any] = {"tasks": tasks}
    if standing is not None:
        out["annotator"] = standing.to_dict(project)
    return out


@router.post("/next")
async def next_tasks(
    request: Request,
    project_id: int,
    body: NextBody,
    access: Annotated[Access, Depends(annotate)],
) -> JSON:
    """Lease up to ``n`` tasks (live leases the caller holds come back first).

    In a project with qualification or an accuracy floor, ``annotator`` tells the caller's
    standing (qualifying with progress, active, paused or failed with the reason).
    """
    ctx: AppContext = request.app.state.ctx
    n = min(body.n, ctx.settings.max_next_tasks)
    return ok(await ctx.db.call_hot(_next, ctx, access, n))


def _submit(ctx: AppContext, access: Access, entries: list[submissions.Entry]) -> list[dict]:
    assert access.project is not None
    for attempt in range(3):
        try:
            with ctx.db.hot(durable=True) as hot:
                return submissions.submit(hot, access.project, access.user_id, entries, ctx.now())
        except submissions.RetrySubmit:
            if attempt == 2:
                raise
    raise AssertionError("unreachable")


@router.post("/submit")
async def submit(
    request: Request,
    project_id: int,
    body: SubmitBody,
    access: Annotated[Access, Depends(annotate)],
) -> JSON:
    """Store a batch of annotations; replays answer the same, late work is kept and marked."""
    ctx: AppContext = request.app.state.ctx
    assert access.project is not None
    entries = submissions.validate_batch(access.project, body.annotations)
    return ok({"results": await ctx.db.call_hot(_submit, ctx, access, entries)})


@router.post("/skip")
async def skip(
    request: Request,
    project_id: int,
    body: SkipBody,
    access: Annotated[Access, Depends(annotate)],
) -> JSON:
    ctx: AppContext = request.app.state.ctx
    assert access.project is not None
    return ok(await ctx.db.call_hot(_skip, ctx, access, body.item_id, body.reason))


def _skip(ctx: AppContext, access: Access, item_id: int, reason: str) -> dict:
    assert access.project is not None
    with ctx.db.hot() as hot:
        return queue.skip(hot, access.project, access.user_id, item_id, reason, ctx.now())
