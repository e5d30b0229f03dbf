"""Quality: reports, the review queue and decisions, refitting the annotator models, sending
an annotator's labels back for relabelling."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Request
from pydantic import Field

from labelfarm.db.tables import MAX_INT
from labelfarm.services import fitting, quality, review
from labelfarm.services.tasks import adaptive, relabel
from labelfarm.web.context import ctx_of
from labelfarm.web.models.quality import (
    AnnotatorQuality,
    Decided,
    ProjectQuality,
    Refitted,
    Relabelled,
    ReviewQueue,
    ReviewView,
)
from labelfarm.web.policies import (
    PROJECT_MANAGE,
    PROJECT_QUALITY,
    PROJECT_REVIEW,
    Access,
    require,
)
from labelfarm.web.responses import JSON, documented, ok
from labelfarm.web.schemas import Body, Id

router = APIRouter(prefix="/api/v1/projects/{project_id}", tags=["quality"])


class DecisionBody(Body):
    decision: str = Field(description="'accept' (with annotation_id) or 'override' (with value)")
    annotation_id: int | None = Field(default=None, ge=1, le=MAX_INT)
    value: Any = None
    note: str = ""


class RelabelBody(Body):
    since: datetime | None = Field(
        default=None,
        description="ISO 8601 (UTC without an offset): send back the labels made from then "
        "on; none: every label",
    )
    reason: str = Field(default="", max_length=relabel.MAX_REASON)


def _identities(access: Access) -> bool:
    """Clients see annotators by pseudonym only."""
    return access.role != "client"


@router.get("/quality", **documented(ProjectQuality, 401, 403, 404, 422))
async def project_quality(
    request: Request,
    project_id: Id,
    access: Annotated[Access, Depends(require(PROJECT_QUALITY))],
) -> JSON:
    """Agreement per field and class, gold accuracy with intervals, confusion, standing."""
    assert access.project is not None
    report = await ctx_of(request).run(
        quality.project_report, access.project, identities=_identities(access)
    )
    return ok(report)


@router.get("/annotators/{user_id}/quality", **documented(AnnotatorQuality, 401, 403, 404, 422))
async def annotator_quality(
    request: Request,
    project_id: Id,
    user_id: Annotated[str, Path(description="a pseudonym, or a user id (not for clients)")],
    access: Annotated[Access, Depends(require(PROJECT_QUALITY))],
) -> JSON:
    """One annotator, by pseudonym (or user id, except for clients)."""
    assert access.project is not None
    report = await ctx_of(request).run(
        quality.annotator_report, access.project, user_id, identities=_identities(access)
    )
    return ok(report)


@router.post("/quality/refit", **documented(Refitted, 401, 403, 404, 413, 422))
async def refit(
    request: Request,
    project_id: Id,
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


@router.get("/review", **documented(ReviewQueue, 401, 403, 404, 422))
async def review_queue(
    request: Request,
    project_id: Id,
    access: Annotated[Access, Depends(require(PROJECT_REVIEW))],
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> JSON:
    """Unresolved items: gold failures, low confidence, disagreements."""
    assert access.project is not None
    return ok(await ctx_of(request).run(review.review_queue, access.project, limit=limit))


@router.get("/review/{item_id}", **documented(ReviewView, 401, 403, 404, 422))
async def review_item(
    request: Request,
    project_id: Id,
    item_id: Id,
    access: Annotated[Access, Depends(require(PROJECT_REVIEW))],
) -> JSON:
    """One item with every annotation side by side, the prediction and the current label."""
    ctx = ctx_of(request)
    assert access.project is not None
    out = await ctx.run(review.review_item, access.project, item_id)
    sha = out["item"].pop("media_sha256")
    now = ctx.now()
    expires = now + ctx.settings.media_url_seconds
    out["item"]["media_url"] = (
        ctx.media.sign(sha, access.user_id, expires, workspace=access.project.workspace_id)
        if sha
        else None
    )
    return ok(out)


@router.post("/review/{item_id}", **documented(Decided, 401, 403, 404, 413, 422, status=201))
async def decide(
    request: Request,
    project_id: Id,
    item_id: Id,
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


@router.post("/annotators/{user_id}/relabel", **documented(Relabelled, 401, 403, 404, 413, 422))
async def relabel_annotator(
    request: Request,
    project_id: Id,
    user_id: Id,
    body: RelabelBody,
    access: Annotated[Access, Depends(require(PROJECT_MANAGE))],
) -> JSON:
    """Send the annotator's labels (since a time, or all) back for relabelling: they stay
    stored, leave the items' labels, and the items reopen for other annotators (audited)."""
    ctx = ctx_of(request)
    assert access.project is not None
    since = body.since
    if since is not None and since.tzinfo is None:
        since = since.replace(tzinfo=UTC)
    result = await ctx.run(
        relabel.relabel,
        access.project,
        user_id,
        since=since.timestamp() if since is not None else None,
        reason=body.reason,
        now=ctx.now(),
        actor_id=access.user_id,
    )
    return ok(result)
