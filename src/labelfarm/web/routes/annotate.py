"""The annotator's API: next, submit, skip and checkout (:mod:`labelfarm.services.tasks`).

Annotators never see item ids: each task is named by a handle personal to the annotator
and the project (:mod:`labelfarm.services.tasks.handles`), translated here; the services
below work with item ids, and managers, reviews and exports keep them. In a project that
hands out gold, next, submit and skip answers are paced (:mod:`labelfarm.web.pacing`)."""

from __future__ import annotations

import time
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from pydantic import Field

from labelfarm.errors import InvalidInput
from labelfarm.jsonutil import iso
from labelfarm.services.tasks import checkout, entries, lease, skip, standing_summary, submit
from labelfarm.services.tasks.handles import UnknownTask
from labelfarm.web.background import audit_standing_changes
from labelfarm.web.context import AppContext, ctx_of
from labelfarm.web.models.tasks import CheckedOut, Skipped, Submitted, Tasks
from labelfarm.web.pacing import pacer
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


def present(
    ctx: AppContext, project_id: int, user_id: int, tasks: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    """Leased tasks as the annotator sees them: a handle instead of the item id, a signed
    media URL by handle tied to the lease (it works while the lease is live, a checkout's
    included, and ends with it), times in ISO 8601. Nothing in it is common to all
    annotators, so nothing tells a gold task from another."""
    out = []
    for task in tasks:
        handle = ctx.handles.encode(project_id, user_id, task["item_id"])
        expires = task["lease_expires_at"]
        url = (
            ctx.media.sign_task(project_id, handle, user_id, expires)
            if task["media_sha256"]
            else None
        )
        out.append(
            {
                "task": handle,
                "data": task["data"],
                "lease_expires_at": iso(expires),
                "prediction": task["prediction"],
                "media_url": url,
            }
        )
    return out


@router.post("/next", **documented(Tasks, 401, 403, 404, 413, 422))
async def next_tasks(
    request: Request,
    project_id: Id,
    body: NextBody,
    access: Annotated[Access, Depends(annotate)],
) -> JSON:
    """Lease up to ``n`` tasks (live leases the caller holds come back first).

    ``annotator`` tells the caller's standing: qualifying with progress, active with a
    delayed quality band, paused or failed with the reason (see ``GET .../standing``).
    """
    ctx, project = ctx_of(request), access.project
    assert project is not None
    now, n = ctx.now(), min(body.n, ctx.settings.max_next_tasks)
    started = time.perf_counter()
    tasks, standing = await ctx.run(
        lease.next_with_standing, project, access.user_id, n, now, prefill_key=ctx.prefill_key
    )
    await audit_standing_changes(ctx)
    out: dict[str, Any] = {"tasks": present(ctx, project.id, access.user_id, tasks)}
    out["annotator"] = standing_summary.as_dict(standing)
    if project.hands_out_gold:  # picking gold costs other statements than the queue
        await pacer(ctx, project.id, f"next:{n}").pad(started)
    return ok(out)


@router.post("/submit", **documented(Submitted, 401, 403, 404, 413, 422))
async def submit_annotations(
    request: Request,
    project_id: Id,
    body: SubmitBody,
    access: Annotated[Access, Depends(annotate)],
) -> JSON:
    """Store a batch of annotations; replays answer the same, late work is kept and marked.

    Each entry names its task by the handle ``next`` or ``checkout`` gave (``task``)."""
    ctx, project = ctx_of(request), access.project
    assert project is not None
    user_id, handles = access.user_id, ctx.handles
    batch = entries.validate_batch(
        project, body.annotations, item_of=lambda h: handles.decode(project.id, user_id, h)
    )
    started = time.perf_counter()
    results = await ctx.run(submit.submit, project, user_id, batch, ctx.now())
    await audit_standing_changes(ctx)
    for result in results:
        result["task"] = handles.encode(project.id, user_id, result.pop("item_id"))
    if project.hands_out_gold:
        await pacer(ctx, project.id, "submit").pad(started)
    return ok({"results": results})


@router.post("/skip", **documented(Skipped, 401, 403, 404, 409, 413, 422))
async def skip_task(
    request: Request,
    project_id: Id,
    body: SkipBody,
    access: Annotated[Access, Depends(annotate)],
) -> JSON:
    """Give a task back with a reason; the caller will not get it again."""
    ctx, project = ctx_of(request), access.project
    assert project is not None
    try:
        item_id = ctx.handles.decode(project.id, access.user_id, body.task)
    except UnknownTask:
        raise InvalidInput(
            "unknown task: not one handed to you in this project", [{"field": "task"}]
        ) from None
    started = time.perf_counter()
    done = await ctx.run(skip.skip, project, access.user_id, item_id, body.reason, ctx.now())
    await audit_standing_changes(ctx)
    if project.hands_out_gold:
        await pacer(ctx, project.id, "skip").pad(started)
    return ok({"task": body.task, "status": done["status"]})


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
        checkout.check_out,
        project,
        access.user_id,
        body.n,
        now,
        hours=body.hours,
        prefill_key=ctx.prefill_key,
    )
    return ok({"tasks": present(ctx, project.id, access.user_id, tasks)})
