"""Work a server process does on its own: refitting the annotator models of adaptive
projects, so that adaptive overlap decides with fresh estimates of who is reliable."""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from labelfarm.services import fitting
from labelfarm.services.projects import load_project
from labelfarm.services.tasks import adaptive
from labelfarm.web.context import AppContext

log = logging.getLogger("labelfarm.background")


async def refit_loop(ctx: AppContext) -> None:
    every = ctx.settings.refit_seconds
    while True:
        # jitter: several server processes share the work instead of doing it at once
        await asyncio.sleep(every * random.uniform(0.5, 1.0))
        try:
            due = await ctx.run(fitting.projects_due_for_refit, ctx.now(), every)
            for project_id in due:
                project = await ctx.run(load_project, project_id)
                await ctx.run(fitting.refit_models, project, now=ctx.now(), actor_id=None)
                adaptive.forget_models(project_id)
        except Exception:  # keep serving; the next round tries again
            log.exception("refitting annotator models failed")


@asynccontextmanager
async def lifespan(app: Any) -> AsyncIterator[None]:
    ctx: AppContext = app.state.ctx
    task = asyncio.create_task(refit_loop(ctx)) if ctx.settings.refit_seconds > 0 else None
    try:
        yield
    finally:
        if task is not None:
            task.cancel()
