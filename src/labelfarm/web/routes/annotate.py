"""The annotator's API: next, submit, skip and checkout (:mod:`labelfarm.services.tasks`)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from pydantic import Field

from labelfarm.jsonutil import iso
from labelfarm.services.tasks import checkout, entries, lease, skip, submit
from labelfarm.web.context import AppContext, ctx_of
from labelfarm.web.policies import PROJECT_ANNOTATE, Access, require
from labelfarm.web.responses import JSON, ok
from labelfarm.web.schemas import Body, NextBody, SkipBody, SubmitBody

router = APIRouter(prefix="/api/v1/projects/{project_id}", tags=["annotate"])
annotate = require(PROJECT_ANNOTATE)


class CheckoutBody(Body):
    n: int = Field(default=50, ge=1, le=checkout.MAX_BATCH)
    hours: float = Field(default=checkout.DEFAULT_HOURS, gt=0, le=checkout.MAX_HOURS)


def present(ctx: AppContext, user_id: int, tasks: list[dict[str, Any]], now: float) -> None:
    """Leased tasks as the API answers them: a signed media URL that lives no longer than the
    lease (nor ``MEDIA_URL_SECONDS``), times in ISO 8601."""
    url_limit = now + ctx.settings.media_url_seconds
    for task in tasks:
        sha = task.pop("media_sha256")
        expires = task["lease_expires_at"]
        task["media_url"] = ctx.media.sign(sha, user_id, min(expires, url_limit)) if sha else None
        task["lease_expires_at"] = iso(expires)


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
    ctx, project = ctx_of(request), access.project
    assert project is not None
    now, n = ctx.now(), min(body.n, ctx.settings.max_next_tasks)
    tasks, standing = await ctx.run(lease.next_with_standing, project, access.user_id, n, now)
    present(ctx, access.user_id, tasks, now)
    out: dict[str, Any] = {"tasks": tasks}
    if standing is not None:
        out["annotator"] = standing.to_dict(project)
    return ok(out)


@router.post("/submit")
async def submit_annotations(
    request: Request,
    project_id: int,
    body: SubmitBody,
    access: Annotated[Access, Depends(annotate)],
) -> JSON:
    """Store a batch of annotations; replays answer the same, late work is kept and marked."""
    ctx, project = ctx_of(request), access.project
    assert project is not None
    batch = entries.validate_batch(project, body.annotations)
    results = await ctx.run(submit.submit, project, access.user_id, batch, ctx.now())
    return ok({"results": results})


@router.post("/skip")
async def skip_task(
    request: Request,
    project_id: int,
    body: SkipBody,
    access: Annotated[Access, Depends(annotate)],
) -> JSON:
    """Give a task back with a reason; the caller will not get the item again."""
    ctx, project = ctx_of(request), access.project
    assert project is not None
    done = await ctx.run(skip.skip, project, access.user_id, body.item_id, body.reason, ctx.now())
    return ok(done)


@router.post("/checkout")
async def check_out(
    request: Request,
    project_id: int,
    body: CheckoutBody,
    access: Annotated[Access, Depends(annotate)],
) -> JSON:
    """Lease up to ``n`` tasks for ``hours`` (default 8) to label offline.

    Same answer as ``next``; fetch the media at once, its links live at most
    ``LABELFARM_MEDIA_URL_SECONDS``. Submit the work as usual when back online.
    """
    ctx, project = ctx_of(request), access.project
    assert project is not None
    now = ctx.now()
    tasks = await ctx.run(
        checkout.check_out, project, access.user_id, body.n, now, hours=body.hours
    )
    present(ctx, access.user_id, tasks, now)
    return ok({"tasks": tasks})
