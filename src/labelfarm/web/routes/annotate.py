"""The annotator's API: next, submit, skip and checkout (:mod:`labelfarm.services.tasks`)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from pydantic import Field

from labelfarm.jsonutil import iso
from labelfarm.services.tasks import checkout, entries, lease, skip, submit
from labelfarm.web.context import AppContext, ctx_of
from labelfarm.web.models.tasks import CheckedOut, Skipped, Submitted, Tasks
from labelfarm.web.policies import PROJECT_ANNOTATE, Access, require
from labelfarm.web.responses import JSON, documented, ok
from labelfarm.web.schemas import Body, Id, NextBody, SkipBody, SubmitBody

router = APIRouter(prefix="/api/v1/projects/{project_id}", tags=["annotate"])
annotate = require(PROJECT_ANNOTATE)


class CheckoutBody(Body):
    n: int | None = Field(
        default=None, ge=1, le=checkout.MAX_BATCH, description="default 50, or the project's most"
    )
    hours: float | None = Field(
        default=None, gt=0, le=checkout.MAX_HOURS, description="default 8, or the project's most"
    )


def present(ctx: AppContext, user_id: int, tasks: list[dict[str, Any]], now: float) -> None:
    """Leased tasks as the API answers them: a signed media URL tied to the lease (it works
    while the lease is live, a checkout's included, and ends with it), times in ISO 8601."""
    sign = ctx.media.sign
    for task in tasks:
        sha = task.pop("media_sha256")
        expires = task["lease_expires_at"]
        task["media_url"] = sign(sha, user_id, expires, item=task["item_id"]) if sha else None
        task["lease_expires_at"] = iso(expires)


@router.post("/next", **documented(Tasks, 401, 403, 404, 413, 422))
async def next_tasks(
    request: Request,
    project_id: Id,
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


@router.post("/submit", **documented(Submitted, 401, 403, 404, 413, 422))
async def submit_annotations(
    request: Request,
    project_id: Id,
    body: SubmitBody,
    access: Annotated[Access, Depends(annotate)],
) -> JSON:
    """Store a batch of annotations; replays answer the same, late work is kept and marked."""
    ctx, project = ctx_of(request), access.project
    assert project is not None
    batch = entries.validate_batch(project, body.annotations)
    results = await ctx.run(submit.submit, project, access.user_id, batch, ctx.now())
    return ok({"results": results})


@router.post("/skip", **documented(Skipped, 401, 403, 404, 409, 413, 422))
async def skip_task(
    request: Request,
    project_id: Id,
    body: SkipBody,
    access: Annotated[Access, Depends(annotate)],
) -> JSON:
    """Give a task back with a reason; the caller will not get the item again."""
    ctx, project = ctx_of(request), access.project
    assert project is not None
    done = await ctx.run(skip.skip, project, access.user_id, body.item_id, body.reason, ctx.now())
    return ok(done)


@router.post("/checkout", **documented(CheckedOut, 401, 403, 404, 413, 422))
async def check_out(
    request: Request,
    project_id: Id,
    body: CheckoutBody,
    access: Annotated[Access, Depends(annotate)],
) -> JSON:
    """Lease up to ``n`` tasks for ``hours`` (default 8) to label offline.

    ``n`` counts the caller's live leases (they come back first) and is at most the
    project's ``max_live_leases``; ``hours`` at most its ``max_checkout_hours``.

    Same answer as ``next``; the media links work as long as the leases. Submit the work
    as usual when back online.
    """
    ctx, project = ctx_of(request), access.project
    assert project is not None
    now = ctx.now()
    tasks = await ctx.run(
        checkout.check_out, project, access.user_id, body.n, now, hours=body.hours
    )
    present(ctx, access.user_id, tasks, now)
    return ok({"tasks": tasks})
