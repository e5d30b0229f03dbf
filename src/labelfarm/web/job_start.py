"""Starting a project's job from a route: queued in one transaction, answered with 202."""

from __future__ import annotations

from typing import Any

from labelfarm.services import job_queue
from labelfarm.services.job_queue import Job
from labelfarm.web.context import AppContext
from labelfarm.web.policies import Access


async def start_job(ctx: AppContext, access: Access, kind: str, params: dict[str, Any]) -> Job:
    """Queue a ``kind`` job of the caller's project with ``params``, started by the caller.
    The kind is one the route names; workers refuse an unknown one."""
    project = access.project
    assert project is not None
    # a job may write predictions, items or labels: this server reads the project afresh
    ctx.projects.drop(project.id)
    return await ctx.run(
        job_queue.start_project_job,
        project_id=project.id,
        workspace_id=project.workspace_id,
        kind=kind,
        params=params,
        user_id=access.user_id,
        now=ctx.now(),
        max_attempts=ctx.settings.job_max_attempts,
    )
