"""A new project from an uploaded file: its format told (or given), a schema proposed that
keeps everything the file holds, the file imported; nothing is created when the file cannot
be read or does not fit (:mod:`labelfarm.services.project_from_file`)."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request

from labelfarm.services import imports
from labelfarm.services.project_from_file import create_project_from_file
from labelfarm.web.context import ctx_of
from labelfarm.web.models.projects import ProjectFromFile
from labelfarm.web.policies import WORKSPACE_MANAGE, Access, require
from labelfarm.web.responses import JSON, UPLOAD_BODY, documented, ok
from labelfarm.web.routes.data import (
    UploadFormat,
    UploadName,
    check_upload_format,
    spool_upload,
)
from labelfarm.web.schemas import Id

router = APIRouter(prefix="/api/v1", tags=["projects"])


@router.post(
    "/workspaces/{workspace_id}/projects/from-file",
    openapi_extra=UPLOAD_BODY,
    **documented(ProjectFromFile, 401, 403, 404, 409, 413, 422, 503, status=201),
)
async def create_from_file(
    request: Request,
    workspace_id: Id,
    access: Annotated[Access, Depends(require(WORKSPACE_MANAGE))],
    name: Annotated[str, Query(min_length=1, max_length=200)],
    format: UploadFormat = None,
    filename: UploadName = None,
) -> JSON:
    """Create a project whose schema is proposed from the request body (or a multipart
    ``file``) and import the file into it, all or nothing."""
    ctx = ctx_of(request)
    check_upload_format(format)
    with tempfile.TemporaryDirectory(prefix="labelfarm-upload-") as tmp:
        path = Path(tmp) / "upload"
        sent_name = await spool_upload(request, path)
        project, result = await ctx.run(
            create_project_from_file,
            workspace_id=workspace_id,
            name=name,
            path=path,
            media=ctx.media,
            now=ctx.now(),
            actor_id=access.user_id,
            fmt=format,
            filename=filename or sent_name or "upload",
            limits=imports.limits_from(ctx.settings),
            cancel=ctx.stopping,
        )
    return ok({"project": project, "imported": result.to_dict()}, 201)
