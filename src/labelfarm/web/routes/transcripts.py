"""Attaching a transcript file (WebVTT, SRT, STM, CTM) to a project's audio items.

``POST /api/v1/projects/{id}/transcripts`` takes the file as the body (or a multipart
``file``), up to the upload limit, and gives each recording it names to the items whose
media file or external id has that name (:mod:`labelfarm.services.transcripts`).
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query, Request
from pydantic import Field

from labelfarm.web.context import ctx_of
from labelfarm.web.models.common import Out
from labelfarm.web.models.projects import ImportNote
from labelfarm.web.policies import PROJECT_MANAGE, Access, require
from labelfarm.web.responses import JSON, UPLOAD_BODY, documented, ok
from labelfarm.web.routes.data import UploadName, spool_upload
from labelfarm.web.schemas import Id

router = APIRouter(prefix="/api/v1/projects/{project_id}", tags=["data"])


class TranscriptsAttached(Out):
    format: str
    mode: str = Field(description="predictions (a pre-fill) or annotations")
    n_items: int = Field(description="items given a transcript")
    n_segments: int
    n_unmatched: int = Field(description="recordings the file names that no item is")
    unmatched: list[str] = Field(description="the first 100 of them")
    notes: list[ImportNote] = Field(default_factory=list)


@router.post(
    "/transcripts",
    openapi_extra=UPLOAD_BODY,
    **documented(TranscriptsAttached, 401, 403, 404, 413, 422, status=201),
)
async def attach(
    request: Request,
    project_id: Id,
    access: Annotated[Access, Depends(require(PROJECT_MANAGE))],
    format: Annotated[
        Literal["vtt", "srt", "stm", "ctm"] | None,
        Query(description="the file's format; when left out, told from its name's suffix"),
    ] = None,
    filename: UploadName = None,
    as_: Annotated[
        Literal["predictions", "annotations"],
        Query(alias="as", description="what the transcripts become: a pre-fill or labels"),
    ] = "predictions",
) -> JSON:
    """Attach the transcripts of a file to the items of the recordings it names, all or
    nothing."""
    from labelfarm.services.transcripts import attach_transcripts

    ctx = ctx_of(request)
    project = access.project
    assert project is not None
    with tempfile.TemporaryDirectory(prefix="labelfarm-upload-") as tmp:
        path = Path(tmp) / "upload"
        sent_name = await spool_upload(request, path)
        result = await ctx.run(
            attach_transcripts,
            project,
            path,
            filename=filename or sent_name or f"upload.{format or 'vtt'}",
            fmt=format,
            mode=as_,
            now=ctx.now(),
        )
    ctx.projects.drop(project_id)  # the project may now have predictions to pre-fill
    return ok(result.to_dict(), 201)
