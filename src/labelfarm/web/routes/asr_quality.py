"""Speech-recognition pre-fill: its measured word error rate per language tag, and a review
item's word-level differences between transcripts."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request

from labelfarm.services import transcript_diff
from labelfarm.services.asr_report import asr_quality_report
from labelfarm.web.context import ctx_of
from labelfarm.web.models.asr_quality import AsrQuality, TranscriptDiffs
from labelfarm.web.policies import PROJECT_QUALITY, PROJECT_REVIEW, Access, require
from labelfarm.web.responses import JSON, documented, ok
from labelfarm.web.schemas import Id

router = APIRouter(prefix="/api/v1/projects/{project_id}", tags=["quality"])


@router.get("/asr/quality", **documented(AsrQuality, 401, 403, 404, 422))
async def asr_quality(
    request: Request,
    project_id: Id,
    access: Annotated[Access, Depends(require(PROJECT_QUALITY))],
) -> JSON:
    """Per language tag: whether ASR pre-fill is shown and why, each model version's word
    error rate (without pre-fill, and post-edited), and the daily series."""
    ctx = ctx_of(request)
    assert access.project is not None
    return ok(await ctx.run(asr_quality_report, access.project, ctx.now()))


@router.get("/review/{item_id}/diff", **documented(TranscriptDiffs, 401, 403, 404, 422))
async def review_diff(
    request: Request,
    project_id: Id,
    item_id: Id,
    access: Annotated[Access, Depends(require(PROJECT_REVIEW))],
) -> JSON:
    """Word-level differences between the item's transcripts, and between the ASR pre-fill
    and the final text."""
    assert access.project is not None
    return ok(await ctx_of(request).run(transcript_diff.item_diffs, access.project, item_id))
