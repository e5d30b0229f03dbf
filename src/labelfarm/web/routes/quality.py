"""Quality: reports, the review queue and decisions, refitting the annotator models."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel, ConfigDict, Field

from labelfarm.services import fitting, quality, review
from labelfarm.services.tasks import adaptive
from labelfarm.web.context import ctx_of
from labelfarm.web.policies import (
    PROJECT_MANAGE,
    PROJECT_QUALITY,
    PROJECT_REVIEW,
    Access,
    require,
)
from labelfarm.web.responses import JSON, ok

router = APIRouter(prefix="/api/v1/projects/{project_id}", tags=["quality"])


class DecisionBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    decision: str = Field(description="'accept' (with annotation_id) or 'override' (with value)")
    annotation_id: int | None = None
    value: Any = None
    note: str = ""


def _identities(access: Access) -> bool:
    """Clients see annotators by pseudonym only."""
    return access.role != "client"


@router.get("/quality")
async def project_quality(
    request: Request,
    project_id: int,
    access: Annotated[Access, Depends(require(PROJECT_QUALITY))],
) -> JSON:
    """Agreement per field and class, gold accuracy with intervals, confusion, standing."""
    assert access.project is not None
    report = await ctx_of(request).run(
        quality.project_report, access.project, identities=_identities(access)
    )
    return ok(report)


@router.get("/annotators/{user_id}/quality")
async def annotator_quality(
    request: Request,
    project_id: int,
    user_id: str,
    access: Annotated[Access, Depends(require(PROJECT_QUALITY))],
) -> JSON:
    """One annotator, by pseudonym (or user id, except for clients)."""
    assert access.project is not None
    report = await ctx_of(request).run(
        quality.annotator_report, access.project, user_id, identities=_identities(access)
    )
    return ok(report)


@router.post("/quality/refit")
async def refit(
    request: Request,
    project_id: int,
    access: Annotated[Access, Depends(require(PROJECT_MANAGE))],
) -> JSON:
    """Refit the annotator models over the whole project and refresh label confidences."""
    ctx = ctx_of(request)
    assert access.project is not None
    summary = await ctx.run(
        fitting.refit_models, access.project, now=ctx.now(), actor_id=access.user_id
    )
    adaptive.forget_models(project_id)
    return ok(summary)


@router.get("/review")
async def review_queue(
    request: Request,
    project_id: int,
    access: Annotated[Access, Depends(require(PROJECT_REVIEW))],
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> JSON:
    """Unresolved items: gold failures, low confidence, disagreements."""
    assert access.project is not None
    return ok(await ctx_of(request).run(review.review_queue, access.project, limit=limit))


@router.get("/review/{item_id}")
async def review_item(
    request: Request,
    project_id: int,
    item_id: int,
    access: Annotated[Access, Depends(require(PROJECT_REVIEW))],
) -> JSON:
    """One item with every annotation side by side, the prediction and the current label."""
    ctx = ctx_of(request)
    assert access.project is not None
    out = await ctx.run(review.review_item, access.project, item_id)
    sha = out["item"].pop("media_sha256")
    now = ctx.now()
    out["item"]["media_url"] = (
        ctx.media.sign(sha, access.user_id, now + ctx.settings.media_url_seconds) if sha else None
    )
    return ok(out)


@router.post("/review/{item_id}", status_code=201)
async def decide(
    request: Request,
    project_id: int,
    item_id: int,
    body: DecisionBody,
    access: Annotated[Access, Depends(require(PROJECT_REVIEW))],
) -> JSON:
    """Accept one annotation or write the final answer; kept with who and when, audited."""
    ctx = ctx_of(request)
    assert access.project is not None
    result = await ctx.run(
        review.decide,
        access.project,
        item_id,
        reviewer_id=access.user_id,
        decision=body.decision,
        annotation_id=body.annotation_id,
        value=body.value,
        note=body.note,
        now=ctx.now(),
    )
    return ok(result, 201)
