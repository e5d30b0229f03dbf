"""``POST /api/v1/projects/{project_id}/checkout``: a batch of tasks for offline work."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from pydantic import Field

from labelfarm.services import checkout
from labelfarm.web.context import AppContext
from labelfarm.web.policies import PROJECT_ANNOTATE, Access, require
from labelfarm.web.responses import JSON, ok
from labelfarm.web.routes.annotate import present
from labelfarm.web.schemas import Body

router = APIRouter(prefix="/api/v1/projects/{project_id}", tags=["annotate"])


class CheckoutBody(Body):
    n: int = Field(default=50, ge=1, le=checkout.MAX_BATCH)
    hours: float = Field(default=checkout.DEFAULT_HOURS, gt=0, le=checkout.MAX_HOURS)


def _check_out(ctx: AppContext, access: Access, n: int, hours: float) -> list[dict[str, Any]]:
    assert access.project is not None
    now = ctx.now()
    with ctx.db.hot() as hot, hot.transaction():
        tasks = checkout.check_out(hot, access.project, access.user_id, n, now, hours=hours)
    present(ctx, access.user_id, tasks, now)
    return tasks


@router.post("/checkout")
async def check_out(
    request: Request,
    project_id: int,
    body: CheckoutBody,
    access: Annotated[Access, Depends(require(PROJECT_ANNOTATE))],
) -> JSON:
    """Lease up to ``n`` tasks for ``hours`` (default 8) to label offline.

    Same answer as ``next``; fetch the media at once, its links live at most
    ``LABELFARM_MEDIA_URL_SECONDS``. Submit the work as usual when back online.
    """
    ctx: AppContext = request.app.state.ctx
    return ok({"tasks": await ctx.db.call_hot(_check_out, ctx, access, body.n, body.hours)})
