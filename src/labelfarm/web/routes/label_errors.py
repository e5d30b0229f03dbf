"""Label errors: the suspected items with their reasons and the detector's precision, a run,
and a reviewer's "not an error". Registered on the quality routes' router (same prefix and
tag): ``labelfarm.web.routes`` imports this module."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends, Query, Request
from pydantic import Field

from labelfarm.db.tables import MAX_INT
from labelfarm.services import label_errors
from labelfarm.web.context import ctx_of
from labelfarm.web.job_start import start_job
from labelfarm.web.models.common import Out
from labelfarm.web.policies import (
    PROJECT_MANAGE,
    PROJECT_QUALITY,
    PROJECT_REVIEW,
    Access,
    require,
)
from labelfarm.web.responses import JSON, documented, ok
from labelfarm.web.routes.quality import router
from labelfarm.web.schemas import Body, Id

__all__ = ["router"]


class LabelIssue(Out):
    id: int
    item_id: int
    job_id: int | None = Field(description="the label_errors job that found it")
    field: str
    label: str = Field(description="the item's label when the run suspected it")
    suggested: str = Field(description="the model's class")
    score: float = Field(description="likelihood the label is wrong, in [0, 1]")
    reason: dict[str, Any] = Field(
        description="text (as reviewers see it), model_class, model_confidence, "
        "n_annotators, agreement, reliability, score"
    )
    state: str = Field(description="open, confirmed (the label was changed) or rejected")
    verdict_by: int | None = Field(description="the reviewer's user id (None for clients)")
    verdict_at: str | None
    review_id: int | None = Field(description="the review decision that decided it, if one did")
    created_at: str | None


class LabelErrorReport(Out):
    counts: dict[str, int] = Field(description="issues per state: open, confirmed, rejected")
    precision: float | None = Field(
        description="confirmed / (confirmed + rejected): the detector's precision in "
        "production (None before the first verdict)"
    )
    state: str
    issues: list[LabelIssue]


class LabelErrorJob(Out):
    """A job started: follow it at ``GET /api/v1/jobs/{id}``."""

    job: dict[str, Any] = Field(description="the job as GET /api/v1/jobs/{id} answers it")


class RunBody(Body):
    folds: int = Field(default=5, ge=2, le=10, description="cross-validation folds")
    top: int = Field(
        default=label_errors.DEFAULT_TOP,
        ge=1,
        le=label_errors.MAX_TOP,
        description="how many suspects to keep (most likely wrong first)",
    )
    version: int | None = Field(
        default=None,
        ge=1,
        le=MAX_INT,
        description="the model version whose predictor is cross-validated; default: the "
        "promoted one, else the newest ready one",
    )


@router.get("/label-errors", **documented(LabelErrorReport, 401, 403, 404, 422))
async def label_error_report(
    request: Request,
    project_id: Id,
    access: Annotated[Access, Depends(require(PROJECT_QUALITY))],
    state: Annotated[str, Query(max_length=16, description="open, confirmed or rejected")] = "open",
    limit: Annotated[int, Query(ge=1, le=label_errors.MAX_LIST)] = 100,
) -> JSON:
    """The suspected label errors in a state (most likely wrong first), the counts per state
    and the detector's precision on the ones reviewers decided."""
    assert access.project is not None
    report = await ctx_of(request).run(
        label_errors.report, access.project, state=state, limit=limit
    )
    if access.role == "client":  # clients see no one's identity: not the reviewer's either
        for issue in report["issues"]:
            issue["verdict_by"] = None
    return ok(report)


@router.post("/label-errors/run", **documented(LabelErrorJob, 401, 403, 404, 413, 422, status=202))
async def label_error_run(
    request: Request,
    project_id: Id,
    body: RunBody,
    access: Annotated[Access, Depends(require(PROJECT_MANAGE))],
) -> JSON:
    """Queue a ``label_errors`` job: the model version's predictor cross-validated on the
    labelled items, their labels ranked; the top replaces the open issues and feeds the
    review queue. A 422 at once when no model version is ready."""
    ctx = ctx_of(request)
    assert access.project is not None
    params = label_errors.check_run(body.model_dump())
    await ctx.run(label_errors.choose_version, access.project.id, params["version"])
    job = await start_job(ctx, access, "label_errors", params)
    return ok({"job": job.to_dict()}, 202)


@router.post(
    "/label-errors/{item_id}/dismiss",
    **documented(LabelIssue, 401, 403, 404, 413, 422),
)
async def dismiss_label_error(
    request: Request,
    project_id: Id,
    item_id: Id,
    access: Annotated[Access, Depends(require(PROJECT_REVIEW))],
) -> JSON:
    """Not an error: the reviewer keeps the item's label; its open issue is rejected
    (audited). A 404 when the item has no open issue."""
    ctx = ctx_of(request)
    assert access.project is not None
    issue = await ctx.run(
        label_errors.dismiss,
        access.project,
        item_id,
        reviewer_id=access.user_id,
        now=ctx.now(),
    )
    return ok(issue)
